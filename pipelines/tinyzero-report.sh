#!/usr/bin/env bash
# tinyzero-report.sh DIR — the base vs RL table of a `make tinyzero` run (Markdown on stdout).
set -euo pipefail
d=$1
row() { # NAME EVAL COMPLETIONS
    local attempts repeated eqacc quit hits
    # attempt lines ("Try ..." in either vocabulary) per completion
    attempts=$(jq -r '.completion' "$3" | awk '/<think>/ { n++ } /^(Try|Пробую) / { t++ } END { printf "%.2f", n ? t / n : 0 }')
    # share of attempt lines that repeat an earlier attempt of the same completion (its steps)
    repeated=$(jq -r '.completion' "$3" | awk '/<think>/ { split("", seen) }
        /^(Try|Пробую) / && match($0, /[0-9].* (vs|против) /) { t++; k = substr($0, RSTART, RLENGTH); r += (k in seen); seen[k] = 1 }
        END { printf "%.1f", t ? 100 * r / t : 0 }')
    # share of the written equations "a op b = c" that are right
    eqacc=$(jq -n '[inputs | .completion | scan("([0-9]+) ([-+*/]) ([0-9]+) = ([0-9]+)")
        | (.[0] | tonumber) as $a | (.[2] | tonumber) as $b | (.[3] | tonumber) as $c
        | if .[1] == "+" then $a + $b == $c elif .[1] == "-" then $a - $b == $c
          elif .[1] == "*" then $a * $b == $c else $b != 0 and $a / $b == $c end]
        | if length > 0 then (map(select(.)) | length) / length * 1000 | round / 10 else 0 end' "$3")
    # share of answers that give up ("None of these gives T" in either vocabulary)
    quit=$(jq -r '.completion' "$3" | awk '/<think>/ { n++ } /^(None of these|Ничто из этих) / { q++ }
        END { printf "%.1f", n ? 100 * q / n : 0 }')
    # attempt lines whose written result is the target ("... = T vs T, yes"): the share that say so
    hits=$(jq -n --slurpfile t "$d/test.jsonl" '($t | map({(.id): .target}) | add) as $target
        | [inputs | $target[.id] as $T | .completion
           | scan("= ([0-9]+) (?:vs|против) [0-9]+, (yes|да|no|нет)[,.]") | select((.[0] | tonumber) == $T) | .[1] == "yes" or .[1] == "да"]
        | if length > 0 then (map(select(.)) | length) / length * 1000 | round / 10 else 0 end' "$3")
    jq -r --arg name "$1" --arg att "$attempts" --arg rep "$repeated" --arg eq "$eqacc" --arg quit "$quit" --arg hits "$hits" '"| \($name) | \(.["pass@1"] * 1000 | round / 10)% | \((.["pass@4"] // 0) * 1000 | round / 10)% | \((.["pass@16"] // 0) * 1000 | round / 10)% | \((.["pass@32"] // 0) * 1000 | round / 10)% | \(.format_rate * 1000 | round / 10)% | \(.mean_length * 10 | round / 10) | \($att) | \($rep)% | \($eq)% | \($hits)% | \($quit)% |"' "$2"
}
echo "# Countdown, R1-Zero from scratch: base vs RL"
echo
echo "Held-out problems: $(wc -l < "$d/test.jsonl"); samples per problem: $(jq -r .n_samples "$d/base.eval.json") / $(jq -r .n_problems "$d/base.eval.json")"
echo
echo "| model | pass@1 | pass@4 | pass@16 | pass@32 | format | mean length | attempts per answer | repeated attempts | equations right | hits recognised | gave up |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
row base "$d/base.eval.json" "$d/base.completions.jsonl"
row "RL (GRPO)" "$d/rl.eval.json" "$d/rl.completions.jsonl"
echo
b=$(jq '.["pass@1"]' "$d/base.eval.json") r=$(jq '.["pass@1"]' "$d/rl.eval.json")
awk -v b="$b" -v r="$r" 'BEGIN { printf "pass@1 gain: %.1fx (goal: at least 3x and at least 30%%)\n", (b > 0 ? r / b : 0) }'
echo
echo "RL curves: rl.png; per-step metrics: rl.jsonl. Pretraining curves: pretrain.png (pretrain.jsonl)."
# R1-Zero's "aha" curve: responses with a reflective word (wait, check, verify, ...) over the RL steps
jq -s -r 'map(select(has("reflection_rate"))) | if length > 0 then
    "Responses with a reflective word (R1-Zero'"'"'s aha curve): \(.[0].reflection_rate * 1000 | round / 10)% at step \(.[0].step), \(.[-1].reflection_rate * 1000 | round / 10)% at step \(.[-1].step) (\(.[-1].reflection_words * 100 | round / 100) reflective words per response)."
    else empty end' "$d/rl.jsonl"
