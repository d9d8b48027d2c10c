#!/usr/bin/env bats
# ds-synth: the C unit cases, then the tool end to end (determinism, split hygiene against the
# test split and TinyZero's test set, grading with ds-eval, counts, errors).
load helpers

setup() {
    export DATA
    TMP="$(mktemp -d)"
}
teardown() { rm -rf "$TMP"; }

@test "synth: same seed same bytes, other seed other bytes, prefixes stable" { unit synth determinism; }
@test "synth: problem keys ignore number order; the split is ~10% test" { unit synth keys_and_split; }
@test "synth: problems are solvable, train/test disjoint, TinyZero test excluded" {
    needs_data countdown/tinyzero_test.jsonl
    unit synth problems_split_and_solvable
}
@test "synth: every attempt's steps and equation are exact and use each number once" { unit synth attempts_are_exact; }
@test "synth: search texts score 1.0 (found) / 0.1 (gave up), format 1, R1 prefix exact, facts true, lang en/xx/mix" {
    needs_data countdown/tinyzero_test.jsonl
    unit synth corpus_graded
}
@test "synth: --max-attempts raises the share of texts that reach the target" { unit synth max_attempts_controls_difficulty; }
@test "synth: --quit-frac searches quit early but never pass over a hit" { unit synth quit_frac_shortens_searches; }
@test "synth: careful searches try each first step once with its closest last step, and always hit" {
    unit synth careful_search_is_complete
}
@test "ds-synth: careful answers start with 'Start with'; --practice-order random drops that line from practice, --careful-order random from all" {
    ds-synth corpus --n 400 --quit-frac 0 --heuristic-frac 1 --practice-frac 0.5 --facts-frac 0 \
        --practice-order random --seed 3 -o "$TMP/c.jsonl"
    # answers follow the prompt; practice searches open the text with " <think>"
    answers=$(jq -r 'select(.text | contains("Assistant:")) | .text | contains("\nStart with ")' "$TMP/c.jsonl" | sort | uniq -c)
    practice=$(jq -r 'select(.text | startswith(" <think>")) | .text | contains("\nStart with ")' "$TMP/c.jsonl" | sort | uniq -c)
    [[ "$answers" =~ ^\ *[0-9]+\ true$ ]] || { echo "answers: $answers"; false; }
    [[ "$practice" =~ ^\ *[0-9]+\ false$ ]] || { echo "practice: $practice"; false; }
    ds-synth corpus --n 100 --quit-frac 0 --heuristic-frac 1 --careful-order random --seed 3 \
        -o "$TMP/r.jsonl"
    run grep -c 'Start with' "$TMP/r.jsonl"
    assert_output 0
    run ds-synth corpus --practice-order sideways
    assert_failure 2
    assert_output --partial "fixed or random"
}
@test "synth: sft traces are correct, formatted, one script, with a check line" { unit synth sft_traces; }
@test "synth: add/larger problems grade 1 under the math grader; corpus uses train pairs" { unit synth add_and_larger; }
@test "synth: option errors, unusable ranges fail, exclusion files name the line" { unit synth option_errors; }

# ---- the tool ----

# canon FILE: one "sorted nums|target" line per countdown problem, from records or corpus prompts.
canon_records() {
    jq -r '"\(.nums | sort | map(tostring) | join(","))|\(.target)"' "$1" | sort -u
}
canon_corpus() {
    jq -r '.text | capture("Using the numbers \\[(?<n>[0-9, ]*)\\], create an equation that equals (?<t>[0-9]+)")? | "\(.n | split(", ") | map(tonumber) | sort | map(tostring) | join(","))|\(.t)"' "$1" | sort -u
}

@test "ds-synth: --help, --version, usage errors exit 2" {
    run ds-synth --help
    assert_success
    assert_output --partial "Usage: ds-synth problems"
    run ds-synth corpus --version
    assert_success
    run ds-synth
    assert_failure 2
    run ds-synth frobnicate
    assert_failure 2
    run ds-synth problems --nums 7
    assert_failure 2
    run ds-synth sft --lang mix
    assert_failure 2
    assert_output --partial "one language"
    run ds-synth corpus --wrong-frac 2
    assert_failure 2
    run ds-synth corpus --heuristic-frac -0.5
    assert_failure 2
}

@test "ds-synth: identical bytes for one seed, different for another (all three commands)" {
    for cmd in problems corpus sft; do
        ds-synth $cmd --n 200 --seed 5 -o "$TMP/a.jsonl" 2>/dev/null
        ds-synth $cmd --n 200 --seed 5 --lang en > "$TMP/b.jsonl" 2>/dev/null
        ds-synth $cmd --n 200 --seed 6 -o "$TMP/c.jsonl" 2>/dev/null
        cmp "$TMP/a.jsonl" "$TMP/b.jsonl"
        run cmp -s "$TMP/a.jsonl" "$TMP/c.jsonl"
        assert_failure
        [ "$(wc -l < "$TMP/a.jsonl")" -eq 200 ]
    done
}

@test "ds-synth: no test or TinyZero-test problem in the train split or any corpus prompt" {
    needs_data countdown/tinyzero_test.jsonl
    tz="$DATA/countdown/tinyzero_test.jsonl"
    ds-synth problems --n 1500 --split test --seed 1 -o "$TMP/test.jsonl"
    ds-synth problems --n 1500 --split test --seed 2 --nums 4 -o "$TMP/test4.jsonl"
    ds-synth problems --n 5000 --split train --seed 3 --exclude "$tz" -o "$TMP/train.jsonl"
    ds-synth corpus --n 6000 --seed 4 --exclude "$tz" -o "$TMP/corpus.jsonl"
    ds-synth corpus --n 3000 --seed 4 --nums 4 --exclude "$tz" -o "$TMP/corpus4.jsonl"
    ds-synth sft --n 500 --seed 4 --exclude "$tz" -o "$TMP/sft.jsonl"
    jq -c '{prompt: .prompt}' "$TMP/sft.jsonl" | jq -c '{text: .prompt}' > "$TMP/sft-text.jsonl"
    cat "$TMP/test.jsonl" "$TMP/test4.jsonl" "$tz" | canon_records /dev/stdin > "$TMP/held"
    canon_records "$TMP/train.jsonl" > "$TMP/train.keys"
    cat "$TMP/corpus.jsonl" "$TMP/corpus4.jsonl" "$TMP/sft-text.jsonl" | canon_corpus /dev/stdin > "$TMP/corpus.keys"
    [ "$(wc -l < "$TMP/held")" -gt 4500 ]
    [ "$(wc -l < "$TMP/train.keys")" -eq 5000 ]
    [ "$(wc -l < "$TMP/corpus.keys")" -gt 6000 ]
    run comm -12 "$TMP/held" "$TMP/train.keys"
    assert_output ""
    run comm -12 "$TMP/held" "$TMP/corpus.keys"
    assert_output ""
    # The comparison does find overlaps where they exist: the test split meets itself.
    run comm -12 "$TMP/held" <(canon_records "$TMP/test.jsonl")
    [ "$(echo "$output" | wc -l)" -eq 1500 ]
}

@test "ds-synth: --with-prompt stores exactly the prompt ds-eval renders for the record" {
    ds-synth problems --n 50 --seed 9 --with-prompt -o "$TMP/p.jsonl"
    [ "$(jq -r '.prompt' "$TMP/p.jsonl" | grep -c '^Using the numbers \[')" -eq 50 ]
    ds-eval prompts --task countdown --problems "$TMP/p.jsonl" -o "$TMP/prompts.jsonl"
    cmp <(jq -r .prompt "$TMP/prompts.jsonl") <(jq -r .prompt "$TMP/p.jsonl")
}

@test "ds-synth: add and larger problems: ds-eval --task math --extract answer scores a correct completion 1" {
    for task in add larger; do
        ds-synth problems --task $task --n 100 --split test --seed 1 -o "$TMP/$task.jsonl"
        jq -c '{id, sample: 0, completion: ("<think> thinking </think> <answer>" + .answer + "</answer>")}' \
            "$TMP/$task.jsonl" > "$TMP/right.jsonl"
        jq -c '{id, sample: 0, completion: ("<think> thinking </think> <answer>" + ((.answer | tonumber) + 1 | tostring) + "</answer>")}' \
            "$TMP/$task.jsonl" > "$TMP/wrong.jsonl"
        ds-eval --task math --extract answer --problems "$TMP/$task.jsonl" "$TMP/right.jsonl" > "$TMP/g1.jsonl"
        ds-eval --task math --extract answer --problems "$TMP/$task.jsonl" "$TMP/wrong.jsonl" > "$TMP/g0.jsonl"
        [ "$(jq -s 'map(.score) | add' "$TMP/g1.jsonl")" = "100" ]
        [ "$(jq -s 'map(.score) | add' "$TMP/g0.jsonl")" = "0" ]
    done
    # --exclude with add records: a second test-split run skips every pair of the first.
    ds-synth problems --task add --n 300 --split test --seed 2 --exclude "$TMP/add.jsonl" -o "$TMP/add2.jsonl"
    run comm -12 <(jq -r '[.a, .b] | sort | join("+")' "$TMP/add.jsonl" | sort) \
        <(jq -r '[.a, .b] | sort | join("+")' "$TMP/add2.jsonl" | sort)
    assert_output ""
    ds-synth problems --task add --n 300 --split test --seed 2 -o "$TMP/add3.jsonl"
    run comm -12 <(jq -r '[.a, .b] | sort | join("+")' "$TMP/add.jsonl" | sort) \
        <(jq -r '[.a, .b] | sort | join("+")' "$TMP/add3.jsonl" | sort)
    [ -n "$output" ] # without --exclude the two runs do share pairs
    run jq -r .prompt "$TMP/add.jsonl"
    assert_line --regexp '^What is [1-9][0-9] \+ [1-9][0-9]\?$'
}

@test "ds-synth: the corpus prints its counts; 20000 documents are written" {
    run ds-synth corpus --n 20000 --seed 1 -o "$TMP/c.jsonl"
    assert_success
    assert_output --regexp '20000 records: [0-9]+ facts, [0-9]+ searches \([0-9]+ correct, [0-9]+ wrong'
    [ "$(wc -l < "$TMP/c.jsonl")" -eq 20000 ]
    [ "$(jq -c 'keys' "$TMP/c.jsonl" | sort -u)" = '["text"]' ]
    # xx reasoning: the lang grader (ds-eval --task lang) scores every search 1.0 for Cyrillic.
    ds-synth corpus --n 300 --seed 2 --lang xx --facts-frac 0 -o "$TMP/xx.jsonl"
    jq -c '{id: (input_line_number | tostring), sample: 0, completion: (.text | split("Assistant:")[1])}' \
        "$TMP/xx.jsonl" > "$TMP/xx-comp.jsonl"
    jq -c '{id: (input_line_number | tostring)}' "$TMP/xx.jsonl" > "$TMP/xx-probs.jsonl"
    ds-eval --task lang --lang-script cyrillic --problems "$TMP/xx-probs.jsonl" "$TMP/xx-comp.jsonl" > "$TMP/lang.jsonl"
    [ "$(jq -s 'map(.score) | min' "$TMP/lang.jsonl")" = "1" ]
}

@test "ds-synth: a bad --exclude file fails with file:line and leaves no output" {
    printf '{"target": 5, "nums": [1, 4]}\n{"nums": [1]}\n' > "$TMP/bad.jsonl"
    run ds-synth problems --n 10 --exclude "$TMP/bad.jsonl" -o "$TMP/out.jsonl"
    assert_failure 1
    assert_output --partial "bad.jsonl:2:"
    [ ! -e "$TMP/out.jsonl" ]
    [ -z "$(ls "$TMP" | grep -v bad.jsonl)" ]
}
