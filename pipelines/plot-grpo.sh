#!/usr/bin/env bash
# plot-grpo.sh METRICS.jsonl OUT.png [TITLE] — the curves of a ds-grpo run: reward, accuracy,
# format rate, held-out pass@1, response length (correct and incorrect samples), KL, fraction of
# all-equal groups, entropy, and R1-Zero's "aha" curve: the share of responses with a reflective
# word ("wait", "check", "verify", ...) beside the reflective words per response. gnuplot, one PNG
# with a panel per quantity.
set -euo pipefail
m=$1 out=$2 title=${3:-ds-grpo}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
jq -r '[.step, .reward_mean, .accuracy, .format_rate, .response_length_mean, .length_correct,
        .length_incorrect, .kl, .all_equal_groups, .entropy, (.reflection_rate // 0),
        (.reflection_words // 0)] | @tsv' "$m" > "$tmp/d.tsv"
jq -r 'select(has("eval_pass@1")) | [.step - 1, .["eval_pass@1"]] | @tsv' "$m" > "$tmp/e.tsv"
gnuplot <<GP
set terminal pngcairo size 1800,900 font ",10"
set output "$out.tmp"
set multiplot layout 2,4 title "$title"
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
set y2tics
set ytics nomirror
plot "$tmp/d.tsv" u 1:11 w l t "responses with a reflective word", "$tmp/d.tsv" u 1:12 axes x1y2 w l t "reflective words per response (right)"
unset multiplot
GP
mv "$out.tmp" "$out"
