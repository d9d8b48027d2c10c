// half.h — bf16 and f16 (IEEE binary16) to and from f32: round to nearest even, overflow to inf,
// NaN stays NaN (sign and top payload bits kept, made quiet), subnormals exact.
#ifndef DS_HALF_H
#define DS_HALF_H

#include <stdint.h>
#include <string.h>

static inline uint32_t half_f32_bits(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    return x;
}

static inline float half_bits_f32(uint32_t x) {
    float f;
    memcpy(&f, &x, 4);
    return f;
}

// bf16 is the top half of an f32, so widening is a shift.
static inline float bf16_to_f32(uint16_t h) { return half_bits_f32((uint32_t)h << 16); }

static inline uint16_t f32_to_bf16(float f) {
    uint32_t x = half_f32_bits(f);
    if ((x & 0x7fffffff) > 0x7f800000) return (uint16_t)((x >> 16) | 0x0040); // quiet NaN
    // Adding 0x7fff plus the lowest kept bit rounds ties to even; a carry into the exponent is the
    // correct rounding, up to inf.
    x += 0x7fff + ((x >> 16) & 1);
    return (uint16_t)(x >> 16);
}

static inline float f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
    if (exp == 0) { // zero or subnormal: mant * 2^-24, exact in f32
        float v = (float)mant * 0x1p-24f;
        return half_bits_f32(half_f32_bits(v) | sign);
    }
    if (exp == 31) return half_bits_f32(sign | 0x7f800000 | mant << 13); // inf, NaN
    return half_bits_f32(sign | (exp + 112) << 23 | mant << 13);
}

static inline uint16_t f32_to_f16(float f) {
    uint32_t x = half_f32_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    uint32_t ax = x & 0x7fffffff;
    if (ax > 0x7f800000) return (uint16_t)(sign | 0x7e00 | ((ax >> 13) & 0x3ff)); // quiet NaN
    // 65520 is halfway between the largest f16 (65504, odd mantissa) and 65536: it rounds to inf.
    if (ax >= 0x477ff000) return sign | 0x7c00;
    if (ax >= 0x38800000) { // normal f16: rebias the exponent, round away 13 mantissa bits
        uint32_t r = ax - 0x38000000;
        r += 0xfff + ((r >> 13) & 1);
        return (uint16_t)(sign | (r >> 13));
    }
    // Subnormal f16 (or zero): the value in units of 2^-24 is m >> shift, rounded to even.
    uint32_t e = ax >> 23;
    if (e < 102) return sign; // below half the smallest subnormal
    uint32_t m = (ax & 0x7fffff) | 0x800000, shift = 126 - e;
    uint32_t h = m >> shift, rem = m & ((1u << shift) - 1), halfway = 1u << (shift - 1);
    if (rem > halfway || (rem == halfway && (h & 1))) h++;
    return (uint16_t)(sign | h);
}

#endif
