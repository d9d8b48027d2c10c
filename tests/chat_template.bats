#!/usr/bin/env bats
# The model's own chat template: the Jinja interpreter (C unit cases), both released templates
# rendered byte-identically to Jinja on the fixture conversations, and the fixtures themselves
# regenerated with Debian's python3-jinja2 when it is available.
load helpers

setup() {
    export DS_CHAT_FIXTURES="$ROOT/tests/fixtures/chat"
    export DS_TOKENIZERS="$DATA/released-tokenizers"
}

@test "chat template unit: whitespace control, loops, scoping, expressions, filters, string methods" { unit chat_template semantics; }
@test "chat template unit: unsupported filters and tags, raise_exception, undefined values are refused with the line" {
    unit chat_template refusals
}

@test "chat template: DeepSeek-V3 and Qwen3 templates render every fixture conversation as Jinja does" {
    needs_data released-tokenizers/qwen3/tokenizer_config.json
    unit chat_template released_templates_match_jinja
    assert_output --partial "deepseek_v3: 76 cases, 76 rendered byte-identically"
    assert_output --partial "qwen3: 76 cases, 68 rendered byte-identically, 8 refused as Jinja did"
}

@test "chat template unit: every prefix of the Qwen3 template and deep nesting fail with a message, never a crash" {
    needs_data released-tokenizers/qwen3/tokenizer_config.json
    unit chat_template malformed_templates_fail_cleanly
}

@test "chat template unit: Qwen3 assistant spans are the turns as the whole conversation renders them" {
    needs_data released-tokenizers/qwen3/tokenizer_config.json
    unit chat_template assistant_spans_qwen3
}

@test "chat template unit: DeepSeek-V3 assistant spans (tool calls, turns after tool outputs); an unended turn is refused" {
    needs_data released-tokenizers/deepseek_v3/tokenizer_config.json
    unit chat_template assistant_spans_deepseek
}

# Transformers renders with Jinja; Debian packages it as python3-jinja2.
jinja_python() {
    if ! python3 -c 'import jinja2' 2>/dev/null; then
        if [ "$(id -u)" = 0 ] && command -v apt-get > /dev/null; then
            apt-get install -y -q python3-jinja2 > /dev/null 2>&1 || true
        fi
    fi
    python3 -c 'import jinja2' 2>/dev/null
}

@test "chat template: the committed fixtures are what python3-jinja2 renders today" {
    needs_data released-tokenizers/qwen3/tokenizer_config.json
    jinja_python || skip "python3-jinja2 is not installed (apt-get install python3-jinja2)"
    local t="$BATS_TEST_TMPDIR"
    python3 "$ROOT/tests/fixtures/chat/make_fixtures.py" "$DS_TOKENIZERS" "$t/fx"
    for f in conversations.jsonl deepseek_v3.jsonl qwen3.jsonl; do
        cmp "$t/fx/$f" "$DS_CHAT_FIXTURES/$f"
    done
    # and the renderer agrees with the fresh renderings, not only with the committed ones
    DS_CHAT_FIXTURES="$t/fx" unit chat_template released_templates_match_jinja
}

@test "chat template: ds-infer --template model prompts with the checkpoint's template" {
    needs_data released-tokenizers/qwen3/tokenizer_config.json
    needs_data tinyshakespeare/input.txt
    local t="$BATS_TEST_TMPDIR"
    mkdir "$t/qwen"
    head -c 20000 "$DATA/tinyshakespeare/input.txt" > "$t/text.txt"
    ds-tokenize train --vocab-size 300 --special '<|endoftext|>' --special '<|im_start|>' --special '<|im_end|>' \
        -o "$t/qwen/tokenizer.json" "$t/text.txt"
    cp "$DS_TOKENIZERS/qwen3/tokenizer_config.json" "$t/qwen/"
    echo '{"prompt":"Hi","completion":"Hello"}' > "$t/sft.jsonl"
    ds-sft train --config "$ROOT/recipes/tiny-moe.json" --tokenizer "$t/qwen/tokenizer.json" --data "$t/sft.jsonl" \
        --template model --seq-len 64 --steps 1 --threads 1 --peak-gflops 10 -o "$t/ck.tar" --metrics /dev/null
    echo '{"messages":[{"role":"system","content":"S"},{"role":"user","content":"Hi"}]}' > "$t/p.jsonl"
    ds-infer generate -m "$t/ck.tar" --template model --max-tokens 2 --temperature 0 "$t/p.jsonl" > "$t/out.jsonl"
    want=$(printf '<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n' \
        | ds-tokenize encode -t "$t/qwen/tokenizer.json" --allow-special --jsonl-ids - | jq length)
    jq -e --argjson w "$want" '.n_prompt_tokens == $w' "$t/out.jsonl"
    # the plain template renders another prompt, so the count above tells them apart
    ds-infer generate -m "$t/ck.tar" --max-tokens 2 --temperature 0 "$t/p.jsonl" | jq -e --argjson w "$want" '.n_prompt_tokens != $w'
    run ds-infer generate -m "$t/ck.tar" --template nope "$t/p.jsonl"
    assert_failure 2
}
