#!/usr/bin/env bats
# Datasets are complete or absent: an interrupted encode is never trained on, a rerun replaces it
# whole; shard ids are checked against the model's vocab_size before training.
load helpers

setup_file() {
    local d="$BATS_FILE_TMPDIR"
    shakespeare_shards "$d" 100000
    # documents for a slow, interruptible encode: one JSONL line per text line
    grep -v '^$' "$d/train.txt" | tr -d '"\\' | sed 's/.*/{"text":"&"}/' > "$d/docs.jsonl"
}

setup() {
    T="$BATS_TEST_TMPDIR"
    F="$BATS_FILE_TMPDIR"
    TRAIN=(ds-pretrain train --config "$ROOT/recipes/tiny-moe.json" --seq-len 16 --batch 2 --steps 1
        --eval-every 0 --threads 1 --peak-gflops 10 -o "$T/ck.tar" --metrics /dev/null)
}

# encode_until_first_shard SIGNAL: starts an encode that feeds a first batch of documents and then
# waits on its input; once a shard is on disk, sends SIGNAL. Leaves its exit status in $killed_rc.
encode_until_first_shard() {
    mkfifo "$T/in"
    ds-tokenize encode -t "$F/tok.json" --jsonl --shard-tokens 500 -o "$T/data/train" < "$T/in" 2> "$T/err" 3>&- &
    local pid=$!
    exec 5> "$T/in" # held open: the encode waits for more input
    head -n 400 "$F/docs.jsonl" >&5
    for _ in $(seq 1 600); do [ -e "$T/data/train-000000.tar" ] && break; sleep 0.1; done
    [ -e "$T/data/train-000000.tar" ]
    kill "-$1" "$pid"
    killed_rc=0
    wait "$pid" || killed_rc=$?
    exec 5>&-
}

@test "dataset: an encode killed by SIGKILL leaves shards no reader accepts; the next run replaces them" {
    mkdir "$T/data"
    encode_until_first_shard KILL
    [ "$killed_rc" -eq 137 ]
    [ -e "$T/data/train-000001.tar" ] # finished shards stay, each valid on its own
    [ ! -e "$T/data/train.dataset.json" ]
    run ds-tokenize inspect "$T/data/train-000000.tar"
    assert_success
    for spec in "$T/data" "$T/data/train-000000.tar" "$T/data/train-*.tar"; do
        run "${TRAIN[@]}" --data "$spec"
        assert_failure 1
        assert_output --partial "incomplete dataset"
        assert_output --partial "train.dataset.json"
        assert_output --partial "encode the data again"
        [ ! -e "$T/ck.tar" ]
        run ds-tokenize decode -t "$F/tok.json" --shard "$spec"
        assert_failure 1
        assert_output --partial "incomplete dataset"
    done
    # a dead writer's temp file: removed by the next run with the prefix, as are the old shards
    local dead; dead=$(sh -c 'echo $$')
    touch "$T/data/train-000007.tar.tmp.$dead.qwerty" "$T/data/train-000009.tar"
    head -n 50 "$F/docs.jsonl" | ds-tokenize encode -t "$F/tok.json" --jsonl -o "$T/data/train"
    run ls "$T/data"
    assert_output "$(printf 'train-000000.tar\ntrain.dataset.json')"
    "${TRAIN[@]}" --data "$T/data"
    [ -s "$T/ck.tar" ]
}

@test "dataset: SIGTERM or SIGINT during encode or shard deletes the run's shards, exit 1" {
    mkdir "$T/data"
    encode_until_first_shard TERM
    [ "$killed_rc" -eq 1 ]
    grep -q "interrupted: no shards of $T/data/train left" "$T/err"
    [ -z "$(ls "$T/data")" ]
    rm "$T/in"
    encode_until_first_shard INT
    [ "$killed_rc" -eq 1 ]
    [ -z "$(ls "$T/data")" ]
}

@test "dataset: a folder missing a listed shard, or holding one another run wrote, is refused" {
    mkdir "$T/data"
    ds-tokenize encode -t "$F/tok.json" --jsonl --shard-tokens 2000 -o "$T/data/train" "$F/docs.jsonl"
    [ -e "$T/data/train-000002.tar" ]
    jq -e '.n_shards >= 3 and (.shards | length) == .n_shards and .max_token_id < 512' "$T/data/train.dataset.json"
    mv "$T/data/train-000001.tar" "$T/moved.tar"
    run "${TRAIN[@]}" --data "$T/data"
    assert_failure 1
    assert_output --partial "shard train-000001.tar listed in $T/data/train.dataset.json is missing"
    # a shard of another dataset under this name: its content is not the recorded one
    cp "$T/data/train-000000.tar" "$T/data/train-000001.tar"
    run "${TRAIN[@]}" --data "$T/data"
    assert_failure 1
    assert_output --partial "$T/data/train-000001.tar: content differs from what"
}

@test "pretrain: shard ids at or past vocab_size are refused, naming the shard and the id" {
    needs_data tokenizer/gpt2_vocab.json
    ds-tokenize import-gpt2 "$DATA/tokenizer/gpt2_vocab.json" "$DATA/tokenizer/gpt2_merges.txt" -o "$T/gpt2.json"
    mkdir "$T/data"
    { echo '[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20]'; echo '[5,600,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21]'; } |
        ds-tokenize shard -t "$T/gpt2.json" --shard-tokens 20 -o "$T/data/ids"
    run "${TRAIN[@]}" --data "$T/data"
    assert_failure 1
    assert_output --partial "$T/data/ids-000001.tar: token 1 has id 600, not below the model's vocab_size 512"
    [ ! -e "$T/ck.tar" ]
    run "${TRAIN[@]}" --data "$F/train-000000.tar" --val "$T/data/ids-000001.tar"
    assert_failure 1
    assert_output --partial "ids-000001.tar: token 1 has id 600"
    # the first shard alone is within the vocabulary
    "${TRAIN[@]}" --data "$T/data/ids-000000.tar"
    [ -s "$T/ck.tar" ]
}
