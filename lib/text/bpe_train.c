// bpe_train.c — trains a byte-level BPE tokenizer with incremental pair-count updates.
#include "text/bpe_train.h"

#include <stdlib.h>
#include <string.h>

// ---------------------------------------------------------------------------------------------
// Pre-token counting: bytes -> count, open addressing over an arena of keys.

typedef struct WordEnt {
    uint64_t h;
    uint32_t off, len; // key bytes in keys
    int64_t count;
} WordEnt;

struct BpeTrainer {
    BpeTrainOpts o;
    char **specials; // copies, in the order given (their ids)
    char **bylen;    // the same, longest first (the longest match wins)
    size_t *next;    // per bylen entry: where it next occurs in the current text
    Pretok *pre;
    uint32_t *slot; // entry index + 1
    size_t cap;
    WordEnt *w;
    size_t n, wcap;
    DsBuf keys;
};

static uint64_t hash_bytes(const void *p, size_t n) {
    const unsigned char *s = p;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 1099511628211ull;
    return h ^ (h >> 29);
}

static int cmp_len_desc(const void *a, const void *b) {
    size_t x = strlen(*(char *const *)a), y = strlen(*(char *const *)b);
    return x > y ? -1 : x < y;
}

BpeTrainer *bpe_trainer_new(const BpeTrainOpts *o, DsErr *e) {
    int nfixed = o->n_specials + 256;
    if (o->vocab_size < nfixed) {
        ds_errf(e, "vocab size %d is below %d (256 bytes + %d special tokens)", o->vocab_size,
                nfixed, o->n_specials);
        return NULL;
    }
    for (int i = 0; i < o->n_specials; i++) {
        size_t n = strlen(o->specials[i]);
        if (n == 0 || pretok_utf8_valid_prefix(o->specials[i], n) != n) {
            ds_errf(e, "special token %d is empty or not valid UTF-8", i + 1);
            return NULL;
        }
        for (int j = 0; j < i; j++)
            if (strcmp(o->specials[i], o->specials[j]) == 0) {
                ds_errf(e, "special token '%s' given twice", o->specials[i]);
                return NULL;
            }
    }
    Pretok *pre = pretok_new_kind(o->pretok, e);
    if (!pre) return NULL;
    BpeTrainer *b = ds_calloc(1, sizeof *b);
    b->o = *o;
    b->pre = pre;
    b->specials = ds_malloc(((size_t)o->n_specials + 1) * sizeof *b->specials);
    b->bylen = ds_malloc(((size_t)o->n_specials + 1) * sizeof *b->bylen);
    b->next = ds_malloc(((size_t)o->n_specials + 1) * sizeof *b->next);
    for (int i = 0; i < o->n_specials; i++)
        b->specials[i] = b->bylen[i] = ds_strdup(o->specials[i]);
    qsort(b->bylen, (size_t)o->n_specials, sizeof *b->bylen, cmp_len_desc);
    b->o.specials = NULL; // the caller's array need not outlive this call
    return b;
}

void bpe_trainer_free(BpeTrainer *b) {
    if (!b) return;
    for (int i = 0; i < b->o.n_specials; i++) free(b->specials[i]);
    free(b->specials);
    free(b->bylen);
    free(b->next);
    pretok_free(b->pre);
    free(b->slot);
    free(b->w);
    dsbuf_free(&b->keys);
    free(b);
}

static void word_grow(BpeTrainer *b) {
    size_t cap = b->cap ? 2 * b->cap : 1 << 14;
    free(b->slot);
    b->slot = ds_calloc(cap, sizeof *b->slot);
    b->cap = cap;
    for (size_t k = 0; k < b->n; k++) {
        size_t i = b->w[k].h & (cap - 1);
        while (b->slot[i]) i = (i + 1) & (cap - 1);
        b->slot[i] = (uint32_t)k + 1;
    }
}

static void count_piece(void *ctx, const char *piece, size_t len) {
    BpeTrainer *b = ctx;
    uint64_t h = hash_bytes(piece, len);
    if (b->cap) {
        for (size_t i = h & (b->cap - 1);; i = (i + 1) & (b->cap - 1)) {
            uint32_t s = b->slot[i];
            if (!s) break;
            WordEnt *w = &b->w[s - 1];
            if (w->h == h && w->len == len && memcmp(b->keys.data + w->off, piece, len) == 0) {
                w->count++;
                return;
            }
        }
    }
    if (2 * (b->n + 1) > b->cap) word_grow(b);
    if (b->n == b->wcap) {
        b->wcap = b->wcap ? 2 * b->wcap : 1 << 13;
        b->w = ds_realloc(b->w, b->wcap * sizeof *b->w);
    }
    b->w[b->n] = (WordEnt){h, (uint32_t)b->keys.len, (uint32_t)len, 1};
    dsbuf_append(&b->keys, piece, len);
    size_t i = h & (b->cap - 1);
    while (b->slot[i]) i = (i + 1) & (b->cap - 1);
    b->slot[i] = (uint32_t)++b->n;
}

void bpe_trainer_add(BpeTrainer *b, const char *text, size_t len) {
    int ns = b->o.n_specials;
    for (int k = 0; k < ns; k++) b->next[k] = SIZE_MAX; // not searched yet
    size_t pos = 0;
    while (pos < len) {
        // the earliest special token (the longest at that position) ends this segment
        size_t at = len;
        int which = -1;
        for (int k = 0; k < ns; k++) {
            if (b->next[k] == SIZE_MAX || b->next[k] < pos) {
                const char *p = memmem(text + pos, len - pos, b->bylen[k], strlen(b->bylen[k]));
                b->next[k] = p ? (size_t)(p - text) : len;
            }
            if (b->next[k] < at) at = b->next[k], which = k;
        }
        if (at > pos) pretok_split(b->pre, text + pos, at - pos, count_piece, b);
        if (which < 0) break;
        pos = at + strlen(b->bylen[which]);
    }
}

// ---------------------------------------------------------------------------------------------
// Merging

typedef struct Pair {
    uint32_t a, b;
    int64_t count;
    int64_t before;  // count when first touched in the current merge step (-1: untouched)
    uint32_t *where; // words that contain (or contained) the pair; may hold stale entries
    uint32_t nwhere, capwhere;
} Pair;

typedef struct HeapEnt {
    int64_t count;
    uint32_t pair;
} HeapEnt;

typedef struct Merger {
    // tokens: bytes of every id
    uint32_t *toff, *tlen;
    DsBuf tbytes;
    int ntok, tokcap;
    uint32_t *tslot; // bytes -> id + 1, sized for the target vocab
    size_t tslotcap;
    // words: symbols in one array, each word at woff[w] with wlen[w] symbols
    uint32_t *sym, *woff, *wlen;
    int64_t *wcount;
    size_t nwords;
    // pairs
    Pair *p;
    size_t np, pcap;
    uint32_t *pslot; // pair index + 1
    size_t pslotcap;
    HeapEnt *heap;
    size_t nheap, heapcap;
    uint32_t *touched;
    size_t ntouched, touchedcap;
} Merger;

static uint64_t hash_pair(uint32_t a, uint32_t b) {
    uint64_t x = (uint64_t)a << 32 | b;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return x;
}

static void pair_rehash(Merger *m) {
    size_t cap = m->pslotcap ? 2 * m->pslotcap : 1 << 16;
    free(m->pslot);
    m->pslot = ds_calloc(cap, sizeof *m->pslot);
    m->pslotcap = cap;
    for (size_t k = 0; k < m->np; k++) {
        size_t i = hash_pair(m->p[k].a, m->p[k].b) & (cap - 1);
        while (m->pslot[i]) i = (i + 1) & (cap - 1);
        m->pslot[i] = (uint32_t)k + 1;
    }
}

static uint32_t pair_get(Merger *m, uint32_t a, uint32_t b) {
    if (m->pslotcap) {
        for (size_t i = hash_pair(a, b) & (m->pslotcap - 1);; i = (i + 1) & (m->pslotcap - 1)) {
            uint32_t s = m->pslot[i];
            if (!s) break;
            if (m->p[s - 1].a == a && m->p[s - 1].b == b) return s - 1;
        }
    }
    if (2 * (m->np + 1) > m->pslotcap) pair_rehash(m);
    if (m->np == m->pcap) {
        m->pcap = m->pcap ? 2 * m->pcap : 1 << 15;
        m->p = ds_realloc(m->p, m->pcap * sizeof *m->p);
    }
    m->p[m->np] = (Pair){.a = a, .b = b, .before = -1};
    size_t i = hash_pair(a, b) & (m->pslotcap - 1);
    while (m->pslot[i]) i = (i + 1) & (m->pslotcap - 1);
    m->pslot[i] = (uint32_t)++m->np;
    return (uint32_t)m->np - 1;
}

// Lexicographic order of (bytes(a), bytes(b)): -1, 0, 1.
static int cmp_tok(const Merger *m, uint32_t x, uint32_t y) {
    size_t lx = m->tlen[x], ly = m->tlen[y];
    int c = memcmp(m->tbytes.data + m->toff[x], m->tbytes.data + m->toff[y], DS_MIN(lx, ly));
    if (c) return c < 0 ? -1 : 1;
    return lx < ly ? -1 : lx > ly;
}

// Does heap entry x come before y: higher count, then the lexicographically greater pair.
static int heap_before(const Merger *m, const HeapEnt *x, const HeapEnt *y) {
    if (x->count != y->count) return x->count > y->count;
    const Pair *p = &m->p[x->pair], *q = &m->p[y->pair];
    int c = cmp_tok(m, p->a, q->a);
    if (!c) c = cmp_tok(m, p->b, q->b);
    return c > 0;
}

static void heap_push(Merger *m, uint32_t pair) {
    if (m->nheap == m->heapcap) {
        m->heapcap = m->heapcap ? 2 * m->heapcap : 1 << 15;
        m->heap = ds_realloc(m->heap, m->heapcap * sizeof *m->heap);
    }
    HeapEnt v = {m->p[pair].count, pair};
    size_t i = m->nheap++;
    while (i > 0 && heap_before(m, &v, &m->heap[(i - 1) / 2])) {
        m->heap[i] = m->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    m->heap[i] = v;
}

static HeapEnt heap_pop(Merger *m) {
    HeapEnt top = m->heap[0], last = m->heap[--m->nheap];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= m->nheap) break;
        if (c + 1 < m->nheap && heap_before(m, &m->heap[c + 1], &m->heap[c])) c++;
        if (!heap_before(m, &m->heap[c], &last)) break;
        m->heap[i] = m->heap[c];
        i = c;
    }
    if (m->nheap > 0) m->heap[i] = last;
    return top;
}

static void add_where(Pair *p, uint32_t w) {
    if (p->nwhere && p->where[p->nwhere - 1] == w) return;
    if (p->nwhere == p->capwhere) {
        p->capwhere = p->capwhere ? 2 * p->capwhere : 4;
        p->where = ds_realloc(p->where, p->capwhere * sizeof *p->where);
    }
    p->where[p->nwhere++] = w;
}

static void touch(Merger *m, uint32_t pi, int64_t delta) {
    Pair *p = &m->p[pi];
    if (p->before < 0) {
        p->before = p->count;
        if (m->ntouched == m->touchedcap) {
            m->touchedcap = m->touchedcap ? 2 * m->touchedcap : 1024;
            m->touched = ds_realloc(m->touched, m->touchedcap * sizeof *m->touched);
        }
        m->touched[m->ntouched++] = pi;
    }
    p->count += delta;
}

static uint32_t add_token(Merger *m, const void *bytes, size_t len) {
    if (m->ntok == m->tokcap) {
        m->tokcap = m->tokcap ? 2 * m->tokcap : 1024;
        m->toff = ds_realloc(m->toff, (size_t)m->tokcap * sizeof *m->toff);
        m->tlen = ds_realloc(m->tlen, (size_t)m->tokcap * sizeof *m->tlen);
    }
    m->toff[m->ntok] = (uint32_t)m->tbytes.len;
    m->tlen[m->ntok] = (uint32_t)len;
    dsbuf_append(&m->tbytes, bytes, len);
    if (len) { // specials (empty placeholders here) are never merge results
        size_t i = hash_bytes(bytes, len) & (m->tslotcap - 1);
        while (m->tslot[i]) i = (i + 1) & (m->tslotcap - 1);
        m->tslot[i] = (uint32_t)m->ntok + 1;
    }
    return (uint32_t)m->ntok++;
}

static void merger_free(Merger *m) {
    free(m->toff);
    free(m->tlen);
    free(m->tslot);
    dsbuf_free(&m->tbytes);
    free(m->sym);
    free(m->woff);
    free(m->wlen);
    free(m->wcount);
    for (size_t i = 0; i < m->np; i++) free(m->p[i].where);
    free(m->p);
    free(m->pslot);
    free(m->heap);
    free(m->touched);
}

// Merges every (a, b) in word w into c, keeping pair counts and where-lists up to date: the word's
// old pairs are taken out and its new pairs put in, so only words holding (a, b) are visited.
static void merge_word(Merger *m, uint32_t w, uint32_t a, uint32_t b, uint32_t c) {
    uint32_t *s = m->sym + m->woff[w], n = m->wlen[w];
    int found = 0;
    for (uint32_t i = 0; i + 1 < n && !found; i++) found = s[i] == a && s[i + 1] == b;
    if (!found) return; // a stale where-entry
    int64_t cnt = m->wcount[w];
    for (uint32_t i = 0; i + 1 < n; i++) touch(m, pair_get(m, s[i], s[i + 1]), -cnt);
    uint32_t k = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (i + 1 < n && s[i] == a && s[i + 1] == b) {
            s[k++] = c;
            i++;
        } else
            s[k++] = s[i];
    }
    m->wlen[w] = n = k;
    for (uint32_t i = 0; i + 1 < n; i++) {
        uint32_t pi = pair_get(m, s[i], s[i + 1]);
        touch(m, pi, cnt);
        if (s[i] == c || s[i + 1] == c) add_where(&m->p[pi], w); // other pairs already list w
    }
}

static int find_token(const Merger *m, const char *bytes, size_t len) {
    for (size_t i = hash_bytes(bytes, len) & (m->tslotcap - 1);; i = (i + 1) & (m->tslotcap - 1)) {
        uint32_t s = m->tslot[i];
        if (!s) return -1;
        if (m->tlen[s - 1] == len && memcmp(m->tbytes.data + m->toff[s - 1], bytes, len) == 0)
            return (int)s - 1;
    }
}

Tokenizer *bpe_trainer_finish(BpeTrainer *b, DsErr *e) {
    Merger m = {0};
    const BpeTrainOpts *o = &b->o;
    int nspec = o->n_specials;
    uint32_t *ma = NULL, *mb = NULL; // merges in order
    int nmerges = 0;
    Tokenizer *t = NULL;
    m.tslotcap = 64;
    while (m.tslotcap < 2 * (size_t)o->vocab_size + 2) m.tslotcap *= 2;
    m.tslot = ds_calloc(m.tslotcap, sizeof *m.tslot);
    // ids: specials in the order given (first ids), then the 256 bytes
    for (int i = 0; i < nspec; i++) add_token(&m, "", 0);
    uint32_t byte_id[256];
    // Hugging Face orders the initial alphabet by its byte-level character: bytes 33..126,
    // 161..172, 174..255, then the rest in byte order.
    int order[256], no = 0;
    for (int x = 0; x < 256; x++)
        if ((x >= 33 && x <= 126) || (x >= 161 && x <= 172) || (x >= 174 && x <= 255))
            order[no++] = x;
    for (int x = 0; x < 256; x++)
        if (!((x >= 33 && x <= 126) || (x >= 161 && x <= 172) || (x >= 174 && x <= 255)))
            order[no++] = x;
    for (int k = 0; k < 256; k++) {
        int x = o->raw_byte_ids ? k : order[k];
        unsigned char c = (unsigned char)x;
        byte_id[x] = add_token(&m, &c, 1);
    }
    // words
    m.nwords = b->n;
    m.woff = ds_malloc((b->n + 1) * sizeof *m.woff);
    m.wlen = ds_malloc((b->n + 1) * sizeof *m.wlen);
    m.wcount = ds_malloc((b->n + 1) * sizeof *m.wcount);
    m.sym = ds_malloc((b->keys.len + 1) * sizeof *m.sym);
    for (size_t w = 0; w < b->n; w++) {
        const WordEnt *we = &b->w[w];
        m.woff[w] = we->off;
        m.wlen[w] = we->len;
        m.wcount[w] = we->count;
        for (uint32_t i = 0; i < we->len; i++)
            m.sym[we->off + i] = byte_id[(unsigned char)b->keys.data[we->off + i]];
        for (uint32_t i = 0; i + 1 < we->len; i++) {
            uint32_t pi = pair_get(&m, m.sym[we->off + i], m.sym[we->off + i + 1]);
            m.p[pi].count += we->count;
            add_where(&m.p[pi], (uint32_t)w);
        }
    }
    for (size_t pi = 0; pi < m.np; pi++)
        if (m.p[pi].count > 0) heap_push(&m, (uint32_t)pi);
    int target = o->vocab_size;
    ma = ds_malloc((size_t)(target + 1) * sizeof *ma);
    mb = ds_malloc((size_t)(target + 1) * sizeof *mb);
    DsBuf cat = {0};
    while (m.ntok < target && m.nheap > 0) {
        HeapEnt top = heap_pop(&m);
        Pair *p = &m.p[top.pair];
        if (top.count != p->count || p->count <= 0) continue; // stale entry
        uint32_t a = p->a, bb = p->b;
        cat.len = 0;
        dsbuf_append(&cat, m.tbytes.data + m.toff[a], m.tlen[a]);
        dsbuf_append(&cat, m.tbytes.data + m.toff[bb], m.tlen[bb]);
        // As Hugging Face does, a merge that spells an existing token reuses its id.
        int c = find_token(&m, cat.data, cat.len);
        if (c < 0) c = (int)add_token(&m, cat.data, cat.len);
        ma[nmerges] = a, mb[nmerges] = bb, nmerges++;
        // merge_word may grow m.p: take the where-list out first
        uint32_t *where = p->where, nwhere = p->nwhere;
        p->where = NULL, p->nwhere = p->capwhere = 0;
        for (uint32_t k = 0; k < nwhere; k++) merge_word(&m, where[k], a, bb, (uint32_t)c);
        free(where);
        for (size_t k = 0; k < m.ntouched; k++) {
            Pair *q = &m.p[m.touched[k]];
            if (q->count != q->before && q->count > 0) heap_push(&m, m.touched[k]);
            q->before = -1;
        }
        m.ntouched = 0;
    }
    dsbuf_free(&cat);
    // build the tokenizer
    Pretok *pre = pretok_new_kind(o->pretok, e);
    if (!pre) goto fail;
    t = tok_new(pre);
    for (int i = 0; i < nspec; i++)
        if (tok_add_added(t, (uint32_t)i, b->specials[i], 1, 1, e) != DS_OK) goto fail;
    for (int id = nspec; id < m.ntok; id++)
        if (tok_add_token(t, (uint32_t)id, m.tbytes.data + m.toff[id], m.tlen[id], e) != DS_OK)
            goto fail;
    for (int r = 0; r < nmerges; r++)
        if (tok_add_merge(t, ma[r], mb[r], e) != DS_OK) goto fail;
    if (tok_build(t, e) != DS_OK) goto fail;
    free(ma);
    free(mb);
    merger_free(&m);
    bpe_trainer_free(b);
    return t;
fail:
    free(ma);
    free(mb);
    merger_free(&m);
    bpe_trainer_free(b);
    tok_free(t);
    return NULL;
}

Tokenizer *bpe_train_text(const BpeTrainOpts *o, const char *text, size_t len, DsErr *e) {
    BpeTrainer *b = bpe_trainer_new(o, e);
    if (!b) return NULL;
    bpe_trainer_add(b, text, len);
    return bpe_trainer_finish(b, e);
}
