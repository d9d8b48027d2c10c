// scale — a model at datacenter scale, on paper, from ds's own counts (lib/checkpoint/layout.c): parameters,
// FLOPs per token (matrix products from the layout, attention cores from the config), what that
// means in GPU-hours at a given utilisation, the memory per device under data, pipeline and expert
// parallelism, and the all-to-all bytes of expert dispatch. docs/SCALE.md compares the output for
// DeepSeek-V3's config with the paper's figures.
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "tool.h"
#include "checkpoint/config.h"
#include "checkpoint/layout.h"

static const char *PROG = "scale";

int main(int argc, char **argv) {
    double seq = 4096, tokens = 14.8e12, peak = 1979e12, gpu_hours = 2.664e6;
    long gpus = 2048, ep = 64, pp = 16, nodes_per_token = 4;
    static const struct option opts[] = {
        {"seq", 1, 0, 's'}, {"tokens", 1, 0, 't'}, {"peak-flops", 1, 0, 'p'}, {"gpu-hours", 1, 0, 'g'},
        {"gpus", 1, 0, 'n'}, {"ep", 1, 0, 'e'}, {"pp", 1, 0, 'P'}, {"nodes-per-token", 1, 0, 'm'},
        {"help", 0, 0, 'h'}, {"version", 0, 0, 'V'}, {0, 0, 0, 0}};
    for (int c; (c = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
        switch (c) {
        case 's': seq = cli_double(PROG, "--seq", optarg, 1, 1e9); break;
        case 't': tokens = cli_double(PROG, "--tokens", optarg, 1, 1e18); break;
        case 'p': peak = cli_double(PROG, "--peak-flops", optarg, 1, 1e18); break;
        case 'g': gpu_hours = cli_double(PROG, "--gpu-hours", optarg, 1, 1e12); break;
        case 'n': gpus = cli_long(PROG, "--gpus", optarg, 1, 1 << 24); break;
        case 'e': ep = cli_long(PROG, "--ep", optarg, 1, 1 << 20); break;
        case 'P': pp = cli_long(PROG, "--pp", optarg, 1, 1 << 20); break;
        case 'm': nodes_per_token = cli_long(PROG, "--nodes-per-token", optarg, 1, 1 << 20); break;
        case 'h':
            printf("Usage: scale CONFIG.json [--seq T] [--tokens N] [--peak-flops F] [--gpu-hours H]\n"
                   "             [--gpus N] [--ep E] [--pp P] [--nodes-per-token M]\n"
                   "Defaults are DeepSeek-V3's pretraining: 14.8T tokens of 4096, H800 FP8 dense peak\n"
                   "1979 TFLOP/s, 2.664M GPU-hours, 2048 GPUs, 64-way EP, 16-way PP, 4 nodes per token.\n");
            return EXIT_OK;
        case 'V': cli_print_version(PROG); return EXIT_OK;
        default: cli_usage_error(PROG, "bad option");
        }
    }
    if (optind + 1 != argc) cli_usage_error(PROG, "expected CONFIG.json");
    ModelConfig c;
    DsErr e;
    if (config_load(&c, argv[optind], &e)) cli_fail_err(PROG, &e);
    ModelLayout L;
    layout_build(&L, &c);
    double total = (double)L.total, active = (double)layout_active_params(&L, 0);
    // Routed experts are what expert parallelism shards; everything else is replicated per stage.
    double experts = 0;
    for (int l = 0; l < L.nlayers + L.nmtp; l++)
        if (L.layers[l].moe) experts += (double)L.layers[l].expert_stride * c.n_routed_experts;
    double matmul = layout_matmul_flops_per_token(&L, 1);
    // Causal attention cores: each token meets (seq+1)/2 keys on average; QKᵀ over dqk, PV over dv.
    int H = c.num_attention_heads;
    double att = 2.0 * (L.nlayers + L.nmtp) * H * (double)(config_qk_head_dim(&c) + config_v_head_dim(&c)) * (seq + 1) / 2;
    double train = 3 * (matmul + att); // forward, and backward at twice the forward
    double mfu = train * tokens / (gpu_hours * 3600 * peak);
    long dp = gpus / pp; // expert parallelism runs inside the data-parallel groups, as in V3
    double per_stage = (total - experts) / pp, per_stage_experts = experts / pp / ep;
    double w = per_stage + per_stage_experts;
    // bf16 weights and fp32 gradients on every device; fp32 master weights and bf16 AdamW moments
    // (V3 §3.3.1) sharded over the data-parallel group (ZeRO-1).
    double bytes = w * (2 + 4) + w * (4 + 2 + 2) / (double)dp;
    // Dispatch in FP8 (1 byte/element) and combine in BF16 (2 bytes), to at most M nodes per token
    // per MoE layer; the backward pass moves the same again.
    int moe_layers = 0;
    for (int l = 0; l < L.nlayers; l++) moe_layers += L.layers[l].moe;
    double a2a = 2.0 * moe_layers * nodes_per_token * c.hidden_size * (1 + 2);
    printf("{\"params_total\": %.6g, \"params_active\": %.6g, \"params_routed_experts\": %.6g,\n"
           " \"matmul_flops_per_token\": %.6g, \"attention_flops_per_token\": %.6g, \"train_flops_per_token\": %.6g,\n"
           " \"train_flops\": %.6g, \"implied_mfu\": %.4f, \"gpu_hours_per_trillion_tokens_at_that_mfu\": %.6g,\n"
           " \"params_per_device\": %.6g, \"bytes_per_device_weights_grads_optimizer\": %.6g,\n"
           " \"dp\": %ld, \"ep\": %ld, \"pp\": %ld, \"moe_layers\": %d, \"a2a_bytes_per_token_across_nodes\": %.6g}\n",
           total, active, experts, matmul, att, train, train * tokens, mfu,
           train * 1e12 / (mfu * peak) / 3600, w, bytes, dp, ep, pp, moe_layers, a2a);
    layout_free(&L);
    return EXIT_OK;
}
