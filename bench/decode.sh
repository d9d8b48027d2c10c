#!/usr/bin/env bash
# decode.sh — rollout decoding against the machine's limits: ds-infer generate on the TinyZero
# model (recipes/tinyzero-model.json) in the shape of make tinyzero's GRPO rollouts (16 Countdown
# prompts under the R1 template × 8 samples = 128 sequences, temperature 1, 256 new tokens) and at
# batch 1, on 1 and 2 threads, with and without prefix sharing, and optionally against an older
# build. Each case's FLOPs and bytes per decoded token (weights read once per step for all rows,
# plus the latent cache each row attends over) are set against the sgemm ceiling and the memory
# bandwidth measured in the same run.
#
# Usage: bench/decode.sh [OLD_BIN_DIR]      (writes the table to stdout; results/decode.md keeps one)
#   BIN=DIR the build (default bin)  STEPS=N pretraining steps of the model (default 60)
#   GEN=N new tokens per sample (default 256)
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${BIN:-bin}" old="${1:-}" steps="${STEPS:-60}"
data="${DS_DATA:-../shared/data}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# a model with the TinyZero shape, briefly trained on Countdown problems written as text
head -n 4000 "$data/countdown/tinyzero_train.jsonl" |
    jq -r '"Using the numbers \(.nums), create an equation that equals \(.target)."' > "$tmp/corpus.txt"
"$bin/ds-tokenize" train --vocab-size 1024 --special '<|endoftext|>' --pretokenizer digits -o "$tmp/tok.json" \
    "$tmp/corpus.txt" 2> /dev/null
"$bin/ds-tokenize" encode -t "$tmp/tok.json" -o "$tmp/c" "$tmp/corpus.txt" 2> /dev/null
"$bin/ds-pretrain" train --config recipes/tinyzero-model.json --data "$tmp/c-000000.tar" --tokenizer "$tmp/tok.json" \
    --seq-len 128 --batch 8 --steps "$steps" --eval-every 0 --threads 2 --metrics /dev/null -o "$tmp/m.tar"
head -n 16 "$data/countdown/tinyzero_test.jsonl" | jq -c '{id: ("t\(.index)"), nums, target}' > "$tmp/problems.jsonl"
"$bin/ds-eval" prompts --task countdown --problems "$tmp/problems.jsonl" --template r1 > "$tmp/prompts.jsonl"
head -n 1 "$tmp/prompts.jsonl" > "$tmp/one.jsonl"

mm=$("$bin/ds-pretrain" info "$tmp/m.tar" | jq -r '.matmul_flops_per_token')
wbytes=$("$bin/ds-pretrain" info "$tmp/m.tar" | jq -r '.active_params * 4')
plen=$("$bin/ds-tokenize" encode -t "$tmp/tok.json" --jsonl --field prompt --jsonl-ids "$tmp/prompts.jsonl" |
    jq -s 'map(length) | add / length | floor')
# absorbed attention per token and layer: scores over (kv_lora_rank + rope dim) and the weighted
# sum over kv_lora_rank, for every head, against n cached positions (2 FLOPs per multiply-add)
cfg=recipes/tinyzero-model.json
attn_per_pos=$(jq '2 * .num_attention_heads * (2 * .kv_lora_rank + .qk_rope_head_dim) * .num_hidden_layers' "$cfg")
cache_per_pos=$(jq '4 * (.kv_lora_rank + .qk_rope_head_dim) * .num_hidden_layers' "$cfg")

gen="${GEN:-256}"
ceiling() { "$bin/bench/sgemm_ceiling" --threads "$1" | jq .gflops_best; }
bandwidth() { "$bin/bench/mem_bandwidth" --threads "$1" | jq .read_gb_per_s_best; }
run() { # BIN THREADS BATCH N PROMPTS ARGS... → "tokens seconds shared"
    local b=$1 t=$2 batch=$3 n=$4 p=$5; shift 5
    "$b/ds-infer" generate -m "$tmp/m.tar" --n "$n" --temperature 1 --seed 1 --batch "$batch" --max-tokens "$gen" \
        --threads "$t" --stats "$tmp/s.json" "$@" "$p" > "$tmp/out.jsonl"
    jq -r '"\(.tokens) \(.seconds) \(.prefix_shared_tokens // 0) \(.forwards) \(.samples)"' "$tmp/s.json"
}
printf '| build | threads | batch | prefix sharing | new tokens/s | GFLOP/s executed | of sgemm ceiling | GB/s | of bandwidth |\n'
printf '|---|---|---|---|---:|---:|---:|---:|---:|\n'
for t in 1 2; do
    ceil=$(ceiling "$t") bw=$(bandwidth "$t")
    for b in "$bin" ${old:+"$old"}; do
        label=new; [ "$b" = "$old" ] && label=old
        for shape in "128 8 prompts" "1 1 one"; do
            read -r batch n p <<< "$shape"
            for share in on off; do
                [ "$share" = off ] && [ "$label" = old ] && continue
                [ "$batch" = 1 ] && [ "$share" = off ] && continue
                args=()
                [ "$share" = off ] && [ "$label" = new ] && args=(--no-prefix-share)
                [ "$label" = old ] && share="(none)"
                read -r tok sec shared fwd ns < <(run "$b" "$t" "$batch" "$n" "$tmp/$p.jsonl" "${args[@]}")
                # FLOPs executed: each decoded token's matmuls + attention over the mean context,
                # and each prompt token computed (not copied from a shared prefix) over half the
                # prompt; bytes: the weights once per forward, each token's cache reads
                awk -v tok="$tok" -v sec="$sec" -v fwd="$fwd" -v mm="$mm" -v ap="$attn_per_pos" -v cp="$cache_per_pos" \
                    -v ctx="$((plen + gen / 2))" -v pl="$plen" -v ns="$ns" -v sh="$shared" -v wb="$wbytes" \
                    -v ceil="$ceil" -v bw="$bw" -v L="$label" -v t="$t" -v B="$batch" -v S="$share" 'BEGIN {
                        pt = ns * pl - sh
                        fl = tok * (mm + ap * ctx) + pt * (mm + ap * pl / 2); by = fwd * wb + (tok * ctx + pt * pl / 2) * cp
                        printf "| %s | %d | %d | %s | %.0f | %.1f | %.1f%% | %.1f | %.1f%% |\n", L, t, B, S, tok / sec,
                            fl / sec / 1e9, 100 * fl / sec / 1e9 / ceil, by / sec / 1e9, 100 * by / sec / 1e9 / bw }'
            done
        done
    done
    echo "sgemm ceiling ($t threads): $ceil GFLOP/s; read bandwidth: $bw GB/s" >&2
done
