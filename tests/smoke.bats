#!/usr/bin/env bats
# The end-to-end smoke pipeline: every tool, each stage reading the previous stage's files.
load helpers

@test "smoke: synth → tokenize → pretrain → infer → eval → sft → grpo → distill → eval" {
    run "$ROOT/pipelines/smoke.sh" "$BATS_TEST_TMPDIR/smoke"
    [ "$status" -eq 0 ] || { echo "$output" | tail -30; false; }
    local s="$BATS_TEST_TMPDIR/smoke/summary.json"
    jq -e '.pretrain.steps == 60 and .pretrain.last_loss < .pretrain.first_loss - 1' "$s"
    jq -e '.sft.steps == 20 and .sft.last_loss < .sft.first_loss' "$s"
    jq -e '.grpo.steps == 3 and (.grpo.reward_mean | length) == 3 and (.grpo.eval_pass1 >= 0)' "$s"
    jq -e '.distill.kept == .distill.samples and .distill.steps == 20' "$s"
    jq -e '(.base_eval.pass1 >= 0) and (.student_eval.pass1 >= 0)' "$s"
}
