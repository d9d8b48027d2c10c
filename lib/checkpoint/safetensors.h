// safetensors.h — Hugging Face safetensors: u64 little-endian header length, a JSON header naming
// each tensor's dtype, shape and byte range, then the data. Parsed in place and fully validated.
#ifndef DS_SAFETENSORS_H
#define DS_SAFETENSORS_H

#include <jansson.h>

#include "core/common.h"

typedef enum {
    ST_F64,
    ST_F32,
    ST_F16,
    ST_BF16,
    ST_I64,
    ST_I32,
    ST_I16,
    ST_I8,
    ST_U8,
    ST_BOOL,
    ST_F8_E4M3,
    ST_F8_E5M2
} StDtype;

enum { ST_MAX_DIMS = 8 };
#define ST_MAX_HEADER (100u << 20) // bytes of JSON header we accept

typedef struct StTensor {
    char *name;
    StDtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    uint64_t begin, end; // byte range within the data region
} StTensor;

typedef struct Safetensors {
    StTensor *t;         // in data order (ascending begin)
    int n;
    json_t *metadata;    // the "__metadata__" object (string values), or NULL
    const uint8_t *data; // the data region inside the caller's buffer
    size_t data_len;
} Safetensors;

const char *st_dtype_name(StDtype d); // "F32", "BF16", ...
size_t st_dtype_size(StDtype d);      // bytes per element

// Parses and validates a whole file image: header length within the buffer and at most
// ST_MAX_HEADER, JSON header an object, known dtypes, ndim <= 8, non-negative shapes, numel x dtype
// size == end - begin without overflow, offsets in bounds, sorted ranges neither overlapping nor
// leaving gaps and covering the data region. `name` is used in messages. buf must outlive st.
int st_parse(Safetensors *st, const void *buf, size_t len, const char *name, DsErr *e);
void st_free(Safetensors *st);
const StTensor *st_find(const Safetensors *st, const char *name);
size_t st_numel(const StTensor *t);
// Converts F32/F16/BF16/F64 (and F8_E4M3/F8_E5M2 codes, unscaled) into float; n must equal
// st_numel(t).
int st_read_f32(const Safetensors *st, const StTensor *t, float *out, size_t n, DsErr *e);
// Dequantises a 2-D FP8 tensor stored with block scales, as DeepSeek-V3 releases its weights:
// w[i][j] = fp8(t[i][j]) * scale_inv[i / brow][j / bcol], scale_inv an F32 (or BF16) tensor of
// shape [ceil(rows / brow), ceil(cols / bcol)] (the last blocks may be partial). Messages name
// both tensors.
int st_read_f32_fp8_blocks(const Safetensors *st, const StTensor *t, const Safetensors *sst,
                           const StTensor *scale_inv, int brow, int bcol, float *out, size_t n,
                           DsErr *e);
// Where the first NaN or infinity of out[0..n) is, or -1 when every value is finite.
long st_first_nonfinite(const float *v, size_t n);

// Writer: tensors are serialized in the order added. Data is referenced, not copied: it must stay
// valid until st_writer_serialize. Names must be unique (a duplicate is a programming error).
typedef struct StWriter StWriter;
StWriter *st_writer_new(void);
void st_writer_add(StWriter *w, const char *name, StDtype dtype, int ndim, const int64_t *shape,
                   const void *data);
void st_writer_meta(StWriter *w, const char *key, const char *value); // "__metadata__" string map
void st_writer_serialize(const StWriter *w, DsBuf *out); // appends; header padded with spaces to 8
// Bytes of tensor data added so far (what an index.json's total_size counts).
uint64_t st_writer_data_bytes(const StWriter *w);
void st_writer_free(StWriter *w);                        // accepts NULL

#endif
