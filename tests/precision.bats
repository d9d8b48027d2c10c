#!/usr/bin/env bats
# Mixed-precision training (ds-pretrain --precision): BF16 and FP8 Linear GEMMs against FP32, FP8
# training on tiny-shakespeare, exact resume in FP8, the mode recorded and enforced.
load helpers

setup_file() {
    shakespeare_shards "$BATS_FILE_TMPDIR" 200000
}

train() { ds-pretrain train "${TRAIN_ARGS[@]}" "$@"; }

setup() {
    TRAIN_ARGS=(--config "$ROOT/recipes/tiny-moe.json" --data "$BATS_FILE_TMPDIR/train-000000.tar" \
        --tokenizer "$BATS_FILE_TMPDIR/tok.json" --seq-len 32 --batch 4 --steps 30 --lr 3e-3 \
        --eval-every 0 --threads 1 --peak-gflops 10)
}

losses() { grep -o '"loss":[^,]*,"mtp_loss":[^,]*' "$1"; }
loss_at() { sed -n "${2}p" "$1" | grep -o '"loss":[0-9.]*' | cut -d: -f2; }

@test "precision: parse, bf16 rounding" { unit precision parse_and_names; }
@test "precision: one Linear's forward, dgrad and wgrad per mode against float64 (partial groups, beta, bias)" { unit precision linear_gemms; }
@test "precision: V3 MoE+MLA+MTP forward/backward in bf16 and fp8 stay close to fp32" { unit precision v3_model_close_to_fp32; }
@test "precision: qwen2 (GQA, biases) forward/backward in bf16 and fp8 stay close to fp32" { unit precision qwen2_model_close_to_fp32; }
@test "precision: fp8 quantises Linear GEMMs; router and output head stay fp32" { unit precision fp8_covers_linears_only; }

@test "precision: fp8 and bf16 training lower the loss and record the mode" {
    local t="$BATS_TEST_TMPDIR"
    for p in fp8 bf16; do
        train --precision "$p" -o "$t/$p.tar" --metrics "$t/$p.jsonl"
        [ "$(wc -l < "$t/$p.jsonl")" -eq 30 ]
        [ "$(grep -c "\"precision\":\"$p\"" "$t/$p.jsonl")" -eq 30 ]
        awk -v a="$(loss_at "$t/$p.jsonl" 1)" -v b="$(loss_at "$t/$p.jsonl" 30)" 'BEGIN { exit !(b < a - 0.5) }'
        tar -xOf "$t/$p.tar" state.json | grep -q "\"precision\": \"$p\""
    done
    # The modes compute differently from the same seed and data.
    run diff -q <(losses "$t/fp8.jsonl") <(losses "$t/bf16.jsonl")
    [ "$status" -eq 1 ]
    train -o "$t/fp32.tar" --metrics "$t/fp32.jsonl"
    grep -q '"precision":"fp32"' "$t/fp32.jsonl"
    run diff -q <(losses "$t/fp8.jsonl") <(losses "$t/fp32.jsonl")
    [ "$status" -eq 1 ]
}

@test "precision: fp8 and bf16 runs stopped at step 12 and resumed are bit-identical to uninterrupted ones" {
    local t="$BATS_TEST_TMPDIR"
    for p in fp8 bf16; do
        train --precision "$p" -o "$t/full-$p.tar" --metrics "$t/full-$p.jsonl"
        train --precision "$p" -o "$t/part-$p.tar" --metrics "$t/a-$p.jsonl" --stop-at 12
        [ "$(wc -l < "$t/a-$p.jsonl")" -eq 12 ]
        train --precision "$p" --resume "$t/part-$p.tar" -o "$t/part-$p.tar" --metrics "$t/b-$p.jsonl"
        [ "$(wc -l < "$t/b-$p.jsonl")" -eq 18 ]
        diff <(losses "$t/full-$p.jsonl") <(cat "$t/a-$p.jsonl" "$t/b-$p.jsonl" | losses /dev/stdin)
        cmp "$t/full-$p.tar" "$t/part-$p.tar"
    done
}

@test "precision: resume refuses another mode" {
    local t="$BATS_TEST_TMPDIR"
    train --precision fp8 -o "$t/ck.tar" --metrics /dev/null --stop-at 3
    run train --precision bf16 --resume "$t/ck.tar" -o "$t/x.tar" --metrics /dev/null
    [ "$status" -eq 1 ]
    assert_output --partial "'precision' differs"
    run train --resume "$t/ck.tar" -o "$t/x.tar" --metrics /dev/null
    [ "$status" -eq 1 ]
    assert_output --partial "'precision' differs"
    [ ! -e "$t/x.tar" ]
}

@test "precision: a bad --precision is a usage error" {
    run train --precision fp16 -o "$BATS_TEST_TMPDIR/x.tar"
    [ "$status" -eq 2 ]
    assert_output --partial "--precision: unknown precision 'fp16'"
    [ ! -e "$BATS_TEST_TMPDIR/x.tar" ]
    run ds-pretrain train --help
    [ "$status" -eq 0 ] && assert_output --partial "--precision fp32|bf16|fp8"
}
