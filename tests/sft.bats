#!/usr/bin/env bats
# ds-sft: masking and packing (C unit cases), fine-tuning end to end, exact resume, data forms,
# refusals.
load helpers

setup_file() {
    needs_data tinyshakespeare/input.txt
    local d="$BATS_FILE_TMPDIR"
    head -c 100000 "$DATA/tinyshakespeare/input.txt" > "$d/text.txt"
    addition 300 1 > "$d/sft.jsonl"
    addition 40 2 > "$d/val.jsonl"
    ds-eval prompts --task format --problems "$d/sft.jsonl" --template r1 > "$d/r1.jsonl"
    ds-tokenize train --vocab-size 512 --special '<|endoftext|>' -o "$d/tok.json" "$d/text.txt" "$d/r1.jsonl" "$d/sft.jsonl"
    ds-tokenize encode -t "$d/tok.json" -o "$d/text" "$d/text.txt"
    ds-pretrain train --config "$ROOT/recipes/tiny-moe.json" --data "$d/text-000000.tar" --tokenizer "$d/tok.json" \
        --seq-len 32 --batch 4 --steps 20 --eval-every 0 --threads 1 --peak-gflops 10 -o "$d/base.tar" --metrics /dev/null
}

setup() {
    local d="$BATS_FILE_TMPDIR"
    SFT_ARGS=(-m "$d/base.tar" --data "$d/sft.jsonl" --template r1 --seq-len 256 --batch 4 --lr 3e-3
        --warmup 2 --threads 1 --peak-gflops 10)
}

losses() { grep -o '"loss":[^,]*' "$1"; }

@test "sft unit: records become prompt + answer + EOS under the plain and r1 templates" { unit sft records_to_examples; }
@test "sft unit: targets are -1 on the prompt; changing prompt ids leaves the targets unchanged" { unit sft masking_targets; }
@test "sft unit: packed rows: positions restart, EOS trained, last/padding -1, epochs, pure batches" { unit sft packing_rows_and_epochs; }
@test "sft unit: packed logits equal each example alone; batch loss = answer-only CE (V3, qwen2)" {
    unit sft packed_equals_alone_v3 packed_equals_alone_qwen2
}

@test "sft: fine-tuning a base model lowers the validation loss; checkpoint holds every part" {
    local t="$BATS_TEST_TMPDIR"
    ds-sft train "${SFT_ARGS[@]}" --val "$BATS_FILE_TMPDIR/val.jsonl" --steps 40 --eval-every 5 \
        -o "$t/ck.tar" --metrics "$t/m.jsonl"
    [ "$(wc -l < "$t/m.jsonl")" -eq 40 ]
    first=$(grep -o '"val_loss":[0-9.e-]*' "$t/m.jsonl" | head -1 | cut -d: -f2)
    last=$(grep -o '"val_loss":[0-9.e-]*' "$t/m.jsonl" | tail -1 | cut -d: -f2)
    awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < a - 0.3) }'
    run tar -tf "$t/ck.tar"
    for f in config.json model.safetensors tokenizer.json optimizer.safetensors state.json; do
        assert_line "$f"
    done
    tar -xOf "$t/ck.tar" state.json | jq -e '.run.template == "r1" and .run.data.examples == 300'
}

@test "sft: --epochs sets the steps; a run stopped at step 8 and resumed is bit-identical" {
    local t="$BATS_TEST_TMPDIR"
    ds-sft train "${SFT_ARGS[@]}" --epochs 2 -o "$t/full.tar" --metrics "$t/full.jsonl"
    steps=$(wc -l < "$t/full.jsonl")
    [ "$steps" -ge 30 ] && [ "$steps" -le 80 ] # 300 examples, 2 per row, 4 rows per step, 2 epochs
    ds-sft train "${SFT_ARGS[@]}" --epochs 2 -o "$t/part.tar" --metrics "$t/a.jsonl" --stop-at 8
    [ "$(wc -l < "$t/a.jsonl")" -eq 8 ]
    ds-sft train "${SFT_ARGS[@]}" --epochs 2 --resume "$t/part.tar" -o "$t/part.tar" --metrics "$t/b.jsonl"
    diff <(losses "$t/full.jsonl") <(cat "$t/a.jsonl" "$t/b.jsonl" | losses /dev/stdin)
    cmp "$t/full.tar" "$t/part.tar"
    # a changed option or other data cannot resume exactly
    ds-sft train "${SFT_ARGS[@]}" --steps 20 -o "$t/p2.tar" --metrics /dev/null --stop-at 2
    run ds-sft train "${SFT_ARGS[@]}" --steps 20 --lr 1e-3 --resume "$t/p2.tar" -o "$t/x.tar" --metrics /dev/null
    assert_failure 1
    assert_output --partial "'lr' differs"
    head -200 "$BATS_FILE_TMPDIR/sft.jsonl" > "$t/less.jsonl"
    run ds-sft train "${SFT_ARGS[@]}" --data "$t/less.jsonl" --steps 20 --resume "$t/p2.tar" -o "$t/x.tar" --metrics /dev/null
    assert_failure 1
    assert_output --partial "'data' differs"
    [ ! -e "$t/x.tar" ]
}

@test "sft: SIGTERM writes a checkpoint and exits 0; resume completes the run" {
    local t="$BATS_TEST_TMPDIR"
    # started directly (not through a shell function) so the signal reaches ds-sft itself
    ds-sft train "${SFT_ARGS[@]}" --steps 400 -o "$t/ck.tar" --metrics - > "$t/a.jsonl" &
    local pid=$!
    for _ in $(seq 1 600); do
        [ "$(wc -l < "$t/a.jsonl")" -ge 2 ] && break
        sleep 0.05
    done
    kill -TERM "$pid"
    wait "$pid"
    n=$(wc -l < "$t/a.jsonl")
    [ "$n" -lt 400 ]
    tar -xOf "$t/ck.tar" state.json | jq -e --argjson n "$n" '.step == $n'
    ds-sft train "${SFT_ARGS[@]}" --steps 400 --stop-at $((n + 2)) --resume "$t/ck.tar" -o "$t/ck.tar" --metrics "$t/b.jsonl"
    [ "$(wc -l < "$t/b.jsonl")" -eq 2 ]
    tar -xOf "$t/ck.tar" state.json | jq -e --argjson n "$n" '.step == $n + 2'
}

@test "sft: chat messages from scratch (--config) with the plain template; long examples skipped" {
    local t="$BATS_TEST_TMPDIR" d="$BATS_FILE_TMPDIR"
    jq -c '{messages: [{role: "system", content: "Add."}, {role: "user", content: .prompt},
            {role: "assistant", content: .completion}]}' "$d/sft.jsonl" > "$t/chat.jsonl"
    printf '{"prompt":"%s","completion":"x"}\n' "$(head -c 3000 "$d/text.txt" | tr -d '"\\\n')" >> "$t/chat.jsonl"
    run ds-sft train --config "$ROOT/recipes/tiny-moe.json" --tokenizer "$d/tok.json" --data "$t/chat.jsonl" \
        --seq-len 64 --batch 4 --steps 10 --threads 1 --peak-gflops 10 -o "$t/ck.tar" --metrics "$t/m.jsonl"
    assert_success
    assert_output --partial "1 examples longer than --seq-len 64 skipped"
    first=$(head -1 "$t/m.jsonl" | jq .loss); last=$(tail -1 "$t/m.jsonl" | jq .loss)
    awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < a - 0.5) }'
    # the r1 template takes exactly one user turn and no system text of its own
    run ds-sft train --config "$ROOT/recipes/tiny-moe.json" --tokenizer "$d/tok.json" --data "$t/chat.jsonl" \
        --template r1 --seq-len 512 --steps 1 --threads 1 -o "$t/x.tar" --metrics /dev/null
    assert_success
}

@test "sft: records without an answer, bad JSON and usage errors are refused" {
    local t="$BATS_TEST_TMPDIR" d="$BATS_FILE_TMPDIR"
    printf '{"prompt":"a","completion":"b"}\n{"prompt":"no answer"}\n' > "$t/bad.jsonl"
    run ds-sft train -m "$d/base.tar" --data "$t/bad.jsonl" --steps 1 -o "$t/x.tar"
    assert_failure 1
    assert_output --partial "bad.jsonl:2: needs an answer"
    printf '{"prompt":"a","completion":"b"}\n{bad\n' > "$t/bad2.jsonl"
    run ds-sft train -m "$d/base.tar" --data "$t/bad2.jsonl" --steps 1 -o "$t/x.tar"
    assert_failure 1
    assert_output --partial "bad2.jsonl:2:"
    [ ! -e "$t/x.tar" ]
    run ds-sft train -m "$d/base.tar" --data "$d/sft.jsonl" --steps 1 --epochs 1 -o "$t/x.tar"
    assert_failure 2
    run ds-sft train --data "$d/sft.jsonl" -o "$t/x.tar"
    assert_failure 2
    run ds-sft train -m "$d/base.tar" --data "$d/sft.jsonl" --eos '<|nope|>' -o "$t/x.tar"
    assert_failure 2
    run ds-sft train -m "$d/base.tar" --data "$d/sft.jsonl" --logits -o "$t/x.tar"
    assert_failure 2
    run ds-sft --help
    assert_success
    assert_output --partial "ds-sft train -m BASE.tar"
    run ds-sft train --help
    assert_success
    run ds-sft --version
    assert_success
    assert_output --partial "(ds)"
    run ds-sft frobnicate
    assert_failure 2
}

@test "sft unit: under a chat template every assistant turn and its end token is trained, nothing else" {
    unit sft chat_template_masks_assistant_turns
}

@test "sft unit: the Qwen3 template's mask is each turn as the whole conversation renders it" {
    needs_data released-tokenizers/qwen3/tokenizer_config.json
    DS_TOKENIZERS="$DATA/released-tokenizers" unit sft qwen3_template_masks
}

@test "sft: --template model trains every assistant turn under Qwen3's template; EOS <|im_end|> without a flag" {
    needs_data released-tokenizers/qwen3/tokenizer_config.json
    local t="$BATS_TEST_TMPDIR" d="$BATS_FILE_TMPDIR"
    mkdir "$t/qwen"
    ds-tokenize train --vocab-size 512 --special '<|endoftext|>' --special '<|im_start|>' --special '<|im_end|>' \
        -o "$t/qwen/tokenizer.json" "$d/text.txt" "$d/sft.jsonl"
    cp "$DATA/released-tokenizers/qwen3/tokenizer_config.json" "$t/qwen/"
    # two assistant turns per conversation; the completions carry <think> reasoning
    jq -c '{messages: [{role: "system", content: "Add."}, {role: "user", content: .prompt},
            {role: "assistant", content: .completion}, {role: "user", content: ("Again: " + .prompt)},
            {role: "assistant", content: .completion}]}' "$d/sft.jsonl" > "$t/chat.jsonl"
    ds-sft train --config "$ROOT/recipes/tiny-moe.json" --tokenizer "$t/qwen/tokenizer.json" --data "$t/chat.jsonl" \
        --template model --seq-len 256 --batch 4 --steps 6 --threads 1 --peak-gflops 10 -o "$t/ck.tar" --metrics "$t/m.jsonl"
    im_end=$(printf '<|im_end|>' | ds-tokenize encode -t "$t/qwen/tokenizer.json" --allow-special --jsonl-ids - | jq '.[0]')
    tar -xOf "$t/ck.tar" state.json | jq -e --argjson e "$im_end" '.run.template == "model" and .run.eos == $e'
    tar -tf "$t/ck.tar" | grep -qx tokenizer_config.json
    # The trained tokens are exactly the two turns as Qwen3 renders them: the first without its
    # reasoning (it precedes the last user turn), the second with it, each through <|im_end|>.
    jq -c '(.completion | split("</think>")) as $p | ($p[0] | split("<think>")[-1]) as $r |
           {span: ($p[-1] + "<|im_end|>")}, {span: ("<think>\n" + $r + "\n</think>\n\n" + $p[-1] + "<|im_end|>")}' \
        "$d/sft.jsonl" > "$t/spans.jsonl"
    want=$(ds-tokenize encode -t "$t/qwen/tokenizer.json" --jsonl --field span --allow-special --jsonl-ids "$t/spans.jsonl" \
        | jq -s 'map(length) | add')
    tar -xOf "$t/ck.tar" state.json | jq -e --argjson w "$want" '.run.data.answer_tokens == $w and .run.data.examples == 300'
    # the checkpoint carries the template on: fine-tuning it again reads it from the tar
    ds-sft train -m "$t/ck.tar" --data "$t/chat.jsonl" --template model --seq-len 256 --batch 4 --steps 1 --threads 1 \
        --peak-gflops 10 -o "$t/ck2.tar" --metrics /dev/null
    tar -xOf "$t/ck2.tar" state.json | jq -e --argjson e "$im_end" '.run.eos == $e'
    # refusals: no tokenizer_config.json; --eos with the model's template
    run ds-sft train --config "$ROOT/recipes/tiny-moe.json" --tokenizer "$d/tok.json" --data "$t/chat.jsonl" \
        --template model --steps 1 -o "$t/x.tar" --metrics /dev/null
    assert_failure 1
    assert_output --partial "no tokenizer_config.json"
    run ds-sft train -m "$t/ck.tar" --data "$t/chat.jsonl" --template model --eos '<|endoftext|>' --steps 1 -o "$t/x.tar"
    assert_failure 2
    [ ! -e "$t/x.tar" ]
}
