// tokenizer.c — byte-level BPE tokenizer: Hugging Face tokenizer.json in and out, encode, decode.
#define PCRE2_CODE_UNIT_WIDTH 8
#include "text/tokenizer.h"

#include <jansson.h>
#include <pcre2.h>
#include <utf8proc.h>
#include <stdlib.h>
#include <string.h>

#include "core/atomic_file.h"
#include "core/sha256.h"
#include "text/tok_decoder.h"
#include "text/tok_normalize.h"

enum { KIND_NONE = 0, KIND_VOCAB, KIND_ADDED };
enum { TOK_MAX_IDS = 1 << 24 };

typedef struct TokEntry {
    uint32_t off, len; // bytes in t->arena
    uint8_t kind;      // KIND_*
    uint8_t special;   // added tokens: skipped without TOK_SPECIAL
    uint8_t in_vocab;  // added tokens: also listed in the model vocab
    uint8_t lstrip, rstrip, normalized, single_word; // added tokens: Hugging Face's options
} TokEntry;

// Added tokens matched in one text (raw or normalized): bucketed by first byte, longest first in
// each bucket, so a scan finds the leftmost match and the longest at it (Hugging Face's
// leftmost-longest Aho-Corasick).
typedef struct AddedSet {
    uint32_t *ids;         // token ids, bucket b at [start[b], start[b + 1])
    uint32_t *poff, *plen; // each one's pattern in pat (the normalized content for set 1)
    uint32_t start[257];
    DsBuf pat;
    int n;
} AddedSet;

struct Tokenizer {
    int n_ids;     // highest id + 1
    TokEntry *ent; // n_ids entries, KIND_NONE for holes
    uint32_t ent_cap;
    DsBuf arena; // token bytes
    // vocab bytes -> id (open addressing, id + 1, 0 = empty)
    uint32_t *vslot;
    size_t vcap;
    // merges in rank order, and (left, right) -> rank + 1 / merged id
    uint32_t (*merges)[2];
    int n_merges, merges_cap;
    uint64_t *mkey;
    uint32_t *mrank, *mres;
    size_t mcap;
    int32_t byte_id[256];
    uint32_t *added; // ids of added tokens, longest content first
    int n_added;
    AddedSet set[2]; // [0] matched in the raw text, [1] in the normalized text
    pcre2_code *alnum; // Rust's is_alphanumeric, made when a single_word token needs it
    Pretok *pre;
    TokNorm *norm;
    TokDecoder *dec;
    int dec_bytes; // the decoder gives the tokens' raw bytes (the fast path)
    // Hugging Face BPE model options
    int ignore_merges; // a pre-token that is a whole vocab token is used as is
    int byte_fallback, fuse_unk;
    int32_t unk_id;           // -1: none
    DsBuf prefix, suffix;     // continuing_subword_prefix / end_of_word_suffix, raw bytes
    int general;              // initial symbols need the options (else one token per byte)
    // the post-processor as ids around the text
    TokIds post_pre, post_suf;
    // tokenizer.json parts kept as read (compact JSON), written back by tok_to_json; NULL: ds's
    // defaults. model_opt: unk_token, continuing_subword_prefix, end_of_word_suffix, dropout.
    char *j_norm, *j_pre, *j_post, *j_dec, *j_model[4];
    int j_fuse_unk, j_byte_fallback;
    char hash[65];
};

// ---------------------------------------------------------------------------------------------
// Hashing

static uint64_t hash_bytes(const void *p, size_t n) {
    const unsigned char *s = p;
    uint64_t h = 1469598103934665603ull;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) { // 8 bytes at a time: this runs on every pre-token
        uint64_t w;
        memcpy(&w, s + i, 8);
        h = (h ^ w) * 0x100000001b3ull;
        h ^= h >> 29;
    }
    for (; i < n; i++) h = (h ^ s[i]) * 1099511628211ull;
    h ^= n;
    h *= 0x9E3779B97F4A7C15ull;
    return h ^ (h >> 32);
}

static uint64_t hash_u64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

static size_t pow2_at_least(size_t n) {
    size_t c = 16;
    while (c < n) c *= 2;
    return c;
}

// ---------------------------------------------------------------------------------------------
// The byte-level alphabet: printable bytes stand for themselves, the others map to U+0100 onwards.

// The mapping in closed form: bytes 0..32 -> U+0100.., 127..160 -> U+0121.., 173 -> U+0143.
static unsigned bytelevel_char(unsigned b) {
    if (b <= 32) return 256 + b;
    if (b >= 127 && b <= 160) return 289 + (b - 127);
    if (b == 173) return 323;
    return b;
}

static int bytelevel_byte(unsigned cp) {
    if (cp <= 32 || (cp >= 127 && cp <= 160) || cp == 173) return -1;
    if (cp < 256) return (int)cp;
    if (cp <= 288) return (int)cp - 256;
    if (cp <= 322) return (int)cp - 289 + 127;
    return cp == 323 ? 173 : -1;
}

void tok_bytelevel_encode(const void *s, size_t n, DsBuf *out) {
    const unsigned char *p = s;
    dsbuf_reserve(out, 2 * n + 1);
    for (size_t i = 0; i < n; i++) {
        unsigned cp = bytelevel_char(p[i]);
        if (cp < 0x80)
            out->data[out->len++] = (char)cp;
        else {
            out->data[out->len++] = (char)(0xC0 | (cp >> 6));
            out->data[out->len++] = (char)(0x80 | (cp & 0x3F));
        }
    }
    out->data[out->len] = 0;
}

int tok_bytelevel_decode(const char *str, size_t n, DsBuf *out) {
    const utf8proc_uint8_t *s = (const utf8proc_uint8_t *)str;
    dsbuf_reserve(out, n + 1);
    for (size_t i = 0; i < n;) {
        int32_t cp;
        utf8proc_ssize_t k = s[i] < 0x80 ? (cp = s[i], 1)
                                         : utf8proc_iterate(s + i, (utf8proc_ssize_t)(n - i), &cp);
        int b = k > 0 ? bytelevel_byte((unsigned)cp) : -1;
        if (b < 0) return DS_ERR;
        out->data[out->len++] = (char)b;
        i += (size_t)k;
    }
    out->data[out->len] = 0;
    return DS_OK;
}

// ---------------------------------------------------------------------------------------------
// Building

Tokenizer *tok_new(Pretok *p) {
    Tokenizer *t = ds_calloc(1, sizeof *t);
    t->pre = p;
    t->unk_id = -1;
    for (int b = 0; b < 256; b++) t->byte_id[b] = -1;
    return t;
}

static void added_set_free(AddedSet *s) {
    free(s->ids);
    free(s->poff);
    free(s->plen);
    dsbuf_free(&s->pat);
}

void tok_free(Tokenizer *t) {
    if (!t) return;
    free(t->ent);
    dsbuf_free(&t->arena);
    free(t->vslot);
    free(t->merges);
    free(t->mkey);
    free(t->mrank);
    free(t->mres);
    free(t->added);
    for (int k = 0; k < 2; k++) added_set_free(&t->set[k]);
    pcre2_code_free(t->alnum);
    pretok_free(t->pre);
    tok_norm_free(t->norm);
    tok_decoder_free(t->dec);
    dsbuf_free(&t->prefix);
    dsbuf_free(&t->suffix);
    tokids_free(&t->post_pre);
    tokids_free(&t->post_suf);
    free(t->j_norm);
    free(t->j_pre);
    free(t->j_post);
    free(t->j_dec);
    for (int k = 0; k < 4; k++) free(t->j_model[k]);
    free(t);
}

static TokEntry *entry_slot(Tokenizer *t, uint32_t id, DsErr *e) {
    if (id >= TOK_MAX_IDS) {
        ds_errf(e, "token id %u too large (limit %d)", id, TOK_MAX_IDS);
        return NULL;
    }
    if ((int)id >= t->n_ids) {
        if (id >= t->ent_cap) { // geometric growth: ids mostly arrive one by one
            uint32_t cap = DS_MAX(id + 1, 2 * t->ent_cap);
            t->ent = ds_realloc(t->ent, cap * sizeof *t->ent);
            t->ent_cap = cap;
        }
        memset(t->ent + t->n_ids, 0, (id + 1 - (uint32_t)t->n_ids) * sizeof *t->ent);
        t->n_ids = (int)id + 1;
    }
    if (t->ent[id].kind != KIND_NONE) {
        ds_errf(e, "token id %u given twice", id);
        return NULL;
    }
    return &t->ent[id];
}

static void store_bytes(Tokenizer *t, TokEntry *en, const void *bytes, size_t len) {
    en->off = (uint32_t)t->arena.len;
    en->len = (uint32_t)len;
    dsbuf_append(&t->arena, bytes, len);
}

int tok_add_token(Tokenizer *t, uint32_t id, const void *bytes, size_t len, DsErr *e) {
    if (len == 0) return ds_errf(e, "token id %u is empty", id);
    TokEntry *en = entry_slot(t, id, e);
    if (!en) return DS_ERR;
    en->kind = KIND_VOCAB;
    store_bytes(t, en, bytes, len);
    return DS_OK;
}

int tok_add_added_opts(Tokenizer *t, uint32_t id, const char *content, const TokAdded *o,
                       DsErr *e) {
    if (!*content) return ds_errf(e, "added token id %u is empty", id);
    if (pretok_utf8_valid_prefix(content, strlen(content)) != strlen(content))
        return ds_errf(e, "added token id %u is not valid UTF-8", id);
    TokEntry *en = entry_slot(t, id, e);
    if (!en) return DS_ERR;
    en->kind = KIND_ADDED;
    en->special = (uint8_t)(o->special != 0);
    en->in_vocab = (uint8_t)(o->in_vocab != 0);
    en->lstrip = (uint8_t)(o->lstrip != 0);
    en->rstrip = (uint8_t)(o->rstrip != 0);
    en->normalized = (uint8_t)(o->normalized != 0);
    en->single_word = (uint8_t)(o->single_word != 0);
    store_bytes(t, en, content, strlen(content));
    return DS_OK;
}

int tok_add_added(Tokenizer *t, uint32_t id, const char *content, int special, int in_vocab,
                  DsErr *e) {
    TokAdded o = {.special = special, .in_vocab = in_vocab};
    return tok_add_added_opts(t, id, content, &o, e);
}

int tok_add_merge(Tokenizer *t, uint32_t left, uint32_t right, DsErr *e) {
    for (int k = 0; k < 2; k++) {
        uint32_t id = k ? right : left;
        if ((int)id >= t->n_ids || t->ent[id].kind != KIND_VOCAB)
            return ds_errf(e, "merge %d: id %u is not a vocab token", t->n_merges + 1, id);
    }
    if (t->n_merges == t->merges_cap) {
        t->merges_cap = t->merges_cap ? 2 * t->merges_cap : 1024;
        t->merges = ds_realloc(t->merges, (size_t)t->merges_cap * sizeof *t->merges);
    }
    t->merges[t->n_merges][0] = left;
    t->merges[t->n_merges][1] = right;
    t->n_merges++;
    return DS_OK;
}

static const char *ent_bytes(const Tokenizer *t, uint32_t id) {
    return t->arena.data + t->ent[id].off;
}

static int vocab_find(const Tokenizer *t, const void *bytes, size_t len) {
    if (!t->vcap) return -1;
    size_t mask = t->vcap - 1;
    for (size_t i = hash_bytes(bytes, len) & mask;; i = (i + 1) & mask) {
        uint32_t s = t->vslot[i];
        if (!s) return -1;
        const TokEntry *en = &t->ent[s - 1];
        if (en->len == len && memcmp(ent_bytes(t, s - 1), bytes, len) == 0) return (int)(s - 1);
    }
}

// rank of the merge (left, right), or -1; *res gets the merged id.
static int merge_find(const Tokenizer *t, uint32_t left, uint32_t right, uint32_t *res) {
    uint64_t key = (uint64_t)left << 32 | right;
    size_t mask = t->mcap - 1;
    for (size_t i = hash_u64(key) & mask;; i = (i + 1) & mask) {
        if (!t->mrank[i]) return -1;
        if (t->mkey[i] == key) {
            *res = t->mres[i];
            return (int)t->mrank[i] - 1;
        }
    }
}

static int cmp_added_len(const void *a, const void *b, void *ctx) {
    const Tokenizer *t = ctx;
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    if (t->ent[x].len != t->ent[y].len) return t->ent[x].len > t->ent[y].len ? -1 : 1;
    return x < y ? -1 : x > y;
}

// Set k of the added tokens (t->added is longest first). Normalized tokens are matched by their
// normalized content, as Hugging Face does.
static void added_set_build(Tokenizer *t, int k) {
    AddedSet *s = &t->set[k];
    uint32_t count[256] = {0};
    DsBuf norm = {0};
    s->ids = ds_malloc(((size_t)t->n_added + 1) * sizeof *s->ids);
    s->poff = ds_malloc(((size_t)t->n_added + 1) * sizeof *s->poff);
    s->plen = ds_malloc(((size_t)t->n_added + 1) * sizeof *s->plen);
    uint32_t *tmp_off = ds_malloc(((size_t)t->n_added + 1) * sizeof *tmp_off);
    uint32_t *tmp_len = ds_malloc(((size_t)t->n_added + 1) * sizeof *tmp_len);
    uint32_t *tmp_id = ds_malloc(((size_t)t->n_added + 1) * sizeof *tmp_id);
    int n = 0;
    for (int i = 0; i < t->n_added; i++) {
        const TokEntry *en = &t->ent[t->added[i]];
        if ((en->normalized != 0) != k) continue;
        norm.len = 0;
        if (k)
            tok_norm_apply(t->norm, ent_bytes(t, t->added[i]), en->len, &norm);
        else
            dsbuf_append(&norm, ent_bytes(t, t->added[i]), en->len);
        if (norm.len == 0) continue; // normalized to nothing: never matches
        tmp_off[n] = (uint32_t)s->pat.len;
        tmp_len[n] = (uint32_t)norm.len;
        tmp_id[n] = t->added[i];
        dsbuf_append(&s->pat, norm.data, norm.len);
        count[(unsigned char)norm.data[0]]++;
        n++;
    }
    // stable bucketing by first byte; the order inside stays longest first (normalizing can
    // change lengths, so sort each bucket again by pattern length)
    s->start[0] = 0;
    for (int b = 0; b < 256; b++) s->start[b + 1] = s->start[b] + count[b];
    uint32_t fill[256];
    memcpy(fill, s->start, sizeof fill);
    for (int i = 0; i < n; i++) {
        unsigned char b0 = (unsigned char)s->pat.data[tmp_off[i]];
        uint32_t at = fill[b0]++;
        s->ids[at] = tmp_id[i], s->poff[at] = tmp_off[i], s->plen[at] = tmp_len[i];
    }
    for (int b = 0; b < 256; b++) // insertion sort by length, longest first; ties keep order
        for (uint32_t i = s->start[b] + 1; i < s->start[b + 1]; i++)
            for (uint32_t j = i; j > s->start[b] && s->plen[j - 1] < s->plen[j]; j--) {
                uint32_t x;
                x = s->ids[j], s->ids[j] = s->ids[j - 1], s->ids[j - 1] = x;
                x = s->poff[j], s->poff[j] = s->poff[j - 1], s->poff[j - 1] = x;
                x = s->plen[j], s->plen[j] = s->plen[j - 1], s->plen[j - 1] = x;
            }
    s->n = n;
    free(tmp_off);
    free(tmp_len);
    free(tmp_id);
    dsbuf_free(&norm);
}

int tok_build(Tokenizer *t, DsErr *e) {
    // vocab index
    t->vcap = pow2_at_least(2 * (size_t)t->n_ids + 2);
    t->vslot = ds_calloc(t->vcap, sizeof *t->vslot);
    size_t mask = t->vcap - 1;
    t->added = ds_malloc(((size_t)t->n_ids + 1) * sizeof *t->added);
    int single_word = 0;
    for (int id = 0; id < t->n_ids; id++) {
        const TokEntry *en = &t->ent[id];
        if (en->kind == KIND_ADDED) {
            t->added[t->n_added++] = (uint32_t)id;
            single_word |= en->single_word;
        }
        if (en->kind != KIND_VOCAB) continue;
        int dup = vocab_find(t, ent_bytes(t, (uint32_t)id), en->len);
        if (dup >= 0) return ds_errf(e, "tokens %d and %d have the same bytes", dup, id);
        size_t i = hash_bytes(ent_bytes(t, (uint32_t)id), en->len) & mask;
        while (t->vslot[i]) i = (i + 1) & mask;
        t->vslot[i] = (uint32_t)id + 1;
        if (en->len == 1) t->byte_id[(unsigned char)ent_bytes(t, (uint32_t)id)[0]] = id;
    }
    t->general = t->prefix.len > 0 || t->suffix.len > 0;
    for (int b = 0; b < 256; b++)
        if (t->byte_id[b] < 0) {
            if (!t->byte_fallback && t->unk_id < 0)
                return ds_errf(e,
                               "byte 0x%02x has no token (not a byte-level vocab, and neither "
                               "unk_token nor byte_fallback)",
                               b);
            t->general = 1;
        }
    qsort_r(t->added, (size_t)t->n_added, sizeof *t->added, cmp_added_len, t);
    for (int k = 0; k < 2; k++) added_set_build(t, k);
    if (single_word) {
        int err;
        PCRE2_SIZE off;
        t->alnum = pcre2_compile((PCRE2_SPTR) "[\\p{Alphabetic}\\p{N}]", PCRE2_ZERO_TERMINATED,
                                 PCRE2_UTF | PCRE2_UCP, &err, &off, NULL);
        DS_CHECK(t->alnum != NULL);
    }
    // merge index
    t->mcap = pow2_at_least(2 * (size_t)t->n_merges + 2);
    t->mkey = ds_calloc(t->mcap, sizeof *t->mkey);
    t->mrank = ds_calloc(t->mcap, sizeof *t->mrank);
    t->mres = ds_calloc(t->mcap, sizeof *t->mres);
    mask = t->mcap - 1;
    DsBuf cat = {0};
    for (int r = 0; r < t->n_merges; r++) {
        uint32_t a = t->merges[r][0], b = t->merges[r][1], res;
        if (merge_find(t, a, b, &res) >= 0) continue; // a repeated merge keeps its first rank
        cat.len = 0;
        dsbuf_append(&cat, ent_bytes(t, a), t->ent[a].len);
        // with a continuing_subword_prefix, the right side loses it (Hugging Face's rule)
        size_t skip = DS_MIN((size_t)t->prefix.len, (size_t)t->ent[b].len);
        dsbuf_append(&cat, ent_bytes(t, b) + skip, t->ent[b].len - skip);
        int id = vocab_find(t, cat.data, cat.len);
        if (id < 0) {
            dsbuf_free(&cat);
            return ds_errf(e, "merge %d (ids %u %u): the merged token is not in the vocab", r + 1,
                           a, b);
        }
        uint64_t key = (uint64_t)a << 32 | b;
        size_t i = hash_u64(key) & mask;
        while (t->mrank[i]) i = (i + 1) & mask;
        t->mkey[i] = key;
        t->mrank[i] = (uint32_t)r + 1;
        t->mres[i] = (uint32_t)id;
    }
    dsbuf_free(&cat);
    if (!t->j_dec) t->dec_bytes = 1; // ds's own files: the ByteLevel decoder
    size_t n;
    char *json = tok_to_json(t, &n);
    sha256_hex(json, n, t->hash);
    free(json);
    return DS_OK;
}

// ---------------------------------------------------------------------------------------------
// Queries

int tok_vocab_size(const Tokenizer *t) { return t->n_ids; }
int tok_n_merges(const Tokenizer *t) { return t->n_merges; }
void tok_merge_pair(const Tokenizer *t, int rank, uint32_t *left, uint32_t *right) {
    *left = t->merges[rank][0];
    *right = t->merges[rank][1];
}
void tok_hash(const Tokenizer *t, char hex[65]) { memcpy(hex, t->hash, 65); }
const Pretok *tok_pretok(const Tokenizer *t) { return t->pre; }

const char *tok_token_bytes(const Tokenizer *t, uint32_t id, size_t *len) {
    if ((int)id >= t->n_ids || id >= TOK_MAX_IDS || t->ent[id].kind == KIND_NONE) return NULL;
    if (len) *len = t->ent[id].len;
    return ent_bytes(t, id);
}

int tok_is_special(const Tokenizer *t, uint32_t id) {
    return (int)id < t->n_ids && t->ent[id].kind == KIND_ADDED;
}

int tok_token_id(const Tokenizer *t, const char *token) {
    size_t n = strlen(token);
    for (int i = 0; i < t->n_added; i++) {
        uint32_t id = t->added[i];
        if (t->ent[id].len == n && memcmp(ent_bytes(t, id), token, n) == 0) return (int)id;
    }
    int id = vocab_find(t, token, n);
    if (id >= 0) return id;
    DsBuf raw = {0};
    if (tok_bytelevel_decode(token, n, &raw) == DS_OK) id = vocab_find(t, raw.data, raw.len);
    dsbuf_free(&raw);
    return id;
}

// ---------------------------------------------------------------------------------------------
// Encoding

void tokids_push(TokIds *v, uint32_t id) {
    if (v->n == v->cap) {
        v->cap = v->cap ? 2 * v->cap : 256;
        v->ids = ds_realloc(v->ids, v->cap * sizeof *v->ids);
    }
    v->ids[v->n++] = id;
}

void tokids_free(TokIds *v) {
    free(v->ids);
    v->ids = NULL;
    v->n = v->cap = 0;
}

// The symbols a pre-token starts from when the model options matter (Hugging Face's merge_word):
// a continuing_subword_prefix on every byte but the first, an end_of_word_suffix on the last,
// byte_fallback's <0xXX> tokens or unk_token (fused with fuse_unk) for bytes with no token.
static void initial_symbols(const Tokenizer *t, const unsigned char *s, size_t n, TokIds *v) {
    DsBuf key = {0}, spelled = {0};
    int unk_pending = 0;
    for (size_t i = 0; i < n; i++) {
        key.len = 0;
        if (i > 0) dsbuf_append(&key, t->prefix.data, t->prefix.len);
        dsbuf_append(&key, s + i, 1);
        if (i + 1 == n) dsbuf_append(&key, t->suffix.data, t->suffix.len);
        int id = vocab_find(t, key.data, key.len);
        if (id >= 0) {
            if (unk_pending) tokids_push(v, (uint32_t)t->unk_id);
            unk_pending = 0;
            tokids_push(v, (uint32_t)id);
            continue;
        }
        if (t->byte_fallback) { // the bytes of the symbol as tokenizer.json spells it
            spelled.len = 0;
            tok_bytelevel_encode(key.data, key.len, &spelled);
            size_t before = v->n, k;
            for (k = 0; k < spelled.len; k++) {
                char code[8];
                snprintf(code, sizeof code, "<0x%02X>", (unsigned char)spelled.data[k]);
                int b = vocab_find(t, code, 6);
                if (b < 0) break;
                tokids_push(v, (uint32_t)b);
            }
            if (k == spelled.len) continue; // as Hugging Face, a pending unk stays pending
            v->n = before;
        }
        if (t->unk_id >= 0) {
            if (unk_pending && !t->fuse_unk) tokids_push(v, (uint32_t)t->unk_id);
            unk_pending = 1;
        } // no unk_token: the byte is dropped, as Hugging Face does
    }
    if (unk_pending) tokids_push(v, (uint32_t)t->unk_id);
    dsbuf_free(&key);
    dsbuf_free(&spelled);
}

static void bpe_run(const Tokenizer *t, const unsigned char *s, const uint32_t *init, size_t n,
                    TokIds *out);

// BPE on one pre-token.
static void bpe_piece(const Tokenizer *t, const unsigned char *s, size_t n, TokIds *out) {
    if (n == 1 && !t->general) {
        tokids_push(out, (uint32_t)t->byte_id[s[0]]);
        return;
    }
    if (t->ignore_merges) {
        int id = vocab_find(t, s, n);
        if (id >= 0) {
            tokids_push(out, (uint32_t)id);
            return;
        }
    }
    if (!t->general) {
        bpe_run(t, s, NULL, n, out);
        return;
    }
    TokIds init = {0};
    initial_symbols(t, s, n, &init);
    if (init.n) bpe_run(t, NULL, init.ids, init.n, out);
    tokids_free(&init);
}

// Repeatedly merge the adjacent pair of lowest rank, leftmost first, starting from init[0, n) (or,
// when init is NULL, the byte tokens of s). Symbols form a linked list over positions; a min-heap
// holds (rank, position) candidates, stale ones are skipped when popped. O(n log n) per pre-token,
// so a long run of spaces costs no more than text.
static void bpe_run(const Tokenizer *t, const unsigned char *s, const uint32_t *init, size_t n,
                    TokIds *out) {
    enum { SMALL = 64 };
    uint32_t id_s[SMALL];
    int32_t next_s[SMALL], prev_s[SMALL];
    uint64_t heap_s[3 * SMALL];
    uint32_t *id = id_s;
    int32_t *next = next_s, *prev = prev_s;
    uint64_t *heap = heap_s;
    if (n > SMALL) {
        id = ds_malloc(n * sizeof *id);
        next = ds_malloc(n * sizeof *next);
        prev = ds_malloc(n * sizeof *prev);
        heap = ds_malloc(3 * n * sizeof *heap);
    }
    size_t hn = 0;
#define HEAP_PUSH(v)                                                                               \
    do {                                                                                           \
        size_t i_ = hn++;                                                                          \
        uint64_t v_ = (v);                                                                         \
        while (i_ > 0 && heap[(i_ - 1) / 2] > v_) {                                                \
            heap[i_] = heap[(i_ - 1) / 2];                                                         \
            i_ = (i_ - 1) / 2;                                                                     \
        }                                                                                          \
        heap[i_] = v_;                                                                             \
    } while (0)
    for (size_t i = 0; i < n; i++) {
        id[i] = init ? init[i] : (uint32_t)t->byte_id[s[i]];
        next[i] = i + 1 < n ? (int32_t)(i + 1) : -1;
        prev[i] = (int32_t)i - 1;
    }
    uint32_t res;
    for (size_t i = 0; i + 1 < n; i++) {
        int r = merge_find(t, id[i], id[i + 1], &res);
        if (r >= 0) HEAP_PUSH((uint64_t)r << 32 | i);
    }
    while (hn > 0) {
        uint64_t top = heap[0];
        // pop
        uint64_t last = heap[--hn];
        size_t i = 0;
        for (;;) {
            size_t c = 2 * i + 1;
            if (c >= hn) break;
            if (c + 1 < hn && heap[c + 1] < heap[c]) c++;
            if (heap[c] >= last) break;
            heap[i] = heap[c];
            i = c;
        }
        if (hn > 0) heap[i] = last;
        int rank = (int)(top >> 32);
        int32_t pos = (int32_t)(top & 0xffffffffu), nx = next[pos];
        if (id[pos] == UINT32_MAX || nx < 0 || merge_find(t, id[pos], id[nx], &res) != rank)
            continue; // stale: a neighbour changed since this candidate was pushed
        id[pos] = res;
        id[nx] = UINT32_MAX;
        next[pos] = next[nx];
        if (next[nx] >= 0) prev[next[nx]] = pos;
        int r;
        if (prev[pos] >= 0 && (r = merge_find(t, id[prev[pos]], id[pos], &res)) >= 0)
            HEAP_PUSH((uint64_t)r << 32 | (uint32_t)prev[pos]);
        if (next[pos] >= 0 && (r = merge_find(t, id[pos], id[next[pos]], &res)) >= 0)
            HEAP_PUSH((uint64_t)r << 32 | (uint32_t)pos);
    }
#undef HEAP_PUSH
    for (int32_t i = 0; i >= 0; i = next[i]) tokids_push(out, id[i]);
    if (n > SMALL) {
        free(id);
        free(next);
        free(prev);
        free(heap);
    }
}

// Pre-token cache: open addressing over entries whose keys and ids live in two arenas.
typedef struct CacheEnt {
    uint64_t h;
    uint32_t koff, klen, ioff, icount;
} CacheEnt;

struct TokCache {
    uint32_t *slot; // entry index + 1, 0 = empty
    size_t cap;
    CacheEnt *ent;
    size_t n, ecap;
    DsBuf keys;
    TokIds ids;
};

enum { CACHE_MAX_BYTES = 64 << 20 }; // cleared when the key arena grows past this

TokCache *tok_cache_new(void) { return ds_calloc(1, sizeof(TokCache)); }

void tok_cache_free(TokCache *c) {
    if (!c) return;
    free(c->slot);
    free(c->ent);
    dsbuf_free(&c->keys);
    tokids_free(&c->ids);
    free(c);
}

static void cache_clear(TokCache *c) {
    if (c->cap) memset(c->slot, 0, c->cap * sizeof *c->slot);
    c->n = 0;
    c->keys.len = 0;
    c->ids.n = 0;
}

static void cache_grow(TokCache *c) {
    size_t cap = c->cap ? 2 * c->cap : 4096;
    free(c->slot);
    c->slot = ds_calloc(cap, sizeof *c->slot);
    c->cap = cap;
    for (size_t k = 0; k < c->n; k++) {
        size_t i = c->ent[k].h & (cap - 1);
        while (c->slot[i]) i = (i + 1) & (cap - 1);
        c->slot[i] = (uint32_t)k + 1;
    }
}

typedef struct EncodeCtx {
    const Tokenizer *t;
    TokCache *c; // NULL: no caching
    TokIds *out;
} EncodeCtx;

static void encode_piece(void *ctx, const char *piece, size_t len) {
    EncodeCtx *x = ctx;
    TokCache *c = x->c;
    if (!c || len == 1) {
        bpe_piece(x->t, (const unsigned char *)piece, len, x->out);
        return;
    }
    uint64_t h = hash_bytes(piece, len);
    if (c->cap) {
        for (size_t i = h & (c->cap - 1);; i = (i + 1) & (c->cap - 1)) {
            uint32_t s = c->slot[i];
            if (!s) break;
            const CacheEnt *en = &c->ent[s - 1];
            if (en->h == h && en->klen == len && memcmp(c->keys.data + en->koff, piece, len) == 0) {
                for (uint32_t k = 0; k < en->icount; k++)
                    tokids_push(x->out, c->ids.ids[en->ioff + k]);
                return;
            }
        }
    }
    size_t before = x->out->n;
    bpe_piece(x->t, (const unsigned char *)piece, len, x->out);
    if (c->keys.len + len > CACHE_MAX_BYTES) cache_clear(c);
    if (2 * (c->n + 1) > c->cap) cache_grow(c);
    if (c->n == c->ecap) {
        c->ecap = c->ecap ? 2 * c->ecap : 4096;
        c->ent = ds_realloc(c->ent, c->ecap * sizeof *c->ent);
    }
    CacheEnt *en = &c->ent[c->n];
    en->h = h;
    en->koff = (uint32_t)c->keys.len;
    en->klen = (uint32_t)len;
    en->ioff = (uint32_t)c->ids.n;
    en->icount = (uint32_t)(x->out->n - before);
    dsbuf_append(&c->keys, piece, len);
    for (size_t k = before; k < x->out->n; k++) tokids_push(&c->ids, x->out->ids[k]);
    size_t i = h & (c->cap - 1);
    while (c->slot[i]) i = (i + 1) & (c->cap - 1);
    c->slot[i] = (uint32_t)++c->n;
}

// Next match of set s in text[from, len): the leftmost, the longest at it; its index in the set
// (or -1) and [*a, *b).
static int added_next(const AddedSet *s, const char *text, size_t len, size_t from, size_t *a,
                      size_t *b) {
    for (size_t p = from; p < len; p++) {
        unsigned char c = (unsigned char)text[p];
        for (uint32_t k = s->start[c]; k < s->start[c + 1]; k++) {
            uint32_t pl = s->plen[k];
            if (pl <= len - p && memcmp(text + p, s->pat.data + s->poff[k], pl) == 0) {
                *a = p, *b = p + pl;
                return (int)k;
            }
        }
    }
    return -1;
}

// Rust's is_alphanumeric of the character that ends (end = 1) or starts s[0, n).
static int word_char(const Tokenizer *t, const char *s, size_t n, int end) {
    if (n == 0) return 0;
    size_t at = 0;
    if (end) {
        at = n - 1;
        while (at > 0 && ((unsigned char)s[at] & 0xC0) == 0x80 && n - at < 4) at--;
    }
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(t->alnum, NULL);
    if (!md) ds_fatal(__FILE__, __LINE__, "out of memory (match data)");
    size_t v = pretok_utf8_valid_prefix(s + at, n - at);
    int rc = v ? pcre2_match(t->alnum, (PCRE2_SPTR)(s + at), v, 0,
                             PCRE2_ANCHORED | PCRE2_NO_UTF_CHECK, md, NULL)
               : -1;
    pcre2_match_data_free(md);
    return rc >= 0;
}

// Bytes of whitespace at the end (dir < 0) or start (dir > 0) of s[0, n).
static size_t white_len(const char *s, size_t n, int dir) {
    size_t i = dir > 0 ? 0 : n;
    while (dir > 0 ? i < n : i > 0) {
        size_t st = i, en;
        if (dir > 0) {
            int32_t cp;
            utf8proc_ssize_t k =
                utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(n - i), &cp);
            if (k <= 0 || !tok_is_white_space(cp)) break;
            i += (size_t)k;
        } else {
            en = i, st = i - 1;
            while (st > 0 && ((unsigned char)s[st] & 0xC0) == 0x80 && en - st < 4) st--;
            int32_t cp;
            utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)s + st,
                                                  (utf8proc_ssize_t)(en - st), &cp);
            if (k != (utf8proc_ssize_t)(en - st) || !tok_is_white_space(cp)) break;
            i = st;
        }
    }
    return dir > 0 ? i : n - i;
}

typedef void (*SegFn)(void *ctx, const char *s, size_t n);

// Hugging Face's AddedVocabulary::find_matches: text[0, len) cut at the added tokens of set k; the
// text between them goes to fn, the ids to out. Special tokens are passed over (their text stays
// text) without TOK_SPECIAL; single_word tokens need no letter or digit next to them; lstrip and
// rstrip take the whitespace beside the token.
static void split_added(const Tokenizer *t, int k, const char *text, size_t len, int flags,
                        SegFn fn, void *ctx, TokIds *out) {
    const AddedSet *s = &t->set[k];
    size_t start_off = 0, pos = 0, a, b;
    int m;
    while (s->n && (m = added_next(s, text, len, pos, &a, &b)) >= 0) {
        uint32_t id = s->ids[m];
        const TokEntry *en = &t->ent[id];
        pos = b;
        if (en->special && !(flags & TOK_SPECIAL)) continue;
        if (en->single_word &&
            (word_char(t, text, a, 1) || word_char(t, text + b, len - b, 0)))
            continue;
        if (en->lstrip) a = DS_MAX(a - white_len(text, a, -1), start_off);
        if (en->rstrip) b += white_len(text + b, len - b, 1);
        if (start_off < a) fn(ctx, text + start_off, a - start_off);
        tokids_push(out, id);
        start_off = pos = b;
    }
    if (start_off < len) fn(ctx, text + start_off, len - start_off);
}

typedef struct EncodeCall {
    const Tokenizer *t;
    EncodeCtx x;
    int flags;
} EncodeCall;

static void seg_pretok(void *ctx, const char *s, size_t n) {
    EncodeCall *c = ctx;
    pretok_split(c->t->pre, s, n, encode_piece, &c->x);
}

// A stretch of raw text between raw-matched added tokens: normalize it, then cut at the
// normalized added tokens.
static void seg_normalize(void *ctx, const char *s, size_t n) {
    EncodeCall *c = ctx;
    const Tokenizer *t = c->t;
    if (t->norm) {
        DsBuf nb = {0};
        tok_norm_apply(t->norm, s, n, &nb);
        split_added(t, 1, nb.data, nb.len, c->flags, seg_pretok, c, c->x.out);
        dsbuf_free(&nb);
    } else
        split_added(t, 1, s, n, c->flags, seg_pretok, c, c->x.out);
}

size_t tok_encode_cached(const Tokenizer *t, TokCache *c, const char *text, size_t len, int flags,
                         TokIds *out) {
    size_t before = out->n;
    EncodeCall call = {.t = t, .x = {t, c, out}, .flags = flags};
    if (flags & TOK_ADD_SPECIAL)
        for (size_t i = 0; i < t->post_pre.n; i++) tokids_push(out, t->post_pre.ids[i]);
    split_added(t, 0, text, len, flags, seg_normalize, &call, out);
    if (flags & TOK_ADD_SPECIAL)
        for (size_t i = 0; i < t->post_suf.n; i++) tokids_push(out, t->post_suf.ids[i]);
    return out->n - before;
}

size_t tok_encode(const Tokenizer *t, const char *text, size_t len, int flags, TokIds *out) {
    // Short texts repeat few pre-tokens: a cache would cost more than it saves.
    if (len < 4096) return tok_encode_cached(t, NULL, text, len, flags, out);
    TokCache *c = tok_cache_new();
    size_t n = tok_encode_cached(t, c, text, len, flags, out);
    tok_cache_free(c);
    return n;
}

void tok_decode(const Tokenizer *t, const uint32_t *ids, size_t n, DsBuf *out) {
    if (t->dec_bytes) {
        for (size_t i = 0; i < n; i++) {
            size_t len;
            const char *b = tok_token_bytes(t, ids[i], &len);
            if (!b) continue;
            if (t->ent[ids[i]].kind == KIND_ADDED) { // ByteLevel maps its text if it can
                size_t at = out->len;
                if (tok_bytelevel_decode(b, len, out) == DS_OK) continue;
                out->len = at;
            }
            dsbuf_append(out, b, len);
        }
        return;
    }
    // the decoder's steps run on the tokens as tokenizer.json spells them
    DsBuf arena = {0};
    size_t *off = ds_malloc((n + 1) * sizeof *off), k = 0;
    off[0] = 0;
    for (size_t i = 0; i < n; i++) {
        size_t len;
        const char *b = tok_token_bytes(t, ids[i], &len);
        if (!b) continue;
        if (t->ent[ids[i]].kind == KIND_ADDED)
            dsbuf_append(&arena, b, len);
        else
            tok_bytelevel_encode(b, len, &arena);
        off[++k] = arena.len;
    }
    tok_decoder_run(t->dec, arena.data, off, k, out);
    dsbuf_free(&arena);
    free(off);
}

// ---------------------------------------------------------------------------------------------
// tokenizer.json

static json_t *byte_level_obj(int use_regex) {
    return json_pack("{s:s, s:b, s:b, s:b}", "type", "ByteLevel", "add_prefix_space", 0,
                     "trim_offsets", 1, "use_regex", use_regex);
}

// The GPT-2 pattern alone is ByteLevel with use_regex; anything else is a Sequence of Splits.
static json_t *pretok_json(const Pretok *p) {
    if (pretok_count(p) == 1 && strcmp(pretok_regex(p, 0), pretok_pattern(PRETOK_GPT2)) == 0)
        return byte_level_obj(1);
    json_t *seq = json_array();
    for (int i = 0; i < pretok_count(p); i++)
        json_array_append_new(seq, json_pack("{s:s, s:{s:s}, s:s, s:b}", "type", "Split", "pattern",
                                             "Regex", pretok_regex(p, i), "behavior", "Isolated",
                                             "invert", 0));
    json_array_append_new(seq, byte_level_obj(0));
    return json_pack("{s:s, s:o}", "type", "Sequence", "pretokenizers", seq);
}

static void json_str(DsBuf *b, const char *s, size_t n) {
    dsbuf_reserve(b, n + 2);
    b->data[b->len++] = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            dsbuf_append(b, esc, 2);
        } else if (c < 0x20)
            dsbuf_printf(b, "\\u%04x", c);
        else {
            dsbuf_reserve(b, 1);
            b->data[b->len++] = (char)c;
        }
    }
    dsbuf_append(b, "\"", 1);
}

static void json_obj(DsBuf *b, json_t *o) {
    char *s = json_dumps(o, JSON_COMPACT);
    DS_CHECK(s != NULL);
    dsbuf_append(b, s, strlen(s));
    free(s);
    json_decref(o);
}

// Written by hand rather than through a jansson tree: loading a 100k-token vocabulary computes
// this (for the hash), so it has to be cheap. Small objects on one line, one vocab entry or merge
// per line.
char *tok_to_json(const Tokenizer *t, size_t *len) {
    DsBuf b = {0}, key = {0};
    dsbuf_printf(&b, "{\n  \"version\": \"1.0\",\n  \"truncation\": null,\n  \"padding\": null,\n"
                     "  \"added_tokens\": [");
    int first = 1;
    for (int id = 0; id < t->n_ids; id++) {
        const TokEntry *en = &t->ent[id];
        if (en->kind != KIND_ADDED) continue;
        dsbuf_printf(&b, "%s\n    {\"id\": %d, \"content\": ", first ? "" : ",", id);
        json_str(&b, ent_bytes(t, (uint32_t)id), en->len);
        dsbuf_printf(&b,
                     ", \"single_word\": %s, \"lstrip\": %s, \"rstrip\": %s, "
                     "\"normalized\": %s, \"special\": %s}",
                     en->single_word ? "true" : "false", en->lstrip ? "true" : "false",
                     en->rstrip ? "true" : "false", en->normalized ? "true" : "false",
                     en->special ? "true" : "false");
        first = 0;
    }
    dsbuf_printf(&b, "%s],\n  \"normalizer\": %s,\n  \"pre_tokenizer\": ", first ? "" : "\n  ",
                 t->j_norm ? t->j_norm : "null");
    if (t->j_pre)
        dsbuf_append(&b, t->j_pre, strlen(t->j_pre));
    else
        json_obj(&b, pretok_json(t->pre));
    dsbuf_printf(&b, ",\n  \"post_processor\": %s,\n  \"decoder\": ",
                 t->j_post ? t->j_post : "null");
    if (t->j_dec)
        dsbuf_append(&b, t->j_dec, strlen(t->j_dec));
    else
        json_obj(&b, byte_level_obj(1));
    const char *const *jm = (const char *const *)t->j_model;
    dsbuf_printf(&b,
                 ",\n  \"model\": {\n    \"type\": \"BPE\",\n    \"dropout\": %s,\n"
                 "    \"unk_token\": %s,\n    \"continuing_subword_prefix\": %s,\n"
                 "    \"end_of_word_suffix\": %s,\n    \"fuse_unk\": %s,\n"
                 "    \"byte_fallback\": %s,\n    \"ignore_merges\": %s,\n    \"vocab\": {",
                 jm[3] ? jm[3] : "null", jm[0] ? jm[0] : "null", jm[1] ? jm[1] : "null",
                 jm[2] ? jm[2] : "null", t->fuse_unk ? "true" : "false",
                 t->byte_fallback ? "true" : "false", t->ignore_merges ? "true" : "false");
    first = 1;
    for (int id = 0; id < t->n_ids; id++) {
        const TokEntry *en = &t->ent[id];
        key.len = 0;
        if (en->kind == KIND_VOCAB)
            tok_bytelevel_encode(ent_bytes(t, (uint32_t)id), en->len, &key);
        else if (en->kind == KIND_ADDED && en->in_vocab)
            dsbuf_append(&key, ent_bytes(t, (uint32_t)id), en->len);
        else
            continue;
        dsbuf_append(&b, first ? "\n      " : ",\n      ", first ? 7 : 8);
        json_str(&b, key.data, key.len);
        dsbuf_printf(&b, ": %d", id);
        first = 0;
    }
    // "a b" strings: readable by every tokenizers release; byte-level tokens never hold a space.
    dsbuf_printf(&b, "\n    },\n    \"merges\": [");
    for (int r = 0; r < t->n_merges; r++) {
        uint32_t x = t->merges[r][0], y = t->merges[r][1];
        key.len = 0;
        tok_bytelevel_encode(ent_bytes(t, x), t->ent[x].len, &key);
        dsbuf_append(&key, " ", 1);
        tok_bytelevel_encode(ent_bytes(t, y), t->ent[y].len, &key);
        dsbuf_append(&b, r ? ",\n      " : "\n      ", r ? 8 : 7);
        json_str(&b, key.data, key.len);
    }
    dsbuf_printf(&b, "%s]\n  }\n}\n", t->n_merges ? "\n    " : "");
    dsbuf_free(&key);
    if (len) *len = b.len;
    return b.data;
}

int tok_save(const Tokenizer *t, const char *path, DsErr *e) {
    size_t n;
    char *s = tok_to_json(t, &n);
    AtomicFile a;
    if (atomic_open(&a, path, e) != DS_OK) {
        free(s);
        return DS_ERR;
    }
    if (fwrite(s, 1, n, a.f) != n) {
        free(s);
        atomic_abort(&a);
        return ds_errf(e, "%s: write error", path);
    }
    free(s);
    return atomic_commit(&a, e);
}

static char *dump(const json_t *j) {
    char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
    DS_CHECK(s != NULL);
    return s;
}

static void prepend_ids(TokIds *v, const TokIds *add) {
    TokIds n = {0};
    for (size_t i = 0; i < add->n; i++) tokids_push(&n, add->ids[i]);
    for (size_t i = 0; i < v->n; i++) tokids_push(&n, v->ids[i]);
    tokids_free(v);
    *v = n;
}

// A special token of a post-processor: [text, id] (Roberta/Bert) -> its id.
static int pair_id(const json_t *j, const char *path, const char *key, TokIds *v, DsErr *e) {
    const json_t *p = json_object_get(j, key), *id = json_array_get(p, 1);
    if (!json_is_array(p) || !json_is_integer(id) || json_integer_value(id) < 0 ||
        json_integer_value(id) >= TOK_MAX_IDS)
        return ds_errf(e, "%s.%s: expected [\"TOKEN\", ID]", path, key);
    tokids_push(v, (uint32_t)json_integer_value(id));
    return DS_OK;
}

// The post-processor, for one sequence, as ids before and after it. Sequence applies its steps
// in turn, each wrapping what the one before made.
static int parse_post(const json_t *j, const char *path, TokIds *pre, TokIds *suf, DsErr *e) {
    const char *type = json_string_value(json_object_get(j, "type"));
    if (!json_is_object(j) || !type) return ds_errf(e, "%s: missing \"type\"", path);
    if (strcmp(type, "ByteLevel") == 0) return DS_OK; // offsets only
    if (strcmp(type, "Sequence") == 0) {
        const json_t *list = json_object_get(j, "processors");
        if (!json_is_array(list)) return ds_errf(e, "%s: missing \"processors\" array", path);
        size_t i;
        const json_t *v;
        json_array_foreach(list, i, v) {
            char sub[256];
            snprintf(sub, sizeof sub, "%s.processors[%zu]", path, i);
            if (parse_post(v, sub, pre, suf, e) != DS_OK) return DS_ERR;
        }
        return DS_OK;
    }
    TokIds p = {0}, q = {0};
    int rc = DS_OK;
    if (strcmp(type, "RobertaProcessing") == 0 || strcmp(type, "BertProcessing") == 0) {
        if (pair_id(j, path, "cls", &p, e) || pair_id(j, path, "sep", &q, e)) rc = DS_ERR;
    } else if (strcmp(type, "TemplateProcessing") == 0) {
        const json_t *single = json_object_get(j, "single"), *specials =
                                                                 json_object_get(j, "special_tokens");
        if (!json_is_array(single)) rc = ds_errf(e, "%s: missing \"single\" array", path);
        int seen_a = 0;
        size_t i;
        const json_t *v;
        json_array_foreach(single, i, v) {
            if (rc) break;
            const json_t *sq = json_object_get(v, "Sequence"), *sp = json_object_get(v, "SpecialToken");
            if (sq) {
                const char *id = json_string_value(json_object_get(sq, "id"));
                if (!id || strcmp(id, "A") != 0 || seen_a++)
                    rc = ds_errf(e, "%s.single[%zu]: only one sequence, $A, is supported", path, i);
                continue;
            }
            const char *name = json_string_value(json_object_get(sp, "id"));
            const json_t *ids = json_object_get(json_object_get(specials, name ? name : ""), "ids");
            if (!name || !json_is_array(ids)) {
                rc = ds_errf(e, "%s.single[%zu]: special token \"%s\" is not in special_tokens",
                             path, i, name ? name : "?");
                break;
            }
            size_t k;
            const json_t *x;
            json_array_foreach(ids, k, x) {
                if (!json_is_integer(x) || json_integer_value(x) < 0 ||
                    json_integer_value(x) >= TOK_MAX_IDS) {
                    rc = ds_errf(e, "%s.special_tokens[\"%s\"].ids[%zu]: not a token id", path,
                                 name, k);
                    break;
                }
                tokids_push(seen_a ? &q : &p, (uint32_t)json_integer_value(x));
            }
        }
        if (!rc && !seen_a) rc = ds_errf(e, "%s.single: no $A", path);
    } else
        rc = ds_errf(e, "%s: post_processor \"%s\" is not supported", path, type);
    if (rc == DS_OK) {
        prepend_ids(pre, &p);
        for (size_t i = 0; i < q.n; i++) tokids_push(suf, q.ids[i]);
    }
    tokids_free(&p);
    tokids_free(&q);
    return rc;
}

// A model string option (unk_token, subword prefix/suffix): NULL when null or absent, else the
// string; DS_ERR when it is something else.
static int model_str(const json_t *model, const char *key, const char **out, DsErr *e) {
    const json_t *v = json_object_get(model, key);
    *out = NULL;
    if (!v || json_is_null(v)) return DS_OK;
    if (!json_is_string(v)) return ds_errf(e, "model.%s: expected a string or null", key);
    *out = json_string_value(v);
    return DS_OK;
}

static Tokenizer *from_json_obj(const json_t *root, DsErr *e) {
    Tokenizer *t = NULL;
    DsBuf raw = {0};
    json_t *added_map = NULL;
    TokNorm *norm = NULL;
    TokDecoder *dec = NULL;
    const json_t *model = json_object_get(root, "model");
    if (!json_is_object(model)) {
        ds_errf(e, "missing \"model\"");
        goto fail;
    }
    const char *mtype = json_string_value(json_object_get(model, "type"));
    if (mtype && strcmp(mtype, "BPE") != 0) {
        ds_errf(e, "model type \"%s\" is not supported (only BPE)", mtype);
        goto fail;
    }
    const json_t *drop = json_object_get(model, "dropout");
    if (drop && !json_is_null(drop) && !(json_is_number(drop) && json_number_value(drop) == 0)) {
        ds_errf(e, "model.dropout: BPE dropout is not supported (encoding would be random)");
        goto fail;
    }
    for (int k = 0; k < 2; k++) {
        const char *key = k ? "padding" : "truncation";
        const json_t *v = json_object_get(root, key);
        if (v && !json_is_null(v)) {
            ds_errf(e, "%s is not supported (it changes what encode returns)", key);
            goto fail;
        }
    }
    const char *unk, *cont, *eow;
    if (model_str(model, "unk_token", &unk, e) || model_str(model, "continuing_subword_prefix",
                                                            &cont, e) ||
        model_str(model, "end_of_word_suffix", &eow, e))
        goto fail;
    if (tok_norm_from_json(json_object_get(root, "normalizer"), &norm, e) != DS_OK) goto fail;
    if (tok_decoder_from_json(json_object_get(root, "decoder"), &dec, e) != DS_OK) goto fail;
    Pretok *p = pretok_from_json(json_object_get(root, "pre_tokenizer"), e);
    if (!p) goto fail;
    t = tok_new(p);
    t->norm = norm, norm = NULL;
    t->dec = dec, dec = NULL;
    t->dec_bytes = tok_decoder_is_bytes(t->dec);
    t->ignore_merges = json_is_true(json_object_get(model, "ignore_merges"));
    t->byte_fallback = json_is_true(json_object_get(model, "byte_fallback"));
    t->fuse_unk = json_is_true(json_object_get(model, "fuse_unk"));
    static const char *const parts[] = {"normalizer", "pre_tokenizer", "post_processor", "decoder"};
    char **jp[] = {&t->j_norm, &t->j_pre, &t->j_post, &t->j_dec};
    for (int k = 0; k < 4; k++) {
        const json_t *v = json_object_get(root, parts[k]);
        if (v && !json_is_null(v)) *jp[k] = dump(v);
    }
    if (!t->j_dec) t->j_dec = ds_strdup("null"); // a null decoder is kept as null
    static const char *const mkeys[] = {"unk_token", "continuing_subword_prefix",
                                        "end_of_word_suffix", "dropout"};
    for (int k = 0; k < 4; k++) {
        const json_t *v = json_object_get(model, mkeys[k]);
        if (v && !json_is_null(v)) t->j_model[k] = dump(v);
    }
    for (int k = 0; k < 2; k++) { // the subword affixes in raw bytes
        const char *a = k ? eow : cont;
        if (a && tok_bytelevel_decode(a, strlen(a), k ? &t->suffix : &t->prefix) != DS_OK) {
            ds_errf(e, "model.%s: \"%s\" is not in the byte-level alphabet", mkeys[k + 1], a);
            goto fail;
        }
    }

    const json_t *added = json_object_get(root, "added_tokens");
    if (added && !json_is_array(added)) {
        ds_errf(e, "added_tokens: expected an array");
        goto fail;
    }
    const json_t *vocab = json_object_get(model, "vocab");
    if (!json_is_object(vocab)) {
        ds_errf(e, "model: missing \"vocab\" object");
        goto fail;
    }
    // Ids are used as table indices: far beyond the number of tokens they only cost memory.
    json_int_t limit = 2 * (json_int_t)(json_object_size(vocab) + json_array_size(added)) + 256;
    // content -> index in added_tokens: vocab entries that are added tokens are recorded with them
    added_map = json_object();
    size_t i;
    const json_t *v;
    json_array_foreach(added, i, v) {
        const json_t *c = json_object_get(v, "content"), *idj = json_object_get(v, "id");
        if (!json_is_string(c) || !json_is_integer(idj) || json_integer_value(idj) < 0) {
            ds_errf(e, "added_tokens[%zu]: needs \"id\" (a non-negative integer) and \"content\"", i);
            goto fail;
        }
        if (json_integer_value(idj) >= limit) {
            ds_errf(e, "added_tokens[%zu]: id %lld is out of range (%zu tokens in the file, ids "
                       "must be below %lld)", i, (long long)json_integer_value(idj),
                    json_object_size(vocab) + json_array_size(added), (long long)limit);
            goto fail;
        }
        const json_t *prev = json_object_getn(added_map, json_string_value(c), json_string_length(c));
        if (prev) {
            ds_errf(e, "added_tokens[%zu]: \"%s\" is also added_tokens[%lld]", i,
                    json_string_value(c), (long long)json_integer_value(prev));
            goto fail;
        }
        json_object_setn_new(added_map, json_string_value(c), json_string_length(c),
                             json_integer((json_int_t)i));
    }
    const char *key;
    size_t klen;
    json_object_keylen_foreach((json_t *)vocab, key, klen, v) {
        if (!json_is_integer(v) || json_integer_value(v) < 0) {
            ds_errf(e, "model.vocab[\"%s\"]: id must be a non-negative integer", key);
            goto fail;
        }
        json_int_t id = json_integer_value(v);
        if (id >= limit) {
            ds_errf(e, "model.vocab[\"%s\"]: id %lld is out of range (%zu tokens in the file, ids "
                       "must be below %lld)", key, (long long)id,
                    json_object_size(vocab) + json_array_size(added), (long long)limit);
            goto fail;
        }
        const json_t *ai = json_object_getn(added_map, key, klen);
        if (ai) {
            json_int_t aid =
                json_integer_value(json_object_get(json_array_get(added, (size_t)json_integer_value(ai)), "id"));
            if (aid == id) continue;
            ds_errf(e, "model.vocab[\"%s\"]: id %lld, but added_tokens[%lld] gives it id %lld", key,
                    (long long)id, (long long)json_integer_value(ai), (long long)aid);
            goto fail;
        }
        raw.len = 0;
        if (tok_bytelevel_decode(key, klen, &raw) != DS_OK) {
            ds_errf(e, "model.vocab[\"%s\"] (id %lld) is not in the byte-level alphabet", key,
                    (long long)id);
            goto fail;
        }
        if (tok_add_token(t, (uint32_t)id, raw.data, raw.len, e) != DS_OK) {
            ds_err_prefix(e, "model.vocab[\"%s\"]", key);
            goto fail;
        }
    }
    json_array_foreach(added, i, v) {
        const json_t *c = json_object_get(v, "content"), *idj = json_object_get(v, "id");
        json_int_t id = json_integer_value(idj);
        const json_t *vid = json_object_getn(vocab, json_string_value(c), json_string_length(c));
        if ((int)id < t->n_ids && t->ent[id].kind == KIND_VOCAB) {
            size_t bl;
            const char *b = tok_token_bytes(t, (uint32_t)id, &bl);
            raw.len = 0;
            tok_bytelevel_encode(b, bl, &raw);
            ds_errf(e, "added_tokens[%zu]: id %lld is \"%s\", but model.vocab[\"%s\"] has that id",
                    i, (long long)id, json_string_value(c), raw.data);
            goto fail;
        }
        TokAdded o = {.special = json_is_true(json_object_get(v, "special")),
                      .in_vocab = vid && json_integer_value(vid) == id,
                      .lstrip = json_is_true(json_object_get(v, "lstrip")),
                      .rstrip = json_is_true(json_object_get(v, "rstrip")),
                      .normalized = json_is_true(json_object_get(v, "normalized")),
                      .single_word = json_is_true(json_object_get(v, "single_word"))};
        if (tok_add_added_opts(t, (uint32_t)id, json_string_value(c), &o, e) != DS_OK) {
            ds_err_prefix(e, "added_tokens[%zu]", i);
            goto fail;
        }
    }
    if (unk) {
        const json_t *uid = json_object_get(vocab, unk);
        if (!uid) {
            ds_errf(e, "model.unk_token: \"%s\" is not in model.vocab", unk);
            goto fail;
        }
        t->unk_id = (int32_t)json_integer_value(uid);
    }
    const json_t *post = json_object_get(root, "post_processor");
    if (post && !json_is_null(post) &&
        parse_post(post, "post_processor", &t->post_pre, &t->post_suf, e) != DS_OK)
        goto fail;
    for (int k = 0; k < 2; k++) {
        const TokIds *ids = k ? &t->post_suf : &t->post_pre;
        for (size_t j = 0; j < ids->n; j++)
            if (!tok_token_bytes(t, ids->ids[j], NULL)) {
                ds_errf(e, "post_processor: id %u is not a token", ids->ids[j]);
                goto fail;
            }
    }
    const json_t *merges = json_object_get(model, "merges");
    if (!json_is_array(merges)) {
        ds_errf(e, "model: missing \"merges\" array");
        goto fail;
    }
    // Both forms: "a b" strings (older files) and ["a", "b"] pairs (tokenizers >= 0.20).
    json_array_foreach(merges, i, v) {
        const char *a, *b;
        size_t al, bl;
        const char *s = json_string_value(v);
        if (s) {
            const char *sp = strchr(s, ' ');
            if (!sp || strchr(sp + 1, ' ')) {
                ds_errf(e, "model.merges[%zu]: expected \"a b\"", i);
                goto fail;
            }
            a = s, al = (size_t)(sp - s), b = sp + 1, bl = strlen(sp + 1);
        } else if (json_is_array(v) && json_array_size(v) == 2 &&
                   json_is_string(json_array_get(v, 0)) && json_is_string(json_array_get(v, 1))) {
            a = json_string_value(json_array_get(v, 0)),
            al = json_string_length(json_array_get(v, 0));
            b = json_string_value(json_array_get(v, 1)),
            bl = json_string_length(json_array_get(v, 1));
        } else {
            ds_errf(e, "model.merges[%zu]: expected \"a b\" or [\"a\", \"b\"]", i);
            goto fail;
        }
        const json_t *ja = json_object_getn(vocab, a, al), *jb = json_object_getn(vocab, b, bl);
        if (!ja || !jb) {
            ds_errf(e, "model.merges[%zu]: \"%.*s\" is not in model.vocab", i, (int)(ja ? bl : al),
                    ja ? b : a);
            goto fail;
        }
        if (tok_add_merge(t, (uint32_t)json_integer_value(ja), (uint32_t)json_integer_value(jb),
                          e) != DS_OK) {
            ds_err_prefix(e, "model.merges[%zu]", i);
            goto fail;
        }
    }
    if (tok_build(t, e) != DS_OK) goto fail;
    dsbuf_free(&raw);
    json_decref(added_map);
    return t;
fail:
    dsbuf_free(&raw);
    json_decref(added_map);
    tok_norm_free(norm);
    tok_decoder_free(dec);
    tok_free(t);
    return NULL;
}

Tokenizer *tok_from_json(const char *json, size_t len, const char *name, DsErr *e) {
    json_error_t je;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        ds_errf(e, "%s:%d: invalid JSON: %s", name, je.line, je.text);
        return NULL;
    }
    Tokenizer *t = json_is_object(root) ? from_json_obj(root, e) : NULL;
    if (!json_is_object(root)) ds_errf(e, "expected a JSON object");
    json_decref(root);
    if (!t) ds_err_prefix(e, "%s", name);
    return t;
}

Tokenizer *tok_load(const char *path, DsErr *e) {
    char *data;
    size_t len;
    if (ds_read_file(path, &data, &len, e) != DS_OK) return NULL;
    Tokenizer *t = tok_from_json(data, len, strcmp(path, "-") == 0 ? "<stdin>" : path, e);
    free(data);
    return t;
}

// ---------------------------------------------------------------------------------------------
// GPT-2's original files

Tokenizer *tok_import_gpt2(const char *vocab_path, const char *merges_path, DsErr *e) {
    json_error_t je;
    json_t *vocab = json_load_file(vocab_path, 0, &je);
    char *mdata = NULL;
    size_t mlen;
    Tokenizer *t = NULL;
    DsBuf raw = {0};
    if (!vocab) {
        ds_errf(e, "%s:%d: invalid JSON: %s", vocab_path, je.line, je.text);
        return NULL;
    }
    if (!json_is_object(vocab)) {
        ds_errf(e, "%s: expected a JSON object of token -> id", vocab_path);
        goto fail;
    }
    if (ds_read_file(merges_path, &mdata, &mlen, e) != DS_OK) goto fail;
    Pretok *p = pretok_new_kind(PRETOK_GPT2, e);
    if (!p) goto fail;
    t = tok_new(p);
    const char *key;
    const json_t *v;
    json_object_foreach(vocab, key, v) {
        if (!json_is_integer(v) || json_integer_value(v) < 0) {
            ds_errf(e, "%s: \"%s\": id must be a non-negative integer", vocab_path, key);
            goto fail;
        }
        if (json_integer_value(v) >= (json_int_t)INT32_MAX) { // the real value, not a clamped one
            ds_errf(e, "%s: \"%s\": id %" JSON_INTEGER_FORMAT " is out of range", vocab_path, key,
                    json_integer_value(v));
            goto fail;
        }
        uint32_t id = (uint32_t)json_integer_value(v);
        int rc;
        if (strcmp(key, "<|endoftext|>") == 0)
            rc = tok_add_added(t, id, key, 1, 1, e);
        else {
            raw.len = 0;
            if (tok_bytelevel_decode(key, strlen(key), &raw) != DS_OK) {
                ds_errf(e, "%s: \"%s\" is not in the byte-level alphabet", vocab_path, key);
                goto fail;
            }
            rc = tok_add_token(t, id, raw.data, raw.len, e);
        }
        if (rc != DS_OK) {
            ds_err_prefix(e, "%s", vocab_path);
            goto fail;
        }
    }
    long line = 0;
    for (char *s = mdata, *end = mdata + mlen; s < end;) {
        char *nl = memchr(s, '\n', (size_t)(end - s));
        size_t n = nl ? (size_t)(nl - s) : (size_t)(end - s);
        line++;
        char *cur = s;
        s += n + 1;
        if (n && cur[n - 1] == '\r') n--;
        if (n == 0 || (line == 1 && strncmp(cur, "#version", 8) == 0)) continue;
        char *sp = memchr(cur, ' ', n);
        if (!sp || memchr(sp + 1, ' ', n - (size_t)(sp + 1 - cur))) {
            ds_errf(e, "%s:%ld: expected two tokens separated by one space", merges_path, line);
            goto fail;
        }
        const json_t *ja = json_object_getn(vocab, cur, (size_t)(sp - cur));
        const json_t *jb = json_object_getn(vocab, sp + 1, n - (size_t)(sp + 1 - cur));
        if (!ja || !jb) {
            ds_errf(e, "%s:%ld: token not in %s", merges_path, line, vocab_path);
            goto fail;
        }
        if (tok_add_merge(t, (uint32_t)json_integer_value(ja), (uint32_t)json_integer_value(jb),
                          e) != DS_OK) {
            ds_err_prefix(e, "%s:%ld", merges_path, line);
            goto fail;
        }
    }
    if (tok_build(t, e) != DS_OK) goto fail;
    json_decref(vocab);
    free(mdata);
    dsbuf_free(&raw);
    return t;
fail:
    json_decref(vocab);
    free(mdata);
    dsbuf_free(&raw);
    tok_free(t);
    return NULL;
}
