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

# A tiny model with the released Qwen3 tokenizer and template, taught with --template model to answer
# "Say N." with N and end its turn with <|im_end|> (built once per file, on first use).
qwen_model() {
    local d="$BATS_FILE_TMPDIR" q="$DS_TOKENIZERS/qwen3"
    [ -e "$d/q.tar" ] && return 0
    jq '.vocab_size = 151936 | .hidden_size = 32 | .intermediate_size = 64 | .num_hidden_layers = 1 |
        .num_attention_heads = 2 | .num_key_value_heads = 1' "$ROOT/recipes/student-tiny.json" > "$d/qcfg.json"
    for i in $(seq 1 40); do printf '{"prompt":"Say %d.","completion":"%d"}\n' $((i % 10)) $((i % 10)); done > "$d/qsft.jsonl"
    ds-sft train --config "$d/qcfg.json" --tokenizer "$q/tokenizer.json" --tokenizer-config "$q/tokenizer_config.json" \
        --template model --data "$d/qsft.jsonl" --seq-len 32 --batch 4 --steps 60 --lr 1e-2 --threads 1 \
        --peak-gflops 10 --eval-every 0 -o "$d/q.part.tar" --metrics /dev/null
    mv "$d/q.part.tar" "$d/q.tar"
    for i in 1 2 3 4 5 6; do
        printf '{"id":"q%d","task":"math","prompt":"Say %d.","answer":"%d"}\n' "$i" "$i" "$i"
    done > "$d/qtasks.jsonl"
}

@test "template model: ds-eval prompts render the problem as a Qwen3 user turn (+ system), from -m or --tokenizer-config" {
    needs_data released-tokenizers/qwen3/tokenizer_config.json
    qwen_model
    local t="$BATS_TEST_TMPDIR" d="$BATS_FILE_TMPDIR"
    ds-eval prompts --task math --problems "$d/qtasks.jsonl" --template model -m "$d/q.tar" -o "$t/p.jsonl"
    [ "$(wc -l < "$t/p.jsonl")" -eq 6 ]
    head -1 "$t/p.jsonl" | jq -e '.id == "q1" and .prompt == "<|im_start|>user\nSay 1.<|im_end|>\n<|im_start|>assistant\n"
        and .messages == [{"role": "user", "content": "Say 1."}]'
    ds-eval prompts --task math --problems "$d/qtasks.jsonl" --template model \
        --tokenizer-config "$DS_TOKENIZERS/qwen3/tokenizer_config.json" -o "$t/p2.jsonl"
    cmp "$t/p.jsonl" "$t/p2.jsonl"
    # a record's "system" field becomes a system message before the user turn
    echo '{"id":"s","prompt":"Say 3.","answer":"3","system":"Be brief."}' > "$t/sys.jsonl"
    ds-eval prompts --task math --problems "$t/sys.jsonl" --template model -m "$d/q.tar" | jq -e '
        .prompt == "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nSay 3.<|im_end|>\n<|im_start|>assistant\n"
        and (.messages | length) == 2'
    # the named templates are as before: no messages, the plain prompt is the bare user turn
    ds-eval prompts --task math --problems "$d/qtasks.jsonl" -m "$d/q.tar" | head -1 | jq -e '.prompt == "Say 1." and (has("messages") | not)'
}

@test "template model: ds-eval -m and ds-distill sample draw what ds-eval prompts | ds-infer generate --template model draws" {
    needs_data released-tokenizers/qwen3/tokenizer_config.json
    qwen_model
    local t="$BATS_TEST_TMPDIR" d="$BATS_FILE_TMPDIR"
    local g=(--task math --problems "$d/qtasks.jsonl" --extract last-number)
    ds-eval prompts --task math --problems "$d/qtasks.jsonl" --template model -m "$d/q.tar" \
        | ds-infer generate -m "$d/q.tar" --template model --n 3 --max-tokens 16 --seed 5 --ordered --threads 1 > "$t/infer.jsonl"
    # the samples end their turn with the template's eos_token (<|im_end|>)
    [ "$(jq -r .finish_reason "$t/infer.jsonl" | grep -c eos)" -gt 0 ]
    ds-eval "${g[@]}" "$t/infer.jsonl" -o "$t/infer.graded"
    ds-eval "${g[@]}" -m "$d/q.tar" --template model --n 3 --max-tokens 16 --seed 5 --temperature 1 --top-p 1 \
        --batch 2 -o "$t/model.graded"
    diff <(jq -c '[.id, .sample, .answer, .n_tokens, .finish_reason]' "$t/infer.graded" | sort) \
         <(jq -c '[.id, .sample, .answer, .n_tokens, .finish_reason]' "$t/model.graded" | sort)
    ds-distill sample "${g[@]}" -m "$d/q.tar" --template model --n 3 --max-tokens 16 --seed 5 --temperature 1 \
        --top-p 1 --keep all --threads 1 -o "$t/all.jsonl" --summary /dev/null
    diff <(jq -c '[.id, .sample, .completion]' "$t/infer.jsonl") <(jq -c '[.id, .sample, .completion]' "$t/all.jsonl")
    # the plain template samples other prompts: the comparison above can fail
    ds-eval "${g[@]}" -m "$d/q.tar" --n 3 --max-tokens 16 --seed 5 --temperature 1 --top-p 1 -o "$t/plain.graded"
    ! diff -q <(jq -c '[.id, .sample, .n_tokens]' "$t/plain.graded" | sort) <(jq -c '[.id, .sample, .n_tokens]' "$t/model.graded" | sort)
}

@test "template model: ds-distill sample writes records ds-distill train --template model trains on" {
    needs_data released-tokenizers/qwen3/tokenizer_config.json
    qwen_model
    local t="$BATS_TEST_TMPDIR" d="$BATS_FILE_TMPDIR"
    { cat "$d/qtasks.jsonl"; echo '{"id":"s","prompt":"Say 3.","answer":"3","system":"Be brief."}'; } > "$t/tasks.jsonl"
    ds-distill sample -m "$d/q.tar" --task math --problems "$t/tasks.jsonl" --extract last-number --template model \
        --n 2 --max-tokens 16 --keep all --threads 1 -o "$t/kept.jsonl" --summary /dev/null
    # prompt/completion: the user turn and the sample; a system message travels in "messages"
    jq -s -e 'map(select(.id == "q1")) | length == 2 and
        all(.prompt == "Say 1." and (.completion | type == "string") and (has("messages") | not))' "$t/kept.jsonl"
    jq -s -e 'map(select(.id == "s")) | length == 2 and all(.messages[0] == {"role": "system", "content": "Be brief."}
        and .messages[1].content == "Say 3." and .messages[2].role == "assistant" and .messages[2].content == .completion)' "$t/kept.jsonl"
    ds-distill train -m "$d/q.tar" --data "$t/kept.jsonl" --template model --seq-len 64 --batch 2 --steps 2 \
        --threads 1 --peak-gflops 10 --eval-every 0 -o "$t/student.tar" --metrics "$t/m.jsonl"
    [ "$(wc -l < "$t/m.jsonl")" -eq 2 ]
    jq -e '.loss | isnormal' "$t/m.jsonl" > /dev/null
    tar -xOf "$t/student.tar" state.json | jq -e '.run.template == "model"'
}

@test "template model: ds-grpo trains on Qwen3 prompts, ends samples at <|im_end|> and records the template" {
    needs_data released-tokenizers/qwen3/tokenizer_config.json
    qwen_model
    local t="$BATS_TEST_TMPDIR" d="$BATS_FILE_TMPDIR"
    local r=(-m "$d/q.tar" --tasks "$d/qtasks.jsonl" --template model --prompts-per-step 2 --group-size 4
        --max-tokens 16 --micro-batch 8 --batch 8 --lr 1e-3 --extract last-number --threads 1 --seed 3)
    ds-grpo train "${r[@]}" --steps 2 --eval "$d/qtasks.jsonl" --eval-every 2 --eval-samples 2 --eval-temperature 1 \
        -o "$t/rl.tar" --metrics "$t/m.jsonl"
    [ "$(wc -l < "$t/m.jsonl")" -eq 2 ]
    tar -xOf "$t/rl.tar" state.json | jq -e --arg h "$(sha256sum < "$DS_TOKENIZERS/qwen3/tokenizer_config.json" | cut -c1-64)" \
        '.run.template == "model" and .run.eos == "<|im_end|>" and .run.tokenizer_config_sha256 == $h'
    # the same rollouts cut only at max-tokens (<|endoftext|> is never sampled) are longer: the
    # template's eos_token ended samples
    ds-grpo train "${r[@]}" --steps 1 --eos '<|endoftext|>' -o "$t/long.tar" --metrics "$t/long.jsonl"
    jq -e --slurpfile l "$t/long.jsonl" '.response_length_mean < $l[0].response_length_mean' <(head -1 "$t/m.jsonl")
    # the held-out evaluation of step 1 (the starting model) is ds-eval -m --template model's
    ds-eval -m "$d/q.tar" --task math --extract last-number --problems "$d/qtasks.jsonl" --template model \
        --n 2 --temperature 1 --top-p 1 --max-tokens 16 --seed 3 --k 2 -o /dev/null --summary "$t/s.json"
    head -1 "$t/m.jsonl" | jq -e --slurpfile s "$t/s.json" '(.["eval_pass@1"] - $s[0]["pass@1"] | fabs) < 1e-9'
}

@test "template model: refused without tokenizer_config.json or chat_template; a problem the template rejects is named" {
    needs_data released-tokenizers/qwen3/tokenizer_config.json
    qwen_model
    local t="$BATS_TEST_TMPDIR" d="$BATS_FILE_TMPDIR"
    run ds-eval prompts --task math --problems "$d/qtasks.jsonl" --template model
    assert_failure 2
    assert_output --partial "prompts --template model: give -m MODEL or --tokenizer-config FILE"
    # model folders: the checkpoint's files without tokenizer_config.json, or with another one
    mkdir "$t/none" && tar -xf "$d/q.tar" -C "$t/none" && rm "$t/none/tokenizer_config.json"
    local p=(--task math --problems "$d/qtasks.jsonl" --template model)
    for cmd in "ds-eval prompts -m $t/none ${p[*]}" "ds-eval -m $t/none ${p[*]}" "ds-distill sample -m $t/none ${p[*]}" \
               "ds-grpo train -m $t/none --tasks $d/qtasks.jsonl --template model -o $t/x.tar"; do
        run $cmd
        assert_failure 1
        assert_output --partial "none: --template model: the model has no tokenizer_config.json"
    done
    [ ! -e "$t/x.tar" ]
    cp -r "$t/none" "$t/notpl"
    jq 'del(.chat_template)' "$DS_TOKENIZERS/qwen3/tokenizer_config.json" > "$t/notpl/tokenizer_config.json"
    run ds-eval -m "$t/notpl" "${p[@]}"
    assert_failure 1
    assert_output --partial "tokenizer_config.json: has no chat_template string"
    # a template that refuses system messages (as some released ones do) names the problem
    jq '.chat_template = "{% for m in messages %}{% if m.role == \"system\" %}{{ raise_exception(\"System role not supported\") }}{% endif %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}<|im_start|>assistant\n"' \
        "$DS_TOKENIZERS/qwen3/tokenizer_config.json" > "$t/tokenizer_config.json"
    { head -1 "$d/qtasks.jsonl"; echo '{"id":"q9","task":"math","prompt":"Say 9.","answer":"9","system":"S"}'; } > "$t/tasks.jsonl"
    run ds-eval prompts --task math --problems "$t/tasks.jsonl" --template model --tokenizer-config "$t/tokenizer_config.json" -o "$t/p.jsonl"
    assert_failure 1
    assert_output --partial "problem 'q9': "
    assert_output --partial "the template raised an error: System role not supported"
    [ ! -e "$t/p.jsonl" ]
    cp -r "$t/none" "$t/sys" && cp "$t/tokenizer_config.json" "$t/sys/"
    run ds-grpo train -m "$t/sys" --tasks "$t/tasks.jsonl" --template model -o "$t/x.tar"
    assert_failure 1
    assert_output --partial "tasks.jsonl:2: problem 'q9': "
    assert_output --partial "System role not supported"
    run ds-eval -m "$t/sys" --task math --problems "$t/tasks.jsonl" --template model
    assert_failure 1
    assert_output --partial "problem 'q9': "
    # a "system" field that is not a string
    echo '{"id":"b","prompt":"Say 1.","answer":"1","system":7}' > "$t/bad.jsonl"
    run ds-eval prompts --task math --problems "$t/bad.jsonl" --template model -m "$d/q.tar"
    assert_failure 1
    assert_output --partial "problem 'b': field 'system' must be a string"
}
