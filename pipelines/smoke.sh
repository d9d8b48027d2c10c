#!/usr/bin/env bash
# smoke.sh [OUT] — every ds tool once, on a tiny model, in a few minutes on 2 cores:
#   synth → tokenize → pretrain → infer → eval → sft (cold start) → grpo → distill → eval.
# It checks that the stages fit together (each reads the previous one's files), not accuracy:
# the models are far too small and short-trained to solve Countdown. Leaves OUT/summary.json.
set -euo pipefail
OUT=${1:-out/smoke}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export PATH="${DS_BIN:-$ROOT/bin}:$PATH"
T=${THREADS:-2}
mkdir -p "$OUT"
step() { printf '== %s\n' "$*" >&2; }

step "synth: corpus, cold-start traces, train and held-out problems"
ds-synth corpus --task countdown --n 3000 --seed 1 -o "$OUT/corpus.jsonl"
ds-synth sft --task countdown --n 200 --seed 2 -o "$OUT/sft.jsonl"
ds-synth problems --task countdown --split train --n 256 --seed 3 -o "$OUT/train.jsonl"
ds-synth problems --task countdown --split test --n 16 --seed 4 -o "$OUT/test.jsonl"

step "tokenize"
ds-tokenize train --vocab-size 512 --special '<|endoftext|>' --pretokenizer digits --field text \
    -o "$OUT/tok.json" "$OUT/corpus.jsonl"
ds-tokenize encode -t "$OUT/tok.json" --jsonl --field text --eos '<|endoftext|>' -o "$OUT/shard" "$OUT/corpus.jsonl"

step "pretrain (MLA + MoE + MTP)"
ds-pretrain train --config "$ROOT/recipes/tiny-moe.json" --data "$OUT/shard-*.tar" --tokenizer "$OUT/tok.json" \
    --seq-len 256 --batch 8 --steps 60 --lr 3e-3 --eval-every 0 --threads "$T" \
    -o "$OUT/base.tar" --metrics "$OUT/pretrain.jsonl"

step "infer | eval: the base model on held-out problems"
ds-eval prompts --task countdown --problems "$OUT/test.jsonl" --template r1 \
    | ds-infer generate -m "$OUT/base.tar" --n 4 --max-tokens 64 --temperature 1 --seed 5 --threads "$T" \
    > "$OUT/base.completions.jsonl"
ds-eval --task countdown --problems "$OUT/test.jsonl" "$OUT/base.completions.jsonl" \
    --k 1,4 --summary "$OUT/base.eval.json" > /dev/null

step "sft: cold start on readable traces"
ds-sft train -m "$OUT/base.tar" --data "$OUT/sft.jsonl" --template r1 --seq-len 768 --batch 2 --steps 20 \
    --lr 1e-3 --eval-every 0 --threads "$T" -o "$OUT/sft.tar" --metrics "$OUT/sft.jsonl.metrics"

step "grpo: reasoning RL with the Countdown reward"
ds-grpo train -m "$OUT/sft.tar" --tasks "$OUT/train.jsonl" --eval "$OUT/test.jsonl" --eval-every 2 \
    --eval-samples 2 --prompts-per-step 4 --group-size 4 --max-tokens 64 --steps 3 --lr 1e-4 \
    --beta 0.04 --threads "$T" -o "$OUT/grpo.tar" --metrics "$OUT/grpo.jsonl"

step "distill: sample the RL model, train a dense student"
ds-distill sample -m "$OUT/grpo.tar" --task countdown --problems "$OUT/train.jsonl" --n 2 --max-tokens 64 \
    --keep all --threads "$T" -o "$OUT/distill.jsonl" --summary "$OUT/distill.sample.json"
ds-distill train --config "$ROOT/recipes/student-tiny.json" --tokenizer "$OUT/tok.json" \
    --data "$OUT/distill.jsonl" --template r1 --seq-len 768 --batch 2 --steps 20 --lr 3e-3 \
    --eval-every 0 --threads "$T" -o "$OUT/student.tar" --metrics "$OUT/student.jsonl"

step "eval: the student"
ds-eval -m "$OUT/student.tar" --task countdown --problems "$OUT/test.jsonl" --template r1 --n 2 \
    --max-tokens 64 --k 1,2 --summary "$OUT/student.eval.json" > /dev/null

step "summary"
jq -n --slurpfile pre "$OUT/pretrain.jsonl" --slurpfile sft "$OUT/sft.jsonl.metrics" \
    --slurpfile grpo "$OUT/grpo.jsonl" --slurpfile dist "$OUT/student.jsonl" \
    --slurpfile base "$OUT/base.eval.json" --slurpfile stud "$OUT/student.eval.json" \
    --slurpfile kept "$OUT/distill.sample.json" '{
      pretrain: {steps: ($pre | length), first_loss: $pre[0].loss, last_loss: $pre[-1].loss},
      base_eval: {pass1: $base[0]["pass@1"], format_rate: $base[0].format_rate},
      sft: {steps: ($sft | length), first_loss: $sft[0].loss, last_loss: $sft[-1].loss},
      grpo: {steps: ($grpo | length), reward_mean: [$grpo[].reward_mean], eval_pass1: ($grpo[-1]["eval_pass@1"])},
      distill: {samples: $kept[0].samples, kept: $kept[0].kept, steps: ($dist | length), last_loss: $dist[-1].loss},
      student_eval: {pass1: $stud[0]["pass@1"], format_rate: $stud[0].format_rate}
    }' > "$OUT/summary.json.tmp"
mv "$OUT/summary.json.tmp" "$OUT/summary.json"
cat "$OUT/summary.json"
