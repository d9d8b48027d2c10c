// fuzz_checkpoint.c — checkpoint tars (lib/checkpoint/checkpoint.c, lib/data/tarball.c): the bytes as a checkpoint
// file, opened (tar members, config.json, model.safetensors against the config's layout,
// state.json), then, as the tools do, the weights, the optimizer moments and the tokenizer loaded.
#include <stdint.h>
#include <stdlib.h>

#include "checkpoint/checkpoint.h"
#include "fuzz_file.h"
#include "text/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_file(data, size, ".tar");
    Checkpoint ck;
    DsErr e;
    if (ckpt_open(&ck, path, &e)) return 0;
    // The weights were checked against the config, so the model is no larger than the input.
    Model_f32 m;
    model_init_f32(&m, &ck.cfg, 0, 16);
    ckpt_load_weights(&ck, &m, &e);
    AdamW o;
    adamw_init(&o, m.L.total, 0.9, 0.95, 1e-8, 0.1);
    ckpt_load_optimizer(&ck, &o, &e);
    adamw_free(&o);
    model_free_f32(&m);
    size_t n;
    const char *tj = ckpt_tokenizer_json(&ck, &n);
    Tokenizer *t = tj ? tok_from_json(tj, n, path, &e) : NULL;
    tok_free(t);
    ckpt_close(&ck);
    return 0;
}
