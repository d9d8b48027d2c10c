#!/usr/bin/env bats
# The CUDA backend against the CPU reference. Built whenever nvcc is found; the checks need a GPU
# and report a skip without one (or when the build left CUDA out).
load helpers

cuda_test() {
    [ -x "$DS_BIN/tests/test_cuda" ] || skip "built without CUDA (no nvcc, CUDA=0 or a sanitizer build)"
    run "$DS_BIN/tests/test_cuda" "$@"
    [ "$status" -ne 77 ] || skip "$output"
    echo "$output"
    [ "$status" -eq 0 ]
}

@test "cuda: fp32 and bf16 linear layers (cuBLAS) forward and backward" { cuda_test linear_f32_bf16; }
@test "cuda: FP8 GEMM with 1x128 / 128x128 block scales (cuBLASLt) against the CPU emulation" { cuda_test fp8_gemm; }
@test "cuda: RMSNorm, SwiGLU and embedding forward and backward" { cuda_test norm_swiglu_embedding; }
@test "cuda: RoPE (interleaved and rotate-half) and log-probabilities" { cuda_test rope_logprob; }
@test "cuda: causal attention with packed documents and MLA head sizes; AdamW" { cuda_test attention_adamw; }
