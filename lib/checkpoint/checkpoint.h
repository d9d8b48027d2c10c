// checkpoint.h — a model on disk. A checkpoint is one tar holding config.json, model.safetensors
// (Hugging Face DeepSeek-V3 / llama / qwen2 tensor names, F32), tokenizer.json, and for training
// runs optimizer.safetensors and state.json (step, data cursor, RNG seed, the options and input
// hashes that made it); an imported model also keeps its generation_config.json and
// tokenizer_config.json. A Hugging Face folder (config.json, model.safetensors or shards listed by
// model.safetensors.index.json, tokenizer files) is the exchange form (export/import) and can be
// opened directly. Files are memory-mapped: weights are read from the map, never copied whole.
#ifndef DS_CHECKPOINT_H
#define DS_CHECKPOINT_H

#include <jansson.h>

#include "train/adamw.h"
#include "nn/model.h"
#include "checkpoint/safetensors.h"
#include "data/tarball.h"

enum { CKPT_MAX_EOS = 16 };

typedef struct CkptShard {
    char *file;            // "model.safetensors" or "model-00001-of-00002.safetensors"
    Safetensors st;        // parsed in place over the mapped bytes
} CkptShard;

typedef struct Checkpoint {
    char *path;
    ModelConfig cfg;
    TarArchive files;       // every member; a folder's files are gathered into the same form
    char *owned;            // owned[i]: files.m[i].data was allocated here (else it is in a map)
    CkptShard *shards;      // the weights: one file, or the shards of index.json
    int nshards;
    json_t *state;          // state.json, NULL when absent
    uint32_t eos[CKPT_MAX_EOS]; // end-of-sequence ids from the model's files (see ckpt_open)
    int n_eos;
    int bos;                // beginning-of-sequence id, -1 when the model has none
    int fp8_block[2];       // FP8 weight block (rows, cols): quantization_config.weight_block_size
    char **warnings;        // config.json keys ds does not know and that change nothing, one line each
    int nwarnings;          // (ckpt_open collects them; tools print them)
    const uint8_t **maps;   // mapped files, released by ckpt_close
    size_t *map_lens;
    int nmaps;
} Checkpoint;

// Opens a checkpoint tar or a folder; validates config.json, the safetensors headers (bounds,
// dtypes, and every tensor's name and shape against the config's layout) and a shard index (every
// listed file exists, each tensor in exactly one shard, none missing) before loading anything.
// EOS/BOS ids come from generation_config.json, then config.json (eos_token_id: an id or a list,
// bos_token_id), then tokenizer_config.json (eos_token/bos_token text, looked up in
// tokenizer.json), and EOS falls back to the tokenizer's <|endoftext|>. Unknown config.json keys
// that change nothing are collected in ck->warnings (keys that would change the computation are
// refused, see config.h).
int ckpt_open(Checkpoint *ck, const char *path, DsErr *e);
void ckpt_close(Checkpoint *ck);
// Converts the weights into m (built with model_init_f32 from ck->cfg): F32/BF16/F16 as stored,
// FP8 dequantised with its weight_scale_inv blocks. NaN or infinite weights are refused, naming
// the tensor; a stored lm_head.weight of a tied model must equal the embedding.
int ckpt_load_weights(const Checkpoint *ck, Model_f32 *m, DsErr *e);
// A stored tensor and the file it lies in, or NULL. Its bytes are in->data + t->begin, in place in
// the map: F32 tensors can be used as they are, and FP8 weights come with a NAME_scale_inv tensor
// (blocks of ck->fp8_block), which a path computing in FP8 can keep instead of dequantising.
const StTensor *ckpt_tensor(const Checkpoint *ck, const char *name, const Safetensors **in);
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
// The small files a model trained from ck carries into its own checkpoints, as save_pretrained
// keeps them: generation_config.json (with the EOS/BOS ids ds resolved), tokenizer_config.json,
// chat_template.jinja and special_tokens_map.json, each only when ck has it. With derive set, a
// generation_config.json is also written for a ck that has none but knows EOS/BOS ids (import of
// a folder whose ids live in config.json). The bytes are copies: ck may be closed.
typedef struct CkptCarry {
    TarMember m[4]; // names are static strings, data owned here
    int n;
} CkptCarry;
void ckpt_carry(const Checkpoint *ck, int derive, CkptCarry *c);
void ckpt_carry_free(CkptCarry *c);
typedef struct CkptExport {
    StDtype dtype;          // ST_BF16 (default), ST_F32 or ST_F16
    uint64_t max_shard;     // bytes of tensor data per shard file (CKPT_DEFAULT_SHARD)
} CkptExport;
#define CKPT_DEFAULT_SHARD 5000000000ull // 5 GB, as Hugging Face's save_pretrained

// Writes a Hugging Face folder: config.json (with torch_dtype and bos/eos ids),
// generation_config.json, model.safetensors or model-0000N-of-0000M.safetensors shards with
// model.safetensors.index.json, and the tokenizer files (tokenizer.json, tokenizer_config.json
// with bos/eos tokens and any chat template, chat_template.jinja when the model has one). DeepSeek-V3
// MTP layers get their own copies of embed_tokens and shared_head.head, as released checkpoints
// carry. Written into a temp folder renamed to dir at the end, so a failed export leaves nothing
// that looks valid; dir must not exist or be an empty folder.
int ckpt_export_dir(const Checkpoint *ck, const char *dir, const CkptExport *o, DsErr *e);
// Opens a folder (or tar), checks that its tokenizer fits vocab_size, and writes it as a ds
// checkpoint tar with the EOS/BOS ids found and the tokenizer_config/generation_config/chat
// template files kept.
int ckpt_import(const char *src, const char *out, DsErr *e);

#endif
