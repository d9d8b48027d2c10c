#!/usr/bin/env bats
# ds-pretrain export --gguf: the file read back by an independent reader, and llama.cpp itself
# (node-llama-cpp's prebuilt CPU build, installed here into a cache folder, never by ds) running
# the exported models: greedy continuations equal ds-infer's, per-token log-probs agree.
load helpers

# llama.cpp through node-llama-cpp; installs it once into DS_PEERS (a cache outside the tree)
PEERS="${DS_PEERS:-$HOME/.cache/ds-peers}/llama"
llama_cpp() {
    if [ ! -d "$PEERS/node_modules/node-llama-cpp" ]; then
        command -v npm > /dev/null || skip "npm is not installed: llama.cpp peer unavailable"
        mkdir -p "$PEERS"
        (cd "$PEERS" && timeout 600 npm i -E --no-audit --no-fund node-llama-cpp@3.21.1 > npm.log 2>&1) ||
            skip "node-llama-cpp@3.21.1 could not be installed (see $PEERS/npm.log)"
    fi
    cp "$ROOT/tests/peers/llama_cpp.mjs" "$PEERS/"
    (cd "$PEERS" && node llama_cpp.mjs "$@")
}

setup_file() {
    local d="$BATS_FILE_TMPDIR"
    shakespeare_shards "$d" 300000
    jq '.model_type = "llama" | .vocab_size = 512 | .num_hidden_layers = 2 | .tie_word_embeddings = false' \
        "$ROOT/recipes/student-tiny.json" > "$d/llama.json"
    jq '.vocab_size = 512 | .num_hidden_layers = 2' "$ROOT/recipes/student-tiny.json" > "$d/qwen2.json"
    cp "$ROOT/recipes/tiny-moe.json" "$d/v3.json"
    # rope-scaled models, trained under their scaling; an original context of 16 positions, which
    # the 37 positions of the comparisons below run past
    jq '.rope_scaling = {"type": "linear", "factor": 2.0}' "$d/llama.json" > "$d/llama-linear.json"
    jq '.rope_scaling = {"rope_type": "llama3", "factor": 4.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
        "original_max_position_embeddings": 16}' "$d/llama.json" > "$d/llama-llama3.json"
    jq '.rope_scaling = {"type": "yarn", "factor": 4.0, "original_max_position_embeddings": 16}' \
        "$d/llama.json" > "$d/llama-yarn.json"
    # DeepSeek-V3's own form (mscale = mscale_all_dim = 1), and ds's defaults (mscale_all_dim 0)
    jq '.rope_scaling = {"type": "yarn", "factor": 4.0, "original_max_position_embeddings": 16, "beta_fast": 32,
        "beta_slow": 1, "mscale": 1.0, "mscale_all_dim": 1.0}' "$d/v3.json" > "$d/v3-yarn.json"
    jq '.rope_scaling = {"type": "yarn", "factor": 4.0, "original_max_position_embeddings": 16}' \
        "$d/v3.json" > "$d/v3-yarn0.json"
    jq '.rope_scaling = {"type": "linear", "factor": 2.0}' "$d/v3.json" > "$d/v3-linear.json"
    for m in llama qwen2 v3 llama-linear llama-llama3 llama-yarn v3-yarn v3-yarn0 v3-linear; do
        ds-pretrain train --config "$d/$m.json" --data "$d/train-000000.tar" --tokenizer "$d/tok.json" \
            --seq-len 64 --batch 8 --steps 300 --lr 3e-3 --eval-every 0 --threads 1 --peak-gflops 10 \
            -o "$d/$m.tar" --metrics /dev/null
        ds-pretrain export --gguf --dtype f32 "$d/$m.tar" "$d/$m.gguf"
    done
    printf 'ROMEO:\nWhat' | ds-tokenize encode -t "$d/tok.json" --jsonl-ids > "$d/prompt.ids"
    printf '{"id":"r","ids":%s}\n' "$(cat "$d/prompt.ids")" > "$d/prompt.jsonl"
}

read_gguf() { python3 "$ROOT/tests/peers/gguf_read.py" "$1"; }

@test "gguf: llama, qwen2 and deepseek2 files carry llama.cpp's names, shapes and metadata" {
    local d="$BATS_FILE_TMPDIR"
    read_gguf "$d/llama.gguf" > "$BATS_TEST_TMPDIR/l.json"
    jq -e '.meta["general.architecture"] == "llama" and .meta["llama.block_count"] == 2
        and .meta["llama.attention.head_count_kv"] == 2 and .meta["tokenizer.ggml.pre"] == "gpt-2"
        and .meta["tokenizer.ggml.tokens"].len == 512 and .meta["tokenizer.ggml.eos_token_id"] == 0
        and .tensors["blk.1.attn_q.weight"][1] == [64, 64] and .tensors["blk.1.attn_k.weight"][1] == [64, 32]
        and .tensors["blk.0.ffn_down.weight"][1] == [128, 64] and (.tensors | has("output.weight"))' "$BATS_TEST_TMPDIR/l.json"
    read_gguf "$d/qwen2.gguf" > "$BATS_TEST_TMPDIR/q.json"
    # tied head: no output.weight (llama.cpp reuses token_embd)
    jq -e '.meta["general.architecture"] == "qwen2" and (.tensors | has("output.weight") | not)' "$BATS_TEST_TMPDIR/q.json"
    read_gguf "$d/v3.gguf" > "$BATS_TEST_TMPDIR/v.json"
    # MLA as one latent kv head; k_b transposed per head; experts stacked; no MTP layer (block 2)
    jq -e '.meta["general.architecture"] == "deepseek2" and .meta["deepseek2.attention.head_count_kv"] == 1
        and .meta["deepseek2.attention.key_length"] == 40 and .meta["deepseek2.attention.key_length_mla"] == 24
        and .meta["deepseek2.expert_gating_func"] == 2 and .meta["deepseek2.expert_group_used_count"] == 2
        and .tensors["blk.1.attn_k_b.weight"][1] == [16, 32, 4] and .tensors["blk.1.attn_v_b.weight"][1] == [32, 16, 4]
        and .tensors["blk.1.ffn_gate_exps.weight"][1] == [64, 32, 8] and .tensors["blk.1.exp_probs_b.bias"][1] == [8]
        and (.tensors | keys | map(select(startswith("blk.2."))) | length) == 0' "$BATS_TEST_TMPDIR/v.json"
}

@test "gguf: f16 and bf16 matrices halve the file; vectors stay f32" {
    local d="$BATS_FILE_TMPDIR" t="$BATS_TEST_TMPDIR"
    ds-pretrain export --gguf --dtype f16 "$d/llama.tar" "$t/h.gguf"
    ds-pretrain export --gguf --dtype bf16 "$d/v3.tar" "$t/b.gguf"
    read_gguf "$t/h.gguf" | jq -e '.meta["general.file_type"] == 1 and .tensors["blk.0.attn_q.weight"][0] == 1
        and .tensors["blk.0.attn_norm.weight"][0] == 0'
    read_gguf "$t/b.gguf" | jq -e '.meta["general.file_type"] == 32 and .tensors["blk.1.ffn_up_exps.weight"][0] == 30
        and .tensors["blk.1.ffn_gate_inp.weight"][0] == 0'
    [ "$(stat -c %s "$t/h.gguf")" -lt "$(( $(stat -c %s "$d/llama.gguf") * 6 / 10 ))" ]
}

@test "gguf: what llama.cpp would compute differently is refused by name" {
    local d="$BATS_FILE_TMPDIR" t="$BATS_TEST_TMPDIR"
    mkdir "$t/m"
    ds-pretrain export "$d/llama.tar" "$t/m"
    mkdir "$t/y"
    ds-pretrain export "$d/v3.tar" "$t/y"
    cp -r "$t/y" "$t/y2"
    jq '.rope_scaling = {"type": "dynamic", "factor": 2.0}' "$t/y/config.json" > "$t/c.json"
    mv "$t/c.json" "$t/y/config.json"
    run ds-pretrain export --gguf "$t/y" "$t/x.gguf"
    [ "$status" -eq 1 ]
    [[ "$output" == *"rope_scaling: dynamic (NTK-aware) scaling has no llama.cpp equivalent"* ]]
    # llama.cpp's deepseek2 (and qwen2) graphs take no frequency factors
    jq '.rope_scaling = {"rope_type": "llama3", "factor": 4.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
        "original_max_position_embeddings": 16}' "$t/y2/config.json" > "$t/c.json"
    mv "$t/c.json" "$t/y2/config.json"
    run ds-pretrain export --gguf "$t/y2" "$t/x.gguf"
    [ "$status" -eq 1 ]
    [[ "$output" == *"llama3 scaling is written as llama.cpp's rope_freqs tensor, which its deepseek2 architecture does not read"* ]]
    # llama.cpp reads yarn's betas for none of these architectures
    jq '.rope_scaling = {"type": "yarn", "factor": 4.0, "beta_fast": 16}' "$t/y2/config.json" > "$t/c.json"
    mv "$t/c.json" "$t/y2/config.json"
    run ds-pretrain export --gguf "$t/y2" "$t/x.gguf"
    [ "$status" -eq 1 ]
    [[ "$output" == *"uses yarn beta_fast 32 and beta_slow 1 whatever the file says (got 16 and 1)"* ]]
    jq '.pre_tokenizer = {"type": "Split", "pattern": {"Regex": "\\s+"}, "behavior": "Isolated", "invert": false}' \
        "$t/m/tokenizer.json" > "$t/tok2.json" && mv "$t/tok2.json" "$t/m/tokenizer.json"
    run ds-pretrain export --gguf "$t/m" "$t/x.gguf"
    [ "$status" -eq 1 ]
    [[ "$output" == *"pre_tokenizer"*"no llama.cpp pre-tokenizer name"* ]]
    [ ! -e "$t/x.gguf" ]
    run ds-pretrain export --gguf --dtype f8 "$d/llama.tar" "$t/x.gguf"
    [ "$status" -eq 2 ]
}

@test "gguf: rope scaling is written under llama.cpp's keys (yarn, linear) or as rope_freqs (llama3)" {
    local d="$BATS_FILE_TMPDIR" t="$BATS_TEST_TMPDIR"
    read_gguf "$d/v3-yarn.gguf" > "$t/v.json"
    # V3's own mscale = mscale_all_dim = 1: what llama.cpp's converter writes, 0.1 * mscale_all_dim
    jq -e '.meta["deepseek2.rope.scaling.type"] == "yarn" and .meta["deepseek2.rope.scaling.factor"] == 4
        and .meta["deepseek2.rope.scaling.original_context_length"] == 16
        and (.meta["deepseek2.rope.scaling.yarn_log_multiplier"] - 0.1 | fabs) < 1e-7
        and .meta["deepseek2.rope.scaling.yarn_beta_fast"] == 32 and .meta["deepseek2.rope.scaling.yarn_beta_slow"] == 1
        and (.meta | has("deepseek2.rope.scaling.attn_factor") | not)' "$t/v.json"
    # mscale_all_dim 0: cos and sin scaled by m(1) = 1 + 0.1 ln 4, the softmax not at all
    read_gguf "$d/v3-yarn0.gguf" | jq -e '(.meta["deepseek2.rope.scaling.attn_factor"] - (1 + 0.1 * (4 | log)) | fabs) < 1e-6
        and (.meta["deepseek2.rope.scaling.yarn_log_multiplier"] - ((1 / (1 + 0.1 * (4 | log)) - 1) / (4 | log)) | fabs) < 1e-6'
    read_gguf "$d/llama-yarn.gguf" | jq -e '.meta["llama.rope.scaling.type"] == "yarn"
        and (.meta | has("llama.rope.scaling.attn_factor") or has("llama.rope.scaling.yarn_log_multiplier") | not)'
    read_gguf "$d/llama-linear.gguf" | jq -e '.meta["llama.rope.scaling.type"] == "linear"
        and .meta["llama.rope.scaling.factor"] == 2 and (.meta | has("llama.rope.scaling.original_context_length") | not)'
    read_gguf "$d/llama-llama3.gguf" > "$t/l.json"
    jq -e '(.meta | has("llama.rope.scaling.type") | not) and .tensors["rope_freqs.weight"][0:2] == [0, [8]]' "$t/l.json"
    # the factors from the formulas of docs/CONFIG.md: with wavelengths 2*pi*10000^(i/8) against
    # 16/4 and 16/1, i = 0 blends (s = (16/2pi - 1)/3, 1/((1 - s)/4 + s)) and the rest are divided by 4
    jq -e '((16 / (2 * 3.141592653589793) - 1) / 3) as $s | .values["rope_freqs.weight"] as $f
        | (($f[0] - 1 / ((1 - $s) / 4 + $s)) | fabs) < 1e-6 and ($f[1:] | all(. - 4 | fabs < 1e-6))' "$t/l.json"
}

# ds-infer's greedy continuation and log-probs for model $1, then llama.cpp's on the same ids
compare_with_llama_cpp() {
    local d="$BATS_FILE_TMPDIR" t="$BATS_TEST_TMPDIR" m="$1"
    ds-infer generate -m "$d/$m.tar" --temperature 0 --max-tokens 32 --ids --logprobs "$d/prompt.jsonl" > "$t/ds.jsonl"
    jq -c --argjson ids "$(cat "$d/prompt.ids")" '{id, ids: $ids, n: 32, score: .token_ids}' "$t/ds.jsonl" > "$t/req.jsonl"
    llama_cpp "$d/$m.gguf" < "$t/req.jsonl" > "$t/lc.jsonl"
    # the same 32 tokens; every log-prob within 1e-4 (f32 weights and KV cache on both sides)
    jq -e '.token_ids | length == 32' "$t/ds.jsonl"
    jq -s -e '.[0].token_ids == .[1].greedy' "$t/ds.jsonl" "$t/lc.jsonl"
    jq -s -e '[.[0].logprobs, .[1].logprobs] | transpose | map(.[0] - .[1] | fabs) | max < 1e-4' "$t/ds.jsonl" "$t/lc.jsonl"
    # the continuation is not degenerate: a repeated single token would agree trivially
    jq -e '.token_ids | unique | length > 4' "$t/ds.jsonl"
}

@test "gguf: llama.cpp continues a llama student exactly as ds-infer does (32 greedy tokens, log-probs)" {
    compare_with_llama_cpp llama
}
@test "gguf: llama.cpp continues a qwen2 student exactly as ds-infer does" { compare_with_llama_cpp qwen2; }
@test "gguf: llama.cpp runs a deepseek_v3 model (MLA, sigmoid group-limited MoE) as ds-infer does" {
    compare_with_llama_cpp v3
}

# model $1 with rope scaling: llama.cpp agrees with ds-infer, and the scaling matters there (the same
# weights without it give other log-probs)
compare_scaled() {
    local d="$BATS_FILE_TMPDIR" t="$BATS_TEST_TMPDIR"
    compare_with_llama_cpp "$1"
    mkdir "$t/plain"
    ds-pretrain export "$d/$1.tar" "$t/plain"
    jq '.rope_scaling = null' "$t/plain/config.json" > "$t/c.json" && mv "$t/c.json" "$t/plain/config.json"
    ds-infer generate -m "$t/plain" --temperature 0 --max-tokens 32 --ids --logprobs "$d/prompt.jsonl" > "$t/plain.jsonl"
    jq -s -e '[.[0].logprobs, .[1].logprobs] | transpose | map(.[0] - .[1] | fabs) | max > 1e-2' "$t/ds.jsonl" "$t/plain.jsonl"
}

@test "gguf: llama.cpp runs a deepseek_v3 model under YaRN (V3's mscale = mscale_all_dim = 1) as ds-infer does" {
    compare_scaled v3-yarn
}
@test "gguf: llama.cpp runs a deepseek_v3 model under YaRN with mscale_all_dim 0 as ds-infer does" {
    compare_scaled v3-yarn0
}
@test "gguf: llama.cpp runs a deepseek_v3 model under linear scaling as ds-infer does" { compare_scaled v3-linear; }
@test "gguf: llama.cpp continues a llama student under linear scaling as ds-infer does" { compare_scaled llama-linear; }
@test "gguf: llama.cpp continues a llama student under llama3 scaling (rope_freqs) as ds-infer does" {
    compare_scaled llama-llama3
}
@test "gguf: llama.cpp continues a llama student under YaRN as ds-infer does" { compare_scaled llama-yarn; }
