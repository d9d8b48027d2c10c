// test_fp8.c — FP8 formats, scaled quantisation, and the FP8 GEMM (exact model and fast path).
#include <float.h>
#include <stdint.h>

#include "core/common.h"
#include "math/fp8.h"
#include "math/fp8_gemm.h"
#include "core/rng.h"
#include "unit.h"

static const Fp8Format FORMATS[2] = {FP8_E4M3, FP8_E5M2};

static int is_nan_code(uint8_t c, Fp8Format f) {
    return f == FP8_E4M3 ? (c & 0x7f) == 0x7f : (c & 0x7f) > 0x7c;
}

// ---------------------------------------------------------------------------------------------
// Formats
// ---------------------------------------------------------------------------------------------

static void codes_round_trip(T *t) {
    for (int fi = 0; fi < 2; fi++) {
        Fp8Format f = FORMATS[fi];
        int nan = 0;
        for (int c = 0; c < 256; c++) {
            float x = fp8_to_float((uint8_t)c, f);
            if (isnan(x)) {
                nan++;
                CHECKF(t, is_nan_code((uint8_t)c, f), "fmt %d code %#x decodes to NaN", fi, c);
                CHECK(t, isnan(fp8_to_float(fp8_from_float(x, f), f)));
                continue;
            }
            uint8_t back = fp8_from_float(x, f);
            CHECKF(t, back == c, "fmt %d code %#x -> %g -> %#x", fi, c, x, back);
            CHECK(t, (signbit(x) != 0) == ((c & 0x80) != 0));
        }
        CHECK(t, nan == (f == FP8_E4M3 ? 2 : 6)); // e4m3fn: S.1111.111; e5m2: S.11111.{01,10,11}
    }
}

// Reference encoder by search: the nearest of the sorted non-negative values (codes 0..max are
// increasing), ties to the even code, beyond max saturates; independent of the bit tricks.
static uint8_t ref_encode(float x, Fp8Format f) {
    uint8_t maxc = f == FP8_E4M3 ? 0x7e : 0x7b;
    if (isnan(x)) return FP8_NAN;
    if (isinf(x)) return f == FP8_E4M3 ? FP8_NAN : (x < 0 ? 0xfc : 0x7c);
    uint8_t sign = signbit(x) ? 0x80 : 0;
    double a = fabs((double)x);
    int lo = 0, hi = maxc; // largest code with value <= a
    if (a >= fp8_to_float(maxc, f)) return sign | maxc;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (fp8_to_float((uint8_t)mid, f) <= a)
            lo = mid;
        else
            hi = mid - 1;
    }
    double d0 = a - fp8_to_float((uint8_t)lo, f), d1 = fp8_to_float((uint8_t)(lo + 1), f) - a;
    int c = d0 < d1 ? lo : d1 < d0 ? lo + 1 : (lo & 1 ? lo + 1 : lo);
    return (uint8_t)(sign | c);
}

// 2^19 floats spread over all 2^32 bit patterns (a prime stride, so every exponent and many
// mantissas), plus the bit patterns next to every FP8 value: the encoder equals the search.
static void matches_reference_encoder(T *t) {
    for (int fi = 0; fi < 2; fi++) {
        Fp8Format f = FORMATS[fi];
        long bad = 0;
        uint32_t u = 12345;
        for (int i = 0; i < (1 << 19); i++, u += 8191u) {
            float x;
            memcpy(&x, &u, sizeof x);
            uint8_t got = fp8_from_float(x, f), want = ref_encode(x, f);
            if (got != want && bad++ < 5)
                fprintf(stderr, "fmt %d %#010x: %#x want %#x\n", fi, u, got, want);
        }
        for (int c = 0; c < 256; c++) {
            float v = fp8_to_float((uint8_t)c, f);
            if (!isfinite(v)) continue;
            uint32_t b;
            memcpy(&b, &v, sizeof b);
            for (int d = -3; d <= 3; d++) {
                uint32_t w = b + (uint32_t)d;
                float x;
                memcpy(&x, &w, sizeof x);
                bad += fp8_from_float(x, f) != ref_encode(x, f);
            }
        }
        CHECKF(t, bad == 0, "fmt %d: %ld mismatches", fi, bad);
    }
}

static void known_values(T *t) {
    CHECK(t, fp8_to_float(0x38, FP8_E4M3) == 1.0f);
    CHECK(t, fp8_to_float(0x7e, FP8_E4M3) == 448.0f);
    CHECK(t, fp8_to_float(0xfe, FP8_E4M3) == -448.0f);
    CHECK(t, fp8_to_float(0x08, FP8_E4M3) == ldexpf(1, -6)); // smallest normal
    CHECK(t, fp8_to_float(0x01, FP8_E4M3) == ldexpf(1, -9)); // smallest subnormal
    CHECK(t, fp8_to_float(0x07, FP8_E4M3) == 7 * ldexpf(1, -9));
    CHECK(t, fp8_to_float(0x3c, FP8_E5M2) == 1.0f);
    CHECK(t, fp8_to_float(0x7b, FP8_E5M2) == 57344.0f);
    CHECK(t, fp8_to_float(0x04, FP8_E5M2) == ldexpf(1, -14));
    CHECK(t, fp8_to_float(0x01, FP8_E5M2) == ldexpf(1, -16));
    CHECK(t, isinf(fp8_to_float(0x7c, FP8_E5M2)) && fp8_to_float(0xfc, FP8_E5M2) < 0);
    CHECK(t, fp8_max(FP8_E4M3) == 448.0f && fp8_max(FP8_E5M2) == 57344.0f);
    float lut[256];
    fp8_table(FP8_E5M2, lut);
    CHECK(t, lut[0x3c] == 1.0f && lut[0x7b] == 57344.0f);
}

// Between every two neighbouring finite values: the midpoint goes to the one with an even code,
// anything just off the midpoint goes to the nearer one. Covers subnormals, the subnormal/normal
// boundary and every binade, both signs.
static void ties_to_even_everywhere(T *t) {
    for (int fi = 0; fi < 2; fi++) {
        Fp8Format f = FORMATS[fi];
        uint8_t maxc = f == FP8_E4M3 ? 0x7e : 0x7b;
        for (int c = 0; c < maxc; c++) {
            for (int sgn = 0; sgn < 2; sgn++) {
                uint8_t lo = (uint8_t)(c | sgn << 7), hi = (uint8_t)((c + 1) | sgn << 7);
                float a = fp8_to_float(lo, f), b = fp8_to_float(hi, f);
                float mid = (a + b) / 2; // exact: fp8 values have few bits
                uint8_t even = (c & 1) ? hi : lo;
                CHECKF(t, fp8_from_float(mid, f) == even, "fmt %d mid of %#x,%#x", fi, lo, hi);
                float below = nextafterf(mid, a), above = nextafterf(mid, b);
                CHECKF(t, fp8_from_float(below, f) == lo, "fmt %d below mid %#x", fi, lo);
                CHECKF(t, fp8_from_float(above, f) == hi, "fmt %d above mid %#x", fi, hi);
            }
        }
    }
    // Hand-picked halfway cases.
    CHECK(t, fp8_from_float(1.0625f, FP8_E4M3) == 0x38); // 1 | 1.125 -> 1 (even)
    CHECK(t, fp8_from_float(1.1875f, FP8_E4M3) == 0x3a); // 1.125 | 1.25 -> 1.25 (even)
    CHECK(t, fp8_from_float(1.125f, FP8_E5M2) == 0x3c);
    CHECK(t, fp8_from_float(1.375f, FP8_E5M2) == 0x3e);
}

static void subnormals_and_zero(T *t) {
    float s = ldexpf(1, -9); // E4M3 smallest subnormal
    CHECK(t, fp8_from_float(s, FP8_E4M3) == 0x01);
    CHECK(t, fp8_from_float(s / 2, FP8_E4M3) == 0x00); // tie -> 0 (even)
    CHECK(t, fp8_from_float(nextafterf(s / 2, 1), FP8_E4M3) == 0x01);
    CHECK(t, fp8_from_float(-s / 2, FP8_E4M3) == 0x80);   // -0
    CHECK(t, fp8_from_float(1.5f * s, FP8_E4M3) == 0x02); // tie -> 2 (even)
    CHECK(t, fp8_from_float(7.5f * s, FP8_E4M3) == 0x08); // up into the normals
    CHECK(t, fp8_from_float(ldexpf(1, -17), FP8_E5M2) == 0x00);
    CHECK(t, fp8_from_float(ldexpf(1.01f, -17), FP8_E5M2) == 0x01);
    CHECK(t, fp8_from_float(1e-30f, FP8_E4M3) == 0x00);
    CHECK(t, fp8_from_float(-1e-40f, FP8_E5M2) == 0x80); // float subnormal
    CHECK(t, fp8_from_float(-0.0f, FP8_E4M3) == 0x80 && fp8_from_float(-0.0f, FP8_E5M2) == 0x80);
    CHECK(t, fp8_from_float(0.0f, FP8_E4M3) == 0x00);
    float nz = fp8_to_float(0x80, FP8_E4M3);
    CHECK(t, nz == 0.0f && signbit(nz));
}

static void saturation_and_specials(T *t) {
    float big[] = {448.0f, 449.0f, 464.0f, 479.0f, 480.0f, 1e6f, FLT_MAX};
    for (size_t i = 0; i < DS_ARRAY_LEN(big); i++) {
        CHECKF(t, fp8_from_float(big[i], FP8_E4M3) == 0x7e, "%g", big[i]);
        CHECKF(t, fp8_from_float(-big[i], FP8_E4M3) == 0xfe, "%g", -big[i]);
    }
    CHECK(t, fp8_from_float(nextafterf(448.0f, 0), FP8_E4M3) == 0x7e);
    CHECK(t, fp8_from_float(432.0f, FP8_E4M3) == 0x7e); // tie 416|448 -> 448 (even mantissa 6)
    float big5[] = {57344.0f, 61439.0f, 61440.0f, 65536.0f, 1e30f, FLT_MAX};
    for (size_t i = 0; i < DS_ARRAY_LEN(big5); i++) {
        CHECKF(t, fp8_from_float(big5[i], FP8_E5M2) == 0x7b, "%g", big5[i]);
        CHECKF(t, fp8_from_float(-big5[i], FP8_E5M2) == 0xfb, "%g", -big5[i]);
    }
    // Infinity: E5M2 keeps it, E4M3 (no infinity) gives NaN; NaN stays NaN.
    CHECK(t, fp8_from_float(INFINITY, FP8_E5M2) == 0x7c);
    CHECK(t, fp8_from_float(-INFINITY, FP8_E5M2) == 0xfc);
    CHECK(t, is_nan_code(fp8_from_float(INFINITY, FP8_E4M3), FP8_E4M3));
    CHECK(t, is_nan_code(fp8_from_float(-INFINITY, FP8_E4M3), FP8_E4M3));
    CHECK(t, is_nan_code(fp8_from_float(NAN, FP8_E4M3), FP8_E4M3));
    CHECK(t, is_nan_code(fp8_from_float(-NAN, FP8_E5M2), FP8_E5M2));
}

// ---------------------------------------------------------------------------------------------
// Scales and quantised tensors
// ---------------------------------------------------------------------------------------------

static void scale_rules(T *t) {
    CHECK(t, fp8_scale(448.0f, FP8_E4M3, 0) == 1.0f);
    CHECK(t, fp8_scale(0.0f, FP8_E4M3, 0) == 1e-4f / 448.0f); // floor
    CHECK(t, fp8_scale(1e-6f, FP8_E4M3, 0) == 1e-4f / 448.0f);
    CHECK(t, fp8_scale(57344.0f * 2, FP8_E5M2, 0) == 2.0f);
    // Power of two: rounded up (1/448 -> 1/256), exact powers kept.
    CHECK(t, fp8_scale(1.0f, FP8_E4M3, 1) == ldexpf(1, -8));
    CHECK(t, fp8_scale(56.0f, FP8_E4M3, 1) == 0.125f); // 56/448 = 2^-3 exactly
    CHECK(t, fp8_scale(56.1f, FP8_E4M3, 1) == 0.25f);
    CHECK(t, fp8_scale(0.0f, FP8_E4M3, 1) == ldexpf(1, -22)); // 1e-4/448 = 2.2e-7 -> 2^-22
    for (float a = 1e-3f; a < 1e5f; a *= 1.37f) {
        float s = fp8_scale(a, FP8_E4M3, 1);
        int e;
        CHECK(t, frexpf(s, &e) == 0.5f && s >= a / 448.0f && s < 2 * a / 448.0f);
    }
}

static void fill_normal(Rng *r, float *x, size_t n, float sd) {
    for (size_t i = 0; i < n; i++) x[i] = (float)rng_normal(r) * sd;
}

// 3×200 activations (1×128 along cols), 200×3 gradients (128×1 along rows), 130×260 weights
// (128×128 blocks): scale grids, partial last groups, and each group's own amax.
static void partial_groups(T *t) {
    Rng r;
    rng_seed(&r, 7);
    float x[130 * 260];
    fill_normal(&r, x, DS_ARRAY_LEN(x), 1.0f);
    Fp8Tensor q;
    fp8_quantize(&q, x, 3, 200, 1, 1, FP8_E4M3, 0);
    CHECK(t, q.scale_rows == 3 && q.scale_cols == 2 && q.brow == 1 && q.bcol == 128);
    for (int i = 0; i < 3; i++)
        for (int g = 0; g < 2; g++) {
            float amax = 0;
            for (int j = g * 128; j < DS_MIN(200, g * 128 + 128); j++)
                amax = fmaxf(amax, fabsf(x[i * 200 + j]));
            CHECK(t, q.scales[i * 2 + g] == amax / 448.0f);
        }
    fp8_tensor_free(&q);
    x[150 * 3 + 1] = 100.0f; // a big value in the second (partial) row group of column 1
    fp8_quantize(&q, x, 200, 3, 0, 1, FP8_E4M3, 0);
    CHECK(t, q.scale_rows == 2 && q.scale_cols == 3 && q.brow == 128 && q.bcol == 1);
    CHECK(t, q.scales[1 * 3 + 1] == 100.0f / 448.0f);
    CHECK(t, q.scales[0 * 3 + 1] < 10.0f / 448.0f && q.scales[1 * 3 + 0] < 10.0f / 448.0f);
    CHECK(t, q.codes[150 * 3 + 1] == 0x7e); // the group's amax lands on the largest code
    fp8_tensor_free(&q);
    fp8_quantize(&q, x, 130, 260, 1, 128, FP8_E4M3, 0);
    CHECK(t, q.scale_rows == 2 && q.scale_cols == 3);
    for (int gi = 0; gi < 2; gi++)
        for (int gj = 0; gj < 3; gj++) {
            float amax = 0;
            for (int i = gi * 128; i < DS_MIN(130, gi * 128 + 128); i++)
                for (int j = gj * 128; j < DS_MIN(260, gj * 128 + 128); j++)
                    amax = fmaxf(amax, fabsf(x[i * 260 + j]));
            CHECK(t, q.scales[gi * 3 + gj] == amax / 448.0f);
        }
    Fp8Tensor v = fp8_tensor_kswap(&q); // square blocks: same grid with K along rows
    CHECK(t, v.k_along_cols == 0 && v.codes == q.codes && v.scale_rows == 2 && v.scale_cols == 3);
    fp8_tensor_free(&q);
    fp8_tensor_free(&q); // safe twice
    // An all-zero group gets the floored scale and zero codes.
    float z[128] = {0};
    fp8_quantize(&q, z, 1, 128, 1, 1, FP8_E4M3, 0);
    CHECK(t, q.scales[0] == 1e-4f / 448.0f && q.codes[0] == 0 && q.codes[127] == 0);
    fp8_tensor_free(&q);
}

// Against a naive quantiser (each group's amax by brute force, then x * (1/scale) encoded), on
// shapes wider than the 1024-column working chunk and with partial groups, every layout, both
// scale rules: identical scales and codes.
static void matches_naive_quantizer(T *t) {
    static const int shapes[][2] = {{3, 1300}, {130, 1100}, {1300, 3}, {257, 129}};
    Rng r;
    rng_seed(&r, 13);
    for (size_t si = 0; si < DS_ARRAY_LEN(shapes); si++)
        for (int lay = 0; lay < 3; lay++)
            for (int pow2 = 0; pow2 < 2; pow2++) {
                int rows = shapes[si][0], cols = shapes[si][1], kc = lay != 1,
                    bo = lay == 2 ? 128 : 1;
                float *x = ds_malloc(sizeof(float) * rows * cols);
                for (int i = 0; i < rows * cols; i++)
                    x[i] = (float)(rng_normal(&r) * exp(2 * rng_normal(&r)));
                Fp8Tensor q;
                fp8_quantize(&q, x, rows, cols, kc, bo, FP8_E4M3, pow2);
                int brow = kc ? bo : 128, bcol = kc ? 128 : bo, bad_s = 0, bad_c = 0;
                CHECK(t, q.brow == brow && q.bcol == bcol);
                CHECK(t, q.scale_rows == (rows + brow - 1) / brow &&
                             q.scale_cols == (cols + bcol - 1) / bcol);
                for (int gi = 0; gi < q.scale_rows; gi++)
                    for (int gj = 0; gj < q.scale_cols; gj++) {
                        float amax = 0;
                        for (int i = gi * brow; i < DS_MIN(rows, gi * brow + brow); i++)
                            for (int j = gj * bcol; j < DS_MIN(cols, gj * bcol + bcol); j++)
                                amax = fmaxf(amax, fabsf(x[i * cols + j]));
                        float sc = fp8_scale(amax, FP8_E4M3, pow2);
                        bad_s += q.scales[gi * q.scale_cols + gj] != sc;
                        for (int i = gi * brow; i < DS_MIN(rows, gi * brow + brow); i++)
                            for (int j = gj * bcol; j < DS_MIN(cols, gj * bcol + bcol); j++)
                                bad_c += q.codes[i * cols + j] !=
                                         fp8_from_float(x[i * cols + j] * (1.0f / sc), FP8_E4M3);
                    }
                CHECKF(t, bad_s == 0 && bad_c == 0,
                       "%dx%d layout %d pow2 %d: %d scales, %d codes differ", rows, cols, lay, pow2,
                       bad_s, bad_c);
                // The caller-buffer variant overwrites in place with the same result.
                memset(q.codes, 0xff, (size_t)rows * cols);
                uint8_t first = fp8_from_float(x[0] * (1.0f / q.scales[0]), FP8_E4M3);
                fp8_quantize_into(&q, x, pow2);
                CHECK(t, q.codes[0] == first);
                free(x);
                fp8_tensor_free(&q);
            }
}

// Dequantised values are within half an FP8 step of the input, for both formats, both scale
// rules, every layout.
static void quantize_error_bound(T *t) {
    Rng r;
    rng_seed(&r, 11);
    int rows = 150, cols = 300;
    float *x = ds_malloc(sizeof(float) * rows * cols), *y = ds_malloc(sizeof(float) * rows * cols);
    fill_normal(&r, x, (size_t)rows * cols, 3.0f);
    for (int fi = 0; fi < 2; fi++)
        for (int pow2 = 0; pow2 < 2; pow2++)
            for (int lay = 0; lay < 3; lay++) {
                int kc = lay != 1, bo = lay == 2 ? 128 : 1;
                Fp8Tensor q;
                fp8_quantize(&q, x, rows, cols, kc, bo, FORMATS[fi], pow2);
                fp8_dequantize(&q, y);
                double rel = ldexp(1.0, FORMATS[fi] == FP8_E4M3 ? -4 : -3);
                double sub = ldexp(1.0, FORMATS[fi] == FP8_E4M3 ? -10 : -17);
                int bad = 0;
                for (int i = 0; i < rows; i++)
                    for (int j = 0; j < cols; j++) {
                        double s = q.scales[(i / q.brow) * q.scale_cols + j / q.bcol];
                        double d = fabs((double)x[i * cols + j] - y[i * cols + j]);
                        bad += d > fabs(x[i * cols + j]) * rel + s * sub;
                        // amax / (amax / 448 rounded to float) may pass 448 by an ulp
                        bad += fabs(x[i * cols + j] / s) > fp8_max(FORMATS[fi]) * (1 + 1e-6);
                    }
                CHECKF(t, bad == 0, "fmt %d pow2 %d layout %d: %d bad", fi, pow2, lay, bad);
                fp8_tensor_free(&q);
            }
    free(x), free(y);
}

// ---------------------------------------------------------------------------------------------
// GEMM
// ---------------------------------------------------------------------------------------------

// Hand-built K×1 operands with unit scales: A = a (1×K, along cols), B = b (stored 1×K).
static float dot_codes(const uint8_t *a, const uint8_t *b, int K, Fp8GemmOpts o) {
    Fp8Tensor A, B;
    fp8_tensor_alloc(&A, 1, K, 1, 1, FP8_E4M3);
    fp8_tensor_alloc(&B, 1, K, 1, 128, FP8_E4M3);
    memcpy(A.codes, a, K), memcpy(B.codes, b, K);
    for (int g = 0; g < A.scale_cols; g++) A.scales[g] = B.scales[g] = 1.0f;
    float c = -1;
    o.exact = 1;
    fp8_gemm(&c, 1, &A, &B, 0.0f, &o, NULL);
    fp8_tensor_free(&A), fp8_tensor_free(&B);
    return c;
}

// The accumulation model on products 1 and ±2^-14 (E4M3 1.0 = 0x38, 2^-7 = 0x04): aligned to
// exponent 0, 14 bits keep multiples of 2^-13, so 2^-14 is truncated (toward zero, either sign);
// 15 bits keep it; the incoming accumulator is aligned too; promotion every element is FP32.
static void accumulator_truncation(T *t) {
    Fp8GemmOpts o = {.exact = 1, .acc_bits = 14, .mma_k = 32, .n_c = 0};
    uint8_t one[2] = {0x38, 0x38}, b[2] = {0x38, 0x04}, a_pos[2] = {0x38, 0x04},
            a_neg[2] = {0x38, 0x84};
    const float tiny = ldexpf(1, -14);
    CHECK(t, dot_codes(a_pos, b, 2, o) == 1.0f);
    CHECK(t, dot_codes(a_neg, b, 2, o) == 1.0f);
    o.acc_bits = 15;
    CHECK(t, dot_codes(a_pos, b, 2, o) == 1.0f + tiny);
    CHECK(t, dot_codes(a_neg, b, 2, o) == 1.0f - tiny);
    // One product per step: 2^-14 first (exact alone), then the step holding 1.0 truncates the
    // accumulator. With n_c = 1 each product is promoted and FP32 keeps it.
    o = (Fp8GemmOpts){.exact = 1, .acc_bits = 14, .mma_k = 1, .n_c = 0};
    uint8_t a_rev[2] = {0x04, 0x38}, b_rev[2] = {0x04, 0x38};
    CHECK(t, dot_codes(a_rev, b_rev, 2, o) == 1.0f);
    o.n_c = 1;
    CHECK(t, dot_codes(a_rev, b_rev, 2, o) == 1.0f + tiny);
    // 3·2^-15 (0x03 · 0x08) is 0.75 of the last kept bit: truncated, not rounded, either sign.
    o = (Fp8GemmOpts){.exact = 1, .acc_bits = 14, .mma_k = 32, .n_c = 0};
    uint8_t a34[2] = {0x38, 0x03}, b34[2] = {0x38, 0x08}, a34n[2] = {0x38, 0x83};
    CHECK(t, dot_codes(a34, b34, 2, o) == 1.0f);
    CHECK(t, dot_codes(a34n, b34, 2, o) == 1.0f);
    o.acc_bits = 16;
    CHECK(t, dot_codes(a34, b34, 2, o) == 1.0f + 3 * ldexpf(1, -15));
    // 1 + 1 + 1: the carry into a new binade is exact.
    uint8_t a3[3] = {0x38, 0x38, 0x38};
    o = (Fp8GemmOpts){.exact = 1, .acc_bits = 14, .mma_k = 32, .n_c = 0};
    CHECK(t, dot_codes(a3, one, 2, o) == 2.0f);
    uint8_t b3[3] = {0x38, 0x38, 0x38};
    CHECK(t, dot_codes(a3, b3, 3, o) == 3.0f);
}

// Logical element (i, k) of a stored matrix whose K is along cols (kc = 1) or rows.
static double at(const float *x, int ld, int kc, int i, int k) {
    return kc ? x[(size_t)i * ld + k] : x[(size_t)k * ld + i];
}

// C = A·B in float64 from float matrices in the tensors' stored layouts.
static void ref_gemm(double *C, const float *a, const Fp8Tensor *A, const float *b,
                     const Fp8Tensor *B, int M, int N, int K) {
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            double s = 0;
            for (int k = 0; k < K; k++)
                s += at(a, A->cols, A->k_along_cols, m, k) * at(b, B->cols, B->k_along_cols, n, k);
            C[(size_t)m * N + n] = s;
        }
}

// DeepGEMM's acceptance measure: 1 - 2Σxy / Σ(x² + y²).
static double calc_diff(const float *x, const double *y, size_t n) {
    double xy = 0, sq = 0;
    for (size_t i = 0; i < n; i++) xy += x[i] * y[i], sq += (double)x[i] * x[i] + y[i] * y[i];
    return sq == 0 ? 0 : 1 - 2 * xy / sq;
}

typedef struct Case {
    int M, N, K;
    int layout; // 0 forward (X·Wᵀ), 1 dgrad (dY·W), 2 wgrad (dYᵀ·X)
} Case;

// Builds the two operands of a Linear GEMM of the given layout from random normals.
static void make_operands(Rng *r, const Case *c, float **a, float **b, Fp8Tensor *A, Fp8Tensor *B,
                          int pow2) {
    int M = c->M, N = c->N, K = c->K;
    *a = ds_malloc(sizeof(float) * M * K), *b = ds_malloc(sizeof(float) * N * K);
    fill_normal(r, *a, (size_t)M * K, 1.0f);
    fill_normal(r, *b, (size_t)N * K, 1.0f);
    if (c->layout == 0) { // X[M,K] 1×128, W[N,K] 128×128
        fp8_quantize(A, *a, M, K, 1, 1, FP8_E4M3, pow2);
        fp8_quantize(B, *b, N, K, 1, 128, FP8_E4M3, pow2);
    } else if (c->layout == 1) { // dY[M,K] 1×128, W[K,N] 128×128 quantised along its cols (in)
        fp8_quantize(A, *a, M, K, 1, 1, FP8_E4M3, pow2);
        Fp8Tensor w;
        fp8_quantize(&w, *b, K, N, 1, 128, FP8_E4M3, pow2);
        *B = fp8_tensor_kswap(&w);
    } else { // dY[K,M] and X[K,N], both 128×1 along rows
        fp8_quantize(A, *a, K, M, 0, 1, FP8_E4M3, pow2);
        fp8_quantize(B, *b, K, N, 0, 1, FP8_E4M3, pow2);
    }
}

static const Case CASES[] = {
    {1, 1, 1, 0},     {1, 17, 300, 0},   {5, 1, 77, 0},  {7, 9, 128, 0},
    {3, 130, 257, 0}, {33, 20, 1000, 0}, {4, 5, 100, 1}, {9, 1, 260, 1},
    {1, 6, 129, 1},   {6, 7, 300, 2},    {1, 3, 40, 2},  {130, 2, 513, 2},
};

// The promoted exact model (V3's settings) against float64: of the dequantised inputs (the GEMM's
// own error) and of the unquantised inputs (quantisation included). The GEMM's own error is far
// inside DeepGEMM's 1e-3 on every shape. With quantisation the measure is a statistic whose
// expectation for E4M3 operands is about 6e-4 (both inputs carry ~2.7% rms relative error), so it
// is asserted per shape where there are at least 64 outputs and over all shapes pooled; a shape
// with 3 outputs can exceed 1e-3 by chance. FP8_TEST_VERBOSE=1 prints every value.
static void gemm_promoted_vs_f64(T *t) {
    Rng r;
    Fp8GemmOpts o = fp8_gemm_defaults();
    o.exact = 1;
    double pool_xy = 0, pool_sq = 0;
    for (size_t ci = 0; ci < DS_ARRAY_LEN(CASES); ci++) {
        const Case *c = &CASES[ci];
        rng_derive(&r, 5, ci, 0);
        float *a, *b;
        Fp8Tensor A, B;
        make_operands(&r, c, &a, &b, &A, &B, 0);
        float *ad = ds_malloc(sizeof(float) * c->M * c->K),
              *bd = ds_malloc(sizeof(float) * c->N * c->K);
        fp8_dequantize(&A, ad);
        fp8_dequantize(&B, bd);
        size_t mn = (size_t)c->M * c->N;
        double *ref_q = ds_malloc(sizeof(double) * mn), *ref = ds_malloc(sizeof(double) * mn);
        ref_gemm(ref_q, ad, &A, bd, &B, c->M, c->N, c->K);
        ref_gemm(ref, a, &A, b, &B, c->M, c->N, c->K);
        float *C = ds_malloc(sizeof(float) * mn);
        fp8_gemm(C, c->N, &A, &B, 0.0f, &o, NULL);
        double dg = calc_diff(C, ref_q, mn), da = calc_diff(C, ref, mn);
        for (size_t i = 0; i < mn; i++)
            pool_xy += C[i] * ref[i], pool_sq += (double)C[i] * C[i] + ref[i] * ref[i];
        CHECKF(t, dg < 1e-6, "case %zu gemm-only diff %g", ci, dg);
        if (mn >= 64) CHECKF(t, da < 1e-3, "case %zu with quantisation diff %g", ci, da);
        if (c->K == 1) CHECK(t, C[0] == (float)ref_q[0]); // one exact product
        if (getenv("FP8_TEST_VERBOSE"))
            fprintf(stderr, "M=%d N=%d K=%d layout=%d: gemm only %.3g, with quantisation %.3g\n",
                    c->M, c->N, c->K, c->layout, dg, da);
        free(a), free(b), free(ad), free(bd), free(ref_q), free(ref), free(C);
        fp8_tensor_free(&A);
        fp8_tensor_free(&B);
    }
    double pooled = 1 - 2 * pool_xy / pool_sq;
    CHECKF(t, pooled < 1e-3, "pooled with quantisation %g", pooled);
    if (getenv("FP8_TEST_VERBOSE")) fprintf(stderr, "pooled with quantisation %.3g\n", pooled);
}

// With a 24-bit accumulator the exact model is FP32 accumulation (truncating): it matches the
// fast path within a few FP32 ulps of Σ|a||b|, on every layout, with and without pow2 scales.
static void fast_matches_exact_wide(T *t) {
    Rng r;
    Fp8GemmOpts ex = {.exact = 1, .acc_bits = 24, .mma_k = 32, .n_c = 128},
                fast = fp8_gemm_defaults();
    for (size_t ci = 0; ci < DS_ARRAY_LEN(CASES); ci++)
        for (int pow2 = 0; pow2 < 2; pow2++) {
            const Case *c = &CASES[ci];
            rng_derive(&r, 9, ci, pow2);
            float *a, *b;
            Fp8Tensor A, B;
            make_operands(&r, c, &a, &b, &A, &B, pow2);
            float *ad = ds_malloc(sizeof(float) * c->M * c->K),
                  *bd = ds_malloc(sizeof(float) * c->N * c->K);
            fp8_dequantize(&A, ad);
            fp8_dequantize(&B, bd);
            size_t mn = (size_t)c->M * c->N;
            float *C1 = ds_malloc(sizeof(float) * mn), *C2 = ds_malloc(sizeof(float) * mn);
            float *work = ds_malloc(sizeof(float) * fp8_gemm_work_floats(&A, &B));
            fp8_gemm(C1, c->N, &A, &B, 0.0f, &ex, NULL);
            fp8_gemm(C2, c->N, &A, &B, 0.0f, &fast, work);
            double worst = 0;
            for (int m = 0; m < c->M; m++)
                for (int n = 0; n < c->N; n++) {
                    double s = 0;
                    for (int k = 0; k < c->K; k++)
                        s += fabs(at(ad, A.cols, A.k_along_cols, m, k) *
                                  at(bd, B.cols, B.k_along_cols, n, k));
                    worst = fmax(worst, fabs((double)C1[m * c->N + n] - C2[m * c->N + n]) / s);
                }
            CHECKF(t, worst < 1e-6, "case %zu pow2 %d: %g", ci, pow2, worst);
            free(a), free(b), free(ad), free(bd), free(C1), free(C2), free(work);
            fp8_tensor_free(&A);
            fp8_tensor_free(&B);
        }
}

// E5M2 operands (alone or mixed with E4M3) go through both paths the same way.
static void e5m2_operands(T *t) {
    Rng r;
    rng_seed(&r, 21);
    int M = 5, N = 6, K = 300;
    float a[5 * 300], b[6 * 300], ad[5 * 300], bd[6 * 300];
    fill_normal(&r, a, DS_ARRAY_LEN(a), 1e-3f);
    fill_normal(&r, b, DS_ARRAY_LEN(b), 1e3f);
    for (int mix = 0; mix < 2; mix++) {
        Fp8Tensor A, B;
        fp8_quantize(&A, a, M, K, 1, 1, FP8_E5M2, 0);
        fp8_quantize(&B, b, N, K, 1, 128, mix ? FP8_E4M3 : FP8_E5M2, 0);
        fp8_dequantize(&A, ad);
        fp8_dequantize(&B, bd);
        float C1[30], C2[30];
        Fp8GemmOpts ex = {.exact = 1, .acc_bits = 24, .mma_k = 32, .n_c = 128},
                    fast = fp8_gemm_defaults();
        fp8_gemm(C1, N, &A, &B, 0.0f, &ex, NULL);
        fp8_gemm(C2, N, &A, &B, 0.0f, &fast, NULL);
        for (int m = 0; m < M; m++)
            for (int n = 0; n < N; n++) {
                double ref = 0, s = 0;
                for (int k = 0; k < K; k++) {
                    ref += (double)ad[m * K + k] * bd[n * K + k];
                    s += fabs((double)ad[m * K + k] * bd[n * K + k]);
                }
                CHECKF(t, fabs(C1[m * N + n] - ref) < 1e-6 * s, "mix %d exact %g vs %g", mix,
                       C1[m * N + n], ref);
                CHECKF(t, fabs(C2[m * N + n] - ref) < 1e-6 * s, "mix %d fast %g vs %g", mix,
                       C2[m * N + n], ref);
            }
        fp8_tensor_free(&A);
        fp8_tensor_free(&B);
    }
}

// Without promotion the 14-bit accumulator loses accuracy as K grows; promotion every 128 fixes
// it: K = 4096, 16×16 outputs, error relative to Σ|a||b|.
static void promotion_reduces_error(T *t) {
    Rng r;
    rng_seed(&r, 3);
    Case c = {16, 16, 4096, 0};
    float *a, *b;
    Fp8Tensor A, B;
    make_operands(&r, &c, &a, &b, &A, &B, 0);
    float *ad = ds_malloc(sizeof(float) * c.M * c.K), *bd = ds_malloc(sizeof(float) * c.N * c.K);
    fp8_dequantize(&A, ad);
    fp8_dequantize(&B, bd);
    double *ref = ds_malloc(sizeof(double) * c.M * c.N);
    ref_gemm(ref, ad, &A, bd, &B, c.M, c.N, c.K);
    float C0[256], C1[256];
    Fp8GemmOpts o = {.exact = 1, .acc_bits = 14, .mma_k = 32, .n_c = 0};
    fp8_gemm(C0, c.N, &A, &B, 0.0f, &o, NULL);
    o.n_c = 128;
    fp8_gemm(C1, c.N, &A, &B, 0.0f, &o, NULL);
    double e0 = 0, e1 = 0;
    for (int i = 0; i < c.M * c.N; i++) {
        double s = 0;
        for (int k = 0; k < c.K; k++)
            s += fabs((double)ad[(i / c.N) * c.K + k] * bd[(i % c.N) * c.K + k]);
        e0 = fmax(e0, fabs(C0[i] - ref[i]) / s), e1 = fmax(e1, fabs(C1[i] - ref[i]) / s);
    }
    CHECKF(t, e0 > 8 * e1, "no promotion %g vs promoted %g", e0, e1);
    CHECKF(t, e1 < 1e-4, "promoted %g", e1);
    free(a), free(b), free(ad), free(bd), free(ref);
    fp8_tensor_free(&A);
    fp8_tensor_free(&B);
}

// beta = 1 adds into C; a row stride wider than N leaves the padding alone; both paths.
static void beta_and_ldc(T *t) {
    Rng r;
    rng_seed(&r, 4);
    Case c = {3, 4, 200, 0};
    float *a, *b;
    Fp8Tensor A, B;
    make_operands(&r, &c, &a, &b, &A, &B, 1);
    for (int exact = 0; exact < 2; exact++) {
        Fp8GemmOpts o = fp8_gemm_defaults();
        o.exact = exact;
        float C0[12], C[3 * 6];
        fp8_gemm(C0, 4, &A, &B, 0.0f, &o, NULL);
        for (int i = 0; i < 18; i++) C[i] = 100.0f + i;
        fp8_gemm(C, 6, &A, &B, 1.0f, &o, NULL);
        for (int m = 0; m < 3; m++) {
            for (int n = 0; n < 4; n++)
                CHECK_CLOSE(t, C[m * 6 + n], C0[m * 4 + n] + 100.0f + m * 6 + n, 1e-5);
            CHECK(t, C[m * 6 + 4] == 100.0f + m * 6 + 4 && C[m * 6 + 5] == 100.0f + m * 6 + 5);
        }
    }
    free(a), free(b);
    fp8_tensor_free(&A);
    fp8_tensor_free(&B);
}

UNIT_MAIN(CASE(codes_round_trip), CASE(known_values), CASE(matches_reference_encoder),
          CASE(ties_to_even_everywhere), CASE(subnormals_and_zero), CASE(saturation_and_specials),
          CASE(scale_rules), CASE(partial_groups), CASE(matches_naive_quantizer),
          CASE(quantize_error_bound), CASE(accumulator_truncation), CASE(gemm_promoted_vs_f64),
          CASE(fast_matches_exact_wide), CASE(e5m2_operands), CASE(promotion_reduces_error),
          CASE(beta_and_ldc))
