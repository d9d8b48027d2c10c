// tokenizer.c — byte-level BPE tokenizer: Hugging Face tokenizer.json in and out, encode, decode.
#include "tokenizer.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "atomic_file.h"
#include "sha256.h"

enum { KIND_NONE = 0, KIND_VOCAB, KIND_ADDED };
enum { TOK_MAX_IDS = 1 << 24 };

typedef struct TokEntry {
    uint32_t off, len; // bytes in t->arena
    uint8_t kind;      // KIND_*
    uint8_t special;   // added tokens: matched only under allow_special
    uint8_t in_vocab;  // added tokens: also listed in the model vocab
} TokEntry;

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
    uint32_t *added; // ids of added tokens, longest content first (the longest match wins)
    int n_added;
    Pretok *pre;
    int ignore_merges; // Hugging Face flag: a pre-token that is a whole vocab token is used as is
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
    const unsigned char *s = (const unsigned char *)str;
    dsbuf_reserve(out, n + 1);
    for (size_t i = 0; i < n;) {
        unsigned cp;
        if (s[i] < 0x80)
            cp = s[i++];
        else if ((s[i] & 0xE0) == 0xC0 && i + 1 < n && (s[i + 1] & 0xC0) == 0x80) {
            cp = ((unsigned)(s[i] & 0x1F) << 6) | (s[i + 1] & 0x3F);
            i += 2;
        } else
            return DS_ERR;
        int b = bytelevel_byte(cp);
        if (b < 0) return DS_ERR;
        out->data[out->len++] = (char)b;
    }
    out->data[out->len] = 0;
    return DS_OK;
}

// ---------------------------------------------------------------------------------------------
// Building

Tokenizer *tok_new(Pretok *p) {
    Tokenizer *t = ds_calloc(1, sizeof *t);
    t->pre = p;
    for (int b = 0; b < 256; b++) t->byte_id[b] = -1;
    return t;
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
    pretok_free(t->pre);
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

int tok_add_added(Tokenizer *t, uint32_t id, const char *content, int special, int in_vocab,
                  DsErr *e) {
    if (!*content) return ds_errf(e, "added token id %u is empty", id);
    if (pretok_utf8_valid_prefix(content, strlen(content)) != strlen(content))
        return ds_errf(e, "added token id %u is not valid UTF-8", id);
    TokEntry *en = entry_slot(t, id, e);
    if (!en) return DS_ERR;
    en->kind = KIND_ADDED;
    en->special = (uint8_t)(special != 0);
    en->in_vocab = (uint8_t)(in_vocab != 0);
    store_bytes(t, en, content, strlen(content));
    return DS_OK;
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

int tok_build(Tokenizer *t, DsErr *e) {
    // vocab index
    t->vcap = pow2_at_least(2 * (size_t)t->n_ids + 2);
    t->vslot = ds_calloc(t->vcap, sizeof *t->vslot);
    size_t mask = t->vcap - 1;
    t->added = ds_malloc(((size_t)t->n_ids + 1) * sizeof *t->added);
    for (int id = 0; id < t->n_ids; id++) {
        const TokEntry *en = &t->ent[id];
        if (en->kind == KIND_ADDED) t->added[t->n_added++] = (uint32_t)id;
        if (en->kind != KIND_VOCAB) continue;
        int dup = vocab_find(t, ent_bytes(t, (uint32_t)id), en->len);
        if (dup >= 0) return ds_errf(e, "tokens %d and %d have the same bytes", dup, id);
        size_t i = hash_bytes(ent_bytes(t, (uint32_t)id), en->len) & mask;
        while (t->vslot[i]) i = (i + 1) & mask;
        t->vslot[i] = (uint32_t)id + 1;
        if (en->len == 1) t->byte_id[(unsigned char)ent_bytes(t, (uint32_t)id)[0]] = id;
    }
    for (int b = 0; b < 256; b++)
        if (t->byte_id[b] < 0)
            return ds_errf(e, "byte 0x%02x has no token (not a byte-level vocab)", b);
    qsort_r(t->added, (size_t)t->n_added, sizeof *t->added, cmp_added_len, t);
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
        dsbuf_append(&cat, ent_bytes(t, b), t->ent[b].len);
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

// BPE on one pre-token: repeatedly merge the adjacent pair of lowest rank, leftmost first. Symbols
// form a linked list over positions; a min-heap holds (rank, position) candidates, stale ones are
// skipped when popped. O(n log n) per pre-token, so a long run of spaces costs no more than text.
static void bpe_piece(const Tokenizer *t, const unsigned char *s, size_t n, TokIds *out) {
    if (n == 1) {
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
        id[i] = (uint32_t)t->byte_id[s[i]];
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

// Earliest added token in text[from, len), the longest one at that position; -1 when none.
// next[k] memoizes where added[k] next occurs (len: nowhere), so the whole text is searched once
// per added token however many matches there are.
static int find_added(const Tokenizer *t, const char *text, size_t len, size_t from,
                      int allow_special, size_t *next, size_t *at) {
    int best = -1;
    size_t best_at = len;
    for (int k = 0; k < t->n_added; k++) { // longest first: at a tied position the first one wins
        const TokEntry *en = &t->ent[t->added[k]];
        if (en->special && !allow_special) continue;
        if (next[k] == SIZE_MAX || (next[k] < from)) {
            const char *p = memmem(text + from, len - from, ent_bytes(t, t->added[k]), en->len);
            next[k] = p ? (size_t)(p - text) : len;
        }
        if (next[k] < best_at) {
            best = (int)t->added[k];
            best_at = next[k];
        }
    }
    *at = best_at;
    return best;
}

size_t tok_encode_cached(const Tokenizer *t, TokCache *c, const char *text, size_t len,
                         int allow_special, TokIds *out) {
    size_t before = out->n, pos = 0;
    EncodeCtx x = {t, c, out};
    int active = 0;
    for (int k = 0; k < t->n_added; k++) active += allow_special || !t->ent[t->added[k]].special;
    size_t *next = NULL;
    if (active) {
        next = ds_malloc((size_t)t->n_added * sizeof *next);
        for (int k = 0; k < t->n_added; k++) next[k] = SIZE_MAX;
    }
    while (pos < len) {
        size_t at = len;
        int sp = active ? find_added(t, text, len, pos, allow_special, next, &at) : -1;
        if (at > pos) pretok_split(t->pre, text + pos, at - pos, encode_piece, &x);
        if (sp < 0) break;
        tokids_push(out, (uint32_t)sp);
        pos = at + t->ent[sp].len;
    }
    free(next);
    return out->n - before;
}

size_t tok_encode(const Tokenizer *t, const char *text, size_t len, int allow_special,
                  TokIds *out) {
    // Short texts repeat few pre-tokens: a cache would cost more than it saves.
    if (len < 4096) return tok_encode_cached(t, NULL, text, len, allow_special, out);
    TokCache *c = tok_cache_new();
    size_t n = tok_encode_cached(t, c, text, len, allow_special, out);
    tok_cache_free(c);
    return n;
}

void tok_decode(const Tokenizer *t, const uint32_t *ids, size_t n, DsBuf *out) {
    for (size_t i = 0; i < n; i++) {
        size_t len;
        const char *b = tok_token_bytes(t, ids[i], &len);
        if (b) dsbuf_append(out, b, len);
    }
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
                     ", \"single_word\": false, \"lstrip\": false, \"rstrip\": false, "
                     "\"normalized\": false, \"special\": %s}",
                     en->special ? "true" : "false");
        first = 0;
    }
    dsbuf_printf(&b, "%s],\n  \"normalizer\": null,\n  \"pre_tokenizer\": ", first ? "" : "\n  ");
    json_obj(&b, pretok_json(t->pre));
    dsbuf_printf(&b, ",\n  \"post_processor\": null,\n  \"decoder\": ");
    json_obj(&b, byte_level_obj(1));
    dsbuf_printf(&b,
                 ",\n  \"model\": {\n    \"type\": \"BPE\",\n    \"dropout\": null,\n"
                 "    \"unk_token\": null,\n    \"continuing_subword_prefix\": null,\n"
                 "    \"end_of_word_suffix\": null,\n    \"fuse_unk\": false,\n"
                 "    \"byte_fallback\": false,\n    \"ignore_merges\": %s,\n    \"vocab\": {",
                 t->ignore_merges ? "true" : "false");
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

// Reads pre_tokenizer: ByteLevel (use_regex true = the GPT-2 pattern) or a Sequence of Split(Regex)
// ending in ByteLevel. Patterns go to pats[*n].
static int parse_pretok(const json_t *pt, const char **pats, int *n, int depth, DsErr *e) {
    const char *type = json_string_value(json_object_get(pt, "type"));
    if (!type) return ds_errf(e, "pre_tokenizer: missing \"type\"");
    if (strcmp(type, "ByteLevel") == 0) {
        if (json_is_true(json_object_get(pt, "add_prefix_space")))
            return ds_errf(e, "pre_tokenizer ByteLevel: add_prefix_space true is not supported");
        json_t *ur = json_object_get(pt, "use_regex");
        if (!ur || json_is_true(ur)) {
            if (*n == PRETOK_MAX_REGEX) return ds_errf(e, "pre_tokenizer: too many regexes");
            pats[(*n)++] = pretok_pattern(PRETOK_GPT2);
        }
        return DS_OK;
    }
    if (strcmp(type, "Split") == 0) {
        const json_t *pat = json_object_get(pt, "pattern");
        const char *re = json_string_value(json_object_get(pat, "Regex"));
        const char *behavior = json_string_value(json_object_get(pt, "behavior"));
        if (!re)
            return ds_errf(e, "pre_tokenizer Split: only {\"Regex\": ...} patterns are supported");
        if (behavior && strcmp(behavior, "Isolated") != 0)
            return ds_errf(e,
                           "pre_tokenizer Split: behavior \"%s\" is not supported (only Isolated)",
                           behavior);
        if (json_is_true(json_object_get(pt, "invert")))
            return ds_errf(e, "pre_tokenizer Split: invert true is not supported");
        if (*n == PRETOK_MAX_REGEX) return ds_errf(e, "pre_tokenizer: too many regexes");
        pats[(*n)++] = re;
        return DS_OK;
    }
    if (strcmp(type, "Sequence") == 0 && depth == 0) {
        const json_t *list = json_object_get(pt, "pretokenizers");
        if (!json_is_array(list))
            return ds_errf(e, "pre_tokenizer Sequence: missing \"pretokenizers\"");
        size_t i;
        const json_t *v;
        json_array_foreach(list, i,
                           v) if (parse_pretok(v, pats, n, depth + 1, e) != DS_OK) return DS_ERR;
        return DS_OK;
    }
    return ds_errf(e, "pre_tokenizer \"%s\" is not supported", type);
}

static Tokenizer *from_json_obj(const json_t *root, DsErr *e) {
    Tokenizer *t = NULL;
    DsBuf raw = {0};
    json_t *added_map = NULL;
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
    if (json_is_true(json_object_get(model, "byte_fallback"))) {
        ds_errf(e, "model: byte_fallback is not supported");
        goto fail;
    }
    const char *cont = json_string_value(json_object_get(model, "continuing_subword_prefix"));
    const char *eow = json_string_value(json_object_get(model, "end_of_word_suffix"));
    if ((cont && *cont) || (eow && *eow)) {
        ds_errf(e, "model: subword prefixes/suffixes are not supported (not byte-level BPE)");
        goto fail;
    }
    const json_t *norm = json_object_get(root, "normalizer");
    if (norm && !json_is_null(norm)) {
        ds_errf(e, "normalizer \"%s\" is not supported",
                json_string_value(json_object_get(norm, "type"))
                    ? json_string_value(json_object_get(norm, "type"))
                    : "?");
        goto fail;
    }
    const json_t *dec = json_object_get(root, "decoder");
    const char *dtype = json_string_value(json_object_get(dec, "type"));
    if (dec && !json_is_null(dec) && (!dtype || strcmp(dtype, "ByteLevel") != 0)) {
        ds_errf(e, "decoder \"%s\" is not supported (only ByteLevel)", dtype ? dtype : "?");
        goto fail;
    }
    const char *pats[PRETOK_MAX_REGEX];
    int npats = 0;
    const json_t *pt = json_object_get(root, "pre_tokenizer");
    if (!pt || json_is_null(pt)) {
        ds_errf(e, "pre_tokenizer is null (expected ByteLevel)");
        goto fail;
    }
    if (parse_pretok(pt, pats, &npats, 0, e) != DS_OK) goto fail;
    if (npats == 0) {
        ds_errf(e, "pre_tokenizer has no regex");
        goto fail;
    }
    Pretok *p = pretok_new(pats, npats, e);
    if (!p) goto fail;
    t = tok_new(p);
    t->ignore_merges = json_is_true(json_object_get(model, "ignore_merges"));

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
    // content -> id of the added tokens: vocab entries that are added tokens are recorded with them
    added_map = json_object();
    size_t i;
    const json_t *v;
    json_array_foreach(added, i, v) {
        const json_t *c = json_object_get(v, "content"), *idj = json_object_get(v, "id");
        if (!json_is_string(c) || !json_is_integer(idj) || json_integer_value(idj) < 0) {
            ds_errf(e, "added_tokens[%zu]: needs \"id\" and \"content\"", i);
            goto fail;
        }
        json_object_setn_new(added_map, json_string_value(c), json_string_length(c),
                             json_incref((json_t *)idj));
    }
    const char *key;
    size_t klen;
    json_object_keylen_foreach((json_t *)vocab, key, klen, v) {
        if (!json_is_integer(v) || json_integer_value(v) < 0) {
            ds_errf(e, "vocab \"%s\": id must be a non-negative integer", key);
            goto fail;
        }
        json_int_t id = json_integer_value(v);
        const json_t *aid = json_object_getn(added_map, key, klen);
        if (aid && json_integer_value(aid) == id) continue;
        raw.len = 0;
        if (tok_bytelevel_decode(key, klen, &raw) != DS_OK) {
            ds_errf(e, "vocab \"%s\" (id %lld) is not in the byte-level alphabet", key,
                    (long long)id);
            goto fail;
        }
        if (tok_add_token(t, (uint32_t)DS_MIN(id, (json_int_t)UINT32_MAX), raw.data, raw.len, e) !=
            DS_OK)
            goto fail;
    }
    json_array_foreach(added, i, v) {
        const json_t *c = json_object_get(v, "content"), *idj = json_object_get(v, "id");
        json_int_t id = json_integer_value(idj);
        const json_t *vid = json_object_getn(vocab, json_string_value(c), json_string_length(c));
        int in_vocab = vid && json_integer_value(vid) == id;
        if (tok_add_added(t, (uint32_t)DS_MIN(id, (json_int_t)UINT32_MAX), json_string_value(c),
                          json_is_true(json_object_get(v, "special")), in_vocab, e) != DS_OK)
            goto fail;
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
                ds_errf(e, "merges[%zu]: expected \"a b\"", i);
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
            ds_errf(e, "merges[%zu]: expected \"a b\" or [\"a\", \"b\"]", i);
            goto fail;
        }
        const json_t *ja = json_object_getn(vocab, a, al), *jb = json_object_getn(vocab, b, bl);
        if (!ja || !jb) {
            ds_errf(e, "merges[%zu]: \"%.*s\" is not in the vocab", i, (int)(ja ? bl : al),
                    ja ? b : a);
            goto fail;
        }
        if (tok_add_merge(t, (uint32_t)json_integer_value(ja), (uint32_t)json_integer_value(jb),
                          e) != DS_OK)
            goto fail;
    }
    if (tok_build(t, e) != DS_OK) goto fail;
    dsbuf_free(&raw);
    json_decref(added_map);
    return t;
fail:
    dsbuf_free(&raw);
    json_decref(added_map);
    tok_free(t);
    return NULL;
}

Tokenizer *tok_from_json(const char *json, size_t len, const char *name, DsErr *e) {
    json_error_t je;
    json_t *root = json_loadb(json, len, 0, &je);
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
        uint32_t id = (uint32_t)DS_MIN(json_integer_value(v), (json_int_t)UINT32_MAX);
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
