#!/usr/bin/env bash
# plot-grpo.sh METRICS.jsonl OUT.png [TITLE] — the curves of a ds-grpo run: reward, accuracy,
# format rate, held-out pass@1, response length (correct and incorrect samples), KL, fraction of
# all-equal groups, entropy. gnuplot, one PNG with a panel per quantity.
set -euo pipefail
m=$1 out=$2 title=${3:-ds-grpo}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
jq -r '[.step, .reward_mean, .accuracy, .format_rate, .response_length_mean, .length_correct,
        .length_incorrect, .kl, .all_equal_groups, .entropy] | @tsv' "$m" > "$tmp/d.tsv"
jq -r 'select(has("eval_pass@1")) | [.step - 1, .["eval_pass@1"]] | @tsv' "$m" > "$tmp/e.tsv"
gnuplot <<GP
set terminal pngcairo size 1400,900 font ",10"
set output "$out.tmp"
set multiplot layout 2,3 title "$title"
set grid
set xlabel "step"
set key top left
plot "$tmp/d.tsv" u 1:2 w l t "reward (mean)", "$tmp/d.tsv" u 1:3 w l t "accuracy"
set yrange [0:1]
set key center right
plot "$tmp/d.tsv" u 1:4 w l t "format rate", "$tmp/e.tsv" u 1:2 w lp t "held-out pass@1"
set key top left
set autoscale y
plot "$tmp/d.tsv" u 1:5 w l t "length (all)", "$tmp/d.tsv" u 1:(\$6 > 0 ? \$6 : 1/0) w p pt 7 ps 0.6 t "length (correct; steps with any)", "$tmp/d.tsv" u 1:7 w l t "length (incorrect)"
plot "$tmp/d.tsv" u 1:8 w l t "KL to reference"
set yrange [0:1]
plot "$tmp/d.tsv" u 1:9 w l t "all-equal groups"
set autoscale y
plot "$tmp/d.tsv" u 1:10 w l t "entropy (nats/token)"
unset multiplot
GP
mv "$out.tmp" "$out"
