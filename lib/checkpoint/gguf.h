// gguf.h — a trained model as one GGUF file, llama.cpp's format, so that a ds model runs in
// llama.cpp and the programs built on it. llama and qwen2 students map to llama.cpp's "llama" and
// "qwen2" architectures; deepseek_v3 models to "deepseek2" (MLA with the absorbed k_b/v_b split,
// DeepSeekMoE with sigmoid gating, the selection bias and group-limited routing). MTP modules are
// training-only and left out. The tokenizer comes from the model's tokenizer.json (byte-level BPE,
// "gpt2" in GGUF terms); its pre-tokenizer must be one llama.cpp knows by name.
#ifndef DS_GGUF_H
#define DS_GGUF_H

#include "nn/model.h"

typedef enum { GGUF_F32 = 0, GGUF_F16 = 1, GGUF_BF16 = 30 } GgufType; // ggml type ids

// "f32", "f16", "bf16" -> type; DS_ERR when unknown.
int gguf_type_from_name(const char *name, GgufType *t);

typedef struct GgufExport {
    GgufType type;        // matrices; norms, biases and the router stay F32, as llama.cpp expects
    const char *name;     // general.name (may be NULL)
    int bos_id, eos_id;   // -1 when the model has none
} GgufExport;

// Writes m (with the tokenizer.json text tok) to path atomically. Refuses, naming the setting,
// what llama.cpp would compute differently (e.g. a rope scaling it does not read from GGUF, or a
// pre-tokenizer it has no name for).
int gguf_export(const Model_f32 *m, const char *tok_json, size_t tok_len, const GgufExport *opt,
                const char *path, DsErr *e);

#endif
