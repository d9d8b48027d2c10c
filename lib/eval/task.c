// task.c — the evaluation tasks: how a problem record is read (its id and reference answer) and how
// it becomes a prompt.
#include "eval/task.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/jsonl.h"
#include "eval/math_answer.h"

static const char *const task_names[] = {"countdown", "gsm8k", "math", "format", "lang"};

int task_from_name(const char *name, TaskKind *k) {
    for (size_t i = 0; i < DS_ARRAY_LEN(task_names); i++)
        if (strcmp(name, task_names[i]) == 0) {
            *k = (TaskKind)i;
            return DS_OK;
        }
    return DS_ERR;
}

const char *task_name(TaskKind k) {
    return (size_t)k < DS_ARRAY_LEN(task_names) ? task_names[k] : "?";
}

void problem_free(Problem *p) {
    if (!p) return;
    free(p->id);
    json_decref(p->rec);
    free(p->ref);
    free(p->ref_norm);
    free(p);
}

// An integer field, also accepting an integral real (1.0) as data converters sometimes write.
static int get_i64(const json_t *v, int64_t *out) {
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return 1;
    }
    if (json_is_real(v)) {
        double x = json_real_value(v);
        if (x == floor(x) && fabs(x) < 9e15) {
            *out = (int64_t)x;
            return 1;
        }
    }
    return 0;
}

static int read_countdown(Problem *p, const char *file, long line, DsErr *e) {
    const json_t *t = json_object_get(p->rec, "target"), *nums = json_object_get(p->rec, "nums");
    if (!t || !get_i64(t, &p->target))
        return ds_errf(e, "%s:%ld: countdown needs an integer field 'target'", file, line);
    size_t n = json_array_size(nums);
    if (!json_is_array(nums) || n < 1 || n > COUNTDOWN_MAX_NUMS)
        return ds_errf(e, "%s:%ld: field 'nums' must be an array of 1 to %d integers", file, line,
                       COUNTDOWN_MAX_NUMS);
    for (size_t i = 0; i < n; i++)
        if (!get_i64(json_array_get(nums, i), &p->nums[i]))
            return ds_errf(e, "%s:%ld: field 'nums' must be an array of integers", file, line);
    p->n_nums = (int)n;
    return DS_OK;
}

static int read_gsm8k(Problem *p, const char *file, long line, DsErr *e) {
    static const char *const keys[] = {"answer", "target"};
    for (size_t k = 0; k < DS_ARRAY_LEN(keys); k++) {
        const json_t *v = json_object_get(p->rec, keys[k]);
        if (!v) continue;
        if (json_is_number(v)) {
            p->ref_value = json_number_value(v);
            return DS_OK;
        }
        if (!json_is_string(v)) break;
        const char *s = json_string_value(v);
        size_t n = json_string_length(v);
        // The dataset's answer is the worked solution ending in "#### N"; a task file may hold N.
        int ok = memmem(s, n, "####", 4)
                     ? math_extract_number(s, n, MATH_EXTRACT_HASH, &p->ref_value)
                     : math_parse_number(s, n, &p->ref_value);
        if (!ok) return ds_errf(e, "%s:%ld: field '%s' has no final number", file, line, keys[k]);
        return DS_OK;
    }
    return ds_errf(e, "%s:%ld: gsm8k needs a field 'answer' (\"... #### N\" or a number)", file,
                   line);
}

static int read_math(Problem *p, const char *file, long line, DsErr *e) {
    static const char *const keys[] = {"answer", "target"};
    for (size_t k = 0; k < DS_ARRAY_LEN(keys) && !p->ref; k++) {
        const json_t *v = json_object_get(p->rec, keys[k]);
        if (json_is_string(v)) {
            p->ref = ds_strdup(json_string_value(v));
        } else if (json_is_integer(v)) {
            DsBuf b = {0};
            dsbuf_printf(&b, "%lld", (long long)json_integer_value(v));
            p->ref = b.data;
        }
    }
    const json_t *sol = json_object_get(p->rec, "solution");
    if (!p->ref && json_is_string(sol)) {
        const char *b;
        size_t n;
        if (math_last_boxed(json_string_value(sol), json_string_length(sol), &b, &n)) {
            p->ref = ds_malloc(n + 1);
            memcpy(p->ref, b, n);
            p->ref[n] = '\0';
        }
    }
    if (!p->ref)
        return ds_errf(e, "%s:%ld: math needs a string field 'answer' (or a \\boxed{} 'solution')",
                       file, line);
    p->ref_norm = math_normalize(p->ref, strlen(p->ref));
    return DS_OK;
}

Problem *problem_from_json(TaskKind k, json_t *rec, const char *file, long line, DsErr *e) {
    Problem *p = ds_calloc(1, sizeof *p);
    p->kind = k;
    p->rec = json_incref(rec);
    const json_t *id = json_object_get(rec, "id");
    DsBuf b = {0};
    if (!id) {
        dsbuf_printf(&b, "%ld", line);
    } else if (json_is_string(id)) {
        dsbuf_printf(&b, "%s", json_string_value(id));
    } else if (json_is_integer(id)) {
        dsbuf_printf(&b, "%lld", (long long)json_integer_value(id));
    } else {
        ds_errf(e, "%s:%ld: field 'id' must be a string or an integer", file, line);
        goto fail;
    }
    p->id = b.data;
    int rc = k == TASK_COUNTDOWN ? read_countdown(p, file, line, e)
             : k == TASK_GSM8K   ? read_gsm8k(p, file, line, e)
             : k == TASK_MATH    ? read_math(p, file, line, e)
                                 : DS_OK; // format and lang grade the completion alone
    if (rc != DS_OK) goto fail;
    return p;
fail:
    problem_free(p);
    return NULL;
}

// ---------------------------------------------------------------------------------------------
// A problems file indexed by id.

static uint64_t hash_id(const char *s) { // FNV-1a
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static int set_index(TaskSet *s, int i, const char *file, long line, DsErr *e) {
    size_t mask = s->n_slot - 1, h = (size_t)hash_id(s->p[i]->id) & mask;
    for (; s->slot[h] >= 0; h = (h + 1) & mask)
        if (strcmp(s->p[s->slot[h]]->id, s->p[i]->id) == 0)
            return ds_errf(e, "%s:%ld: duplicate id '%s'", file, line, s->p[i]->id);
    s->slot[h] = i;
    return DS_OK;
}

int task_set_load(TaskSet *s, TaskKind k, const char *path, int skip_bad, DsErr *e) {
    memset(s, 0, sizeof *s);
    JsonlReader r;
    if (jsonl_open(&r, path, skip_bad, e) != DS_OK) return DS_ERR;
    int cap = 0, rc;
    json_t *o;
    while ((rc = jsonl_next(&r, &o, e)) == 1) {
        Problem *p = problem_from_json(k, o, jsonl_name(&r), r.line, e);
        json_decref(o);
        if (!p) goto fail;
        if (s->n == cap) {
            cap = cap ? 2 * cap : 256;
            s->p = ds_realloc(s->p, (size_t)cap * sizeof *s->p);
        }
        s->p[s->n++] = p;
        if ((size_t)s->n * 2 > s->n_slot) { // keep the load factor under 1/2
            free(s->slot);
            s->n_slot = s->n_slot ? 4 * s->n_slot : 1024;
            s->slot = ds_malloc(s->n_slot * sizeof *s->slot);
            memset(s->slot, 0xff, s->n_slot * sizeof *s->slot);
            for (int i = 0; i < s->n - 1; i++) DS_CHECK(set_index(s, i, "", 0, NULL) == DS_OK);
        }
        if (set_index(s, s->n - 1, jsonl_name(&r), r.line, e) != DS_OK) goto fail;
    }
    if (rc != 0) goto fail;
    jsonl_close(&r);
    return DS_OK;
fail:
    jsonl_close(&r);
    task_set_free(s);
    return DS_ERR;
}

int task_set_find(const TaskSet *s, const char *id) {
    if (!s->n_slot) return -1;
    size_t mask = s->n_slot - 1;
    for (size_t h = (size_t)hash_id(id) & mask; s->slot[h] >= 0; h = (h + 1) & mask)
        if (strcmp(s->p[s->slot[h]]->id, id) == 0) return s->slot[h];
    return -1;
}

void task_set_free(TaskSet *s) {
    for (int i = 0; i < s->n; i++) problem_free(s->p[i]);
    free(s->p);
    free(s->slot);
    memset(s, 0, sizeof *s);
}

// ---------------------------------------------------------------------------------------------
// Prompts.

static const char *field_text(const Problem *p, const char *key) {
    const json_t *v = json_object_get(p->rec, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

char *task_prompt(const Problem *p, DsErr *e) {
    const char *given = field_text(p, "prompt");
    if (given) return ds_strdup(given);
    DsBuf b = {0};
    if (p->kind == TASK_COUNTDOWN) {
        // TinyZero's wording (examples/data_preprocess/countdown.py), numbers as a Python list.
        dsbuf_printf(&b, "Using the numbers [");
        for (int i = 0; i < p->n_nums; i++)
            dsbuf_printf(&b, "%s%lld", i ? ", " : "", (long long)p->nums[i]);
        dsbuf_printf(&b,
                     "], create an equation that equals %lld. You can use basic arithmetic "
                     "operations (+, -, *, /) and each number can only be used once. Show your "
                     "work in <think> </think> tags. And return the final answer in <answer> "
                     "</answer> tags, for example <answer> (1 + 2) / 3 </answer>.",
                     (long long)p->target);
        return b.data;
    }
    const char *q = field_text(p, "question");
    if (!q) q = field_text(p, "problem");
    if (!q) {
        ds_errf(e, "problem %s: no 'prompt', 'question' or 'problem' text", p->id);
        return NULL;
    }
    // The instructions the usual open recipes append, so that the answer lands where the grader
    // looks for it.
    if (p->kind == TASK_GSM8K)
        dsbuf_printf(&b, "%s Let's think step by step and output the final answer after \"####\".",
                     q);
    else if (p->kind == TASK_MATH)
        dsbuf_printf(
            &b, "%s Please reason step by step, and put your final answer within \\boxed{}.", q);
    else
        dsbuf_printf(&b, "%s", q);
    return b.data;
}

int task_template_from_name(const char *name, PromptTemplate *t) {
    if (strcmp(name, "plain") == 0)
        *t = TEMPLATE_PLAIN;
    else if (strcmp(name, "r1") == 0)
        *t = TEMPLATE_R1;
    else
        return DS_ERR;
    return DS_OK;
}

char *task_apply_template(const char *prompt, PromptTemplate t) {
    if (t == TEMPLATE_PLAIN) return ds_strdup(prompt);
    // The R1-Zero template (R1 paper, table 1). The '.' after the prompt is left out when the
    // prompt already ends a sentence, so that "?" or "." is not followed by a second '.'.
    size_t n = strlen(prompt);
    int ends = n && strchr(".?!", prompt[n - 1]);
    DsBuf b = {0};
    dsbuf_printf(&b,
                 "A conversation between User and Assistant. The user asks a question, and the "
                 "Assistant solves it. The assistant first thinks about the reasoning process in "
                 "the mind and then provides the user with the answer. The reasoning process and "
                 "answer are enclosed within <think> </think> and <answer> </answer> tags, "
                 "respectively, i.e., <think> reasoning process here </think> <answer> answer here "
                 "</answer>. User: %s%s Assistant:",
                 prompt, ends ? "" : ".");
    return b.data;
}
