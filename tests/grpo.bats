#!/usr/bin/env bats
# ds-grpo: the GRPO objective (unit), the RL loop's metrics, checkpoints and exact resume.
# The reward is whether the sampled digit is the one asked for.
load helpers

setup_file() {
    local d="$BATS_FILE_TMPDIR"
    # "Say 7" answered with 7 six times in ten, else a random digit: a base model that is right
    # about 64% of the time, so rewards vary within groups.
    awk 'BEGIN { srand(1); for (i = 0; i < 3000; i++) { d = int(rand() * 10); a = rand() < 0.6 ? d : int(rand() * 10);
        printf "User: Say %d. Assistant: <answer> %d </answer><|endoftext|>\n", d, a } }' > "$d/corpus.txt"
    ds-tokenize train --vocab-size 300 --special '<|endoftext|>' --pretokenizer digits -o "$d/tok.json" "$d/corpus.txt"
    ds-tokenize encode -t "$d/tok.json" --allow-special -o "$d/train" "$d/corpus.txt"
    sed 's/"vocab_size": 512/"vocab_size": 300/' "$ROOT/recipes/tiny-moe.json" > "$d/cfg.json"
    ds-pretrain train --config "$d/cfg.json" --data "$d/train-000000.tar" \
        --tokenizer "$d/tok.json" --seq-len 64 --batch 8 --steps 200 --lr 3e-3 --eval-every 0 \
        --threads 1 --peak-gflops 10 -o "$d/base.tar" --metrics /dev/null
    for i in $(seq 1 16); do
        printf '{"id":"q%d","task":"math","prompt":"User: Say %d. Assistant:","answer":"%d"}\n' "$i" $((i % 10)) $((i % 10))
    done > "$d/tasks.jsonl"
}

grpo() {
    ds-grpo train -m "$BATS_FILE_TMPDIR/base.tar" --tasks "$BATS_FILE_TMPDIR/tasks.jsonl" --template plain \
        --prompts-per-step 4 --group-size 4 --max-tokens 16 --micro-batch 8 --batch 8 --lr 3e-3 \
        --extract answer --threads 1 "$@"
}
# metrics without wall-clock fields
stable() { jq -c 'del(.time, .rollout_s, .update_s, .rollout_tokens_per_s)' "$1"; }

@test "grpo unit: gradient w.r.t. log π at ratio 1 is A + β(π_ref/π − 1)" { unit grpo gradient_at_ratio_one; }
@test "grpo unit: gradient matches finite differences for every aggregation" { unit grpo finite_differences; }
@test "grpo unit: clipping zeroes the gradient only on the clipped side" { unit grpo clipping; }
@test "grpo unit: each loss aggregation equals its hand-computed value" { unit grpo aggregations; }
@test "grpo unit: group-normalised advantages; all-equal groups get 0" { unit grpo advantages; }

@test "grpo: a run reports every metric, moves the policy and leaves a checkpoint with its reference" {
    local t="$BATS_TEST_TMPDIR"
    grpo --steps 3 --beta 0.1 -o "$t/rl.tar" --metrics "$t/m.jsonl" \
        --eval "$BATS_FILE_TMPDIR/tasks.jsonl" --eval-every 2 --eval-samples 2
    [ "$(wc -l < "$t/m.jsonl")" -eq 3 ]
    for k in reward_mean reward_std accuracy format_rate response_length_mean response_length_max \
             kl clip_fraction entropy all_equal_groups rollout_s update_s rollout_tokens_per_s grad_norm; do
        jq -e "has(\"$k\")" "$t/m.jsonl" > /dev/null
    done
    jq -s -e 'map(.grad_norm) | max > 0' "$t/m.jsonl"
    jq -s -e '.[2].kl > 0' "$t/m.jsonl"                      # the policy left the reference
    jq -s -e '.[0] | has("eval_pass@1") and has("eval_pass@2")' "$t/m.jsonl"
    jq -s -e '.[2] | has("eval_pass@1")' "$t/m.jsonl"        # and at the end
    tar -tf "$t/rl.tar" | grep -qx reference.safetensors
    ds-infer generate -m "$t/rl.tar" --max-tokens 4 < "$BATS_FILE_TMPDIR/tasks.jsonl" | jq -e .completion > /dev/null
}

@test "grpo: the held-out evaluation samples what ds-eval -m samples for the seed" {
    local t="$BATS_TEST_TMPDIR" d="$BATS_FILE_TMPDIR"
    # step 1 is evaluated before its update (and is not the last step, evaluated after): the base
    # model, sampled under --seed
    grpo --steps 2 --seed 7 --eval "$d/tasks.jsonl" --eval-every 2 --eval-samples 4 --eval-temperature 1 \
        -o "$t/rl.tar" --metrics "$t/m.jsonl"
    ds-eval -m "$d/base.tar" --task math --extract answer --problems "$d/tasks.jsonl" --template plain \
        --n 4 --temperature 1 --top-p 1 --max-tokens 16 --seed 7 --k 4 -o /dev/null --summary "$t/s.json"
    head -1 "$t/m.jsonl" | jq -e --slurpfile s "$t/s.json" \
        '(.["eval_pass@1"] - $s[0]["pass@1"] | fabs) < 1e-9 and (.["eval_pass@4"] - $s[0]["pass@4"] | fabs) < 1e-9'
}

@test "grpo: stopped at step 2 and resumed, or finished at 2 and extended, equals an uninterrupted run" {
    local t="$BATS_TEST_TMPDIR"
    grpo --steps 4 -o "$t/full.tar" --metrics "$t/full.jsonl"
    grpo --steps 4 -o "$t/part.tar" --metrics "$t/a.jsonl" --stop-at 2
    grpo --steps 4 -o "$t/part.tar" --metrics "$t/b.jsonl" --resume "$t/part.tar"
    diff <(stable "$t/full.jsonl") <(cat "$t/a.jsonl" "$t/b.jsonl" > "$t/ab.jsonl"; stable "$t/ab.jsonl")
    cmp "$t/full.tar" "$t/part.tar"
    # a finished 2-step run extended to 4 steps is the 4-step run (the final evaluation of the
    # 2-step run changes nothing)
    local ev=(--eval "$BATS_FILE_TMPDIR/tasks.jsonl" --eval-every 3 --eval-samples 1)
    grpo --steps 4 "${ev[@]}" -o "$t/long.tar" --metrics /dev/null
    grpo --steps 2 "${ev[@]}" -o "$t/short.tar" --metrics /dev/null
    grpo --steps 4 "${ev[@]}" -o "$t/short.tar" --metrics /dev/null --resume "$t/short.tar"
    cmp "$t/long.tar" "$t/short.tar"
}

@test "grpo: --beta 0 needs no reference; token-mean with 2 inner epochs moves the ratio" {
    local t="$BATS_TEST_TMPDIR"
    grpo --steps 2 --beta 0 --loss-agg token-mean --inner-epochs 2 -o "$t/x.tar" --metrics "$t/m.jsonl"
    ! tar -tf "$t/x.tar" | grep -q reference.safetensors
    jq -s -e 'map(.ratio_mean) | any(. != 1)' "$t/m.jsonl"
    grpo --steps 1 --loss-agg seq-mean-token-sum-norm --no-adv-norm --overlong mask -o "$t/y.tar" --metrics /dev/null
}

@test "grpo: usage errors and refused resumes" {
    local t="$BATS_TEST_TMPDIR"
    run grpo --steps 1 --loss-agg nope -o "$t/x.tar"
    [ "$status" -eq 2 ]
    run ds-grpo train -m "$BATS_FILE_TMPDIR/base.tar" -o "$t/x.tar"
    [ "$status" -eq 2 ]
    echo '{"id":"a","prompt":"x"}' > "$t/notask.jsonl"
    run ds-grpo train -m "$BATS_FILE_TMPDIR/base.tar" --tasks "$t/notask.jsonl" -o "$t/x.tar"
    [ "$status" -eq 1 ]
    assert_output --partial "notask.jsonl:1"
    grpo --steps 3 --stop-at 1 -o "$t/p.tar" --metrics /dev/null
    run grpo --steps 3 --lr 1e-3 --resume "$t/p.tar" -o "$t/p.tar" --metrics /dev/null
    [ "$status" -eq 1 ]
    assert_output --partial "'lr' differs"
    grpo --steps 2 -o "$t/q.tar" --metrics /dev/null
    run grpo --steps 1 --resume "$t/q.tar" -o "$t/q.tar" --metrics /dev/null
    [ "$status" -eq 1 ]
    assert_output --partial "'steps' differs"
}
