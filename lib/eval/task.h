// task.h — the evaluation tasks: how a problem record is read (its id and reference answer) and how
// it becomes a prompt.
#ifndef DS_TASK_H
#define DS_TASK_H

#include <jansson.h>

#include "core/common.h"
#include "eval/countdown.h"

typedef enum { TASK_COUNTDOWN, TASK_GSM8K, TASK_MATH, TASK_FORMAT, TASK_LANG } TaskKind;

int task_from_name(const char *name, TaskKind *k); // DS_ERR for an unknown name
const char *task_name(TaskKind k);

// One problem and the reference its completions are graded against, parsed once. Records may be
// lines of the shared data files as they are (gsm8k {"question","answer"}, MATH {"problem",
// "answer",...}, countdown {"target","nums"}) or ds task lines {"id","prompt","target",...}.
typedef struct Problem {
    TaskKind kind;
    char *id;    // the record's "id" (integers in decimal), else its 1-based line number
    json_t *rec; // the record (a counted reference), for prompts and per-field breakdowns
    int64_t target, nums[COUNTDOWN_MAX_NUMS]; // countdown: "target", "nums"
    int n_nums;
    double
        ref_value;  // gsm8k: the number after "####" in "answer" (or "answer"/"target" as a number)
    char *ref;      // math: "answer" (or "target", or the last \boxed{} of "solution")
    char *ref_norm; // math: math_normalize(ref); NULL when it cannot be normalised
} Problem;

// Reads a problem for task k from rec (taking a reference). file and line name the record in
// errors ("test.jsonl:12: field 'nums' must be an array of integers"). Returns NULL and fills e
// when the record lacks what the task needs.
Problem *problem_from_json(TaskKind k, json_t *rec, const char *file, long line, DsErr *e);
void problem_free(Problem *p); // accepts NULL

// The user turn for a problem (malloc'd; the chat template is applied separately): the record's
// "prompt" when it has one, else the task's wording around "question"/"problem"/"nums" (countdown
// uses TinyZero's). NULL and e filled when the record has no text to ask.
char *task_prompt(const Problem *p, DsErr *e);

// A problems file held in memory with an index by id (ids compare as text).
typedef struct TaskSet {
    Problem **p; // in file order
    int n;
    int *slot; // open-addressing hash index into p; -1 = empty
    size_t n_slot;
} TaskSet;

// Reads every record of a JSONL problems file ("-" for stdin). Fails on a malformed line (unless
// skip_bad), a record the task cannot use, or a repeated id, naming the file and line.
int task_set_load(TaskSet *s, TaskKind k, const char *path, int skip_bad, DsErr *e);
int task_set_find(const TaskSet *s, const char *id); // index into s->p, or -1
void task_set_free(TaskSet *s);

typedef enum { TEMPLATE_PLAIN, TEMPLATE_R1 } PromptTemplate;
int task_template_from_name(const char *name, PromptTemplate *t); // "plain", "r1"

// Wraps a prompt: plain returns a copy; r1 the R1-Zero text "A conversation between User and
// Assistant. ... User: {prompt}. Assistant:" (malloc'd).
char *task_apply_template(const char *prompt, PromptTemplate t);

#endif
