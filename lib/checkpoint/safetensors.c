// safetensors.c — safetensors reader (validated, in place) and writer.
#include "checkpoint/safetensors.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "math/fp8.h"
#include "math/half.h"

static const struct {
    const char *name;
    size_t size;
} dtypes[] = {
    [ST_F64] = {"F64", 8},     [ST_F32] = {"F32", 4},          [ST_F16] = {"F16", 2},
    [ST_BF16] = {"BF16", 2},   [ST_I64] = {"I64", 8},          [ST_I32] = {"I32", 4},
    [ST_I16] = {"I16", 2},     [ST_I8] = {"I8", 1},            [ST_U8] = {"U8", 1},
    [ST_BOOL] = {"BOOL", 1},   [ST_F8_E4M3] = {"F8_E4M3", 1}, [ST_F8_E5M2] = {"F8_E5M2", 1},
};

const char *st_dtype_name(StDtype d) { return dtypes[d].name; }
size_t st_dtype_size(StDtype d) { return dtypes[d].size; }

static int dtype_from_name(const char *s, StDtype *out) {
    for (size_t i = 0; i < DS_ARRAY_LEN(dtypes); i++)
        if (strcmp(s, dtypes[i].name) == 0) {
            *out = (StDtype)i;
            return 1;
        }
    return 0;
}

static uint64_t load_u64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

// ---------------------------------------------------------------------------------------------
// Reader

void st_free(Safetensors *st) {
    for (int i = 0; i < st->n; i++) free(st->t[i].name);
    free(st->t);
    json_decref(st->metadata);
    memset(st, 0, sizeof *st);
}

static int get_uint(const json_t *v, uint64_t *out) {
    if (!json_is_integer(v) || json_integer_value(v) < 0) return 0;
    *out = (uint64_t)json_integer_value(v);
    return 1;
}

// Fills t from one header entry; messages name the file and tensor.
static int parse_tensor(StTensor *t, const char *key, const json_t *v, size_t data_len,
                        const char *name, DsErr *e) {
    if (!json_is_object(v)) return ds_errf(e, "%s: tensor '%s': expected an object", name, key);
    const json_t *dt = json_object_get(v, "dtype"), *shape = json_object_get(v, "shape"),
                 *off = json_object_get(v, "data_offsets");
    if (!json_is_string(dt)) return ds_errf(e, "%s: tensor '%s': missing dtype", name, key);
    if (!dtype_from_name(json_string_value(dt), &t->dtype))
        return ds_errf(e, "%s: tensor '%s': unknown dtype '%s'", name, key, json_string_value(dt));
    if (!json_is_array(shape)) return ds_errf(e, "%s: tensor '%s': missing shape", name, key);
    if (json_array_size(shape) > ST_MAX_DIMS)
        return ds_errf(e, "%s: tensor '%s': %zu dimensions, at most %d supported", name, key,
                       json_array_size(shape), ST_MAX_DIMS);
    t->ndim = (int)json_array_size(shape);
    uint64_t numel = 1;
    int overflow = 0;
    for (int d = 0; d < t->ndim; d++) {
        uint64_t n;
        if (!get_uint(json_array_get(shape, (size_t)d), &n))
            return ds_errf(e, "%s: tensor '%s': shape[%d] is not a non-negative integer", name, key,
                           d);
        t->shape[d] = (int64_t)n;
        if (n != 0 && numel > UINT64_MAX / n) overflow = 1;
        numel *= n;
    }
    size_t es = dtypes[t->dtype].size;
    if (overflow || numel > UINT64_MAX / es)
        return ds_errf(e, "%s: tensor '%s': shape overflows 64-bit byte counts", name, key);
    if (!json_is_array(off) || json_array_size(off) != 2 ||
        !get_uint(json_array_get(off, 0), &t->begin) || !get_uint(json_array_get(off, 1), &t->end))
        return ds_errf(e, "%s: tensor '%s': data_offsets must be [begin, end]", name, key);
    if (t->begin > t->end)
        return ds_errf(e, "%s: tensor '%s': data_offsets [%llu, %llu] end before they begin", name,
                       key, (unsigned long long)t->begin, (unsigned long long)t->end);
    if (t->end > data_len)
        return ds_errf(e, "%s: tensor '%s': data_offsets [%llu, %llu] beyond the %zu data bytes",
                       name, key, (unsigned long long)t->begin, (unsigned long long)t->end,
                       data_len);
    if (numel * es != t->end - t->begin)
        return ds_errf(e, "%s: tensor '%s': shape needs %llu bytes of %s but data_offsets span %llu",
                       name, key, (unsigned long long)(numel * es), dtypes[t->dtype].name,
                       (unsigned long long)(t->end - t->begin));
    return DS_OK;
}

static int by_begin(const void *a, const void *b) {
    const StTensor *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return strcmp(x->name, y->name);
}

int st_parse(Safetensors *st, const void *buf, size_t len, const char *name, DsErr *e) {
    memset(st, 0, sizeof *st);
    const uint8_t *p = buf;
    if (len < 8)
        return ds_errf(e, "%s: truncated: %zu bytes, too short for the 8-byte header length", name,
                       len);
    uint64_t hlen = load_u64(p);
    if (hlen > ST_MAX_HEADER)
        return ds_errf(e, "%s: header length %llu exceeds the %u-byte limit", name,
                       (unsigned long long)hlen, ST_MAX_HEADER);
    if (hlen > len - 8)
        return ds_errf(e, "%s: truncated: header length %llu runs past the end of the %zu-byte file",
                       name, (unsigned long long)hlen, len);
    json_error_t je;
    json_t *h = json_loadb((const char *)p + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &je);
    if (!h) return ds_errf(e, "%s: header is not valid JSON: %s", name, je.text);
    if (!json_is_object(h)) {
        json_decref(h);
        return ds_errf(e, "%s: header is not a JSON object", name);
    }
    st->data = p + 8 + hlen;
    st->data_len = len - 8 - (size_t)hlen;
    size_t cap = json_object_size(h);
    st->t = ds_calloc(cap ? cap : 1, sizeof *st->t);
    const char *key;
    json_t *v;
    json_object_foreach(h, key, v) {
        if (strcmp(key, "__metadata__") == 0) {
            const char *mk;
            json_t *mv;
            if (!json_is_object(v)) {
                ds_errf(e, "%s: __metadata__ is not an object", name);
                goto fail;
            }
            json_object_foreach(v, mk, mv) if (!json_is_string(mv)) {
                ds_errf(e, "%s: __metadata__ value '%s' is not a string", name, mk);
                goto fail;
            }
            st->metadata = json_incref(v);
            continue;
        }
        StTensor *t = &st->t[st->n];
        if (parse_tensor(t, key, v, st->data_len, name, e) != DS_OK) goto fail;
        t->name = ds_strdup(key);
        st->n++;
    }
    // Sorted by offset, each tensor must start where the previous ended: no overlap, no hole, and
    // the last one ends at the end of the file.
    qsort(st->t, (size_t)st->n, sizeof *st->t, by_begin);
    uint64_t at = 0;
    for (int i = 0; i < st->n; i++) {
        const StTensor *t = &st->t[i];
        if (t->begin < at) {
            ds_errf(e, "%s: tensor '%s' [%llu, %llu] overlaps tensor '%s' (ends at %llu)", name,
                    t->name, (unsigned long long)t->begin, (unsigned long long)t->end,
                    st->t[i - 1].name, (unsigned long long)at);
            goto fail;
        }
        if (t->begin > at) {
            ds_errf(e, "%s: gap in the data: bytes [%llu, %llu) belong to no tensor", name,
                    (unsigned long long)at, (unsigned long long)t->begin);
            goto fail;
        }
        at = t->end;
    }
    if (at != st->data_len) {
        ds_errf(e, "%s: %llu data bytes after the last tensor belong to no tensor", name,
                (unsigned long long)(st->data_len - at));
        goto fail;
    }
    json_decref(h);
    return DS_OK;
fail:
    json_decref(h);
    st_free(st);
    return DS_ERR;
}

const StTensor *st_find(const Safetensors *st, const char *name) {
    for (int i = 0; i < st->n; i++)
        if (strcmp(st->t[i].name, name) == 0) return &st->t[i];
    return NULL;
}

size_t st_numel(const StTensor *t) {
    size_t n = 1;
    for (int d = 0; d < t->ndim; d++) n *= (size_t)t->shape[d];
    return n;
}

int st_read_f32(const Safetensors *st, const StTensor *t, float *out, size_t n, DsErr *e) {
    if (n != st_numel(t))
        return ds_errf(e, "tensor '%s': has %zu elements, caller expects %zu", t->name,
                       st_numel(t), n);
    // The data region need not be aligned: elements are copied out byte-wise.
    const uint8_t *p = st->data + t->begin;
    switch (t->dtype) {
    case ST_F32: memcpy(out, p, n * 4); break;
    case ST_F64:
        for (size_t i = 0; i < n; i++) {
            double v;
            memcpy(&v, p + 8 * i, 8);
            out[i] = (float)v;
        }
        break;
    case ST_F16:
        for (size_t i = 0; i < n; i++) out[i] = f16_to_f32((uint16_t)(p[2 * i] | p[2 * i + 1] << 8));
        break;
    case ST_BF16:
        for (size_t i = 0; i < n; i++)
            out[i] = bf16_to_f32((uint16_t)(p[2 * i] | p[2 * i + 1] << 8));
        break;
    case ST_F8_E4M3:
    case ST_F8_E5M2: {
        float lut[256];
        fp8_table(t->dtype == ST_F8_E4M3 ? FP8_E4M3 : FP8_E5M2, lut);
        for (size_t i = 0; i < n; i++) out[i] = lut[p[i]];
        break;
    }
    default:
        return ds_errf(e, "tensor '%s': dtype %s is not a float type", t->name,
                       dtypes[t->dtype].name);
    }
    return DS_OK;
}

int st_read_f32_fp8_blocks(const Safetensors *st, const StTensor *t, const Safetensors *sst,
                           const StTensor *scale_inv, int brow, int bcol, float *out, size_t n,
                           DsErr *e) {
    if (t->ndim != 2 || (t->dtype != ST_F8_E4M3 && t->dtype != ST_F8_E5M2))
        return ds_errf(e, "tensor '%s': block scales need a 2-D F8 tensor, not %d-D %s", t->name,
                       t->ndim, dtypes[t->dtype].name);
    if (brow <= 0 || bcol <= 0)
        return ds_errf(e, "tensor '%s': block size %dx%d", t->name, brow, bcol);
    int64_t rows = t->shape[0], cols = t->shape[1];
    int64_t sr = (rows + brow - 1) / brow, sc = (cols + bcol - 1) / bcol;
    if (scale_inv->ndim != 2 || scale_inv->shape[0] != sr || scale_inv->shape[1] != sc)
        return ds_errf(e, "tensor '%s': shape [%lld, %lld] in %dx%d blocks needs '%s' of shape "
                       "[%lld, %lld]", t->name, (long long)rows, (long long)cols, brow, bcol,
                       scale_inv->name, (long long)sr, (long long)sc);
    float *s = ds_malloc(sizeof(float) * (size_t)(sr * sc > 0 ? sr * sc : 1));
    int rc = st_read_f32(sst, scale_inv, s, (size_t)(sr * sc), e);
    if (rc == DS_OK) rc = st_read_f32(st, t, out, n, e);
    for (int64_t i = 0; i < rows && rc == DS_OK; i++) {
        const float *srow = s + (i / brow) * sc;
        float *o = out + i * cols;
        for (int64_t j = 0; j < cols; j++) o[j] *= srow[j / bcol];
    }
    free(s);
    return rc;
}

long st_first_nonfinite(const float *v, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(v[i])) return (long)i;
    return -1;
}

// ---------------------------------------------------------------------------------------------
// Writer

typedef struct StEntry {
    char *name;
    StDtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    const void *data; // borrowed until serialize
} StEntry;

struct StWriter {
    StEntry *t;
    int n, cap;
    json_t *meta; // NULL until st_writer_meta
};

StWriter *st_writer_new(void) { return ds_calloc(1, sizeof(StWriter)); }

void st_writer_add(StWriter *w, const char *name, StDtype dtype, int ndim, const int64_t *shape,
                   const void *data) {
    DS_CHECK(ndim >= 0 && ndim <= ST_MAX_DIMS && (unsigned)dtype < DS_ARRAY_LEN(dtypes));
    DS_CHECK(strcmp(name, "__metadata__") != 0);
    for (int i = 0; i < w->n; i++) DS_CHECK(strcmp(w->t[i].name, name) != 0);
    if (w->n == w->cap) {
        w->cap = w->cap ? 2 * w->cap : 16;
        w->t = ds_realloc(w->t, (size_t)w->cap * sizeof *w->t);
    }
    StEntry *t = &w->t[w->n++];
    memset(t, 0, sizeof *t);
    t->name = ds_strdup(name);
    t->dtype = dtype;
    t->ndim = ndim;
    for (int d = 0; d < ndim; d++) {
        DS_CHECK(shape[d] >= 0);
        t->shape[d] = shape[d];
    }
    t->data = data;
}

void st_writer_meta(StWriter *w, const char *key, const char *value) {
    if (!w->meta) w->meta = json_object();
    json_t *s = json_string(value);
    DS_CHECK(s != NULL); // valid UTF-8
    json_object_set_new(w->meta, key, s);
}

static uint64_t entry_bytes(const StEntry *t) {
    uint64_t n = dtypes[t->dtype].size;
    for (int d = 0; d < t->ndim; d++) n *= (uint64_t)t->shape[d];
    return n;
}

uint64_t st_writer_data_bytes(const StWriter *w) {
    uint64_t n = 0;
    for (int i = 0; i < w->n; i++) n += entry_bytes(&w->t[i]);
    return n;
}

void st_writer_serialize(const StWriter *w, DsBuf *out) {
    json_t *h = json_object();
    if (w->meta) json_object_set(h, "__metadata__", w->meta);
    uint64_t at = 0;
    for (int i = 0; i < w->n; i++) {
        const StEntry *t = &w->t[i];
        json_t *o = json_object(), *shape = json_array();
        for (int d = 0; d < t->ndim; d++) json_array_append_new(shape, json_integer(t->shape[d]));
        uint64_t bytes = entry_bytes(t);
        json_object_set_new(o, "dtype", json_string(dtypes[t->dtype].name));
        json_object_set_new(o, "shape", shape);
        json_object_set_new(o, "data_offsets",
                            json_pack("[II]", (json_int_t)at, (json_int_t)(at + bytes)));
        DS_CHECK(json_object_set_new(h, t->name, o) == 0); // names are valid UTF-8
        at += bytes;
    }
    char *text = json_dumps(h, JSON_COMPACT | JSON_PRESERVE_ORDER);
    DS_CHECK(text != NULL);
    json_decref(h);
    // Padding the header to 8 bytes keeps the data region 8-byte aligned within the file.
    size_t tl = strlen(text), hl = (tl + 7) / 8 * 8;
    dsbuf_reserve(out, 8 + hl + (size_t)at);
    uint8_t len[8];
    for (int i = 0; i < 8; i++) len[i] = (uint8_t)((uint64_t)hl >> (8 * i));
    dsbuf_append(out, len, 8);
    dsbuf_append(out, text, tl);
    dsbuf_append(out, "        ", hl - tl);
    free(text);
    for (int i = 0; i < w->n; i++) {
        size_t bytes = (size_t)entry_bytes(&w->t[i]);
        if (bytes) dsbuf_append(out, w->t[i].data, bytes); // empty tensors may pass NULL
    }
}

void st_writer_free(StWriter *w) {
    if (!w) return;
    for (int i = 0; i < w->n; i++) free(w->t[i].name);
    free(w->t);
    json_decref(w->meta);
    free(w);
}
