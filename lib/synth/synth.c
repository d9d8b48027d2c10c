// synth.c — synthetic problems: option checks, problem keys and the hash-defined train/test split,
// key sets for exclusion, and the problems output.
#include "synth/synth.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "eval/countdown.h"
#include "core/jsonl.h"
#include "eval/task.h"

static const char *const task_names[] = {"countdown", "add", "larger"};
static const char *const split_names[] = {"train", "test"};
static const char *const lang_names[] = {"en", "xx", "mix"};

static int index_of(const char *name, const char *const *names, int n) {
    for (int i = 0; i < n; i++)
        if (strcmp(name, names[i]) == 0) return i;
    return -1;
}

int synth_task_from_name(const char *name, SynthTask *t) {
    int i = index_of(name, task_names, (int)DS_ARRAY_LEN(task_names));
    if (i < 0) return DS_ERR;
    *t = (SynthTask)i;
    return DS_OK;
}

int synth_split_from_name(const char *name, SynthSplit *s) {
    int i = index_of(name, split_names, (int)DS_ARRAY_LEN(split_names));
    if (i < 0) return DS_ERR;
    *s = (SynthSplit)i;
    return DS_OK;
}

int synth_lang_from_name(const char *name, SynthLang *l) {
    int i = index_of(name, lang_names, (int)DS_ARRAY_LEN(lang_names));
    if (i < 0) return DS_ERR;
    *l = (SynthLang)i;
    return DS_OK;
}

// ---------------------------------------------------------------------------------------------
// Keys and the split. The key hashes the canonical problem, so the split needs no shared state:
// any call with any seed puts a problem on the same side.

static uint64_t mix64(uint64_t h, uint64_t v) { // splitmix64's finaliser over h ^ v
    uint64_t z = (h ^ v) + 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

uint64_t synth_countdown_key(const int64_t *nums, int n, int64_t target) {
    int64_t s[COUNTDOWN_MAX_NUMS];
    DS_CHECK(n >= 1 && n <= COUNTDOWN_MAX_NUMS);
    memcpy(s, nums, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, cmp_i64);
    uint64_t h = mix64(0x636f756e74646f77ull, (uint64_t)n); // "countdow"
    for (int i = 0; i < n; i++)
        h = mix64(h, (uint64_t)s[i]);
    h = mix64(h, (uint64_t)target);
    return h ? h : 1;
}

uint64_t synth_pair_key(SynthTask t, int64_t a, int64_t b) {
    if (a > b) {
        int64_t x = a;
        a = b, b = x;
    }
    uint64_t h = mix64(0x7061697270616972ull, (uint64_t)t); // "pairpair"
    h = mix64(mix64(h, (uint64_t)a), (uint64_t)b);
    return h ? h : 1;
}

SynthSplit synth_split_of(uint64_t key) {
    return (key >> 17) % 1000 < SYNTH_TEST_PER_MILLE ? SYNTH_TEST : SYNTH_TRAIN;
}

// ---------------------------------------------------------------------------------------------
// Key sets.

static void keyset_put(uint64_t *slot, size_t cap, uint64_t key) {
    size_t mask = cap - 1, h = (size_t)(key * 0x9e3779b97f4a7c15ull >> 20) & mask;
    for (; slot[h] && slot[h] != key; h = (h + 1) & mask) {
    }
    slot[h] = key;
}

int synth_keyset_has(const SynthKeySet *s, uint64_t key) {
    if (!s || !s->cap) return 0;
    size_t mask = s->cap - 1, h = (size_t)(key * 0x9e3779b97f4a7c15ull >> 20) & mask;
    for (; s->slot[h]; h = (h + 1) & mask)
        if (s->slot[h] == key) return 1;
    return 0;
}

void synth_keyset_add(SynthKeySet *s, uint64_t key) {
    DS_CHECK(key != 0);
    if (synth_keyset_has(s, key)) return;
    if ((s->n + 1) * 2 > s->cap) { // keep the load factor under 1/2
        size_t cap = s->cap ? 2 * s->cap : 1024;
        uint64_t *slot = ds_calloc(cap, sizeof *slot);
        for (size_t i = 0; i < s->cap; i++)
            if (s->slot[i]) keyset_put(slot, cap, s->slot[i]);
        free(s->slot);
        s->slot = slot, s->cap = cap;
    }
    keyset_put(s->slot, s->cap, key);
    s->n++;
}

void synth_keyset_free(SynthKeySet *s) {
    free(s->slot);
    memset(s, 0, sizeof *s);
}

static int get_int(const JsonlReader *r, const json_t *o, const char *k, int64_t *v, DsErr *e) {
    long long x;
    if (jsonl_get_int(r, o, k, &x, e) != DS_OK) return DS_ERR;
    *v = x;
    return DS_OK;
}

int synth_keyset_load(SynthKeySet *s, SynthTask t, const char *path, DsErr *e) {
    JsonlReader r;
    if (jsonl_open(&r, path, 0, e) != DS_OK) return DS_ERR;
    json_t *o;
    int rc;
    while ((rc = jsonl_next(&r, &o, e)) == 1) {
        uint64_t key = 0;
        if (t == SYNTH_COUNTDOWN) {
            Problem *p = problem_from_json(TASK_COUNTDOWN, o, jsonl_name(&r), r.line, e);
            if (p) key = synth_countdown_key(p->nums, p->n_nums, p->target);
            problem_free(p);
        } else {
            int64_t a, b;
            if (get_int(&r, o, "a", &a, e) == DS_OK && get_int(&r, o, "b", &b, e) == DS_OK)
                key = synth_pair_key(t, a, b);
        }
        json_decref(o);
        if (!key) goto fail;
        synth_keyset_add(s, key);
    }
    if (rc != 0) goto fail;
    jsonl_close(&r);
    return DS_OK;
fail:
    jsonl_close(&r);
    return DS_ERR;
}

// ---------------------------------------------------------------------------------------------
// Options.

void synth_opts_default(SynthOpts *o) {
    memset(o, 0, sizeof *o);
    o->task = SYNTH_COUNTDOWN;
    o->n = 1000;
    o->n_nums = 3;
    o->min_num = 1, o->max_num = 99;
    o->min_target = 10, o->max_target = 100;
    o->split = SYNTH_TRAIN;
    o->lang = SYNTH_EN;
    o->wrong_frac = 0.1;
    o->quit_frac = 0.1;
    o->quit_after = 4;
    o->heuristic_frac = 0.5;
    o->practice_random = -1;
    o->facts_frac = 0.25;
    o->max_attempts = 16;
}

int synth_opts_check(const SynthOpts *o, DsErr *e) {
    if (o->n < 0) return ds_errf(e, "the record count must be >= 0");
    if (o->n_nums < 2 || o->n_nums > SYNTH_MAX_NUMS)
        return ds_errf(e, "--nums must be between 2 and %d", SYNTH_MAX_NUMS);
    if (o->min_num < 0 || o->min_num > o->max_num || o->max_num > 10000)
        return ds_errf(e, "need 0 <= --min-num <= --max-num <= 10000");
    if (o->task == SYNTH_COUNTDOWN &&
        (o->min_target > o->max_target || o->max_target > 1000000 || o->min_target < -1000000))
        return ds_errf(e, "need --min-target <= --max-target, both within +-1000000");
    if (o->task != SYNTH_COUNTDOWN && o->min_num == o->max_num)
        return ds_errf(e, "add and larger need --min-num < --max-num");
    if (!(o->wrong_frac >= 0 && o->wrong_frac <= 1) || !(o->facts_frac >= 0 && o->facts_frac <= 1) ||
        !(o->quit_frac >= 0 && o->quit_frac <= 1) ||
        !(o->heuristic_frac >= 0 && o->heuristic_frac <= 1) ||
        !(o->practice_frac >= 0 && o->practice_frac <= 1) ||
        !(o->check_frac >= 0 && o->facts_frac + o->check_frac <= 1))
        return ds_errf(e, "--wrong-frac, --quit-frac, --heuristic-frac, --practice-frac, "
                          "--facts-frac and --check-frac must be within [0, 1] (facts + checks at most 1)");
    if (o->max_attempts < 1 || o->quit_after < 1)
        return ds_errf(e, "--max-attempts and --quit-after must be >= 1");
    return DS_OK;
}

// ---------------------------------------------------------------------------------------------
// Problems.

enum { STREAM_COUNTDOWN = 1, STREAM_PAIR = 2 };

void synth_countdown_candidate(const SynthOpts *o, uint64_t c, SynthCountdown *p) {
    Rng r;
    rng_derive(&r, o->seed, STREAM_COUNTDOWN, c);
    uint64_t span = (uint64_t)(o->max_num - o->min_num) + 1;
    p->n = o->n_nums;
    for (int i = 0; i < p->n; i++)
        p->nums[i] = o->min_num + (int64_t)rng_below(&r, span);
    p->target =
        o->min_target + (int64_t)rng_below(&r, (uint64_t)(o->max_target - o->min_target) + 1);
}

// The prompt and answer of an add/larger problem (a, b) into the record.
static void pair_fields(SynthTask t, int64_t a, int64_t b, json_t *rec) {
    DsBuf p = {0}, ans = {0};
    if (t == SYNTH_ADD) {
        dsbuf_printf(&p, "What is %lld + %lld?", (long long)a, (long long)b);
        dsbuf_printf(&ans, "%lld", (long long)(a + b));
    } else {
        dsbuf_printf(&p, "Reply with the larger of the two numbers %lld and %lld.", (long long)a,
                     (long long)b);
        dsbuf_printf(&ans, "%lld", (long long)DS_MAX(a, b));
    }
    json_object_set_new(rec, "prompt", json_string(p.data));
    json_object_set_new(rec, "answer", json_string(ans.data));
    json_object_set_new(rec, "a", json_integer(a));
    json_object_set_new(rec, "b", json_integer(b));
    dsbuf_free(&p);
    dsbuf_free(&ans);
}

static int write_rec(FILE *out, json_t *rec, SynthStats *st, DsErr *e) {
    int rc = jsonl_write(out, rec);
    json_decref(rec);
    if (rc != DS_OK) return ds_errf(e, "write error");
    st->records++;
    return DS_OK;
}

// The countdown user prompt as evaluation renders it (task_prompt on the record's numbers).
char *synth_countdown_prompt(const SynthCountdown *p) {
    json_t *rec = json_object(), *nums = json_array();
    for (int i = 0; i < p->n; i++)
        json_array_append_new(nums, json_integer(p->nums[i]));
    json_object_set_new(rec, "target", json_integer(p->target));
    json_object_set_new(rec, "nums", nums);
    DsErr e;
    Problem *pr = problem_from_json(TASK_COUNTDOWN, rec, "synth", 0, &e);
    DS_CHECK(pr != NULL);
    char *text = task_prompt(pr, &e);
    DS_CHECK(text != NULL);
    problem_free(pr);
    json_decref(rec);
    return text;
}

// Too many rejected candidates in a row means the ranges hold (almost) no usable problem.
enum { MAX_REJECTS = 200000 };

static int countdown_problems(const SynthOpts *o, FILE *out, SynthStats *st, DsErr *e) {
    SynthKeySet seen = {0};
    long rejects = 0;
    int rc = DS_OK;
    for (uint64_t c = 0; st->records < o->n; c++) {
        SynthCountdown p;
        synth_countdown_candidate(o, c, &p);
        st->candidates++;
        uint64_t key = synth_countdown_key(p.nums, p.n, p.target);
        char eq[COUNTDOWN_MAX_EXPR];
        if (synth_split_of(key) != o->split || synth_keyset_has(o->exclude, key) ||
            synth_keyset_has(&seen, key) || !synth_reachable(&p) ||
            countdown_solve(p.nums, p.n, p.target, eq, sizeof eq) != 1) {
            if (++rejects > MAX_REJECTS) {
                rc = ds_errf(e, "found only %ld problems: the ranges hold too few solvable ones",
                             st->records);
                break;
            }
            continue;
        }
        rejects = 0;
        synth_keyset_add(&seen, key);
        json_t *rec = json_object(), *nums = json_array();
        char id[64];
        snprintf(id, sizeof id, "cd%d-%s-%ld", p.n, split_names[o->split], st->records);
        for (int i = 0; i < p.n; i++)
            json_array_append_new(nums, json_integer(p.nums[i]));
        json_object_set_new(rec, "id", json_string(id));
        json_object_set_new(rec, "task", json_string("countdown"));
        json_object_set_new(rec, "target", json_integer(p.target));
        json_object_set_new(rec, "nums", nums);
        if (o->with_prompt) {
            char *text = synth_countdown_prompt(&p);
            json_object_set_new(rec, "prompt", json_string(text));
            free(text);
        }
        if ((rc = write_rec(out, rec, st, e)) != DS_OK) break;
    }
    synth_keyset_free(&seen);
    return rc;
}

static int pair_problems(const SynthOpts *o, FILE *out, SynthStats *st, DsErr *e) {
    SynthKeySet seen = {0};
    long rejects = 0;
    int rc = DS_OK;
    uint64_t span = (uint64_t)(o->max_num - o->min_num) + 1;
    for (uint64_t c = 0; st->records < o->n; c++) {
        Rng r;
        rng_derive(&r, o->seed, STREAM_PAIR, c);
        int64_t a = o->min_num + (int64_t)rng_below(&r, span);
        int64_t b = o->min_num + (int64_t)rng_below(&r, span);
        st->candidates++;
        uint64_t key = synth_pair_key(o->task, a, b);
        if ((o->task == SYNTH_LARGER && a == b) || synth_split_of(key) != o->split ||
            synth_keyset_has(o->exclude, key) || synth_keyset_has(&seen, key)) {
            if (++rejects > MAX_REJECTS) {
                rc = ds_errf(e, "found only %ld problems: the range holds too few", st->records);
                break;
            }
            continue;
        }
        rejects = 0;
        synth_keyset_add(&seen, key);
        json_t *rec = json_object();
        char id[64];
        snprintf(id, sizeof id, "%s-%s-%ld", task_names[o->task], split_names[o->split],
                 st->records);
        json_object_set_new(rec, "id", json_string(id));
        json_object_set_new(rec, "task", json_string("math"));
        pair_fields(o->task, a, b, rec);
        if ((rc = write_rec(out, rec, st, e)) != DS_OK) break;
    }
    synth_keyset_free(&seen);
    return rc;
}

int synth_problems(const SynthOpts *o, FILE *out, SynthStats *st, DsErr *e) {
    memset(st, 0, sizeof *st);
    if (synth_opts_check(o, e) != DS_OK) return DS_ERR;
    return o->task == SYNTH_COUNTDOWN ? countdown_problems(o, out, st, e)
                                      : pair_problems(o, out, st, e);
}

void synth_pair_prompt(SynthTask t, int64_t a, int64_t b, char **prompt, char **answer) {
    json_t *rec = json_object();
    pair_fields(t, a, b, rec);
    *prompt = ds_strdup(json_string_value(json_object_get(rec, "prompt")));
    *answer = ds_strdup(json_string_value(json_object_get(rec, "answer")));
    json_decref(rec);
}
