// fp8.c — FP8 encode/decode and per-group scaled quantisation (see docs/FP8.md).
#include "math/fp8.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"

// ---------------------------------------------------------------------------------------------
// Encoding and decoding
// ---------------------------------------------------------------------------------------------

static inline uint32_t f32_bits(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}
static inline float f32_from(uint32_t u) {
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

// Branch-free so that quantisation loops vectorise. Normal results: adding (half - 1 + lsb) to the
// float's bit pattern and shifting away the extra mantissa bits is round-to-nearest-even, and a
// mantissa carry moves into the exponent by itself. Subnormal results: adding a power of two whose
// float ulp is the smallest subnormal makes the FPU round in those units (default rounding
// mode, nearest even); the code is then the low bits of the sum, and a sum that reaches the
// smallest normal yields its code (1 << mbits) too.
static inline uint8_t encode(float x, int mbits, int bias, uint32_t maxcode, int has_inf) {
    const int shift = 23 - mbits;
    const uint32_t magic = (uint32_t)((127 - bias) + shift + 1) << 23;
    const uint32_t min_normal = (uint32_t)(128 - bias) << 23;
    uint32_t u = f32_bits(x), sign = (u >> 24) & 0x80, a = u & 0x7fffffffu;
    uint32_t rn = ((a + ((1u << (shift - 1)) - 1) + ((a >> shift) & 1)) >> shift) -
                  ((uint32_t)(127 - bias) << mbits);
    uint32_t rs = f32_bits(f32_from(a) + f32_from(magic)) - magic;
    uint32_t sub = 0u - (uint32_t)(a < min_normal); // all ones when subnormal or zero
    uint32_t code = (rs & sub) | (rn & ~sub);
    code = code < maxcode ? code : maxcode; // saturate finite overflow
    uint32_t nonfinite = 0u - (uint32_t)(a >= 0x7f800000u);
    uint32_t special = has_inf && a == 0x7f800000u ? maxcode + 1 : FP8_NAN; // inf or NaN code
    code = (special & nonfinite) | (code & ~nonfinite);
    return (uint8_t)(code == FP8_NAN ? FP8_NAN : sign | code); // one NaN code, unsigned
}

static inline uint8_t encode_e4m3(float x) { return encode(x, 3, 7, 0x7e, 0); }
static inline uint8_t encode_e5m2(float x) { return encode(x, 2, 15, 0x7b, 1); }

uint8_t fp8_from_float(float x, Fp8Format f) {
    return f == FP8_E4M3 ? encode_e4m3(x) : encode_e5m2(x);
}

float fp8_to_float(uint8_t c, Fp8Format f) {
    int mbits = f == FP8_E4M3 ? 3 : 2, bias = f == FP8_E4M3 ? 7 : 15;
    int e = (c & 0x7f) >> mbits, m = c & ((1 << mbits) - 1);
    float v;
    if (f == FP8_E4M3 && e == 15 && m == 7)
        v = NAN;
    else if (f == FP8_E5M2 && e == 31)
        v = m ? NAN : INFINITY;
    else if (e == 0)
        v = ldexpf((float)m, 1 - bias - mbits);
    else
        v = ldexpf((float)((1 << mbits) + m), e - bias - mbits);
    return (c & 0x80) ? -v : v;
}

void fp8_table(Fp8Format f, float lut[256]) {
    for (int c = 0; c < 256; c++) lut[c] = fp8_to_float((uint8_t)c, f);
}

float fp8_max(Fp8Format f) { return f == FP8_E4M3 ? FP8_E4M3_MAX : FP8_E5M2_MAX; }

float fp8_scale(float amax, Fp8Format f, int pow2) {
    float s = fmaxf(amax, FP8_AMAX_FLOOR) / fp8_max(f);
    if (pow2) {
        int e;
        float m = frexpf(s, &e); // s = m * 2^e, m in [0.5, 1)
        if (m != 0.5f) s = ldexpf(1.0f, e);
    }
    return s;
}

// ---------------------------------------------------------------------------------------------
// Quantised tensors
// ---------------------------------------------------------------------------------------------

void fp8_tensor_alloc(Fp8Tensor *q, int rows, int cols, int k_along_cols, int block_other,
                      Fp8Format fmt) {
    DS_CHECK(rows > 0 && cols > 0 && block_other >= 1 && block_other <= FP8_GROUP);
    memset(q, 0, sizeof *q);
    q->rows = rows, q->cols = cols;
    q->k_along_cols = k_along_cols ? 1 : 0;
    q->block_other = block_other;
    q->brow = q->k_along_cols ? block_other : FP8_GROUP;
    q->bcol = q->k_along_cols ? FP8_GROUP : block_other;
    q->scale_rows = (rows + q->brow - 1) / q->brow;
    q->scale_cols = (cols + q->bcol - 1) / q->bcol;
    q->fmt = fmt;
    q->codes = ds_malloc((size_t)rows * cols);
    q->scales = ds_malloc((size_t)q->scale_rows * q->scale_cols * sizeof(float));
}

// c[j] = encode(x[j] * inv[j]). Blocks of a fixed 16 let -O2's vectoriser (which takes only
// loops it needs no remainder or alias checks for) turn the block into SIMD code.
#define ENCODE_ROW(NAME, ENC)                                                                      \
    static void NAME(uint8_t *restrict c, const float *restrict x, const float *restrict inv,      \
                     int n) {                                                                      \
        int j = 0;                                                                                 \
        for (; j + 16 <= n; j += 16)                                                               \
            for (int t = 0; t < 16; t++) c[j + t] = ENC(x[j + t] * inv[j + t]);                    \
        for (; j < n; j++) c[j] = ENC(x[j] * inv[j]);                                              \
    }
ENCODE_ROW(encode_row_e4m3, encode_e4m3)
ENCODE_ROW(encode_row_e5m2, encode_e5m2)

// m[j] = max(m[j], |x[j]|), in blocks of 16 for the same reason.
static void absmax_row(float *restrict m, const float *restrict x, int n) {
    int j = 0;
    for (; j + 16 <= n; j += 16)
        for (int t = 0; t < 16; t++) {
            float a = fabsf(x[j + t]);
            m[j + t] = a > m[j + t] ? a : m[j + t];
        }
    for (; j < n; j++) m[j] = fabsf(x[j]) > m[j] ? fabsf(x[j]) : m[j];
}

// max of n >= 1 non-negative values: 16 running maxima (a float max reduction is not reordered
// by the compiler without fast-math), then one pass over them.
static float max_of(const float *x, int n) {
    float lane[16] = {0};
    int j = 0;
    for (; j + 16 <= n; j += 16)
        for (int t = 0; t < 16; t++) lane[t] = x[j + t] > lane[t] ? x[j + t] : lane[t];
    float m = 0.0f;
    for (; j < n; j++) m = x[j] > m ? x[j] : m;
    for (int t = 0; t < 16; t++) m = lane[t] > m ? lane[t] : m;
    return m;
}

// Columns are handled in chunks that hold whole column groups, so that per-column work arrays
// live on the stack. Each band of brow rows is read row by row (stride 1) whatever the layout.
enum { CHUNK = 1024 };

void fp8_quantize_into(Fp8Tensor *q, const float *x, int pow2) {
    const int rows = q->rows, cols = q->cols, brow = q->brow, bcol = q->bcol;
    const int chunk = (CHUNK / bcol) * bcol;
    float colmax[CHUNK], inv[CHUNK];
    for (int i0 = 0; i0 < rows; i0 += brow) {
        int i1 = DS_MIN(i0 + brow, rows);
        for (int j0 = 0; j0 < cols; j0 += chunk) {
            int nj = DS_MIN(chunk, cols - j0);
            for (int j = 0; j < nj; j++) colmax[j] = 0.0f;
            for (int i = i0; i < i1; i++) absmax_row(colmax, x + (size_t)i * cols + j0, nj);
            for (int g = 0; g < nj; g += bcol) {
                int gn = DS_MIN(bcol, nj - g);
                float amax = max_of(colmax + g, gn);
                float s = fp8_scale(amax, q->fmt, pow2);
                q->scales[(size_t)(i0 / brow) * q->scale_cols + (j0 + g) / bcol] = s;
                for (int j = g; j < g + gn; j++) inv[j] = 1.0f / s;
            }
            for (int i = i0; i < i1; i++) {
                const float *xr = x + (size_t)i * cols + j0;
                uint8_t *cr = q->codes + (size_t)i * cols + j0;
                if (q->fmt == FP8_E4M3)
                    encode_row_e4m3(cr, xr, inv, nj);
                else
                    encode_row_e5m2(cr, xr, inv, nj);
            }
        }
    }
}

void fp8_quantize(Fp8Tensor *q, const float *x, int rows, int cols, int k_along_cols,
                  int block_other, Fp8Format fmt, int pow2_scales) {
    fp8_tensor_alloc(q, rows, cols, k_along_cols, block_other, fmt);
    fp8_quantize_into(q, x, pow2_scales);
}

void fp8_dequantize(const Fp8Tensor *q, float *x) {
    float lut[256];
    fp8_table(q->fmt, lut);
    for (int i = 0; i < q->rows; i++) {
        const uint8_t *cr = q->codes + (size_t)i * q->cols;
        const float *sr = q->scales + (size_t)(i / q->brow) * q->scale_cols;
        float *xr = x + (size_t)i * q->cols;
        if (q->bcol == 1) { // K along rows, 128×1 tiles: one scale per column
            for (int j = 0; j < q->cols; j++) xr[j] = lut[cr[j]] * sr[j];
            continue;
        }
        for (int j0 = 0; j0 < q->cols; j0 += q->bcol) {
            int j1 = DS_MIN(j0 + q->bcol, q->cols);
            float s = sr[j0 / q->bcol];
            for (int j = j0; j < j1; j++) xr[j] = lut[cr[j]] * s;
        }
    }
}

Fp8Tensor fp8_tensor_kswap(const Fp8Tensor *q) {
    DS_CHECK(q->block_other == FP8_GROUP);
    Fp8Tensor v = *q;
    v.k_along_cols = !q->k_along_cols; // 128×128 blocks: same grid, same brow/bcol
    return v;
}

void fp8_tensor_free(Fp8Tensor *q) {
    free(q->codes);
    free(q->scales);
    q->codes = NULL;
    q->scales = NULL;
}
