#!/usr/bin/env bash
# checkpoint_load.sh — opens a Qwen2.5-0.5B-shaped Hugging Face folder (its real config: hidden 896,
# 24 layers, 14 heads, 2 KV heads, intermediate 4864, vocab 151936, tied; random BF16 weights and
# the released Qwen3 tokenizer, which has Qwen2.5's vocabulary) straight from the folder, and
# generates a few tokens. Prints the file size and, from /usr/bin/time -v, the wall time and peak
# RSS of opening and validating (`ds-pretrain info`) and of loading + generating (`ds-infer`).
#   bench/checkpoint_load.sh [WORKDIR]      (writes about 1 GB under WORKDIR, removed at the end)
# Set DS_OLD_BIN to a folder with an older ds-infer to measure it on the same folder.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${DS_BIN:-$PWD/bin}"
TOK="${DS_DATA:-$PWD/../shared/data}/released-tokenizers/qwen3"
[ -x /usr/bin/time ] || { echo "checkpoint_load.sh: needs /usr/bin/time (Debian package time)" >&2; exit 1; }
[ -f "$TOK/tokenizer.json" ] || { echo "checkpoint_load.sh: missing $TOK/tokenizer.json" >&2; exit 1; }
WORK="${1:-$(mktemp -d)}"
M="$WORK/qwen2.5-0.5b-shaped"
trap 'rm -rf "$M"' EXIT
mkdir -p "$M"
# ds's tokenizer does not run the NFC normalizer yet; the ASCII prompt is its own NFC form.
jq -c '.normalizer = null' "$TOK/tokenizer.json" > "$M/tokenizer.json"
cp "$TOK/tokenizer_config.json" "$M/"
cat > "$M/config.json" << 'EOF'
{
  "architectures": ["Qwen2ForCausalLM"],
  "model_type": "qwen2",
  "hidden_size": 896,
  "intermediate_size": 4864,
  "num_hidden_layers": 24,
  "num_attention_heads": 14,
  "num_key_value_heads": 2,
  "max_position_embeddings": 32768,
  "rms_norm_eps": 1e-06,
  "rope_theta": 1000000.0,
  "initializer_range": 0.02,
  "tie_word_embeddings": true,
  "torch_dtype": "bfloat16",
  "vocab_size": 151936,
  "bos_token_id": 151643,
  "eos_token_id": 151645
}
EOF
echo '{"bos_token_id": 151643, "eos_token_id": [151645, 151643]}' > "$M/generation_config.json"
# Random BF16 weights in Hugging Face's tensor order: N(0, 0.02) tiled from one 1M-value block
# (the values do not matter here, only the sizes), norms 1, biases 0.
python3 - "$M/model.safetensors" << 'EOF'
import json, random, struct, sys
d, F, V, L, H, KV, hd = 896, 4864, 151936, 24, 14, 2, 64
shapes = [("model.embed_tokens.weight", [V, d])]
for l in range(L):
    p = "model.layers.%d." % l
    shapes += [(p + "input_layernorm.weight", [d]),
               (p + "self_attn.q_proj.weight", [H * hd, d]), (p + "self_attn.k_proj.weight", [KV * hd, d]),
               (p + "self_attn.v_proj.weight", [KV * hd, d]), (p + "self_attn.q_proj.bias", [H * hd]),
               (p + "self_attn.k_proj.bias", [KV * hd]), (p + "self_attn.v_proj.bias", [KV * hd]),
               (p + "self_attn.o_proj.weight", [d, H * hd]), (p + "post_attention_layernorm.weight", [d]),
               (p + "mlp.gate_proj.weight", [F, d]), (p + "mlp.up_proj.weight", [F, d]),
               (p + "mlp.down_proj.weight", [d, F])]
shapes.append(("model.norm.weight", [d]))
rng = random.Random(1)
block = b"".join(struct.pack("<H", struct.unpack("<I", struct.pack("<f", rng.gauss(0, 0.02)))[0] >> 16)
                 for _ in range(1 << 20))
one = struct.pack("<H", 0x3F80)
header, at = {"__metadata__": {"format": "pt"}}, 0
for name, shape in shapes:
    n = 1
    for s in shape: n *= s
    header[name] = {"dtype": "BF16", "shape": shape, "data_offsets": [at, at + 2 * n]}
    at += 2 * n
h = json.dumps(header).encode()
h += b" " * (-len(h) % 8)
with open(sys.argv[1], "wb") as f:
    f.write(struct.pack("<Q", len(h)) + h)
    for name, shape in shapes:
        n = 1
        for s in shape: n *= s
        if name.endswith("norm.weight"): f.write(one * n)
        elif name.endswith(".bias"): f.write(bytes(2 * n))
        else:
            while n > 0:
                k = min(n, 1 << 20)
                f.write(block[:2 * k])
                n -= k
EOF
bytes=$(stat -c %s "$M/model.safetensors")
echo '{"id":"q","prompt":"The capital of France is"}' > "$WORK/prompt.jsonl"
measure() { # LABEL COMMAND...: wall and CPU (user + system) seconds, peak RSS, from /usr/bin/time -v
    local label="$1" log="$WORK/time.log"; shift
    /usr/bin/time -v "$@" > "$WORK/out.jsonl" 2> "$log"
    awk -v l="$label" -F': ' '/Elapsed \(wall clock\)/ { n = split($2, t, ":"); w = t[n] + (n > 1 ? 60 * t[n-1] : 0) }
        /User time/ { c += $2 } /System time/ { c += $2 } /Maximum resident set size/ { r = $2 / 1024 }
        END { printf "| %s | %.2f s | %.2f s | %.0f MiB |\n", l, w, c, r }' "$log"
}
echo "model.safetensors: $bytes bytes ($(awk -v b="$bytes" 'BEGIN { printf "%.0f", b / 1048576 }') MiB, BF16; F32 in memory: $(awk -v b="$bytes" 'BEGIN { printf "%.0f", 2 * b / 1048576 }') MiB)"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| run | wall | CPU | peak RSS |"
echo "|---|---|---|---|"
cat "$M/model.safetensors" > /dev/null # page cache warm: the runs measure ds, not the disk
measure "ds-pretrain info (open: map, validate header and config, EOS ids)" "$BIN/ds-pretrain" info "$M"
measure "ds-infer generate, 4 tokens (open + BF16 to F32 + tokenizer + decode)" \
    "$BIN/ds-infer" generate -m "$M" --max-tokens 4 --temperature 0 --max-len 64 --threads 2 "$WORK/prompt.jsonl"
jq -c '{completion, finish_reason, n_tokens}' "$WORK/out.jsonl"
if [ -n "${DS_OLD_BIN:-}" ]; then
    measure "the same with the reader that copied the file into memory" \
        "$DS_OLD_BIN/ds-infer" generate -m "$M" --max-tokens 4 --temperature 0 --max-len 64 --threads 2 "$WORK/prompt.jsonl"
fi
