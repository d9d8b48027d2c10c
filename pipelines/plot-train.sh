#!/usr/bin/env bash
# plot-train.sh METRICS.jsonl OUT.png [TITLE] — the curves of a ds-pretrain, ds-sft or ds-distill
# run (one JSON line per step): training and validation loss, MTP and balance losses, learning
# rate, gradient norm, tokens/s, and the most loaded expert over the mean (MoE models).
# gnuplot, one PNG with a panel per quantity; panels without data are left out.
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: plot-train.sh METRICS.jsonl OUT.png [TITLE]" >&2; exit 2; }
m=$1 out=$2 title=${3:-training}
command -v gnuplot > /dev/null || { echo "plot-train.sh: gnuplot is needed" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
jq -r '[.step, .loss, .mtp_loss, .balance_loss, .lr, .grad_norm, .tokens_per_s,
        ((.expert_load_max_over_mean // []) | if length > 0 then max else 0 end)] | @tsv' "$m" > "$tmp/d.tsv"
[ -s "$tmp/d.tsv" ] || { echo "plot-train.sh: $m: no steps" >&2; exit 1; }
jq -r 'select(has("val_loss")) | [.step, .val_loss] | @tsv' "$m" > "$tmp/v.tsv"
has() { awk -v c="$1" '$c != 0 { f = 1 } END { exit !f }' "$tmp/d.tsv"; }
val=
[ -s "$tmp/v.tsv" ] && val=", \"$tmp/v.tsv\" u 1:2 w lp pt 7 lw 2 lc rgb '#08519c' t 'validation loss'"
panels=("plot \"$tmp/d.tsv\" u 1:2 w l lc rgb '#9ecae1' t 'training loss'$val")
has 3 && panels+=("plot \"$tmp/d.tsv\" u 1:3 w l t 'MTP loss'")
has 4 && panels+=("plot \"$tmp/d.tsv\" u 1:4 w l t 'balance loss'")
panels+=("plot \"$tmp/d.tsv\" u 1:5 w l t 'learning rate'")
panels+=("plot \"$tmp/d.tsv\" u 1:6 w l t 'gradient norm (before clipping)'")
panels+=("plot \"$tmp/d.tsv\" u 1:7 w l t 'tokens/s'")
has 8 && panels+=("plot \"$tmp/d.tsv\" u 1:8 w l t 'expert load: max / mean (worst layer)'")
n=${#panels[@]} cols=$(( ${#panels[@]} > 4 ? 3 : 2 ))
{
    echo 'set terminal pngcairo size 1400,900 font ",10"'
    echo "set output \"$out.tmp\""
    echo "set multiplot layout $(( (n + cols - 1) / cols )),$cols title \"$title\""
    echo 'set grid'
    echo 'set xlabel "step"'
    echo 'set key top right'
    printf '%s\n' "${panels[@]}"
    echo 'unset multiplot'
} | gnuplot
mv "$out.tmp" "$out"
