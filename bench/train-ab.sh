#!/usr/bin/env bash
# train-ab.sh OLD_BIN NEW_BIN [ROUNDS] — the same training run on two builds, alternating them
# each round: 10 ds-pretrain steps of recipes/dense-15m.json and moe-15m.json, batch 8 × 256,
# 1 thread, on a 4096-token BPE of the first 300 kB of tiny-shakespeare. Prints per run
# "round config build cpu_s wall_s tokens_per_s" with cpu_s = user + system CPU seconds, which a
# busy machine disturbs far less than the wall time (bench/train.sh measures wall-clock speed).
# OLD_BIN: e.g. `git archive REV | tar -x -C DIR && make -C DIR -j2 all`, then DIR/bin.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
old=$1 new=$2 rounds=${3:-3}
W=$(mktemp -d "${TMPDIR:-/tmp}/ds-train-ab.XXXXXX")
trap 'rm -rf "$W"' EXIT
head -c 300000 "${DS_DATA:-$ROOT/../shared/data}/tinyshakespeare/input.txt" > "$W/train.txt"
"$new/ds-tokenize" train --vocab-size 4096 --special '<|endoftext|>' -o "$W/tok.json" "$W/train.txt" 2>/dev/null
"$new/ds-tokenize" encode -t "$W/tok.json" -o "$W/train" "$W/train.txt" 2>/dev/null
for r in $(seq 1 "$rounds"); do
    for cfg in dense-15m moe-15m; do
        for b in old new; do
            bin=$old; [ "$b" = new ] && bin=$new
            /usr/bin/time -f "%U %S %e" -o "$W/t.txt" "$bin/ds-pretrain" train --config "$ROOT/recipes/$cfg.json" \
                --data "$W/train-000000.tar" --tokenizer "$W/tok.json" --seq-len 256 --batch 8 --steps 10 \
                --eval-every 0 --threads 1 --peak-gflops 100 -o "$W/x.tar" --metrics "$W/m.jsonl" 2>/dev/null
            echo "$r $cfg $b $(awk '{printf "%.2f %.2f", $1 + $2, $3}' "$W/t.txt") \
$(jq -s 'map(.tokens_per_s) | .[2:] | sort | .[length / 2 | floor]' "$W/m.jsonl")"
        done
    done
done
