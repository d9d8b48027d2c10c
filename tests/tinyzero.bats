#!/usr/bin/env bats
# make tinyzero FAST=1: the whole R1-Zero recipe in miniature, from problems to the report.
load helpers

@test "make tinyzero FAST=1: corpus → base → pass@k → GRPO → report and plots" {
    local san=0
    case "$DS_BIN" in *bin-asan*) san=1 ;; esac
    run make -C "$ROOT" --no-print-directory tinyzero FAST=1 SANITIZE=$san TZ="$BATS_TEST_TMPDIR/tz"
    [ "$status" -eq 0 ] || { echo "$output" | tail -30; false; }
    local d="$BATS_TEST_TMPDIR/tz"
    for f in test.jsonl train.jsonl corpus.jsonl tok.json base.tar base.eval.json rl.tar rl.jsonl \
             rl.eval.json rl.png report.md base.completions.jsonl rl.completions.jsonl; do
        [ -s "$d/$f" ] || { echo "missing $f"; false; }
    done
    # held-out problems never reach the corpus
    run jq -r '[.target, (.nums | sort | join(","))] | join(":")' "$d/test.jsonl"
    grep -q "| base |" "$d/report.md" && grep -q "| RL (GRPO) |" "$d/report.md"
    assert_output --regexp '[0-9]+:[0-9,]+'
    jq -e '.n_problems == 16 and .n_samples == 64' "$d/base.eval.json"
    [ "$(wc -l < "$d/rl.jsonl")" -eq 4 ]
    # a second make runs no stage again: every stage is a file with real dependencies
    run make -C "$ROOT" --no-print-directory -n tinyzero FAST=1 SANITIZE=$san TZ="$d"
    [ "$status" -eq 0 ]
    refute_output --partial "ds-pretrain"
    refute_output --partial "ds-grpo"
    # a changed input re-runs what depends on it, and only that
    touch "$d/rl.tar"
    run make -C "$ROOT" --no-print-directory -n tinyzero FAST=1 SANITIZE=$san TZ="$d"
    assert_output --partial "ds-infer generate -m $d/rl.tar"
    refute_output --partial "ds-pretrain"
}
