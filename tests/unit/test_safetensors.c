// test_safetensors.c — bf16/f16 conversions and the safetensors reader and writer.
#include <float.h>
#include <stdint.h>

#include "math/fp8.h"
#include "math/half.h"
#include "core/rng.h"
#include "checkpoint/safetensors.h"
#include "unit.h"

// ---------------------------------------------------------------------------------------------
// Half precision

static int f16_is_nan(uint16_t h) { return (h & 0x7c00) == 0x7c00 && (h & 0x3ff) != 0; }
static int bf16_is_nan(uint16_t h) { return (h & 0x7f80) == 0x7f80 && (h & 0x7f) != 0; }

static void half_exhaustive(T *t) {
    int bad_f16 = 0, bad_bf16 = 0, bad_nan = 0, bad_val = 0;
    for (uint32_t c = 0; c < 65536; c++) {
        uint16_t h = (uint16_t)c;
        float f = f16_to_f32(h), b = bf16_to_f32(h);
        if (f16_is_nan(h)) bad_nan += !isnan(f) || !f16_is_nan(f32_to_f16(f));
        else bad_f16 += f32_to_f16(f) != h;
        if (bf16_is_nan(h)) bad_nan += !isnan(b) || !bf16_is_nan(f32_to_bf16(b));
        else bad_bf16 += f32_to_bf16(b) != h;
        // f16 decoding against its definition: (-1)^s 2^(e-15) (1 + m/1024), subnormals 2^-14 m/1024.
        int e = (h >> 10) & 31, m = h & 1023;
        double want = e == 0 ? ldexp(m / 1024.0, -14) : ldexp(1 + m / 1024.0, e - 15);
        if (h & 0x8000) want = -want;
        if (e != 31) bad_val += (double)f != want || !signbit(f) != !signbit(want);
        else if (m == 0) bad_val += !isinf(f) || (f < 0) != ((h & 0x8000) != 0);
    }
    CHECKF(t, bad_f16 == 0, "%d f16 codes do not round trip", bad_f16);
    CHECKF(t, bad_bf16 == 0, "%d bf16 codes do not round trip", bad_bf16);
    CHECKF(t, bad_nan == 0, "%d NaN codes lost their NaN-ness", bad_nan);
    CHECKF(t, bad_val == 0, "%d f16 codes decode to the wrong value", bad_val);
}

static float bits(uint32_t x) { return half_bits_f32(x); }

static void half_rounding_edges(T *t) {
    // f16: ties go to the even neighbour, overflow goes to inf.
    CHECK(t, f32_to_f16(65504.0f) == 0x7bff);
    CHECK(t, f32_to_f16(65519.99f) == 0x7bff);
    CHECK(t, f32_to_f16(65520.0f) == 0x7c00);
    CHECK(t, f32_to_f16(1e10f) == 0x7c00 && f32_to_f16(-1e10f) == 0xfc00);
    CHECK(t, f32_to_f16(FLT_MAX) == 0x7c00);
    CHECK(t, f32_to_f16(INFINITY) == 0x7c00 && f32_to_f16(-INFINITY) == 0xfc00);
    CHECK(t, f32_to_f16(1.0f + 0x1p-11f) == 0x3c00);        // tie, 1.0 is even
    CHECK(t, f32_to_f16(1.0f + 3 * 0x1p-11f) == 0x3c02);    // tie, rounds up to even
    CHECK(t, f32_to_f16(1.0f + 0x1p-11f + 0x1p-20f) == 0x3c01); // just above the tie
    CHECK(t, f32_to_f16(2047.0f / 1024.0f + 0x1p-11f) == 0x4000); // carry into the exponent
    CHECK(t, f32_to_f16(0x1p-24f) == 0x0001);               // smallest subnormal
    CHECK(t, f32_to_f16(0x1p-25f) == 0x0000);               // tie with 0: even
    CHECK(t, f32_to_f16(0x1p-25f + 0x1p-40f) == 0x0001);
    CHECK(t, f32_to_f16(3 * 0x1p-25f) == 0x0002);           // tie between 1 and 2 units
    CHECK(t, f32_to_f16(1023.5f * 0x1p-24f) == 0x0400);     // subnormal rounds up to normal
    CHECK(t, f32_to_f16(0x1p-14f) == 0x0400);
    CHECK(t, f32_to_f16(1e-30f) == 0 && f32_to_f16(-1e-30f) == 0x8000);
    CHECK(t, f32_to_f16(bits(1)) == 0);                     // f32 subnormal
    CHECK(t, f32_to_f16(-0.0f) == 0x8000);
    CHECK(t, f16_is_nan(f32_to_f16(NAN)) && f16_is_nan(f32_to_f16(bits(0x7f800001))));
    CHECK(t, f32_to_f16(bits(0xffc00000)) & 0x8000);        // NaN keeps its sign
    // bf16
    CHECK(t, f32_to_bf16(1.0f) == 0x3f80);
    CHECK(t, f32_to_bf16(1.0f + 0x1p-8f) == 0x3f80);        // tie, even
    CHECK(t, f32_to_bf16(1.0f + 3 * 0x1p-8f) == 0x3f82);    // tie, up to even
    CHECK(t, f32_to_bf16(1.0f + 0x1p-8f + 0x1p-20f) == 0x3f81);
    CHECK(t, f32_to_bf16(bits(0x7f7f7fff)) == 0x7f7f);
    CHECK(t, f32_to_bf16(bits(0x7f7f8000)) == 0x7f80);      // tie at the top: odd, rounds to inf
    CHECK(t, f32_to_bf16(FLT_MAX) == 0x7f80 && f32_to_bf16(-FLT_MAX) == 0xff80);
    CHECK(t, f32_to_bf16(INFINITY) == 0x7f80);
    CHECK(t, f32_to_bf16(bits(0x00008000)) == 0x0000);      // subnormal tie, even
    CHECK(t, f32_to_bf16(bits(0x00018000)) == 0x0002);
    CHECK(t, f32_to_bf16(-0.0f) == 0x8000);
    CHECK(t, bf16_is_nan(f32_to_bf16(bits(0x7f800001))));   // low payload only: still NaN
    CHECK(t, bf16_is_nan(f32_to_bf16(NAN)));
}

// Nearest-even property over random and near-boundary f32 values: no neighbour is closer, and a
// tie picks the even code. With gcc, _Float16 is a second, independent reference.
static void half_rounding_random(T *t) {
    Rng r;
    rng_seed(&r, 7);
    int bad16 = 0, bad_bf = 0, bad_ref = 0;
    for (int i = 0; i < 2000000; i++) {
        // Exponents spread over the f16 range and a little beyond.
        float v = ldexpf((float)rng_uniform(&r) + 0.5f, (int)rng_below(&r, 48) - 30);
        if (rng_u64(&r) & 1) v = -v;
        // Odd i: values on f16's mantissa grid, half of them moved exactly halfway to the next.
        if (i & 1) v = bits(half_f32_bits(v) & 0xffffe000u);
        if (i % 4 == 1) v = bits(half_f32_bits(v) | 0x1000);
        uint16_t h = f32_to_f16(v);
        double dv = v, d0 = fabs(dv - f16_to_f32(h));
        if ((h & 0x7fff) < 0x7c00) {
            uint16_t up = (uint16_t)(h + 1), dn = (uint16_t)(h - 1);
            double du = (up & 0x7fff) <= 0x7c00 ? fabs(dv - f16_to_f32(up)) : INFINITY;
            double dd = (h & 0x7fff) ? fabs(dv - f16_to_f32(dn)) : INFINITY;
            if ((h & 0x7fff) == 0) dd = fabs(dv + f16_to_f32(h)); // -0 and +0 are the same point
            bad16 += d0 > du || d0 > dd || ((d0 == du || d0 == dd) && (h & 1));
        } else {
            bad16 += fabs(dv) < 65520.0;
        }
        uint16_t b = f32_to_bf16(v);
        double e0 = fabs(dv - bf16_to_f32(b));
        double eu = fabs(dv - bf16_to_f32((uint16_t)(b + 1)));
        double ed = fabs(dv - bf16_to_f32((uint16_t)(b - 1)));
        if ((b & 0x7fff) != 0) bad_bf += e0 > eu || e0 > ed || ((e0 == eu || e0 == ed) && (b & 1));
#ifdef __FLT16_MAX__
        _Float16 ref = (_Float16)v;
        uint16_t rb;
        memcpy(&rb, &ref, 2);
        bad_ref += rb != h;
#endif
    }
    CHECKF(t, bad16 == 0, "%d f16 results not nearest-even", bad16);
    CHECKF(t, bad_bf == 0, "%d bf16 results not nearest-even", bad_bf);
    CHECKF(t, bad_ref == 0, "%d f16 results differ from the compiler's _Float16", bad_ref);
}

// ---------------------------------------------------------------------------------------------
// Safetensors

static void st_roundtrip(T *t) {
    float f32[6] = {1.5f, -2.25f, 0.0f, 1e-3f, 65504.0f, -0.0f};
    double f64[3] = {0.1, -1e300, 3.0};
    uint16_t f16[4], bf16[4];
    float src16[4] = {1.0f, -0.5f, 3.140625f, 6.1035156e-05f}; // exact in both f16 and bf16
    for (int i = 0; i < 4; i++) f16[i] = f32_to_f16(src16[i]), bf16[i] = f32_to_bf16(src16[i]);
    int32_t i32[2] = {-7, 1 << 30};
    uint8_t e4m3[3] = {0x38, 0x00, 0xff}, e5m2[2] = {0x3c, 0x7b};
    int64_t s23[] = {2, 3}, s4[] = {4}, s3[] = {3}, s2[] = {2}, s0[] = {0, 5};
    StWriter *w = st_writer_new();
    st_writer_meta(w, "format", "pt");
    st_writer_add(w, "w.f32", ST_F32, 2, s23, f32);
    st_writer_add(w, "w.f16", ST_F16, 1, s4, f16);
    st_writer_add(w, "w.bf16", ST_BF16, 2, (int64_t[]){2, 2}, bf16);
    st_writer_add(w, "w.f64", ST_F64, 1, s3, f64);
    st_writer_add(w, "i32", ST_I32, 1, s2, i32);
    st_writer_add(w, "e4m3", ST_F8_E4M3, 1, s3, e4m3);
    st_writer_add(w, "e5m2", ST_F8_E5M2, 1, s2, e5m2);
    st_writer_add(w, "scalar", ST_F32, 0, NULL, &f32[0]);
    st_writer_add(w, "empty", ST_BF16, 2, s0, NULL);
    DsBuf b = {0};
    st_writer_serialize(w, &b);
    st_writer_free(w);
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = hl << 8 | (uint8_t)b.data[i];
    CHECK(t, hl % 8 == 0 && b.data[8] == '{');
    Safetensors st;
    DsErr e;
    CHECK(t, st_parse(&st, b.data, b.len, "rt.safetensors", &e) == DS_OK);
    CHECK(t, st.n == 9);
    json_t *fmt = st.metadata ? json_object_get(st.metadata, "format") : NULL;
    CHECK(t, fmt && strcmp(json_string_value(fmt), "pt") == 0);
    // Tensors come back in file order, which is the order added.
    CHECK(t, strcmp(st.t[0].name, "w.f32") == 0 && strcmp(st.t[7].name, "scalar") == 0);
    const StTensor *x = st_find(&st, "w.f32");
    float out[6];
    CHECK(t, x && x->dtype == ST_F32 && x->ndim == 2 && x->shape[0] == 2 && x->shape[1] == 3);
    CHECK(t, x && st_numel(x) == 6 && st_read_f32(&st, x, out, 6, &e) == DS_OK);
    CHECK(t, memcmp(out, f32, sizeof f32) == 0);
    x = st_find(&st, "w.f16");
    CHECK(t, x && x->dtype == ST_F16 && st_read_f32(&st, x, out, 4, &e) == DS_OK);
    CHECK(t, memcmp(out, src16, sizeof src16) == 0);
    x = st_find(&st, "w.bf16");
    CHECK(t, x && x->dtype == ST_BF16 && x->ndim == 2 && st_read_f32(&st, x, out, 4, &e) == DS_OK);
    CHECK(t, memcmp(out, src16, sizeof src16) == 0);
    x = st_find(&st, "w.f64");
    CHECK(t, x && st_read_f32(&st, x, out, 3, &e) == DS_OK);
    CHECK(t, out[0] == 0.1f && isinf(out[1]) && out[1] < 0 && out[2] == 3.0f);
    x = st_find(&st, "i32");
    CHECK(t, x && memcmp(st.data + x->begin, i32, sizeof i32) == 0);
    CHECK(t, x && st_read_f32(&st, x, out, 2, &e) == DS_ERR && strstr(e.msg, "not a float"));
    x = st_find(&st, "e4m3");
    CHECK(t, x && x->dtype == ST_F8_E4M3 && memcmp(st.data + x->begin, e4m3, 3) == 0);
    x = st_find(&st, "e5m2");
    CHECK(t, x && x->dtype == ST_F8_E5M2 && memcmp(st.data + x->begin, e5m2, 2) == 0);
    x = st_find(&st, "scalar");
    CHECK(t, x && x->ndim == 0 && st_numel(x) == 1 && st_read_f32(&st, x, out, 1, &e) == DS_OK &&
                 out[0] == 1.5f);
    CHECK(t, x && st_read_f32(&st, x, out, 2, &e) == DS_ERR);
    x = st_find(&st, "empty");
    CHECK(t, x && st_numel(x) == 0 && x->begin == x->end);
    CHECK(t, st_find(&st, "nope") == NULL);
    CHECK(t, strcmp(st_dtype_name(ST_BF16), "BF16") == 0 && st_dtype_size(ST_F64) == 8);
    st_free(&st);
    // A header that is not 8-aligned (as other writers may produce) is accepted too.
    const char *h = "{\"a\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[0,3]}}";
    DsBuf c = {0};
    uint8_t len[8] = {(uint8_t)strlen(h)};
    dsbuf_append(&c, len, 8);
    dsbuf_append(&c, h, strlen(h));
    dsbuf_append(&c, "xyz", 3);
    CHECKF(t, st_parse(&st, c.data, c.len, "odd", &e) == DS_OK, "%s", e.msg);
    CHECK(t, st.n == 1 && st.metadata == NULL && memcmp(st.data, "xyz", 3) == 0);
    st_free(&st);
    dsbuf_free(&c);
    dsbuf_free(&b);
}

// Builds a file image: 8-byte length (hlen, or the real header length when hlen < 0), the header,
// then ndata bytes of data.
static DsBuf image(const char *header, long long hlen, size_t ndata) {
    DsBuf b = {0};
    uint64_t n = hlen < 0 ? strlen(header) : (uint64_t)hlen;
    uint8_t len[8];
    for (int i = 0; i < 8; i++) len[i] = (uint8_t)(n >> (8 * i));
    dsbuf_append(&b, len, 8);
    dsbuf_append(&b, header, strlen(header));
    for (size_t i = 0; i < ndata; i++) dsbuf_append(&b, "\x11", 1);
    return b;
}

static void expect_refused(T *t, DsBuf b, size_t len, const char *what) {
    Safetensors st;
    DsErr e = {{0}};
    int rc = st_parse(&st, b.data, len, "bad.safetensors", &e);
    CHECKF(t, rc == DS_ERR, "accepted; expected '%s'", what);
    if (rc == DS_OK) st_free(&st);
    CHECKF(t, strstr(e.msg, "bad.safetensors: ") == e.msg && strstr(e.msg, what) != NULL,
           "expected '%s' in: %s", what, e.msg);
    dsbuf_free(&b);
}

#define TENSOR(name, dt, shape, b, e)                                                              \
    "\"" name "\":{\"dtype\":\"" dt "\",\"shape\":" shape ",\"data_offsets\":[" #b "," #e "]}"

static void st_rejects_bad_headers(T *t) {
    DsBuf b = image("{}", -1, 0);
    expect_refused(t, b, 5, "too short for the 8-byte header length");
    expect_refused(t, image("{}", 1LL << 40, 0), 10, "exceeds the");
    expect_refused(t, image("{}", 1000, 0), 10, "runs past the end");
    expect_refused(t, image("[1, 2]", -1, 0), 14, "not a JSON object");
    expect_refused(t, image("{\"a\":", -1, 0), 13, "not valid JSON");
    const char *h;
    h = "{" TENSOR("a", "F33", "[2]", 0, 8) "}";
    expect_refused(t, image(h, -1, 8), 8 + strlen(h) + 8, "tensor 'a': unknown dtype 'F33'");
    h = "{" TENSOR("a", "F32", "[2]", 0, 8) "," TENSOR("b", "F32", "[2]", 4, 12) "}";
    expect_refused(t, image(h, -1, 12), 8 + strlen(h) + 12, "tensor 'b' [4, 12] overlaps tensor 'a'");
    h = "{" TENSOR("a", "F32", "[1]", 0, 4) "," TENSOR("b", "F32", "[1]", 8, 12) "}";
    expect_refused(t, image(h, -1, 12), 8 + strlen(h) + 12, "gap in the data: bytes [4, 8)");
    h = "{" TENSOR("a", "F32", "[3]", 0, 8) "}";
    expect_refused(t, image(h, -1, 8), 8 + strlen(h) + 8,
                   "tensor 'a': shape needs 12 bytes of F32 but data_offsets span 8");
    h = "{" TENSOR("a", "U8", "[400]", 0, 400) "}";
    expect_refused(t, image(h, -1, 16), 8 + strlen(h) + 16, "[0, 400] beyond the 16 data bytes");
    h = "{" TENSOR("a", "U8", "[4]", 0, 4) "}";
    expect_refused(t, image(h, -1, 6), 8 + strlen(h) + 6, "2 data bytes after the last tensor");
    h = "{" TENSOR("a", "U8", "[1,1,1,1,1,1,1,1,1]", 0, 1) "}";
    expect_refused(t, image(h, -1, 1), 8 + strlen(h) + 1, "9 dimensions, at most 8");
    h = "{" TENSOR("a", "U8", "[-1]", 0, 0) "}";
    expect_refused(t, image(h, -1, 0), 8 + strlen(h), "shape[0] is not a non-negative integer");
    h = "{" TENSOR("a", "F32", "[4611686018427387904,4611686018427387904]", 0, 0) "}";
    expect_refused(t, image(h, -1, 0), 8 + strlen(h), "overflows");
    h = "{" TENSOR("a", "F32", "[4611686018427387904]", 0, 0) "}"; // x4 bytes overflows
    expect_refused(t, image(h, -1, 0), 8 + strlen(h), "overflows");
    h = "{" TENSOR("a", "U8", "[0]", 4, 0) "}";
    expect_refused(t, image(h, -1, 4), 8 + strlen(h) + 4, "end before they begin");
    h = "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0]}}";
    expect_refused(t, image(h, -1, 1), 8 + strlen(h) + 1, "data_offsets must be [begin, end]");
    h = "{\"a\":[1]}";
    expect_refused(t, image(h, -1, 0), 8 + strlen(h), "tensor 'a': expected an object");
    h = "{\"__metadata__\":{\"k\":1}}";
    expect_refused(t, image(h, -1, 0), 8 + strlen(h), "__metadata__ value 'k' is not a string");
    h = "{" TENSOR("a", "U8", "[1]", 0, 1) "," TENSOR("a", "U8", "[1]", 1, 2) "}";
    expect_refused(t, image(h, -1, 2), 8 + strlen(h) + 2, "duplicate");
}

// Random byte flips and truncations of a valid file: the parser either refuses with a message or
// returns tensors that lie inside the buffer (run under the sanitizers this also finds bad reads).
static void st_mutations(T *t) {
    float a[12] = {0};
    uint16_t b[5] = {0};
    int64_t s34[] = {3, 4}, s5[] = {5};
    StWriter *w = st_writer_new();
    st_writer_meta(w, "k", "v");
    st_writer_add(w, "a", ST_F32, 2, s34, a);
    st_writer_add(w, "b", ST_BF16, 1, s5, b);
    DsBuf good = {0};
    st_writer_serialize(w, &good);
    st_writer_free(w);
    Rng r;
    rng_seed(&r, 3);
    int accepted = 0, bad = 0, silent = 0;
    uint8_t *img = malloc(good.len);
    for (int it = 0; it < 20000; it++) {
        memcpy(img, good.data, good.len);
        size_t len = good.len;
        int flips = 1 + (int)rng_below(&r, 3);
        for (int k = 0; k < flips; k++) img[rng_below(&r, good.len)] = (uint8_t)rng_u64(&r);
        if (it % 5 == 0) len = (size_t)rng_below(&r, good.len + 1);
        Safetensors st;
        DsErr e = {{0}};
        if (st_parse(&st, img, len, "m", &e) == DS_OK) {
            accepted++;
            for (int i = 0; i < st.n; i++) {
                const StTensor *x = &st.t[i];
                bad += x->end > st.data_len || st.data + st.data_len > img + len ||
                       st_numel(x) * st_dtype_size(x->dtype) != x->end - x->begin;
            }
            st_free(&st);
        } else {
            silent += strncmp(e.msg, "m: ", 3) != 0;
        }
    }
    CHECKF(t, bad == 0, "%d accepted files with tensors outside the data", bad);
    CHECKF(t, silent == 0, "%d refusals without a message naming the file", silent);
    CHECK(t, accepted > 0 && accepted < 20000); // flips in the data region are harmless
    free(img);
    dsbuf_free(&good);
}

// FP8 weights with block scales: a 130x200 matrix in 128x128 blocks (partial last blocks) against
// the definition w[i][j] = fp8(c[i][j]) * s[i/128][j/128], element by element.
static void st_fp8_blocks(T *t) {
    enum { R = 130, C = 200 };
    uint8_t *codes = malloc(R * C);
    float s[2 * 2] = {0.5f, 0.0625f, 3.0f, 1.0f / 448}, *out = malloc(sizeof(float) * R * C);
    Rng r;
    rng_seed(&r, 5);
    for (int i = 0; i < R * C; i++) {
        codes[i] = (uint8_t)rng_below(&r, 256);
        if ((codes[i] & 0x7f) == 0x7f) codes[i] ^= 1; // no NaN codes
    }
    StWriter *w = st_writer_new();
    int64_t shape[2] = {R, C}, sshape[2] = {2, 2}, bad_shape[2] = {1, 2};
    st_writer_add(w, "w", ST_F8_E4M3, 2, shape, codes);
    st_writer_add(w, "w_scale_inv", ST_F32, 2, sshape, s);
    st_writer_add(w, "short_scale_inv", ST_F32, 2, bad_shape, s);
    DsBuf b = {0};
    st_writer_serialize(w, &b);
    st_writer_free(w);
    Safetensors st;
    DsErr e = {{0}};
    CHECK(t, st_parse(&st, b.data, b.len, "f", &e) == DS_OK);
    const StTensor *x = st_find(&st, "w");
    CHECK(t, st_read_f32_fp8_blocks(&st, x, &st, st_find(&st, "w_scale_inv"), 128, 128, out, R * C, &e) == DS_OK);
    int wrong = 0;
    for (int i = 0; i < R; i++)
        for (int j = 0; j < C; j++)
            wrong += out[i * C + j] != fp8_to_float(codes[i * C + j], FP8_E4M3) * s[(i / 128) * 2 + j / 128];
    CHECKF(t, wrong == 0, "%d of %d dequantised values differ from fp8 * scale_inv", wrong, R * C);
    CHECK(t, st_read_f32_fp8_blocks(&st, x, &st, st_find(&st, "short_scale_inv"), 128, 128, out, R * C, &e) == DS_ERR);
    CHECKF(t, strstr(e.msg, "needs 'short_scale_inv' of shape [2, 2]") != NULL, "message: %s", e.msg);
    // unscaled FP8 reads decode the codes; NaN codes show up in st_first_nonfinite
    uint8_t *stored = (uint8_t *)b.data + (st.data - (const uint8_t *)b.data) + x->begin;
    stored[R * C - 3] = 0xff;
    CHECK(t, st_read_f32(&st, x, out, R * C, &e) == DS_OK);
    CHECK(t, st_first_nonfinite(out, R * C) == R * C - 3);
    stored[R * C - 3] = 0x00;
    CHECK(t, st_read_f32(&st, x, out, R * C, &e) == DS_OK);
    CHECK(t, st_first_nonfinite(out, R * C) == -1 && out[0] == fp8_to_float(codes[0], FP8_E4M3));
    out[7] = INFINITY;
    CHECK(t, st_first_nonfinite(out, R * C) == 7);
    st_free(&st);
    dsbuf_free(&b);
    free(codes);
    free(out);
}

UNIT_MAIN(CASE(half_exhaustive), CASE(half_rounding_edges), CASE(half_rounding_random),
          CASE(st_roundtrip), CASE(st_rejects_bad_headers), CASE(st_mutations), CASE(st_fp8_blocks))
