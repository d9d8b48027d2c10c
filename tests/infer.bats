#!/usr/bin/env bats
# ds-infer: the engine against the training forward, cache variants, batching, MTP speculation,
# scoring, pipes.
load helpers

setup_file() {
    local d="$BATS_FILE_TMPDIR"
    shakespeare_shards "$d" 300000
    ds-pretrain train --config "$ROOT/recipes/tiny-moe.json" --data "$d/train-000000.tar" \
        --tokenizer "$d/tok.json" --seq-len 64 --batch 8 --steps 120 --lr 3e-3 --eval-every 0 \
        --threads 1 --peak-gflops 10 -o "$d/ck.tar" --metrics /dev/null
    for i in $(seq 1 12); do
        printf '{"id":"p%d","prompt":"%s","extra":%d}\n' "$i" "$(grep -v '^$' "$d/train.txt" | sed -n "$((i * 7))p" | tr -d '"\\')" "$i"
    done > "$d/prompts.jsonl"
}

gen() { ds-infer generate -m "$BATS_FILE_TMPDIR/ck.tar" --max-tokens 24 "$@" "$BATS_FILE_TMPDIR/prompts.jsonl"; }
# the sample-defining fields, one line per sample, sorted
key() { jq -c '[.id, .sample, .completion, .finish_reason, .n_tokens]' | sort; }

@test "infer unit: engine logits match the training forward (absorbed, naive, GQA, MTP rows)" {
    unit infer absorbed_matches_training naive_matches_training gqa_matches_training
}
@test "infer unit: a sequence's logits are bit-identical alone or in a batch of 16" { unit infer batch_independent; }
@test "infer unit: greedy tokens equal across naive/absorbed, speculative, batch sizes" { unit infer greedy_equal_across_modes; }
@test "infer unit: an engine not refreshed after the weights changed refuses to run" { unit infer stale_engine_refused; }
@test "infer unit: rowgemm's AVX-512 and 8-lane kernels give the same bits (400 shapes)" { unit infer rowgemm_kernels_agree; }
@test "rollout unit: a sample's stream is sha256 of its id; GRPO step seeds" { unit rollout stream_definition step_seeds; }
@test "rollout unit: rollout_run draws what generate draws for (seed, id, index), for any slot count" { unit rollout run_matches_requests; }
@test "rollout unit: pass@1, pass@k and maj@k means over problems" { unit rollout passk_means; }

@test "infer: greedy output identical with absorbed and naive caches; latent cache is smaller" {
    local t="$BATS_TEST_TMPDIR"
    gen --temperature 0 --stats "$t/a.json" | key > "$t/a"
    gen --temperature 0 --attn naive --stats "$t/n.json" | key > "$t/n"
    diff "$t/a" "$t/n"
    [ "$(wc -l < "$t/a")" -eq 12 ]
    a=$(jq .cache_bytes_per_token "$t/a.json"); n=$(jq .cache_bytes_per_token "$t/n.json")
    [ "$a" -lt "$n" ]
}

@test "infer: MTP speculative decoding gives the plain greedy output and reports acceptance" {
    local t="$BATS_TEST_TMPDIR"
    gen --temperature 0 | key > "$t/plain"
    gen --temperature 0 --speculative mtp --stats "$t/s.json" | key > "$t/spec"
    diff "$t/plain" "$t/spec"
    jq -e '.drafted > 0 and .accepted <= .drafted and .acceptance >= 0' "$t/s.json"
    run gen --temperature 1 --speculative mtp
    [ "$status" -eq 2 ]
}

@test "infer: samples do not depend on batch size (temperature 1, top-p, 3 samples each)" {
    local t="$BATS_TEST_TMPDIR"
    gen --temperature 1 --top-p 0.9 --n 3 --seed 7 --batch 1 | key > "$t/b1"
    gen --temperature 1 --top-p 0.9 --n 3 --seed 7 --batch 16 | key > "$t/b16"
    diff "$t/b1" "$t/b16"
    [ "$(wc -l < "$t/b1")" -eq 36 ]
    gen --temperature 1 --n 3 --seed 8 --batch 16 | key > "$t/other"
    ! diff -q "$t/b1" "$t/other"
}

@test "infer: samples of one prompt share its prefill and equal unshared samples (MTP too)" {
    local t="$BATS_TEST_TMPDIR"
    # distinct prompts (equal prompts of different records share too)
    jq -c '.prompt = "\(.id): \(.prompt)"' "$BATS_FILE_TMPDIR/prompts.jsonl" > "$t/p.jsonl"
    gen() { ds-infer generate -m "$BATS_FILE_TMPDIR/ck.tar" --max-tokens 24 "$@" "$t/p.jsonl"; }
    gen --temperature 1 --n 5 --seed 3 --batch 64 --ordered --ids --stats "$t/s1" | jq -c 'del(.time)' > "$t/shared"
    gen --temperature 1 --n 5 --seed 3 --batch 7 --ordered --ids --stats "$t/s7" | jq -c 'del(.time)' > "$t/some"
    gen --temperature 1 --n 5 --seed 3 --batch 64 --ordered --ids --no-prefix-share --stats "$t/s0" |
        jq -c 'del(.time)' > "$t/alone"
    diff "$t/shared" "$t/alone"
    diff "$t/some" "$t/alone"
    # all 60 samples fit at once: four of every five copy all but the last prompt token
    local want
    want=$(jq -s 'map(.n_prompt_tokens - 1) | add * 4 / 5' "$t/shared")
    jq -e ".prefix_shared_tokens == $want" "$t/s1"
    # 7 slots: a group is split over refills; a later sample shares with any running one of its group
    jq -e ".prefix_shared_tokens > 0 and .prefix_shared_tokens <= $want" "$t/s7"
    jq -e '.prefix_shared_tokens == 0' "$t/s0"
    # greedy MTP speculation over shared prefixes: the MTP block's cache is shared too
    gen --temperature 0 --n 3 --speculative mtp --ordered | jq -c 'del(.time)' > "$t/spec"
    gen --temperature 0 --n 3 --speculative mtp --ordered --no-prefix-share | jq -c 'del(.time)' > "$t/spec0"
    diff "$t/spec" "$t/spec0"
    [ "$(wc -l < "$t/spec")" -eq 36 ]
}

@test "infer: parallel --pipe -k with --ordered is identical to one process" {
    local t="$BATS_TEST_TMPDIR" m="$BATS_FILE_TMPDIR/ck.tar"
    ds-infer generate -m "$m" --max-tokens 16 --temperature 1 --seed 3 --ordered < "$BATS_FILE_TMPDIR/prompts.jsonl" \
        | jq -c 'del(.time)' > "$t/one"
    parallel --pipe -k -N 4 ds-infer generate -m "$m" --max-tokens 16 --temperature 1 --seed 3 --ordered \
        < "$BATS_FILE_TMPDIR/prompts.jsonl" | jq -c 'del(.time)' > "$t/many"
    cmp "$t/one" "$t/many"
    head -1 "$t/one" | jq -e '.id == "p1" and .sample == 0 and .extra == 1'
}

@test "infer: stop strings, token ids and logprobs in the output" {
    local t="$BATS_TEST_TMPDIR"
    gen --temperature 0 --stop $'\n' --ids --logprobs --max-tokens 40 > "$t/o"
    jq -e 'select(.finish_reason == "stop") | .completion | contains("\n") | not' "$t/o" > /dev/null
    [ "$(jq -r .finish_reason "$t/o" | grep -c stop)" -ge 1 ]
    jq -e '(.token_ids | length) == .n_tokens and (.logprobs | length) == .n_tokens and
           ((.logprobs | add) - .sum_logprob | fabs) < 1e-3' "$t/o" > /dev/null
}

@test "infer: score gives n-1 log-probabilities, also from a folder without a tokenizer" {
    local t="$BATS_TEST_TMPDIR"
    ds-pretrain export "$BATS_FILE_TMPDIR/ck.tar" "$t/hf"
    rm "$t/hf/tokenizer.json"
    echo '{"id":"x","ids":[1,2,3,4,5,6,7,8,9,10]}' | ds-infer score -m "$t/hf" > "$t/s"
    jq -e '.id == "x" and (.logprobs | length) == 9 and all(.logprobs[]; . <= 0)' "$t/s"
    echo '{"id":"y","text":"ROMEO: hello"}' | ds-infer score -m "$BATS_FILE_TMPDIR/ck.tar" | jq -e '.logprobs | length > 1'
    run ds-infer score -m "$t/hf" <<< '{"id":"z","ids":[1,99999]}'
    [ "$status" -eq 1 ]
    assert_output --partial "<stdin>:1"
}

@test "infer: pipes into ds-eval; malformed input names file:line; --help/--version" {
    local t="$BATS_TEST_TMPDIR"
    gen --temperature 0 | ds-eval --task format --problems "$BATS_FILE_TMPDIR/prompts.jsonl" - --summary "$t/sum.json" > /dev/null
    jq -e '.n_samples == 12' "$t/sum.json"
    printf '{"id":"a","prompt":"x"}\n{oops\n' > "$t/bad.jsonl"
    run ds-infer generate -m "$BATS_FILE_TMPDIR/ck.tar" "$t/bad.jsonl"
    [ "$status" -eq 1 ]
    assert_output --partial "bad.jsonl:2"
    run ds-infer generate -m "$t/nope.tar"
    [ "$status" -eq 1 ]
    run ds-infer --version
    [ "$status" -eq 0 ]
    run ds-infer generate
    [ "$status" -eq 2 ]
}

@test "eval -m: ds-eval generates with a checkpoint and grades in one command" {
    local t="$BATS_TEST_TMPDIR"
    ds-eval -m "$BATS_FILE_TMPDIR/ck.tar" --task format --problems "$BATS_FILE_TMPDIR/prompts.jsonl" \
        --n 2 --max-tokens 8 --k 1,2 --summary "$t/s.json" > "$t/per.jsonl"
    jq -e '.n_samples == 24 and .n_problems == 12 and has("pass@2")' "$t/s.json"
    [ "$(wc -l < "$t/per.jsonl")" -eq 24 ]
    run ds-eval -m "$BATS_FILE_TMPDIR/ck.tar" --task format --problems "$BATS_FILE_TMPDIR/prompts.jsonl" x.jsonl
    [ "$status" -eq 2 ]
}

@test "infer: samples do not depend on the thread count" {
    local t="$BATS_TEST_TMPDIR"
    gen --temperature 1 --n 2 --seed 4 --threads 1 | key > "$t/t1"
    gen --temperature 1 --n 2 --seed 4 --threads 2 | key > "$t/t2"
    diff "$t/t1" "$t/t2"
    gen --temperature 0 --attn naive --threads 1 | key > "$t/n1"
    gen --temperature 0 --attn naive --threads 2 | key > "$t/n2"
    diff "$t/n1" "$t/n2"
}

@test "infer: score has no length limit of its own; a prefix scores as in the long record" {
    local t="$BATS_TEST_TMPDIR"
    jq -nc '{id: "long", ids: [range(5000) | (. * 7) % 500 + 1]}' > "$t/long.jsonl"
    jq -nc '{id: "short", ids: [range(100) | (. * 7) % 500 + 1]}' > "$t/short.jsonl"
    ds-infer score -m "$BATS_FILE_TMPDIR/ck.tar" "$t/long.jsonl" > "$t/long.out"
    ds-infer score -m "$BATS_FILE_TMPDIR/ck.tar" "$t/short.jsonl" > "$t/short.out"
    jq -e '.logprobs | length == 4999 and all(. <= 0)' "$t/long.out"
    diff <(jq -c '.logprobs[:99]' "$t/long.out") <(jq -c '.logprobs' "$t/short.out")
}

@test "every tool that opens a model folder names its unknown config.json keys in one warning each" {
    local d="$BATS_FILE_TMPDIR" t="$BATS_TEST_TMPDIR"
    ds-pretrain export "$d/ck.tar" "$t/m"
    jq '. + {"foo_unknown": 1}' "$t/m/config.json" > "$t/c" && mv "$t/c" "$t/m/config.json"
    want="warning: $t/m: config.json: foo_unknown: unknown key, ignored"
    head -2 "$d/prompts.jsonl" > "$t/p.jsonl"
    ds-infer generate -m "$t/m" --max-tokens 2 "$t/p.jsonl" > /dev/null 2> "$t/err"
    run grep -c "foo_unknown" "$t/err"
    [ "$output" = 1 ]
    grep -qxF "ds-infer: $want" "$t/err"
    ds-eval -m "$t/m" --task format --problems "$t/p.jsonl" --n 1 --max-tokens 2 > /dev/null 2> "$t/err"
    grep -qxF "ds-eval: $want" "$t/err"
}
