# helpers.bash — loaded by every tests/*.bats file.
#   DS_BIN   folder of the binaries under test (bin/ or bin-asan/); set by `make test`
#   DATA     ../shared/data, the real public data the tests read (never copied into the repo)
bats_load_library bats-support
bats_load_library bats-assert

ROOT="$(cd "$BATS_TEST_DIRNAME/.." && pwd)"
DS_BIN="${DS_BIN:-$ROOT/bin}"
DATA="${DS_DATA:-$ROOT/../shared/data}"
PATH="$DS_BIN:$PATH"
# A sanitizer finding exits 86, never 1: `[ "$status" -eq 1 ]` (a handled error) cannot pass on a
# memory error or undefined behaviour. LeakSanitizer reports through ASan's exit code.
DS_SANITIZER_EXIT=86
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:halt_on_error=1:exitcode=$DS_SANITIZER_EXIT}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1:exitcode=$DS_SANITIZER_EXIT}"

# unit PROGRAM CASE...: runs C unit-test cases from bin/tests/test_PROGRAM and shows their output
# when they fail.
unit() {
    local prog="$1"; shift
    run "$DS_BIN/tests/test_$prog" "$@"
    if [ "$status" -ne 0 ]; then echo "$output"; fi
    [ "$status" -eq 0 ]
}

# needs_data FILE: skip when ../shared/data lacks FILE
needs_data() {
    [ -e "$DATA/$1" ] || skip "missing $DATA/$1"
}

# shakespeare_shards DIR BYTES: DIR/train.txt (the first BYTES of tiny-shakespeare), a 512-token
# BPE tokenizer DIR/tok.json trained on it, and its shard DIR/train-000000.tar.
shakespeare_shards() {
    needs_data tinyshakespeare/input.txt
    head -c "$2" "$DATA/tinyshakespeare/input.txt" > "$1/train.txt"
    ds-tokenize train --vocab-size 512 --special '<|endoftext|>' -o "$1/tok.json" "$1/train.txt"
    ds-tokenize encode -t "$1/tok.json" -o "$1/train" "$1/train.txt"
}

# addition problems "What is a+b?" as SFT records in the R1 form (also math/gsm8k problem records,
# with an "answer" field): addition N SEED
addition() {
    awk -v n="$1" -v seed="$2" 'BEGIN { srand(seed); for (i = 0; i < n; i++) {
        a = int(rand() * 10); b = int(rand() * 10);
        printf "{\"id\":\"%d-%d\",\"prompt\":\"What is %d+%d?\",\"completion\":\" <think>%d+%d=%d</think> <answer>%d</answer>\",\"answer\":\"%d\"}\n",
            seed, i, a, b, a, b, a + b, a + b, a + b } }'
}
