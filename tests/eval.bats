#!/usr/bin/env bats
# Graders, pass@k and ds-eval: the C unit cases, then the tool end to end on real and crafted data.
load helpers

setup() {
    export DATA
    TMP="$(mktemp -d)"
}
teardown() { rm -rf "$TMP"; }

@test "countdown: TinyZero's rule on crafted answers (0 / 0.1 / 1)" { unit grade countdown_rules; }
@test "countdown: exact rational evaluator and number multiset" { unit grade countdown_evaluator; }
@test "countdown: the solver's equation scores 1.0 on all 2001 TinyZero test problems" {
    needs_data countdown/tinyzero_test.jsonl
    unit grade countdown_solver_tinyzero
    assert_output --partial "2001 solved and scored 1.0, 0 without a solution"
}
@test "gsm8k: test answers graded against themselves 100%, final number changed 0%" {
    needs_data gsm8k/test.jsonl
    unit grade gsm8k_self_and_changed
}
@test "gsm8k: #### / last-number / boxed extraction, numeric comparison" { unit grade gsm8k_extraction; }
@test "math: normalisation cases (fractions, units, percent, degrees, x=, 3.0)" { unit grade math_normalisation; }
@test "math: --extract answer reads the R1 <answer> tag" { unit grade math_answer_modes; }
@test "math: MATH-500 answers and solutions' last \\boxed{} match the answer field (>= 99%)" {
    needs_data math500/test.jsonl
    unit grade math500_self
}
@test "pass@k equals the closed form; maj@k ties go to the first answer" { unit grade passk_cases; }
@test "lang: script fractions of the chain of thought" { unit grade lang_consistency; }
@test "format: <think>...</think><answer>...</answer>" { unit grade format_reward; }
@test "graders survive arbitrary bytes and emit valid UTF-8 answers" { unit grade arbitrary_bytes; }
@test "task records, errors with file:line, prompts and the R1 template" { unit grade task_records_and_prompts; }

# ---- ds-eval ----

@test "ds-eval: --help, --version, usage errors exit 2" {
    run ds-eval --help
    assert_success
    assert_output --partial "Usage: ds-eval"
    run ds-eval prompts --help
    assert_success
    run ds-eval --version
    assert_success
    assert_output --partial "ds-eval (ds)"
    run ds-eval --task nope --problems x
    assert_failure 2
    assert_output --partial "unknown task 'nope'"
    run ds-eval --task math
    assert_failure 2
    assert_output --partial "--problems is required"
}

@test "ds-eval: gsm8k answers against themselves 100%, changed final number 0% (end to end)" {
    needs_data gsm8k/test.jsonl
    jq -c '{id: input_line_number, sample: 0, completion: .answer}' "$DATA/gsm8k/test.jsonl" > "$TMP/self.jsonl"
    jq -c '{id: input_line_number, sample: 0, completion: (.answer | sub("#### (?<n>.*)$"; "#### 1\(.n)"))}' \
        "$DATA/gsm8k/test.jsonl" > "$TMP/changed.jsonl"
    run ds-eval --task gsm8k --problems "$DATA/gsm8k/test.jsonl" "$TMP/self.jsonl" --summary "$TMP/s1.json" -o "$TMP/o1.jsonl"
    assert_success
    run jq -e '.n_problems == 1319 and ."pass@1" == 1 and .format_rate == 1' "$TMP/s1.json"
    assert_success
    # stdin, and the per-sample lines say why
    run bash -c "ds-eval --task gsm8k --problems '$DATA/gsm8k/test.jsonl' --summary '$TMP/s2.json' - < '$TMP/changed.jsonl' > '$TMP/o2.jsonl'"
    assert_success
    run jq -e '."pass@1" == 0 and .format_rate == 1 and .n_samples == 1319' "$TMP/s2.json"
    assert_success
    run jq -s -e 'map(select(.correct)) | length == 0' "$TMP/o2.jsonl"
    assert_success
}

@test "ds-eval: MATH-500 solutions graded against the answer field >= 99%, --by level" {
    needs_data math500/test.jsonl
    jq -c '{id: input_line_number, completion: .solution}' "$DATA/math500/test.jsonl" > "$TMP/c.jsonl"
    run ds-eval --task math --problems "$DATA/math500/test.jsonl" "$TMP/c.jsonl" --summary "$TMP/s.json" --by level --by subject -o "$TMP/o.jsonl"
    assert_success
    run jq -e '."pass@1" >= 0.99 and .n_problems == 500 and (.by.level | keys) == ["1","2","3","4","5"]
               and .by.level["5"].n_problems == 134 and .by.subject.Geometry.n_problems == 41' "$TMP/s.json"
    assert_success
}

crafted() {
    cat > "$TMP/p.jsonl" <<'EOF'
{"id": "a", "target": 7, "nums": [3, 4], "level": 1}
{"id": "b", "target": 12, "nums": [3, 4], "level": 2}
{"id": "c", "target": 1, "nums": [1], "level": 2}
EOF
    # b's samples arrive in reverse: maj@k must read them by "sample".
    cat > "$TMP/c.jsonl" <<'EOF'
{"id": "a", "sample": 0, "completion": "<answer>3+4</answer>", "n_tokens": 10, "finish_reason": "stop"}
{"id": "a", "sample": 1, "completion": "<answer>3*4</answer>", "n_tokens": 20}
{"id": "a", "sample": 2, "completion": "no tags", "n_tokens": 30}
{"id": "a", "sample": 3, "completion": "<answer>4+3</answer>", "n_tokens": 40}
{"id": "b", "sample": 3, "completion": "<answer>4*3</answer>", "n_tokens": 80}
{"id": "b", "sample": 2, "completion": "<answer>3*4</answer>", "n_tokens": 70}
{"id": "b", "sample": 1, "completion": "<answer>3*4</answer>", "n_tokens": 60}
{"id": "b", "sample": 0, "completion": "<answer>3+4</answer>", "n_tokens": 50}
EOF
}

@test "ds-eval: summary numbers on a crafted countdown file are exact" {
    crafted
    run ds-eval --task countdown --problems "$TMP/p.jsonl" "$TMP/c.jsonl" --k 1,2,4,8 --by level --summary "$TMP/s.json" -o "$TMP/o.jsonl"
    assert_success
    # a: 2 of 4 correct, b: 3 of 4; pass@2(a) = 1 - C(2,2)/C(4,2) = 5/6, pass@2(b) = 1
    run jq -e '.n_problems == 2 and .n_problems_without_samples == 1 and .n_samples == 8
        and ."pass@1" == 0.625 and ((."pass@2" - (5/6 + 1) / 2) | fabs) < 1e-9 and ."pass@4" == 1
        and has("pass@8") == false and ."maj@2" == 0.5 and ."maj@4" == 1 and ."maj@1" == 0.5
        and .mean_score == 0.65 and .format_rate == 0.875
        and .length_unit == "tokens" and .mean_length == 45 and .max_length == 80
        and .by.level["1"]["pass@1"] == 0.5 and .by.level["2"]["pass@1"] == 0.75
        and .by.level["2"].n_problems == 1' "$TMP/s.json"
    assert_success
    run jq -s -e 'length == 8 and .[0] == {"id":"a","sample":0,"score":1,"correct":true,"formatted":true,"answer":"3+4","n_tokens":10,"finish_reason":"stop"}
        and .[1].score == 0.1 and .[2].score == 0 and .[2].formatted == false and .[4].sample == 3' "$TMP/o.jsonl"
    assert_success
}

@test "ds-eval: a completion whose id has no problem fails naming the line; no output left" {
    crafted
    printf '{"id": "zz", "completion": "x"}\n' >> "$TMP/c.jsonl"
    run ds-eval --task countdown --problems "$TMP/p.jsonl" "$TMP/c.jsonl" -o "$TMP/o.jsonl" --summary "$TMP/s.json"
    assert_failure 1
    assert_output --partial "ds-eval: $TMP/c.jsonl:9: no problem with id 'zz'"
    [ ! -e "$TMP/o.jsonl" ] && [ ! -e "$TMP/s.json" ]
    # integer ids match problems numbered by line
    printf '{"target": 7, "nums": [3, 4]}\n{"target": 1, "nums": [1]}\n' > "$TMP/p2.jsonl"
    printf '{"id": 2, "completion": "<answer>1</answer>"}\n{"id": "1", "completion": "<answer>4+3</answer>"}\n' > "$TMP/c2.jsonl"
    run ds-eval --task countdown --problems "$TMP/p2.jsonl" "$TMP/c2.jsonl" --summary "$TMP/s2.json" -o "$TMP/o2.jsonl"
    assert_success
    run jq -e '."pass@1" == 1' "$TMP/s2.json"
    assert_success
}

@test "ds-eval: malformed completions and problems fail with file:line; --skip-bad skips" {
    crafted
    sed -i '3s/.*/{"id": "a", oops/' "$TMP/c.jsonl"
    run ds-eval --task countdown --problems "$TMP/p.jsonl" "$TMP/c.jsonl" -o "$TMP/o.jsonl"
    assert_failure 1
    assert_output --partial "$TMP/c.jsonl:3: invalid JSON"
    run ds-eval --task countdown --problems "$TMP/p.jsonl" "$TMP/c.jsonl" -o "$TMP/o.jsonl" --skip-bad --summary "$TMP/s.json"
    assert_success
    run jq -e '.n_samples == 7' "$TMP/s.json"
    assert_success
    printf '{"id": "a", "sample": 0}\n' > "$TMP/c2.jsonl"
    run ds-eval --task countdown --problems "$TMP/p.jsonl" "$TMP/c2.jsonl"
    assert_failure 1
    assert_output --partial "c2.jsonl:1: field 'completion' must be a string"
    printf '{"id": "a", "target": 7, "nums": [3, 4]}\n{"id": "a", "target": 7, "nums": [3, 4]}\n' > "$TMP/dup.jsonl"
    run ds-eval --task countdown --problems "$TMP/dup.jsonl" "$TMP/c.jsonl"
    assert_failure 1
    assert_output --partial "dup.jsonl:2: duplicate id 'a'"
    printf '{"id": "a", "target": 7}\n' > "$TMP/bad.jsonl"
    run ds-eval --task countdown --problems "$TMP/bad.jsonl" "$TMP/c.jsonl"
    assert_failure 1
    assert_output --partial "bad.jsonl:1: field 'nums'"
}

@test "ds-eval: format and lang tasks grade the completion alone" {
    printf '{"id": 1}\n' > "$TMP/p.jsonl"
    printf '%s\n' '{"id": 1, "completion": "<think>hello мир</think> <answer>x</answer>"}' \
        '{"id": 1, "completion": "just text"}' > "$TMP/c.jsonl"
    run ds-eval --task format --problems "$TMP/p.jsonl" "$TMP/c.jsonl" --summary "$TMP/s.json" -o "$TMP/o.jsonl"
    assert_success
    run jq -e '."pass@1" == 0.5' "$TMP/s.json"
    assert_success
    run ds-eval --task lang --lang-script cyrillic --problems "$TMP/p.jsonl" "$TMP/c.jsonl" --summary "$TMP/s.json"
    assert_success
    assert_line --index 0 '{"id":1,"sample":0,"score":0.5,"correct":false,"formatted":true,"answer":""}'
    run jq -e '.mean_score == 0.25 and .length_unit == "chars" and .max_length == 43' "$TMP/s.json"
    assert_success
}

@test "ds-eval prompts: TinyZero countdown wording, R1 template, one line per problem" {
    needs_data countdown/tinyzero_test.jsonl
    run ds-eval prompts --task countdown --problems "$DATA/countdown/tinyzero_test.jsonl" -o "$TMP/p.jsonl"
    assert_success
    [ "$(wc -l < "$TMP/p.jsonl")" -eq 2001 ]
    run jq -r 'select(.id == 1) | .prompt' "$TMP/p.jsonl"
    assert_output "Using the numbers [96, 7, 37, 74], create an equation that equals 55. You can use basic arithmetic operations (+, -, *, /) and each number can only be used once. Show your work in <think> </think> tags. And return the final answer in <answer> </answer> tags, for example <answer> (1 + 2) / 3 </answer>."
    run bash -c "ds-eval prompts --task math --problems '$DATA/math500/test.jsonl' --template r1 | head -1 | jq -r .prompt"
    assert_success
    assert_output --partial "A conversation between User and Assistant."
    assert_output --partial "put your final answer within \\boxed{}. Assistant:"
}

@test "lang: reasoning in any other script is a miss (every Unicode letter counted)" { unit grade lang_every_script; }
@test "reflection: R1's reflective words counted as whole words in any case" { unit grade reflection_words; }

@test "ds-eval --task lang: a Tamil chain of thought scores 0 for latin and for cjk" {
    printf '{"id":"1","prompt":"x","answer":"1"}\n' > "$BATS_TEST_TMPDIR/p.jsonl"
    printf '{"id":"1","sample":0,"completion":"<think>நாம் எண்களைச் சேர்த்து</think> <answer>1</answer>","n_tokens":1}\n' > "$BATS_TEST_TMPDIR/c.jsonl"
    for s in latin cjk; do
        ds-eval --task lang --lang-script $s --problems "$BATS_TEST_TMPDIR/p.jsonl" "$BATS_TEST_TMPDIR/c.jsonl" > "$BATS_TEST_TMPDIR/o.jsonl"
        [ "$(jq -r .score "$BATS_TEST_TMPDIR/o.jsonl")" = 0 ]
    done
}
