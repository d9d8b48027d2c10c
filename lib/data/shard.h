// shard.h — token shards (a POSIX tar holding manifest.json, tokens.bin and offsets.bin) and datasets
// (an ordered set of shards read by random access through mmap). Byte layouts: docs/FORMATS.md.
#ifndef DS_SHARD_H
#define DS_SHARD_H

#include "core/common.h"

enum { SHARD_FORMAT_VERSION = 1 };

typedef struct ShardWriterOpts {
    const char *prefix;         // writes PREFIX-000000.tar, PREFIX-000001.tar, ...
    int dtype_bits;             // 16 or 32 (u16 / u32 tokens)
    uint64_t tokens_per_shard;  // start a new shard once this many tokens are written; 0 = one shard.
                                // Documents are never split (a longer one gets a shard of its own).
    const char *tokenizer_hash; // hex sha256 of the tokenizer.json used, or "" / NULL
    const char *source;         // free text recorded in the manifest (inputs, command)
} ShardWriterOpts;

// The current shard is held in memory (tokens_per_shard bounds it) and written, through a temp file
// and rename, when it is full or at close. Close always leaves at least PREFIX-000000.tar, and
// writes the dataset record PREFIX.dataset.json last: readers refuse shards it does not list, so
// an interrupted run is never read as a dataset. A prefix names one dataset: open first removes
// an earlier run's record, its PREFIX-NNNNNN.tar shards and dead writers' temp files.
typedef struct ShardWriter ShardWriter;
ShardWriter *shard_writer_open(const ShardWriterOpts *o, DsErr *e);
// Adds one document; DS_ERR if an id does not fit dtype_bits (nothing is added then) or if writing
// a full shard failed. After DS_ERR the caller may go on or call shard_writer_abort.
int shard_writer_add(ShardWriter *w, const uint32_t *ids, size_t n, DsErr *e);
// Finishes the last shard and writes the record; frees w. On failure every shard of this writer is
// deleted.
int shard_writer_close(ShardWriter *w, DsErr *e);
void shard_writer_abort(ShardWriter *w);          // deletes every shard this writer created; frees w
int shard_writer_nshards(const ShardWriter *w);   // shards written so far

typedef struct Dataset Dataset;
// spec: one shard file, a directory (its *.tar files, sorted by name), or a glob pattern
// ("data/train-*.tar", matches sorted by name). Every shard is mapped and fully verified (manifest
// fields, member sizes against the counts, offsets, content hash, max_token_id) and must be listed
// with its content hash in the record of the run that wrote it (PREFIX.dataset.json beside
// PREFIX-NNNNNN.tar); a folder spec must also hold every shard its records list. A bad shard gives
// DS_ERR naming it and what is wrong. Token data stays in the page cache, not in our heap.
Dataset *dataset_open(const char *spec, DsErr *e);
void dataset_close(Dataset *d); // accepts NULL
uint64_t dataset_ntokens(const Dataset *d);
uint64_t dataset_ndocs(const Dataset *d);
int dataset_nshards(const Dataset *d);
const char *dataset_tokenizer_hash(const Dataset *d); // "" if shards disagree or record none
int64_t dataset_max_token_id(const Dataset *d);       // largest id in the data; -1 if no tokens
// DS_OK when every id is below vocab_size (a model's embedding rows); otherwise DS_ERR naming the
// shard, the token position and the id.
int dataset_check_vocab(const Dataset *d, int64_t vocab_size, DsErr *e);
// Random access: tokens [pos, pos+n) of the concatenation of all shards in order, crossing shard
// boundaries; DS_ERR if out of range.
int dataset_read(const Dataset *d, uint64_t pos, size_t n, uint32_t *out, DsErr *e);
// Start position (in dataset token positions) of document i, i in [0, ndocs]; doc_start(ndocs) =
// ntokens. Document i is tokens [doc_start(i), doc_start(i+1)), read with dataset_read.
uint64_t dataset_doc_start(const Dataset *d, uint64_t i);

// Prints a shard's manifest and the result of verifying it (human-readable, or one JSON object on
// one line when json != 0); DS_ERR with a clear message when the shard is bad.
int shard_inspect(const char *path, FILE *out, int json, DsErr *e);

#endif
