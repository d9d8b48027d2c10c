#!/usr/bin/env bash
# run.sh SECONDS [NAME...] — runs each libFuzzer target (bin-fuzz/fuzz_NAME; all of them by default)
# for SECONDS on its corpus fuzz/corpus/NAME/ (kept between runs), fresh seeds (fuzz/seeds.sh) and
# the committed inputs of past findings (fuzz/regressions/NAME/, all run at the start),
# and prints one TAP-style line per target: "ok - fuzz NAME: ..." or "not ok - fuzz NAME: ...".
# A crash, leak, timeout or out-of-memory input is kept under fuzz/crashes/NAME/; then it exits 1.
set -u -o pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
secs="${1:-60}"
shift || true
[ $# -gt 0 ] || set -- $(ls bin-fuzz/fuzz_* 2>/dev/null | sed 's|.*/fuzz_||')
[ $# -gt 0 ] || { echo "not ok - fuzz: no targets in bin-fuzz/ (make FUZZ=1 fuzzers)"; exit 1; }

seeds=build-fuzz/seeds
logs=build-fuzz/logs
rm -rf "$seeds"
mkdir -p "$logs"
if ! fuzz/seeds.sh "$seeds" > "$logs/seeds.log" 2>&1; then
    echo "not ok - fuzz: seed corpus: $(tail -n 1 "$logs/seeds.log")"
    exit 1
fi

# fuzz_one NAME: runs one target, prints its line (and the first sanitizer line of a finding)
fuzz_one() {
    local name="$1" bin corpus crashes log before after rc execs new cov units what
    bin="bin-fuzz/fuzz_$name" corpus="fuzz/corpus/$name" crashes="fuzz/crashes/$name" log="$logs/$name.log"
    mkdir -p "$corpus" "$crashes" "$seeds/$name"
    local regressions=()
    [ -d "fuzz/regressions/$name" ] && regressions=("fuzz/regressions/$name")
    before=$(ls "$crashes" | wc -l)
    # -close_fd_mask=2: lib/ warnings (skipped lines) stay out of the log; libFuzzer and the
    # sanitizers keep reporting on a copy of stderr. -timeout: an input running 25 s is a finding.
    "$bin" -max_total_time="$secs" -timeout=25 -print_final_stats=1 -close_fd_mask=2 \
        -artifact_prefix="$crashes/" "$corpus" "$seeds/$name" "${regressions[@]}" > "$log" 2>&1
    rc=$?
    after=$(ls "$crashes" | wc -l)
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | awk '{ print $2 }' | tail -n 1)
    new=$(grep -o 'stat::new_units_added: *[0-9]*' "$log" | awk '{ print $2 }' | tail -n 1)
    cov=$(grep -o 'cov: [0-9]* ft: [0-9]*' "$log" | tail -n 1)
    units=$(ls "$corpus" | wc -l)
    what="${execs:-?} execs in ${secs} s, ${cov:-cov: ?}, ${new:-?} new units (corpus $units)"
    if [ "$rc" -eq 0 ] && [ "$after" -eq "$before" ]; then
        echo "ok - fuzz $name: $what, 0 findings"
    else
        echo "not ok - fuzz $name: $what, finding (exit $rc), inputs in $crashes/, log $log"
        grep -m 1 -E 'ERROR: |SUMMARY: |runtime error' "$log" | sed 's/^/#   /'
    fi
}

# FUZZ_JOBS targets at a time (default 1); the lines come out in the order of the names.
jobs="${FUZZ_JOBS:-1}"
for name in "$@"; do
    while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n; done
    fuzz_one "$name" > "$logs/$name.line" &
done
wait
fail=0
for name in "$@"; do
    cat "$logs/$name.line"
    grep -q '^not ok' "$logs/$name.line" && fail=1
done
exit $fail
