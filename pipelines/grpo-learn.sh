#!/usr/bin/env bash
# grpo-learn.sh [OUT] — does GRPO learn? "Reply with the larger of two numbers", held out.
#   1. a corpus of worked answers of which 40% pick the smaller number (ds-synth --wrong-frac 0.4)
#   2. a tiny DeepSeek-V3 model (MLA + MoE + MTP) pretrained on it: the base answers right ~60%
#   3. ds-grpo with the accuracy reward; held-out pass@1 every 5 steps (R1's evaluation sampling:
#      temperature 0.6, top-p 0.95, 4 samples per problem)
# Stages whose pretrained model is already in OUT are not redone.
#   4. distillation: the RL model samples the training prompts; a dense qwen2 student pretrained
#      on the same corpus is fine-tuned for the same steps on (a) the samples graded correct
#      (rejection sampling) and (b) all samples, and both are evaluated on the held-out problems.
# Leaves OUT/summary.json, OUT/grpo.png, and the stage files.
set -euo pipefail
OUT=${1:-out/grpo-learn}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export PATH="${DS_BIN:-$ROOT/bin}:$PATH"
T=${THREADS:-2}
PRE=${PRE_STEPS:-1500}   # pretraining steps of the base and the student
mkdir -p "$OUT"
cd "$OUT"
step() { printf '== %s\n' "$*" >&2; }

step "data"
ds-synth problems --task larger --split test --n 200 --seed 2 -o test.jsonl
ds-synth problems --task larger --split train --n 3000 --seed 3 -o train.jsonl
ds-synth corpus --task larger --n 20000 --wrong-frac 0.4 --facts-frac 0 --seed 1 --exclude test.jsonl -o corpus.jsonl
ds-tokenize train --vocab-size 512 --special '<|endoftext|>' --pretokenizer digits --field text -o tok.json corpus.jsonl
ds-tokenize encode -t tok.json --jsonl --field text --eos '<|endoftext|>' -o corpus corpus.jsonl

step "pretrain the base (V3: MLA + MoE + MTP) and the student (dense qwen2)"
[ -s base.tar ] || ds-pretrain train --config "$ROOT/recipes/tiny-moe-rope16.json" --data corpus-000000.tar --tokenizer tok.json \
    --seq-len 128 --batch 16 --steps "$PRE" --lr 3e-3 --eval-every 0 --threads "$T" -o base.tar --metrics base.jsonl
[ -s student-base.tar ] || ds-pretrain train --config "$ROOT/recipes/student-tiny.json" --data corpus-000000.tar --tokenizer tok.json \
    --seq-len 128 --batch 16 --steps "$PRE" --lr 3e-3 --eval-every 0 --threads "$T" -o student-base.tar --metrics student-base.jsonl

evaluate() { # MODEL NAME
    ds-eval -m "$1" --task math --extract answer --problems test.jsonl --template r1 --n 4 --temperature 0.6 \
        --top-p 0.95 --max-tokens 24 --k 1,4 --summary "$2.eval.json" > /dev/null
}
step "GRPO"
evaluate base.tar base
ds-grpo train -m base.tar --tasks train.jsonl --eval test.jsonl --eval-every 5 --eval-samples 4 \
    --eval-temperature 0.6 --extract answer --prompts-per-step 16 --group-size 8 --max-tokens 24 \
    --lr 2e-4 --beta 0.001 --steps 100 --batch 64 --micro-batch 32 --threads "$T" -o rl.tar --metrics rl.jsonl
evaluate rl.tar rl
"$ROOT/pipelines/plot-grpo.sh" rl.jsonl grpo.png "GRPO on 'reply with the larger number'"

step "distillation: rejection-sampled vs unfiltered teacher samples"
head -1000 train.jsonl > distill-prompts.jsonl
ds-distill sample -m rl.tar --task math --extract answer --problems distill-prompts.jsonl --n 2 \
    --temperature 1 --top-p 1 --max-tokens 24 --keep all -o all.jsonl --summary all.sample.json
ds-distill sample -m rl.tar --task math --extract answer --problems distill-prompts.jsonl --n 2 \
    --temperature 1 --top-p 1 --max-tokens 24 --keep correct -o kept.jsonl --summary kept.sample.json
for set in kept all; do
    ds-distill train -m student-base.tar --data $set.jsonl --template r1 --seq-len 128 --batch 16 --steps 60 \
        --lr 1e-3 --eval-every 0 --threads "$T" -o student-$set.tar --metrics student-$set.jsonl
    evaluate student-$set.tar student-$set
done
evaluate student-base.tar student-base

jq -n --slurpfile rl rl.jsonl --slurpfile b base.eval.json --slurpfile r rl.eval.json \
    --slurpfile sb student-base.eval.json --slurpfile sk student-kept.eval.json --slurpfile sa student-all.eval.json \
    --slurpfile ka kept.sample.json --slurpfile aa all.sample.json '{
      base_pass1: $b[0]["pass@1"], rl_pass1: $r[0]["pass@1"],
      rl_eval_curve: [$rl[] | select(has("eval_pass@1")) | {step: (.step - 1), pass1: .["eval_pass@1"]}],
      distill: {teacher_samples: $aa[0].samples, kept_correct: $ka[0].kept,
                student_base_pass1: $sb[0]["pass@1"], student_on_kept_pass1: $sk[0]["pass@1"],
                student_on_all_pass1: $sa[0]["pass@1"]}
    }' > summary.json.tmp
mv summary.json.tmp summary.json
cat summary.json
