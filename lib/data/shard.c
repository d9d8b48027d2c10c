// shard.c — token shards: writer, in-place (mmap) reader with full verification, datasets, inspect.
#include "data/shard.h"

#include <dirent.h>
#include <errno.h>
#include <glob.h>
#include <jansson.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/atomic_file.h"
#include "core/cli.h"
#include "core/sha256.h"
#include "data/tarball.h"

#define SHARD_FORMAT_NAME "ds-token-shard"
#define RECORD_FORMAT_NAME "ds-token-dataset"
#define RECORD_SUFFIX ".dataset.json"
#define MEMBER_MANIFEST "manifest.json"
#define MEMBER_TOKENS "tokens.bin"
#define MEMBER_OFFSETS "offsets.bin"

// Shard contents are little-endian whatever the host; these compile to plain loads on x86.
static inline uint32_t load_u16(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }
static inline uint32_t load_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t load_u64(const uint8_t *p) {
    return (uint64_t)load_u32(p) | (uint64_t)load_u32(p + 4) << 32;
}
static inline void store_u64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

// ---------------------------------------------------------------------------------------------
// Writer

struct ShardWriter {
    char *prefix, *tokenizer_hash, *source;
    int bits;
    uint64_t per_shard;   // 0: no limit
    DsBuf tokens;         // current shard: token bytes, little-endian
    DsBuf offsets;        // current shard: u64 document starts, beginning with 0
    uint64_t ntok, ndocs; // current shard
    int64_t max_id;       // current shard's largest id, -1 while it has none
    char **paths;         // shards written, for abort
    json_t *written;      // one record entry per shard written (file, counts, max id, hash)
    int nshards;
};

// The completion record of the dataset PREFIX: written last, so its presence means every shard
// it lists was written in full (see docs/FORMATS.md, "Dataset record").
static char *record_path(const char *prefix) {
    size_t n = strlen(prefix) + sizeof RECORD_SUFFIX;
    char *p = ds_malloc(n);
    snprintf(p, n, "%s%s", prefix, RECORD_SUFFIX);
    return p;
}

static const char *base_name(const char *path) {
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

// Index of a shard name "BASE-NNNNNN.tar" (6 digits), or -1 when name is not one.
static long shard_index_of(const char *name, const char *base) {
    size_t b = strlen(base);
    if (strncmp(name, base, b) != 0 || name[b] != '-' || strlen(name + b) != 1 + 6 + 4) return -1;
    long v = 0;
    for (int i = 1; i <= 6; i++) {
        char c = name[b + i];
        if (c < '0' || c > '9') return -1;
        v = v * 10 + (c - '0');
    }
    return strcmp(name + b + 7, ".tar") == 0 ? v : -1;
}

// Whether name is the temp file of a shard of base written by a process that no longer exists
// ("BASE-NNNNNN.tar.tmp.PID.XXXXXX", the atomic writer's temp names).
static int dead_shard_temp(const char *name, const char *base) {
    const char *tmp = strstr(name, ".tar.tmp.");
    if (!tmp) return 0;
    char shard[512];
    size_t n = (size_t)(tmp - name) + 4;
    if (n >= sizeof shard) return 0;
    memcpy(shard, name, n);
    shard[n] = 0;
    if (shard_index_of(shard, base) < 0) return 0;
    char *end;
    long pid = strtol(tmp + 9, &end, 10);
    if (end == tmp + 9 || *end != '.' || pid <= 0 || pid == (long)getpid()) return 0;
    return kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

// Removes what an earlier run with this prefix left: its record (first, so the old dataset stops
// being complete before any of its shards go), its shards, and the temp files of dead writers.
// A prefix names one dataset; a new run replaces it whole.
static void remove_old_dataset(const char *prefix) {
    char *rec = record_path(prefix);
    unlink(rec);
    free(rec);
    const char *base = base_name(prefix);
    size_t dl = (size_t)(base - prefix);
    char *dir = dl ? ds_malloc(dl + 1) : ds_strdup(".");
    if (dl) {
        memcpy(dir, prefix, dl);
        dir[dl] = 0;
    }
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *de;
        while ((de = readdir(d))) {
            if (shard_index_of(de->d_name, base) < 0 && !dead_shard_temp(de->d_name, base)) continue;
            size_t n = strlen(dir) + strlen(de->d_name) + 2;
            char *full = ds_malloc(n);
            snprintf(full, n, "%s/%s", dir, de->d_name);
            unlink(full);
            free(full);
        }
        closedir(d);
    }
    free(dir);
}

static char *shard_path(const char *prefix, int index) {
    size_t n = strlen(prefix) + 32;
    char *p = ds_malloc(n);
    snprintf(p, n, "%s-%06d.tar", prefix, index);
    return p;
}

ShardWriter *shard_writer_open(const ShardWriterOpts *o, DsErr *e) {
    if (!o->prefix || !o->prefix[0]) {
        ds_errf(e, "shard writer: empty output prefix");
        return NULL;
    }
    if (o->dtype_bits != 16 && o->dtype_bits != 32) {
        ds_errf(e, "shard writer: dtype must be 16 or 32 bits, not %d", o->dtype_bits);
        return NULL;
    }
    const char *h = o->tokenizer_hash ? o->tokenizer_hash : "";
    if (h[0] && strlen(h) != 64) {
        ds_errf(e, "shard writer: tokenizer hash '%s' is not a hex sha256", h);
        return NULL;
    }
    json_t *src = json_string(o->source ? o->source : "");
    if (!src) {
        ds_errf(e, "shard writer: source text is not valid UTF-8");
        return NULL;
    }
    json_decref(src);
    remove_old_dataset(o->prefix);
    ShardWriter *w = ds_calloc(1, sizeof *w);
    w->prefix = ds_strdup(o->prefix);
    w->tokenizer_hash = ds_strdup(h);
    w->source = ds_strdup(o->source ? o->source : "");
    w->bits = o->dtype_bits;
    w->per_shard = o->tokens_per_shard;
    w->max_id = -1;
    w->written = json_array();
    uint8_t zero[8] = {0};
    dsbuf_append(&w->offsets, zero, 8);
    dsbuf_reserve(&w->tokens, 1); // never a NULL buffer, even for an empty shard
    return w;
}

int shard_writer_nshards(const ShardWriter *w) { return w->nshards; }

// The manifest for the shard in w, as the text stored in manifest.json.
static char *manifest_text(const ShardWriter *w, const char *content_hash) {
    json_t *m = json_object();
    json_object_set_new(m, "format", json_string(SHARD_FORMAT_NAME));
    json_object_set_new(m, "version", json_integer(SHARD_FORMAT_VERSION));
    json_object_set_new(m, "dtype", json_string(w->bits == 16 ? "u16" : "u32"));
    json_object_set_new(m, "n_tokens", json_integer((json_int_t)w->ntok));
    json_object_set_new(m, "n_docs", json_integer((json_int_t)w->ndocs));
    json_object_set_new(m, "max_token_id", json_integer((json_int_t)w->max_id));
    json_object_set_new(m, "shard_index", json_integer(w->nshards));
    json_object_set_new(m, "tokenizer_hash", json_string(w->tokenizer_hash));
    json_object_set_new(m, "content_hash", json_string(content_hash));
    json_object_set_new(m, "source", json_string(w->source));
    char by[128];
    snprintf(by, sizeof by, "ds %s", ds_version());
    json_object_set_new(m, "created_by", json_string(by));
    // json_string returns NULL on invalid UTF-8; open checked the source text, the rest is ours.
    DS_CHECK(json_object_size(m) == 11);
    char *s = json_dumps(m, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    DS_CHECK(s != NULL);
    json_decref(m);
    size_t n = strlen(s);
    s = ds_realloc(s, n + 2);
    memcpy(s + n, "\n", 2);
    return s;
}

static int flush_shard(ShardWriter *w, DsErr *e) {
    char *path = shard_path(w->prefix, w->nshards);
    Sha256 sh;
    sha256_init(&sh);
    sha256_update(&sh, w->tokens.data, w->tokens.len);
    sha256_update(&sh, w->offsets.data, w->offsets.len);
    uint8_t d[32];
    char hex[65];
    sha256_final(&sh, d);
    sha256_to_hex(d, hex);
    char *man = manifest_text(w, hex);
    TarWriter *tw = tar_writer_open(path, e);
    int rc = DS_ERR;
    if (!tw) goto done;
    if (tar_writer_add(tw, MEMBER_MANIFEST, man, strlen(man), e) != DS_OK ||
        tar_writer_add(tw, MEMBER_TOKENS, w->tokens.data, w->tokens.len, e) != DS_OK ||
        tar_writer_add(tw, MEMBER_OFFSETS, w->offsets.data, w->offsets.len, e) != DS_OK) {
        tar_writer_abort(tw);
        goto done;
    }
    if (tar_writer_close(tw, e) != DS_OK) goto done;
    json_array_append_new(w->written,
                          json_pack("{s:s,s:I,s:I,s:I,s:s}", "file", base_name(path), "n_tokens",
                                    (json_int_t)w->ntok, "n_docs", (json_int_t)w->ndocs,
                                    "max_token_id", (json_int_t)w->max_id, "content_hash", hex));
    w->paths = ds_realloc(w->paths, (size_t)(w->nshards + 1) * sizeof *w->paths);
    w->paths[w->nshards++] = path;
    path = NULL;
    w->tokens.len = 0;
    w->offsets.len = 8; // keeps the leading 0
    w->ntok = w->ndocs = 0;
    w->max_id = -1;
    rc = DS_OK;
done:
    free(path);
    free(man);
    return rc;
}

int shard_writer_add(ShardWriter *w, const uint32_t *ids, size_t n, DsErr *e) {
    if (w->bits == 16)
        for (size_t i = 0; i < n; i++)
            if (ids[i] > 0xffff)
                return ds_errf(e, "token id %u at position %zu does not fit u16 shards", ids[i], i);
    // A document that would overflow a non-empty shard starts the next one.
    if (w->per_shard && w->ndocs > 0 && w->ntok + n > w->per_shard)
        if (flush_shard(w, e) != DS_OK) return DS_ERR;
    size_t bytes = (size_t)w->bits / 8;
    dsbuf_reserve(&w->tokens, n * bytes);
    uint8_t *p = (uint8_t *)w->tokens.data + w->tokens.len;
    for (size_t i = 0; i < n; i++, p += bytes) {
        if ((int64_t)ids[i] > w->max_id) w->max_id = ids[i];
        p[0] = (uint8_t)ids[i];
        p[1] = (uint8_t)(ids[i] >> 8);
        if (bytes == 4) {
            p[2] = (uint8_t)(ids[i] >> 16);
            p[3] = (uint8_t)(ids[i] >> 24);
        }
    }
    w->tokens.len += n * bytes;
    w->ntok += n;
    w->ndocs++;
    uint8_t off[8];
    store_u64(off, w->ntok);
    dsbuf_append(&w->offsets, off, 8);
    return DS_OK;
}

static void writer_free(ShardWriter *w) {
    for (int i = 0; i < w->nshards; i++) free(w->paths[i]);
    free(w->paths);
    dsbuf_free(&w->tokens);
    dsbuf_free(&w->offsets);
    free(w->prefix);
    free(w->tokenizer_hash);
    free(w->source);
    json_decref(w->written);
    free(w);
}

// Writes PREFIX.dataset.json listing every shard written, after they are all in place.
static int write_record(const ShardWriter *w, DsErr *e) {
    json_int_t ntok = 0, ndocs = 0, max_id = -1;
    size_t i;
    json_t *v;
    json_array_foreach(w->written, i, v) {
        ntok += json_integer_value(json_object_get(v, "n_tokens"));
        ndocs += json_integer_value(json_object_get(v, "n_docs"));
        max_id = DS_MAX(max_id, json_integer_value(json_object_get(v, "max_token_id")));
    }
    char by[128];
    snprintf(by, sizeof by, "ds %s", ds_version());
    json_t *r = json_pack("{s:s,s:i,s:i,s:I,s:I,s:I,s:s,s:s,s:O}", "format", RECORD_FORMAT_NAME,
                          "version", SHARD_FORMAT_VERSION, "n_shards", w->nshards, "n_tokens", ntok,
                          "n_docs", ndocs, "max_token_id", max_id, "tokenizer_hash",
                          w->tokenizer_hash, "created_by", by, "shards", w->written);
    DS_CHECK(r != NULL);
    char *text = json_dumps(r, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    DS_CHECK(text != NULL);
    json_decref(r);
    char *path = record_path(w->prefix);
    AtomicFile f;
    int rc = atomic_open(&f, path, e);
    if (rc == DS_OK) {
        if (fputs(text, f.f) == EOF || fputc('\n', f.f) == EOF) {
            atomic_abort(&f);
            rc = ds_errf(e, "%s: write error", path);
        } else {
            rc = atomic_commit(&f, e);
        }
    }
    free(path);
    free(text);
    return rc;
}

int shard_writer_close(ShardWriter *w, DsErr *e) {
    // The last shard is written unless it is empty and others exist; an empty input still gives
    // one (empty) shard so the output always exists. The record goes last.
    if (((w->ndocs > 0 || w->nshards == 0) && flush_shard(w, e) != DS_OK) ||
        write_record(w, e) != DS_OK) {
        shard_writer_abort(w);
        return DS_ERR;
    }
    writer_free(w);
    return DS_OK;
}

void shard_writer_abort(ShardWriter *w) {
    if (!w) return;
    for (int i = 0; i < w->nshards; i++) unlink(w->paths[i]);
    writer_free(w);
}

// ---------------------------------------------------------------------------------------------
// Reader: one shard, mapped and used in place

typedef struct Shard {
    char *path;
    const uint8_t *map; // the whole file
    size_t maplen;
    TarSpan *spans;
    int nspans;
    json_t *manifest;
    const uint8_t *tokens, *offsets; // into map, after shard_check
    uint64_t ntok, ndocs;
    int bits;
    const char *tokenizer_hash, *content_hash; // owned by manifest
    int64_t max_id;                 // largest id in the data (not the manifest's word), -1 if none
    uint64_t tok_start, doc_start; // position of this shard in its dataset
} Shard;

static void shard_free(Shard *s) {
    tar_spans_free(s->spans, s->nspans);
    tar_unmap(s->map, s->maplen);
    json_decref(s->manifest);
    free(s->path);
    memset(s, 0, sizeof *s);
}

static const TarSpan *find_span(const Shard *s, const char *name) {
    for (int i = 0; i < s->nspans; i++)
        if (strcmp(s->spans[i].name, name) == 0) return &s->spans[i];
    return NULL;
}

// Maps the file, indexes the tar and parses manifest.json (not yet checked).
static int shard_open(Shard *s, const char *path, DsErr *e) {
    memset(s, 0, sizeof *s);
    s->path = ds_strdup(path);
    if (tar_map_file(path, &s->map, &s->maplen, e) != DS_OK) goto fail;
    if (tar_index(s->map, s->maplen, path, &s->spans, &s->nspans, e) != DS_OK) goto fail;
    const TarSpan *m = find_span(s, MEMBER_MANIFEST);
    if (!m) {
        ds_errf(e, "%s: not a token shard: no member '%s'", path, MEMBER_MANIFEST);
        goto fail;
    }
    json_error_t je;
    s->manifest = json_loadb((const char *)s->map + m->offset, m->size, JSON_REJECT_DUPLICATES, &je);
    if (!s->manifest) {
        ds_errf(e, "%s: %s:%d: invalid JSON: %s", path, MEMBER_MANIFEST, je.line, je.text);
        goto fail;
    }
    if (!json_is_object(s->manifest)) {
        ds_errf(e, "%s: %s: expected a JSON object", path, MEMBER_MANIFEST);
        goto fail;
    }
    return DS_OK;
fail:
    shard_free(s);
    return DS_ERR;
}

static int get_count(const Shard *s, const char *key, uint64_t *out, DsErr *e) {
    json_t *v = json_object_get(s->manifest, key);
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return ds_errf(e, "%s: %s: field '%s' must be a non-negative integer", s->path,
                       MEMBER_MANIFEST, key);
    *out = (uint64_t)json_integer_value(v);
    return DS_OK;
}

static int get_str(const Shard *s, const char *key, const char **out, DsErr *e) {
    json_t *v = json_object_get(s->manifest, key);
    if (!json_is_string(v))
        return ds_errf(e, "%s: %s: field '%s' must be a string", s->path, MEMBER_MANIFEST, key);
    *out = json_string_value(v);
    return DS_OK;
}

static int is_hex64(const char *h) {
    if (strlen(h) != 64) return 0;
    for (int i = 0; i < 64; i++)
        if (!((h[i] >= '0' && h[i] <= '9') || (h[i] >= 'a' && h[i] <= 'f'))) return 0;
    return 1;
}

// Checks the manifest fields, the member sizes against the counts, the offsets and the content
// hash; on success the shard's tokens and offsets point into the map.
static int shard_check(Shard *s, DsErr *e) {
    const char *fmt, *dtype, *hash, *th, *str;
    uint64_t version;
    if (get_str(s, "format", &fmt, e) != DS_OK) return DS_ERR;
    if (strcmp(fmt, SHARD_FORMAT_NAME) != 0)
        return ds_errf(e, "%s: not a token shard: format is '%s', expected '%s'", s->path, fmt,
                       SHARD_FORMAT_NAME);
    if (get_count(s, "version", &version, e) != DS_OK) return DS_ERR;
    if (version != SHARD_FORMAT_VERSION)
        return ds_errf(e, "%s: unsupported shard format version %llu (this build reads %d)",
                       s->path, (unsigned long long)version, SHARD_FORMAT_VERSION);
    if (get_str(s, "dtype", &dtype, e) != DS_OK) return DS_ERR;
    if (strcmp(dtype, "u16") == 0) s->bits = 16;
    else if (strcmp(dtype, "u32") == 0) s->bits = 32;
    else
        return ds_errf(e, "%s: %s: dtype '%s' is neither u16 nor u32", s->path, MEMBER_MANIFEST,
                       dtype);
    if (get_count(s, "n_tokens", &s->ntok, e) != DS_OK) return DS_ERR;
    if (get_count(s, "n_docs", &s->ndocs, e) != DS_OK) return DS_ERR;
    if (get_str(s, "tokenizer_hash", &th, e) != DS_OK) return DS_ERR;
    if (th[0] && !is_hex64(th))
        return ds_errf(e, "%s: %s: tokenizer_hash '%s' is not a hex sha256", s->path,
                       MEMBER_MANIFEST, th);
    s->tokenizer_hash = th;
    if (get_str(s, "content_hash", &hash, e) != DS_OK) return DS_ERR;
    if (!is_hex64(hash))
        return ds_errf(e, "%s: %s: content_hash '%s' is not a hex sha256", s->path,
                       MEMBER_MANIFEST, hash);
    if (get_str(s, "source", &str, e) != DS_OK) return DS_ERR;
    if (get_str(s, "created_by", &str, e) != DS_OK) return DS_ERR;

    const TarSpan *tok = find_span(s, MEMBER_TOKENS), *off = find_span(s, MEMBER_OFFSETS);
    if (!tok) return ds_errf(e, "%s: missing member '%s'", s->path, MEMBER_TOKENS);
    if (!off) return ds_errf(e, "%s: missing member '%s'", s->path, MEMBER_OFFSETS);
    // Counts come from the file: compare sizes by division so huge values cannot overflow.
    uint64_t bytes = (uint64_t)s->bits / 8;
    if (tok->size % bytes != 0 || tok->size / bytes != s->ntok)
        return ds_errf(e, "%s: %s holds %llu bytes but the manifest says %llu %s tokens", s->path,
                       MEMBER_TOKENS, (unsigned long long)tok->size, (unsigned long long)s->ntok,
                       dtype);
    if (off->size % 8 != 0 || off->size / 8 == 0 || off->size / 8 - 1 != s->ndocs)
        return ds_errf(e,
                       "%s: %s holds %llu bytes but the manifest says %llu documents (%llu bytes)",
                       s->path, MEMBER_OFFSETS, (unsigned long long)off->size,
                       (unsigned long long)s->ndocs,
                       (unsigned long long)(s->ndocs < UINT64_MAX / 8 - 1 ? (s->ndocs + 1) * 8 : 0));
    s->tokens = s->map + tok->offset;
    s->offsets = s->map + off->offset;
    uint64_t prev = load_u64(s->offsets);
    if (prev != 0) return ds_errf(e, "%s: %s: first offset is %llu, not 0", s->path, MEMBER_OFFSETS,
                                  (unsigned long long)prev);
    for (uint64_t i = 1; i <= s->ndocs; i++) {
        uint64_t o = load_u64(s->offsets + 8 * i);
        if (o < prev || o > s->ntok)
            return ds_errf(e, "%s: %s: document %llu ends at %llu, outside [%llu, %llu]", s->path,
                           MEMBER_OFFSETS, (unsigned long long)(i - 1), (unsigned long long)o,
                           (unsigned long long)prev, (unsigned long long)s->ntok);
        prev = o;
    }
    if (prev != s->ntok)
        return ds_errf(e, "%s: %s: last document ends at %llu, not at n_tokens %llu", s->path,
                       MEMBER_OFFSETS, (unsigned long long)prev, (unsigned long long)s->ntok);
    Sha256 sh;
    sha256_init(&sh);
    sha256_update(&sh, s->tokens, tok->size);
    sha256_update(&sh, s->offsets, off->size);
    uint8_t d[32];
    char hex[65];
    sha256_final(&sh, d);
    sha256_to_hex(d, hex);
    if (strcmp(hex, hash) != 0)
        return ds_errf(e, "%s: content hash mismatch: manifest says %s, data hashes to %s", s->path,
                       hash, hex);
    s->content_hash = hash;
    // The largest id, from the data: the manifest is not hashed, so its max_token_id (absent in
    // shards of older versions) must agree with the data before a reader relies on it.
    s->max_id = -1;
    for (uint64_t i = 0; i < s->ntok; i++) {
        int64_t v = s->bits == 16 ? load_u16(s->tokens + 2 * i) : load_u32(s->tokens + 4 * i);
        if (v > s->max_id) s->max_id = v;
    }
    json_t *mx = json_object_get(s->manifest, "max_token_id");
    if (mx && (!json_is_integer(mx) || json_integer_value(mx) != s->max_id))
        return ds_errf(e, "%s: %s: max_token_id is %s but the largest id in %s is %lld", s->path,
                       MEMBER_MANIFEST, json_is_integer(mx) ? "wrong" : "not an integer",
                       MEMBER_TOKENS, (long long)s->max_id);
    return DS_OK;
}

// ---------------------------------------------------------------------------------------------
// Datasets

struct Dataset {
    Shard *s;
    int n;
    uint64_t ntok, ndocs;
    int64_t max_id;
    char *tokenizer_hash;
};

// A dataset record (PREFIX.dataset.json) as loaded, with which of its shards the spec selected.
typedef struct Record {
    char *path;
    json_t *j;
    json_t *shards; // borrowed from j
    char *seen;     // per entry of shards
} Record;

static void record_free(Record *r) {
    free(r->path);
    json_decref(r->j);
    free(r->seen);
}

static int record_load(Record *r, const char *path, const char *shard, DsErr *e) {
    memset(r, 0, sizeof *r);
    r->path = ds_strdup(path);
    struct stat st;
    if (stat(path, &st) != 0)
        return ds_errf(e,
                       "%s: incomplete dataset: no record %s (the run that wrote it did not "
                       "finish, or an older ds wrote it without one); encode the data again",
                       shard, path);
    json_error_t je;
    r->j = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!r->j) return ds_errf(e, "%s:%d: invalid JSON: %s", path, je.line, je.text);
    json_t *fmt = json_object_get(r->j, "format"), *ver = json_object_get(r->j, "version");
    r->shards = json_object_get(r->j, "shards");
    if (!json_is_object(r->j) || !json_is_string(fmt) || strcmp(json_string_value(fmt), RECORD_FORMAT_NAME))
        return ds_errf(e, "%s: not a dataset record (format must be '%s')", path, RECORD_FORMAT_NAME);
    if (!json_is_integer(ver) || json_integer_value(ver) != SHARD_FORMAT_VERSION)
        return ds_errf(e, "%s: unsupported dataset record version (this build reads %d)", path,
                       SHARD_FORMAT_VERSION);
    if (!json_is_array(r->shards))
        return ds_errf(e, "%s: field 'shards' must be an array", path);
    size_t i;
    json_t *v;
    json_array_foreach(r->shards, i, v) {
        if (!json_is_string(json_object_get(v, "file")) ||
            !json_is_string(json_object_get(v, "content_hash")))
            return ds_errf(e, "%s: shards[%zu] needs string fields 'file' and 'content_hash'", path, i);
    }
    r->seen = ds_calloc(json_array_size(r->shards) + 1, 1);
    return DS_OK;
}

// Checks that s is listed, with its content, in the record of the run that wrote it (found from
// its name, PREFIX-NNNNNN.tar); loads that record into recs when it is not there yet.
static int check_recorded(const Shard *s, Record **recs, int *nrecs, DsErr *e) {
    const char *base = base_name(s->path);
    size_t bl = strlen(base);
    if (bl < 11 || shard_index_of(base + bl - 11, "") < 0)
        return ds_errf(e, "%s: not named PREFIX-NNNNNN.tar, so its dataset record cannot be found",
                       s->path);
    size_t pl = strlen(s->path) - 11;
    char *prefix = ds_malloc(pl + 1);
    memcpy(prefix, s->path, pl);
    prefix[pl] = 0;
    char *rpath = record_path(prefix);
    free(prefix);
    Record *r = NULL;
    for (int i = 0; i < *nrecs && !r; i++)
        if (strcmp((*recs)[i].path, rpath) == 0) r = &(*recs)[i];
    if (!r) {
        *recs = ds_realloc(*recs, (size_t)(*nrecs + 1) * sizeof **recs);
        r = &(*recs)[(*nrecs)++];
        if (record_load(r, rpath, s->path, e) != DS_OK) {
            free(rpath);
            return DS_ERR;
        }
    }
    free(rpath);
    size_t i;
    json_t *v;
    json_array_foreach(r->shards, i, v) {
        if (strcmp(json_string_value(json_object_get(v, "file")), base) != 0) continue;
        if (strcmp(json_string_value(json_object_get(v, "content_hash")), s->content_hash) != 0)
            return ds_errf(e, "%s: content differs from what %s records (written by another run?)",
                           s->path, r->path);
        r->seen[i] = 1;
        return DS_OK;
    }
    return ds_errf(e, "%s: not listed in %s (left by another run?)", s->path, r->path);
}

static int has_glob_chars(const char *s) { return strpbrk(s, "*?[") != NULL; }

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

// Expands a dataset spec into shard paths, sorted; *is_dir tells a folder spec.
static int resolve_spec(const char *spec, char ***paths, int *n, int *is_dir, DsErr *e) {
    *paths = NULL;
    *n = 0;
    *is_dir = 0;
    struct stat st;
    char *pattern = NULL;
    if (stat(spec, &st) == 0) {
        if (!S_ISDIR(st.st_mode)) {
            *paths = ds_malloc(sizeof **paths);
            (*paths)[0] = ds_strdup(spec);
            *n = 1;
            return DS_OK;
        }
        *is_dir = 1;
        size_t len = strlen(spec) + 8;
        pattern = ds_malloc(len);
        snprintf(pattern, len, "%s/*.tar", spec);
    } else if (has_glob_chars(spec)) {
        pattern = ds_strdup(spec);
    } else {
        return ds_errf(e, "%s: %s", spec, strerror(errno));
    }
    glob_t g;
    // Sorted bytewise by us, not by glob's locale-dependent collation.
    int rc = glob(pattern, GLOB_NOSORT, NULL, &g);
    free(pattern);
    if (rc == GLOB_NOMATCH || (rc == 0 && g.gl_pathc == 0)) {
        if (rc == 0) globfree(&g);
        return ds_errf(e, "%s: no shards found", spec);
    }
    if (rc != 0) return ds_errf(e, "%s: cannot list shards", spec);
    *paths = ds_malloc(g.gl_pathc * sizeof **paths);
    for (size_t i = 0; i < g.gl_pathc; i++) (*paths)[i] = ds_strdup(g.gl_pathv[i]);
    *n = (int)g.gl_pathc;
    globfree(&g);
    qsort(*paths, (size_t)*n, sizeof **paths, cmp_str);
    return DS_OK;
}

Dataset *dataset_open(const char *spec, DsErr *e) {
    char **paths;
    int n, is_dir;
    if (resolve_spec(spec, &paths, &n, &is_dir, e) != DS_OK) return NULL;
    Dataset *d = ds_calloc(1, sizeof *d);
    d->s = ds_calloc((size_t)n, sizeof *d->s);
    d->max_id = -1;
    Record *recs = NULL;
    int nrecs = 0;
    const char *th = NULL;
    int agree = 1;
    for (int i = 0; i < n; i++) {
        Shard *s = &d->s[i];
        if (shard_open(s, paths[i], e) != DS_OK) goto fail;
        d->n++;
        if (shard_check(s, e) != DS_OK) goto fail;
        if (check_recorded(s, &recs, &nrecs, e) != DS_OK) goto fail;
        s->tok_start = d->ntok;
        s->doc_start = d->ndocs;
        d->ntok += s->ntok;
        d->ndocs += s->ndocs;
        d->max_id = DS_MAX(d->max_id, s->max_id);
        if (!th) th = s->tokenizer_hash;
        else if (strcmp(th, s->tokenizer_hash) != 0) agree = 0;
    }
    // A folder is the whole dataset: every shard its records list must be there.
    for (int r = 0; is_dir && r < nrecs; r++)
        for (size_t i = 0; i < json_array_size(recs[r].shards); i++)
            if (!recs[r].seen[i]) {
                ds_errf(e, "%s: incomplete dataset: shard %s listed in %s is missing", spec,
                        json_string_value(json_object_get(json_array_get(recs[r].shards, i), "file")),
                        recs[r].path);
                goto fail;
            }
    d->tokenizer_hash = ds_strdup(agree && th ? th : "");
    for (int r = 0; r < nrecs; r++) record_free(&recs[r]);
    free(recs);
    for (int i = 0; i < n; i++) free(paths[i]);
    free(paths);
    return d;
fail:
    for (int r = 0; r < nrecs; r++) record_free(&recs[r]);
    free(recs);
    for (int i = 0; i < n; i++) free(paths[i]);
    free(paths);
    dataset_close(d);
    return NULL;
}

int64_t dataset_max_token_id(const Dataset *d) { return d->max_id; }

int dataset_check_vocab(const Dataset *d, int64_t vocab_size, DsErr *e) {
    if (d->max_id < vocab_size) return DS_OK;
    for (int i = 0; i < d->n; i++) {
        const Shard *s = &d->s[i];
        if (s->max_id < vocab_size) continue;
        uint64_t at = 0;
        int64_t v = 0;
        for (; at < s->ntok; at++) {
            v = s->bits == 16 ? load_u16(s->tokens + 2 * at) : load_u32(s->tokens + 4 * at);
            if (v >= vocab_size) break;
        }
        return ds_errf(e,
                       "%s: token %llu has id %lld, not below the model's vocab_size %lld (shards "
                       "made with another tokenizer?)",
                       s->path, (unsigned long long)at, (long long)v, (long long)vocab_size);
    }
    DS_CHECK(0);
    return DS_ERR;
}

void dataset_close(Dataset *d) {
    if (!d) return;
    for (int i = 0; i < d->n; i++) shard_free(&d->s[i]);
    free(d->s);
    free(d->tokenizer_hash);
    free(d);
}

uint64_t dataset_ntokens(const Dataset *d) { return d->ntok; }
uint64_t dataset_ndocs(const Dataset *d) { return d->ndocs; }
int dataset_nshards(const Dataset *d) { return d->n; }
const char *dataset_tokenizer_hash(const Dataset *d) { return d->tokenizer_hash; }

// The last shard whose start (token or document, by `docs`) is <= x; empty shards share their
// start with the next one, so the last wins and holds x whenever x is in range.
static int find_shard(const Dataset *d, uint64_t x, int docs) {
    int lo = 0, hi = d->n; // answer in [lo, hi)
    while (hi - lo > 1) {
        int mid = lo + (hi - lo) / 2;
        uint64_t start = docs ? d->s[mid].doc_start : d->s[mid].tok_start;
        if (start <= x) lo = mid;
        else hi = mid;
    }
    return lo;
}

int dataset_read(const Dataset *d, uint64_t pos, size_t n, uint32_t *out, DsErr *e) {
    if (pos > d->ntok || n > d->ntok - pos)
        return ds_errf(e, "dataset: tokens [%llu, %llu) are beyond its %llu tokens",
                       (unsigned long long)pos, (unsigned long long)pos + n,
                       (unsigned long long)d->ntok);
    int si = n ? find_shard(d, pos, 0) : 0;
    while (n > 0) {
        const Shard *s = &d->s[si++];
        uint64_t local = pos - s->tok_start;
        if (local >= s->ntok) continue; // empty shard
        size_t k = (size_t)DS_MIN((uint64_t)n, s->ntok - local);
        if (s->bits == 16) {
            const uint8_t *p = s->tokens + 2 * local;
            for (size_t i = 0; i < k; i++) out[i] = load_u16(p + 2 * i);
        } else {
            const uint8_t *p = s->tokens + 4 * local;
            for (size_t i = 0; i < k; i++) out[i] = load_u32(p + 4 * i);
        }
        out += k;
        pos += k;
        n -= k;
    }
    return DS_OK;
}

uint64_t dataset_doc_start(const Dataset *d, uint64_t i) {
    DS_CHECK(i <= d->ndocs);
    if (i == d->ndocs) return d->ntok;
    const Shard *s = &d->s[find_shard(d, i, 1)];
    return s->tok_start + load_u64(s->offsets + 8 * (i - s->doc_start));
}

// ---------------------------------------------------------------------------------------------
// Inspect

int shard_inspect(const char *path, FILE *out, int json, DsErr *e) {
    Shard s;
    if (shard_open(&s, path, e) != DS_OK) return DS_ERR;
    DsErr bad = {{0}};
    int rc = shard_check(&s, &bad);
    // Document length statistics, only over offsets that were verified.
    uint64_t dmin = 0, dmax = 0;
    if (rc == DS_OK && s.ndocs > 0) {
        dmin = UINT64_MAX;
        for (uint64_t i = 0; i < s.ndocs; i++) {
            uint64_t len = load_u64(s.offsets + 8 * (i + 1)) - load_u64(s.offsets + 8 * i);
            dmin = DS_MIN(dmin, len);
            dmax = DS_MAX(dmax, len);
        }
    }
    if (json) {
        json_t *o = json_object();
        json_object_set_new(o, "path", json_string(path));
        json_object_set(o, "manifest", s.manifest);
        json_object_set_new(o, "ok", json_boolean(rc == DS_OK));
        if (rc == DS_OK) {
            json_object_set_new(o, "doc_len_min", json_integer((json_int_t)dmin));
            json_object_set_new(o, "doc_len_max", json_integer((json_int_t)dmax));
        } else {
            json_object_set_new(o, "error", json_string(bad.msg));
        }
        json_dumpf(o, out, JSON_COMPACT | JSON_PRESERVE_ORDER);
        fputc('\n', out);
        json_decref(o);
    } else {
        fputs("shard           ", out);
        cli_print_escaped(out, path);
        fputc('\n', out);
        const char *key;
        json_t *v;
        json_object_foreach(s.manifest, key, v) {
            char *text = json_is_string(v) ? NULL : json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
            const char *shown = text ? text : json_string_value(v);
            // Manifest text comes from the file: escaped, never raw control characters.
            fprintf(out, "%-15s ", key);
            cli_print_escaped(out, shown[0] ? shown : "(none)");
            fputc('\n', out);
            free(text);
        }
        if (rc == DS_OK && s.ndocs > 0)
            fprintf(out, "doc length      min %llu, mean %.1f, max %llu\n",
                    (unsigned long long)dmin, (double)s.ntok / (double)s.ndocs,
                    (unsigned long long)dmax);
        fprintf(out, "verified        %s\n", rc == DS_OK ? "ok" : "FAILED");
    }
    shard_free(&s);
    if (rc != DS_OK && e) *e = bad;
    if (fflush(out) != 0 || ferror(out)) return ds_errf(e, "<output>: write error: %s", strerror(errno));
    return rc;
}
