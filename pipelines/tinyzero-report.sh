#!/usr/bin/env bash
# tinyzero-report.sh DIR — the base vs RL table of a `make tinyzero` run (Markdown on stdout).
set -euo pipefail
d=$1
row() { # NAME EVAL COMPLETIONS
    local attempts eqacc
    # attempt lines ("Try ..." in either vocabulary) per completion
    attempts=$(jq -r '.completion' "$3" | awk '/<think>/ { n++ } /^(Try|Пробую) / { t++ } END { printf "%.2f", n ? t / n : 0 }')
    # share of the written equations "a op b = c" that are right
    eqacc=$(jq -n '[inputs | .completion | scan("([0-9]+) ([-+*/]) ([0-9]+) = ([0-9]+)")
        | (.[0] | tonumber) as $a | (.[2] | tonumber) as $b | (.[3] | tonumber) as $c
        | if .[1] == "+" then $a + $b == $c elif .[1] == "-" then $a - $b == $c
          elif .[1] == "*" then $a * $b == $c else $b != 0 and $a / $b == $c end]
        | if length > 0 then (map(select(.)) | length) / length * 1000 | round / 10 else 0 end' "$3")
    jq -r --arg name "$1" --arg att "$attempts" --arg eq "$eqacc" '"| \($name) | \(.["pass@1"] * 1000 | round / 10)% | \((.["pass@4"] // 0) * 1000 | round / 10)% | \((.["pass@16"] // 0) * 1000 | round / 10)% | \((.["pass@32"] // 0) * 1000 | round / 10)% | \(.format_rate * 1000 | round / 10)% | \(.mean_length * 10 | round / 10) | \($att) | \($eq)% |"' "$2"
}
echo "# Countdown, R1-Zero from scratch: base vs RL"
echo
echo "Held-out problems: $(wc -l < "$d/test.jsonl"); samples per problem: $(jq -r .n_samples "$d/base.eval.json") / $(jq -r .n_problems "$d/base.eval.json")"
echo
echo "| model | pass@1 | pass@4 | pass@16 | pass@32 | format | mean length | attempts per answer | equations right |"
echo "|---|---|---|---|---|---|---|---|---|"
row base "$d/base.eval.json" "$d/base.completions.jsonl"
row "RL (GRPO)" "$d/rl.eval.json" "$d/rl.completions.jsonl"
echo
b=$(jq '.["pass@1"]' "$d/base.eval.json") r=$(jq '.["pass@1"]' "$d/rl.eval.json")
awk -v b="$b" -v r="$r" 'BEGIN { printf "pass@1 gain: %.1fx (goal: at least 3x and at least 30%%)\n", (b > 0 ? r / b : 0) }'
echo
echo "RL curves: rl.png; per-step metrics: rl.jsonl."
