// fuzz_shard.c — token shards (lib/data/shard.c): the bytes as a shard file, opened as a dataset (tar
// index, manifest, member sizes, offsets, content hash), then read back document by document, and
// inspected in both output forms.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "fuzz_file.h"
#include "data/shard.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_file(data, size, ".tar");
    DsErr e;
    Dataset *d = dataset_open(path, &e);
    if (d) {
        uint64_t ndocs = dataset_ndocs(d), ntok = dataset_ntokens(d);
        uint32_t buf[64];
        // a few documents from each end, and reads that cross the end (which must fail cleanly)
        for (uint64_t i = 0; i < ndocs && i < 8; i++) {
            uint64_t a = dataset_doc_start(d, i), b = dataset_doc_start(d, i + 1);
            size_t n = (size_t)(b - a < 64 ? b - a : 64);
            dataset_read(d, a, n, buf, &e);
        }
        if (ntok) dataset_read(d, ntok - 1, 1, buf, &e);
        dataset_read(d, ntok, 1, buf, &e);
        (void)dataset_tokenizer_hash(d);
        dataset_close(d);
    }
    FILE *out = fopen("/dev/null", "w");
    if (out) {
        shard_inspect(path, out, 0, &e);
        shard_inspect(path, out, 1, &e);
        fclose(out);
    }
    return 0;
}
