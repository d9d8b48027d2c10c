// jinja_eval.c — renders a Jinja syntax tree: Python's value semantics for the operations chat
// templates use (str(), ==, in, slicing by code point, str methods), Jinja's scoping (a for loop's
// body is a new scope each iteration; if does not open one), and transformers' tojson
// (json.dumps with ensure_ascii=False).
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "text/jinja_ast.h"

typedef struct Ctx {
    const JinjaTemplate *t;
    const json_t *vars;  // the caller's variables (borrowed)
    json_t **frame;      // scopes, innermost last; frame[0] is the template's own
    int nframe, cap;
    json_t *namespaces;  // every namespace() made (an array), so only they take attribute sets
    DsBuf *out;
    DsErr *e;
    int brk, cont;       // a pending {% break %} / {% continue %}
    json_t *undef;       // stored for a variable or namespace attribute set to an undefined value
} Ctx;

static int err(Ctx *c, const JNode *n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int err(Ctx *c, const JNode *n, const char *fmt, ...) {
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return ds_errf(c->e, "%s: line %d: %s", c->t->name, n ? n->line : 0, msg);
}

// ---- values ----------------------------------------------------------------------------------
// A value is a json_t reference; NULL is Jinja's undefined.

static const char *type_name(const json_t *v) {
    if (!v) return "undefined";
    switch (json_typeof(v)) {
    case JSON_NULL: return "none";
    case JSON_TRUE: case JSON_FALSE: return "bool";
    case JSON_INTEGER: return "int";
    case JSON_REAL: return "float";
    case JSON_STRING: return "string";
    case JSON_ARRAY: return "list";
    default: return "dict";
    }
}

static int is_num(const json_t *v) { return v && (json_is_integer(v) || json_is_real(v)); }
static double num(const json_t *v) { return json_is_integer(v) ? (double)json_integer_value(v) : json_real_value(v); }
static json_t *str_new(const char *s, size_t n) { return json_stringn_nocheck(s, n); }

static int is_namespace(const Ctx *c, const json_t *v) {
    for (size_t i = 0; i < json_array_size(c->namespaces); i++)
        if (json_array_get(c->namespaces, i) == v) return 1;
    return 0;
}

static int truthy(const json_t *v) {
    if (!v) return 0;
    switch (json_typeof(v)) {
    case JSON_NULL: case JSON_FALSE: return 0;
    case JSON_TRUE: return 1;
    case JSON_INTEGER: return json_integer_value(v) != 0;
    case JSON_REAL: return json_real_value(v) != 0;
    case JSON_STRING: return json_string_length(v) > 0;
    case JSON_ARRAY: return json_array_size(v) > 0;
    default: return json_object_size(v) > 0;
    }
}

// UTF-8 code points: the length of the one starting at s[0] (1 for a stray byte).
static size_t cp_len(const char *s, size_t n) {
    unsigned char b = (unsigned char)s[0];
    size_t k = b < 0x80 ? 1 : b < 0xe0 ? 2 : b < 0xf0 ? 3 : 4;
    return k <= n ? k : n;
}

static unsigned long cp_value(const char *s, size_t k) {
    unsigned char b = (unsigned char)s[0];
    if (k == 1) return b;
    unsigned long v = b & (0x3f >> (k - 1));
    for (size_t i = 1; i < k; i++) v = v << 6 | ((unsigned char)s[i] & 0x3f);
    return v;
}

static size_t cp_count(const char *s, size_t n) {
    size_t k = 0;
    for (size_t i = 0; i < n; i += cp_len(s + i, n - i)) k++;
    return k;
}

// Python's str.isspace for one code point.
static int py_space(unsigned long c) {
    return (c >= 9 && c <= 13) || (c >= 0x1c && c <= 0x20) || c == 0x85 || c == 0xa0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 || c == 0x202f || c == 0x205f || c == 0x3000;
}

// Python's float repr: the shortest digits that read back, in fixed notation for exponents -4..15.
static void py_float(DsBuf *b, double x) {
    if (isnan(x)) return dsbuf_printf(b, "nan");
    if (isinf(x)) return dsbuf_printf(b, x < 0 ? "-inf" : "inf");
    char s[40];
    int p;
    for (p = 1; p <= 17; p++) {
        snprintf(s, sizeof s, "%.*e", p - 1, x);
        if (strtod(s, NULL) == x) break;
    }
    char digits[24];
    int nd = 0, neg = s[0] == '-';
    const char *q = s + neg;
    for (; *q && *q != 'e'; q++)
        if (*q != '.') digits[nd++] = *q;
    int exp10 = atoi(q + 1);
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    if (neg) dsbuf_append(b, "-", 1);
    if (exp10 < -4 || exp10 >= 16) {
        dsbuf_append(b, digits, 1);
        if (nd > 1) dsbuf_append(b, ".", 1), dsbuf_append(b, digits + 1, (size_t)nd - 1);
        dsbuf_printf(b, "e%c%02d", exp10 < 0 ? '-' : '+', abs(exp10));
    } else if (exp10 >= 0) {
        for (int i = 0; i <= exp10; i++) dsbuf_append(b, i < nd ? &digits[i] : "0", 1);
        dsbuf_append(b, ".", 1);
        if (nd > exp10 + 1) dsbuf_append(b, digits + exp10 + 1, (size_t)(nd - exp10 - 1));
        else dsbuf_append(b, "0", 1);
    } else {
        dsbuf_append(b, "0.", 2);
        for (int i = 0; i < -exp10 - 1; i++) dsbuf_append(b, "0", 1);
        dsbuf_append(b, digits, (size_t)nd);
    }
}

static int py_repr(Ctx *c, const JNode *n, const json_t *v, DsBuf *b);

// str(v) as Python prints it; lists and dicts as their repr.
static int py_str(Ctx *c, const JNode *n, const json_t *v, DsBuf *b) {
    if (!v) return DS_OK;
    switch (json_typeof(v)) {
    case JSON_STRING: dsbuf_append(b, json_string_value(v), json_string_length(v)); return DS_OK;
    case JSON_NULL: dsbuf_printf(b, "None"); return DS_OK;
    case JSON_TRUE: dsbuf_printf(b, "True"); return DS_OK;
    case JSON_FALSE: dsbuf_printf(b, "False"); return DS_OK;
    case JSON_INTEGER: dsbuf_printf(b, "%" JSON_INTEGER_FORMAT, json_integer_value(v)); return DS_OK;
    case JSON_REAL: py_float(b, json_real_value(v)); return DS_OK;
    default:
        if (is_namespace(c, v)) return err(c, n, "printing a namespace is not supported");
        return py_repr(c, n, v, b);
    }
}

static int py_repr(Ctx *c, const JNode *n, const json_t *v, DsBuf *b) {
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        size_t len = json_string_length(v);
        char q = memchr(s, '\'', len) && !memchr(s, '"', len) ? '"' : '\'';
        dsbuf_append(b, &q, 1);
        for (size_t i = 0; i < len; i++) {
            unsigned char ch = (unsigned char)s[i];
            if (ch >= 0x80) return err(c, n, "printing a list or dict that holds non-ASCII text is not supported");
            if (ch == '\\' || ch == (unsigned char)q) dsbuf_printf(b, "\\%c", ch);
            else if (ch == '\n') dsbuf_printf(b, "\\n");
            else if (ch == '\r') dsbuf_printf(b, "\\r");
            else if (ch == '\t') dsbuf_printf(b, "\\t");
            else if (ch < 0x20 || ch == 0x7f) dsbuf_printf(b, "\\x%02x", ch);
            else dsbuf_append(b, &s[i], 1);
        }
        dsbuf_append(b, &q, 1);
        return DS_OK;
    }
    if (json_is_array(v)) {
        dsbuf_append(b, "[", 1);
        for (size_t i = 0; i < json_array_size(v); i++) {
            json_t *x = json_array_get(v, i);
            // items() and tuple literals are lists here; Python would print them as (a, b)
            if (json_is_array(x)) return err(c, n, "printing a list that holds lists is not supported");
            if (i) dsbuf_append(b, ", ", 2);
            if (py_repr(c, n, x, b)) return DS_ERR;
        }
        dsbuf_append(b, "]", 1);
        return DS_OK;
    }
    if (json_is_object(v)) {
        if (is_namespace(c, v)) return err(c, n, "printing a namespace is not supported");
        dsbuf_append(b, "{", 1);
        const char *k;
        json_t *x;
        int first = 1;
        json_object_foreach((json_t *)v, k, x) {
            if (!first) dsbuf_append(b, ", ", 2);
            first = 0;
            json_t *ks = json_string(k);
            int rc = py_repr(c, n, ks, b);
            json_decref(ks);
            if (rc) return DS_ERR;
            dsbuf_append(b, ": ", 2);
            if (json_is_array(x)) return err(c, n, "printing a dict that holds lists is not supported");
            if (py_repr(c, n, x, b)) return DS_ERR;
        }
        dsbuf_append(b, "}", 1);
        return DS_OK;
    }
    return py_str(c, n, v, b);
}

// json.dumps(v, ensure_ascii=False, indent=indent, sort_keys=sort) as transformers' tojson calls it.
static void json_str(DsBuf *b, const char *s, size_t len) {
    dsbuf_append(b, "\"", 1);
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"') dsbuf_printf(b, "\\\"");
        else if (ch == '\\') dsbuf_printf(b, "\\\\");
        else if (ch == '\n') dsbuf_printf(b, "\\n");
        else if (ch == '\r') dsbuf_printf(b, "\\r");
        else if (ch == '\t') dsbuf_printf(b, "\\t");
        else if (ch == '\b') dsbuf_printf(b, "\\b");
        else if (ch == '\f') dsbuf_printf(b, "\\f");
        else if (ch < 0x20) dsbuf_printf(b, "\\u%04x", ch);
        else dsbuf_append(b, &s[i], 1);
    }
    dsbuf_append(b, "\"", 1);
}

static int cmp_keys(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

static int py_json(Ctx *c, const JNode *n, const json_t *v, int indent, int sort, int level, DsBuf *b) {
    if (!v) return err(c, n, "tojson of an undefined value");
    if (is_namespace(c, v)) return err(c, n, "tojson of a namespace is not supported");
    switch (json_typeof(v)) {
    case JSON_NULL: dsbuf_printf(b, "null"); return DS_OK;
    case JSON_TRUE: dsbuf_printf(b, "true"); return DS_OK;
    case JSON_FALSE: dsbuf_printf(b, "false"); return DS_OK;
    case JSON_INTEGER: dsbuf_printf(b, "%" JSON_INTEGER_FORMAT, json_integer_value(v)); return DS_OK;
    case JSON_REAL: {
        double x = json_real_value(v);
        if (isnan(x)) dsbuf_printf(b, "NaN");
        else if (isinf(x)) dsbuf_printf(b, x < 0 ? "-Infinity" : "Infinity");
        else py_float(b, x);
        return DS_OK;
    }
    case JSON_STRING: json_str(b, json_string_value(v), json_string_length(v)); return DS_OK;
    default: break;
    }
    int arr = json_is_array(v);
    size_t cnt = arr ? json_array_size(v) : json_object_size(v);
    if (cnt == 0) return dsbuf_printf(b, arr ? "[]" : "{}"), DS_OK;
    const char **keys = NULL;
    if (!arr) {
        keys = ds_malloc(sizeof *keys * cnt);
        size_t i = 0;
        const char *k;
        json_t *x;
        json_object_foreach((json_t *)v, k, x) keys[i++] = k;
        if (sort) qsort(keys, cnt, sizeof *keys, cmp_keys);
    }
    dsbuf_append(b, arr ? "[" : "{", 1);
    int rc = DS_OK;
    for (size_t i = 0; i < cnt && !rc; i++) {
        if (i) dsbuf_append(b, ",", 1);
        if (indent >= 0) dsbuf_printf(b, "\n%*s", indent * (level + 1), "");
        else if (i) dsbuf_append(b, " ", 1);
        if (!arr) {
            json_str(b, keys[i], strlen(keys[i]));
            dsbuf_append(b, ": ", 2);
        }
        rc = py_json(c, n, arr ? json_array_get(v, i) : json_object_get(v, keys[i]), indent, sort, level + 1, b);
    }
    if (!rc && indent >= 0) dsbuf_printf(b, "\n%*s", indent * level, "");
    dsbuf_append(b, arr ? "]" : "}", 1);
    free(keys);
    return rc;
}

// Python ==, with Jinja's undefined equal only to undefined.
static int py_eq(const json_t *a, const json_t *b) {
    if (!a || !b) return !a && !b;
    if (is_num(a) && is_num(b)) {
        if (json_is_integer(a) && json_is_integer(b)) return json_integer_value(a) == json_integer_value(b);
        return num(a) == num(b);
    }
    if (json_is_boolean(a) || json_is_boolean(b)) { // True == 1 in Python
        json_int_t x = json_is_boolean(a) ? json_is_true(a) : json_is_integer(a) ? json_integer_value(a) : -2;
        json_int_t y = json_is_boolean(b) ? json_is_true(b) : json_is_integer(b) ? json_integer_value(b) : -3;
        if (json_is_real(a) || json_is_real(b)) return (json_is_real(a) ? json_real_value(a) : (double)x) == (json_is_real(b) ? json_real_value(b) : (double)y);
        return x == y;
    }
    if (json_typeof(a) != json_typeof(b)) return 0;
    if (json_is_string(a))
        return json_string_length(a) == json_string_length(b) &&
               !memcmp(json_string_value(a), json_string_value(b), json_string_length(a));
    if (json_is_array(a)) {
        if (json_array_size(a) != json_array_size(b)) return 0;
        for (size_t i = 0; i < json_array_size(a); i++)
            if (!py_eq(json_array_get(a, i), json_array_get(b, i))) return 0;
        return 1;
    }
    if (json_is_object(a)) {
        if (a == b) return 1;
        if (json_object_size(a) != json_object_size(b)) return 0;
        const char *k;
        json_t *x;
        json_object_foreach((json_t *)a, k, x) if (!py_eq(x, json_object_get(b, k))) return 0;
        return 1;
    }
    return 1; // null
}

// ---- scopes ----------------------------------------------------------------------------------

static void push_frame(Ctx *c) {
    if (c->nframe == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 8;
        c->frame = ds_realloc(c->frame, sizeof *c->frame * (size_t)c->cap);
    }
    c->frame[c->nframe++] = json_object();
}

static void pop_frame(Ctx *c) { json_decref(c->frame[--c->nframe]); }

static json_t *lookup(const Ctx *c, const char *name) {
    for (int i = c->nframe - 1; i >= 0; i--) {
        json_t *v = json_object_get(c->frame[i], name);
        if (v) return v == c->undef ? NULL : v;
    }
    return json_object_get(c->vars, name);
}

static void assign(Ctx *c, const char *name, json_t *v) { // steals v; NULL sets undefined
    json_object_set_new(c->frame[c->nframe - 1], name, v ? v : json_incref(c->undef));
}

// ---- expressions -----------------------------------------------------------------------------

static int ev(Ctx *c, const JNode *n, json_t **out);

static int undefined_err(Ctx *c, const JNode *n) {
    if (n->kind == JN_NAME) return err(c, n, "'%s' is undefined", n->str);
    if (n->kind == JN_ATTR) return err(c, n, "attribute '%s' of an undefined value", n->str);
    return err(c, n, "an undefined value is used");
}

static const char *const DICT_METHODS[] = {"clear", "copy", "fromkeys", "get", "items", "keys", "pop",
                                           "popitem", "setdefault", "update", "values", NULL};
static const char *const LIST_METHODS[] = {"append", "clear", "copy", "count", "extend", "index", "insert",
                                           "pop", "remove", "reverse", "sort", NULL};
static const char *const STR_METHODS[] = {"capitalize", "count", "endswith", "find", "format", "index",
                                          "isalnum", "isalpha", "isdigit", "islower", "isspace", "isupper",
                                          "join", "lower", "lstrip", "replace", "rfind", "rsplit", "rstrip",
                                          "split", "splitlines", "startswith", "strip", "title", "upper", NULL};

static int in_list(const char *const *l, const char *s) {
    for (; *l; l++)
        if (!strcmp(*l, s)) return 1;
    return 0;
}

static int is_method(const json_t *v, const char *name) {
    if (json_is_object(v)) return in_list(DICT_METHODS, name);
    if (json_is_array(v)) return in_list(LIST_METHODS, name);
    if (json_is_string(v)) return in_list(STR_METHODS, name);
    return 0;
}

// obj.name or obj[name]: Jinja returns undefined when there is nothing there (on any defined value).
static json_t *get_item(const json_t *obj, const json_t *key) {
    if (json_is_object(obj) && json_is_string(key)) return json_incref(json_object_get(obj, json_string_value(key)));
    if ((json_is_array(obj) || json_is_string(obj)) && (json_is_integer(key) || json_is_boolean(key))) {
        json_int_t i = json_is_integer(key) ? json_integer_value(key) : json_is_true(key);
        if (json_is_array(obj)) {
            json_int_t len = (json_int_t)json_array_size(obj);
            if (i < 0) i += len;
            return i >= 0 && i < len ? json_incref(json_array_get(obj, (size_t)i)) : NULL;
        }
        const char *s = json_string_value(obj);
        size_t len = json_string_length(obj);
        json_int_t cps = (json_int_t)cp_count(s, len);
        if (i < 0) i += cps;
        if (i < 0 || i >= cps) return NULL;
        size_t at = 0;
        for (json_int_t k = 0; k < i; k++) at += cp_len(s + at, len - at);
        return str_new(s + at, cp_len(s + at, len - at));
    }
    return NULL;
}

// Python's slice index rules (PySlice_AdjustIndices).
static int eval_slice(Ctx *c, const JNode *n, const json_t *obj, json_t **out) {
    json_int_t bound[3] = {0, 0, 1};
    int given[3] = {0, 0, 0};
    for (int k = 0; k < 3; k++) {
        if (!n->kid[k + 1]) continue;
        json_t *v;
        if (ev(c, n->kid[k + 1], &v)) return DS_ERR;
        if (v && !json_is_null(v)) {
            if (!json_is_integer(v)) {
                json_decref(v);
                return err(c, n, "slice indices must be integers");
            }
            bound[k] = json_integer_value(v), given[k] = 1;
        }
        json_decref(v);
    }
    json_int_t step = bound[2];
    if (step == 0) return err(c, n, "slice step cannot be zero");
    int is_str = json_is_string(obj);
    if (!is_str && !json_is_array(obj)) return err(c, n, "cannot slice a %s", type_name(obj));
    const char *s = is_str ? json_string_value(obj) : NULL;
    size_t slen = is_str ? json_string_length(obj) : 0;
    json_int_t len = is_str ? (json_int_t)cp_count(s, slen) : (json_int_t)json_array_size(obj);
    json_int_t start, stop;
    if (!given[0]) start = step < 0 ? len - 1 : 0;
    else {
        start = bound[0];
        if (start < 0) start += len, start = start < 0 ? (step < 0 ? -1 : 0) : start;
        else if (start >= len) start = step < 0 ? len - 1 : len;
    }
    if (!given[1]) stop = step < 0 ? -1 : len;
    else {
        stop = bound[1];
        if (stop < 0) stop += len, stop = stop < 0 ? (step < 0 ? -1 : 0) : stop;
        else if (stop >= len) stop = step < 0 ? len - 1 : len;
    }
    // code point offsets of a string, so that s[i] is cheap
    size_t *off = NULL;
    if (is_str) {
        off = ds_malloc(sizeof *off * (size_t)(len + 1));
        size_t at = 0;
        for (json_int_t i = 0; i < len; i++) off[i] = at, at += cp_len(s + at, slen - at);
        off[len] = slen;
    }
    DsBuf b = {0};
    dsbuf_append(&b, "", 0);
    json_t *list = is_str ? NULL : json_array();
    for (json_int_t i = start; step > 0 ? i < stop : i > stop; i += step) {
        if (is_str) dsbuf_append(&b, s + off[i], off[i + 1] - off[i]);
        else json_array_append(list, json_array_get(obj, (size_t)i));
    }
    *out = is_str ? str_new(b.data, b.len) : list;
    dsbuf_free(&b);
    free(off);
    return DS_OK;
}

// Arguments of a call or filter: positional values (after skip leading kids) and keywords.
typedef struct Args {
    json_t *pos[8];
    int npos;
    json_t *kw; // object
} Args;

static void args_free(Args *a) {
    for (int i = 0; i < a->npos; i++) json_decref(a->pos[i]);
    json_decref(a->kw);
}

static int eval_args(Ctx *c, const JNode *n, int first, Args *a) {
    memset(a, 0, sizeof *a);
    a->kw = json_object();
    for (int i = first; i < n->nkid; i++) {
        json_t *v;
        if (ev(c, n->kid[i], &v)) return args_free(a), DS_ERR;
        if (n->argname[i]) {
            json_object_set_new(a->kw, n->argname[i], v ? v : json_null());
            if (!v) return args_free(a), undefined_err(c, n->kid[i]);
        } else {
            if (a->npos == (int)DS_ARRAY_LEN(a->pos)) return json_decref(v), args_free(a), err(c, n, "too many arguments");
            a->pos[a->npos++] = v;
        }
    }
    return DS_OK;
}

// Argument i: positional, else the keyword; NULL when not given.
static json_t *arg(const Args *a, int i, const char *kw) {
    if (i < a->npos) return a->pos[i];
    return kw ? json_object_get(a->kw, kw) : NULL;
}

static int check_args(Ctx *c, const JNode *n, const Args *a, const char *what, int maxpos, const char *const *kws) {
    if (a->npos > maxpos) return err(c, n, "%s takes at most %d arguments", what, maxpos);
    const char *k;
    json_t *v;
    json_object_foreach(a->kw, k, v) {
        int ok = 0;
        for (int i = 0; kws && kws[i]; i++) ok |= !strcmp(kws[i], k);
        if (!ok) return err(c, n, "%s: argument '%s' is not supported", what, k);
    }
    return DS_OK;
}

static int cp_in(const char *set, size_t n, const char *p, size_t k);

// str.strip/lstrip/rstrip: which = 3 both, 1 left, 2 right; chars NULL = whitespace.
static json_t *py_strip(const char *s, size_t len, const json_t *chars, int which) {
    const char *cs = chars && json_is_string(chars) ? json_string_value(chars) : NULL;
    size_t cl = cs ? json_string_length(chars) : 0;
    size_t a = 0, b = len;
#define STRIPPABLE(p, k) (cs ? cp_in(cs, cl, p, k) : py_space(cp_value(p, k)))
    if (which & 1)
        while (a < b) {
            size_t k = cp_len(s + a, b - a);
            if (!STRIPPABLE(s + a, k)) break;
            a += k;
        }
    if (which & 2)
        while (b > a) {
            size_t e = b - 1;
            while (e > a && ((unsigned char)s[e] & 0xc0) == 0x80) e--;
            if (!STRIPPABLE(s + e, b - e)) break;
            b = e;
        }
#undef STRIPPABLE
    return str_new(s + a, b - a);
}

static int cp_in(const char *set, size_t n, const char *p, size_t k) {
    for (size_t i = 0; i < n; i += cp_len(set + i, n - i))
        if (cp_len(set + i, n - i) == k && !memcmp(set + i, p, k)) return 1;
    return 0;
}

// str.split(sep=None, maxsplit=-1) (rsplit when right: only with maxsplit, splitting from the end).
static json_t *py_split(const char *s, size_t len, const json_t *sep, json_int_t maxsplit) {
    json_t *out = json_array();
    if (!sep || json_is_null(sep)) { // runs of whitespace; none at the ends
        size_t i = 0;
        json_int_t splits = 0;
        for (;;) {
            while (i < len && py_space(cp_value(s + i, cp_len(s + i, len - i)))) i += cp_len(s + i, len - i);
            if (i >= len) break;
            size_t j = i;
            if (maxsplit >= 0 && splits >= maxsplit) {
                size_t e = len;
                while (e > i) { // the rest, without trailing whitespace
                    size_t p = e - 1;
                    while (p > i && ((unsigned char)s[p] & 0xc0) == 0x80) p--;
                    if (!py_space(cp_value(s + p, e - p))) break;
                    e = p;
                }
                json_array_append_new(out, str_new(s + i, e - i));
                break;
            }
            while (j < len && !py_space(cp_value(s + j, cp_len(s + j, len - j)))) j += cp_len(s + j, len - j);
            json_array_append_new(out, str_new(s + i, j - i));
            splits++;
            i = j;
        }
        return out;
    }
    const char *p = json_string_value(sep);
    size_t pl = json_string_length(sep), i = 0;
    json_int_t splits = 0;
    for (;;) {
        const char *hit = NULL;
        if (maxsplit < 0 || splits < maxsplit)
            for (size_t k = i; k + pl <= len; k++)
                if (!memcmp(s + k, p, pl)) {
                    hit = s + k;
                    break;
                }
        if (!hit) {
            json_array_append_new(out, str_new(s + i, len - i));
            return out;
        }
        json_array_append_new(out, str_new(s + i, (size_t)(hit - (s + i))));
        i = (size_t)(hit - s) + pl;
        splits++;
    }
}

static json_t *py_replace(const char *s, size_t len, const json_t *old, const json_t *new_, json_int_t count) {
    const char *o = json_string_value(old), *r = json_string_value(new_);
    size_t ol = json_string_length(old), rl = json_string_length(new_);
    DsBuf b = {0};
    dsbuf_append(&b, "", 0);
    size_t i = 0;
    json_int_t done = 0;
    if (ol == 0) { // Python inserts new between every character
        for (;;) {
            if (count < 0 || done < count) dsbuf_append(&b, r, rl), done++;
            if (i >= len) break;
            size_t k = cp_len(s + i, len - i);
            dsbuf_append(&b, s + i, k);
            i += k;
        }
    } else {
        while (i < len) {
            if ((count < 0 || done < count) && i + ol <= len && !memcmp(s + i, o, ol)) {
                dsbuf_append(&b, r, rl);
                i += ol, done++;
            } else {
                dsbuf_append(&b, s + i, 1), i++;
            }
        }
    }
    json_t *v = str_new(b.data, b.len);
    dsbuf_free(&b);
    return v;
}

// Case mapping for ASCII letters only: a non-ASCII letter would need Unicode tables, so its text
// is refused rather than left unchanged.
static int ascii_case(Ctx *c, const JNode *n, const char *s, size_t len, int mode, json_t **out) {
    DsBuf b = {0};
    dsbuf_append(&b, "", 0);
    int word_start = 1;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch >= 0x80) {
            dsbuf_free(&b);
            return err(c, n, "changing the case of non-ASCII text is not supported");
        }
        int alpha = (ch | 32) >= 'a' && (ch | 32) <= 'z';
        int up = mode == 'U' || ((mode == 'T' || (mode == 'C' && i == 0)) && word_start);
        if (mode == 'C' && i > 0) up = 0;
        if (alpha) ch = up ? (unsigned char)(ch & ~32) : (unsigned char)(ch | 32);
        word_start = mode == 'T' ? !alpha : 0;
        dsbuf_append(&b, &ch, 1);
    }
    *out = str_new(b.data, b.len);
    dsbuf_free(&b);
    return DS_OK;
}

static int call_method(Ctx *c, const JNode *n, const json_t *obj, const char *m, Args *a, json_t **out) {
    if (json_is_object(obj)) {
        if (!strcmp(m, "items") || !strcmp(m, "keys") || !strcmp(m, "values")) {
            if (a->npos || json_object_size(a->kw)) return err(c, n, "%s() takes no arguments", m);
            json_t *l = json_array();
            const char *k;
            json_t *v;
            json_object_foreach((json_t *)obj, k, v) {
                if (m[0] == 'k') json_array_append_new(l, json_string(k));
                else if (m[0] == 'v') json_array_append(l, v);
                else json_array_append_new(l, json_pack("[sO]", k, v));
            }
            *out = l;
            return DS_OK;
        }
        if (!strcmp(m, "get")) {
            if (check_args(c, n, a, "get()", 2, NULL)) return DS_ERR;
            if (a->npos < 1) return err(c, n, "get() needs a key");
            json_t *v = json_is_string(a->pos[0]) ? json_object_get(obj, json_string_value(a->pos[0])) : NULL;
            *out = json_incref(v ? v : a->npos > 1 && a->pos[1] ? a->pos[1] : json_null());
            if (!v && a->npos > 1 && !a->pos[1]) *out = NULL;
            return DS_OK;
        }
        return err(c, n, "dict method '%s' is not supported", m);
    }
    if (!json_is_string(obj)) return err(c, n, "%s method '%s' is not supported", type_name(obj), m);
    const char *s = json_string_value(obj);
    size_t len = json_string_length(obj);
    static const char *const none[] = {NULL};
    if (!strcmp(m, "startswith") || !strcmp(m, "endswith")) {
        if (check_args(c, n, a, m, 1, none) || a->npos != 1) return err(c, n, "%s() takes one argument", m);
        json_t *p = a->pos[0];
        int hit = 0;
        for (size_t i = 0; i < (json_is_array(p) ? json_array_size(p) : 1); i++) {
            json_t *x = json_is_array(p) ? json_array_get(p, i) : p;
            if (!json_is_string(x)) return err(c, n, "%s() needs a string, not %s", m, type_name(x));
            size_t pl = json_string_length(x);
            if (pl <= len && !memcmp(m[0] == 's' ? s : s + len - pl, json_string_value(x), pl)) hit = 1;
        }
        *out = json_boolean(hit);
        return DS_OK;
    }
    if (!strcmp(m, "strip") || !strcmp(m, "lstrip") || !strcmp(m, "rstrip")) {
        if (check_args(c, n, a, m, 1, none)) return DS_ERR;
        json_t *chars = arg(a, 0, NULL);
        if (chars && !json_is_string(chars) && !json_is_null(chars)) return err(c, n, "%s() needs a string", m);
        *out = py_strip(s, len, chars && json_is_string(chars) ? chars : NULL, m[0] == 'l' ? 1 : m[0] == 'r' ? 2 : 3);
        return DS_OK;
    }
    if (!strcmp(m, "split")) {
        static const char *const kws[] = {"sep", "maxsplit", NULL};
        if (check_args(c, n, a, m, 2, kws)) return DS_ERR;
        json_t *sep = arg(a, 0, "sep"), *mx = arg(a, 1, "maxsplit");
        if (sep && !json_is_null(sep) && (!json_is_string(sep) || json_string_length(sep) == 0))
            return err(c, n, "split() needs a non-empty string separator");
        if (mx && !json_is_integer(mx)) return err(c, n, "split(): maxsplit must be an integer");
        *out = py_split(s, len, sep, mx ? json_integer_value(mx) : -1);
        return DS_OK;
    }
    if (!strcmp(m, "replace")) {
        if (check_args(c, n, a, m, 3, none) || a->npos < 2 || !json_is_string(a->pos[0]) || !json_is_string(a->pos[1]) ||
            (a->npos == 3 && !json_is_integer(a->pos[2])))
            return err(c, n, "replace() takes two strings and an optional count");
        *out = py_replace(s, len, a->pos[0], a->pos[1], a->npos == 3 ? json_integer_value(a->pos[2]) : -1);
        return DS_OK;
    }
    if (!strcmp(m, "upper") || !strcmp(m, "lower") || !strcmp(m, "title") || !strcmp(m, "capitalize")) {
        if (a->npos || json_object_size(a->kw)) return err(c, n, "%s() takes no arguments", m);
        return ascii_case(c, n, s, len, m[0] == 'u' ? 'U' : m[0] == 'l' ? 'L' : m[0] == 't' ? 'T' : 'C', out);
    }
    if (!strcmp(m, "find") || !strcmp(m, "count")) {
        if (check_args(c, n, a, m, 1, none) || a->npos != 1 || !json_is_string(a->pos[0]))
            return err(c, n, "%s() takes one string", m);
        const char *p = json_string_value(a->pos[0]);
        size_t pl = json_string_length(a->pos[0]);
        json_int_t found = -1, count = 0;
        for (size_t k = 0; k + pl <= len;) {
            if (!memcmp(s + k, p, pl)) {
                if (found < 0) found = (json_int_t)cp_count(s, k);
                count++;
                k += pl ? pl : 1;
                if (!pl && k > len) break;
            } else {
                k++;
            }
        }
        if (!pl) count = (json_int_t)cp_count(s, len) + 1;
        *out = json_integer(m[0] == 'f' ? found : count);
        return DS_OK;
    }
    if (!strcmp(m, "join")) {
        if (a->npos != 1 || !json_is_array(a->pos[0])) return err(c, n, "join() takes a list of strings");
        DsBuf b = {0};
        dsbuf_append(&b, "", 0);
        for (size_t i = 0; i < json_array_size(a->pos[0]); i++) {
            json_t *x = json_array_get(a->pos[0], i);
            if (!json_is_string(x)) return dsbuf_free(&b), err(c, n, "join() needs strings, not %s", type_name(x));
            if (i) dsbuf_append(&b, s, len);
            dsbuf_append(&b, json_string_value(x), json_string_length(x));
        }
        *out = str_new(b.data, b.len);
        dsbuf_free(&b);
        return DS_OK;
    }
    return err(c, n, "string method '%s' is not supported", m);
}

static int call(Ctx *c, const JNode *n, json_t **out) {
    const JNode *f = n->kid[0];
    *out = NULL;
    Args a;
    if (f->kind == JN_ATTR) {
        json_t *obj;
        if (ev(c, f->kid[0], &obj)) return DS_ERR;
        if (!obj) return undefined_err(c, f->kid[0]);
        if (json_is_object(obj) && is_namespace(c, obj)) {
            json_decref(obj);
            return err(c, n, "a namespace has no methods");
        }
        if (!is_method(obj, f->str)) {
            int rc = json_is_object(obj) && json_object_get(obj, f->str) ? err(c, n, "'%s' is not callable", f->str)
                                                                          : err(c, n, "%s has no method '%s'", type_name(obj), f->str);
            json_decref(obj);
            return rc;
        }
        if (eval_args(c, n, 1, &a)) return json_decref(obj), DS_ERR;
        int rc = call_method(c, n, obj, f->str, &a, out);
        args_free(&a);
        json_decref(obj);
        return rc;
    }
    if (f->kind != JN_NAME || lookup(c, f->str)) return err(c, n, "only methods and the functions raise_exception, namespace, range and dict can be called");
    if (eval_args(c, n, 1, &a)) return DS_ERR;
    int rc = DS_OK;
    if (!strcmp(f->str, "raise_exception")) {
        DsBuf b = {0};
        dsbuf_append(&b, "", 0);
        if (a.npos >= 1) rc = py_str(c, n, a.pos[0], &b);
        if (!rc) rc = err(c, n, "the template raised an error: %s", b.data);
        dsbuf_free(&b);
    } else if (!strcmp(f->str, "namespace") || !strcmp(f->str, "dict")) {
        json_t *o = json_object();
        if (a.npos > 1 || (a.npos == 1 && !json_is_object(a.pos[0]))) rc = err(c, n, "%s() takes a dict and keyword arguments", f->str);
        if (!rc && a.npos == 1) json_object_update(o, a.pos[0]);
        json_object_update(o, a.kw);
        if (f->str[0] == 'n') json_array_append(c->namespaces, o);
        if (rc) json_decref(o);
        else *out = o;
    } else if (!strcmp(f->str, "range")) {
        json_int_t b[3] = {0, 0, 1};
        if (a.npos < 1 || a.npos > 3 || json_object_size(a.kw)) rc = err(c, n, "range() takes 1 to 3 integers");
        for (int i = 0; !rc && i < a.npos; i++)
            if (!json_is_integer(a.pos[i])) rc = err(c, n, "range() takes integers");
        if (!rc) {
            if (a.npos == 1) b[1] = json_integer_value(a.pos[0]);
            else for (int i = 0; i < a.npos; i++) b[i] = json_integer_value(a.pos[i]);
            if (b[2] == 0) rc = err(c, n, "range() step must not be zero");
            else if ((b[1] - b[0]) / b[2] > 100000) rc = err(c, n, "range() of more than 100000 numbers");
        }
        if (!rc) {
            json_t *l = json_array();
            for (json_int_t i = b[0]; b[2] > 0 ? i < b[1] : i > b[1]; i += b[2]) json_array_append_new(l, json_integer(i));
            *out = l;
        }
    } else {
        rc = err(c, n, "function '%s' is not supported", f->str);
    }
    args_free(&a);
    return rc;
}

static int length_of(Ctx *c, const JNode *n, const json_t *v, json_int_t *len) {
    if (json_is_string(v)) *len = (json_int_t)cp_count(json_string_value(v), json_string_length(v));
    else if (json_is_array(v)) *len = (json_int_t)json_array_size(v);
    else if (json_is_object(v)) *len = (json_int_t)json_object_size(v);
    else if (!v) *len = 0;
    else return err(c, n, "a %s has no length", type_name(v));
    return DS_OK;
}

// Items of an iterable as a new list: lists, dict keys, string characters, undefined = empty.
static int iter_list(Ctx *c, const JNode *n, const json_t *v, json_t **out) {
    if (!v) return *out = json_array(), DS_OK;
    if (json_is_array(v)) return *out = json_copy((json_t *)v), DS_OK;
    if (json_is_object(v)) {
        if (is_namespace(c, v)) return err(c, n, "a namespace cannot be iterated");
        json_t *l = json_array();
        const char *k;
        json_t *x;
        json_object_foreach((json_t *)v, k, x) json_array_append_new(l, json_string(k));
        return *out = l, DS_OK;
    }
    if (json_is_string(v)) {
        json_t *l = json_array();
        const char *s = json_string_value(v);
        size_t len = json_string_length(v);
        for (size_t i = 0; i < len; i += cp_len(s + i, len - i)) json_array_append_new(l, str_new(s + i, cp_len(s + i, len - i)));
        return *out = l, DS_OK;
    }
    return err(c, n, "a %s cannot be iterated", type_name(v));
}

static int filter(Ctx *c, const JNode *n, json_t **out) {
    const char *f = n->str;
    json_t *v;
    *out = NULL;
    if (ev(c, n->kid[0], &v)) return DS_ERR;
    Args a;
    if (eval_args(c, n, 1, &a)) return json_decref(v), DS_ERR;
    int rc = DS_OK;
    static const char *const none[] = {NULL};
    if (!strcmp(f, "default") || !strcmp(f, "d")) {
        static const char *const kws[] = {"default_value", "boolean", NULL};
        if (!(rc = check_args(c, n, &a, f, 2, kws))) {
            json_t *dv = arg(&a, 0, "default_value"), *bo = arg(&a, 1, "boolean");
            int use = !v || (bo && truthy(bo) && !truthy(v));
            *out = use ? (dv ? json_incref(dv) : json_string("")) : json_incref(v);
        }
    } else if (!strcmp(f, "length") || !strcmp(f, "count")) {
        json_int_t len = 0;
        if (!(rc = check_args(c, n, &a, f, 0, none)) && !(rc = length_of(c, n, v, &len))) *out = json_integer(len);
    } else if (!strcmp(f, "tojson")) {
        static const char *const kws[] = {"indent", "sort_keys", "ensure_ascii", NULL};
        json_t *ind = arg(&a, 0, "indent"), *sk = json_object_get(a.kw, "sort_keys"), *ea = json_object_get(a.kw, "ensure_ascii");
        if (!(rc = check_args(c, n, &a, f, 1, kws))) {
            if ((ind && !json_is_null(ind) && !json_is_integer(ind)) || (ea && truthy(ea)))
                rc = err(c, n, "tojson: only an integer indent, sort_keys and ensure_ascii=false are supported");
        }
        if (!rc) {
            DsBuf b = {0};
            dsbuf_append(&b, "", 0);
            rc = py_json(c, n, v, ind && json_is_integer(ind) ? (int)json_integer_value(ind) : -1, sk && truthy(sk), 0, &b);
            if (!rc) *out = str_new(b.data, b.len);
            dsbuf_free(&b);
        }
    } else if (!strcmp(f, "trim")) {
        if (!(rc = check_args(c, n, &a, f, 1, none))) {
            DsBuf b = {0};
            dsbuf_append(&b, "", 0);
            if (!(rc = py_str(c, n, v, &b))) *out = py_strip(b.data, b.len, arg(&a, 0, NULL), 3);
            dsbuf_free(&b);
        }
    } else if (!strcmp(f, "string")) {
        DsBuf b = {0};
        dsbuf_append(&b, "", 0);
        if (!(rc = py_str(c, n, v, &b))) *out = str_new(b.data, b.len);
        dsbuf_free(&b);
    } else if (!strcmp(f, "upper") || !strcmp(f, "lower") || !strcmp(f, "capitalize") || !strcmp(f, "title")) {
        DsBuf b = {0};
        dsbuf_append(&b, "", 0);
        if (!(rc = py_str(c, n, v, &b))) {
            // Jinja's capitalize lowers the rest, as Python's does
            rc = ascii_case(c, n, b.data, b.len, f[0] == 'u' ? 'U' : f[0] == 'l' ? 'L' : f[0] == 't' ? 'T' : 'C', out);
        }
        dsbuf_free(&b);
    } else if (!strcmp(f, "items")) {
        if (!v) *out = json_array();
        else if (!json_is_object(v) || is_namespace(c, v)) rc = err(c, n, "items needs a dict, not %s", type_name(v));
        else {
            Args none_args = {.kw = json_object()};
            rc = call_method(c, n, v, "items", &none_args, out);
            args_free(&none_args);
        }
    } else if (!strcmp(f, "list")) {
        rc = iter_list(c, n, v, out);
    } else if (!strcmp(f, "first") || !strcmp(f, "last")) {
        json_t *l;
        if (!(rc = iter_list(c, n, v, &l))) {
            size_t k = json_array_size(l);
            *out = k ? json_incref(json_array_get(l, f[0] == 'f' ? 0 : k - 1)) : NULL;
            json_decref(l);
        }
    } else if (!strcmp(f, "reverse")) {
        if (json_is_string(v)) {
            json_t *l;
            if (!(rc = iter_list(c, n, v, &l))) {
                DsBuf b = {0};
                dsbuf_append(&b, "", 0);
                for (size_t i = json_array_size(l); i-- > 0;) dsbuf_append(&b, json_string_value(json_array_get(l, i)), json_string_length(json_array_get(l, i)));
                *out = str_new(b.data, b.len);
                dsbuf_free(&b);
                json_decref(l);
            }
        } else {
            json_t *l;
            if (!(rc = iter_list(c, n, v, &l))) {
                json_t *r = json_array();
                for (size_t i = json_array_size(l); i-- > 0;) json_array_append(r, json_array_get(l, i));
                json_decref(l);
                *out = r;
            }
        }
    } else if (!strcmp(f, "join")) {
        static const char *const kws[] = {"d", "attribute", NULL};
        json_t *l = NULL, *sep = arg(&a, 0, "d");
        if (json_object_get(a.kw, "attribute")) rc = err(c, n, "join: attribute= is not supported");
        if (!rc) rc = check_args(c, n, &a, f, 1, kws);
        if (!rc) rc = iter_list(c, n, v, &l);
        if (!rc) {
            DsBuf b = {0};
            dsbuf_append(&b, "", 0);
            for (size_t i = 0; !rc && i < json_array_size(l); i++) {
                if (i && sep) rc = py_str(c, n, sep, &b);
                if (!rc) rc = py_str(c, n, json_array_get(l, i), &b);
            }
            if (!rc) *out = str_new(b.data, b.len);
            dsbuf_free(&b);
        }
        json_decref(l);
    } else if (!strcmp(f, "int")) {
        if (json_is_integer(v)) *out = json_incref(v);
        else if (json_is_real(v)) *out = json_integer((json_int_t)json_real_value(v));
        else if (json_is_boolean(v)) *out = json_integer(json_is_true(v));
        else if (json_is_string(v)) {
            char *end;
            const char *s = json_string_value(v);
            long long x = strtoll(s, &end, 10);
            *out = end != s && *end == 0 ? json_integer(x) : json_integer(0);
        } else *out = json_integer(0);
    } else if (!strcmp(f, "abs")) {
        if (json_is_integer(v)) *out = json_integer(llabs(json_integer_value(v)));
        else if (json_is_real(v)) *out = json_real(fabs(json_real_value(v)));
        else rc = err(c, n, "abs needs a number, not %s", type_name(v));
    } else if (!strcmp(f, "safe")) {
        *out = json_incref(v);
    } else if (!strcmp(f, "replace")) {
        DsBuf b = {0};
        dsbuf_append(&b, "", 0);
        if (a.npos < 2 || !json_is_string(a.pos[0]) || !json_is_string(a.pos[1])) rc = err(c, n, "replace takes two strings");
        if (!rc) rc = py_str(c, n, v, &b);
        if (!rc) *out = py_replace(b.data, b.len, a.pos[0], a.pos[1], a.npos > 2 && json_is_integer(a.pos[2]) ? json_integer_value(a.pos[2]) : -1);
        dsbuf_free(&b);
    } else {
        rc = err(c, n, "filter \"%s\" is not supported", f);
    }
    args_free(&a);
    json_decref(v);
    return rc;
}

static int test(Ctx *c, const JNode *n, json_t **out) {
    const char *t = n->str;
    json_t *v;
    if (ev(c, n->kid[0], &v)) return DS_ERR;
    Args a;
    if (eval_args(c, n, 1, &a)) return json_decref(v), DS_ERR;
    json_t *x = arg(&a, 0, NULL);
    int r = 0, rc = DS_OK;
    if (!strcmp(t, "defined")) r = v != NULL;
    else if (!strcmp(t, "undefined")) r = v == NULL;
    else if (!strcmp(t, "none")) r = v && json_is_null(v);
    else if (!strcmp(t, "string")) r = json_is_string(v);
    else if (!strcmp(t, "number")) r = is_num(v);
    else if (!strcmp(t, "integer")) r = json_is_integer(v);
    else if (!strcmp(t, "float")) r = json_is_real(v);
    else if (!strcmp(t, "boolean")) r = json_is_boolean(v);
    else if (!strcmp(t, "true")) r = json_is_true(v);
    else if (!strcmp(t, "false")) r = json_is_false(v);
    else if (!strcmp(t, "mapping")) r = json_is_object(v);
    else if (!strcmp(t, "sequence") || !strcmp(t, "iterable")) r = json_is_array(v) || json_is_string(v) || json_is_object(v);
    else if (!strcmp(t, "odd") || !strcmp(t, "even")) {
        if (!json_is_integer(v)) rc = err(c, n, "test '%s' needs an integer", t);
        else r = (json_integer_value(v) & 1) == (t[0] == 'o');
    } else if (!strcmp(t, "divisibleby")) {
        if (!json_is_integer(v) || !json_is_integer(x) || json_integer_value(x) == 0) rc = err(c, n, "divisibleby needs integers");
        else r = json_integer_value(v) % json_integer_value(x) == 0;
    } else if (!strcmp(t, "eq") || !strcmp(t, "equalto") || !strcmp(t, "==")) r = py_eq(v, x);
    else if (!strcmp(t, "ne") || !strcmp(t, "!=")) r = !py_eq(v, x);
    else rc = err(c, n, "test '%s' is not supported", t);
    args_free(&a);
    json_decref(v);
    if (!rc) *out = json_boolean(n->op ? !r : r);
    return rc;
}

static int compare(Ctx *c, const JNode *n, int op, const json_t *l, const json_t *r, int *res) {
    int k;
    if (is_num(l) && is_num(r)) {
        if (json_is_integer(l) && json_is_integer(r))
            k = json_integer_value(l) < json_integer_value(r) ? -1 : json_integer_value(l) > json_integer_value(r);
        else
            k = num(l) < num(r) ? -1 : num(l) > num(r);
    } else if (json_is_string(l) && json_is_string(r)) {
        size_t a = json_string_length(l), b = json_string_length(r);
        k = memcmp(json_string_value(l), json_string_value(r), a < b ? a : b);
        if (!k) k = a < b ? -1 : a > b;
    } else {
        return err(c, n, "cannot compare %s and %s", type_name(l), type_name(r));
    }
    *res = op == JOP_LT ? k < 0 : op == JOP_GT ? k > 0 : op == JOP_LE ? k <= 0 : k >= 0;
    return DS_OK;
}

static int contains(Ctx *c, const JNode *n, const json_t *item, const json_t *seq, int *res) {
    *res = 0;
    if (!seq) return DS_OK;
    if (json_is_string(seq)) {
        if (!json_is_string(item)) return err(c, n, "'in <string>' needs a string on the left, not %s", type_name(item));
        const char *s = json_string_value(seq), *p = json_string_value(item);
        size_t sl = json_string_length(seq), pl = json_string_length(item);
        for (size_t i = 0; i + pl <= sl && !*res; i++) *res = !memcmp(s + i, p, pl);
        return DS_OK;
    }
    if (json_is_array(seq)) {
        for (size_t i = 0; i < json_array_size(seq) && !*res; i++) *res = py_eq(item, json_array_get(seq, i));
        return DS_OK;
    }
    if (json_is_object(seq) && !is_namespace(c, seq)) {
        *res = json_is_string(item) && json_object_get(seq, json_string_value(item));
        return DS_OK;
    }
    return err(c, n, "'in' needs a string, list or dict on the right, not %s", type_name(seq));
}

static int arith(Ctx *c, const JNode *n, int op, const json_t *l, const json_t *r, json_t **out) {
    if (!l) return undefined_err(c, n->kid[0]);
    if (!r) return undefined_err(c, n->kid[1]);
    if (op == JOP_ADD && json_is_string(l) && json_is_string(r)) {
        DsBuf b = {0};
        dsbuf_append(&b, json_string_value(l), json_string_length(l));
        dsbuf_append(&b, json_string_value(r), json_string_length(r));
        dsbuf_append(&b, "", 0);
        *out = str_new(b.data, b.len);
        dsbuf_free(&b);
        return DS_OK;
    }
    if (op == JOP_ADD && json_is_array(l) && json_is_array(r)) {
        json_t *x = json_copy((json_t *)l);
        json_array_extend(x, (json_t *)r);
        *out = x;
        return DS_OK;
    }
    if (op == JOP_MUL && ((json_is_string(l) && json_is_integer(r)) || (json_is_integer(l) && json_is_string(r)))) {
        const json_t *s = json_is_string(l) ? l : r;
        json_int_t k = json_integer_value(json_is_integer(l) ? l : r);
        if (k * (json_int_t)json_string_length(s) > (1 << 24)) return err(c, n, "string repetition too long");
        DsBuf b = {0};
        dsbuf_append(&b, "", 0);
        for (json_int_t i = 0; i < k; i++) dsbuf_append(&b, json_string_value(s), json_string_length(s));
        *out = str_new(b.data, b.len);
        dsbuf_free(&b);
        return DS_OK;
    }
    static const char *const names[] = {[JOP_ADD] = "+", [JOP_SUB] = "-", [JOP_MUL] = "*", [JOP_DIV] = "/",
                                        [JOP_FLOORDIV] = "//", [JOP_MOD] = "%", [JOP_POW] = "**"};
    if (!is_num(l) || !is_num(r))
        return err(c, n, "unsupported operand types for %s: %s and %s", names[op], type_name(l), type_name(r));
    if (json_is_integer(l) && json_is_integer(r) && op != JOP_DIV) {
        json_int_t a = json_integer_value(l), b = json_integer_value(r), z = 0;
        int over = 0;
        if (op == JOP_ADD) over = __builtin_add_overflow(a, b, &z);
        else if (op == JOP_SUB) over = __builtin_sub_overflow(a, b, &z);
        else if (op == JOP_MUL) over = __builtin_mul_overflow(a, b, &z);
        else if (op == JOP_POW) {
            if (b < 0) return *out = json_real(pow((double)a, (double)b)), DS_OK;
            z = 1;
            for (json_int_t i = 0; i < b && !over; i++) over = __builtin_mul_overflow(z, a, &z);
        } else {
            if (b == 0) return err(c, n, "integer division or modulo by zero");
            z = op == JOP_FLOORDIV ? a / b : a % b;
            if (op == JOP_FLOORDIV && (a % b != 0) && ((a < 0) != (b < 0))) z--;
            if (op == JOP_MOD && z != 0 && ((z < 0) != (b < 0))) z += b;
        }
        if (over) return err(c, n, "integer overflow");
        *out = json_integer(z);
        return DS_OK;
    }
    double a = num(l), b = num(r), z;
    if ((op == JOP_DIV || op == JOP_FLOORDIV || op == JOP_MOD) && b == 0) return err(c, n, "division by zero");
    switch (op) {
    case JOP_ADD: z = a + b; break;
    case JOP_SUB: z = a - b; break;
    case JOP_MUL: z = a * b; break;
    case JOP_DIV: z = a / b; break;
    case JOP_FLOORDIV: z = floor(a / b); break;
    case JOP_MOD: z = fmod(a, b); if (z != 0 && ((z < 0) != (b < 0))) z += b; break;
    default: z = pow(a, b); break;
    }
    *out = json_real(z);
    return DS_OK;
}

static int binary_op(Ctx *c, const JNode *n, json_t **out) {
    json_t *l, *r = NULL;
    if (ev(c, n->kid[0], &l)) return DS_ERR;
    if (n->op == JOP_AND || n->op == JOP_OR) { // Python returns the deciding operand
        if ((n->op == JOP_AND) != truthy(l)) return *out = l, DS_OK;
        json_decref(l);
        return ev(c, n->kid[1], out);
    }
    if (ev(c, n->kid[1], &r)) return json_decref(l), DS_ERR;
    int rc = DS_OK, res = 0;
    switch (n->op) {
    case JOP_EQ: *out = json_boolean(py_eq(l, r)); break;
    case JOP_NE: *out = json_boolean(!py_eq(l, r)); break;
    case JOP_LT: case JOP_GT: case JOP_LE: case JOP_GE:
        if (!(rc = compare(c, n, n->op, l, r, &res))) *out = json_boolean(res);
        break;
    case JOP_IN: case JOP_NOTIN:
        if (!(rc = contains(c, n, l, r, &res))) *out = json_boolean(n->op == JOP_IN ? res : !res);
        break;
    case JOP_CONCAT: {
        DsBuf b = {0};
        dsbuf_append(&b, "", 0);
        if (!(rc = py_str(c, n, l, &b)) && !(rc = py_str(c, n, r, &b))) *out = str_new(b.data, b.len);
        dsbuf_free(&b);
        break;
    }
    default: rc = arith(c, n, n->op, l, r, out); break;
    }
    json_decref(l), json_decref(r);
    return rc;
}

static int ev(Ctx *c, const JNode *n, json_t **out) {
    *out = NULL;
    switch (n->kind) {
    case JN_LIT: *out = json_incref(n->lit); return DS_OK;
    case JN_NAME: *out = json_incref(lookup(c, n->str)); return DS_OK;
    case JN_LIST: case JN_TUPLE: {
        json_t *l = json_array();
        for (int i = 0; i < n->nkid; i++) {
            json_t *v;
            if (ev(c, n->kid[i], &v)) return json_decref(l), DS_ERR;
            if (!v) return json_decref(l), undefined_err(c, n->kid[i]);
            json_array_append_new(l, v);
        }
        *out = l;
        return DS_OK;
    }
    case JN_DICT: {
        json_t *o = json_object();
        for (int i = 0; i + 1 < n->nkid; i += 2) {
            json_t *k, *v;
            if (ev(c, n->kid[i], &k)) return json_decref(o), DS_ERR;
            if (!json_is_string(k)) {
                json_decref(k), json_decref(o);
                return err(c, n, "dict keys must be strings here");
            }
            if (ev(c, n->kid[i + 1], &v)) return json_decref(k), json_decref(o), DS_ERR;
            json_object_set_new(o, json_string_value(k), v ? v : json_null());
            if (!v) return json_decref(k), json_decref(o), undefined_err(c, n->kid[i + 1]);
            json_decref(k);
        }
        *out = o;
        return DS_OK;
    }
    case JN_ATTR: {
        json_t *obj;
        if (ev(c, n->kid[0], &obj)) return DS_ERR;
        if (!obj) return undefined_err(c, n->kid[0]);
        if (is_method(obj, n->str)) {
            json_decref(obj);
            return err(c, n, "method '%s' used without calling it", n->str);
        }
        json_t *k = json_string(n->str);
        *out = get_item(obj, k);
        if (*out == c->undef) json_decref(*out), *out = NULL; // a namespace attribute set to undefined
        json_decref(k), json_decref(obj);
        return DS_OK;
    }
    case JN_INDEX: {
        json_t *obj, *k;
        if (ev(c, n->kid[0], &obj)) return DS_ERR;
        if (!obj) return undefined_err(c, n->kid[0]);
        if (ev(c, n->kid[1], &k)) return json_decref(obj), DS_ERR;
        *out = get_item(obj, k);
        json_decref(k), json_decref(obj);
        return DS_OK;
    }
    case JN_SLICE: {
        json_t *obj;
        if (ev(c, n->kid[0], &obj)) return DS_ERR;
        if (!obj) return undefined_err(c, n->kid[0]);
        int rc = eval_slice(c, n, obj, out);
        json_decref(obj);
        return rc;
    }
    case JN_CALL: return call(c, n, out);
    case JN_FILTER: return filter(c, n, out);
    case JN_TEST: return test(c, n, out);
    case JN_UNARY: {
        json_t *v;
        if (ev(c, n->kid[0], &v)) return DS_ERR;
        int rc = DS_OK;
        if (n->op == '!') *out = json_boolean(!truthy(v));
        else if (json_is_integer(v)) *out = json_integer(n->op == '-' ? -json_integer_value(v) : json_integer_value(v));
        else if (json_is_real(v)) *out = json_real(n->op == '-' ? -json_real_value(v) : json_real_value(v));
        else rc = err(c, n, "bad operand type for unary %c: %s", n->op, type_name(v));
        json_decref(v);
        return rc;
    }
    case JN_BINARY: return binary_op(c, n, out);
    case JN_COND: {
        json_t *cond;
        if (ev(c, n->kid[1], &cond)) return DS_ERR;
        int t = truthy(cond);
        json_decref(cond);
        if (t) return ev(c, n->kid[0], out);
        return n->kid[2] ? ev(c, n->kid[2], out) : DS_OK;
    }
    default: return err(c, n, "internal: not an expression");
    }
}

// ---- statements ------------------------------------------------------------------------------

static int exec_body(Ctx *c, const JNode *body);

static int assign_targets(Ctx *c, const JNode *n, json_t *v) { // steals v
    if (n->ntarget == 1) return assign(c, n->target[0], v), DS_OK;
    if (!json_is_array(v) || json_array_size(v) != (size_t)n->ntarget) {
        int rc = err(c, n, "cannot unpack a %s into %d names", type_name(v), n->ntarget);
        json_decref(v);
        return rc;
    }
    for (int i = 0; i < n->ntarget; i++) assign(c, n->target[i], json_incref(json_array_get(v, (size_t)i)));
    json_decref(v);
    return DS_OK;
}

static int exec_for(Ctx *c, const JNode *n) {
    json_t *it, *items;
    if (ev(c, n->kid[0], &it)) return DS_ERR;
    int rc = iter_list(c, n->kid[0], it, &items);
    json_decref(it);
    if (rc) return DS_ERR;
    if (n->kid[3]) { // for x in xs if cond: the filter runs before loop.length is known
        json_t *kept = json_array();
        for (size_t i = 0; i < json_array_size(items) && !rc; i++) {
            push_frame(c);
            json_t *cond = NULL;
            rc = assign_targets(c, n, json_incref(json_array_get(items, i)));
            if (!rc) rc = ev(c, n->kid[3], &cond);
            if (!rc && truthy(cond)) json_array_append(kept, json_array_get(items, i));
            json_decref(cond);
            pop_frame(c);
        }
        json_decref(items);
        items = kept;
        if (rc) return json_decref(items), DS_ERR;
    }
    size_t len = json_array_size(items);
    for (size_t i = 0; i < len && !rc; i++) {
        push_frame(c);
        json_t *loop = json_pack("{s:I,s:I,s:b,s:b,s:I,s:I,s:I}", "index", (json_int_t)i + 1, "index0", (json_int_t)i,
                                 "first", i == 0, "last", i + 1 == len, "length", (json_int_t)len, "revindex",
                                 (json_int_t)(len - i), "revindex0", (json_int_t)(len - i - 1));
        if (i > 0) json_object_set(loop, "previtem", json_array_get(items, i - 1));
        if (i + 1 < len) json_object_set(loop, "nextitem", json_array_get(items, i + 1));
        assign(c, "loop", loop);
        rc = assign_targets(c, n, json_incref(json_array_get(items, i)));
        if (!rc) rc = exec_body(c, n->kid[1]);
        pop_frame(c);
        c->cont = 0;
        if (c->brk) {
            c->brk = 0;
            break;
        }
    }
    if (!rc && len == 0 && n->kid[2]) rc = exec_body(c, n->kid[2]);
    json_decref(items);
    return rc;
}

static int exec_stmt(Ctx *c, const JNode *n) {
    switch (n->kind) {
    case JN_TEXT: dsbuf_append(c->out, json_string_value(n->lit), json_string_length(n->lit)); return DS_OK;
    case JN_OUTPUT: {
        json_t *v;
        if (ev(c, n->kid[0], &v)) return DS_ERR;
        int rc = py_str(c, n, v, c->out);
        json_decref(v);
        return rc;
    }
    case JN_IF: {
        json_t *cond;
        if (ev(c, n->kid[0], &cond)) return DS_ERR;
        int t = truthy(cond);
        json_decref(cond);
        if (t) return exec_body(c, n->kid[1]);
        return n->kid[2] ? exec_body(c, n->kid[2]) : DS_OK;
    }
    case JN_FOR: return exec_for(c, n);
    case JN_SET: {
        if (n->op == 1) { // block set: the rendered body
            DsBuf b = {0}, *saved = c->out;
            dsbuf_append(&b, "", 0);
            c->out = &b;
            int rc = exec_body(c, n->kid[0]);
            c->out = saved;
            if (!rc) assign(c, n->target[0], str_new(b.data, b.len));
            dsbuf_free(&b);
            return rc;
        }
        json_t *v;
        if (ev(c, n->kid[0], &v)) return DS_ERR;
        if (!v && n->ntarget > 1) return undefined_err(c, n->kid[0]);
        return assign_targets(c, n, v);
    }
    case JN_SETATTR: {
        json_t *ns = lookup(c, n->str), *v;
        if (!ns || !is_namespace(c, ns)) return err(c, n, "cannot assign attribute '%s' on '%s': not a namespace", n->target[0], n->str);
        if (ev(c, n->kid[0], &v)) return DS_ERR;
        json_object_set_new(ns, n->target[0], v ? v : json_incref(c->undef));
        return DS_OK;
    }
    case JN_BREAK: c->brk = 1; return DS_OK;
    case JN_CONTINUE: c->cont = 1; return DS_OK;
    case JN_GENERATION: return exec_body(c, n->kid[0]);
    case JN_BODY: return exec_body(c, n);
    default: return err(c, n, "internal: not a statement");
    }
}

static int exec_body(Ctx *c, const JNode *body) {
    for (int i = 0; i < body->nkid; i++) {
        if (exec_stmt(c, body->kid[i])) return DS_ERR;
        if (c->brk || c->cont) return DS_OK;
    }
    return DS_OK;
}

int jinja_render(const JinjaTemplate *t, const json_t *vars, DsBuf *out, DsErr *e) {
    Ctx c = {.t = t, .vars = vars, .namespaces = json_array(), .out = out, .e = e, .undef = json_object()};
    push_frame(&c);
    dsbuf_append(out, "", 0); // out->data is a C string even when nothing is written
    int rc = exec_body(&c, t->root);
    while (c.nframe) pop_frame(&c);
    free(c.frame);
    json_decref(c.namespaces);
    json_decref(c.undef);
    return rc;
}
