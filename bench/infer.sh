#!/usr/bin/env bash
# infer.sh — decoding speed of ds-infer: tokens/s at batch 1 and 16, at context 128 and 1024,
# with MLA's latent ("absorbed") cache and with the expanded per-head cache (naive); and MTP
# speculative decoding's acceptance rate and speed-up, on a model trained by ds-pretrain.
#
# Usage: bench/infer.sh [MODEL.tar]
#   Without MODEL, trains recipes/moe-15m.json for $STEPS (default 300) steps on tiny-shakespeare
#   (4096-token BPE) first. BIN=DIR picks the build (default bin); THREADS=N (default 2).
# Decode tokens/s excludes the prompt: each case runs twice, generating GEN (default 64) tokens and
# 1 token, and decode speed = (tokens of the first − tokens of the second) / (time difference).
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${BIN:-bin}" threads="${THREADS:-2}" gen="${GEN:-64}" steps="${STEPS:-300}"
data="${DS_DATA:-../shared/data}/tinyshakespeare/input.txt"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=$(wc -c < "$data")
head -c $((n * 9 / 10)) "$data" > "$tmp/train.txt"
tail -c $((n / 10)) "$data" > "$tmp/val.txt"
model="${1:-}"
if [ -z "$model" ]; then
    "$bin/ds-tokenize" train --vocab-size 4096 --special '<|endoftext|>' -o "$tmp/tok.json" "$tmp/train.txt"
    "$bin/ds-tokenize" encode -t "$tmp/tok.json" -o "$tmp/train" "$tmp/train.txt"
    "$bin/ds-pretrain" train --config recipes/moe-15m.json --data "$tmp/train-000000.tar" --tokenizer "$tmp/tok.json" \
        --seq-len 256 --batch 8 --steps "$steps" --lr 3e-3 --eval-every 0 --threads "$threads" \
        -o "$tmp/model.tar" --metrics "$tmp/train.jsonl"
    model="$tmp/model.tar"
    echo "model: recipes/moe-15m.json, $steps steps, final loss $(tail -1 "$tmp/train.jsonl" | jq .loss)"
fi
"$bin/ds-pretrain" export "$model" "$tmp/hf" > /dev/null
# 16 prompts of each context length, from held-out text
"$bin/ds-tokenize" encode -t "$tmp/hf/tokenizer.json" --jsonl-ids < "$tmp/val.txt" > "$tmp/val.ids"
prompts() { # CTX COUNT
    jq -c --argjson c "$1" --argjson k "$2" '. as $a | range(0; $k) | {id: ("p\(.)"), ids: $a[(. * 97) : (. * 97 + $c)]}' "$tmp/val.ids"
}
run() { # CTX BATCH MAXTOK ARGS... → prints "tokens seconds cache_bytes acceptance"
    local c=$1 b=$2 m=$3; shift 3
    prompts "$c" "$b" | "$bin/ds-infer" generate -m "$model" --temperature 0 --batch "$b" --max-tokens "$m" \
        --max-len $((c + gen + 8)) --threads "$threads" --stats "$tmp/s.json" "$@" > /dev/null
    jq -r '"\(.tokens) \(.seconds) \(.cache_bytes_per_token) \(.acceptance)"' "$tmp/s.json"
}
decode() { # CTX BATCH ARGS... → "tok/s cache_bytes acceptance"
    local c=$1 b=$2; shift 2
    read -r t1 s1 cb acc < <(run "$c" "$b" "$gen" "$@")
    read -r t0 s0 _ _ < <(run "$c" "$b" 1 "$@")
    awk -v a="$t1" -v b="$t0" -v x="$s1" -v y="$s0" -v cb="$cb" -v acc="$acc" \
        'BEGIN { printf "%.0f %s %s\n", (a - b) / (x - y), cb, acc }'
}
echo
echo "Decode tokens/s (greedy, $gen new tokens per sequence, $threads threads):"
echo
echo "| context | batch | cache | bytes/token | decode tokens/s |"
echo "|---|---|---|---|---|"
for c in 128 1024; do
    for b in 1 16; do
        for a in absorbed naive; do
            read -r tps cb _ < <(decode "$c" "$b" --attn "$a")
            echo "| $c | $b | $a | $cb | $tps |"
        done
    done
done
echo
echo "MTP speculative decoding (greedy, context 128):"
echo
echo "| batch | plain tokens/s | speculative tokens/s | speed-up | acceptance |"
echo "|---|---|---|---|---|"
for b in 1 16; do
    read -r p _ _ < <(decode 128 "$b")
    read -r s _ acc < <(decode 128 "$b" --speculative mtp)
    awk -v b="$b" -v p="$p" -v s="$s" -v a="$acc" 'BEGIN { printf "| %d | %.0f | %.0f | %.2f× | %.1f%% |\n", b, p, s, s / p, 100 * a }'
done
