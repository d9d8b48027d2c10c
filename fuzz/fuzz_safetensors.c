// fuzz_safetensors.c — safetensors images (lib/checkpoint/safetensors.c): header and data validated by
// st_parse, then every small tensor converted to float and looked up by name.
#include <stdint.h>
#include <stdlib.h>

#include "checkpoint/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    Safetensors st;
    DsErr e;
    if (st_parse(&st, data, size, "fuzz.safetensors", &e)) return 0;
    for (int i = 0; i < st.n; i++) {
        const StTensor *t = &st.t[i];
        size_t n = st_numel(t);
        if (st_find(&st, t->name) == NULL) abort(); // every parsed tensor must be found by its name
        if (n > (1u << 16)) continue;
        float *out = malloc(n ? n * sizeof *out : 1);
        st_read_f32(&st, t, out, n, &e);
        free(out);
    }
    st_free(&st);
    return 0;
}
