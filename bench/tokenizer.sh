#!/usr/bin/env bash
# tokenizer.sh — ds-tokenize against sentencepiece (spm_train/spm_encode, BPE) at the same vocabulary
# size on tinyshakespeare: training time and encoding throughput, median of REPS runs each.
#   bench/tokenizer.sh [INPUT] [VOCAB] [REPS] [COPIES]   (DS_BIN picks the build, default bin/)
# COPIES > 1 measures on the input concatenated that many times (start-up costs amortized).
# Prints one line per measurement and the two ratios (ds over sentencepiece; > 1 means ds is better).
set -euo pipefail
cd "$(dirname "$0")/.."
DS_BIN="${DS_BIN:-$PWD/bin}"
INPUT="${1:-../shared/data/tinyshakespeare/input.txt}"
VOCAB="${2:-4096}"
REPS="${3:-5}"
COPIES="${4:-1}"
command -v spm_train >/dev/null || { echo "spm_train not found (Debian package sentencepiece)" >&2; exit 1; }
[ -r "$INPUT" ] || { echo "missing $INPUT" >&2; exit 1; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
if [ "$COPIES" -gt 1 ]; then
    for _ in $(seq "$COPIES"); do cat "$INPUT"; done > "$TMP/input.txt"
    echo "input: $COPIES copies of $INPUT"
    INPUT="$TMP/input.txt"
fi

# seconds CMD...: wall time of one run, output discarded
seconds() {
    local t0 t1
    t0=$(date +%s.%N)
    "$@" > /dev/null
    t1=$(date +%s.%N)
    awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}'
}
calc() { awk "BEGIN {print $1}"; }
# median REPS CMD...
median() {
    local reps="$1"; shift
    for _ in $(seq "$reps"); do seconds "$@"; done | sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'
}

bytes=$(stat -c %s "$INPUT")
ds_train=$(median "$REPS" "$DS_BIN/ds-tokenize" train --vocab-size "$VOCAB" -o "$TMP/ds.json" "$INPUT")
spm_train_s=$(median "$REPS" spm_train --input="$INPUT" --model_prefix="$TMP/spm" --vocab_size="$VOCAB" \
    --model_type=bpe --minloglevel=2)
ds_enc=$(median "$REPS" "$DS_BIN/ds-tokenize" encode -t "$TMP/ds.json" --jsonl-ids "$INPUT")
spm_enc=$(median "$REPS" bash -c "spm_encode --model='$TMP/spm.model' --output_format=id < '$INPUT'")
ds_tokens=$("$DS_BIN/ds-tokenize" encode -t "$TMP/ds.json" --jsonl-ids "$INPUT" | tr ',' '\n' | wc -l)
spm_tokens=$(spm_encode --model="$TMP/spm.model" --output_format=id < "$INPUT" | wc -w)

echo "input: $INPUT ($bytes bytes), vocab $VOCAB, median of $REPS runs, $(nproc) cores"
printf 'train   ds-tokenize %8.3f s   spm_train  %8.3f s\n' "$ds_train" "$spm_train_s"
printf 'encode  ds-tokenize %8.3f s (%6.1f MB/s, %d tokens)   spm_encode %8.3f s (%6.1f MB/s, %d tokens)\n' \
    "$ds_enc" "$(calc "$bytes / $ds_enc / 1000000")" "$ds_tokens" \
    "$spm_enc" "$(calc "$bytes / $spm_enc / 1000000")" "$spm_tokens"
printf 'ratio train time (spm / ds):        %6.2f  (goal >= 1)\n' "$(calc "$spm_train_s / $ds_train")"
printf 'ratio encode throughput (ds / spm): %6.2f  (goal >= 2)\n' "$(calc "$spm_enc / $ds_enc")"
