#!/usr/bin/env bats
# Bad input never crashes a tool or leaves a partial output; write errors on stdout are failures;
# messages name the file, show real values and never send control characters to the terminal.
load helpers

setup_file() {
    local d="$BATS_FILE_TMPDIR"
    shakespeare_shards "$d" 60000
    ds-pretrain train --config "$ROOT/recipes/tiny-moe.json" --data "$d/train-000000.tar" \
        --tokenizer "$d/tok.json" --seq-len 16 --batch 2 --steps 2 --eval-every 0 --threads 1 \
        --peak-gflops 10 -o "$d/ck.tar" --metrics /dev/null
    ds-pretrain export "$d/ck.tar" "$d/model"
    printf '{"id":"a","prompt":"First Citizen"}\n' > "$d/prompts.jsonl"
    printf '{"id":"s","text":"First Citizen"}\n' > "$d/score.jsonl"
    printf '{"id":"p1","task":"math","prompt":"Say 1.","answer":"1"}\n' > "$d/tasks.jsonl"
}

setup() {
    T="$BATS_TEST_TMPDIR"
    F="$BATS_FILE_TMPDIR"
}

# every command that reads model M before doing anything else
model_commands() {
    local m="$1"
    echo "ds-infer generate -m $m --max-tokens 2 $F/prompts.jsonl"
    echo "ds-infer score -m $m $F/prompts.jsonl"
    echo "ds-eval -m $m --task format --problems $F/prompts.jsonl --max-tokens 2"
    echo "ds-grpo train -m $m --tasks $F/tasks.jsonl --extract answer --steps 1 --prompts-per-step 1 --group-size 2 --max-tokens 2 -o $T/rl.tar --metrics /dev/null"
    echo "ds-distill sample -m $m --task math --problems $F/tasks.jsonl --extract answer --max-tokens 2 -o $T/s.jsonl"
    echo "ds-pretrain import $m -o $T/imported.tar"
    echo "ds-pretrain info $m"
}

@test "a tokenizer with more ids than vocab_size is refused where a model is loaded, naming the file" {
    needs_data tokenizer/gpt2_vocab.json
    cp -r "$F/model" "$T/big"
    ds-tokenize import-gpt2 "$DATA/tokenizer/gpt2_vocab.json" "$DATA/tokenizer/gpt2_merges.txt" -o "$T/big/tokenizer.json"
    ds-pretrain import "$F/model" -o "$T/ok.tar" # the folder as exported is fine
    while read -r cmd; do
        run $cmd
        [ "$status" -eq 1 ] || { echo "$cmd: exit $status: $output"; false; }
        assert_output --partial "$T/big/tokenizer.json: 50257 token ids, more than config.json's vocab_size 512"
    done < <(model_commands "$T/big")
    [ ! -e "$T/imported.tar" ] && [ ! -e "$T/rl.tar" ]
}

@test "a bad tokenizer.json inside a model folder is reported with its file name" {
    cp -r "$F/model" "$T/badtok"
    printf '{"model": ' > "$T/badtok/tokenizer.json"
    while read -r cmd; do
        run $cmd
        [ "$status" -eq 1 ] || { echo "$cmd: exit $status: $output"; false; }
        assert_output --partial "$T/badtok/tokenizer.json:1: invalid JSON"
    done < <(model_commands "$T/badtok")
}

@test "write errors on stdout: every tool exits 1 with a message (> /dev/full)" {
    [ -c /dev/full ] || skip "no /dev/full"
    cat > "$T/cmds" <<CMDS
ds-infer generate -m $F/ck.tar --max-tokens 2 $F/prompts.jsonl
ds-infer generate -m $F/ck.tar --max-tokens 2 --ordered $F/prompts.jsonl
ds-infer score -m $F/ck.tar $F/score.jsonl
ds-pretrain info $ROOT/recipes/tiny-moe.json
ds-pretrain info $F/ck.tar
ds-tokenize inspect $F/train-000000.tar
ds-tokenize inspect --json $F/train-000000.tar
ds-tokenize encode -t $F/tok.json --jsonl-ids $F/train.txt
ds-tokenize decode -t $F/tok.json --shard $F/train-000000.tar
ds-eval prompts --task math --problems $F/tasks.jsonl
ds-synth problems --n 3
ds-infer --help
ds-pretrain --version
ds-tokenize --help
ds-eval --help
ds-sft --help
ds-grpo --help
ds-distill --help
ds-synth --help
CMDS
    while read -r cmd; do
        run bash -c "$cmd > /dev/full"
        [ "$status" -eq 1 ] || { echo "$cmd: exit $status: $output"; false; }
        [[ "$output" == *"write error"* ]] || { echo "$cmd: no message: $output"; false; }
        [ "$(grep -c 'write error' <<< "$output")" -eq 1 ] || { echo "$cmd: reported twice: $output"; false; }
    done < "$T/cmds"
}

@test "pretrain info: an invalid config reports its own error, not 'not a tar archive'" {
    printf '{"model_type": "llama", "vocab_size": -3}\n' > "$T/neg.json"
    run ds-pretrain info "$T/neg.json"
    assert_failure 1
    assert_output --partial "vocab_size"
    refute_output --partial "tar"
    printf '  {"model_type": ' > "$T/cut.json"
    run ds-pretrain info "$T/cut.json"
    assert_failure 1
    assert_output --partial "$T/cut.json:1: invalid JSON"
    run ds-pretrain info "$ROOT/README.md"
    assert_failure 1
    assert_output --partial "README.md"
    ds-pretrain info "$ROOT/recipes/tiny-moe.json" | jq -e '.params > 0'
    ds-pretrain info "$F/model" | jq -e '.params > 0'
}

@test "infer: bad records name file, line and id, show the real id, and leak nothing" {
    local m="$F/ck.tar"
    printf '{"id":"a","prompt":"x"}\n{"id":"big","ids":[1,4294967296]}\n' > "$T/big.jsonl"
    run ds-infer generate -m "$m" --max-tokens 2 "$T/big.jsonl"
    assert_failure 1
    assert_output --partial "big.jsonl:2: id 'big': ids[1] = 4294967296 is not a token id of this model (vocab_size 512)"
    printf '{"id":"e","ids":[]}\n' > "$T/empty.jsonl"
    run ds-infer generate -m "$m" "$T/empty.jsonl"
    assert_failure 1
    assert_output --partial "empty.jsonl:1: id 'e': empty prompt"
    printf '{"id":"long","prompt":"%s"}\n' "$(head -c 400 "$F/train.txt" | tr -d '"\\\n')" > "$T/long.jsonl"
    run ds-infer generate -m "$m" --max-len 16 "$T/long.jsonl"
    assert_failure 1
    assert_output --partial "long.jsonl:1: id 'long': prompt of"
    assert_output --partial "does not fit --max-len 16 (at most 15)"
    printf '{"id":"n","ids":[1,"x"]}\n' > "$T/str.jsonl"
    run ds-infer generate -m "$m" --ordered "$T/str.jsonl"
    assert_failure 1
    assert_output --partial "str.jsonl:1: id 'n': ids[1] is not an integer token id"
}

@test "messages escape control characters from names and file contents" {
    local name=$'\e[31mred\x07.json'
    run ds-tokenize decode -t "$T/$name" /dev/null
    assert_failure 1
    assert_output --partial '\x1b[31mred\x07.json'
    [[ "$output" != *$'\e'* && "$output" != *$'\a'* ]]
    printf '{"id":"x","prompt":"a"}\n{"id":"\\u001b[2J"}\n' > "$T/ctl.jsonl"
    run ds-infer generate -m "$F/ck.tar" --max-tokens 2 "$T/ctl.jsonl"
    assert_failure 1
    [[ "$output" != *$'\e'* ]]
    # warnings about skipped records quote them, escaped too
    printf '{"id":"a","prompt":"x","target":3,"nums":[1,2]}\n' > "$T/p.jsonl"
    printf '{"id":"\\u001b[2Jzz","completion":"x"}\n{"id":"a","completion":"x"}\n' > "$T/c.jsonl"
    run ds-eval --task countdown --problems "$T/p.jsonl" "$T/c.jsonl" --skip-bad -o /dev/null
    assert_success
    assert_output --partial "c.jsonl:1: no problem with id '\x1b[2Jzz'"
    [[ "$output" != *$'\e'* ]]
    printf '{"text": "a\\u001b[2Jb"}\n' > "$T/ctl2.jsonl"
    ds-tokenize encode -t "$F/tok.json" --jsonl --source $'by\e[2J' -o "$T/sh" "$T/ctl2.jsonl"
    run ds-tokenize inspect "$T/sh-000000.tar"
    assert_success
    assert_output --partial 'by\x1b[2J'
    [[ "$output" != *$'\e'* ]]
}

@test "export is all or nothing: a failed export leaves no config.json without its weights" {
    # an existing, non-empty folder is never written into
    mkdir -p "$T/out/tokenizer.json"
    run ds-pretrain export "$F/ck.tar" "$T/out"
    assert_failure 1
    assert_output --partial "already exists"
    [ "$(ls -A "$T/out")" = "tokenizer.json" ]
    rmdir "$T/out/tokenizer.json"
    # a failure part-way (the disk runs out under the file-size limit) leaves neither the folder
    # nor its temp folder
    run bash -c "trap '' XFSZ; ulimit -f 64; ds-pretrain export '$F/ck.tar' '$T/out2'"
    assert_failure
    [ ! -e "$T/out2" ] && [ -z "$(ls -d "$T"/out2.tmp* 2> /dev/null)" ]
    ds-pretrain export "$F/ck.tar" "$T/out"
    run ds-infer score -m "$T/out" "$F/score.jsonl"
    assert_success
    jq -e '.logprobs | length > 0' <<< "$output"
}

@test "checkpoint shapes in messages: 1-D, 3-D and 8-D tensors shown as they are" {
    CONFIG="$ROOT/recipes/tiny-moe.json" unit checkpoint shape_messages
}
