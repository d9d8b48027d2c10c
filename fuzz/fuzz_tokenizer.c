// fuzz_tokenizer.c — tokenizer.json (lib/tokenizer.c): tok_from_json on the bytes; a tokenizer that
// loads must encode text (the bytes themselves and a fixed sample) and decode it back unchanged
// (docs/TOKENIZER.md: decode(encode(x)) == x for any bytes), and serialise again.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer.h"

static void round_trip(const Tokenizer *t, const char *text, size_t len, int allow_special) {
    TokIds ids = {0};
    tok_encode(t, text, len, allow_special, &ids);
    DsBuf back = {0};
    tok_decode(t, ids.ids, ids.n, &back);
    if (back.len != len || (len && memcmp(back.data, text, len) != 0)) abort();
    dsbuf_free(&back);
    tokids_free(&ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    DsErr e;
    Tokenizer *t = tok_from_json((const char *)data, size, "fuzz.json", &e);
    if (!t) return 0;
    static const char sample[] = "Hello, world! <|endoftext|> 12 345\n\t  caf\xc3\xa9 \xff\xfe\x00z";
    round_trip(t, sample, sizeof sample - 1, 0);
    round_trip(t, sample, sizeof sample - 1, 1);
    round_trip(t, (const char *)data, size < 4096 ? size : 4096, 1);
    size_t n;
    char *json = tok_to_json(t, &n);
    free(json);
    char hex[65];
    tok_hash(t, hex);
    tok_free(t);
    return 0;
}
