#!/usr/bin/env bats
# Half-precision conversions, the safetensors reader and writer, and checkpoint folders (import,
# export, shards, FP8, special tokens).
load helpers

@test "f16/bf16: all 65536 codes round trip through f32, NaN stays NaN, f16 decodes exactly" { unit safetensors half_exhaustive; }
@test "f16/bf16: ties to even, overflow to inf, subnormals, NaN payloads" { unit safetensors half_rounding_edges; }
@test "f16/bf16: nearest-even on 2M random values (and equal to _Float16 under gcc)" { unit safetensors half_rounding_random; }
@test "safetensors: writer output parses, every float dtype round trips, metadata kept" { unit safetensors st_roundtrip; }
@test "safetensors: each kind of bad header is refused with a message saying what" { unit safetensors st_rejects_bad_headers; }
@test "safetensors: 20000 random flips and truncations never yield out-of-bounds tensors" { unit safetensors st_mutations; }
@test "safetensors: FP8 with 128x128 block scales dequantises as fp8 * scale_inv, partial blocks too" { unit safetensors st_fp8_blocks; }

# ---------------------------------------------------------------------------------------------
# Hugging Face folders: sharded, FP8, tied heads, special tokens, refusals. The fixtures are built
# by tests/hf_fixture.py (python3's standard library) from F32 folders ds exports.

setup_file() {
    local d="$BATS_FILE_TMPDIR"
    shakespeare_shards "$d" 30000
    # a DeepSeek-V3 whose matrices span several 128x128 blocks, partial ones included
    jq '.hidden_size=160 | .q_lora_rank=136 | .kv_lora_rank=136 | .intermediate_size=288 |
        .moe_intermediate_size=48 | .n_routed_experts=4 | .n_group=2 | .topk_group=1' \
        "$ROOT/recipes/tiny-moe.json" > "$d/v3.json"
    for m in v3:"$d/v3.json" qwen:"$ROOT/recipes/student-tiny.json"; do
        ds-pretrain train --config "${m#*:}" --data "$d/train-000000.tar" --tokenizer "$d/tok.json" \
            --seq-len 32 --batch 2 --steps 3 --lr 3e-3 --threads 1 --eval-every 0 --metrics /dev/null \
            -o "$d/${m%%:*}.tar"
        ds-pretrain export --dtype f32 "$d/${m%%:*}.tar" "$d/${m%%:*}-f32"
    done
    echo '{"id":"a","ids":[1,5,9,30,200,7,44,3,100,250,11,12,13,400,17,2]}' > "$d/ids.jsonl"
}

fixture() { python3 "$ROOT/tests/hf_fixture.py" "$@"; }
score() { ds-infer score -m "$1" "$BATS_FILE_TMPDIR/ids.jsonl" --threads 1; }
# max |a - b| over the log-probs of two score outputs
maxdiff() { jq -s '[.[0].logprobs, .[1].logprobs] | transpose | map(.[0] - .[1] | fabs) | max' "$1" "$2"; }

@test "export: BF16 shards with index.json re-import bit-exactly; MTP copies, torch_dtype, special tokens" {
    local t="$BATS_TEST_TMPDIR" d="$BATS_FILE_TMPDIR"
    ds-pretrain export --max-shard-size 1MB "$d/v3.tar" "$t/a"
    [ -f "$t/a/model-00001-of-00003.safetensors" ] && [ -f "$t/a/model-00003-of-00003.safetensors" ]
    [ ! -e "$t/a/model.safetensors" ] && [ -z "$(ls -d "$t"/a.tmp-* 2> /dev/null)" ]
    jq -e '.torch_dtype == "bfloat16" and .eos_token_id == 0' "$t/a/config.json"
    jq -e '.eos_token_id == 0' "$t/a/generation_config.json"
    jq -e '.eos_token == "<|endoftext|>" and .bos_token == null' "$t/a/tokenizer_config.json"
    # released V3 checkpoints give the MTP layer its own embed_tokens and shared_head.head
    jq -e '.weight_map | has("model.layers.2.embed_tokens.weight") and has("model.layers.2.shared_head.head.weight")
           and has("model.layers.2.eh_proj.weight") and has("model.layers.2.shared_head.norm.weight")' \
        "$t/a/model.safetensors.index.json"
    ds-pretrain import "$t/a" -o "$t/a.tar"
    ds-pretrain export --max-shard-size 1MB "$t/a.tar" "$t/b"
    for f in "$t"/a/*; do cmp "$f" "$t/b/${f##*/}"; done
    ds-pretrain import "$t/b" -o "$t/b.tar"
    tar -xOf "$t/a.tar" model.safetensors > "$t/wa" && tar -xOf "$t/b.tar" model.safetensors > "$t/wb"
    cmp "$t/wa" "$t/wb"
    # the BF16 weights of the folder and of its import score alike, and close to the F32 original
    score "$t/a" > "$t/sa" && score "$t/a.tar" > "$t/sb" && score "$d/v3.tar" > "$t/sc"
    cmp "$t/sa" "$t/sb"
    awk -v x="$(maxdiff "$t/sa" "$t/sc")" 'BEGIN { exit !(x < 0.05) }'
    # F16 and F32 on request, one file below the shard size
    ds-pretrain export --dtype f16 "$d/v3.tar" "$t/h"
    jq -e '.torch_dtype == "float16"' "$t/h/config.json" && [ -f "$t/h/model.safetensors" ]
    score "$t/h" > /dev/null
}

@test "export: refuses a folder in use, bad options; a failed export leaves no folder" {
    local t="$BATS_TEST_TMPDIR" d="$BATS_FILE_TMPDIR"
    mkdir "$t/full" && echo keep > "$t/full/x"
    run ds-pretrain export "$d/v3.tar" "$t/full"
    [ "$status" -eq 1 ] && assert_output --partial "already exists"
    [ "$(cat "$t/full/x")" = keep ]
    mkdir "$t/empty" && ds-pretrain export "$d/v3.tar" "$t/empty" && [ -f "$t/empty/model.safetensors" ]
    run ds-pretrain export --dtype f8 "$d/v3.tar" "$t/o"
    [ "$status" -eq 2 ] && assert_output --partial "--dtype"
    run ds-pretrain export --max-shard-size 5XB "$d/v3.tar" "$t/o"
    [ "$status" -eq 2 ] && assert_output --partial "--max-shard-size"
    # writes fail past 512 kB: the export stops with a message and leaves neither DIR nor its temp
    run bash -c "trap '' XFSZ; ulimit -f 1000; ds-pretrain export '$d/v3.tar' '$t/o'"
    [ "$status" -eq 1 ] && assert_output --partial "write error"
    [ ! -e "$t/o" ] && [ -z "$(ls -d "$t"/o.tmp-* 2> /dev/null)" ]
}

@test "import: DeepSeek-V3 FP8 with 128x128 block scales scores as its dequantised twins" {
    local t="$BATS_TEST_TMPDIR" d="$BATS_FILE_TMPDIR"
    fixture fp8 "$d/v3-f32" "$t/fp8" "$t/deq32" "$t/deq16"
    jq -e '.quantization_config.quant_method == "fp8"' "$t/fp8/config.json"
    score "$t/fp8" > "$t/s8" && score "$t/deq32" > "$t/s32" && score "$t/deq16" > "$t/s16"
    # ds's dequantisation equals the fixture's (w = fp8 * scale_inv, exact in f32)
    awk -v x="$(maxdiff "$t/s8" "$t/s32")" 'BEGIN { exit !(x <= 1e-6) }'
    # the BF16 twin only adds BF16 rounding of the dequantised weights: within 0.01 nats
    awk -v x="$(maxdiff "$t/s8" "$t/s16")" 'BEGIN { exit !(x < 0.01) }'
    ds-pretrain import "$t/fp8" -o "$t/fp8.tar"
    score "$t/fp8.tar" > "$t/st" && cmp "$t/s8" "$t/st"
}

@test "import: FP8 refusals: no scales, wrong scale shape, another quant_method" {
    local t="$BATS_TEST_TMPDIR" d="$BATS_FILE_TMPDIR" w=model.layers.0.self_attn.q_a_proj.weight
    fixture fp8 "$d/v3-f32" "$t/fp8" "$t/deq32" "$t/deq16"
    fixture edit "$t/deq32" "$t/noscale" --dtype "$w" F8_E4M3
    run score "$t/noscale"
    [ "$status" -eq 1 ] && assert_output --partial "'$w' has dtype F8_E4M3 but no '${w}_scale_inv'"
    jq '.quantization_config.weight_block_size = [64, 64]' "$t/fp8/config.json" > "$t/c" && mv "$t/c" "$t/fp8/config.json"
    run score "$t/fp8"
    [ "$status" -eq 1 ] && assert_output --partial "${w}_scale_inv' needs F32 block scales of shape [3, 3]"
    jq '.quantization_config.quant_method = "awq"' "$t/fp8/config.json" > "$t/c" && mv "$t/c" "$t/fp8/config.json"
    run score "$t/fp8"
    [ "$status" -eq 1 ] && assert_output --partial "quant_method: 'awq' is not supported"
}

@test "import: shards with index.json load; a bad index names the file and tensor" {
    local t="$BATS_TEST_TMPDIR" d="$BATS_FILE_TMPDIR" ix=model.safetensors.index.json
    fixture edit "$d/qwen-f32" "$t/s" --shards 3
    score "$d/qwen-f32" > "$t/s1" && score "$t/s" > "$t/s2" && cmp "$t/s1" "$t/s2"
    ds-pretrain import "$t/s" -o "$t/s.tar"
    cp -r "$t/s" "$t/miss" && rm "$t/miss/model-00002-of-00003.safetensors"
    run score "$t/miss"
    [ "$status" -eq 1 ] && assert_output --regexp "tensor '.*' is in model-00002-of-00003.safetensors, which does not exist"
    cp -r "$t/s" "$t/unlisted"
    jq 'del(.weight_map["model.norm.weight"])' "$t/s/$ix" > "$t/unlisted/$ix"
    run score "$t/unlisted"
    [ "$status" -eq 1 ] && assert_output --partial "holds tensor 'model.norm.weight', which $ix does not list"
    cp -r "$t/s" "$t/moved"
    jq '.weight_map["model.norm.weight"] = "model-00001-of-00003.safetensors"' "$t/s/$ix" > "$t/moved/$ix"
    run score "$t/moved"
    [ "$status" -eq 1 ] && assert_output --partial "tensor 'model.norm.weight' is in model-00003-of-00003.safetensors, but $ix says model-00001-of-00003.safetensors"
    cp -r "$t/s" "$t/ghost"
    jq '.weight_map["model.extra.weight"] = "model-00001-of-00003.safetensors"' "$t/s/$ix" > "$t/ghost/$ix"
    run score "$t/ghost"
    [ "$status" -eq 1 ] && assert_output --partial "lists tensor 'model.extra.weight' in model-00001-of-00003.safetensors, which does not hold it"
    # the same tensor in two shards
    cp -r "$t/s" "$t/twice" && cp "$d/qwen-f32/model.safetensors" "$t/twice/model-00004-of-00003.safetensors"
    jq '.weight_map["x"] = "model-00004-of-00003.safetensors"' "$t/s/$ix" > "$t/twice/$ix"
    run score "$t/twice"
    [ "$status" -eq 1 ] && assert_output --regexp "tensor '.*' is stored twice: in model-0000[123]-of-00003.safetensors and in model-00004-of-00003.safetensors"
    mkdir "$t/none" && cp "$d/qwen-f32/config.json" "$t/none"
    run score "$t/none"
    [ "$status" -eq 1 ] && assert_output --partial "missing model.safetensors (or $ix with its shards)"
}

@test "import: a tied qwen2 that stores lm_head.weight loads; an untied one is not taken for tied" {
    local t="$BATS_TEST_TMPDIR" d="$BATS_FILE_TMPDIR"
    fixture edit "$d/qwen-f32" "$t/same" --head same
    fixture edit "$d/qwen-f32" "$t/diff" --head different
    score "$d/qwen-f32" > "$t/s0" && score "$t/same" > "$t/s1" && cmp "$t/s0" "$t/s1"
    ds-pretrain import "$t/same" -o "$t/same.tar"
    run score "$t/diff"
    [ "$status" -eq 1 ] && assert_output --partial "ties the embeddings (tie_word_embeddings), but lm_head.weight differs from model.embed_tokens.weight at element 0"
    jq '.tie_word_embeddings = false' "$t/diff/config.json" > "$t/c" && mv "$t/c" "$t/diff/config.json"
    score "$t/diff" > "$t/s2"
    ! cmp -s "$t/s0" "$t/s2"
    ds-pretrain import "$t/diff" -o "$t/diff.tar" && ds-pretrain export "$t/diff.tar" "$t/diff2"
    jq -e '.tie_word_embeddings == false' "$t/diff2/config.json"
    grep -aq '"lm_head.weight"' "$t/diff2/model.safetensors"
}

@test "import: NaN and infinite weights and unsupported dtypes are refused with the tensor's name" {
    local t="$BATS_TEST_TMPDIR" d="$BATS_FILE_TMPDIR" w=model.layers.1.mlp.up_proj.weight
    fixture edit "$d/qwen-f32" "$t/nan" --nan "$w"
    run score "$t/nan"
    [ "$status" -eq 1 ] && assert_output --partial "tensor '$w' holds NaN at element 4096: NaN or infinite weights are refused"
    run ds-pretrain import "$t/nan" -o "$t/nan.tar"
    [ "$status" -eq 1 ] && [ ! -e "$t/nan.tar" ]
    fixture edit "$d/qwen-f32" "$t/inf" --inf-f16 model.norm.weight
    run score "$t/inf"
    [ "$status" -eq 1 ] && assert_output --partial "tensor 'model.norm.weight' holds an infinity at element 63"
    fixture edit "$d/qwen-f32" "$t/f64" --dtype "$w" F64
    run score "$t/f64"
    [ "$status" -eq 1 ] && assert_output --partial "tensor '$w' has dtype F64 (F32, BF16, F16, or F8_E4M3 with block scales expected)"
}

@test "special tokens: EOS/BOS from generation_config, config and tokenizer_config; tools stop on them" {
    local t="$BATS_TEST_TMPDIR" d="$BATS_FILE_TMPDIR" m
    m="$t/m" && cp -r "$d/qwen-f32" "$m" && rm "$m/generation_config.json" "$m/tokenizer_config.json"
    jq 'del(.eos_token_id)' "$d/qwen-f32/config.json" > "$m/config.json"
    # no file names one: the tokenizer's <|endoftext|>
    ds-pretrain info "$m" | jq -e '.eos_token_id == [0] and .bos_token_id == null'
    # tokenizer_config.json names tokens by text
    echo '{"eos_token": {"content": "e", "special": false}, "bos_token": "t"}' > "$m/tokenizer_config.json"
    e=$(jq '.model.vocab.e' "$m/tokenizer.json") b=$(jq '.model.vocab.t' "$m/tokenizer.json")
    ds-pretrain info "$m" | jq -e ".eos_token_id == [$e] and .bos_token_id == $b"
    # config.json's ids come before it, generation_config.json's before both (an id or a list)
    jq '.eos_token_id = 7 | .bos_token_id = 3' "$d/qwen-f32/config.json" > "$m/config.json"
    ds-pretrain info "$m" | jq -e '.eos_token_id == [7] and .bos_token_id == 3'
    echo '{"eos_token_id": [9, 11], "temperature": 0.7}' > "$m/generation_config.json"
    ds-pretrain info "$m" | jq -e '.eos_token_id == [9, 11] and .bos_token_id == 3'
    # import keeps them (and the model's tokenizer_config.json); export writes them back
    ds-pretrain import "$m" -o "$t/m.tar"
    ds-pretrain info "$t/m.tar" | jq -e '.eos_token_id == [9, 11] and .bos_token_id == 3'
    ds-pretrain export "$t/m.tar" "$t/out"
    jq -e '.eos_token_id == [9, 11] and .bos_token_id == 3' "$t/out/config.json"
    jq -e '.eos_token_id == [9, 11] and .temperature == 0.7' "$t/out/generation_config.json"
    cmp "$m/tokenizer_config.json" "$t/out/tokenizer_config.json"
    # generation stops on the model's EOS by default; --eos still overrides it
    echo '{"id":"p","prompt":"ROMEO:"}' > "$t/p.jsonl"
    ds-infer generate -m "$m" --temperature 0 --max-tokens 8 --ids "$t/p.jsonl" > "$t/g"
    first=$(jq '.token_ids[0]' "$t/g")
    echo "{\"eos_token_id\": $first}" > "$m/generation_config.json"
    ds-infer generate -m "$m" --temperature 0 --max-tokens 8 --ids "$t/p.jsonl" > "$t/g2"
    jq -e '.finish_reason == "eos" and .n_tokens == 0' "$t/g2"
    ds-infer generate -m "$m" --temperature 0 --max-tokens 8 --ids --eos 500 "$t/p.jsonl" > "$t/g3"
    jq -e '.finish_reason == "length"' "$t/g3"
    # ids outside the vocabulary and unknown token texts are refused, naming the file
    echo '{"eos_token_id": 512}' > "$m/generation_config.json"
    run ds-pretrain info "$m"
    [ "$status" -eq 1 ] && assert_output --partial "generation_config.json: eos_token_id must be a token id or a list of at most 16 ids below vocab_size 512"
    rm "$m/generation_config.json" && jq 'del(.eos_token_id)' "$d/qwen-f32/config.json" > "$m/config.json"
    echo '{"eos_token": "<|im_end|>"}' > "$m/tokenizer_config.json"
    run ds-pretrain info "$m"
    [ "$status" -eq 1 ] && assert_output --partial "tokenizer_config.json: eos_token '<|im_end|>' is not a token of tokenizer.json"
}

@test "special tokens: models trained from a folder (ds-sft, ds-grpo) keep its generation_config and tokenizer_config" {
    local t="$BATS_TEST_TMPDIR" d="$BATS_FILE_TMPDIR" m
    m="$t/m" && cp -r "$d/qwen-f32" "$m"
    echo '{"eos_token_id": 7, "temperature": 0.6, "top_p": 0.95}' > "$m/generation_config.json"
    echo '{"eos_token": "<|endoftext|>", "model_max_length": 4096}' > "$m/tokenizer_config.json"
    for i in 1 2 3 4; do printf '{"id":"q%d","task":"math","prompt":"Say %d.","answer":"%d"}\n' $i $i $i; done > "$t/p.jsonl"
    for i in 1 2 3 4; do printf '{"prompt":"Say %d.","completion":" %d"}\n' $i $i; done > "$t/s.jsonl"
    ds-sft train -m "$m" --data "$t/s.jsonl" --template plain --seq-len 32 --batch 2 --steps 1 --threads 1 \
        --metrics /dev/null -o "$t/sft.tar"
    ds-grpo train -m "$m" --tasks "$t/p.jsonl" --template plain --prompts-per-step 2 --group-size 2 \
        --max-tokens 4 --steps 1 --threads 1 --metrics /dev/null -o "$t/grpo.tar"
    for c in sft grpo; do
        tar -xOf "$t/$c.tar" generation_config.json | jq -e '.eos_token_id == 7 and .temperature == 0.6 and .top_p == 0.95'
        tar -xOf "$t/$c.tar" tokenizer_config.json | jq -e '.model_max_length == 4096'
        ds-pretrain export "$t/$c.tar" "$t/$c-hf"
        jq -e '.eos_token_id == 7 and .top_p == 0.95' "$t/$c-hf/generation_config.json"
        jq -e '.eos_token_id == 7' "$t/$c-hf/config.json"
    done
    # a resumed run carries them on
    ds-grpo train -m "$m" --tasks "$t/p.jsonl" --template plain --prompts-per-step 2 --group-size 2 \
        --max-tokens 4 --steps 2 --threads 1 --metrics /dev/null --resume "$t/grpo.tar" -o "$t/grpo2.tar"
    tar -xOf "$t/grpo2.tar" generation_config.json | jq -e '.eos_token_id == 7 and .top_p == 0.95'
}

@test "import: a tokenizer larger than vocab_size is refused" {
    local t="$BATS_TEST_TMPDIR" d="$BATS_FILE_TMPDIR"
    cp -r "$d/qwen-f32" "$t/m"
    ds-tokenize train --vocab-size 600 --special '<|endoftext|>' -o "$t/m/tokenizer.json" "$d/train.txt"
    run ds-pretrain import "$t/m" -o "$t/m.tar"
    [ "$status" -eq 1 ] && assert_output --partial "tokenizer.json: 600 token ids, more than config.json's vocab_size 512"
    [ ! -e "$t/m.tar" ]
}

@test "special tokens: a Qwen folder with the released tokenizer stops on <|im_end|>; its chat template travels" {
    needs_data released-tokenizers/qwen3/tokenizer_config.json
    local t="$BATS_TEST_TMPDIR" d="$BATS_FILE_TMPDIR" q="$DATA/released-tokenizers/qwen3"
    jq '.vocab_size = 151936 | .hidden_size = 32 | .intermediate_size = 64 | .num_hidden_layers = 1 |
        .num_attention_heads = 2 | .num_key_value_heads = 1' "$ROOT/recipes/student-tiny.json" > "$t/cfg.json"
    ds-pretrain train --config "$t/cfg.json" --data "$d/train-000000.tar" --seq-len 8 --batch 1 --steps 1 \
        --threads 1 --eval-every 0 --metrics /dev/null -o "$t/m.tar"
    ds-pretrain export "$t/m.tar" "$t/hf"
    [ ! -e "$t/hf/tokenizer_config.json" ] && jq -e 'has("eos_token_id") | not' "$t/hf/config.json"
    cp "$q/tokenizer.json" "$q/tokenizer_config.json" "$t/hf/"
    # eos_token "<|im_end|>" looked up among the added tokens; bos_token is null
    ds-pretrain info "$t/hf" | jq -e '.eos_token_id == [151645] and .bos_token_id == null'
    ds-pretrain import "$t/hf" -o "$t/q.tar"
    ds-pretrain info "$t/q.tar" | jq -e '.eos_token_id == [151645]'
    ds-pretrain export "$t/q.tar" "$t/out"
    cmp "$q/tokenizer_config.json" "$t/out/tokenizer_config.json"
    jq -e '(.chat_template | contains("<|im_start|>")) and .eos_token == "<|im_end|>"' "$t/out/tokenizer_config.json"
    jq -e '.eos_token_id == 151645' "$t/out/config.json" "$t/out/generation_config.json"
}
