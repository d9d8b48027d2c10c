// jinja_parse.c — Jinja source to a syntax tree: the lexer (with transformers' whitespace rules:
// trim_blocks, lstrip_blocks, and the '-' markers) and a recursive-descent parser with Jinja's
// operator precedence.
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "text/jinja_ast.h"

// ---- tokens ----------------------------------------------------------------------------------

typedef enum { TK_TEXT, TK_VAR_BEGIN, TK_VAR_END, TK_BLOCK_BEGIN, TK_BLOCK_END, TK_NAME, TK_STRING,
               TK_INT, TK_FLOAT, TK_OP, TK_EOF } TokKind;

typedef struct Tok {
    TokKind kind;
    int line;
    char *s;    // text, name, operator, or decoded string literal
    size_t len; // of s
    json_int_t i;
    double f;
} Tok;

typedef struct Lexer {
    const char *src, *name;
    size_t n, pos;
    int line;
    Tok *t;
    int nt, cap;
    DsErr *e;
} Lexer;

static Tok *push_tok(Lexer *L, TokKind k, int line, const char *s, size_t len) {
    if (L->nt == L->cap) {
        L->cap = L->cap ? 2 * L->cap : 256;
        L->t = ds_realloc(L->t, sizeof *L->t * (size_t)L->cap);
    }
    Tok *t = &L->t[L->nt++];
    memset(t, 0, sizeof *t);
    t->kind = k, t->line = line;
    t->s = ds_malloc(len + 1);
    memcpy(t->s, s, len);
    t->s[len] = 0;
    t->len = len;
    return t;
}

static int is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

static int count_lines(const char *s, size_t n) {
    int k = 0;
    for (size_t i = 0; i < n; i++) k += s[i] == '\n';
    return k;
}

// Jinja turns "\r\n" and "\r" into "\n" in template data and string literals.
static void normalize_newlines(DsBuf *b, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\r') {
            dsbuf_append(b, "\n", 1);
            if (i + 1 < n && s[i + 1] == '\n') i++;
        } else {
            dsbuf_append(b, s + i, 1);
        }
    }
}

static void put_utf8(DsBuf *b, unsigned long c) {
    char u[4];
    int n;
    if (c < 0x80) u[0] = (char)c, n = 1;
    else if (c < 0x800) u[0] = (char)(0xc0 | c >> 6), u[1] = (char)(0x80 | (c & 63)), n = 2;
    else if (c < 0x10000)
        u[0] = (char)(0xe0 | c >> 12), u[1] = (char)(0x80 | (c >> 6 & 63)), u[2] = (char)(0x80 | (c & 63)), n = 3;
    else
        u[0] = (char)(0xf0 | c >> 18), u[1] = (char)(0x80 | (c >> 12 & 63)), u[2] = (char)(0x80 | (c >> 6 & 63)),
        u[3] = (char)(0x80 | (c & 63)), n = 4;
    dsbuf_append(b, u, (size_t)n);
}

// A string literal's body, decoded as Python's "unicode-escape" codec does (Jinja's rule); an
// unknown escape keeps its backslash.
static int decode_string(Lexer *L, const char *s, size_t n, int line, DsBuf *out) {
    DsBuf raw = {0};
    normalize_newlines(&raw, s, n);
    dsbuf_append(&raw, "", 0);
    for (size_t i = 0; i < raw.len; i++) {
        char c = raw.data[i];
        if (c != '\\' || i + 1 >= raw.len) {
            dsbuf_append(out, &c, 1);
            continue;
        }
        char d = raw.data[++i];
        const char *simple = strchr("nrtbfav\\'\"\n", d);
        if (simple && d) {
            static const char from[] = "nrtbfav\\'\"\n", to[] = "\n\r\t\b\f\a\v\\'\"";
            size_t k = (size_t)(strchr(from, d) - from);
            if (d != '\n') dsbuf_append(out, &to[k], 1); // backslash-newline is a line continuation
            continue;
        }
        int digits = d == 'x' ? 2 : d == 'u' ? 4 : d == 'U' ? 8 : 0;
        if (digits) {
            unsigned long v = 0;
            for (int k = 0; k < digits; k++) {
                char h = i + 1 + (size_t)k < raw.len ? raw.data[i + 1 + (size_t)k] : 0;
                if (!isxdigit((unsigned char)h)) {
                    dsbuf_free(&raw);
                    return ds_errf(L->e, "%s: line %d: truncated \\%c escape in a string", L->name, line, d);
                }
                v = v * 16 + (unsigned long)(isdigit((unsigned char)h) ? h - '0' : (tolower(h) - 'a' + 10));
            }
            if (v > 0x10ffff || (v >= 0xd800 && v < 0xe000)) {
                dsbuf_free(&raw);
                return ds_errf(L->e, "%s: line %d: escape \\%c names no character", L->name, line, d);
            }
            put_utf8(out, v);
            i += (size_t)digits;
            continue;
        }
        if (d >= '0' && d <= '7') { // octal, up to three digits
            unsigned long v = 0;
            int k = 0;
            while (k < 3 && i < raw.len && raw.data[i] >= '0' && raw.data[i] <= '7') v = v * 8 + (unsigned long)(raw.data[i++] - '0'), k++;
            i--;
            put_utf8(out, v);
            continue;
        }
        if (d == 'N') {
            dsbuf_free(&raw);
            return ds_errf(L->e, "%s: line %d: \\N{...} escapes are not supported", L->name, line);
        }
        dsbuf_append(out, "\\", 1);
        dsbuf_append(out, &d, 1);
    }
    dsbuf_free(&raw);
    return DS_OK;
}

static const char *OPS[] = {"//", "**", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "<",
                            ">", "=", "(", ")", "[", "]", "{", "}", ",", ".", ":", "|"};

// Lexes the inside of a tag up to its end marker; *strip_after is set by "-%}" / "-}}", *trim by
// a block or comment end without '+' (trim_blocks).
static int lex_tag(Lexer *L, int var, int *strip_after, int *keep_nl) {
    int depth = 0;
    *strip_after = 0, *keep_nl = 0;
    for (;;) {
        while (L->pos < L->n && is_ws(L->src[L->pos])) L->line += L->src[L->pos++] == '\n';
        if (L->pos >= L->n) return ds_errf(L->e, "%s: line %d: unexpected end of template inside a tag", L->name, L->line);
        const char *p = L->src + L->pos;
        size_t left = L->n - L->pos;
        const char *end = var ? "}}" : "%}";
        if (depth == 0 || !var) {
            if ((*p == '-' || *p == '+') && left >= 3 && !memcmp(p + 1, end, 2)) {
                if (*p == '-') *strip_after = 1;
                else *keep_nl = 1;
                L->pos += 3;
                break;
            }
            if (left >= 2 && !memcmp(p, end, 2)) {
                L->pos += 2;
                break;
            }
        }
        char c = *p;
        if (isalpha((unsigned char)c) || c == '_') {
            size_t k = 1;
            while (k < left && (isalnum((unsigned char)p[k]) || p[k] == '_')) k++;
            push_tok(L, TK_NAME, L->line, p, k);
            L->pos += k;
        } else if (isdigit((unsigned char)c)) {
            size_t k = 0;
            int is_float = 0;
            while (k < left && (isdigit((unsigned char)p[k]) || p[k] == '_')) k++;
            if (k + 1 < left && p[k] == '.' && isdigit((unsigned char)p[k + 1])) {
                is_float = 1, k++;
                while (k < left && (isdigit((unsigned char)p[k]) || p[k] == '_')) k++;
            }
            if (k < left && (p[k] == 'e' || p[k] == 'E')) {
                size_t j = k + 1;
                if (j < left && (p[j] == '+' || p[j] == '-')) j++;
                if (j < left && isdigit((unsigned char)p[j])) {
                    is_float = 1, k = j;
                    while (k < left && isdigit((unsigned char)p[k])) k++;
                }
            }
            char num[64];
            size_t m = 0;
            for (size_t j = 0; j < k && m + 1 < sizeof num; j++)
                if (p[j] != '_') num[m++] = p[j];
            num[m] = 0;
            Tok *t = push_tok(L, is_float ? TK_FLOAT : TK_INT, L->line, p, k);
            if (is_float) t->f = strtod(num, NULL);
            else t->i = (json_int_t)strtoll(num, NULL, 10);
            L->pos += k;
        } else if (c == '\'' || c == '"') {
            size_t k = 1;
            while (k < left && p[k] != c) k += p[k] == '\\' ? 2 : 1;
            if (k >= left) return ds_errf(L->e, "%s: line %d: unterminated string", L->name, L->line);
            DsBuf b = {0};
            dsbuf_append(&b, "", 0);
            int line = L->line;
            if (decode_string(L, p + 1, k - 1, line, &b)) {
                dsbuf_free(&b);
                return DS_ERR;
            }
            push_tok(L, TK_STRING, line, b.data, b.len);
            dsbuf_free(&b);
            L->line += count_lines(p, k + 1);
            L->pos += k + 1;
        } else {
            size_t k = 0;
            for (size_t o = 0; o < DS_ARRAY_LEN(OPS) && !k; o++) {
                size_t m = strlen(OPS[o]);
                if (m <= left && !memcmp(p, OPS[o], m)) k = m;
            }
            if (!k) return ds_errf(L->e, "%s: line %d: unexpected character '%c'", L->name, L->line, c);
            if (strchr("([{", c)) depth++;
            if (strchr(")]}", c) && depth > 0) depth--;
            push_tok(L, TK_OP, L->line, p, k);
            L->pos += k;
        }
    }
    return DS_OK;
}

static int lex(Lexer *L) {
    int strip_next = 0, trim_next = 0, line_start = 1;
    // Jinja drops one newline at the very end of a template (keep_trailing_newline is off).
    if (L->n && L->src[L->n - 1] == '\n') L->n -= L->n >= 2 && L->src[L->n - 2] == '\r' ? 2 : 1;
    else if (L->n && L->src[L->n - 1] == '\r') L->n--;
    while (L->pos <= L->n) {
        size_t at = L->pos;
        while (at + 1 < L->n && !(L->src[at] == '{' && strchr("{%#", L->src[at + 1]))) at++;
        if (at + 1 >= L->n) at = L->n;
        const char *text = L->src + L->pos;
        size_t tlen = at - L->pos;
        int text_line = L->line;
        L->line += count_lines(text, tlen);
        // Whitespace rules applied to the text before the tag.
        size_t a = 0, b = tlen;
        if (strip_next) {
            while (a < b && is_ws(text[a])) text_line += text[a++] == '\n';
        } else if (trim_next && a < b && text[a] == '\n') {
            a++, text_line++;
        } else if (trim_next && a + 1 < b && text[a] == '\r' && text[a + 1] == '\n') {
            a += 2, text_line++;
        }
        int at_line_start = a > 0 ? text[a - 1] == '\n' : line_start;
        char kind = at < L->n ? L->src[at + 1] : 0;
        char mark = at + 2 < L->n ? L->src[at + 2] : 0;
        if (kind && mark == '-') {
            while (b > a && is_ws(text[b - 1])) b--;
        } else if ((kind == '%' || kind == '#') && mark != '+') { // lstrip_blocks
            size_t l = b;
            while (l > a && (text[l - 1] == ' ' || text[l - 1] == '\t' || text[l - 1] == '\f' || text[l - 1] == '\v')) l--;
            if (l < b && ((l > a && text[l - 1] == '\n') || (l == a && at_line_start))) b = l;
        }
        if (b > a) {
            DsBuf d = {0};
            dsbuf_append(&d, "", 0);
            normalize_newlines(&d, text + a, b - a);
            push_tok(L, TK_TEXT, text_line, d.data, d.len);
            dsbuf_free(&d);
        }
        if (at >= L->n) break;
        L->pos = at + 2 + (mark == '-' || mark == '+');
        strip_next = trim_next = 0;
        int strip_after, keep_nl;
        if (kind == '#') {
            const char *p = L->src + L->pos;
            const char *end = NULL;
            for (size_t i = L->pos; i + 1 < L->n; i++)
                if (L->src[i] == '#' && L->src[i + 1] == '}') {
                    end = L->src + i;
                    break;
                }
            if (!end) return ds_errf(L->e, "%s: line %d: unterminated comment", L->name, L->line);
            L->line += count_lines(p, (size_t)(end - p));
            strip_after = end > p && end[-1] == '-';
            keep_nl = end > p && end[-1] == '+';
            L->pos = (size_t)(end - L->src) + 2;
        } else {
            int var = kind == '{';
            push_tok(L, var ? TK_VAR_BEGIN : TK_BLOCK_BEGIN, L->line, "", 0);
            if (lex_tag(L, var, &strip_after, &keep_nl)) return DS_ERR;
            push_tok(L, var ? TK_VAR_END : TK_BLOCK_END, L->line, "", 0);
            if (var) keep_nl = 1; // trim_blocks applies to blocks and comments only
        }
        strip_next = strip_after;
        trim_next = !strip_after && !keep_nl;
        line_start = 0;
    }
    push_tok(L, TK_EOF, L->line, "", 0);
    return DS_OK;
}

// ---- nodes -----------------------------------------------------------------------------------

static JNode *node(JNodeKind k, int line) {
    JNode *n = ds_calloc(1, sizeof *n);
    n->kind = k, n->line = line;
    return n;
}

static void add(JNode *n, JNode *kid, const char *argname) {
    n->kid = ds_realloc(n->kid, sizeof *n->kid * (size_t)(n->nkid + 1));
    n->argname = ds_realloc(n->argname, sizeof *n->argname * (size_t)(n->nkid + 1));
    n->kid[n->nkid] = kid;
    n->argname[n->nkid++] = argname ? ds_strdup(argname) : NULL;
}

static void add_target(JNode *n, const char *name) {
    n->target = ds_realloc(n->target, sizeof *n->target * (size_t)(n->ntarget + 1));
    n->target[n->ntarget++] = ds_strdup(name);
}

static void node_free(JNode *n) {
    if (!n) return;
    for (int i = 0; i < n->nkid; i++) node_free(n->kid[i]), free(n->argname[i]);
    for (int i = 0; i < n->ntarget; i++) free(n->target[i]);
    free(n->kid), free(n->argname), free(n->target), free(n->str);
    json_decref(n->lit);
    free(n);
}

// ---- parser ----------------------------------------------------------------------------------

typedef struct Parser {
    Tok *t;
    int i, nt;
    const char *name;
    DsErr *e;
    int depth; // of nested expressions and blocks, bounded so that no template exhausts the stack
} Parser;

enum { MAX_DEPTH = 200 };

static Tok *cur(Parser *P) { return &P->t[P->i]; }
static int is_op(Parser *P, const char *op) { return cur(P)->kind == TK_OP && !strcmp(cur(P)->s, op); }
static int is_name(Parser *P, const char *nm) { return cur(P)->kind == TK_NAME && !strcmp(cur(P)->s, nm); }
static int accept_op(Parser *P, const char *op) { return is_op(P, op) ? (P->i++, 1) : 0; }
static int accept_name(Parser *P, const char *nm) { return is_name(P, nm) ? (P->i++, 1) : 0; }

static const char *tok_desc(const Tok *t) {
    switch (t->kind) {
    case TK_VAR_END: return "end of print statement";
    case TK_BLOCK_END: return "end of statement block";
    case TK_EOF: return "end of template";
    case TK_TEXT: return "template text";
    case TK_STRING: return "string";
    default: return t->s;
    }
}

static int fail(Parser *P, const char *what) {
    return ds_errf(P->e, "%s: line %d: expected %s, got '%s'", P->name, cur(P)->line, what, tok_desc(cur(P)));
}

static int expect_op(Parser *P, const char *op) {
    if (accept_op(P, op)) return DS_OK;
    char w[16];
    snprintf(w, sizeof w, "'%s'", op);
    return fail(P, w);
}

static JNode *parse_expr(Parser *P);
static JNode *parse_cond(Parser *P);
static JNode *parse_or(Parser *P);
static JNode *parse_unary(Parser *P, int with_filter);

// Call or filter arguments after '(' : positional, then name=value.
static int parse_args(Parser *P, JNode *n) {
    while (!is_op(P, ")")) {
        const char *kw = NULL;
        if (cur(P)->kind == TK_NAME && P->i + 1 < P->nt && P->t[P->i + 1].kind == TK_OP && !strcmp(P->t[P->i + 1].s, "="))
            kw = cur(P)->s, P->i += 2;
        JNode *a = parse_expr(P);
        if (!a) return DS_ERR;
        add(n, a, kw);
        if (!accept_op(P, ",")) break;
    }
    return expect_op(P, ")");
}

static JNode *parse_primary(Parser *P) {
    Tok *t = cur(P);
    JNode *n = NULL;
    static const char *const keywords[] = {"not", "and", "or", "in", "is", "if", "else", NULL};
    for (int k = 0; t->kind == TK_NAME && keywords[k]; k++)
        if (!strcmp(t->s, keywords[k])) return fail(P, "an expression"), NULL;
    if (t->kind == TK_NAME) {
        P->i++;
        if (!strcmp(t->s, "true") || !strcmp(t->s, "True")) {
            n = node(JN_LIT, t->line), n->lit = json_true();
        } else if (!strcmp(t->s, "false") || !strcmp(t->s, "False")) {
            n = node(JN_LIT, t->line), n->lit = json_false();
        } else if (!strcmp(t->s, "none") || !strcmp(t->s, "None")) {
            n = node(JN_LIT, t->line), n->lit = json_null();
        } else {
            n = node(JN_NAME, t->line), n->str = ds_strdup(t->s);
        }
        return n;
    }
    if (t->kind == TK_STRING) { // adjacent literals concatenate
        DsBuf b = {0};
        dsbuf_append(&b, "", 0);
        while (cur(P)->kind == TK_STRING) dsbuf_append(&b, cur(P)->s, cur(P)->len), P->i++;
        n = node(JN_LIT, t->line);
        n->lit = json_stringn_nocheck(b.data, b.len);
        dsbuf_free(&b);
        return n;
    }
    if (t->kind == TK_INT || t->kind == TK_FLOAT) {
        P->i++;
        n = node(JN_LIT, t->line);
        n->lit = t->kind == TK_INT ? json_integer(t->i) : json_real(t->f);
        return n;
    }
    if (accept_op(P, "(")) {
        if (accept_op(P, ")")) return node(JN_TUPLE, t->line);
        JNode *first = parse_expr(P);
        if (!first) return NULL;
        if (!is_op(P, ",")) {
            if (expect_op(P, ")")) return node_free(first), NULL;
            return first;
        }
        n = node(JN_TUPLE, t->line);
        add(n, first, NULL);
        while (accept_op(P, ",") && !is_op(P, ")")) {
            JNode *k = parse_expr(P);
            if (!k) return node_free(n), NULL;
            add(n, k, NULL);
        }
        if (expect_op(P, ")")) return node_free(n), NULL;
        return n;
    }
    if (accept_op(P, "[")) {
        n = node(JN_LIST, t->line);
        while (!is_op(P, "]")) {
            JNode *k = parse_expr(P);
            if (!k) return node_free(n), NULL;
            add(n, k, NULL);
            if (!accept_op(P, ",")) break;
        }
        if (expect_op(P, "]")) return node_free(n), NULL;
        return n;
    }
    if (accept_op(P, "{")) {
        n = node(JN_DICT, t->line);
        while (!is_op(P, "}")) {
            JNode *k = parse_expr(P);
            if (!k) return node_free(n), NULL;
            add(n, k, NULL);
            if (expect_op(P, ":")) return node_free(n), NULL;
            JNode *v = parse_expr(P);
            if (!v) return node_free(n), NULL;
            add(n, v, NULL);
            if (!accept_op(P, ",")) break;
        }
        if (expect_op(P, "}")) return node_free(n), NULL;
        return n;
    }
    fail(P, "an expression");
    return NULL;
}

static JNode *parse_subscript(Parser *P, JNode *obj, int line) {
    JNode *parts[3] = {NULL, NULL, NULL};
    int colons = 0;
    for (;;) {
        if (is_op(P, ":")) {
            if (colons == 2) break;
            P->i++, colons++;
            continue;
        }
        if (is_op(P, "]")) break;
        if (parts[colons]) {
            fail(P, "']'");
            goto fail;
        }
        if (!(parts[colons] = parse_expr(P))) goto fail;
    }
    if (expect_op(P, "]")) goto fail;
    JNode *n;
    if (colons == 0) {
        if (!parts[0]) {
            fail(P, "an index");
            goto fail;
        }
        n = node(JN_INDEX, line);
        add(n, obj, NULL), add(n, parts[0], NULL);
    } else {
        n = node(JN_SLICE, line);
        add(n, obj, NULL);
        for (int k = 0; k < 3; k++) add(n, parts[k], NULL);
    }
    return n;
fail:
    for (int k = 0; k < 3; k++) node_free(parts[k]);
    node_free(obj);
    return NULL;
}

static JNode *parse_postfix(Parser *P, JNode *n) {
    for (;;) {
        int line = cur(P)->line;
        if (accept_op(P, ".")) {
            if (cur(P)->kind != TK_NAME && cur(P)->kind != TK_INT) return fail(P, "an attribute name"), node_free(n), NULL;
            JNode *a = node(cur(P)->kind == TK_NAME ? JN_ATTR : JN_INDEX, line);
            add(a, n, NULL);
            if (cur(P)->kind == TK_NAME) a->str = ds_strdup(cur(P)->s);
            else { // x.0 is x[0]
                JNode *k = node(JN_LIT, line);
                k->lit = json_integer(cur(P)->i);
                add(a, k, NULL);
            }
            P->i++;
            n = a;
        } else if (accept_op(P, "[")) {
            if (!(n = parse_subscript(P, n, line))) return NULL;
        } else if (accept_op(P, "(")) {
            JNode *c = node(JN_CALL, line);
            add(c, n, NULL);
            if (parse_args(P, c)) return node_free(c), NULL;
            n = c;
        } else {
            return n;
        }
    }
}

// Can the current token start a test's single bare argument (`is divisibleby 3`)?
static int starts_bare_arg(Parser *P) {
    Tok *t = cur(P);
    if (t->kind == TK_STRING || t->kind == TK_INT || t->kind == TK_FLOAT) return 1;
    if (t->kind == TK_OP) return !strcmp(t->s, "(") || !strcmp(t->s, "[") || !strcmp(t->s, "{") || !strcmp(t->s, "-");
    if (t->kind == TK_NAME)
        return strcmp(t->s, "else") && strcmp(t->s, "or") && strcmp(t->s, "and") && strcmp(t->s, "if") &&
               strcmp(t->s, "in") && strcmp(t->s, "is") && strcmp(t->s, "not");
    return 0;
}

static JNode *parse_filters(Parser *P, JNode *n) {
    for (;;) {
        int line = cur(P)->line;
        if (accept_op(P, "|")) {
            if (cur(P)->kind != TK_NAME) return fail(P, "a filter name"), node_free(n), NULL;
            JNode *f = node(JN_FILTER, line);
            f->str = ds_strdup(cur(P)->s);
            P->i++;
            while (accept_op(P, ".")) { // dotted filter names
                if (cur(P)->kind != TK_NAME) return fail(P, "a filter name"), node_free(f), node_free(n), NULL;
                char *s = ds_malloc(strlen(f->str) + strlen(cur(P)->s) + 2);
                sprintf(s, "%s.%s", f->str, cur(P)->s);
                free(f->str), f->str = s, P->i++;
            }
            add(f, n, NULL);
            if (accept_op(P, "(") && parse_args(P, f)) return node_free(f), NULL;
            n = f;
        } else if (accept_name(P, "is")) {
            JNode *t = node(JN_TEST, line);
            add(t, n, NULL);
            if (accept_name(P, "not")) t->op = 1;
            if (cur(P)->kind != TK_NAME && !(cur(P)->kind == TK_OP && strchr("=!<>", cur(P)->s[0])))
                return fail(P, "a test name"), node_free(t), NULL;
            t->str = ds_strdup(cur(P)->s);
            P->i++;
            if (accept_op(P, "(")) {
                if (parse_args(P, t)) return node_free(t), NULL;
            } else if (starts_bare_arg(P)) {
                JNode *a = parse_unary(P, 0);
                if (!a) return node_free(t), NULL;
                a = parse_postfix(P, a);
                if (!a) return node_free(t), NULL;
                add(t, a, NULL);
            }
            n = t;
        } else if (accept_op(P, "(")) {
            JNode *c = node(JN_CALL, line);
            add(c, n, NULL);
            if (parse_args(P, c)) return node_free(c), NULL;
            n = c;
        } else {
            return n;
        }
    }
}

static int too_deep(Parser *P) {
    if (P->depth < MAX_DEPTH) return 0;
    ds_errf(P->e, "%s: line %d: expressions nested more than %d deep", P->name, cur(P)->line, MAX_DEPTH);
    return 1;
}

static JNode *parse_unary(Parser *P, int with_filter) {
    int line = cur(P)->line;
    JNode *n;
    if (is_op(P, "-") || is_op(P, "+")) {
        int op = cur(P)->s[0];
        P->i++;
        if (too_deep(P)) return NULL;
        P->depth++;
        JNode *k = parse_unary(P, 0);
        P->depth--;
        if (!k) return NULL;
        n = node(JN_UNARY, line);
        n->op = op;
        add(n, k, NULL);
    } else {
        n = parse_primary(P);
        if (n) n = parse_postfix(P, n);
    }
    if (n && with_filter) n = parse_filters(P, n);
    return n;
}

static JNode *binary(int op, JNode *l, JNode *r, int line) {
    JNode *n = node(JN_BINARY, line);
    n->op = op;
    add(n, l, NULL), add(n, r, NULL);
    return n;
}

static JNode *parse_pow(Parser *P) {
    JNode *l = parse_unary(P, 1);
    while (l && is_op(P, "**")) {
        int line = cur(P)->line;
        P->i++;
        JNode *r = parse_unary(P, 1);
        if (!r) return node_free(l), NULL;
        l = binary(JOP_POW, l, r, line);
    }
    return l;
}

static JNode *parse_mul(Parser *P) {
    JNode *l = parse_pow(P);
    while (l) {
        int op = is_op(P, "*") ? JOP_MUL : is_op(P, "/") ? JOP_DIV : is_op(P, "//") ? JOP_FLOORDIV : is_op(P, "%") ? JOP_MOD : 0;
        if (!op) break;
        int line = cur(P)->line;
        P->i++;
        JNode *r = parse_pow(P);
        if (!r) return node_free(l), NULL;
        l = binary(op, l, r, line);
    }
    return l;
}

static JNode *parse_add(Parser *P) {
    JNode *l = parse_mul(P);
    while (l) {
        int op = is_op(P, "+") ? JOP_ADD : is_op(P, "-") ? JOP_SUB : 0;
        if (!op) break;
        int line = cur(P)->line;
        P->i++;
        JNode *r = parse_mul(P);
        if (!r) return node_free(l), NULL;
        l = binary(op, l, r, line);
    }
    return l;
}

static JNode *parse_concat(Parser *P) {
    JNode *l = parse_add(P);
    while (l && is_op(P, "~")) {
        int line = cur(P)->line;
        P->i++;
        JNode *r = parse_add(P);
        if (!r) return node_free(l), NULL;
        l = binary(JOP_CONCAT, l, r, line);
    }
    return l;
}

static JNode *parse_compare(Parser *P) {
    JNode *l = parse_concat(P);
    while (l) {
        int line = cur(P)->line, op = 0;
        if (is_op(P, "==")) op = JOP_EQ;
        else if (is_op(P, "!=")) op = JOP_NE;
        else if (is_op(P, "<")) op = JOP_LT;
        else if (is_op(P, ">")) op = JOP_GT;
        else if (is_op(P, "<=")) op = JOP_LE;
        else if (is_op(P, ">=")) op = JOP_GE;
        else if (is_name(P, "in")) op = JOP_IN;
        else if (is_name(P, "not") && P->t[P->i + 1].kind == TK_NAME && !strcmp(P->t[P->i + 1].s, "in")) op = JOP_NOTIN, P->i++;
        if (!op) break;
        P->i++;
        // a < b < c chains are rare in templates and mean (a < b) and (b < c) in Jinja
        if (l->kind == JN_BINARY && l->op >= JOP_EQ && l->op <= JOP_NOTIN) {
            ds_errf(P->e, "%s: line %d: chained comparisons are not supported", P->name, line);
            return node_free(l), NULL;
        }
        JNode *r = parse_concat(P);
        if (!r) return node_free(l), NULL;
        l = binary(op, l, r, line);
    }
    return l;
}

static JNode *parse_not(Parser *P) {
    int line = cur(P)->line;
    if (accept_name(P, "not")) {
        if (too_deep(P)) return NULL;
        P->depth++;
        JNode *k = parse_not(P);
        P->depth--;
        if (!k) return NULL;
        JNode *n = node(JN_UNARY, line);
        n->op = '!';
        add(n, k, NULL);
        return n;
    }
    return parse_compare(P);
}

static JNode *parse_and(Parser *P) {
    JNode *l = parse_not(P);
    while (l && is_name(P, "and")) {
        int line = cur(P)->line;
        P->i++;
        JNode *r = parse_not(P);
        if (!r) return node_free(l), NULL;
        l = binary(JOP_AND, l, r, line);
    }
    return l;
}

static JNode *parse_or(Parser *P) {
    JNode *l = parse_and(P);
    while (l && is_name(P, "or")) {
        int line = cur(P)->line;
        P->i++;
        JNode *r = parse_and(P);
        if (!r) return node_free(l), NULL;
        l = binary(JOP_OR, l, r, line);
    }
    return l;
}

static JNode *parse_expr(Parser *P) {
    if (P->depth >= MAX_DEPTH) {
        ds_errf(P->e, "%s: line %d: expressions nested more than %d deep", P->name, cur(P)->line, MAX_DEPTH);
        return NULL;
    }
    P->depth++;
    JNode *v = parse_cond(P);
    P->depth--;
    return v;
}

static JNode *parse_cond(Parser *P) {
    JNode *v = parse_or(P);
    while (v && is_name(P, "if")) {
        int line = cur(P)->line;
        P->i++;
        JNode *c = parse_or(P), *alt = NULL;
        if (!c) return node_free(v), NULL;
        if (accept_name(P, "else") && !(alt = parse_expr(P))) return node_free(v), node_free(c), NULL;
        JNode *n = node(JN_COND, line);
        add(n, v, NULL), add(n, c, NULL), add(n, alt, NULL);
        v = n;
    }
    return v;
}

// An expression, or a bare tuple "a, b" (for set and for targets' values).
static JNode *parse_tuple_expr(Parser *P) {
    int line = cur(P)->line;
    JNode *first = parse_expr(P);
    if (!first || !is_op(P, ",")) return first;
    JNode *n = node(JN_TUPLE, line);
    add(n, first, NULL);
    while (accept_op(P, ",")) {
        if (cur(P)->kind == TK_BLOCK_END || cur(P)->kind == TK_VAR_END) break;
        JNode *k = parse_expr(P);
        if (!k) return node_free(n), NULL;
        add(n, k, NULL);
    }
    return n;
}

// ---- statements ------------------------------------------------------------------------------

static int parse_body(Parser *P, JNode *body, const char *const *ends, const char **ended);

static int end_block(Parser *P) {
    if (cur(P)->kind == TK_BLOCK_END) return P->i++, DS_OK;
    return fail(P, "end of statement block");
}

static int parse_targets(Parser *P, JNode *n) {
    do {
        if (cur(P)->kind != TK_NAME) return fail(P, "a variable name");
        add_target(n, cur(P)->s);
        P->i++;
    } while (accept_op(P, ","));
    return DS_OK;
}

static JNode *parse_if(Parser *P, int line) {
    JNode *n = node(JN_IF, line), *cond = parse_tuple_expr(P);
    if (!cond) return node_free(n), NULL;
    add(n, cond, NULL);
    if (end_block(P)) return node_free(n), NULL;
    static const char *const ends[] = {"elif", "else", "endif", NULL};
    const char *ended;
    JNode *body = node(JN_BODY, line);
    add(n, body, NULL);
    if (parse_body(P, body, ends, &ended)) return node_free(n), NULL;
    if (!strcmp(ended, "elif")) {
        JNode *alt = node(JN_BODY, cur(P)->line), *nested = parse_if(P, cur(P)->line);
        if (!nested) return node_free(alt), node_free(n), NULL;
        add(alt, nested, NULL);
        add(n, alt, NULL);
        return n; // the nested if consumed endif
    }
    if (!strcmp(ended, "else")) {
        if (end_block(P)) return node_free(n), NULL;
        static const char *const ends2[] = {"endif", NULL};
        JNode *alt = node(JN_BODY, line);
        add(n, alt, NULL);
        if (parse_body(P, alt, ends2, &ended)) return node_free(n), NULL;
    } else {
        add(n, NULL, NULL);
    }
    if (end_block(P)) return node_free(n), NULL;
    return n;
}

static JNode *parse_for(Parser *P, int line) {
    JNode *n = node(JN_FOR, line);
    if (parse_targets(P, n)) return node_free(n), NULL;
    if (!accept_name(P, "in")) return fail(P, "'in'"), node_free(n), NULL;
    JNode *it = parse_or(P), *filt = NULL; // `if` here filters items, it is no conditional expression
    if (!it) return node_free(n), NULL;
    add(n, it, NULL);
    if (accept_name(P, "if") && !(filt = parse_expr(P))) return node_free(n), NULL;
    if (is_name(P, "recursive")) {
        ds_errf(P->e, "%s: line %d: recursive loops are not supported", P->name, line);
        return node_free(filt), node_free(n), NULL;
    }
    if (end_block(P)) return node_free(filt), node_free(n), NULL;
    static const char *const ends[] = {"else", "endfor", NULL};
    const char *ended;
    JNode *body = node(JN_BODY, line);
    add(n, body, NULL);
    if (parse_body(P, body, ends, &ended)) return node_free(filt), node_free(n), NULL;
    if (!strcmp(ended, "else")) {
        if (end_block(P)) return node_free(filt), node_free(n), NULL;
        static const char *const ends2[] = {"endfor", NULL};
        JNode *alt = node(JN_BODY, line);
        add(n, alt, NULL);
        if (parse_body(P, alt, ends2, &ended)) return node_free(filt), node_free(n), NULL;
    } else {
        add(n, NULL, NULL);
    }
    add(n, filt, NULL);
    if (end_block(P)) return node_free(n), NULL;
    return n;
}

static JNode *parse_set(Parser *P, int line) {
    if (cur(P)->kind == TK_NAME && P->t[P->i + 1].kind == TK_OP && !strcmp(P->t[P->i + 1].s, ".")) {
        JNode *n = node(JN_SETATTR, line);
        n->str = ds_strdup(cur(P)->s);
        P->i += 2;
        if (cur(P)->kind != TK_NAME) return fail(P, "an attribute name"), node_free(n), NULL;
        add_target(n, cur(P)->s);
        P->i++;
        if (expect_op(P, "=")) return node_free(n), NULL;
        JNode *v = parse_tuple_expr(P);
        if (!v) return node_free(n), NULL;
        add(n, v, NULL);
        if (end_block(P)) return node_free(n), NULL;
        return n;
    }
    JNode *n = node(JN_SET, line);
    if (parse_targets(P, n)) return node_free(n), NULL;
    if (cur(P)->kind == TK_BLOCK_END && n->ntarget == 1) { // {% set x %}...{% endset %}
        P->i++;
        n->op = 1;
        static const char *const ends[] = {"endset", NULL};
        const char *ended;
        JNode *body = node(JN_BODY, line);
        add(n, body, NULL);
        if (parse_body(P, body, ends, &ended) || end_block(P)) return node_free(n), NULL;
        return n;
    }
    if (is_op(P, "|")) {
        ds_errf(P->e, "%s: line %d: filtered block assignments are not supported", P->name, line);
        return node_free(n), NULL;
    }
    if (expect_op(P, "=")) return node_free(n), NULL;
    JNode *v = parse_tuple_expr(P);
    if (!v) return node_free(n), NULL;
    add(n, v, NULL);
    if (end_block(P)) return node_free(n), NULL;
    return n;
}

static JNode *parse_tag(Parser *P);

static JNode *parse_statement(Parser *P) {
    if (P->depth >= MAX_DEPTH) {
        ds_errf(P->e, "%s: line %d: blocks nested more than %d deep", P->name, cur(P)->line, MAX_DEPTH);
        return NULL;
    }
    P->depth++;
    JNode *n = parse_tag(P);
    P->depth--;
    return n;
}

static JNode *parse_tag(Parser *P) {
    int line = cur(P)->line;
    if (cur(P)->kind != TK_NAME) return fail(P, "a tag name"), NULL;
    const char *tag = cur(P)->s;
    P->i++;
    if (!strcmp(tag, "if")) return parse_if(P, line);
    if (!strcmp(tag, "for")) return parse_for(P, line);
    if (!strcmp(tag, "set")) return parse_set(P, line);
    if (!strcmp(tag, "break") || !strcmp(tag, "continue")) {
        JNode *n = node(tag[0] == 'b' ? JN_BREAK : JN_CONTINUE, line);
        if (end_block(P)) return node_free(n), NULL;
        return n;
    }
    if (!strcmp(tag, "generation")) {
        JNode *n = node(JN_GENERATION, line), *body = node(JN_BODY, line);
        add(n, body, NULL);
        static const char *const ends[] = {"endgeneration", NULL};
        const char *ended;
        if (end_block(P) || parse_body(P, body, ends, &ended) || end_block(P)) return node_free(n), NULL;
        return n;
    }
    ds_errf(P->e, "%s: line %d: tag '%s' is not supported", P->name, line, tag);
    return NULL;
}

// Statements until one of ends (NULL-terminated; NULL ends = top level, until EOF). The end tag's
// name is consumed, its '%}' is not.
static int parse_body(Parser *P, JNode *body, const char *const *ends, const char **ended) {
    for (;;) {
        Tok *t = cur(P);
        if (t->kind == TK_EOF) {
            if (!ends) return DS_OK;
            return ds_errf(P->e, "%s: line %d: unexpected end of template, expected '%s'", P->name, t->line, ends[0]);
        }
        if (t->kind == TK_TEXT) {
            JNode *n = node(JN_TEXT, t->line);
            n->lit = json_stringn_nocheck(t->s, t->len);
            add(body, n, NULL);
            P->i++;
        } else if (t->kind == TK_VAR_BEGIN) {
            P->i++;
            JNode *v = parse_tuple_expr(P);
            if (!v) return DS_ERR;
            if (cur(P)->kind != TK_VAR_END) return node_free(v), fail(P, "end of print statement");
            P->i++;
            JNode *n = node(JN_OUTPUT, t->line);
            add(n, v, NULL);
            add(body, n, NULL);
        } else if (t->kind == TK_BLOCK_BEGIN) {
            Tok *nm = &P->t[P->i + 1];
            for (int k = 0; ends && ends[k]; k++)
                if (nm->kind == TK_NAME && !strcmp(nm->s, ends[k])) {
                    P->i += 2;
                    *ended = ends[k];
                    return DS_OK;
                }
            if (nm->kind == TK_NAME && (!strncmp(nm->s, "end", 3) || !strcmp(nm->s, "elif") || !strcmp(nm->s, "else")))
                return ds_errf(P->e, "%s: line %d: unexpected '%s'", P->name, nm->line, nm->s);
            P->i++;
            JNode *s = parse_statement(P);
            if (!s) return DS_ERR;
            add(body, s, NULL);
        } else {
            return fail(P, "template text or a tag");
        }
    }
}

JinjaTemplate *jinja_parse(const char *src, size_t len, const char *name, DsErr *e) {
    Lexer L = {.src = src, .name = name, .n = len, .line = 1, .e = e};
    JinjaTemplate *t = NULL;
    if (lex(&L) == DS_OK) {
        Parser P = {.t = L.t, .nt = L.nt, .name = name, .e = e};
        JNode *root = node(JN_BODY, 1);
        if (parse_body(&P, root, NULL, NULL) == DS_OK) {
            t = ds_calloc(1, sizeof *t);
            t->name = ds_strdup(name);
            t->root = root;
        } else {
            node_free(root);
        }
    }
    for (int i = 0; i < L.nt; i++) free(L.t[i].s);
    free(L.t);
    return t;
}

void jinja_free(JinjaTemplate *t) {
    if (!t) return;
    node_free(t->root);
    free(t->name);
    free(t);
}
