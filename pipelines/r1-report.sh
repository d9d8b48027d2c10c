#!/usr/bin/env bash
# r1-report.sh DIR STAGE... — the stage table of a `make r1` run (Markdown on stdout): one row per
# stage from DIR/STAGE.eval.json (countdown grading) and DIR/STAGE.lang.json (language consistency).
set -euo pipefail
d=$1; shift
what() {
    case $1 in
    base) echo "V3 base (pretrained)" ;;
    zero) echo "R1-Zero: GRPO from the base" ;;
    coldstart) echo "cold-start SFT of the base" ;;
    rl) echo "reasoning RL from the cold start (+ language reward)" ;;
    rs-sft) echo "base SFT on cold start + rejection-sampled set" ;;
    student-base) echo "dense student (pretrained)" ;;
    student-distill) echo "student distilled from the reasoner's samples" ;;
    student-rl) echo "student trained by the same GRPO directly" ;;
    *) echo "$1" ;;
    esac
}
pct() { jq -r "$1 * 1000 | round / 10" "$2"; }
echo "# V3 → R1 at small scale: one row per stage"
echo
echo "Held-out Countdown problems: $(jq -r .n_problems "$d/base.eval.json"); samples per problem: $(( $(jq -r .n_samples "$d/base.eval.json") / $(jq -r .n_problems "$d/base.eval.json") )) (temperature 0.6, top-p 0.95)."
echo "Accuracy is pass@1; format is the <think>/<answer> format; language consistency is the share"
echo "of reasoning words in the prompt's language (English), averaged over samples."
echo
echo "| stage | model | accuracy | format | language consistency | mean length (tokens) |"
echo "|---|---|---|---|---|---|"
for s in "$@"; do
    e=$d/$s.eval.json l=$d/$s.lang.json
    echo "| $s | $(what "$s") | $(pct '.["pass@1"]' "$e")% | $(pct .format_rate "$e")% | $(pct .mean_score "$l")% | $(jq -r '.mean_length | round' "$e") |"
done
if [ -f "$d/student-distill.eval.json" ] && [ -f "$d/student-rl.eval.json" ]; then
    a=$(jq '.["pass@1"]' "$d/student-distill.eval.json") b=$(jq '.["pass@1"]' "$d/student-rl.eval.json")
    echo
    awk -v a="$a" -v b="$b" 'BEGIN { printf "Distillation vs RL on the small model (R1 section 4.1): %.1f%% vs %.1f%% pass@1: %s.\n", 100 * a, 100 * b, (a > b ? "distillation wins, as in the paper" : (a < b ? "RL wins, unlike the paper" : "a tie")) }'
fi
echo
echo "Curves: coldstart.png, rs-sft.png, student-base.png and student-distill.png (training loss,"
echo "learning rate, gradient norm, throughput); rl.png and student-rl.png (reward, accuracy, length, KL)."
