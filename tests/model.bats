#!/usr/bin/env bats
# The model core: gradient checks (double precision central differences, worst relative error over
# sampled entries of every trainable tensor < 1e-6 for whole models, < 1e-7 / 1e-5 per op) and
# closed-form cases.
load helpers

@test "gradcheck: V3 (MLA q_lora, MoE groups + shared expert, dense first layer, MTP 1)" { unit model gradcheck_v3; }
@test "gradcheck: V3 (MLA no q_lora, YaRN + mscale, raw gates, MTP 2, tied head)" { unit model gradcheck_v3_yarn_tied_mtp2; }
@test "gradcheck: llama (GQA, rotate-half RoPE, tied head)" { unit model gradcheck_llama; }
@test "gradcheck: qwen2 (q/k/v biases)" { unit model gradcheck_qwen2; }
@test "op gradcheck: rmsnorm" { unit model op_rmsnorm; }
@test "op gradcheck: swiglu" { unit model op_swiglu; }
@test "op gradcheck: log-probabilities / cross-entropy, uniform logits give log 1/V" { unit model op_logprob; }
@test "op gradcheck: causal attention with packed documents and GQA" { unit model op_attention; }
@test "rope: position 0 is identity, norm preserved, transpose inverts, YaRN ramps" { unit model op_rope; }
@test "routing: a bias favouring expert e routes every token to e; gates unbiased" { unit model route_bias_forces_expert; }
@test "routing: group-limited top-k keeps the best group" { unit model route_group_limited; }
@test "op gradcheck: MoE dispatch (stable sort by expert) and combine" { unit model op_moe_dispatch_combine; }
@test "op: balancing bias moves under/overloaded experts by ±γ" { unit model op_moe_bias_update; }
@test "op gradcheck: MLA key/value assembly with the shared rotary key" { unit model op_mla_kv; }
@test "op gradcheck: column concat (MTP input); row gather/scatter; MTP shifts" { unit model op_concat_rows; }
@test "op gradcheck: logit distillation KL + CE; entropy of uniform logits is log V" { unit model op_distill; }
@test "op: sum of squares gradient, AdamW first step, f32 = f64, linear_forward_add" { unit model op_optimizer; }
@test "forward-only activations: same logits, one smaller allocation" { unit model acts_forward_only; }
@test "float model matches the double model" { unit model f32_matches_f64; }
@test "causality and document isolation under packing" { unit model causal_and_packed; }
@test "config: clear errors and JSON round trip" { unit model config_errors; }
@test "layout: Hugging Face DeepSeek-V3 tensor names and shapes" { unit model layout_names; }
@test "ops: the same bits with 1 and 2 threads; float within 1e-4 of double" {
    run "$DS_BIN/bench/ops_speed" --check --threads 2
    [ "$status" -eq 0 ] || { echo "$output"; false; }
}
