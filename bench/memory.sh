#!/usr/bin/env bash
# memory.sh [BIN] — peak resident memory (/usr/bin/time -v) of a small GRPO run with a reference
# model and of logit distillation from a teacher, on the tiny MoE + MTP config (vocab 512,
# sequences of 512 tokens). Prints "run max_rss_kib". Results: results/memory.md.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export PATH="${1:-$ROOT/bin}:$PATH"
W=$(mktemp -d "${TMPDIR:-/tmp}/ds-memory.XXXXXX")
trap 'rm -rf "$W"' EXIT
awk 'BEGIN { srand(1); for (i = 0; i < 3000; i++) { d = int(rand() * 10); a = rand() < 0.6 ? d : int(rand() * 10);
    printf "User: Say %d. Assistant: <answer> %d </answer><|endoftext|>\n", d, a } }' > "$W/corpus.txt"
ds-tokenize train --vocab-size 512 --special '<|endoftext|>' --pretokenizer digits -o "$W/tok.json" "$W/corpus.txt" 2>/dev/null
ds-tokenize encode -t "$W/tok.json" --allow-special -o "$W/train" "$W/corpus.txt" 2>/dev/null
ds-pretrain train --config "$ROOT/recipes/tiny-moe.json" --data "$W/train-000000.tar" --tokenizer "$W/tok.json" \
    --seq-len 64 --batch 8 --steps 2 --eval-every 0 --threads 1 --peak-gflops 10 -o "$W/base.tar" --metrics /dev/null 2>/dev/null
for i in $(seq 0 15); do
    printf '{"id":"q%d","task":"math","prompt":"User: Say %d. Assistant:","completion":" <answer> %d </answer>","answer":"%d"}\n' \
        "$i" $((i % 10)) $((i % 10)) $((i % 10))
done > "$W/tasks.jsonl"
rss() { /usr/bin/time -v "$@" 2> "$W/time.txt" > /dev/null; grep 'Maximum resident' "$W/time.txt" | awk '{print $NF}'; }
echo "grpo-with-reference $(rss ds-grpo train -m "$W/base.tar" --tasks "$W/tasks.jsonl" --template plain \
    --extract answer --prompts-per-step 4 --group-size 4 --max-tokens 500 --micro-batch 16 --batch 16 \
    --steps 1 --beta 0.1 --threads 1 -o "$W/grpo.tar" --metrics /dev/null)"
echo "distill-logits $(rss ds-distill train --config "$ROOT/recipes/student-tiny.json" --tokenizer "$W/tok.json" \
    --data "$W/tasks.jsonl" --template plain --seq-len 512 --batch 8 --steps 1 --eval-every 0 \
    --logits -t "$W/base.tar" --threads 1 -o "$W/student.tar" --metrics /dev/null)"
