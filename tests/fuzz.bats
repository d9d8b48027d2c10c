#!/usr/bin/env bats
# Inputs that fuzzing found (fuzz/regressions/), replayed through the plain tools: each must be a
# handled error (exit 1 and a message), never a crash or a sanitizer finding (exit 86).
load helpers

@test "fuzz regressions: a config with n_group 0 is refused, not a division by zero" {
    run ds-pretrain train --config "$ROOT/fuzz/regressions/config/n-group-zero.json" --data "$BATS_TEST_TMPDIR/none" -o "$BATS_TEST_TMPDIR/x.tar"
    [ "$status" -eq 1 ]
    assert_output --partial "n_group: must be an integer in [1, 4096] (got 0)"
}

@test "fuzz regressions: a config whose sizes overflow int is refused without overflowing" {
    run ds-pretrain train --config "$ROOT/fuzz/regressions/config/int-overflow.json" --data "$BATS_TEST_TMPDIR/none" -o "$BATS_TEST_TMPDIR/x.tar"
    [ "$status" -eq 1 ]
    assert_output --partial "must be an integer in [0, 16777216] (got 1073741824)"
}

@test "fuzz regressions: every committed input is replayed by make fuzz (a folder per target)" {
    for d in "$ROOT"/fuzz/regressions/*/; do
        [ -f "$ROOT/fuzz/fuzz_$(basename "$d").c" ] || { echo "no target for $d"; false; }
    done
}
