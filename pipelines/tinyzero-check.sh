#!/usr/bin/env bash
# tinyzero-check.sh EVAL.json — says whether a base model is in the range where RL can work
# (recipes/TINYZERO.md: pass@1 roughly 5–20%, pass@32 well above it), or just prints the numbers.
set -euo pipefail
f=$1
read -r p1 pk k fmt < <(jq -r '[.["pass@1"], (to_entries | map(select(.key | startswith("pass@"))) | last | .value),
    (to_entries | map(select(.key | startswith("pass@"))) | last | .key), .format_rate] | @tsv' "$f")
echo "$(basename "$f"): pass@1 $p1, $k $pk, format rate $fmt"
case "$(basename "$f")" in base.*)
    if awk -v a="$p1" -v b="$pk" 'BEGIN { exit !(a >= 0.05 && a <= 0.20 && b >= 2 * a) }'; then
        echo "base model: in the learnable range (pass@1 in 5-20%, $k at least twice pass@1)"
    else
        echo "base model: OUTSIDE the learnable range (want pass@1 5-20% and $k >= 2x pass@1); RL may not help"
    fi ;;
esac
