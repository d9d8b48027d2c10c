// synth.h — deterministic synthetic data for the R1 experiments: Countdown and simple verifiable
// problems with a hash-defined train/test split, a pretraining corpus of arithmetic facts and
// Countdown search texts (optionally bilingual), and cold-start SFT traces. Everything follows from
// a seed through per-item Rng streams.
#ifndef DS_SYNTH_H
#define DS_SYNTH_H

#include <stdint.h>
#include <stdio.h>

#include "core/common.h"
#include "core/rng.h"

typedef enum { SYNTH_COUNTDOWN, SYNTH_ADD, SYNTH_LARGER } SynthTask;
typedef enum { SYNTH_TRAIN, SYNTH_TEST } SynthSplit;
// The reasoning words: English (Latin script), the Cyrillic-script vocabulary "xx" (docs/SYNTH.md),
// or documents that switch from one to the other mid-reasoning.
typedef enum { SYNTH_EN, SYNTH_XX, SYNTH_MIX } SynthLang;

int synth_task_from_name(const char *name, SynthTask *t);   // "countdown", "add", "larger"
int synth_split_from_name(const char *name, SynthSplit *s); // "train", "test"
int synth_lang_from_name(const char *name, SynthLang *l);   // "en", "xx", "mix"

enum {
    SYNTH_MAX_NUMS = 4,        // numbers in a generated Countdown problem
    SYNTH_TEST_PER_MILLE = 100 // share of the problem space in the test split
};

// ---- Problem identity and the split ----

// A problem's key: a hash of its canonical form (countdown: sorted numbers and target; add: the
// unordered pair; larger: the unordered pair), never 0. The split is a function of the key alone,
// so every generator call, whatever its seed or options, agrees on it.
uint64_t synth_countdown_key(const int64_t *nums, int n, int64_t target);
uint64_t synth_pair_key(SynthTask t, int64_t a, int64_t b);
SynthSplit synth_split_of(uint64_t key);

// A set of problem keys (open addressing).
typedef struct SynthKeySet {
    uint64_t *slot; // 0 = empty
    size_t n, cap;
} SynthKeySet;
void synth_keyset_add(SynthKeySet *s, uint64_t key);
int synth_keyset_has(const SynthKeySet *s, uint64_t key);
void synth_keyset_free(SynthKeySet *s);
// Adds the key of every record of a problems file: countdown {"target","nums"} records, or
// {"task":"math","prompt",...,"a","b"} records written by synth_problems for add/larger. Errors
// name the file and line.
int synth_keyset_load(SynthKeySet *s, SynthTask t, const char *path, DsErr *e);

// ---- Options ----

typedef struct SynthOpts {
    SynthTask task;
    long n;                   // records to write
    int n_nums;               // countdown numbers per problem (2..SYNTH_MAX_NUMS)
    int64_t min_num, max_num; // countdown numbers (add/larger: the operands)
    int64_t min_target, max_target;
    SynthSplit split;
    uint64_t seed;
    const SynthKeySet *exclude; // problems never written (may be NULL)
    int with_prompt;            // problems: also store the rendered user prompt
    SynthLang lang;
    double wrong_frac; // corpus (add/larger): share of worked answers that are wrong guesses
    double quit_frac;  // corpus (countdown): share of searches that quit early
    int quit_after;    // corpus (countdown): an early quit comes after 1..quit_after attempts
    double heuristic_frac; // corpus (countdown): share of the searches that do not quit early
                           // which try attempts by the closest-last-step heuristic
    double practice_frac; // corpus (countdown): share of searches written without the prompt
    int random_starts;    // corpus (countdown): careful searches take the starts in a random
                          // order, without "Start with" lines
    int practice_random;  // corpus (countdown): random_starts for practice searches (-1: same)
    double check_frac;    // corpus (countdown): share of documents that are check drills
    double facts_frac; // corpus: share of documents that are arithmetic facts
    int max_attempts;  // corpus: attempts before a search gives up; sft: longest trace kept
} SynthOpts;

void synth_opts_default(SynthOpts *o);
// Checks ranges (min <= max; sizes that keep the 64-bit arithmetic exact) and fractions.
int synth_opts_check(const SynthOpts *o, DsErr *e);

typedef struct SynthStats {
    long records;    // lines written
    long search;     // corpus: search texts
    long correct;    // corpus: search texts ending in a correct answer (sft: all)
    long wrong;      // corpus: search texts ending in a wrong answer
    long facts;      // corpus: arithmetic-fact documents
    long practice;   // corpus: of the search texts, those written without the prompt
    long checks;     // corpus: check drills
    long attempts;   // corpus/sft: attempts written in all search texts
    long candidates; // problems drawn (rejected ones included)
} SynthStats;

// ---- Countdown problems and texts ----

typedef struct SynthCountdown {
    int64_t nums[SYNTH_MAX_NUMS];
    int n;
    int64_t target;
} SynthCountdown;

// Draws candidate number c of the seed's stream (numbers and target uniform in their ranges).
void synth_countdown_candidate(const SynthOpts *o, uint64_t c, SynthCountdown *p);

// The user prompt of a problem, exactly as evaluation and RL render it (task_prompt), malloc'd.
char *synth_countdown_prompt(const SynthCountdown *p);
// The prompt ("What is 37 + 58?" / "Reply with the larger of ...") and answer of an add/larger
// problem (both malloc'd).
void synth_pair_prompt(SynthTask t, int64_t a, int64_t b, char **prompt, char **answer);

// One attempt of the search: a sequence of n-1 steps "a op b = r" that combines all numbers.
typedef struct SynthStep {
    int64_t a, b, r;
    char op;
} SynthStep;
typedef struct SynthAttempt {
    SynthStep step[SYNTH_MAX_NUMS - 1];
    int n_steps;
    int64_t value;
    char expr[96]; // the equation, e.g. "(96 - 74) + 7"
} SynthAttempt;

// Every way to combine the numbers with + - * / keeping positive integers (larger operand first,
// exact division only), in a fixed systematic order. Returns the count; *out is malloc'd.
int synth_attempts(const SynthCountdown *p, SynthAttempt **out);

// 1 when some attempt of synth_attempts reaches the target (without building their texts).
int synth_reachable(const SynthCountdown *p);

// The assistant's turn of a pretraining search text (" <think> ... </think> <answer> EQ </answer>",
// malloc'd): attempts drawn from r, stopping at the first attempt that reaches the target, or
// giving up with the closest equation after o->max_attempts attempts. With probability
// o->quit_frac the search guesses (random order) and quits after 1..o->quit_after attempts;
// otherwise it is careful with probability o->heuristic_frac: every way to start in the
// systematic order, each finished by the last step closest to the target, with a "Start with A
// and B." line whenever the first pair changes (as in the cold-start traces); with
// o->random_starts the starts come in a random order, without those lines.
// *correct says which; *n_attempts counts the attempts.
// NULL when no attempt reaches the target (such problems are not used).
char *synth_search_text(const SynthCountdown *p, const SynthOpts *o, Rng *r, int *correct,
                        int *n_attempts);

// A cold-start trace (" <think> ... </think> <answer> EQ </answer>", malloc'd, with the leading
// space of the corpus texts so that prompt + completion reads as they do) in one language:
// the careful search (every first step in the systematic order, each finished by the last step
// closest to the target), a verification line and the answer; always correct. NULL when that
// search needs more than max_attempts attempts or never reaches the target.
char *synth_sft_text(const SynthCountdown *p, SynthLang lang, int max_attempts, int *n_attempts);

// ---- Arithmetic facts ----

// A document of true arithmetic facts ("37 + 58 = 95", a small table, or a chain), malloc'd.
// Two-digit sums of add-task test problems are never written.
char *synth_facts_text(Rng *r);

// A check drill ("17 + 2 = 19 vs 19, yes.\n17 * 3 = 51 vs 53, no.\n..."), malloc'd: the verdict
// of the search texts on its own, half of the lines hits, in lang (mix: one language drawn).
char *synth_check_text(SynthLang lang, Rng *r);

// ---- The three outputs (JSONL lines to out) ----

// Problem records: countdown {"id","task","target","nums"[,"prompt"]} (problems the search texts
// could solve, i.e. synth_reachable, and confirmed by countdown_solve), add/larger
// {"id","task":"math","prompt","answer","a","b"}.
int synth_problems(const SynthOpts *o, FILE *out, SynthStats *st, DsErr *e);
// Pretraining documents {"text"}: facts and, for countdown, R1-template search texts; for add and
// larger, R1-template worked answers (correct, or wrong with probability wrong_frac).
int synth_corpus(const SynthOpts *o, FILE *out, SynthStats *st, DsErr *e);
// Cold-start SFT records {"prompt","completion"} (countdown only).
int synth_sft(const SynthOpts *o, FILE *out, SynthStats *st, DsErr *e);

#endif
