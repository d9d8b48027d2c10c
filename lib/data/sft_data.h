// sft_data.h — supervised fine-tuning data: records ({"messages"} or {"prompt","completion"}) become
// token sequences (prompt, answer, EOS) whose loss covers only the answer and the EOS — under the
// model's own chat template, every assistant turn of a conversation — packed
// several to a training row with positions restarting at each example, in a per-epoch order drawn
// from the seed. The batch source is a pure function of (step, micro), so resume is exact.
#ifndef DS_SFT_DATA_H
#define DS_SFT_DATA_H

#include <stdint.h>

#include "text/chat.h"
#include "text/chat_template.h"
#include "core/common.h"
#include "text/tokenizer.h"

typedef struct SftExample {
    uint32_t *ids; // prompt tokens, answer tokens, EOS
    int n;         // total tokens
    int prompt_len; // tokens before the (first) answer (never trained on)
    uint8_t *mask;  // NULL: tokens [prompt_len, n) are trained; else mask[i] = 1 for each trained token
} SftExample;

typedef struct SftSet {
    SftExample *ex;
    int n, cap;
    long skipped;   // records longer than seq_len, left out
    long answer_tokens; // trained targets over the kept examples (answer + EOS)
} SftSet;

// Tokenizes one record under template t: prompt = chat_render's text, answer = the final assistant
// message or "completion" (a record without one is an error naming `where`), then eos.
int sft_example_from_record(SftExample *x, const json_t *rec, const Tokenizer *tok, PromptTemplate t,
                            uint32_t eos, const char *where, DsErr *e);
// Tokenizes one record under the model's chat template ct: the whole conversation as the template
// renders it (specials recognised everywhere, as transformers tokenizes a rendering), with every
// assistant turn — its text through the eos_token that ends it — trained, and the text after the
// last turn left out (chat_template_assistant_spans). {"prompt","completion"} is the conversation
// user: prompt, assistant: completion. A record without an assistant turn is an error naming where.
int sft_example_from_chat(SftExample *x, const json_t *rec, const Tokenizer *tok, const ChatTemplate *ct,
                          const char *where, DsErr *e);
// Reads every record of a JSONL file; examples longer than seq_len are skipped and counted.
// DS_ERR on a malformed record (FILE:LINE) or when no example fits.
int sft_set_load(SftSet *s, const char *path, const Tokenizer *tok, PromptTemplate t, uint32_t eos,
                 int seq_len, DsErr *e);
// The same under the model's chat template (sft_example_from_chat).
int sft_set_load_chat(SftSet *s, const char *path, const Tokenizer *tok, const ChatTemplate *ct, int seq_len,
                      DsErr *e);
// Appends a copy of ids (for tests and callers that tokenize themselves).
void sft_set_add(SftSet *s, const uint32_t *ids, int n, int prompt_len);
void sft_set_free(SftSet *s);

// Writes example x at offset `at` of a row: tokens x[0..n), positions 0..n-1, targets x[i+1] for
// i in [prompt_len-1, n-2] (the answer and the EOS; with a mask, where mask[i+1] is set), -1
// elsewhere (prompt, last token).
void sft_write_example(const SftExample *x, int *tokens, int *targets, int *pos);
// Fills a row of T slots with examples idx[0..k) back to back, then padding (token pad,
// targets -1, positions counting from 0 as a document of its own).
void sft_pack_row(const SftSet *s, const int *idx, int k, int T, int pad, int *tokens, int *targets,
                  int *pos);

// The packed rows of one epoch: examples in order[], rows[r] = first index into order of row r.
typedef struct SftEpoch {
    long epoch;     // -1 = none yet
    int *order;     // [n] example indices
    int *rows;      // [nrows + 1]
    int nrows;
} SftEpoch;

// A BatchFn source over the row stream epoch 0, 1, 2, ...: micro-batch (step, micro) is global rows
// [(step*accum + micro)*batch, +batch). shuffle = 0 keeps file order (validation: rows past the
// last are padding, so a validation pass covers each example once).
typedef struct SftSource {
    const SftSet *set;
    uint64_t seed;
    int batch, seq_len, accum, shuffle, pad;
    long *epoch_rows; // rows of epochs 0..n_epoch_rows-1, computed on demand
    long n_epoch_rows;
    SftEpoch cur;     // cache of the last epoch packed
} SftSource;

void sft_source_init(SftSource *src, const SftSet *set, uint64_t seed, int batch, int seq_len,
                     int accum, int shuffle, int pad);
void sft_source_free(SftSource *src);
// Packs epoch ep into out (greedy in order: the next example goes to the current row if it fits).
void sft_pack_epoch(const SftSource *src, long ep, SftEpoch *out);
long sft_source_epoch_rows(SftSource *src, long ep);
// Optimizer steps that cover `epochs` full epochs (the last batch may reach into the next epoch).
long sft_source_steps_for_epochs(SftSource *src, long epochs);
int sft_batch(void *ctx, long step, int micro, int *tokens, int *targets, int *pos, DsErr *e);

#endif
