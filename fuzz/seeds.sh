#!/usr/bin/env bash
# seeds.sh DIR — writes a small seed corpus per fuzz target into DIR/NAME/: tiny valid inputs made
# at run time with the plain tools ($DS_BIN, default bin/) and a few records of ../shared/data
# (read, never copied into the repo). Seeds that need missing data are left out with a message.
set -eu -o pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="$1"
bin="${DS_BIN:-$root/bin}"
data="${DS_DATA:-$root/../shared/data}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for t in jsonl shard safetensors tokenizer config checkpoint countdown math_answer chat_template; do mkdir -p "$out/$t"; done

# ---- JSON lines: records of the kinds the tools read ---------------------------------------------
printf '%s\n' '{"id":"a-0","prompt":"What is 2+3?","completion":" <answer>5</answer>","answer":"5"}' \
    '' '{"target": 55, "nums": [96, 7, 37, 74], "index": 0}' > "$out/jsonl/records"
printf '%s\n' '{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"hello"}]}' \
    '{"text":"caf\u00e9 \ud83d\ude00","n":-1,"x":1e308,"a":[null,true,{}]}' > "$out/jsonl/chat"
for f in countdown/tinyzero_test.jsonl gsm8k/test.jsonl math500/test.jsonl; do
    [ -r "$data/$f" ] && head -n 2 "$data/$f" > "$out/jsonl/$(dirname "$f")" || echo "seeds: no $data/$f" >&2
done

# ---- graders: Countdown (bytes: count-1, numbers, target, completion) and math answers --------------
printf '\003\057\006\044\111\067%s' '<think>1+2</think><answer>(96 - 74) + 37 - 7</answer>' > "$out/countdown/a"
printf '\002\013\022\077%s' ' <answer> 12 * 6 / (3 - 1.5) </answer> <answer>((12+5))</answer>' > "$out/countdown/b"
printf '\000\001\002%s' '<answer>-(+(2))/0</answer>' > "$out/countdown/c"
printf '%s' 'so the answer is \boxed{\frac12} and \fbox{3}' > "$out/math_answer/boxed"
printf '%s' 'She makes 9 * 2 = $18.\n#### 1,234.50' > "$out/math_answer/hash"
printf '%s' '<answer>x = \dfrac{\sqrt2}{2}^\circ \text{ units}</answer>' > "$out/math_answer/answer"
if [ -r "$data/math500/test.jsonl" ]; then
    jq -r '.answer' "$data/math500/test.jsonl" | head -n 20 | split -l 1 - "$out/math_answer/m500-"
fi

# ---- configs: every recipe, and the micro model used below ------------------------------------------
cp "$root"/recipes/*.json "$out/config/"
jq '.vocab_size = 264 | .hidden_size = 16 | .intermediate_size = 32 | .moe_intermediate_size = 8
    | .num_attention_heads = 2 | .q_lora_rank = 8 | .kv_lora_rank = 8 | .qk_nope_head_dim = 4
    | .qk_rope_head_dim = 4 | .v_head_dim = 4 | .n_routed_experts = 4 | .n_group = 2 | .topk_group = 1' \
    "$root/recipes/tiny-moe.json" > "$work/micro-moe.json"
jq '.vocab_size = 264 | .hidden_size = 8 | .intermediate_size = 16 | .num_hidden_layers = 1
    | .num_attention_heads = 2 | .num_key_value_heads = 1 | .head_dim = 4' \
    "$root/recipes/student-tiny.json" > "$work/micro-dense.json"
cp "$work/micro-moe.json" "$work/micro-dense.json" "$out/config/"

# ---- tokenizer, shard, checkpoint, safetensors: made by the tools on a few lines of text ------------
printf 'the cat sat on the mat. <|endoftext|> 12 + 34 = 46\ncaf\303\251 the the cat\n' > "$work/text.txt"
"$bin/ds-tokenize" train --vocab-size 264 --special '<|endoftext|>' -o "$work/tok.json" "$work/text.txt"
cp "$work/tok.json" "$out/tokenizer/bpe"
"$bin/ds-tokenize" encode -t "$work/tok.json" --allow-special -o "$work/text" "$work/text.txt"
cp "$work/text-000000.tar" "$out/shard/text"
for m in moe dense; do
    "$bin/ds-pretrain" train --config "$work/micro-$m.json" --data "$work/text-000000.tar" \
        --tokenizer "$work/tok.json" --seq-len 8 --batch 1 --steps 1 --eval-every 0 --threads 1 \
        --peak-gflops 1 --metrics /dev/null -o "$work/$m.tar"
    cp "$work/$m.tar" "$out/checkpoint/$m"
    tar -xOf "$work/$m.tar" model.safetensors > "$out/safetensors/$m"
done
tar -xOf "$work/moe.tar" optimizer.safetensors > "$out/safetensors/optimizer"
if [ -r "$data/released-tokenizers/deepseek_v3/tokenizer_config.json" ]; then
    cp "$data/released-tokenizers/deepseek_v3/tokenizer_config.json" "$work/tc.json"
    head -c 4000 "$work/tc.json" > "$out/jsonl/tokenizer_config"
fi

# chat templates: the two released ones and a few constructs of the subset
for m in deepseek_v3 qwen3; do
    f="$data/released-tokenizers/$m/tokenizer_config.json"
    [ -r "$f" ] && jq -r '.chat_template' "$f" > "$out/chat_template/$m" || echo "seeds: no $f" >&2
done
printf '%s' '{%- for m in messages %}{{ m.role ~ ": " ~ m.content | trim }}{% if not loop.last %}\n{% endif %}{% endfor %}' > "$out/chat_template/loop"
printf '%s' '{% set ns = namespace(x=0) %}{% for m in messages if m.role == "user" %}{% set ns.x = ns.x + 1 %}{% endfor %}{{ ns.x }}{{ messages[-1]["content"][::-1] | tojson }}' > "$out/chat_template/ns"
printf '%s' '{% if add_generation_prompt %}{{ bos_token }}{% elif messages|length > 2 %}{{ raise_exception("no") }}{% else %}x{% endif %}' > "$out/chat_template/if"
