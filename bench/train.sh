#!/usr/bin/env bash
# train.sh — training speed of ds-pretrain on CPU: tokens/s and MFU against the measured sgemm
# ceiling, for recipes/dense-15m.json and recipes/moe-15m.json at batch 8, sequence 256, 2 threads.
#
# Usage: bench/train.sh [ROUNDS [STEPS]]      (defaults 3 rounds of 8 steps per config)
#   BIN=DIR    the build to measure (default bin; needs ds-tokenize, ds-pretrain, bench/sgemm_ceiling)
#   THREADS=N  threads for training and for the ceiling (default 2)
#   PEAK=X     the ceiling in GFLOP/s to take MFU against (default: the best this script measures;
#              on a busy machine that is too low, so pass the idle machine's figure)
#
# Per run the figures are the medians over its steps after the first 2 (warm-up) of the metrics'
# tokens_per_s and mfu; mfu is against the ceiling passed as --peak-gflops: PEAK, or else the best
# ceiling measured by this script (bench/sgemm_ceiling: n=1024 sgemm, the same threads, best of 10,
# three times before the runs and once before each run). The machine may be shared, so each run
# also reports its CPU share, (user + system CPU time) / (threads × wall time): 1 means the run had
# its cores to itself. Where
# it is below 1 the table adds tokens/s ÷ share, an estimate of the speed on an idle machine (it
# assumes the lost time is spread evenly), and MFU against the ceiling measured just before the
# run ("ceiling now"), which the other processes slow down too. Rounds alternate the configs.
# Prints Markdown tables.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-3}" steps="${2:-8}" bin="${BIN:-bin}" threads="${THREADS:-2}"
data="${DS_DATA:-../shared/data}/tinyshakespeare/input.txt"
for t in ds-tokenize ds-pretrain bench/sgemm_ceiling; do
    [ -x "$bin/$t" ] || { echo "train.sh: $bin/$t missing; run make first" >&2; exit 1; }
done
[ -f "$data" ] || { echo "train.sh: $data missing" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Shards: a 4096-token BPE tokenizer trained on the first 90% of tiny-shakespeare.
n=$(wc -c < "$data")
head -c $((n * 9 / 10)) "$data" > "$tmp/train.txt"
"$bin/ds-tokenize" train --vocab-size 4096 --special '<|endoftext|>' -o "$tmp/tok.json" "$tmp/train.txt"
"$bin/ds-tokenize" encode -t "$tmp/tok.json" -o "$tmp/train" "$tmp/train.txt"

ceiling() { "$bin/bench/sgemm_ceiling" --threads "$threads" --reps 10 | grep -o '"gflops_best":[0-9.]*' | cut -d: -f2; }
median_after2() { tail -n +3 | sort -g | awk '{a[NR] = $1} END { if (NR) print a[int((NR + 1) / 2)]; else print 0 }'; }
best=0
update_best() { best=$(awk -v a="$best" -v b="$1" 'BEGIN { print (b > a ? b : a) }'); }
for _ in 1 2 3; do update_best "$(ceiling)"; done
peak() { echo "${PEAK:-$best}"; }

echo "| round | config | load avg (1 min) | ceiling now (GFLOP/s) | tokens/s | CPU share | MFU | tokens/s ÷ share | MFU ÷ share | MFU vs ceiling now |"
echo "|---|---|---|---|---|---|---|---|---|---|"
TIMEFORMAT="%R %U %S"
for r in $(seq 1 "$rounds"); do
    for c in dense-15m moe-15m; do
        load=$(cut -d' ' -f1 /proc/loadavg)
        now=$(ceiling)
        update_best "$now"
        { time "$bin/ds-pretrain" train --config recipes/$c.json --data "$tmp/train-000000.tar" \
            --tokenizer "$tmp/tok.json" --batch 8 --seq-len 256 --steps "$steps" --eval-every 0 \
            --threads "$threads" --peak-gflops "$(peak)" --seed $((1234 + r)) -o "$tmp/ck.tar" \
            --metrics "$tmp/$c-$r.jsonl" 2> "$tmp/err"; } 2> "$tmp/time" || { cat "$tmp/err" >&2; exit 1; }
        share=$(awk -v t="$threads" '{ printf "%.3f", ($2 + $3) / (t * $1) }' "$tmp/time")
        tps=$(grep -o '"tokens_per_s":[0-9.eE+-]*' "$tmp/$c-$r.jsonl" | cut -d: -f2 | median_after2)
        mfu=$(grep -o '"mfu":[0-9.eE+-]*' "$tmp/$c-$r.jsonl" | cut -d: -f2 | median_after2)
        mnow=$(awk -v m="$mfu" -v p="$(peak)" -v n="$now" 'BEGIN { print m * p / n }')
        awk -v r="$r" -v c="$c" -v l="$load" -v n="$now" -v t="$tps" -v s="$share" -v m="$mfu" -v mn="$mnow" 'BEGIN {
            printf "| %d | %s | %s | %.0f | %.0f | %.2f | %.1f%% | %.0f | %.1f%% | %.1f%% |\n", r, c, l, n, t, s, 100 * m, t / s, 100 * m / s, 100 * mn }'
        echo "$c $mfu $share $mnow" >> "$tmp/mfu"
    done
done
echo
echo "Best sgemm ceiling measured now: $best GFLOP/s ($threads threads); MFU is against $(peak) GFLOP/s."
echo
echo "| config (medians over rounds) | MFU | MFU ÷ share | MFU vs ceiling now | goal |"
echo "|---|---|---|---|---|"
med() { sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
for c in dense-15m moe-15m; do
    goal=$([ $c = dense-15m ] && echo 50% || echo 30%)
    m=$(grep "^$c " "$tmp/mfu" | awk '{ print $2 }' | med)
    a=$(grep "^$c " "$tmp/mfu" | awk '{ print $2 / $3 }' | med)
    n=$(grep "^$c " "$tmp/mfu" | awk '{ print $4 }' | med)
    awk -v c=$c -v g=$goal -v m="$m" -v a="$a" -v n="$n" 'BEGIN { printf "| %s | %.1f%% | %.1f%% | %.1f%% | %s |\n", c, 100 * m, 100 * a, 100 * n, g }'
done
