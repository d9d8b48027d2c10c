#!/usr/bin/env bats
# Fault injection (SQLite's habit): the FAULT=1 build fails the N-th allocation (DS_FAULT_ALLOC=N)
# or the N-th output commit (DS_FAULT_WRITE=N). For the main write paths, N is swept from 1 until
# the run no longer reaches a fault: every failure must be exit 1 with a message naming the tool,
# and leave no temp file and no output that looks valid but is not: each output is committed on its
# own, so a tool with two outputs may fail on the second after the first is in place, and a file
# left behind must then be byte-identical to the one a run without faults writes. The fault build
# of the tools is made by setup_file (build-fault/, or build-asan-fault/ when the suite tests the
# ASan build).
load helpers

setup_file() {
    local san=0 suffix=""
    case "$DS_BIN" in *-asan) san=1 suffix=-asan ;; esac
    local rel="bin$suffix-fault" # make's targets are relative to the root
    export FAULT_BIN="$ROOT/$rel"
    make -C "$ROOT" -s -j2 FAULT=1 SANITIZE=$san \
        "$rel/ds-tokenize" "$rel/ds-pretrain" "$rel/ds-synth" "$rel/ds-eval" \
        > "$BATS_FILE_TMPDIR/build.log" 2>&1 || { tail -n 20 "$BATS_FILE_TMPDIR/build.log"; return 1; }
    local d="$BATS_FILE_TMPDIR"
    printf 'the cat sat on the mat. 12 + 34 = 46\nthe dog sat on the log.\n' > "$d/text.txt"
    ds-tokenize train --vocab-size 300 --special '<|endoftext|>' -o "$d/tok.json" "$d/text.txt"
    ds-tokenize encode -t "$d/tok.json" -o "$d/text" "$d/text.txt"
    jq '.vocab_size = 300' "$ROOT/recipes/tiny-moe.json" > "$d/cfg.json"
}

# sweep VAR TOOL ARGS...: runs $FAULT_BIN/TOOL ARGS with VAR=1, 2, ... 20, then growing by half
# (every N with FAULT_SWEEP=all),
# until a run succeeds (no fault reached). Outputs go to $OUT, emptied before each run; a run
# without faults first writes the reference outputs. Prints the number of failing runs; fails the
# test on the first run that breaks the rules.
sweep() {
    local var="$1" tool="$2" n=1 fired=0 ref="$BATS_TEST_TMPDIR/ref"
    shift 2
    rm -rf "$OUT" "$ref" && mkdir -p "$OUT"
    "$FAULT_BIN/$tool" "$@" > /dev/null 2>&1 || { echo "$tool fails without faults"; return 1; }
    mv "$OUT" "$ref"
    while :; do
        rm -rf "$OUT" && mkdir -p "$OUT"
        run env "$var=$n" "$FAULT_BIN/$tool" "$@"
        if [ "$status" -eq 0 ]; then
            [[ "$output" != *"fault injected"* ]] || { echo "$var=$n: exit 0 after an injected fault"; echo "$output"; return 1; }
            break
        fi
        fired=$((fired + 1))
        [ "$status" -eq 1 ] || { echo "$var=$n: exit $status (want 1)"; echo "$output"; return 1; }
        [[ "$output" == *"$tool: "* ]] || { echo "$var=$n: no '$tool: ' message"; echo "$output"; return 1; }
        local f
        for f in $(ls -A "$OUT"); do
            cmp -s "$OUT/$f" "$ref/$f" || { echo "$var=$n: left $f, which is not a complete output"; echo "$output"; return 1; }
        done
        if [ "$n" -lt 20 ] || [ "${FAULT_SWEEP:-}" = all ]; then n=$((n + 1)); else n=$((n + n / 2)); fi
    done
    [ "$fired" -gt 0 ] || { echo "$var: no fault was reached"; return 1; }
    echo "$var: $fired failing runs, success from $n" >&3
}

setup() { OUT="$BATS_TEST_TMPDIR/out"; }

@test "fault: an allocation failure is 'PROG: out of memory (N bytes)' and exit 1, not an abort" {
    run env DS_FAULT_ALLOC=1 "$FAULT_BIN/ds-synth" corpus --n 5 -o "$BATS_TEST_TMPDIR/c.jsonl"
    [ "$status" -eq 1 ]
    assert_output --regexp "ds-synth: out of memory \([0-9]+ bytes\)"
    [ ! -e "$BATS_TEST_TMPDIR/c.jsonl" ]
}

@test "fault: the normal build has no fault counters (DS_FAULT_ALLOC is ignored)" {
    run env DS_FAULT_ALLOC=1 DS_FAULT_WRITE=1 ds-synth corpus --n 5 -o "$BATS_TEST_TMPDIR/c.jsonl"
    assert_success
    [ -s "$BATS_TEST_TMPDIR/c.jsonl" ]
}

@test "fault: ds-tokenize encode, allocation and write failures leave no shard and no temp" {
    local d="$BATS_FILE_TMPDIR"
    sweep DS_FAULT_ALLOC ds-tokenize encode -t "$d/tok.json" -o "$OUT/train" "$d/text.txt"
    sweep DS_FAULT_WRITE ds-tokenize encode -t "$d/tok.json" -o "$OUT/train" "$d/text.txt"
}

@test "fault: ds-pretrain train, allocation and write failures leave no partial checkpoint and no temp" {
    local d="$BATS_FILE_TMPDIR"
    local args=(train --config "$d/cfg.json" --data "$d/text-000000.tar" --tokenizer "$d/tok.json"
        --seq-len 8 --batch 2 --steps 2 --eval-every 0 --threads 1 --peak-gflops 1 --metrics /dev/null)
    sweep DS_FAULT_ALLOC ds-pretrain "${args[@]}" -o "$OUT/ck.tar"
    sweep DS_FAULT_WRITE ds-pretrain "${args[@]}" -o "$OUT/ck.tar"
}

@test "fault: ds-synth corpus, allocation and write failures leave no partial corpus and no temp" {
    sweep DS_FAULT_ALLOC ds-synth corpus --n 20 --seed 1 -o "$OUT/c.jsonl"
    sweep DS_FAULT_WRITE ds-synth corpus --n 20 --seed 1 -o "$OUT/c.jsonl"
}

@test "fault: ds-eval, allocation and write failures leave no partial graded lines or summary, no temp" {
    needs_data gsm8k/test.jsonl
    local t="$BATS_TEST_TMPDIR"
    head -n 20 "$DATA/gsm8k/test.jsonl" > "$t/p.jsonl"
    jq -c '{id: input_line_number, sample: 0, completion: .answer}' "$t/p.jsonl" > "$t/c.jsonl"
    sweep DS_FAULT_ALLOC ds-eval --task gsm8k --problems "$t/p.jsonl" "$t/c.jsonl" -o "$OUT/o.jsonl" --summary "$OUT/s.json"
    sweep DS_FAULT_WRITE ds-eval --task gsm8k --problems "$t/p.jsonl" "$t/c.jsonl" -o "$OUT/o.jsonl" --summary "$OUT/s.json"
}
