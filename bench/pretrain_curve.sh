#!/usr/bin/env bash
# pretrain_curve.sh — pretrains recipes/moe-15m.json on tiny-shakespeare for a fixed budget and
# writes results/pretrain-shakespeare.md and results/pretrain-shakespeare.png: training and
# validation loss against the unigram entropy of the training tokens (all in nats/token).
#
# Usage: bench/pretrain_curve.sh        STEPS=N (default 250), BIN=DIR (default bin), THREADS (2)
# Split: train = the first 90% of input.txt (bytes), validation = the last 10%; a 4096-token BPE
# tokenizer is trained on the train split only. Runs under nice -n 10: the machine may be shared.
set -euo pipefail
cd "$(dirname "$0")/.."
steps="${STEPS:-250}" bin="${BIN:-bin}" threads="${THREADS:-2}"
data="${DS_DATA:-../shared/data}/tinyshakespeare/input.txt"
for t in ds-tokenize ds-pretrain; do
    [ -x "$bin/$t" ] || { echo "pretrain_curve.sh: $bin/$t missing; run make first" >&2; exit 1; }
done
command -v gnuplot > /dev/null || { echo "pretrain_curve.sh: gnuplot is needed for the plot" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

n=$(wc -c < "$data")
head -c $((n * 9 / 10)) "$data" > "$tmp/train.txt"
tail -c $((n - n * 9 / 10)) "$data" > "$tmp/val.txt"
"$bin/ds-tokenize" train --vocab-size 4096 --special '<|endoftext|>' -o "$tmp/tok.json" "$tmp/train.txt"
"$bin/ds-tokenize" encode -t "$tmp/tok.json" -o "$tmp/train" "$tmp/train.txt"
"$bin/ds-tokenize" encode -t "$tmp/tok.json" -o "$tmp/val" "$tmp/val.txt"

# Unigram entropy of the training tokens: H = -Σ p log p over token frequencies, in nats.
"$bin/ds-tokenize" encode -t "$tmp/tok.json" --jsonl-ids "$tmp/train.txt" | tr -d '[]' | tr ',' '\n' |
    sort | uniq -c > "$tmp/counts"
read -r ntrain entropy < <(awk '{ c[NR] = $1; t += $1 } END {
    for (i in c) { p = c[i] / t; h -= p * log(p) } printf "%d %.4f\n", t, h }' "$tmp/counts")
nval=$("$bin/ds-tokenize" encode -t "$tmp/tok.json" --jsonl-ids "$tmp/val.txt" | tr -d '[]' | tr ',' '\n' | wc -l)

cmd=(nice -n 10 "$bin/ds-pretrain" train --config recipes/moe-15m.json --data "$tmp/train-000000.tar"
     --val "$tmp/val-000000.tar" --tokenizer "$tmp/tok.json" --batch 8 --seq-len 256 --steps "$steps"
     --eval-every 25 --eval-batches 8 --threads "$threads" --seed 1234 -o "$tmp/ck.tar"
     --metrics "$tmp/m.jsonl")
t0=$(date +%s)
"${cmd[@]}"
secs=$(( $(date +%s) - t0 ))

field() { grep -o "\"$1\":[0-9.eE+-]*" | cut -d: -f2; }
paste <(field step < "$tmp/m.jsonl") <(field loss < "$tmp/m.jsonl") > "$tmp/train.dat"
grep '"val_loss"' "$tmp/m.jsonl" > "$tmp/val.jsonl"
paste <(field step < "$tmp/val.jsonl") <(field val_loss < "$tmp/val.jsonl") > "$tmp/val.dat"
read -r first_step first_val < <(head -1 "$tmp/val.dat" | awk '{ printf "%d %.4f\n", $1, $2 }')
final_val=$(tail -1 "$tmp/val.dat" | awk '{ printf "%.4f", $2 }')
final_train=$(tail -20 "$tmp/train.dat" | awk '{ s += $2 } END { printf "%.4f", s / NR }')
tps=$(field tokens_per_s < "$tmp/m.jsonl" | tail -n +3 | sort -g | awk '{ a[NR] = $1 } END { printf "%.0f", a[int((NR + 1) / 2)] }')

mkdir -p results
gnuplot <<GP
set terminal pngcairo size 900,540 font ",11"
set output "results/pretrain-shakespeare.png.tmp"
set title "moe-15m on tiny-shakespeare (4096-token BPE, batch 8 x 256, $steps steps)"
set xlabel "optimizer step"
set ylabel "loss (nats/token)"
set grid
set key top right
plot "$tmp/train.dat" using 1:2 with lines lc rgb "#9ecae1" title "training loss", \
     "$tmp/val.dat" using 1:2 with linespoints lw 2 pt 7 lc rgb "#08519c" title "validation loss", \
     $entropy with lines dt 2 lw 2 lc rgb "#cb181d" title sprintf("unigram entropy of training tokens (%.3f)", $entropy)
GP
mv results/pretrain-shakespeare.png.tmp results/pretrain-shakespeare.png

out=results/pretrain-shakespeare.md
{
    echo "# Pretraining the MoE core on tiny-shakespeare"
    echo
    echo "Made by \`bench/pretrain_curve.sh\` (STEPS=$steps) on $(date -u +%Y-%m-%d), $(nproc) cores, at commit"
    echo "$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- lib tools recipes || echo ' plus uncommitted changes to lib/ tools/ recipes/'). The training command (temporary paths shortened):"
    echo
    echo '```'
    echo "${cmd[*]}" | sed "s#$tmp/##g"
    echo '```'
    echo
    echo "- Data: \`tinyshakespeare/input.txt\`, the first 90% of its bytes for training ($ntrain tokens),"
    echo "  the last 10% for validation ($nval tokens), tokenized with a 4096-token byte-level BPE trained"
    echo "  on the training split only."
    echo "- Model: \`recipes/moe-15m.json\` (DeepSeek-V3 layout: MLA, 16 routed experts top-4 in 4 groups,"
    echo "  a shared expert, one dense first layer, one MTP module), defaults for everything not shown"
    echo "  (cosine schedule, lr 3e-3, MTP λ 0.3→0.1, bias γ 0.001)."
    echo "- Budget: $steps steps × 2048 tokens = $((steps * 2048)) tokens (≈ $(awk -v a=$((steps * 2048)) -v b=$ntrain 'BEGIN { printf "%.1f", a / b }') epochs), $secs s wall"
    echo "  under \`nice -n 10\` on a shared machine (median $tps tokens/s)."
    echo "- Validation loss: mean next-token cross-entropy over 8 batches × 8 × 256 tokens in order"
    echo "  from the start of the validation split, every 25 steps."
    echo
    echo "| | nats/token |"
    echo "|---|---|"
    echo "| unigram entropy of the training tokens | $entropy |"
    echo "| validation loss at step $first_step | $first_val |"
    echo "| validation loss at step $steps | $final_val |"
    echo "| training loss, mean of the last 20 steps | $final_train |"
    echo
    awk -v h="$entropy" -v v="$final_val" 'BEGIN { printf "The final validation loss is %.3f nats/token below the unigram entropy (%.0f%% lower, a\nperplexity of %.0f against %.0f for the best context-free guess).\n", h - v, 100 * (h - v) / h, exp(v), exp(h) }'
    echo
    echo "![loss curves](pretrain-shakespeare.png)"
    echo
    echo "## Validation loss by step"
    echo
    echo "| step | validation loss |"
    echo "|---|---|"
    awk '{ printf "| %d | %.4f |\n", $1, $2 }' "$tmp/val.dat"
} > "$out.tmp"
mv "$out.tmp" "$out"
echo "pretrain_curve.sh: wrote $out and results/pretrain-shakespeare.png (val $final_val vs unigram $entropy nats/token)"
