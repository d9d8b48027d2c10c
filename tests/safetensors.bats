#!/usr/bin/env bats
# Half-precision conversions and the safetensors reader and writer.
load helpers

@test "f16/bf16: all 65536 codes round trip through f32, NaN stays NaN, f16 decodes exactly" { unit safetensors half_exhaustive; }
@test "f16/bf16: ties to even, overflow to inf, subnormals, NaN payloads" { unit safetensors half_rounding_edges; }
@test "f16/bf16: nearest-even on 2M random values (and equal to _Float16 under gcc)" { unit safetensors half_rounding_random; }
@test "safetensors: writer output parses, every float dtype round trips, metadata kept" { unit safetensors st_roundtrip; }
@test "safetensors: each kind of bad header is refused with a message saying what" { unit safetensors st_rejects_bad_headers; }
@test "safetensors: 20000 random flips and truncations never yield out-of-bounds tensors" { unit safetensors st_mutations; }
