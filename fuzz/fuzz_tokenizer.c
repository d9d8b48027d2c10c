// fuzz_tokenizer.c — tokenizer.json (lib/text/tokenizer.c): tok_from_json on the bytes; a tokenizer that
// loads must encode text (the bytes themselves and a fixed sample) and serialise again. When it
// has no normalizer and a ByteLevel decoder (what ds trains) it must also decode the text back
// unchanged (docs/TOKENIZER.md: decode(encode(x)) == x for any bytes); other decoders and
// normalizers change text as Hugging Face's do, so there only the absence of errors is checked.
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "text/tokenizer.h"

static void round_trip(const Tokenizer *t, const char *text, size_t len, int allow_special, int exact) {
    TokIds ids = {0};
    tok_encode(t, text, len, allow_special, &ids);
    DsBuf back = {0};
    tok_decode(t, ids.ids, ids.n, &back);
    if (exact && (back.len != len || (len && memcmp(back.data, text, len) != 0))) abort();
    dsbuf_free(&back);
    tokids_free(&ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    DsErr e;
    Tokenizer *t = tok_from_json((const char *)data, size, "fuzz.json", &e);
    if (!t) return 0;
    json_t *j = json_loadb((const char *)data, size, 0, NULL);
    const json_t *dec = json_object_get(j, "decoder");
    const char *dt = json_string_value(json_object_get(dec, "type"));
    int exact = json_is_null(json_object_get(j, "normalizer")) && dt && !strcmp(dt, "ByteLevel");
    json_decref(j);
    static const char sample[] = "Hello, world! <|endoftext|> 12 345\n\t  caf\xc3\xa9 \xff\xfe\x00z";
    round_trip(t, sample, sizeof sample - 1, 0, exact);
    round_trip(t, sample, sizeof sample - 1, 1, exact);
    round_trip(t, (const char *)data, size < 4096 ? size : 4096, 1, exact);
    size_t n;
    char *json = tok_to_json(t, &n);
    free(json);
    char hex[65];
    tok_hash(t, hex);
    tok_free(t);
    return 0;
}
