#!/usr/bin/env bats
# Progress on a terminal: every long-running tool draws a line with rate and ETA on stderr and
# leaves step lines; on a pipe or a file stderr stays quiet. The terminal is script(1)'s
# pseudo-terminal.
load helpers

setup_file() {
    command -v script > /dev/null || skip "script (util-linux) not installed"
    local d="$BATS_FILE_TMPDIR"
    awk 'BEGIN { srand(1); for (i = 0; i < 400; i++) { d = int(rand() * 10);
        printf "User: Say %d. Assistant: <answer> %d </answer><|endoftext|>\n", d, d } }' > "$d/corpus.txt"
    ds-tokenize train --vocab-size 300 --special '<|endoftext|>' --pretokenizer digits -o "$d/tok.json" "$d/corpus.txt"
    ds-tokenize encode -t "$d/tok.json" --allow-special -o "$d/train" "$d/corpus.txt"
    sed 's/"vocab_size": 512/"vocab_size": 300/' "$ROOT/recipes/tiny-moe.json" > "$d/cfg.json"
    ds-pretrain train --config "$d/cfg.json" --data "$d/train-000000.tar" --tokenizer "$d/tok.json" \
        --seq-len 32 --batch 4 --steps 10 --eval-every 0 --threads 1 -o "$d/base.tar" --metrics /dev/null
    for i in $(seq 1 6); do
        printf '{"id":"q%d","task":"math","prompt":"User: Say %d. Assistant:","answer":"%d","completion":" <answer> %d </answer>"}\n' \
            "$i" $((i % 10)) $((i % 10)) $((i % 10))
    done > "$d/tasks.jsonl"
}

# runs "$@" on a pseudo-terminal; stdout and stderr come back together, carriage returns as lines
on_tty() {
    local q
    printf -v q '%q ' "$@"
    script -qec "$q" /dev/null | tr '\r' '\n'
}

@test "progress: ds-pretrain and ds-sft show steps, rate and ETA, and step lines, on a terminal only" {
    local t="$BATS_TEST_TMPDIR" d="$BATS_FILE_TMPDIR"
    run on_tty ds-pretrain train --config "$d/cfg.json" --data "$d/train-000000.tar" --tokenizer "$d/tok.json" \
        --seq-len 32 --batch 4 --steps 20 --eval-every 0 --threads 1 -o "$t/p.tar" --metrics "$t/m.jsonl"
    [ "$status" -eq 0 ]
    assert_output --partial "ds-pretrain: 20/20 steps (100.0%)"
    assert_output --partial "ETA"
    assert_output --regexp "step 10/20  loss [0-9.]+  lr"
    assert_output --regexp "step 20/20  loss [0-9.]+  lr"
    [ "$(wc -l < "$t/m.jsonl")" -eq 20 ]
    # not a terminal: stderr says nothing
    ds-pretrain train --config "$d/cfg.json" --data "$d/train-000000.tar" --tokenizer "$d/tok.json" \
        --seq-len 32 --batch 4 --steps 5 --eval-every 0 --threads 1 -o "$t/q.tar" --metrics /dev/null 2> "$t/err"
    [ ! -s "$t/err" ]
    run on_tty ds-sft train -m "$d/base.tar" --data "$d/tasks.jsonl" --template plain --seq-len 32 --batch 2 \
        --steps 4 --eval-every 0 --threads 1 -o "$t/s.tar" --metrics /dev/null
    [ "$status" -eq 0 ]
    assert_output --partial "ds-sft: 4/4 steps (100.0%)"
    assert_output --regexp "step 4/4  loss [0-9.]+"
}

@test "progress: a resumed run counts from where it stopped" {
    local t="$BATS_TEST_TMPDIR" d="$BATS_FILE_TMPDIR"
    a=(--config "$d/cfg.json" --data "$d/train-000000.tar" --tokenizer "$d/tok.json" --seq-len 32 --batch 4
       --steps 20 --eval-every 0 --threads 1 -o "$t/p.tar")
    ds-pretrain train "${a[@]}" --metrics /dev/null --stop-at 15
    run on_tty ds-pretrain train "${a[@]}" --metrics /dev/null --resume "$t/p.tar"
    [ "$status" -eq 0 ]
    assert_output --partial "ds-pretrain: 20/20 steps"
    refute_output --partial "step 10/20"
}

@test "progress: ds-grpo shows reward and accuracy; ds-infer, ds-eval -m and ds-distill count samples" {
    local t="$BATS_TEST_TMPDIR" d="$BATS_FILE_TMPDIR"
    run on_tty ds-grpo train -m "$d/base.tar" --tasks "$d/tasks.jsonl" --template plain --prompts-per-step 2 \
        --group-size 2 --max-tokens 4 --steps 3 --threads 1 --metrics /dev/null -o "$t/g.tar"
    [ "$status" -eq 0 ]
    assert_output --partial "ds-grpo: 3/3 steps (100.0%)"
    assert_output --regexp "step 3/3  reward [0-9.]+  accuracy [0-9.]+"
    assert_output --regexp "reward [0-9.]+, accuracy [0-9.]+, length"
    run on_tty ds-infer generate -m "$d/base.tar" --n 3 --max-tokens 4 --threads 1 "$d/tasks.jsonl"
    [ "$status" -eq 0 ]
    assert_output --partial "generate: 18/18 samples (100.0%)"
    assert_output --partial "tokens/s"
    # from a pipe the total is unknown: a count and a rate, no ETA
    run on_tty sh -c "cat '$d/tasks.jsonl' | ds-infer generate -m '$d/base.tar' --max-tokens 4 --threads 1 > /dev/null"
    assert_output --partial "generate: 6 samples"
    refute_output --partial "ETA"
    run on_tty ds-eval -m "$d/base.tar" --task math --problems "$d/tasks.jsonl" --n 2 --max-tokens 4
    [ "$status" -eq 0 ]
    assert_output --partial "generate: 12/12 samples (100.0%)"
    run on_tty ds-distill sample -m "$d/base.tar" --task math --problems "$d/tasks.jsonl" --n 2 --max-tokens 4 \
        --threads 1 -o "$t/k.jsonl" --summary /dev/null
    [ "$status" -eq 0 ]
    assert_output --partial "generate: 12/12 samples (100.0%)"
    echo '{"id":"a","ids":[1,5,9,30,200,7]}' > "$t/ids.jsonl"
    run on_tty ds-infer score -m "$d/base.tar" --threads 1 "$t/ids.jsonl"
    [ "$status" -eq 0 ]
    assert_output --partial "score: 1/1 records (100.0%)"
}
