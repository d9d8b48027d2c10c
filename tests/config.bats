#!/usr/bin/env bats
# config.json: validation (every refused key and value with its message), warnings for unknown
# keys, released configs, and the rope_scaling types against closed-form inverse frequencies.
load helpers

FIX="$BATS_TEST_DIRNAME/fixtures"

# info_ok FILE: ds-pretrain info FILE succeeds with nothing on stderr; $output is its JSON line.
info_ok() {
    run ds-pretrain info "$1"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    ds-pretrain info "$1" 2> "$BATS_TEST_TMPDIR/err" > /dev/null
    [ ! -s "$BATS_TEST_TMPDIR/err" ] || { cat "$BATS_TEST_TMPDIR/err"; false; }
}

# params: the "params" field of $output
params() { jq -r .params <<< "$output"; }

@test "config: each refused key and value is refused with a message naming the file and key" { unit config refused; }
@test "config: duplicate keys are refused" { unit config duplicate_keys; }
@test "config: unknown keys are named in one warning each; harmless keys are not" { unit config warnings; }
@test "config: greedy, fp8 quantization_config, null keys, rope_parameters, defaults" { unit config accepted_values; }
@test "config: JSON round trip of every rope_scaling type, greedy and fp8" { unit config round_trip; }
@test "rope: llama3 inverse frequencies (Llama 3.2) equal the closed form" { unit config rope_llama3; }
@test "rope: linear divides by the factor; dynamic NTK is plain up to the configured length" { unit config rope_linear_dynamic; }
@test "rope: DeepSeek-V3's YaRN frequencies and softmax scale equal the closed form" { unit config rope_yarn_v3; }
@test "routing: greedy top-k ignores expert groups" { unit config route_greedy; }
@test "layout: the 64-bit size count equals the built layout" { unit config layout_sizes; }

# Published parameter counts: Qwen2.5-0.5B 494,032,768 (tied head), Llama-3.2-1B 1,235,814,400
# (tied), DeepSeek-R1-Distill-Qwen-1.5B 1,777,088,000; DeepSeek-V3 671B without its MTP module.
@test "released configs load without warnings and give the published parameter counts" {
    info_ok "$FIX/qwen2.5-0.5b-config.json"
    [ "$(params)" -eq 494032768 ]
    info_ok "$FIX/llama-3.2-1b-config.json"
    [ "$(params)" -eq 1235814400 ]
    info_ok "$FIX/deepseek-r1-distill-qwen-1.5b-config.json"
    [ "$(params)" -eq 1777088000 ]
    info_ok "$FIX/deepseek-v3-config.json"
    # 682.6e9 with the MTP module (one MoE layer + eh_proj); 671.0e9 without, as published.
    [ "$(params)" -eq 682636472320 ]
    jq -e '.active_params == 36624596992' <<< "$output"
}

@test "ds-pretrain info: an unknown key is one warning line on stderr and the config still loads" {
    jq '. + {"foo": 1, "rope_scaling": (.rope_scaling + {"bar": 2})}' "$FIX/llama-3.2-1b-config.json" > "$BATS_TEST_TMPDIR/c.json"
    ds-pretrain info "$BATS_TEST_TMPDIR/c.json" 2> "$BATS_TEST_TMPDIR/err" > /dev/null
    run cat "$BATS_TEST_TMPDIR/err"
    [ "${#lines[@]}" -eq 2 ]
    [ "${lines[0]}" = "ds-pretrain: warning: $BATS_TEST_TMPDIR/c.json: rope_scaling.bar: unknown key, ignored" ]
    [ "${lines[1]}" = "ds-pretrain: warning: $BATS_TEST_TMPDIR/c.json: foo: unknown key, ignored" ]
}

@test "ds-pretrain info: bad configs exit 1 with the file and key, never crash" {
    f="$BATS_TEST_TMPDIR/c.json"
    jq '.n_group = 0' "$FIX/deepseek-v3-config.json" > "$f"
    run ds-pretrain info "$f"
    [ "$status" -eq 1 ]
    [[ "$output" == *"$f: n_group: must be an integer in [1, 4096] (got 0)"* ]]
    jq '.vocab_size = 16777216 | .hidden_size = 16777216' "$FIX/deepseek-v3-config.json" > "$f"
    run ds-pretrain info "$f"
    [ "$status" -eq 1 ]
    [[ "$output" == *"$f: "*"parameters are more than ds's limit"*": MoE layers × (n_routed_experts + n_shared_experts)"* ]]
    jq '.use_sliding_window = true' "$FIX/qwen2.5-0.5b-config.json" > "$f"
    run ds-pretrain info "$f"
    [ "$status" -eq 1 ]
    [[ "$output" == *"$f: use_sliding_window: true is not supported"* ]]
    printf '{"model_type": "llama", "hidden_size": 8, "hidden_size": 16}' > "$f"
    run ds-pretrain info "$f"
    [ "$status" -eq 1 ]
    [[ "$output" == *"$f:1: invalid JSON: duplicate object key"* ]]
}

@test "ds-pretrain train: an unknown key in --config is warned about before training" {
    jq '. + {"foo": 1}' "$ROOT/recipes/student-tiny.json" > "$BATS_TEST_TMPDIR/c.json"
    run ds-pretrain train --config "$BATS_TEST_TMPDIR/c.json" --data "$BATS_TEST_TMPDIR/none" -o "$BATS_TEST_TMPDIR/o.tar"
    [[ "$output" == *"ds-pretrain: warning: $BATS_TEST_TMPDIR/c.json: foo: unknown key, ignored"* ]]
}

@test "ds-pretrain train: a config too large for this machine fails before allocating, naming the file" {
    run ds-pretrain train --config "$FIX/deepseek-v3-config.json" --data "$BATS_TEST_TMPDIR/none" -o "$BATS_TEST_TMPDIR/o.tar"
    [ "$status" -eq 1 ]
    [[ "$output" == *"$FIX/deepseek-v3-config.json: 682636487424 parameters need "*" GiB (4 float32 copies), more than this machine's"* ]]
    [ ! -e "$BATS_TEST_TMPDIR/o.tar" ]
}
