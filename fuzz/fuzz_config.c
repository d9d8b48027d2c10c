// fuzz_config.c — config.json (lib/checkpoint/config.c): parse and validate; a config that is accepted must
// serialise and parse back to an equal config, and its derived sizes must be computable.
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ModelConfig c, back;
    DsErr e;
    if (config_from_string(&c, (const char *)data, size, "fuzz.json", &e)) return 0;
    (void)config_qk_head_dim(&c);
    (void)config_v_head_dim(&c);
    (void)config_kv_heads(&c);
    (void)config_softmax_scale(&c);
    for (int l = 0; l < c.num_hidden_layers + c.num_nextn_predict_layers && l < 64; l++)
        (void)config_is_moe_layer(&c, l);
    json_t *j = config_to_json(&c);
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (!s) abort();
    if (config_from_string(&back, s, strlen(s), "round-trip", &e) || !config_equal(&c, &back)) abort();
    free(s);
    return 0;
}
