#!/usr/bin/env bats
# ds-distill: rejection sampling from a teacher into SFT data, and students trained on it at the
# sequence level (ds-sft's code) and on the teacher's logits.
load helpers

setup_file() {
    needs_data tinyshakespeare/input.txt
    local d="$BATS_FILE_TMPDIR"
    head -c 100000 "$DATA/tinyshakespeare/input.txt" > "$d/text.txt"
    addition 400 1 > "$d/sft.jsonl"
    addition 30 2 > "$d/problems.jsonl"
    ds-eval prompts --task format --problems "$d/sft.jsonl" --template r1 > "$d/r1.jsonl"
    ds-tokenize train --vocab-size 512 --special '<|endoftext|>' -o "$d/tok.json" "$d/text.txt" "$d/r1.jsonl" "$d/sft.jsonl"
    # the teacher: tiny-moe taught the R1 form on addition (cold-start style SFT from scratch)
    ds-sft train --config "$ROOT/recipes/tiny-moe.json" --tokenizer "$d/tok.json" --data "$d/sft.jsonl" \
        --template r1 --seq-len 256 --batch 4 --steps 100 --lr 3e-3 --threads 1 --peak-gflops 10 \
        -o "$d/teacher.tar" --metrics /dev/null
    # a dense qwen2 student, another architecture and size, with the teacher's vocabulary
    cat > "$d/student.json" <<'EOF'
{"model_type": "qwen2", "vocab_size": 512, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
 "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 8, "max_position_embeddings": 1024,
 "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "initializer_range": 0.02, "tie_word_embeddings": true}
EOF
    SAMPLE=(-m "$d/teacher.tar" --task gsm8k --problems "$d/problems.jsonl" --extract answer --n 4
        --temperature 1 --top-p 1 --max-tokens 24 --seed 1 --threads 1)
    ds-distill sample "${SAMPLE[@]}" -o "$d/kept.jsonl" --summary "$d/kept.json"
    ds-distill sample "${SAMPLE[@]}" --keep all -o "$d/all.jsonl" --summary "$d/all.json"
}

setup() {
    local d="$BATS_FILE_TMPDIR"
    SAMPLE=(-m "$d/teacher.tar" --task gsm8k --problems "$d/problems.jsonl" --extract answer --n 4
        --temperature 1 --top-p 1 --max-tokens 24 --seed 1 --threads 1)
    STUDENT=(--config "$d/student.json" --tokenizer "$d/tok.json" --template r1 --seq-len 256 --batch 4
        --lr 1e-2 --warmup 2 --threads 1 --peak-gflops 10 --eval-every 0)
}

@test "distill unit: teacher forward + KL objective lowers KL(teacher||student); alpha 1 is plain CE" { unit sft distill_lowers_kl; }
@test "distill unit: the keep rule (correct, format, all)" { unit sft keep_rule; }

@test "distill sample: kept samples all grade 1.0 with ds-eval; --keep all keeps every sample" {
    local d="$BATS_FILE_TMPDIR" t="$BATS_TEST_TMPDIR"
    kept=$(wc -l < "$d/kept.jsonl")
    jq -e --argjson k "$kept" '.samples == 120 and .kept == $k and .kept == .correct and .problems == 30' "$d/kept.json"
    [ "$kept" -gt 0 ] && [ "$kept" -lt 120 ]
    ds-eval --task gsm8k --problems "$d/problems.jsonl" --extract answer "$d/kept.jsonl" -o "$t/graded.jsonl"
    [ "$(wc -l < "$t/graded.jsonl")" -eq "$kept" ]
    [ "$(jq -c 'select(.score != 1.0)' "$t/graded.jsonl" | wc -l)" -eq 0 ]
    # every sample under --keep all, graded as the summary counts them
    [ "$(wc -l < "$d/all.jsonl")" -eq 120 ]
    jq -e '.kept == 120 and .keep == "all"' "$d/all.json"
    ds-eval --task gsm8k --problems "$d/problems.jsonl" --extract answer "$d/all.jsonl" -o "$t/all.graded"
    [ "$(jq -c 'select(.score == 1.0)' "$t/all.graded" | wc -l)" -eq "$kept" ]
    # coverage: problems with at least one kept sample
    covered=$(jq -r .id "$d/kept.jsonl" | sort -u | wc -l)
    jq -e --argjson c "$covered" '.problems_covered == $c and (.per_problem | map(.kept) | add) == .kept' "$d/kept.json"
    # the records are SFT data: user prompt and completion, and the teacher ended its samples
    head -1 "$d/kept.jsonl" | jq -e '(.prompt | startswith("What is")) and (.completion | type == "string")'
}

@test "distill sample: --require-format keeps a well-formed subset; same seed, same output" {
    local d="$BATS_FILE_TMPDIR" t="$BATS_TEST_TMPDIR"
    ds-distill sample "${SAMPLE[@]}" --require-format -o "$t/fmt.jsonl" --summary /dev/null
    [ "$(wc -l < "$t/fmt.jsonl")" -le "$(wc -l < "$d/kept.jsonl")" ]
    ds-eval --task format --problems "$d/problems.jsonl" "$t/fmt.jsonl" -o "$t/fmt.graded"
    [ "$(jq -c 'select(.score != 1.0)' "$t/fmt.graded" | wc -l)" -eq 0 ]
    ds-distill sample "${SAMPLE[@]}" -o "$t/again.jsonl" --summary /dev/null
    cmp "$d/kept.jsonl" "$t/again.jsonl"
}

@test "rollout: ds-distill sample, ds-eval -m and ds-infer generate draw the same samples for a seed" {
    local d="$BATS_FILE_TMPDIR" t="$BATS_TEST_TMPDIR"
    # a sample's randomness depends only on the seed, the problem's id and the sample index
    ds-eval prompts --task gsm8k --problems "$d/problems.jsonl" --template r1 \
        | ds-infer generate -m "$d/teacher.tar" --n 4 --temperature 1 --max-tokens 24 --seed 1 --threads 1 \
            --batch 5 --ordered > "$t/infer.jsonl"
    # ds-distill sample --keep all: the same completions, in the same order
    diff <(jq -c '[.id, .sample, .completion]' "$t/infer.jsonl") <(jq -c '[.id, .sample, .completion]' "$d/all.jsonl")
    # ds-eval -m: the same samples, so the same per-sample grades and lengths as grading ds-infer's
    local g=(--task gsm8k --problems "$d/problems.jsonl" --extract answer)
    ds-eval "${g[@]}" "$t/infer.jsonl" -o "$t/infer.graded" --summary "$t/infer.sum"
    ds-eval "${g[@]}" -m "$d/teacher.tar" --template r1 --n 4 --temperature 1 --top-p 1 --max-tokens 24 \
        --seed 1 --batch 3 -o "$t/model.graded" --summary "$t/model.sum"
    diff <(jq -c 'del(.id)' "$t/infer.graded" | sort) <(jq -c 'del(.id)' "$t/model.graded" | sort)
    diff <(jq -c '[.id, .sample, .answer, .n_tokens]' "$t/infer.graded" | sort) \
         <(jq -c '[.id, .sample, .answer, .n_tokens]' "$t/model.graded" | sort)
    cmp "$t/infer.sum" "$t/model.sum"
    # and another seed gives other samples
    ds-eval "${g[@]}" -m "$d/teacher.tar" --template r1 --n 4 --temperature 1 --top-p 1 --max-tokens 24 \
        --seed 2 -o "$t/seed2.graded"
    ! diff -q <(jq -c '[.id, .sample, .answer, .n_tokens]' "$t/model.graded" | sort) \
              <(jq -c '[.id, .sample, .answer, .n_tokens]' "$t/seed2.graded" | sort)
    # the same under the model's own chat template (a teacher folder with a tokenizer_config.json):
    # ds-eval prompts' records rendered by ds-infer generate --template model are the rollouts' prompts
    mkdir "$t/tm" && tar -xf "$d/teacher.tar" -C "$t/tm"
    jq -n '{chat_template: "{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}",
            eos_token: "<|endoftext|>"}' > "$t/tm/tokenizer_config.json"
    ds-eval prompts --task gsm8k --problems "$d/problems.jsonl" --template model -m "$t/tm" \
        | ds-infer generate -m "$t/tm" --template model --n 4 --temperature 1 --max-tokens 24 --seed 1 --threads 1 \
            --batch 5 --ordered > "$t/infer-m.jsonl"
    ds-distill sample "${SAMPLE[@]}" -m "$t/tm" --template model --keep all -o "$t/all-m.jsonl" --summary /dev/null
    diff <(jq -c '[.id, .sample, .completion]' "$t/infer-m.jsonl") <(jq -c '[.id, .sample, .completion]' "$t/all-m.jsonl")
    ds-eval "${g[@]}" "$t/infer-m.jsonl" -o "$t/infer-m.graded"
    ds-eval "${g[@]}" -m "$t/tm" --template model --n 4 --temperature 1 --top-p 1 --max-tokens 24 --seed 1 \
        --batch 3 -o "$t/model-m.graded"
    diff <(jq -c '[.id, .sample, .answer, .n_tokens]' "$t/infer-m.graded" | sort) \
         <(jq -c '[.id, .sample, .answer, .n_tokens]' "$t/model-m.graded" | sort)
    ! diff -q <(jq -c '[.id, .sample, .completion]' "$t/infer-m.jsonl") <(jq -c '[.id, .sample, .completion]' "$t/infer.jsonl")
}

@test "distill train: a dense qwen2 student learns from the kept samples (sequence level)" {
    local d="$BATS_FILE_TMPDIR" t="$BATS_TEST_TMPDIR"
    cat "$d/kept.jsonl" "$d/all.jsonl" > "$t/data.jsonl"
    ds-distill train "${STUDENT[@]}" --data "$t/data.jsonl" --steps 30 -o "$t/student.tar" --metrics "$t/m.jsonl"
    first=$(head -1 "$t/m.jsonl" | jq .loss); last=$(tail -1 "$t/m.jsonl" | jq .loss)
    awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < a - 1) }'
    tar -xOf "$t/student.tar" config.json | jq -e '.model_type == "qwen2" and .hidden_size == 32'
}

@test "distill train --logits: KL(teacher||student) falls over steps; resume is bit-identical" {
    local d="$BATS_FILE_TMPDIR" t="$BATS_TEST_TMPDIR"
    # alpha 0: the reported loss is T²·KL(teacher_T || student_T) on the answer tokens
    ds-distill train "${STUDENT[@]}" --data "$d/all.jsonl" --steps 24 --logits -t "$d/teacher.tar" \
        --temperature 1 --alpha 0 -o "$t/full.tar" --metrics "$t/m.jsonl"
    first=$(head -1 "$t/m.jsonl" | jq .loss); last=$(tail -1 "$t/m.jsonl" | jq .loss)
    awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < a / 2) }'
    tar -xOf "$t/full.tar" state.json | jq -e '.run.logits.alpha == 0 and .run.logits.temperature == 1'
    ds-distill train "${STUDENT[@]}" --data "$d/all.jsonl" --steps 24 --logits -t "$d/teacher.tar" \
        --temperature 1 --alpha 0 -o "$t/part.tar" --metrics "$t/a.jsonl" --stop-at 10
    ds-distill train "${STUDENT[@]}" --data "$d/all.jsonl" --steps 24 --logits -t "$d/teacher.tar" \
        --temperature 1 --alpha 0 --resume "$t/part.tar" -o "$t/part.tar" --metrics "$t/b.jsonl"
    cmp "$t/full.tar" "$t/part.tar"
}

@test "distill train --logits refuses a teacher with another tokenizer; ds-sft a foreign --tokenizer" {
    local d="$BATS_FILE_TMPDIR" t="$BATS_TEST_TMPDIR"
    ds-tokenize train --vocab-size 512 --special '<|endoftext|>' -o "$t/tok2.json" "$d/text.txt"
    run ds-distill train --config "$d/student.json" --tokenizer "$t/tok2.json" --data "$d/all.jsonl" \
        --seq-len 256 --steps 2 --threads 1 --logits -t "$d/teacher.tar" -o "$t/x.tar" --metrics /dev/null
    assert_failure 1
    assert_output --partial "tokenizers differ"
    [ ! -e "$t/x.tar" ]
    # nor is a model fine-tuned under a tokenizer other than its own
    run ds-sft train -m "$d/teacher.tar" --tokenizer "$t/tok2.json" --data "$d/all.jsonl" --steps 1 -o "$t/x.tar"
    assert_failure 1
    assert_output --partial "differs from the model's tokenizer.json"
}

@test "distill: --help, --version and usage errors" {
    local d="$BATS_FILE_TMPDIR"
    run ds-distill --help
    assert_success
    assert_output --partial "ds-distill sample"
    run ds-distill sample --version
    assert_success
    assert_output --partial "(ds)"
    run ds-distill sample -m "$d/teacher.tar" --problems "$d/problems.jsonl"
    assert_failure 2
    assert_output --partial "--task is required"
    run ds-distill sample -m "$d/teacher.tar" --task gsm8k --problems "$d/problems.jsonl" --keep some
    assert_failure 2
    run ds-distill train --config "$d/student.json" --data "$d/all.jsonl" --logits -o /dev/null
    assert_failure 2
    assert_output --partial "--logits needs -t"
    run ds-distill frobnicate
    assert_failure 2
}
