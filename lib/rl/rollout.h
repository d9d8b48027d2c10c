// rollout.h — problems → prompt ids → generation requests → completions → grades: the one path
// from a set of problems to graded samples that ds-eval -m, ds-distill sample and ds-grpo share,
// and the one definition of a sample's random stream that ds-infer generate uses too.
#ifndef DS_ROLLOUT_H
#define DS_ROLLOUT_H

#include "checkpoint/checkpoint.h"
#include "infer/generate.h"
#include "eval/grade.h"
#include "eval/task.h"
#include "text/chat_template.h"
#include "text/tokenizer.h"

// A sample's randomness depends only on the seed, its id and its index: sample `index` of the
// record or problem `id` draws from rng_derive(seed, rollout_stream(id), index), whatever it is
// batched with, however the input is split, and in every tool.
uint64_t rollout_stream(const char *id); // the first 8 bytes of sha256(id), big-endian
void rollout_request(GenRequest *req, const uint32_t *prompt, int prompt_len, const char *id, int index,
                     void *user);

// The seed of the rollouts of GRPO step `step`: a pure function of (seed, step), so a step's
// samples are rollout samples like any other under their own seed.
uint64_t rollout_step_seed(uint64_t seed, long step);

// How a problem's user turn becomes prompt text: a named template (plain, r1), or, when chat is
// set, the model's own chat template (docs/CHAT_TEMPLATE.md), which renders rollout_messages()
// with the generation prompt exactly as ds-infer generate --template model renders a record.
typedef struct RolloutTemplate {
    PromptTemplate named;     // used when chat is NULL
    const ChatTemplate *chat; // --template model: the model's tokenizer_config.json template
} RolloutTemplate;

// The conversation a problem is under a chat template (a new reference): a system message when the
// record has a string "system", then the task's user turn as one user message. NULL and e filled
// when the problem has no text to ask or "system" is not a string.
json_t *rollout_messages(const Problem *p, DsErr *e);

// A problem's prompt text under the template (malloc'd). *user (optional) gets the user turn
// before the template (malloc'd). DS_ERR names the problem when it has no text to ask or the chat
// template fails to render it.
char *rollout_prompt_text(const Problem *p, RolloutTemplate t, char **user, DsErr *e);

// A problem's prompt ids: rollout_prompt_text encoded with special tokens recognised (as ds-infer
// generate and ds-sft encode prompts).
int rollout_prompt(const Tokenizer *tok, const Problem *p, RolloutTemplate t, TokIds *ids, char **user,
                   DsErr *e);

// The model's chat template for --template model: ck's tokenizer_config.json. DS_ERR names the
// model when it has none, or the file when it has no chat_template or the template does not parse.
int rollout_template_load(ChatTemplate *ct, const Checkpoint *ck, DsErr *e);

// The stop tokens under the template, as ds-infer generate chooses them without --eos: the chat
// template's eos_token when the tokenizer has it, else the model's own ids (ck->eos). Returns the
// count written to eos (which holds CKPT_MAX_EOS).
int rollout_eos(const Tokenizer *tok, RolloutTemplate t, const Checkpoint *ck, uint32_t *eos);

// One problem to sample: samples first .. first + n - 1 of it (n is rollout_run's).
typedef struct RolloutItem {
    const Problem *problem;  // its id names the stream; completions are graded against it
    const uint32_t *prompt;
    int prompt_len;
    int first;
} RolloutItem;

typedef struct RolloutSample {
    int item, index;          // the item, and the sample's index (first + k)
    const GenResult *gen;     // valid during the callback only
    GradeResult grade;        // grade() of the completion (when rollout_run has GradeOpts)
    double format, lang;      // grade_format, grade_lang
} RolloutSample;

typedef int (*RolloutFn)(void *ctx, const RolloutSample *s, DsErr *e);

// Generates n samples of every item (requested item by item, sample by sample) and hands each to
// done as it finishes, graded when go is not NULL (lang in go->lang_script). The engine is
// refreshed first, so the rollout always samples the model's current parameters.
int rollout_run(Engine *en, const GenConfig *c, const RolloutItem *items, int n_items, int n,
                const GradeOpts *go, RolloutFn done, void *ctx, GenStats *st, DsErr *e);

#endif
