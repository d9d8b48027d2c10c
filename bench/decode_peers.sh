#!/usr/bin/env bash
# decode_peers.sh — ds-infer against llama.cpp on the same dense model, same threads, same
# precision (f32 weights, f32 KV cache): batch-1 decode and prompt processing tokens/s, with the
# machine's sgemm ceiling and read bandwidth measured in the same run as the physical limits.
#
# Usage: bench/decode_peers.sh [CONFIG.json]   (default: a ~90M-parameter llama, recipes below)
#   BIN=DIR (default bin), THREADS="1 2", GEN=N decode tokens (64), PROMPT=N prompt tokens (256).
# The model has random weights (speed does not depend on them); llama.cpp reads the same weights
# from ds-pretrain export --gguf --dtype f32. llama.cpp is node-llama-cpp@3.21.1's prebuilt CPU
# build, installed into ~/.cache/ds-peers by this script (never by ds).
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${BIN:-bin}" gen="${GEN:-64}" plen="${PROMPT:-256}" threads="${THREADS:-1 2}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
peers="${DS_PEERS:-$HOME/.cache/ds-peers}/llama"
if [ ! -d "$peers/node_modules/node-llama-cpp" ]; then
    mkdir -p "$peers" && (cd "$peers" && npm i -E --no-audit --no-fund node-llama-cpp@3.21.1 > npm.log 2>&1)
fi
cp tests/peers/llama_cpp_speed.mjs "$peers/"
config="${1:-}"
if [ -z "$config" ]; then
    config="$tmp/llama-90m.json"
    jq -n '{model_type: "llama", vocab_size: 4096, hidden_size: 768, intermediate_size: 2048,
            num_hidden_layers: 12, num_attention_heads: 12, num_key_value_heads: 4, head_dim: 64,
            max_position_embeddings: 2048, rms_norm_eps: 1e-6, rope_theta: 10000.0,
            initializer_range: 0.02, tie_word_embeddings: false}' > "$config"
fi
data="${DS_DATA:-../shared/data}/tinyshakespeare/input.txt"
head -c 200000 "$data" > "$tmp/t.txt"
"$bin/ds-tokenize" train --vocab-size "$(jq .vocab_size "$config")" --special '<|endoftext|>' -o "$tmp/tok.json" "$tmp/t.txt" 2> /dev/null
"$bin/ds-tokenize" encode -t "$tmp/tok.json" -o "$tmp/d" "$tmp/t.txt" 2> /dev/null
# one tiny step makes a checkpoint with initialised weights
"$bin/ds-pretrain" train --config "$config" --data "$tmp/d-000000.tar" --tokenizer "$tmp/tok.json" --seq-len 16 \
    --batch 1 --steps 1 --eval-every 0 --threads 2 -o "$tmp/m.tar" --metrics /dev/null 2> /dev/null
"$bin/ds-pretrain" export --gguf --dtype f32 "$tmp/m.tar" "$tmp/m.gguf"
params=$("$bin/ds-pretrain" info "$tmp/m.tar" | jq .params)
echo "model: $(jq -c '{model_type, hidden_size, num_hidden_layers, vocab_size}' "$config"), $params parameters (f32: $((params * 4 / 1000000)) MB)"
V=$(jq .vocab_size "$config")
ids() { jq -nc --argjson n "$1" --argjson v "$V" '[range(0; $n) | 1 + ((. * 7919) % ([$v - 2, 1000] | min))]'; }
ds_run() { # THREADS PROMPT_LEN MAXTOK → "tokens seconds"
    printf '{"id":"a","ids":%s}\n' "$(ids "$2")" | "$bin/ds-infer" generate -m "$tmp/m.tar" --temperature 0 --batch 1 \
        --max-tokens "$3" --max-len $(($2 + $3 + 16)) --threads "$1" --stats "$tmp/s.json" > /dev/null
    jq -r '"\(.tokens) \(.seconds)"' "$tmp/s.json"
}
for t in $threads; do
    "$bin/bench/sgemm_ceiling" --threads "$t" | jq -c '{sgemm_gflops: .gflops_best, threads}'
    "$bin/bench/mem_bandwidth" --threads "$t" --mib 1024 --reps 5 | jq -c '{read_gb_per_s: .read_gb_per_s_best, threads}'
    # ds decode: (time for GEN tokens − time for 1) / (GEN − 1), short prompt; best of 3
    best=0
    for r in 1 2 3; do
        read -r n1 s1 <<< "$(ds_run "$t" 8 1)"
        read -r n2 s2 <<< "$(ds_run "$t" 8 "$gen")"
        best=$(awk -v a="$best" -v n="$((n2 - n1))" -v s="$(awk -v x="$s2" -v y="$s1" 'BEGIN { print x - y }')" 'BEGIN { v = n / s; print (v > a ? v : a) }')
    done
    # ds prompt processing: a PROMPT-token prompt, 1 token generated
    ppbest=0
    for r in 1 2 3; do
        read -r n s <<< "$(ds_run "$t" "$plen" 1)"
        ppbest=$(awk -v a="$ppbest" -v p="$plen" -v s="$s" 'BEGIN { v = p / s; print (v > a ? v : a) }')
    done
    echo "{\"peer\":\"ds-infer\",\"threads\":$t,\"prompt_tokens_per_s\":$ppbest,\"decode_tokens_per_s\":$best}"
    (cd "$peers" && node llama_cpp_speed.mjs "$tmp/m.gguf" "$t" "$plen" "$gen" 3 "$V")
done
