#!/usr/bin/env bats
# Shared library pieces: hashing, random streams, JSONL reading, atomic outputs.
load helpers

@test "sha256 matches FIPS 180-4 vectors, incremental and one-shot" { unit common sha256_vectors; }
@test "rng: same seed same stream, derived streams differ, moments" { unit common rng_streams; }
@test "jsonl: file:line on a bad line, --skip-bad skips, invalid UTF-8 rejected" { unit common jsonl_reads_and_reports; }
@test "threads: a kept pool splits loops exactly as per-call threads do, every index once" { unit common threadpool_splits_as_threads_run; }
@test "atomic file: invisible until commit, abort leaves nothing" { unit common atomic_file_commit_and_abort; }

# Outputs that are not regular files are written in place: renaming a temp file over /dev/null (as
# root) would replace the device with a regular file, and over a FIFO would cut off its reader.
@test "outputs: /dev/null stays a character device after -o, --metrics and --summary" {
    [ -c /dev/null ]
    ds-synth corpus --n 3 -o /dev/null
    ds-synth problems --n 3 -o /dev/null
    [ -c /dev/null ]
    [ ! -e /dev/null.tmp.* ] || ls /dev/null.tmp.*
    ds-synth problems --n 5 -o "$BATS_TEST_TMPDIR/p.jsonl"
    printf '{"id":"%s","sample":0,"completion":"<answer>1</answer>"}\n' $(jq -r .id "$BATS_TEST_TMPDIR/p.jsonl") \
        | ds-eval --task countdown --problems "$BATS_TEST_TMPDIR/p.jsonl" - -o /dev/null --summary /dev/null
    [ -c /dev/null ]
}

@test "outputs: a FIFO is written through, not replaced" {
    local t="$BATS_TEST_TMPDIR"
    mkfifo "$t/fifo"
    cat "$t/fifo" > "$t/read" &
    ds-synth corpus --n 3 --seed 5 -o "$t/fifo"
    wait
    [ -p "$t/fifo" ]
    ds-synth corpus --n 3 --seed 5 -o "$t/plain"
    cmp "$t/read" "$t/plain"
}

@test "outputs: a symlink's target is replaced and the link kept, dangling links too" {
    local t="$BATS_TEST_TMPDIR"
    mkdir "$t/real"
    echo old > "$t/real/out.jsonl"
    ln -s real/out.jsonl "$t/link"
    ds-synth corpus --n 3 --seed 5 -o "$t/link"
    [ -L "$t/link" ]
    ds-synth corpus --n 3 --seed 5 -o "$t/plain"
    cmp "$t/real/out.jsonl" "$t/plain"
    ln -s real/new.jsonl "$t/dangling"
    ds-synth corpus --n 3 --seed 5 -o "$t/dangling"
    [ -L "$t/dangling" ]
    cmp "$t/real/new.jsonl" "$t/plain"
    [ -z "$(ls "$t/real" | grep tmp)" ]
    run ds-synth corpus --n 3 -o "$t/real"
    [ "$status" -eq 1 ]
    [[ "$output" == *"is a directory"* ]]
}

@test "outputs: a dead run's temp file is removed by the next run; a live one's is kept" {
    local t="$BATS_TEST_TMPDIR"
    sh -c 'exit 0' & local dead=$!
    wait "$dead"
    sleep 1000 & local live=$!
    echo partial > "$t/out.jsonl.tmp.$dead.AbCdEf"
    echo partial > "$t/out.jsonl.tmp.$live.AbCdEf"
    echo keep > "$t/out.jsonl.tmp.notapid"
    ds-synth corpus --n 3 -o "$t/out.jsonl"
    kill "$live"
    [ ! -e "$t/out.jsonl.tmp.$dead.AbCdEf" ]
    [ -e "$t/out.jsonl.tmp.$live.AbCdEf" ]
    [ -e "$t/out.jsonl.tmp.notapid" ]
}
