// bpe_train.h — trains a byte-level BPE tokenizer: count pre-tokens, then repeatedly merge the most
// frequent adjacent pair, updating pair counts only in the words that contain the merged pair.
#ifndef DS_BPE_TRAIN_H
#define DS_BPE_TRAIN_H

#include "text/pretokenize.h"
#include "text/tokenizer.h"

typedef struct BpeTrainOpts {
    int vocab_size;              // target, counting special tokens and the 256 byte tokens
    const char *const *specials; // special tokens: ids 0.., split the text, never merged
    int n_specials;
    PretokKind pretok; // PRETOK_GPT2, PRETOK_GPT4 or PRETOK_DIGITS
    int raw_byte_ids;  // byte b gets id n_specials + b (minbpe's layout) instead of the
                       // order of the byte-level alphabet (Hugging Face's layout)
} BpeTrainOpts;

typedef struct BpeTrainer BpeTrainer;
BpeTrainer *bpe_trainer_new(const BpeTrainOpts *o, DsErr *e);
// One document: split on the special tokens, pre-tokenized, pre-tokens counted. Any bytes.
void bpe_trainer_add(BpeTrainer *b, const char *text, size_t len);
// Runs the merges and returns the tokenizer. Ties between pairs of equal count go to the
// lexicographically greater pair of byte strings (left token first). Frees b.
Tokenizer *bpe_trainer_finish(BpeTrainer *b, DsErr *e);
void bpe_trainer_free(BpeTrainer *b); // accepts NULL; for a trainer that is not finished

// Convenience: one text, e.g. for tests.
Tokenizer *bpe_train_text(const BpeTrainOpts *o, const char *text, size_t len, DsErr *e);

#endif
