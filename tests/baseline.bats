#!/usr/bin/env bats
# Nothing changes for users: the tiny training and inference paths (pretrain dense and MoE+MTP in
# fp32/bf16/fp8 on 1 and 2 threads, SFT, GRPO with a reference model, logit distillation,
# ds-infer generate and score) give the tensor bytes and metrics recorded in
# tests/baseline/hashes.txt. A change that is meant to change numbers re-records them with
#   scripts/baseline-hashes --update
# and says in its commit message why (and, for a changed summation order, by how much the
# losses moved).
load helpers

@test "baseline: checkpoint tensors, metrics and inference outputs match tests/baseline/hashes.txt" {
    command -v jq > /dev/null || skip "jq not installed"
    run "$ROOT/scripts/baseline-hashes" --bin "$DS_BIN"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    diff <(echo "$output") "$ROOT/tests/baseline/hashes.txt"
}

@test "baseline: the script refuses unknown arguments" {
    run "$ROOT/scripts/baseline-hashes" --nope
    [ "$status" -eq 2 ]
}
