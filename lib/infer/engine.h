// engine.h — the inference engine: KV caches per sequence slot and a forward pass over "rows", each
// row appending one token of one slot. Prefill chunks and decode steps of many sequences run in one
// forward (continuous batching). DeepSeek-V3 caches the MLA latent (normalised c_KV + rotated k_pe
// per token) and attends in the absorbed form by default, or caches expanded per-head keys and values
// (naive). Row results never depend on the other rows of the batch (rowgemm), so a sequence's
// tokens do not depend on what it is batched with.
#ifndef DS_ENGINE_H
#define DS_ENGINE_H

#include "nn/model.h"

typedef struct EngineOpts {
    int slots;         // sequences held at once
    int max_len;       // positions per sequence (prompt + completion)
    int max_rows;      // rows per forward (prefill chunks + decode rows)
    int naive_attn;    // expanded K/V cache instead of the MLA latent cache
} EngineOpts;

typedef struct Engine Engine;

// The model must outlive the engine. DS_ERR when the options do not fit the model.
Engine *engine_new(const Model_f32 *m, const EngineOpts *o, DsErr *e);
void engine_free(Engine *en);
// Cache bytes per token (all layers, main model only).
size_t engine_cache_bytes_per_token(const Engine *en);
int engine_vocab(const Engine *en);
int engine_slots(const Engine *en);
int engine_max_len(const Engine *en);
int engine_max_rows(const Engine *en);
int engine_has_mtp(const Engine *en);

// Runs R rows: row i writes token tok[i] at position pos[i] of slot[i] into the caches and gets
// logits[i*V .. (i+1)*V). Each slot's rows must continue its cached positions in order. The final
// hidden state of each row is kept for engine_mtp_forward.
void engine_forward(Engine *en, int R, const int *slot, const int *tok, const int *pos, float *logits);
// MTP module 1 for R rows: row i combines the hidden state of row src[i] of the last
// engine_forward (slot slot[i], position pos[i]) with the embedding of next_tok[i] (the token at
// pos+1) and gets the logits for the token at pos+2. Writes the MTP module's cache at pos.
void engine_mtp_forward(Engine *en, int R, const int *src, const int *slot, const int *pos,
                        const int *next_tok, float *logits);
// Recomputes what the engine derived from the weights (after an optimizer step changed them).
void engine_refresh(Engine *en);
// Forgets cached positions >= len of a slot (len 0 frees it for a new sequence).
void engine_truncate(Engine *en, int slot, int len);
// Makes positions [0, n) of slot dst a copy of slot src's (every block, MTP included): the cache a
// prefill of the same tokens would have written, bit for bit, since a row's result depends only
// on its own slot. src must hold at least n positions.
void engine_copy_prefix(Engine *en, int dst, int src, int n);

#endif
