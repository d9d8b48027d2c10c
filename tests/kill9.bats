#!/usr/bin/env bats
# kill -9 trials, the fast version of bench/kill9.sh (results/kill9.md has the full runs): training
# runs killed at random points resume from their last checkpoint bit-identically and leave no temp
# file; an encode killed at a random point is refused by the trainer or complete.
load helpers

@test "kill -9: ds-pretrain and ds-grpo killed at random points resume bit-identically, no temp left" {
    needs_data tinyshakespeare/input.txt
    KILL9_TOOLS="pretrain grpo" KILL9_SEED=7 run "$ROOT/bench/kill9.sh" 2 "$BATS_TEST_TMPDIR/k9"
    echo "$output"
    [ "$status" -eq 0 ]
    [ "$(grep -c '^ok - pretrain trial' <<< "$output")" -eq 2 ]
    [ "$(grep -c '^ok - grpo trial' <<< "$output")" -eq 2 ]
}

@test "kill -9: an encode killed at a random point is refused by ds-pretrain or complete; a rerun is whole" {
    needs_data tinyshakespeare/input.txt
    KILL9_TOOLS="encode" KILL9_SEED=7 run "$ROOT/bench/kill9.sh" 3 "$BATS_TEST_TMPDIR/k9"
    echo "$output"
    [ "$status" -eq 0 ]
    [ "$(grep -c '^ok - encode trial' <<< "$output")" -eq 3 ]
}
