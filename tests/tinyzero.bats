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
             rl.eval.json rl.png pretrain.png report.md base.completions.jsonl rl.completions.jsonl; do
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
    # a changed setting re-runs the stages that use it, and only those
    run make -C "$ROOT" --no-print-directory -n tinyzero FAST=1 SANITIZE=$san TZ="$d" TZ_LR=3e-4
    assert_output --partial "ds-grpo train -m $d/base.tar"
    assert_output --partial "--lr 3e-4"
    refute_output --partial "ds-pretrain"
    refute_output --partial "ds-synth"
    # a changed input re-runs what depends on it, and only that
    touch "$d/rl.tar"
    run make -C "$ROOT" --no-print-directory -n tinyzero FAST=1 SANITIZE=$san TZ="$d"
    assert_output --partial "ds-infer generate -m $d/rl.tar"
    refute_output --partial "ds-pretrain"
}

@test "make r1 FAST=1: every stage of V3 → R1 is a file, evaluated, in one table" {
    local san=0
    case "$DS_BIN" in *bin-asan*) san=1 ;; esac
    local d="$BATS_TEST_TMPDIR/tz"
    run make -C "$ROOT" --no-print-directory r1 FAST=1 SANITIZE=$san TZ="$d"
    [ "$status" -eq 0 ] || { echo "$output" | tail -30; false; }
    for s in base zero coldstart rl rs-sft student-base student-distill student-rl; do
        jq -e '.n_problems == 16 and .n_samples == 32' "$d/r1/$s.eval.json"
        jq -e '.mean_score >= 0 and .mean_score <= 1' "$d/r1/$s.lang.json"
        grep -q "^| $s | " "$d/r1/report.md" || { echo "no row for $s"; false; }
    done
    grep -q "^Distillation vs RL on the small model" "$d/r1/report.md"
    for c in coldstart rs-sft student-base student-distill rl student-rl; do
        [ -s "$d/r1/$c.png" ] || { echo "no curves for $c"; false; }
    done
    # the cold-start traces are correct, English and outside the held-out set
    jq -e -s 'length == 48 and all(.completion | test("<answer>"))' "$d/r1/coldstart.jsonl"
    local key='"\(.t):\(.n | split(", ") | map(tonumber) | sort | join(","))"'
    jq -r ".prompt | capture(\"numbers \\\\[(?<n>[0-9, ]+)\\\\], create an equation that equals (?<t>[0-9]+)\") | $key" \
        "$d/r1/coldstart.jsonl" | sort -u > "$BATS_TEST_TMPDIR/cold.keys"
    [ "$(wc -l < "$BATS_TEST_TMPDIR/cold.keys")" -ge 40 ]
    jq -r '"\(.target):\(.nums | sort | join(","))"' "$d/test.jsonl" | sort -u > "$BATS_TEST_TMPDIR/test.keys"
    [ -z "$(comm -12 "$BATS_TEST_TMPDIR/cold.keys" "$BATS_TEST_TMPDIR/test.keys")" ]
    # the default location follows tinyzero's, whatever the order the recipes are read in
    run make -C "$ROOT" --no-print-directory -n r1 FAST=1 SANITIZE=$san
    [ "$status" -eq 0 ]
    assert_output --partial "-o out/tinyzero-fast/r1/coldstart.tar"
    # stages re-run only when their inputs change
    run make -C "$ROOT" --no-print-directory -n r1 FAST=1 SANITIZE=$san TZ="$d"
    refute_output --partial "ds-"
    # or their settings: more rejection-sampled problems
    run make -C "$ROOT" --no-print-directory -n r1 FAST=1 SANITIZE=$san TZ="$d" R1_RS=20
    assert_output --partial "head -n 20"
    assert_output --partial "ds-distill sample -m $d/r1/rl.tar"
    refute_output --partial "ds-grpo"
    refute_output --partial "ds-pretrain"
    touch "$d/r1/coldstart.jsonl"
    run make -C "$ROOT" --no-print-directory -n r1 FAST=1 SANITIZE=$san TZ="$d"
    assert_output --partial "ds-sft train -m $d/base.tar --data $d/r1/coldstart.jsonl"
    assert_output --partial "ds-distill train -m $d/r1/student-base.tar"
    refute_output --partial "ds-pretrain"
    refute_output --partial "-o $d/r1/student-rl.tar"
}

@test "rs-filter.sh keeps the rejection-sampled answers written in one language, in order" {
    cat > "$BATS_TEST_TMPDIR/p.jsonl" <<'J'
{"id":"a","task":"countdown","target":7,"nums":[3,4,1]}
{"id":"b","task":"countdown","target":5,"nums":[1,4,9]}
J
    cat > "$BATS_TEST_TMPDIR/s.jsonl" <<'J'
{"id":"a","sample":0,"prompt":"P","completion":" <think> Try 3 + 4 = 7, yes, it works. </think> <answer> 3 + 4 </answer>","correct":true}
{"id":"a","sample":1,"prompt":"P","completion":" <think> Пробую 3 + 4 = 7, да, это работает. </think> <answer> 3 + 4 </answer>","correct":true}
{"id":"b","sample":0,"prompt":"P","completion":" <think> Try 1 + 4 = 5, да, it works. </think> <answer> 1 + 4 </answer>","correct":true}
{"id":"b","sample":3,"prompt":"P","completion":" <think> Try 9 - 4 = 5, so the answer is 9 - 4. </think> <answer> 9 - 4 </answer>","correct":true}
J
    run "$ROOT/pipelines/rs-filter.sh" "$BATS_TEST_TMPDIR/p.jsonl" "$BATS_TEST_TMPDIR/s.jsonl"
    [ "$status" -eq 0 ]
    [ "${#lines[@]}" -eq 2 ]
    [ "$(echo "${lines[0]}" | jq -r '"\(.id)/\(.sample)"')" = a/0 ]
    [ "$(echo "${lines[1]}" | jq -r '"\(.id)/\(.sample)"')" = b/3 ]
    run "$ROOT/pipelines/rs-filter.sh" "$BATS_TEST_TMPDIR/p.jsonl" "$BATS_TEST_TMPDIR/s.jsonl" cyrillic
    [ "${#lines[@]}" -eq 1 ]
    [ "$(echo "${lines[0]}" | jq -r '"\(.id)/\(.sample)"')" = a/1 ]
}
