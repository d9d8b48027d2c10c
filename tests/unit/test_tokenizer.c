// test_tokenizer.c — pre-tokenizer, byte-level BPE encode/decode against a naive reference,
// training, tokenizer.json round trips, special tokens, concurrent encoding.
#include <jansson.h>
#include <pthread.h>

#include "text/bpe_train.h"
#include "text/pretokenize.h"
#include "core/rng.h"
#include "text/tokenizer.h"
#include "unit.h"

static const char SAMPLE[] =
    "The quick brown fox jumps over the lazy dog. It's 2024, and the dog's 12345 naps aren't "
    "over!\n\n  Indented   text\twith tabs,   spaces... and \"quotes\" -- dashes; résumé naïve "
    "café 日本語のテキスト 👋🌍 OK?\r\nLine two: a=b+c*(d/e) 3.14159 1,000,000 x_y_z.\n";

// A small tokenizer trained on SAMPLE repeated, with one special token.
static Tokenizer *small_tok(PretokKind kind, int vocab) {
    DsBuf text = {0};
    for (int i = 0; i < 20; i++) {
        dsbuf_append(&text, SAMPLE, sizeof SAMPLE - 1);
        dsbuf_printf(&text, "<|endoftext|>variant %d of the sample %d\n", i, i * 37);
    }
    const char *specials[] = {"<|endoftext|>"};
    BpeTrainOpts o = {.vocab_size = vocab, .specials = specials, .n_specials = 1, .pretok = kind};
    DsErr e;
    Tokenizer *t = bpe_train_text(&o, text.data, text.len, &e);
    if (!t) fprintf(stderr, "train: %s\n", e.msg);
    dsbuf_free(&text);
    return t;
}

// ---------------------------------------------------------------------------------------------
// The readable reference: GPT-2's encoder.py loop (find the lowest-ranked adjacent pair, merge
// every occurrence of it left to right, repeat) over byte strings.

typedef struct RefSym {
    char *s;
    size_t n;
} RefSym;

static int ref_rank(const Tokenizer *t, const RefSym *a, const RefSym *b) {
    for (int r = 0; r < tok_n_merges(t); r++) {
        uint32_t l, rr;
        size_t ln, rn;
        tok_merge_pair(t, r, &l, &rr);
        const char *lb = tok_token_bytes(t, l, &ln), *rb = tok_token_bytes(t, rr, &rn);
        if (ln == a->n && rn == b->n && memcmp(lb, a->s, ln) == 0 && memcmp(rb, b->s, rn) == 0)
            return r;
    }
    return -1;
}

static void ref_piece(void *ctx, const char *piece, size_t len) {
    void **c = ctx;
    const Tokenizer *t = c[0];
    TokIds *out = c[1];
    RefSym *sym = malloc(len * sizeof *sym);
    size_t n = len;
    for (size_t i = 0; i < len; i++) {
        sym[i].s = malloc(1);
        sym[i].s[0] = piece[i];
        sym[i].n = 1;
    }
    for (;;) {
        int best = -1;
        for (size_t i = 0; i + 1 < n; i++) {
            int r = ref_rank(t, &sym[i], &sym[i + 1]);
            if (r >= 0 && (best < 0 || r < best)) best = r;
        }
        if (best < 0) break;
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
            if (i + 1 < n && ref_rank(t, &sym[i], &sym[i + 1]) == best) {
                sym[i].s = realloc(sym[i].s, sym[i].n + sym[i + 1].n);
                memcpy(sym[i].s + sym[i].n, sym[i + 1].s, sym[i + 1].n);
                sym[i].n += sym[i + 1].n;
                free(sym[i + 1].s);
                sym[k++] = sym[i++];
            } else
                sym[k++] = sym[i];
        }
        n = k;
    }
    for (size_t i = 0; i < n; i++) {
        char *z = malloc(sym[i].n + 1);
        memcpy(z, sym[i].s, sym[i].n);
        z[sym[i].n] = 0;
        int id = -1;
        for (int j = 0; j < tok_vocab_size(t) && id < 0; j++) {
            size_t bn;
            const char *b = tok_token_bytes(t, (uint32_t)j, &bn);
            if (b && !tok_is_special(t, (uint32_t)j) && bn == sym[i].n &&
                memcmp(b, sym[i].s, bn) == 0)
                id = j;
        }
        tokids_push(out, (uint32_t)id);
        free(z);
        free(sym[i].s);
    }
    free(sym);
}

static void ref_encode(const Tokenizer *t, const char *s, size_t n, TokIds *out) {
    void *ctx[2] = {(void *)t, out};
    pretok_split(tok_pretok(t), s, n, ref_piece, ctx);
}

static void random_text(Rng *r, char *buf, size_t n, int mode) {
    static const char alpha[] = "abcdeth  ,.'s\n0123456789";
    for (size_t i = 0; i < n; i++) {
        if (mode == 0)
            buf[i] = alpha[rng_below(r, sizeof alpha - 1)];
        else
            buf[i] = (char)rng_below(r, 256); // any byte: NULs, invalid UTF-8
    }
}

// ---------------------------------------------------------------------------------------------

static void utf8_validation(T *t) {
    struct {
        const char *s;
        size_t valid;
    } cases[] = {
        {"abc", 3},
        {"h\xc3\xa9!", 4},
        {"\xc3", 0},
        {"a\xc0\xafz", 1},
        {"\xed\xa0\x80", 0},
        {"\xf4\x90\x80\x80", 0},
        {"\xf0\x9f\x91\x8b", 4},
        {"\xe2\x82", 0},
        {"ok\xff", 2},
        {"\xe0\x80\xaf", 0},
    };
    for (size_t i = 0; i < DS_ARRAY_LEN(cases); i++)
        CHECKF(t, pretok_utf8_valid_prefix(cases[i].s, strlen(cases[i].s)) == cases[i].valid,
               "case %zu", i);
}

typedef struct Pieces {
    char out[4096];
    size_t len;
    int n;
} Pieces;

static void collect(void *ctx, const char *piece, size_t len) {
    Pieces *p = ctx;
    memcpy(p->out + p->len, piece, len);
    p->len += len;
    p->out[p->len++] = '|';
    p->n++;
}

static void concat(void *ctx, const char *piece, size_t len) {
    if (len == 0) abort(); // pieces are never empty
    dsbuf_append(ctx, piece, len);
}

static void pretok_splits(T *t) {
    DsErr e;
    Pretok *g2 = pretok_new_kind(PRETOK_GPT2, &e), *g4 = pretok_new_kind(PRETOK_GPT4, &e),
           *dg = pretok_new_kind(PRETOK_DIGITS, &e);
    CHECK(t, g2 && g4 && dg);
    const char *s = "Hello world's 12345  x\n\xff\xfeok";
    size_t n = strlen(s);
    Pieces p = {0};
    pretok_split(g2, s, n, collect, &p);
    p.out[p.len] = 0;
    CHECKF(t, strcmp(p.out, "Hello| world|'s| 12345| | x|\n|\xff|\xfe|ok|") == 0, "%s", p.out);
    memset(&p, 0, sizeof p);
    pretok_split(g4, s, n, collect, &p);
    p.out[p.len] = 0;
    CHECKF(t, strcmp(p.out, "Hello| world|'s| |123|45| | x|\n|\xff|\xfe|ok|") == 0, "%s", p.out);
    memset(&p, 0, sizeof p);
    pretok_split(dg, "x=907", 5, collect, &p);
    p.out[p.len] = 0;
    CHECKF(t, strcmp(p.out, "x|=|9|0|7|") == 0, "%s", p.out);
    // Pieces always concatenate back to the input, whatever the bytes.
    Rng r;
    rng_seed(&r, 7);
    for (int it = 0; it < 200; it++) {
        char buf[1000];
        random_text(&r, buf, sizeof buf, it & 1);
        DsBuf cat = {0};
        pretok_split(it % 3 == 0 ? g2 : g4, buf, sizeof buf, concat, &cat);
        CHECK(t, cat.len == sizeof buf && memcmp(cat.data, buf, sizeof buf) == 0);
        dsbuf_free(&cat);
    }
    // A bad regex is an error that says where.
    const char *bad = "(ab";
    CHECK(t, pretok_new(&bad, 1, &e) == NULL && strstr(e.msg, "offset") != NULL);
    pretok_free(g2);
    pretok_free(g4);
    pretok_free(dg);
}

static void bytelevel_alphabet(T *t) {
    unsigned char all[256];
    for (int i = 0; i < 256; i++) all[i] = (unsigned char)i;
    DsBuf a = {0}, b = {0};
    tok_bytelevel_encode(all, 256, &a);
    CHECK(t, tok_bytelevel_decode(a.data, a.len, &b) == DS_OK);
    CHECK(t, b.len == 256 && memcmp(b.data, all, 256) == 0);
    a.len = 0;
    tok_bytelevel_encode(" \n!", 3, &a);
    CHECK(t, strcmp(a.data, "\xc4\xa0\xc4\x8a!") == 0); // "ĠĊ!"
    b.len = 0;
    CHECK(t, tok_bytelevel_decode("\xe2\x82\xac", 3, &b) == DS_ERR); // € is not in the alphabet
    dsbuf_free(&a);
    dsbuf_free(&b);
}

static void minbpe_vector(T *t) {
    BpeTrainOpts o = {.vocab_size = 259, .pretok = PRETOK_GPT2, .raw_byte_ids = 1};
    DsErr e;
    Tokenizer *tk = bpe_train_text(&o, "aaabdaaabac", 11, &e);
    CHECK(t, tk != NULL);
    if (!tk) return;
    TokIds ids = {0};
    CHECK(t, tok_encode(tk, "aaabdaaabac", 11, 0, &ids) == 5);
    uint32_t want[] = {258, 100, 258, 97, 99};
    CHECK(t, ids.n == 5 && memcmp(ids.ids, want, sizeof want) == 0);
    CHECK(t, tok_vocab_size(tk) == 259 && tok_n_merges(tk) == 3);
    tokids_free(&ids);
    tok_free(tk);
}

// The heap-based merge loop gives what GPT-2's plain loop gives, on text and on random bytes, with
// and without the pre-token cache.
static void encode_matches_reference(T *t) {
    Tokenizer *tk = small_tok(PRETOK_GPT2, 400);
    CHECK(t, tk != NULL);
    if (!tk) return;
    Rng r;
    rng_seed(&r, 11);
    TokCache *c = tok_cache_new();
    for (int it = 0; it < 60; it++) {
        char buf[600];
        size_t n = 1 + rng_below(&r, sizeof buf);
        if (it < 3) {
            n = DS_MIN(sizeof SAMPLE - 1, sizeof buf);
            memcpy(buf, SAMPLE, n);
        } else
            random_text(&r, buf, n, it % 3 == 0);
        TokIds a = {0}, b = {0}, cc = {0};
        ref_encode(tk, buf, n, &a);
        tok_encode(tk, buf, n, 0, &b);
        tok_encode_cached(tk, c, buf, n, 0, &cc);
        CHECKF(t, a.n == b.n && memcmp(a.ids, b.ids, a.n * 4) == 0, "iteration %d", it);
        CHECK(t, cc.n == b.n && memcmp(cc.ids, b.ids, b.n * 4) == 0);
        tokids_free(&a);
        tokids_free(&b);
        tokids_free(&cc);
    }
    tok_cache_free(c);
    tok_free(tk);
}

// decode(encode(x)) == x for any bytes, NULs and invalid UTF-8 included; long pre-tokens too.
static void roundtrip_any_bytes(T *t) {
    Tokenizer *tk = small_tok(PRETOK_GPT4, 450);
    CHECK(t, tk != NULL);
    if (!tk) return;
    Rng r;
    rng_seed(&r, 3);
    size_t cap = 200000;
    char *buf = malloc(cap);
    for (int it = 0; it < 40; it++) {
        size_t n = it == 0 ? cap : rng_below(&r, 3000);
        if (it == 1)
            memset(buf, ' ', n = cap); // one pre-token of 200000 spaces
        else
            random_text(&r, buf, n, 1);
        TokIds ids = {0};
        tok_encode(tk, buf, n, it & 1, &ids);
        DsBuf out = {0};
        tok_decode(tk, ids.ids, ids.n, &out);
        CHECKF(t, out.len == n && (n == 0 || memcmp(out.data, buf, n) == 0), "iteration %d", it);
        tokids_free(&ids);
        dsbuf_free(&out);
    }
    free(buf);
    tok_free(tk);
}

static void special_tokens(T *t) {
    Tokenizer *tk = small_tok(PRETOK_GPT2, 350);
    CHECK(t, tk != NULL);
    if (!tk) return;
    CHECK(t, tok_token_id(tk, "<|endoftext|>") == 0 && tok_is_special(tk, 0));
    CHECK(t, tok_token_id(tk, "a") >= 1 && tok_token_id(tk, "\xc4\xa0") == tok_token_id(tk, " "));
    CHECK(t, tok_token_id(tk, "no such token at all") == -1);
    const char *s = "a<|endoftext|>b<|endoftext|>";
    TokIds on = {0}, off = {0};
    tok_encode(tk, s, strlen(s), 1, &on);
    tok_encode(tk, s, strlen(s), 0, &off);
    CHECK(t, on.n == 4 && on.ids[1] == 0 && on.ids[3] == 0);
    int any0 = 0;
    for (size_t i = 0; i < off.n; i++) any0 |= off.ids[i] == 0;
    CHECK(t, !any0 && off.n > 4); // plain text when not allowed
    DsBuf d = {0};
    tok_decode(tk, on.ids, on.n, &d);
    CHECK(t, d.len == strlen(s) && memcmp(d.data, s, d.len) == 0);
    tokids_free(&on);
    tokids_free(&off);
    dsbuf_free(&d);
    tok_free(tk);
}

// tokenizer.json out and back in gives the same bytes; both merges forms and a Split sequence load.
static void json_roundtrip(T *t) {
    for (int k = PRETOK_GPT2; k <= PRETOK_DIGITS; k++) {
        Tokenizer *a = small_tok((PretokKind)k, 420);
        CHECK(t, a != NULL);
        if (!a) return;
        size_t n1, n2;
        char *j1 = tok_to_json(a, &n1);
        DsErr e;
        Tokenizer *b = tok_from_json(j1, n1, "mem", &e);
        CHECKF(t, b != NULL, "%s", e.msg);
        if (!b) return;
        char *j2 = tok_to_json(b, &n2);
        CHECK(t, n1 == n2 && memcmp(j1, j2, n1) == 0);
        char h1[65], h2[65];
        tok_hash(a, h1);
        tok_hash(b, h2);
        CHECK(t, strcmp(h1, h2) == 0 && strlen(h1) == 64);
        // The same tokenizer with merges as ["a", "b"] pairs.
        json_t *root = json_loadb(j1, n1, 0, NULL);
        json_t *merges = json_object_get(json_object_get(root, "model"), "merges");
        size_t i;
        json_t *v;
        json_array_foreach(merges, i, v) {
            const char *s = json_string_value(v), *sp = strchr(s, ' ');
            json_array_set_new(merges, i, json_pack("[s%, s]", s, (size_t)(sp - s), sp + 1));
        }
        char *j3 = json_dumps(root, 0);
        Tokenizer *c = tok_from_json(j3, strlen(j3), "pairs", &e);
        CHECKF(t, c != NULL, "%s", e.msg);
        if (c) {
            char h3[65];
            tok_hash(c, h3);
            CHECK(t, strcmp(h1, h3) == 0);
            TokIds x = {0}, y = {0};
            tok_encode(a, SAMPLE, sizeof SAMPLE - 1, 0, &x);
            tok_encode(c, SAMPLE, sizeof SAMPLE - 1, 0, &y);
            CHECK(t, x.n == y.n && memcmp(x.ids, y.ids, 4 * x.n) == 0);
            tokids_free(&x);
            tokids_free(&y);
        }
        json_decref(root);
        free(j1);
        free(j2);
        free(j3);
        tok_free(a);
        tok_free(b);
        tok_free(c);
    }
}

// DeepSeek V3's shape: a Sequence of several Splits before ByteLevel; each regex splits the
// pieces of the one before, and the chain survives a save/load.
static void split_sequence(T *t) {
    Tokenizer *a = small_tok(PRETOK_GPT2, 300);
    CHECK(t, a != NULL);
    if (!a) return;
    size_t n;
    char *j = tok_to_json(a, &n);
    json_t *root = json_loadb(j, n, 0, NULL);
    json_t *seq =
        json_pack("{s:s, s:[{s:s, s:{s:s}, s:s, s:b}, {s:s, s:{s:s}, s:s, s:b}, {s:s, s:b, s:b}]}",
                  "type", "Sequence", "pretokenizers", "type", "Split", "pattern", "Regex",
                  "\\p{N}{1,3}", "behavior", "Isolated", "invert", 0, "type", "Split", "pattern",
                  "Regex", "[A-Za-z]+|[0-9]+|[^A-Za-z0-9]", "behavior", "Isolated", "invert", 0,
                  "type", "ByteLevel", "add_prefix_space", 0, "use_regex", 0);
    json_object_set_new(root, "pre_tokenizer", seq);
    char *j2 = json_dumps(root, 0);
    DsErr e;
    Tokenizer *b = tok_from_json(j2, strlen(j2), "seq", &e);
    CHECKF(t, b != NULL, "%s", e.msg);
    if (b) {
        CHECK(t, pretok_count(tok_pretok(b)) == 2);
        Pieces p = {0};
        const char *s = "ab12345 cd";
        pretok_split(tok_pretok(b), s, strlen(s), collect, &p);
        p.out[p.len] = 0;
        CHECKF(t, strcmp(p.out, "ab|123|45| |cd|") == 0, "%s", p.out);
        size_t n3;
        char *j3 = tok_to_json(b, &n3);
        Tokenizer *c = tok_from_json(j3, n3, "seq2", &e);
        CHECK(t, c != NULL && pretok_count(tok_pretok(c)) == 2);
        char h1[65], h2[65];
        tok_hash(b, h1);
        if (c) tok_hash(c, h2);
        CHECK(t, c && strcmp(h1, h2) == 0);
        free(j3);
        tok_free(c);
    }
    json_decref(root);
    free(j);
    free(j2);
    tok_free(a);
    tok_free(b);
}

static void json_errors(T *t) {
    DsErr e;
    const char *bad = "{\"model\": {\"type\": \"BPE\",\n \"vocab\": {\"a\": 0}, \"merges\": [}";
    CHECK(t, tok_from_json(bad, strlen(bad), "x.json", &e) == NULL);
    CHECKF(t, strstr(e.msg, "x.json:2:") != NULL, "%s", e.msg);
    const char *norm =
        "{\"normalizer\": {\"type\": \"Sequence\", \"normalizers\": [{\"type\": \"NFC\"}, "
        "{\"type\": \"BertNormalizer\"}]}, \"pre_tokenizer\": {\"type\": \"ByteLevel\"},"
        " \"model\": {\"vocab\": {}, \"merges\": []}}";
    CHECK(t, tok_from_json(norm, strlen(norm), "n.json", &e) == NULL);
    CHECKF(t,
           strstr(e.msg, "n.json: normalizer.normalizers[1]: normalizer \"BertNormalizer\" is not "
                         "supported") != NULL,
           "%s", e.msg);
    const char *few =
        "{\"pre_tokenizer\": {\"type\": \"ByteLevel\"}, \"model\": {\"vocab\": {\"a\": 0},"
        " \"merges\": []}}";
    CHECK(t, tok_from_json(few, strlen(few), "f.json", &e) == NULL);
    CHECKF(t, strstr(e.msg, "has no token") != NULL, "%s", e.msg);
    const char *mrg =
        "{\"pre_tokenizer\": {\"type\": \"ByteLevel\"}, \"model\": {\"vocab\": {\"a\": 0},"
        " \"merges\": [\"a zz\"]}}";
    CHECK(t, tok_from_json(mrg, strlen(mrg), "m.json", &e) == NULL);
    CHECKF(t, strstr(e.msg, "merges[0]") != NULL, "%s", e.msg);
    BpeTrainOpts o = {.vocab_size = 100, .pretok = PRETOK_GPT2};
    CHECK(t, bpe_trainer_new(&o, &e) == NULL && strstr(e.msg, "vocab size") != NULL);
}

// Ties between pairs of equal count go to the lexicographically greater pair.
static void train_ties(T *t) {
    BpeTrainOpts o = {.vocab_size = 257, .pretok = PRETOK_GPT2, .raw_byte_ids = 1};
    DsErr e;
    Tokenizer *tk = bpe_train_text(&o, "ab cd", 5, &e); // pairs (a,b), (" ",c), (c,d): one each
    CHECK(t, tk && tok_n_merges(tk) == 1);
    if (!tk) return;
    uint32_t l, r;
    tok_merge_pair(tk, 0, &l, &r);
    CHECK(t, l == 'c' && r == 'd');
    tok_free(tk);
}

// The readable reference for training: recount every pair after every merge (no incremental
// updates), pick the highest count, ties to the greater (left bytes, right bytes).
typedef struct RefWord {
    RefSym *sym;
    size_t n;
    long count;
} RefWord;

typedef struct RefCorpus {
    RefWord *w;
    size_t n;
} RefCorpus;

static void ref_count_piece(void *ctx, const char *piece, size_t len) {
    RefCorpus *c = ctx;
    for (size_t i = 0; i < c->n; i++) {
        RefWord *w = &c->w[i];
        size_t total = 0;
        for (size_t k = 0; k < w->n; k++) total += w->sym[k].n;
        if (w->n == len && total == len) {
            int same = 1;
            for (size_t k = 0; k < len && same; k++) same = w->sym[k].s[0] == piece[k];
            if (same) {
                w->count++;
                return;
            }
        }
    }
    c->w = realloc(c->w, (c->n + 1) * sizeof *c->w);
    RefWord *w = &c->w[c->n++];
    w->sym = malloc(len * sizeof *w->sym);
    w->n = len;
    w->count = 1;
    for (size_t k = 0; k < len; k++) {
        w->sym[k].s = malloc(1);
        w->sym[k].s[0] = piece[k];
        w->sym[k].n = 1;
    }
}

static int sym_cmp(const RefSym *a, const RefSym *b) {
    int c = memcmp(a->s, b->s, DS_MIN(a->n, b->n));
    if (c) return c;
    return a->n < b->n ? -1 : a->n > b->n;
}

static int sym_eq(const RefSym *a, const RefSym *b) { return sym_cmp(a, b) == 0; }

static void train_matches_reference(T *t) {
    DsBuf text = {0};
    for (int i = 0; i < 6; i++) {
        dsbuf_append(&text, SAMPLE, sizeof SAMPLE - 1);
        dsbuf_printf(&text, "variant %d of the sample %d; ", i, i * 37);
    }
    int vocab = 340;
    BpeTrainOpts o = {.vocab_size = vocab, .pretok = PRETOK_GPT4};
    DsErr e;
    Tokenizer *tk = bpe_train_text(&o, text.data, text.len, &e);
    CHECK(t, tk != NULL);
    if (!tk) return;
    RefCorpus c = {0};
    pretok_split(tok_pretok(tk), text.data, text.len, ref_count_piece, &c);
    int merges = 0;
    for (; 256 + merges < vocab; merges++) {
        RefSym *ba = NULL, *bb = NULL;
        long best = 0;
        for (size_t i = 0; i < c.n; i++)
            for (size_t k = 0; k + 1 < c.w[i].n; k++) {
                RefSym *a = &c.w[i].sym[k], *b = &c.w[i].sym[k + 1];
                long cnt = 0;
                for (size_t j = 0; j < c.n; j++)
                    for (size_t q = 0; q + 1 < c.w[j].n; q++)
                        if (sym_eq(&c.w[j].sym[q], a) && sym_eq(&c.w[j].sym[q + 1], b))
                            cnt += c.w[j].count;
                int cm = ba ? sym_cmp(a, ba) : 1;
                if (!cm) cm = sym_cmp(b, bb);
                if (cnt > best || (cnt == best && cm > 0)) best = cnt, ba = a, bb = b;
            }
        if (!ba) break;
        RefSym A = {malloc(ba->n), ba->n}, B = {malloc(bb->n), bb->n};
        memcpy(A.s, ba->s, A.n);
        memcpy(B.s, bb->s, B.n);
        if (merges < tok_n_merges(tk)) {
            uint32_t l, r;
            size_t ln, rn;
            tok_merge_pair(tk, merges, &l, &r);
            const char *lb = tok_token_bytes(tk, l, &ln), *rb = tok_token_bytes(tk, r, &rn);
            CHECKF(t, ln == A.n && rn == B.n && !memcmp(lb, A.s, ln) && !memcmp(rb, B.s, rn),
                   "merge %d differs", merges);
        }
        for (size_t i = 0; i < c.n; i++) { // merge A B everywhere, left to right
            RefWord *w = &c.w[i];
            size_t k = 0;
            for (size_t q = 0; q < w->n; q++) {
                if (q + 1 < w->n && sym_eq(&w->sym[q], &A) && sym_eq(&w->sym[q + 1], &B)) {
                    w->sym[q].s = realloc(w->sym[q].s, A.n + B.n);
                    memcpy(w->sym[q].s + A.n, w->sym[q + 1].s, B.n);
                    w->sym[q].n = A.n + B.n;
                    free(w->sym[q + 1].s);
                    w->sym[k++] = w->sym[q++];
                } else
                    w->sym[k++] = w->sym[q];
            }
            w->n = k;
        }
        free(A.s);
        free(B.s);
    }
    CHECKF(t, merges == tok_n_merges(tk) && merges == vocab - 256, "%d vs %d merges", merges,
           tok_n_merges(tk));
    for (size_t i = 0; i < c.n; i++) {
        for (size_t k = 0; k < c.w[i].n; k++) free(c.w[i].sym[k].s);
        free(c.w[i].sym);
    }
    free(c.w);
    dsbuf_free(&text);
    tok_free(tk);
}

typedef struct ThreadJob {
    const Tokenizer *tk;
    const char *text;
    size_t n;
    TokIds out;
} ThreadJob;

static void *encode_job(void *arg) {
    ThreadJob *j = arg;
    for (int rep = 0; rep < 5; rep++) {
        j->out.n = 0;
        tok_encode(j->tk, j->text, j->n, 1, &j->out);
    }
    return NULL;
}

// Concurrent tok_encode calls on one tokenizer give the serial result.
static void concurrent_encode(T *t) {
    Tokenizer *tk = small_tok(PRETOK_GPT4, 500);
    CHECK(t, tk != NULL);
    if (!tk) return;
    DsBuf text = {0};
    for (int i = 0; i < 100; i++) {
        dsbuf_append(&text, SAMPLE, sizeof SAMPLE - 1);
        dsbuf_printf(&text, "%d<|endoftext|>", i * i);
    }
    TokIds serial = {0};
    tok_encode(tk, text.data, text.len, 1, &serial);
    enum { NT = 4 };
    pthread_t th[NT];
    ThreadJob jobs[NT];
    for (int i = 0; i < NT; i++) {
        jobs[i] = (ThreadJob){tk, text.data, text.len, {0}};
        pthread_create(&th[i], NULL, encode_job, &jobs[i]);
    }
    for (int i = 0; i < NT; i++) {
        pthread_join(th[i], NULL);
        CHECK(t,
              jobs[i].out.n == serial.n && memcmp(jobs[i].out.ids, serial.ids, 4 * serial.n) == 0);
        tokids_free(&jobs[i].out);
    }
    tokids_free(&serial);
    dsbuf_free(&text);
    tok_free(tk);
}

// Hugging Face's Split behaviors, with and without invert, and the char-class pre-tokenizers, on
// one string (the same outputs as tokenizers 0.6.0's: the peer test checks them on a corpus).
static void split_behaviors(T *t) {
    static const struct {
        const char *json, *want;
    } cases[] = {
        {"{\"type\":\"Split\",\"pattern\":{\"Regex\":\"\\\\s+|[0-9]\"},\"behavior\":\"Removed\"}", "ab|c|de|"},
        {"{\"type\":\"Split\",\"pattern\":{\"Regex\":\"\\\\s+|[0-9]\"},\"behavior\":\"Isolated\"}", "ab| |1|2|c|  |de|"},
        {"{\"type\":\"Split\",\"pattern\":{\"Regex\":\"\\\\s+|[0-9]\"},\"behavior\":\"MergedWithPrevious\"}", "ab |1|2|c  |de|"},
        {"{\"type\":\"Split\",\"pattern\":{\"Regex\":\"\\\\s+|[0-9]\"},\"behavior\":\"MergedWithNext\"}", "ab| |1|2c|  de|"},
        {"{\"type\":\"Split\",\"pattern\":{\"Regex\":\"\\\\s+|[0-9]\"},\"behavior\":\"Contiguous\"}", "ab| 12|c|  |de|"},
        {"{\"type\":\"Split\",\"pattern\":{\"Regex\":\"\\\\s+|[0-9]\"},\"behavior\":\"Removed\",\"invert\":true}", " |1|2|  |"},
        {"{\"type\":\"Split\",\"pattern\":{\"Regex\":\"\\\\s+|[0-9]\"},\"behavior\":\"MergedWithPrevious\",\"invert\":true}", "ab| |1|2c|  de|"},
        {"{\"type\":\"Split\",\"pattern\":{\"String\":\" \"},\"behavior\":\"MergedWithNext\"}", "ab| 12c| | de|"},
        {"{\"type\":\"Digits\",\"individual_digits\":false}", "ab |12|c  de|"},
        {"{\"type\":\"WhitespaceSplit\"}", "ab|12c|de|"},
        {"{\"type\":\"Punctuation\"}", "ab 12c  de|"},
        {"{\"type\":\"Whitespace\"}", "ab|12c|de|"},
    };
    for (size_t i = 0; i < DS_ARRAY_LEN(cases); i++) {
        char js[512];
        snprintf(js, sizeof js,
                 "{\"type\":\"Sequence\",\"pretokenizers\":[%s,{\"type\":\"ByteLevel\","
                 "\"use_regex\":false}]}",
                 cases[i].json);
        json_t *j = json_loads(js, 0, NULL);
        DsErr e;
        Pretok *p = j ? pretok_from_json(j, &e) : NULL;
        CHECKF(t, p != NULL, "%s: %s", cases[i].json, j ? e.msg : "bad JSON");
        json_decref(j);
        if (!p) continue;
        Pieces pc = {0};
        const char *s = "ab 12c  de";
        pretok_split(p, s, strlen(s), collect, &pc);
        pc.out[pc.len] = 0;
        CHECKF(t, strcmp(pc.out, cases[i].want) == 0, "%s: got %s", cases[i].json, pc.out);
        pretok_free(p);
    }
    // ByteLevel's add_prefix_space adds " " to a piece that lacks one
    json_t *j = json_loads("{\"type\":\"ByteLevel\",\"add_prefix_space\":true}", 0, NULL);
    DsErr e;
    Pretok *p = pretok_from_json(j, &e);
    json_decref(j);
    CHECK(t, p != NULL);
    if (p) {
        Pieces pc = {0};
        pretok_split(p, "hi there", 8, collect, &pc);
        pc.out[pc.len] = 0;
        CHECKF(t, strcmp(pc.out, " hi| there|") == 0, "%s", pc.out);
        pretok_free(p);
    }
}

UNIT_MAIN(CASE(utf8_validation), CASE(split_behaviors), CASE(pretok_splits), CASE(bytelevel_alphabet), CASE(minbpe_vector),
          CASE(encode_matches_reference), CASE(roundtrip_any_bytes), CASE(special_tokens),
          CASE(json_roundtrip), CASE(split_sequence), CASE(json_errors), CASE(train_ties),
          CASE(train_matches_reference), CASE(concurrent_encode))
