#!/usr/bin/env bats
# ds-pretrain: training, checkpoints, exact resume, SIGTERM, export/import, refusals.
load helpers

setup_file() {
    local d="$BATS_FILE_TMPDIR"
    shakespeare_shards "$d" 200000
    tail -c 50000 "$DATA/tinyshakespeare/input.txt" > "$d/val.txt"
    ds-tokenize encode -t "$d/tok.json" -o "$d/val" "$d/val.txt"
}

train() { ds-pretrain train "${TRAIN_ARGS[@]}" "$@"; }

setup() {
    TRAIN_ARGS=(--config "$ROOT/recipes/tiny-moe.json" --data "$BATS_FILE_TMPDIR/train-000000.tar" \
        --tokenizer "$BATS_FILE_TMPDIR/tok.json" --seq-len 32 --batch 4 --steps 30 --lr 3e-3 \
        --eval-every 0 --threads 1 --peak-gflops 10)
}

losses() { grep -o '"loss":[^,]*,"mtp_loss":[^,]*' "$1"; }

@test "pretrain: loss falls, validation loss is reported, checkpoint holds every part" {
    train -o "$BATS_TEST_TMPDIR/ck.tar" --metrics "$BATS_TEST_TMPDIR/m.jsonl" \
        --val "$BATS_FILE_TMPDIR/val-000000.tar" --eval-every 10 --eval-batches 2
    [ "$(wc -l < "$BATS_TEST_TMPDIR/m.jsonl")" -eq 30 ]
    first=$(head -1 "$BATS_TEST_TMPDIR/m.jsonl" | grep -o '"loss":[0-9.]*' | cut -d: -f2)
    last=$(tail -1 "$BATS_TEST_TMPDIR/m.jsonl" | grep -o '"loss":[0-9.]*' | cut -d: -f2)
    awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < a - 0.5) }'
    grep -q '"val_loss"' "$BATS_TEST_TMPDIR/m.jsonl"
    grep -q '"expert_load_max_over_mean":\[' "$BATS_TEST_TMPDIR/m.jsonl"
    run tar -tf "$BATS_TEST_TMPDIR/ck.tar"
    for f in config.json model.safetensors tokenizer.json optimizer.safetensors state.json; do
        assert_line "$f"
    done
}

@test "pretrain: a run stopped at step 12 and resumed is bit-identical to an uninterrupted one" {
    local t="$BATS_TEST_TMPDIR"
    train -o "$t/full.tar" --metrics "$t/full.jsonl"
    train -o "$t/part.tar" --metrics "$t/a.jsonl" --stop-at 12
    [ "$(wc -l < "$t/a.jsonl")" -eq 12 ]
    train --resume "$t/part.tar" -o "$t/part.tar" --metrics "$t/b.jsonl"
    [ "$(wc -l < "$t/b.jsonl")" -eq 18 ]
    diff <(losses "$t/full.jsonl") <(cat "$t/a.jsonl" "$t/b.jsonl" | losses /dev/stdin)
    cmp "$t/full.tar" "$t/part.tar"
}

@test "pretrain: SIGTERM writes a checkpoint and exits 0; resume completes the run" {
    local t="$BATS_TEST_TMPDIR"
    # started directly (not through a shell function) so the signal reaches ds-pretrain itself
    ds-pretrain train "${TRAIN_ARGS[@]}" --steps 400 -o "$t/ck.tar" --metrics - > "$t/a.jsonl" &
    local pid=$!
    for _ in $(seq 1 600); do
        [ "$(wc -l < "$t/a.jsonl")" -ge 3 ] && break
        sleep 0.05
    done
    kill -TERM "$pid"
    wait "$pid"
    n=$(wc -l < "$t/a.jsonl")
    [ "$n" -lt 400 ]
    tar -xOf "$t/ck.tar" state.json | grep -q "\"step\": $n"
    train --steps 400 --resume "$t/ck.tar" -o "$t/ck.tar" --metrics "$t/b.jsonl"
    [ $(( n + $(wc -l < "$t/b.jsonl") )) -eq 400 ]
}

@test "pretrain: resume refuses another config, changed options and a corrupted checkpoint" {
    local t="$BATS_TEST_TMPDIR"
    train -o "$t/ck.tar" --metrics /dev/null --stop-at 3
    sed 's/"hidden_size": 64/"hidden_size": 32/' "$ROOT/recipes/tiny-moe.json" > "$t/other.json"
    run train --resume "$t/ck.tar" --config "$t/other.json" -o "$t/x.tar" --metrics /dev/null
    [ "$status" -eq 1 ]
    assert_output --partial "different config"
    run train --resume "$t/ck.tar" --lr 1e-3 -o "$t/x.tar" --metrics /dev/null
    [ "$status" -eq 1 ]
    assert_output --partial "'lr' differs"
    head -c 20000 "$t/ck.tar" > "$t/trunc.tar"
    run train --resume "$t/trunc.tar" -o "$t/x.tar" --metrics /dev/null
    [ "$status" -eq 1 ]
    assert_output --partial "trunc.tar"
    [ ! -e "$t/x.tar" ]
}

@test "pretrain: export to a Hugging Face folder and import back give the same tensors" {
    local t="$BATS_TEST_TMPDIR"
    train -o "$t/ck.tar" --metrics /dev/null --steps 2
    ds-pretrain export "$t/ck.tar" "$t/hf"
    [ -f "$t/hf/config.json" ] && [ -f "$t/hf/model.safetensors" ] && [ -f "$t/hf/tokenizer.json" ]
    grep -q '"model_type": "deepseek_v3"' "$t/hf/config.json"
    ds-pretrain import "$t/hf" -o "$t/back.tar"
    ds-pretrain export "$t/back.tar" "$t/hf2"
    cmp "$t/hf/model.safetensors" "$t/hf2/model.safetensors"
    cmp "$t/hf/tokenizer.json" "$t/hf2/tokenizer.json"
    # a tokenizer.json that does not validate is refused
    cp "$t/hf/tokenizer.json" "$t/tok.json"
    jq '.model.merges += ["zzzq a"]' "$t/tok.json" > "$t/hf/tokenizer.json"
    run ds-pretrain import "$t/hf" -o "$t/bad.tar"
    [ "$status" -eq 1 ]
    assert_output --partial 'tokenizer.json: model.merges'
    [ ! -e "$t/bad.tar" ]
    cp "$t/tok.json" "$t/hf/tokenizer.json"
    # a folder whose tensors do not match its config is refused before loading
    sed 's/"vocab_size": 512/"vocab_size": 600/' "$t/hf/config.json" > "$t/cfg" && mv "$t/cfg" "$t/hf/config.json"
    run ds-pretrain import "$t/hf" -o "$t/bad.tar"
    [ "$status" -eq 1 ]
    assert_output --partial "model.embed_tokens.weight"
    [ ! -e "$t/bad.tar" ]
}

@test "pretrain: --help, --version and usage errors" {
    run ds-pretrain --help
    [ "$status" -eq 0 ] && assert_output --partial "ds-pretrain train"
    run ds-pretrain --version
    [ "$status" -eq 0 ] && assert_output --partial "(ds)"
    run ds-pretrain train --steps x
    [ "$status" -eq 2 ]
    run ds-pretrain frobnicate
    [ "$status" -eq 2 ]
}

@test "recipes: every shipped config is valid; the test, MoE and dense sizes are as documented" {
    for f in "$ROOT"/recipes/*.json; do
        run ds-pretrain info "$f"
        [ "$status" -eq 0 ] || { echo "$f: $output"; false; }
    done
    ds-pretrain info "$ROOT/recipes/moe-1m.json" | jq -e '.params > 800000 and .params < 1500000'
    ds-pretrain info "$ROOT/recipes/moe-15m.json" | jq -e '.params > 12000000 and .params < 18000000'
    # a dense model is active almost whole (its embedding lookup is not counted); the MoE is not
    ds-pretrain info "$ROOT/recipes/dense-15m.json" | jq -e '.active_params / .params > 0.8'
    ds-pretrain info "$ROOT/recipes/moe-15m.json" | jq -e '.active_params / .params < 0.5'
}
