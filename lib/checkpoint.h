// checkpoint.h — a model on disk. A checkpoint is one tar holding config.json, model.safetensors
// (Hugging Face DeepSeek-V3 / llama / qwen2 tensor names, F32), tokenizer.json, and for training
// runs optimizer.safetensors and state.json (step, data cursor, RNG seed, the options and input
// hashes that made it). A plain folder with config.json + model.safetensors (+ tokenizer.json,
// tokenizer_config.json) is the exchange form (export/import).
#ifndef DS_CHECKPOINT_H
#define DS_CHECKPOINT_H

#include <jansson.h>

#include "adamw.h"
#include "nn/model.h"
#include "safetensors.h"
#include "tarball.h"

typedef struct Checkpoint {
    char *path;
    ModelConfig cfg;
    TarArchive files;       // every member (a folder is read into the same form)
    Safetensors weights;
    json_t *state;          // state.json, NULL when absent
} Checkpoint;

// Opens a checkpoint tar or a folder; validates config.json and the safetensors header (bounds,
// dtypes, and every tensor's name and shape against the config's layout) before loading anything.
int ckpt_open(Checkpoint *ck, const char *path, DsErr *e);
void ckpt_close(Checkpoint *ck);
// Copies the weights into m (built with model_init_f32 from ck->cfg).
int ckpt_load_weights(const Checkpoint *ck, Model_f32 *m, DsErr *e);
// Restores optimizer moments and step count; DS_ERR when the checkpoint has none or they do not fit.
int ckpt_load_optimizer(const Checkpoint *ck, AdamW *o, DsErr *e);
// The tokenizer.json bytes, or NULL with *len = 0 when the checkpoint has none.
const char *ckpt_tokenizer_json(const Checkpoint *ck, size_t *len);

// Serialises the weights as model.safetensors (metadata: format, ds version).
void ckpt_weights_safetensors(const Model_f32 *m, DsBuf *out);
// Writes a checkpoint tar atomically. opt and state may be NULL (inference-only checkpoint);
// tokenizer_json may be NULL; extra members (e.g. a reference model's weights) are appended.
int ckpt_save(const char *path, const Model_f32 *m, const AdamW *opt, const char *tokenizer_json,
              size_t tokenizer_len, const json_t *state, const TarMember *extra, int nextra, DsErr *e);
// A member of the checkpoint by name, or NULL.
const TarMember *ckpt_member(const Checkpoint *ck, const char *name);
// Writes config.json, model.safetensors and (if present) tokenizer.json into dir (created if
// needed), each atomically.
int ckpt_export_dir(const Checkpoint *ck, const char *dir, DsErr *e);

#endif
