#!/usr/bin/env bash
# gpu.sh — the device check, run on a GPU machine that has none of ds's Debian libraries:
#   here:   make gpu-bundle          (binaries + their shared libraries -> gpu-bundle.tar.xz)
#   there:  bash bench/gpu.sh OUT    (carrying gpu-bundle.tar.xz; writes OUT/gpu-report.md)
# Stages, each with its own time limit so one hang cannot eat the device time:
#   1. every CUDA op against the CPU reference (tests/cuda/test_cuda: fp32 / bf16 tolerances and
#      DeepGEMM's criterion for the FP8 GEMM);
#   2. the measured ceilings: cuBLAS bf16 GEMM TFLOP/s and copy bandwidth (bench/cuda/gemm_ceiling);
#   3. the CPU suite's numerics on that machine's cores (tests/unit programs), as a sanity check
#      that the carried binaries run there at all.
# Training and decoding throughput on the GPU come once the model driver runs on the CUDA backend.
set -u
out="${1:-${OUT:-out/gpu}}"
mkdir -p "$out"
here="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
tar -C "$work" -xJf "$here/gpu-bundle.tar.xz" || { echo "gpu.sh: no gpu-bundle.tar.xz (make gpu-bundle)" >&2; exit 1; }
B="$work/gpu-bundle"
export LD_LIBRARY_PATH="$B/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
report="$out/gpu-report.md"
{
    echo "# GPU device check"
    echo
    echo "- date: $(date -u +%Y-%m-%dT%H:%MZ)"
    echo "- machine: $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | head -1), $(nproc) CPU cores"
    echo "- ds: $(cd "$here" && git describe --always --dirty 2>/dev/null || echo unknown)"
    echo
    echo "## 1. CUDA ops against the CPU reference"
    echo '```'
    timeout 180 "$B/bin/tests/test_cuda" 2>&1; echo "exit $?"
    echo '```'
    echo
    echo "## 2. Ceilings (cuBLAS bf16 GEMM, device copy)"
    echo '```'
    timeout 120 "$B/bin/bench/cuda_gemm_ceiling" 2>&1; echo "exit $?"
    echo '```'
    echo
    echo "## 3. CPU unit programs on this machine"
    echo '```'
    for t in common model precision; do
        timeout 120 "$B/bin/tests/test_$t" > "$out/unit-$t.log" 2>&1; echo "test_$t: exit $?"
    done
    echo '```'
} > "$report" 2>&1
cat "$report"
