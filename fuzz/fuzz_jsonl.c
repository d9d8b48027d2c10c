// fuzz_jsonl.c — JSON-lines records (lib/core/jsonl.c): every line read as a record, with the typed
// getters the tools use, in both the failing and the skip-bad mode.
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/jsonl.h"

static void read_all(const uint8_t *data, size_t size, int skip_bad) {
    JsonlReader r;
    memset(&r, 0, sizeof r);
    // jsonl_open takes a path; the reader's stream is set to the bytes in memory instead.
    r.f = fmemopen((void *)data, size, "rb");
    if (!r.f) return;
    r.path = ds_strdup("fuzz.jsonl");
    r.skip_bad = skip_bad;
    for (;;) {
        json_t *obj;
        DsErr e = {{0}};
        int rc = jsonl_next(&r, &obj, &e);
        if (rc <= 0) break;
        const char *s;
        long long n;
        jsonl_get_string(&r, obj, "prompt", &s, &e);
        jsonl_get_string(&r, obj, "id", &s, &e);
        jsonl_get_int(&r, obj, "target", &n, &e);
        json_decref(obj);
    }
    jsonl_close(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0; // fmemopen refuses an empty buffer
    read_all(data, size, 0);
    read_all(data, size, 1);
    return 0;
}
