#!/usr/bin/env bash
# balance.sh — auxiliary-loss-free load balancing: trains recipes/moe-15m.json twice on
# tiny-shakespeare, with bias update speed γ = 0.001 and γ = 0 (same seed, data and everything
# else), and writes results/balance.md and results/balance.png: the max/mean expert load of each
# MoE layer over training (the metrics' "expert_load_max_over_mean").
#
# Usage: bench/balance.sh   STEPS=N (400), BATCH=N (4), SEQ=N (128), BIN=DIR (bin), THREADS=N (2)
# Small batches keep 2 × 400 steps to a few minutes: with γ = 0.001 a bias moves at most 0.001 per
# step, so the budget is counted in steps rather than tokens.
# Both runs keep γ for the whole run (--bias-gamma-late = --bias-gamma) and the default sequence-wise
# balance loss α = 1e-4. Runs under nice -n 10 one after the other: the machine may be shared.
set -euo pipefail
cd "$(dirname "$0")/.."
steps="${STEPS:-400}" batch="${BATCH:-4}" seq="${SEQ:-128}" bin="${BIN:-bin}" threads="${THREADS:-2}"
data="${DS_DATA:-../shared/data}/tinyshakespeare/input.txt"
for t in ds-tokenize ds-pretrain; do
    [ -x "$bin/$t" ] || { echo "balance.sh: $bin/$t missing; run make first" >&2; exit 1; }
done
command -v gnuplot > /dev/null || { echo "balance.sh: gnuplot is needed for the plot" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

n=$(wc -c < "$data")
head -c $((n * 9 / 10)) "$data" > "$tmp/train.txt"
"$bin/ds-tokenize" train --vocab-size 4096 --special '<|endoftext|>' -o "$tmp/tok.json" "$tmp/train.txt"
"$bin/ds-tokenize" encode -t "$tmp/tok.json" -o "$tmp/train" "$tmp/train.txt"

run() { # run NAME GAMMA
    nice -n 10 "$bin/ds-pretrain" train --config recipes/moe-15m.json --data "$tmp/train-000000.tar" \
        --tokenizer "$tmp/tok.json" --batch "$batch" --seq-len "$seq" --steps "$steps" --eval-every 0 \
        --threads "$threads" --seed 1234 --bias-gamma "$2" --bias-gamma-late "$2" \
        -o "$tmp/$1.tar" --metrics "$tmp/$1.jsonl"
    # one row per step: step, loss, then max/mean of every MoE layer (main layers, then MTP)
    grep -o '"step":[0-9]*\|"loss":[0-9.eE+-]*\|"expert_load_max_over_mean":\[[^]]*\]' "$tmp/$1.jsonl" |
        sed 's/^"[a-z_]*"://; s/[][]//g; s/,/ /g' | paste -d' ' - - - > "$tmp/$1.dat"
}
run g0001 0.001
run g0 0
nl=$(head -1 "$tmp/g0.dat" | awk '{ print NF - 2 }')

# 20-step trailing moving average per layer, for the plot
smooth() { awk '{ for (i = 3; i <= NF; i++) { s[i] += $i; q[NR, i] = $i; if (NR > 20) s[i] -= q[NR - 20, i] }
                  k = NR < 20 ? NR : 20; printf "%d", $1; for (i = 3; i <= NF; i++) printf " %.4f", s[i] / k; print "" }' "$1"; }
smooth "$tmp/g0001.dat" > "$tmp/g0001.avg"
smooth "$tmp/g0.dat" > "$tmp/g0.avg"
ymax=$(cat "$tmp/g0001.avg" "$tmp/g0.avg" | awk '{ for (i = 2; i <= NF; i++) if ($i > m) m = $i } END { print int(m + 1) }')

mkdir -p results
{
    echo 'set terminal pngcairo size 1100,480 font ",10"'
    echo 'set output "results/balance.png.tmp"'
    echo 'set multiplot layout 1,2 title "moe-15m, expert load max/mean per MoE layer (20-step moving average)"'
    echo "set xlabel 'optimizer step'; set ylabel 'max / mean tokens per expert'; set grid; set yrange [1:$ymax]; set key top right"
    for f in g0:"γ = 0 (no bias updates)" g0001:"γ = 0.001"; do
        echo "set title \"${f#*:}\""
        printf 'plot '
        for ((i = 1; i <= nl; i++)); do
            name="layer $i"; [ "$i" -eq "$nl" ] && name="MTP layer"
            printf '"%s" using 1:%d with lines lw 2 title "%s"%s' "$tmp/${f%%:*}.avg" $((i + 1)) "$name" "$([ $i -lt $nl ] && echo ', ')"
        done
        echo
    done
    echo 'unset multiplot'
} | gnuplot
mv results/balance.png.tmp results/balance.png

# mean of max/mean over the last quarter of the run, per layer and over all layers
tailmean() { tail -n $((steps / 4)) "$1" | awk '{ for (i = 3; i <= NF; i++) s[i] += $i; n++ }
    END { for (i = 3; i <= NF; i++) { printf "%.3f ", s[i] / n; t += s[i] / n } printf "%.3f\n", t / (NF - 2) }'; }
firstmean() { head -n $((steps / 4)) "$1" | awk '{ for (i = 3; i <= NF; i++) t += $i; n += NF - 2 } END { printf "%.3f", t / n }'; }
read -ra a0 < <(tailmean "$tmp/g0.dat")
read -ra a1 < <(tailmean "$tmp/g0001.dat")
loss0=$(tail -20 "$tmp/g0.dat" | awk '{ s += $2 } END { printf "%.4f", s / NR }')
loss1=$(tail -20 "$tmp/g0001.dat" | awk '{ s += $2 } END { printf "%.4f", s / NR }')

out=results/balance.md
{
    echo "# Auxiliary-loss-free load balancing: bias updates (γ > 0) against none (γ = 0)"
    echo
    echo "Made by \`bench/balance.sh\` (STEPS=$steps BATCH=$batch SEQ=$seq) on $(date -u +%Y-%m-%d), $(nproc) cores, at commit"
    echo "$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- lib tools recipes || echo ' plus uncommitted changes to lib/ tools/ recipes/'). Each run (temporary paths shortened):"
    echo
    echo '```'
    echo "nice -n 10 $bin/ds-pretrain train --config recipes/moe-15m.json --data train-000000.tar --tokenizer tok.json --batch $batch --seq-len $seq --steps $steps --eval-every 0 --threads $threads --seed 1234 --bias-gamma G --bias-gamma-late G -o G.tar --metrics G.jsonl   # G = 0.001, then G = 0"
    echo '```'
    echo
    echo "Data: the first 90% of \`tinyshakespeare/input.txt\`, 4096-token BPE trained on it. The two runs"
    echo "differ only in γ, the per-step bias update b_i += γ·sign(mean load − load_i) of each MoE layer;"
    echo "the bias shifts expert selection only. Load = tokens routed to each of the 16 experts in a step"
    echo "($((batch * seq)) tokens × top-4); max/mean = 1 is perfect balance, 4 means the busiest expert got 4× its"
    echo "share. The sequence-wise balance loss keeps its default weight α = 1e-4 in both runs. MoE layer k"
    echo "is the model's layer k + 1 (its first layer is dense); the MTP module's block is MoE too."
    echo
    echo "Mean max/mean load over the first quarter of steps (all MoE layers): γ = 0: $(firstmean "$tmp/g0.dat"), γ = 0.001: $(firstmean "$tmp/g0001.dat")."
    echo
    echo "Mean max/mean load over the last quarter of the run (steps $((steps - steps / 4 + 1))–$steps):"
    echo
    printf '| γ |'; for ((i = 1; i <= nl; i++)); do [ "$i" -eq "$nl" ] && printf ' MTP layer |' || printf ' MoE layer %d |' "$i"; done; echo ' all |'
    printf '|---|'; for ((i = 0; i <= nl; i++)); do printf -- '---|'; done; echo
    printf '| 0 |'; for x in "${a0[@]}"; do printf ' %s |' "$x"; done; echo
    printf '| 0.001 |'; for x in "${a1[@]}"; do printf ' %s |' "$x"; done; echo
    echo
    echo "Bias updates bring the last-quarter max/mean load from ${a0[-1]} (γ = 0) to ${a1[-1]} (γ = 0.001)."
    echo "Training loss, mean of the last 20 steps: γ = 0: $loss0, γ = 0.001: $loss1 nats/token."
    echo
    echo "![max/mean expert load per layer](balance.png)"
} > "$out.tmp"
mv "$out.tmp" "$out"
echo "balance.sh: wrote $out and results/balance.png (last-quarter max/mean: γ=0 ${a0[-1]}, γ=0.001 ${a1[-1]})"
