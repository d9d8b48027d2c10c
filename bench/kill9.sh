#!/usr/bin/env bash
# kill9.sh [TRIALS] [WORKDIR] — kill -9 trials: starts ds-tokenize encode, ds-pretrain train,
# ds-sft train and ds-grpo train (tiny settings, frequent checkpoints) and kills each TRIALS times
# (default 20) at a random point of its run (uniform over 0..1.1x the uninterrupted run's time,
# from --seed-like KILL9_SEED, default 1). After each kill:
#   encode:  the output is either refused by ds-pretrain or complete (byte-identical shards);
#            running encode again gives the uninterrupted shards and leaves no temp file.
#   train:   a checkpoint left behind is readable (ds-pretrain info); resuming from it (or starting
#            over when there is none) ends byte-identical to the uninterrupted run's checkpoint,
#            and leaves no temp file.
# Prints one line per trial ("ok"/"not ok") and a summary table per tool (markdown), exits 1 when
# any trial failed. DS_BIN: the tools (default bin/); DS_DATA: ../shared/data; KILL9_TOOLS: which
# of "encode pretrain sft grpo" to try (default all).
set -u -o pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
trials="${1:-20}"
work="${2:-$(mktemp -d)}"
bin="${DS_BIN:-$root/bin}"
data="${DS_DATA:-$root/../shared/data}"
seed="${KILL9_SEED:-1}"
PATH="$bin:$PATH"
mkdir -p "$work"
[ -r "$data/tinyshakespeare/input.txt" ] || { echo "kill9: missing $data/tinyshakespeare/input.txt" >&2; exit 1; }

# ---- inputs: a tokenizer, a text dataset, a base model, SFT and GRPO records --------------------
d="$work/in"
mkdir -p "$d"
head -c 100000 "$data/tinyshakespeare/input.txt" > "$d/text.txt"
# every line a document, so encode writes its shards one after another while it runs
head -c 1000000 "$data/tinyshakespeare/input.txt" | jq -R -c '{text: .}' > "$d/big.jsonl"
awk 'BEGIN { srand(1); for (i = 0; i < 300; i++) { a = int(rand() * 10); b = int(rand() * 10);
    printf "{\"id\":\"q%d\",\"task\":\"math\",\"prompt\":\"What is %d+%d?\",\"completion\":\" <answer>%d</answer>\",\"answer\":\"%d\"}\n",
        i, a, b, a + b, a + b } }' > "$d/sft.jsonl"
ds-tokenize train --vocab-size 512 --special '<|endoftext|>' -o "$d/tok.json" "$d/text.txt" "$d/sft.jsonl" || exit 1
ds-tokenize encode -t "$d/tok.json" -o "$d/text" "$d/text.txt" || exit 1
ds-pretrain train --config "$root/recipes/tiny-moe.json" --data "$d/text-000000.tar" --tokenizer "$d/tok.json" \
    --seq-len 32 --batch 4 --steps 20 --eval-every 0 --threads 1 --peak-gflops 10 -o "$d/base.tar" \
    --metrics /dev/null || exit 1

ENCODE=(ds-tokenize encode -t "$d/tok.json" --jsonl --shard-tokens 20000 "$d/big.jsonl")
PRETRAIN=(ds-pretrain train --config "$root/recipes/tiny-moe.json" --data "$d/text-000000.tar"
    --tokenizer "$d/tok.json" --seq-len 32 --batch 4 --steps 60 --ckpt-every 3 --eval-every 0
    --threads 1 --peak-gflops 10 --metrics /dev/null)
SFT=(ds-sft train -m "$d/base.tar" --data "$d/sft.jsonl" --template r1 --seq-len 256 --batch 2 --steps 16
    --ckpt-every 2 --warmup 2 --threads 1 --peak-gflops 10 --metrics /dev/null)
GRPO=(ds-grpo train -m "$d/base.tar" --tasks "$d/sft.jsonl" --template plain --prompts-per-step 2
    --group-size 4 --max-tokens 8 --micro-batch 8 --batch 8 --steps 12 --ckpt-every 2 --extract answer
    --threads 1 --metrics /dev/null)

# a random delay in seconds for trial i of tool t: uniform over 0..1.1 x the reference time
delay() { awk -v s="$seed" -v i="$1" -v t="$2" -v ref="$3" 'BEGIN { srand(s * 100003 + i * 101 + t); printf "%.3f", rand() * 1.1 * ref }'; }
now() { date +%s.%N; }
temps() { find "$1" -name '*.tmp.*' | wc -l; }

fails=0
declare -A summary

# encode_trials: kill encode, check what ds-pretrain makes of the output, then encode again
encode_trials() {
    local ref="$work/encode-ref" t0 t1 reft
    rm -rf "$ref" && mkdir -p "$ref"
    t0=$(now); "${ENCODE[@]}" -o "$ref/train" > /dev/null 2>&1 || { echo "not ok - encode reference failed"; fails=$((fails + 1)); return 1; }
    t1=$(now); reft=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
    local refused=0 complete=0 accepted_partial=0 killed=0 left=0 rerun_bad=0
    for i in $(seq 1 "$trials"); do
        local w="$work/encode-$i" wait_s status verdict
        rm -rf "$w" && mkdir -p "$w"
        wait_s=$(delay "$i" 1 "$reft")
        "${ENCODE[@]}" -o "$w/train" > /dev/null 2>&1 &
        local pid=$!
        sleep "$wait_s"
        kill -9 "$pid" 2> /dev/null
        wait "$pid" 2> /dev/null
        status=$?
        [ "$status" -eq 137 ] && killed=$((killed + 1))
        local nshards
        nshards=$(ls "$w" | grep -c '^train-[0-9]*\.tar$')
        if [ "$nshards" -eq 0 ]; then
            verdict="no shard"
            refused=$((refused + 1))
        elif ds-pretrain train --config "$root/recipes/tiny-moe.json" --data "$w" --tokenizer "$d/tok.json" \
                --seq-len 32 --batch 2 --steps 1 --eval-every 0 --threads 1 --peak-gflops 10 \
                --metrics /dev/null -o "$w/probe.tar" > /dev/null 2>&1; then
            rm -f "$w/probe.tar"
            if diff -q <(cd "$ref" && ls) <(cd "$w" && ls | grep -v '\.tmp\.') > /dev/null && \
               (cd "$ref" && for f in *; do cmp -s "$f" "$w/$f" || exit 1; done); then
                verdict="complete"; complete=$((complete + 1))
            else
                verdict="PARTIAL DATASET ACCEPTED ($nshards shards)"; accepted_partial=$((accepted_partial + 1))
            fi
        else
            verdict="refused by ds-pretrain ($nshards shards)"; refused=$((refused + 1))
        fi
        # the next run over the same output: the uninterrupted shards, no temp left
        local bad=""
        "${ENCODE[@]}" -o "$w/train" > /dev/null 2>&1 || bad="rerun failed"
        [ "$(temps "$w")" -eq 0 ] || { bad="$bad temps left"; left=$((left + 1)); }
        (cd "$ref" && for f in *; do cmp -s "$f" "$w/$f" || exit 1; done) || bad="$bad rerun differs"
        [ -z "$bad" ] || rerun_bad=$((rerun_bad + 1))
        if [[ "$verdict" == PARTIAL* ]] || [ -n "$bad" ]; then
            fails=$((fails + 1)); echo "not ok - encode trial $i: kill at ${wait_s}s (exit $status): $verdict $bad"
        else
            echo "ok - encode trial $i: kill at ${wait_s}s (exit $status): $verdict"
        fi
        rm -rf "$w"
    done
    summary[encode]="| ds-tokenize encode | $trials | $killed | ${reft}s | refused $refused, complete $complete, **partial accepted $accepted_partial** | rerun wrong $rerun_bad, temps left $left |"
}

# train_trials NAME ARRAY: kill a training run, resume from what it left, compare with the reference
train_trials() {
    local name="$1"
    local -n cmd="$2"
    local ref="$work/$name-ref.tar" t0 t1 reft
    rm -f "$ref"
    t0=$(now); "${cmd[@]}" -o "$ref" > /dev/null 2>&1 || { echo "not ok - $name reference failed"; fails=$((fails + 1)); return 1; }
    t1=$(now); reft=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
    local resumed=0 fresh=0 finished=0 unreadable=0 differ=0 left=0 killed=0
    for i in $(seq 1 "$trials"); do
        local w="$work/$name-$i" wait_s status how bad=""
        rm -rf "$w" && mkdir -p "$w"
        wait_s=$(delay "$i" 2 "$reft")
        "${cmd[@]}" -o "$w/ck.tar" > /dev/null 2>&1 &
        local pid=$!
        sleep "$wait_s"
        kill -9 "$pid" 2> /dev/null
        wait "$pid" 2> /dev/null
        status=$?
        [ "$status" -eq 137 ] && killed=$((killed + 1))
        if [ "$status" -eq 0 ]; then
            how="finished"; finished=$((finished + 1))
        elif [ -e "$w/ck.tar" ]; then
            if ds-pretrain info "$w/ck.tar" > /dev/null 2>&1; then
                how="resumed from step $(tar -xOf "$w/ck.tar" state.json | jq .step)"; resumed=$((resumed + 1))
                "${cmd[@]}" --resume "$w/ck.tar" -o "$w/ck.tar" > "$w/resume.log" 2>&1 || bad="resume failed: $(tail -n 1 "$w/resume.log")"
            else
                how="UNREADABLE CHECKPOINT"; unreadable=$((unreadable + 1)); bad="unreadable"
            fi
        else
            how="no checkpoint yet, started over"; fresh=$((fresh + 1))
            "${cmd[@]}" -o "$w/ck.tar" > /dev/null 2>&1 || bad="restart failed"
        fi
        cmp -s "$w/ck.tar" "$ref" || { bad="$bad differs from the uninterrupted run"; differ=$((differ + 1)); }
        [ "$(temps "$w")" -eq 0 ] || { bad="$bad temps left"; left=$((left + 1)); }
        if [ -n "$bad" ]; then
            fails=$((fails + 1)); echo "not ok - $name trial $i: kill at ${wait_s}s (exit $status): $how: $bad"
        else
            echo "ok - $name trial $i: kill at ${wait_s}s (exit $status): $how, bit-identical"
        fi
        rm -rf "$w"
    done
    summary[$name]="| ${cmd[0]} ${cmd[1]} | $trials | $killed | ${reft}s | resumed $resumed, started over $fresh, finished $finished | unreadable $unreadable, differ $differ, temps left $left |"
}

tools="${KILL9_TOOLS:-encode pretrain sft grpo}"
for k in $tools; do
    case "$k" in
        encode) encode_trials ;;
        pretrain) train_trials pretrain PRETRAIN ;;
        sft) train_trials sft SFT ;;
        grpo) train_trials grpo GRPO ;;
        *) echo "kill9: unknown tool $k" >&2; exit 2 ;;
    esac
done

echo
echo "| tool | trials | killed | uninterrupted run | after the kill | failures |"
echo "|---|---|---|---|---|---|"
for k in $tools; do echo "${summary[$k]:-| $k | (reference run failed) |}"; done
echo
echo "$fails failed trials"
[ "$fails" -eq 0 ]
