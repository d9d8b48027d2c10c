// synth_corpus.c — the pretraining corpus (arithmetic facts mixed with R1-template search texts or
// worked answers) and the cold-start SFT traces, written as JSON lines.
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "text/chat.h"
#include "core/jsonl.h"
#include "synth/synth.h"

enum { STREAM_DOC = 3, STREAM_PAIR_DOC = 4 };
enum { MAX_REJECTS = 200000 };

// The text a model sees at evaluation and in RL for this user prompt: the R1 template rendered by
// chat_render, up to and including "Assistant:".
static char *r1_prompt(const char *user) {
    json_t *rec = json_object();
    json_object_set_new(rec, "prompt", json_string(user));
    char *text;
    DsErr e;
    DS_CHECK(chat_render(rec, TEMPLATE_R1, "synth", &text, NULL, &e) == DS_OK);
    json_decref(rec);
    return text;
}

static int write_text(FILE *out, const char *key, const char *text, const char *key2,
                      const char *text2, SynthStats *st, DsErr *e) {
    json_t *o = json_object();
    json_object_set_new(o, key, json_string(text));
    if (key2) json_object_set_new(o, key2, json_string(text2));
    int rc = jsonl_write(out, o);
    json_decref(o);
    if (rc != DS_OK) return ds_errf(e, "write error");
    st->records++;
    return DS_OK;
}

// The next usable countdown problem of the candidate stream (from *c on): train split, not
// excluded. DS_ERR when the ranges hold none.
static int next_train_problem(const SynthOpts *o, uint64_t *c, SynthCountdown *p, SynthStats *st,
                              DsErr *e) {
    for (long rejects = 0; rejects < MAX_REJECTS; rejects++) {
        synth_countdown_candidate(o, (*c)++, p);
        st->candidates++;
        uint64_t key = synth_countdown_key(p->nums, p->n, p->target);
        if (synth_split_of(key) == SYNTH_TRAIN && !synth_keyset_has(o->exclude, key)) return DS_OK;
    }
    return ds_errf(e, "the ranges hold too few usable countdown problems");
}

// A countdown search document: the rendered prompt followed by the search, or (with probability
// practice_frac) a practice search: the search alone, never quitting early, with its own order
// of starts when practice_random says so. Practice searches teach the arithmetic, the copying
// and the check at length; the prompted ones set the answering habit.
static int countdown_doc(const SynthOpts *o, Rng *r, uint64_t *c, FILE *out, SynthStats *st,
                         DsErr *e) {
    SynthOpts po = *o;
    int practice = rng_uniform(r) < o->practice_frac;
    if (practice) {
        po.quit_frac = 0;
        if (o->practice_random >= 0) po.random_starts = o->practice_random;
    }
    for (long tries = 0; tries < MAX_REJECTS; tries++) {
        SynthCountdown p;
        if (next_train_problem(o, c, &p, st, e) != DS_OK) return DS_ERR;
        int ok, n_att;
        char *done = synth_search_text(&p, &po, r, &ok, &n_att);
        if (!done) continue; // no attempt reaches the target
        char *user = synth_countdown_prompt(&p), *prompt = r1_prompt(user);
        DsBuf b = {0};
        dsbuf_printf(&b, "%s%s", practice ? "" : prompt, done);
        int rc = write_text(out, "text", b.data, NULL, NULL, st, e);
        st->search++, st->attempts += n_att, st->practice += practice;
        if (ok)
            st->correct++;
        else
            st->wrong++;
        free(done), free(user), free(prompt), dsbuf_free(&b);
        return rc;
    }
    return ds_errf(e, "no drawn countdown problem can be reached by the search");
}

// An add/larger document: the rendered prompt, then the computation and the answer, or (with
// probability wrong_frac) a guess without the computation and a wrong answer.
static int pair_doc(const SynthOpts *o, Rng *r, uint64_t *c, FILE *out, SynthStats *st, DsErr *e) {
    uint64_t span = (uint64_t)(o->max_num - o->min_num) + 1;
    for (long rejects = 0; rejects < MAX_REJECTS; rejects++) {
        Rng pr;
        rng_derive(&pr, o->seed, STREAM_PAIR_DOC, (*c)++);
        int64_t a = o->min_num + (int64_t)rng_below(&pr, span);
        int64_t b = o->min_num + (int64_t)rng_below(&pr, span);
        st->candidates++;
        uint64_t key = synth_pair_key(o->task, a, b);
        if ((o->task == SYNTH_LARGER && a == b) || synth_split_of(key) != SYNTH_TRAIN ||
            synth_keyset_has(o->exclude, key))
            continue;
        char *user, *ans;
        synth_pair_prompt(o->task, a, b, &user, &ans);
        char *prompt = r1_prompt(user);
        int wrong = rng_uniform(r) < o->wrong_frac;
        int64_t right = o->task == SYNTH_ADD ? a + b : DS_MAX(a, b), guess = right;
        if (wrong && o->task == SYNTH_ADD) {
            int64_t d = 1 + (int64_t)rng_below(r, 10);
            guess = rng_below(r, 2) && right > d ? right - d : right + d;
        } else if (wrong) {
            guess = DS_MIN(a, b);
        }
        DsBuf t = {0};
        dsbuf_printf(&t, "%s <think> ", prompt);
        if (o->task == SYNTH_ADD && !wrong)
            dsbuf_printf(&t, "%lld + %lld = %lld", (long long)a, (long long)b, (long long)right);
        else if (!wrong)
            dsbuf_printf(&t, "%lld > %lld", (long long)right, (long long)DS_MIN(a, b));
        else
            dsbuf_printf(&t, "%lld %s %lld", (long long)a, o->task == SYNTH_ADD ? "+" : ",",
                         (long long)b);
        dsbuf_printf(&t, " </think> <answer> %lld </answer>", (long long)guess);
        int rc = write_text(out, "text", t.data, NULL, NULL, st, e);
        st->search++;
        if (wrong)
            st->wrong++;
        else
            st->correct++;
        free(user), free(ans), free(prompt), dsbuf_free(&t);
        return rc;
    }
    return ds_errf(e, "the range holds too few add/larger training problems");
}

int synth_corpus(const SynthOpts *o, FILE *out, SynthStats *st, DsErr *e) {
    memset(st, 0, sizeof *st);
    if (synth_opts_check(o, e) != DS_OK) return DS_ERR;
    uint64_t c = 0; // position in the problem candidate stream
    for (long i = 0; i < o->n; i++) {
        Rng r;
        rng_derive(&r, o->seed, STREAM_DOC, (uint64_t)i);
        int rc;
        double u = rng_uniform(&r);
        if (u < o->facts_frac) {
            char *t = synth_facts_text(&r);
            rc = write_text(out, "text", t, NULL, NULL, st, e);
            st->facts++;
            free(t);
        } else if (o->task == SYNTH_COUNTDOWN && u < o->facts_frac + o->check_frac) {
            char *t = synth_check_text(o->lang, &r);
            rc = write_text(out, "text", t, NULL, NULL, st, e);
            st->checks++;
            free(t);
        } else if (o->task == SYNTH_COUNTDOWN) {
            rc = countdown_doc(o, &r, &c, out, st, e);
        } else {
            rc = pair_doc(o, &r, &c, out, st, e);
        }
        if (rc != DS_OK) return DS_ERR;
    }
    return DS_OK;
}

int synth_sft(const SynthOpts *o, FILE *out, SynthStats *st, DsErr *e) {
    memset(st, 0, sizeof *st);
    if (synth_opts_check(o, e) != DS_OK) return DS_ERR;
    if (o->task != SYNTH_COUNTDOWN) return ds_errf(e, "sft traces exist for countdown only");
    if (o->lang == SYNTH_MIX) return ds_errf(e, "sft traces are in one language: en or xx");
    SynthKeySet seen = {0};
    uint64_t c = 0;
    long misses = 0;
    int rc = DS_OK;
    while (st->records < o->n && rc == DS_OK) {
        SynthCountdown p;
        if ((rc = next_train_problem(o, &c, &p, st, e)) != DS_OK) break;
        uint64_t key = synth_countdown_key(p.nums, p.n, p.target);
        int n_att;
        char *done = synth_keyset_has(&seen, key)
                         ? NULL
                         : synth_sft_text(&p, o->lang, o->max_attempts, &n_att);
        if (!done) {
            if (++misses > MAX_REJECTS)
                rc = ds_errf(e, "found only %ld traces within --max-attempts", st->records);
            continue;
        }
        misses = 0;
        synth_keyset_add(&seen, key);
        char *user = synth_countdown_prompt(&p);
        rc = write_text(out, "prompt", user, "completion", done, st, e);
        st->search++, st->correct++, st->attempts += n_att;
        free(user), free(done);
    }
    synth_keyset_free(&seen);
    return rc;
}
