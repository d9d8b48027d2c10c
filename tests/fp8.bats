#!/usr/bin/env bats
# FP8 numerics: E4M3/E5M2 conversion, fine-grained scaled quantisation, the FP8 GEMM (Hopper
# accumulation model with FP32 promotion, and the sgemm fast path), and the accumulation study.
load helpers

@test "fp8: every code of E4M3 and E5M2 round-trips; NaN codes stay NaN" { unit fp8 codes_round_trip; }
@test "fp8: decoded values of landmark codes (max, min normal, min subnormal, inf)" { unit fp8 known_values; }
@test "fp8: encoder equals a nearest-value search on 2^19 spread floats and near every code" { unit fp8 matches_reference_encoder; }
@test "fp8: round to nearest even at every midpoint of both formats" { unit fp8 ties_to_even_everywhere; }
@test "fp8: subnormals, underflow to signed zero, negative zero" { unit fp8 subnormals_and_zero; }
@test "fp8: finite overflow saturates to max; inf and NaN per format" { unit fp8 saturation_and_specials; }
@test "fp8: scale = amax/448 with the 1e-4 floor; power-of-two scales round up" { unit fp8 scale_rules; }
@test "fp8: 1x128, 128x1 and 128x128 groups with partial last groups" { unit fp8 partial_groups; }
@test "fp8: quantiser equals a naive one on wide and partial shapes, every layout" { unit fp8 matches_naive_quantizer; }
@test "fp8: dequantised values within half a step, every layout and format" { unit fp8 quantize_error_bound; }
@test "fp8 gemm: accumulator truncation and promotion on hand-built products" { unit fp8 accumulator_truncation; }
@test "fp8 gemm: promoted model passes DeepGEMM's criterion vs float64 on awkward shapes" { unit fp8 gemm_promoted_vs_f64; }
@test "fp8 gemm: fast path equals the exact model with a 24-bit accumulator" { unit fp8 fast_matches_exact_wide; }
@test "fp8 gemm: E5M2 and mixed E5M2/E4M3 operands, both paths" { unit fp8 e5m2_operands; }
@test "fp8 gemm: promotion every 128 cuts the 14-bit accumulator's error at K=4096" { unit fp8 promotion_reduces_error; }
@test "fp8 gemm: beta=1 accumulates, row stride wider than N is respected" { unit fp8 beta_and_ldc; }

@test "fp8_accum: --help, --version, usage errors exit 2" {
    run "$DS_BIN/bench/fp8_accum" --help
    assert_success
    assert_output --partial "Usage: fp8_accum"
    run "$DS_BIN/bench/fp8_accum" --version
    assert_success
    assert_output --partial "fp8_accum (ds)"
    run "$DS_BIN/bench/fp8_accum" --acc-bits 40
    assert_failure 2
    run "$DS_BIN/bench/fp8_accum" --kmin 1024 --kmax 256
    assert_failure 2
    assert_output --partial "larger than --kmax"
}

@test "fp8_accum: small study writes its tables; promotion lowers the error" {
    out="$BATS_TEST_TMPDIR/accum.md"
    run "$DS_BIN/bench/fp8_accum" --kmin 256 --kmax 1024 --m 8 --n 8 --seeds 1 -o "$out"
    assert_success
    [ -s "$out" ]
    grep -q '^| 1024 |' "$out"
    # First table: | K | max none | mean none | max N_C | mean N_C | max fast |
    read -r none prom fast < <(awk -F'|' '/^\| 1024 \|/ { print $3, $5, $7; exit }' "$out")
    awk -v a="$none" -v b="$prom" -v c="$fast" 'BEGIN { exit !(a > b && b > c && a < 0.01) }'
    # Missing output directory: exit 1, no file.
    run "$DS_BIN/bench/fp8_accum" --kmin 256 --kmax 256 --m 2 --n 2 --seeds 1 -o "$BATS_TEST_TMPDIR/no/such/dir/x.md"
    assert_failure 1
}
