#!/usr/bin/env bash
# fp8_train.sh — trains one MoE config from the same seed and data in fp32, bf16 and fp8 and
# writes results/fp8-training.md (loss gaps, ms/step per mode) and results/fp8-training.png.
# Usage: bench/fp8_train.sh   (environment, defaults in brackets: CONFIG [recipes/moe-15m.json],
# STEPS [300], SEQ [64], BATCH [8], LR [1e-3], WARMUP [STEPS/10], THREADS [2], SEED [1234],
# TIMING_ROUNDS [3], TIMING_STEPS [12], KEEP [a temp dir]: the folder of the metrics and timing
# files; a mode whose complete metrics are already there is not trained again (nor timed again
# when the timings are there), so the report can be rewritten from a kept run.
# Needs `make` first; BIN selects the build (default bin), DS_DATA the data (../shared/data).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
bin="$root/${BIN:-bin}"
data="${DS_DATA:-$root/../shared/data}"
config="${CONFIG:-recipes/moe-15m.json}"
steps="${STEPS:-300}" seq="${SEQ:-64}" batch="${BATCH:-8}" threads="${THREADS:-2}" seed="${SEED:-1234}"
lr="${LR:-1e-3}" warmup="${WARMUP:-$(( steps / 10 ))}"
[ -x "$bin/ds-pretrain" ] || { echo "fp8_train.sh: $bin/ds-pretrain missing; run make first" >&2; exit 1; }
[ -f "$data/tinyshakespeare/input.txt" ] || { echo "fp8_train.sh: $data/tinyshakespeare/input.txt missing" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
keep="${KEEP:-$work}"
mkdir -p "$keep"
out=results/fp8-training.md png=results/fp8-training.png

# How to read the tables; the numbers quoted are those of the committed run (default settings,
# and the lr 3e-3 run named in the text).
notes() {
    cat <<'NOTES'
## Reading the numbers

**What runs in FP8.** Every GEMM of every Linear layer (MLA q_a/q_b/kv_a/kv_b/o, dense and shared
FFNs, all routed experts, the MTP eh_proj) in forward, input gradient and weight gradient takes
E4M3 inputs with V3's scales: 1×128 tiles of activations and output gradients along K, 128×128
weight blocks, and for the weight gradient both operands in 128×1 groups along the tokens; the
product accumulates in FP32 (the fast path of `fp8_gemm`: dequantise, sgemm). Embedding, output
head, router, norms, attention core, loss, master weights, gradients and AdamW moments stay FP32.
BF16 rounds the same GEMM inputs to BF16 instead. The GEMM alone: calc_diff against float64 is
6.7e-4 for FP8 and 2.7e-6 for BF16 (`tests/unit/test_precision.c`, linear_gemms).

**The loss gap.** With lr 1e-3 (30 warm-up steps, then cosine to 1e-4) FP8 ends +0.12% above FP32
in the mean training loss of the last 30 steps and −0.02% in validation loss; against BF16, the
paper's baseline, +0.24% and +0.32%. The paper's bound (< 0.25%, FP8 vs BF16) is for far larger
models and runs. Here BF16 and FP32, whose GEMMs differ 250 times less than FP8's, already differ
by −0.12% (train) and −0.33% (validation): a few tenths of a percent is the spread that any change
of rounding gives a 300-step run that otherwise sees the same seed and batches. FP8's gap lies
within that spread, so at this size and length the runs cannot resolve an FP8 effect below ~0.3%,
and show none above it. The lower panel of the plot follows the gap through the run: FP8 stays
within +0.5% of FP32 from start to end, BF16 within −0.7%.

**An unstable run magnifies it.** The first setting tried, lr 3e-3 with a 15-step warm-up
(`LR=3e-3 WARMUP=15 bench/fp8_train.sh`), is unstable: all three modes spike at step 16 (gradient
norm 133 in FP32). FP8's spike was the worst (loss 9.9 against 6.8) and the run stayed about 0.1
nat behind afterwards: +2.26% (train) and +2.05% (validation) against FP32, +2.9% and +2.9%
against BF16 (BF16 against FP32: −0.65%, −0.84%). The quantisation noise does not bias a stable
run here, but it changes how a run comes out of an instability; V3's bound is for a stable one.

**The step time.** On a CPU the emulation can only cost: each Linear layer's step quantises and
dequantises six operands (forward X and W, input gradient dY and W again, weight gradient dY and
X grouped along the tokens) around the same FP32 sgemm, and BF16 rounds six. These are memory-
bound passes next to the GEMM's O(rows × in × out) work, so they weigh most where layers are
narrow, as here (d = 256). The speed-up of FP8 tensor cores is not something a CPU can show. The
2 cores were shared with other work (load average about 6), so medians carry ±15% noise; the
fastest step is the closer estimate of the unloaded cost.

**Run size and time.** recipes/moe-15m.json as is (6 layers, d = 256, MLA, 16 routed experts top-4
+ 1 shared, MTP depth 1, 4096-token vocabulary): 300 steps × 512 tokens = 153,600 tokens per mode,
half an epoch of the 306,363 training tokens. Training took 206–260 s per mode under that load
(143–159 s per mode in the lr 3e-3 run, load ~4), the timing runs about a minute: 11–13 minutes
for the script in all.
NOTES
}

# tiny-shakespeare: the first 1,000,000 bytes train, the remaining 115,394 validate; a BPE
# tokenizer with the config's vocabulary size, trained on the training part.
vocab=$(jq .vocab_size "$config")
head -c 1000000 "$data/tinyshakespeare/input.txt" > "$work/train.txt"
tail -c +1000001 "$data/tinyshakespeare/input.txt" > "$work/val.txt"
"$bin/ds-tokenize" train --vocab-size "$vocab" --special '<|endoftext|>' -o "$work/tok.json" "$work/train.txt"
"$bin/ds-tokenize" encode -t "$work/tok.json" -o "$work/train" "$work/train.txt"
"$bin/ds-tokenize" encode -t "$work/tok.json" -o "$work/val" "$work/val.txt"

args=(--config "$config" --data "$work/train-000000.tar" --val "$work/val-000000.tar"
      --tokenizer "$work/tok.json" --seq-len "$seq" --batch "$batch" --steps "$steps"
      --lr "$lr" --warmup "$warmup" --eval-every "$steps" --eval-batches 16 --seed "$seed"
      --threads "$threads" --peak-gflops 100)
for p in fp32 bf16 fp8; do
    if [ -f "$keep/$p.jsonl" ] && [ "$(wc -l < "$keep/$p.jsonl")" -eq "$steps" ]; then
        echo "fp8_train.sh: reusing $keep/$p.jsonl" >&2
    else
        echo "fp8_train.sh: training $p ($steps steps)" >&2
        nice -n 10 "$bin/ds-pretrain" train "${args[@]}" --precision "$p" -o "$work/$p.tar" \
            --metrics "$keep/$p.jsonl"
    fi
    # step, loss, and its trailing 5-step mean for the plot
    jq -r '[.step, .loss] | @tsv' "$keep/$p.jsonl" |
        awk '{ w[NR % 5] = $2; n = NR < 5 ? NR : 5; s = 0; for (i in w) s += w[i]; print $1, $2, s / n }' \
        > "$work/$p.tsv"
done

# Step time, measured apart from the training runs: on cores other work shares, a long run's
# step times wander with the load. Short runs with one thread, the modes interleaved round by
# round so each sees the same load; the first 2 steps of each run are dropped (warm-up).
rounds="${TIMING_ROUNDS:-3}" tsteps="${TIMING_STEPS:-12}"
for p in fp32 bf16 fp8; do rm -f "$work/time-$p.txt"; done
if [ -f "$keep/time-fp8.txt" ]; then
    echo "fp8_train.sh: reusing $keep/time-*.txt" >&2
else
    for r in $(seq 1 "$rounds"); do
        for p in fp32 bf16 fp8; do
            echo "fp8_train.sh: timing $p, round $r" >&2
            nice -n 10 "$bin/ds-pretrain" train "${args[@]}" --steps "$tsteps" --eval-every 0 \
                --threads 1 --precision "$p" -o "$work/time.tar" --metrics "$work/time.jsonl"
            jq -r --argjson tok $(( batch * seq )) 'select(.step > 2) | $tok / .tokens_per_s * 1000' \
                "$work/time.jsonl" >> "$work/time-$p.txt"
        done
    done
    for p in fp32 bf16 fp8; do cp "$work/time-$p.txt" "$keep/time-$p.txt"; done
fi

# Per mode: mean training loss over the last 10% of steps, final validation loss; median and
# fastest timed step.
tail_n=$(( steps / 10 > 0 ? steps / 10 : 1 ))
stat() { # MODE -> "mean_tail val_loss median_ms min_ms"
    local f="$keep/$1.jsonl"
    local m v ms
    m=$(tail -n "$tail_n" "$f" | jq -s 'map(.loss) | add / length')
    v=$(tail -n 1 "$f" | jq '.val_loss')
    ms=$(jq -s -r 'sort | "\(.[length / 2 | floor]) \(.[0])"' "$keep/time-$1.txt")
    echo "$m $v $ms"
}
read -r m32 v32 t32 f32 <<< "$(stat fp32)"
read -r m16 v16 t16 f16 <<< "$(stat bf16)"
read -r m8 v8 t8 f8 <<< "$(stat fp8)"
rel() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%+.3f%%", (a - b) / b * 100 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
fmt() { awk -v a="$1" 'BEGIN { printf "%.4f", a }'; }
ms() { awk -v a="$1" 'BEGIN { printf "%.0f", a }'; }

# Relative gap to fp32 per step, as a trailing 20-step mean, for the lower panel.
for p in bf16 fp8; do
    awk 'NR == FNR { ref[$1] = $2; next }
         { d = ($2 - ref[$1]) / ref[$1] * 100; w[FNR % 20] = d; n = FNR < 20 ? FNR : 20; s = 0
           for (i in w) s += w[i]; print $1, s / n }' "$work/fp32.tsv" "$work/$p.tsv" > "$work/gap-$p.tsv"
done

gnuplot <<GP
set terminal pngcairo size 900,800
set output '$png'
set multiplot layout 2,1 title 'ds-pretrain $(basename "$config" .json), seq $seq × batch $batch, lr $lr, seed $seed'
set xlabel 'step'
set grid
set key top right
set ylabel 'training loss (5-step mean)'
plot '$work/fp32.tsv' using 1:3 with lines lw 2 title 'fp32', \
     '$work/bf16.tsv' using 1:3 with lines lw 2 title 'bf16', \
     '$work/fp8.tsv' using 1:3 with lines lw 2 dt 2 title 'fp8 (E4M3, 1×128 / 128×128 scales)'
set ylabel 'loss vs fp32, % (20-step mean)'
set yrange [-3:3]
plot 0 with lines lc 'black' notitle, \
     '$work/gap-bf16.tsv' using 1:2 with lines lw 2 lc 2 title 'bf16', \
     '$work/gap-fp8.tsv' using 1:2 with lines lw 2 lc 3 dt 2 title 'fp8'
unset multiplot
GP

tmp=$(mktemp "$out.XXXXXX")
trap 'rm -rf "$work" "$tmp"' EXIT
{
    cat <<EOF
# FP8 and BF16 mixed-precision training (V3 §3.3)

\`ds-pretrain train --precision fp32|bf16|fp8\` from the same seed and data. Produced by
\`bench/fp8_train.sh\` (CONFIG=$config STEPS=$steps SEQ=$seq BATCH=$batch LR=$lr
WARMUP=$warmup THREADS=$threads SEED=$seed) on $(nproc) cores shared with other work, each run under \`nice -n 10\`. Run size:
$steps steps × $batch sequences × $seq tokens = $(( steps * batch * seq )) training tokens per mode;
validation loss at the last step over 16 × $batch × $seq tokens of held-out text. Command of each run:

    ds-pretrain train ${args[*]//$work\//} --precision MODE -o MODE.tar --metrics MODE.jsonl

(train/val/tok files: the first 1,000,000 bytes of tiny-shakespeare tokenised with a
$vocab-token BPE trained on them, the remaining 115,394 bytes for validation.)

| mode | mean loss, last $tail_n steps | vs fp32 | vs bf16 | val loss | vs fp32 | vs bf16 |
|---|---|---|---|---|---|---|
| fp32 | $(fmt "$m32") | | | $(fmt "$v32") | | |
| bf16 | $(fmt "$m16") | $(rel "$m16" "$m32") | | $(fmt "$v16") | $(rel "$v16" "$v32") | |
| fp8 | $(fmt "$m8") | $(rel "$m8" "$m32") | $(rel "$m8" "$m16") | $(fmt "$v8") | $(rel "$v8" "$v32") | $(rel "$v8" "$v16") |

Step time: $rounds rounds × 3 modes of $tsteps-step runs (same options, \`--threads 1\`, no
validation), modes interleaved; $(( rounds * (tsteps - 2) )) timed steps per mode after 2 warm-up steps each.

| mode | ms/step, median | ms/step, fastest | × fp32 (median) | × fp32 (fastest) |
|---|---|---|---|---|
| fp32 | $(ms "$t32") | $(ms "$f32") | 1.00 | 1.00 |
| bf16 | $(ms "$t16") | $(ms "$f16") | $(ratio "$t16" "$t32") | $(ratio "$f16" "$f32") |
| fp8 | $(ms "$t8") | $(ms "$f8") | $(ratio "$t8" "$t32") | $(ratio "$f8" "$f32") |

![training loss per mode]($(basename "$png"))

EOF
    notes
} > "$tmp"
mv "$tmp" "$out"
echo "fp8_train.sh: wrote $out and $png" >&2
cat "$out"
