// grpo.c — the GRPO trainer: rollouts, rewards, advantages, clipped policy updates, KL to a
// reference, metrics, held-out evaluation, checkpoints and exact resume.
#include "rl/grpo.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint/checkpoint.h"
#include "text/chat.h"
#include "core/cli.h"
#include "infer/engine.h"
#include "infer/generate.h"
#include "core/jsonl.h"
#include "core/progress.h"
#include "train/objective.h"
#include "eval/passk.h"
#include "core/rng.h"
#include "rl/rollout.h"
#include "checkpoint/safetensors.h"

// ----------------------------------------------------------------------------
// problems

int grpo_problems_load(GrpoProblems *ps, const char *path, const char *default_task,
                       const Tokenizer *tok, RolloutTemplate tmpl, DsErr *e) {
    memset(ps, 0, sizeof *ps);
    JsonlReader rd;
    if (jsonl_open(&rd, path, 0, e)) return DS_ERR;
    json_t *rec;
    int got;
    while ((got = jsonl_next(&rd, &rec, e)) == 1) {
        const char *tn = json_string_value(json_object_get(rec, "task"));
        if (!tn) tn = default_task;
        TaskKind k;
        if (!tn || task_from_name(tn, &k)) {
            json_decref(rec);
            got = ds_errf(e, "%s:%ld: no known 'task' field (countdown, gsm8k, math, ...) and no --task",
                          jsonl_name(&rd), rd.line);
            break;
        }
        Problem *p = problem_from_json(k, rec, jsonl_name(&rd), rd.line, e);
        json_decref(rec);
        if (!p) {
            got = DS_ERR;
            break;
        }
        TokIds ids;
        if (rollout_prompt(tok, p, tmpl, &ids, NULL, e)) {
            problem_free(p);
            got = ds_err_prefix(e, "%s:%ld", jsonl_name(&rd), rd.line);
            break;
        }
        ps->p = ds_realloc(ps->p, sizeof(Problem *) * (size_t)(ps->n + 1));
        ps->ids = ds_realloc(ps->ids, sizeof(uint32_t *) * (size_t)(ps->n + 1));
        ps->len = ds_realloc(ps->len, sizeof(int) * (size_t)(ps->n + 1));
        ps->p[ps->n] = p, ps->ids[ps->n] = ids.ids, ps->len[ps->n] = (int)ids.n;
        ps->n++;
    }
    jsonl_close(&rd);
    if (got < 0) {
        grpo_problems_free(ps);
        return DS_ERR;
    }
    if (ps->n == 0) return ds_errf(e, "%s: no problems", path);
    return DS_OK;
}

void grpo_problems_free(GrpoProblems *ps) {
    for (int i = 0; i < ps->n; i++) problem_free(ps->p[i]), free(ps->ids[i]);
    free(ps->p), free(ps->ids), free(ps->len);
    memset(ps, 0, sizeof *ps);
}

// ----------------------------------------------------------------------------
// state

typedef struct Sample {
    int prob;                // index into the problems
    uint32_t *ids;           // prompt + completion (+ end token when the model ended it)
    int plen, clen;          // prompt tokens, completion tokens trained on
    double reward, score, lang;
    int correct, formatted, truncated;
    long reflect;            // reflective words in the completion (grade_reflection_words)
    double adv;
    int off;                 // offset of its completion tokens in the flat log-prob arrays
} Sample;

struct GrpoRun {
    Model_f32 *pol, ref;
    int has_ref;
    const Tokenizer *tok;
    const char *tok_json;
    size_t tok_len;
    GrpoOpts o;
    AdamW opt;
    long step;
    Engine *en;
    int maxT;                // longest training sequence (prompt + completion)
    Acts_f32 acts, ref_acts;
    Sample *s;
    int ns;
    int *tokens, *targets, *pos;
    float *lpf, *entf, *dlpf;
    double *lp, *lp_old, *lp_ref, *dlp;
    size_t cap_tok;
};

long grpo_step(const GrpoRun *g) { return g->step; }

GrpoRun *grpo_new(Model_f32 *policy, const Tokenizer *tok, const char *tokenizer_json, size_t tok_len,
                  const GrpoOpts *o, DsErr *e) {
    GrpoRun *g = ds_calloc(1, sizeof *g);
    g->pol = policy, g->tok = tok, g->tok_json = tokenizer_json, g->tok_len = tok_len, g->o = *o;
    g->maxT = o->max_prompt + o->max_tokens + 1;
    const ModelConfig *c = &policy->L.cfg;
    if (g->maxT > policy->rope.max_pos) {
        ds_errf(e, "prompt + response length %d exceeds the model's positions (%d)", g->maxT, policy->rope.max_pos);
        free(g);
        return NULL;
    }
    if (!policy->grads) {
        free(g);
        return ds_errf(e, "the policy must be built with gradients"), NULL;
    }
    adamw_init(&g->opt, policy->L.total, o->beta1, o->beta2, 1e-8, o->weight_decay);
    if (o->beta > 0) {
        model_init_f32(&g->ref, c, 0, g->maxT);
        policy->be->copy(g->ref.params, policy->params, sizeof(float) * policy->L.total);
        model_params_changed_f32(&g->ref);
        acts_init_forward_f32(&g->ref_acts, &g->ref, o->micro_batch, g->maxT);
        g->has_ref = 1;
    }
    acts_init_f32(&g->acts, policy, o->micro_batch, g->maxT);
    EngineOpts eo = {.slots = o->slots, .max_len = g->maxT, .max_rows = o->slots * 2 + 64};
    g->en = engine_new(policy, &eo, e);
    if (!g->en) {
        grpo_free(g);
        return NULL;
    }
    g->ns = o->prompts_per_step * o->group_size;
    g->s = ds_calloc((size_t)g->ns, sizeof(Sample));
    size_t N = (size_t)o->micro_batch * g->maxT;
    g->tokens = ds_malloc(sizeof(int) * N), g->targets = ds_malloc(sizeof(int) * N), g->pos = ds_malloc(sizeof(int) * N);
    g->lpf = ds_malloc(sizeof(float) * N), g->entf = ds_malloc(sizeof(float) * N), g->dlpf = ds_malloc(sizeof(float) * N);
    g->cap_tok = (size_t)g->ns * (o->max_tokens + 1);
    g->lp = ds_malloc(sizeof(double) * g->cap_tok), g->lp_old = ds_malloc(sizeof(double) * g->cap_tok);
    g->lp_ref = ds_malloc(sizeof(double) * g->cap_tok), g->dlp = ds_malloc(sizeof(double) * g->cap_tok);
    return g;
}

void grpo_free(GrpoRun *g) {
    if (!g) return;
    engine_free(g->en);
    acts_free_f32(&g->acts);
    if (g->has_ref) acts_free_f32(&g->ref_acts), model_free_f32(&g->ref);
    adamw_free(&g->opt);
    for (int i = 0; i < g->ns; i++) free(g->s[i].ids);
    free(g->s), free(g->tokens), free(g->targets), free(g->pos), free(g->lpf), free(g->entf), free(g->dlpf);
    free(g->lp), free(g->lp_old), free(g->lp_ref), free(g->dlp);
    free(g);
}

static int save(GrpoRun *g, DsErr *e) {
    if (!g->o.ckpt_path) return DS_OK;
    json_t *state = json_pack("{s:I,s:I,s:s}", "step", (json_int_t)g->step, "adam_t", (json_int_t)g->opt.t,
                              "ds_version", ds_version());
    if (g->o.record) json_object_set(state, "run", g->o.record);
    DsBuf ref = {0};
    int nx = g->o.ncarry;
    TarMember *extra = ds_malloc((size_t)(nx + 1) * sizeof *extra);
    if (nx) memcpy(extra, g->o.carry, (size_t)nx * sizeof *extra);
    if (g->has_ref) {
        ckpt_weights_safetensors(&g->ref, &ref);
        extra[nx++] = (TarMember){"reference.safetensors", (uint8_t *)ref.data, ref.len};
    }
    int rc = ckpt_save(g->o.ckpt_path, g->pol, &g->opt, g->tok_json, g->tok_len, state, extra, nx, e);
    free(extra);
    dsbuf_free(&ref);
    json_decref(state);
    return rc;
}

int grpo_resume(GrpoRun *g, const Checkpoint *ck, DsErr *e) {
    if (ckpt_load_optimizer(ck, &g->opt, e)) return DS_ERR;
    g->step = (long)json_integer_value(json_object_get(ck->state, "step"));
    if (!g->has_ref) return DS_OK;
    const TarMember *r = ckpt_member(ck, "reference.safetensors");
    if (!r) return ds_errf(e, "%s: no reference.safetensors (was it made with --beta 0?)", ck->path);
    Safetensors st;
    if (st_parse(&st, r->data, r->size, "reference.safetensors", e)) return DS_ERR;
    int rc = DS_OK;
    for (int i = 0; i < g->ref.L.np && !rc; i++) {
        const ParamInfo *p = &g->ref.L.p[i];
        const StTensor *t = st_find(&st, p->name);
        rc = t ? st_read_f32(&st, t, g->ref.params + p->offset, p->numel, e)
               : ds_errf(e, "%s: reference.safetensors lacks %s", ck->path, p->name);
    }
    model_params_changed_f32(&g->ref);
    st_free(&st);
    return rc;
}

// ----------------------------------------------------------------------------
// rollouts

typedef struct Collect {
    GrpoRun *g;
    const int *order;        // problem index per item
    int G;
    Sample *out;             // items*G
    long tokens;
} Collect;

static int collect(void *ctx, const RolloutSample *rs, DsErr *e) {
    (void)e;
    Collect *f = ctx;
    GrpoRun *g = f->g;
    const GenResult *r = rs->gen;
    int idx = rs->item * f->G + rs->index % f->G;
    Sample *s = &f->out[idx];
    free(s->ids);
    memset(s, 0, sizeof *s);
    s->prob = f->order[rs->item];
    s->plen = r->req->prompt_len;
    int ended = !strcmp(r->finish, "eos") && g->o.n_eos > 0;
    s->clen = r->n + ended;
    s->ids = ds_malloc(sizeof(uint32_t) * (size_t)(s->plen + s->clen));
    memcpy(s->ids, r->req->prompt, sizeof(uint32_t) * (size_t)s->plen);
    memcpy(s->ids + s->plen, r->tokens, sizeof(uint32_t) * (size_t)r->n);
    if (ended) s->ids[s->plen + r->n] = g->o.eos[0];
    s->truncated = !strcmp(r->finish, "length");
    s->score = rs->grade.score, s->correct = rs->grade.correct;
    s->formatted = rs->format > 0;
    s->lang = rs->lang;
    s->reflect = DS_MAX(grade_reflection_words(r->text, r->text_len), 0);
    s->reward = g->o.w_acc * s->score + g->o.w_format * s->formatted + g->o.w_lang * s->lang;
    if (s->truncated && g->o.overlong == OVERLONG_ZERO) s->reward = 0;
    f->tokens += r->n;
    return DS_OK;
}

// G samples of each problem order[0..nprompts) under seed. A problem that comes back within one
// step (an epoch ends inside it) continues its sample indices, so no two samples share a stream.
static int rollout(GrpoRun *g, const GrpoProblems *ps, const int *order, int nprompts, int G,
                   const SampleParams *sp, uint64_t seed, Sample *out, long *tokens, DsErr *e) {
    RolloutItem *items = ds_malloc(sizeof *items * (size_t)nprompts);
    for (int i = 0; i < nprompts; i++) {
        int again = 0;
        for (int j = 0; j < i; j++) again += order[j] == order[i];
        items[i] = (RolloutItem){ps->p[order[i]], ps->ids[order[i]], ps->len[order[i]], again * G};
    }
    Collect f = {g, order, G, out, 0};
    GenConfig c = {.sp = *sp, .max_tokens = g->o.max_tokens, .seed = seed, .eos = g->o.eos,
                   .n_eos = g->o.n_eos, .tok = g->tok, .prefill_chunk = 64};
    GenStats st;
    int rc = rollout_run(g->en, &c, items, nprompts, G, &g->o.grade, collect, &f, &st, e);
    free(items);
    *tokens = f.tokens;
    return rc;
}

// ----------------------------------------------------------------------------
// training forward over samples [a, b): fills tokens/targets/pos, returns T

static int pack(GrpoRun *g, int a, int b) {
    int T = 2;
    for (int i = a; i < b; i++) T = DS_MAX(T, g->s[i].plen + g->s[i].clen - 1);
    T = g->maxT - 1 < T ? g->maxT - 1 : T;
    for (int i = a; i < b; i++) {
        const Sample *s = &g->s[i];
        int L = s->plen + s->clen, row = i - a;
        for (int t = 0; t < T; t++) {
            int n = row * T + t;
            g->tokens[n] = t < L - 1 ? (int)s->ids[t] : 0;
            g->targets[n] = t >= s->plen - 1 && t < L - 1 ? (int)s->ids[t + 1] : -1;
            g->pos[n] = t;
        }
    }
    return T;
}

// Reads the log-probs of the completion tokens of samples [a, b) into flat (at each sample's off).
static void gather(const GrpoRun *g, const float *lpf, int a, int b, int T, double *flat) {
    for (int i = a; i < b; i++) {
        const Sample *s = &g->s[i];
        for (int k = 0; k < s->clen; k++) flat[s->off + k] = lpf[(i - a) * T + s->plen - 1 + k];
    }
}

// ----------------------------------------------------------------------------
// evaluation

static int evaluate(GrpoRun *g, const GrpoProblems *ev, json_t *j, DsErr *e) {
    int n = ev->n, K = g->o.eval_samples;
    int *order = ds_malloc(sizeof(int) * (size_t)n);
    for (int i = 0; i < n; i++) order[i] = i;
    Sample *out = ds_calloc((size_t)n * K, sizeof(Sample));
    SampleParams sp = {g->o.eval_temperature, 1.0, 0};
    long tokens;
    int rc = rollout(g, ev, order, n, K, &sp, g->o.seed, out, &tokens, e); // as ds-eval -m samples
    if (!rc) {
        double fmt = 0, len = 0;
        PasskProblem *pp = ds_malloc(sizeof *pp * (size_t)n);
        for (int i = 0; i < n; i++) {
            int c = 0;
            for (int k = 0; k < K; k++) {
                const Sample *s = &out[i * K + k];
                c += s->correct, fmt += s->formatted, len += s->clen;
            }
            pp[i] = (PasskProblem){K, c, NULL, NULL};
        }
        double pass1 = passk_fraction_mean(pp, n), passk = passk_mean(pp, n, K);
        free(pp);
        json_object_set_new(j, "eval_pass@1", json_real(pass1));
        char key[32];
        snprintf(key, sizeof key, "eval_pass@%d", K);
        json_object_set_new(j, key, json_real(passk));
        json_object_set_new(j, "eval_format_rate", json_real(fmt / (n * K)));
        json_object_set_new(j, "eval_mean_length", json_real(len / (n * K)));
    }
    for (int i = 0; i < n * K; i++) free(out[i].ids);
    free(out), free(order);
    return rc;
}

// ----------------------------------------------------------------------------
// the loop

static void shuffle_order(int *order, int n, uint64_t seed, long epoch) {
    for (int i = 0; i < n; i++) order[i] = i;
    Rng r;
    rng_derive(&r, seed, 0x5348, (uint64_t)epoch);
    for (int i = n - 1; i > 0; i--) {
        int j = (int)rng_below(&r, (uint64_t)i + 1), t = order[i];
        order[i] = order[j], order[j] = t;
    }
}

// On a terminal: the progress line shows the last step's reward and accuracy; a step line stays
// every note_every steps and at the end (with held-out pass@1 when it was measured).
static void report_step(Progress *pg, const json_t *j, long step, long steps, long note_every) {
    double reward = json_real_value(json_object_get(j, "reward_mean"));
    double acc = json_real_value(json_object_get(j, "accuracy"));
    double len = json_real_value(json_object_get(j, "response_length_mean"));
    progress_status(pg, "reward %.3f, accuracy %.3f, length %.1f", reward, acc, len);
    if ((step + 1) % note_every == 0 || step + 1 == steps) {
        char ev[40] = "";
        const json_t *p1 = json_object_get(j, "eval_pass@1");
        if (p1) snprintf(ev, sizeof ev, "  held-out pass@1 %.3f", json_real_value(p1));
        progress_note(pg, "step %ld/%ld  reward %.3f  accuracy %.3f  format %.3f  length %.1f  kl %.4f%s", step + 1,
                      steps, reward, acc, json_real_value(json_object_get(j, "format_rate")), len,
                      json_real_value(json_object_get(j, "kl")), ev);
    }
    progress_update(pg, (double)(step + 1));
}

int grpo_run(GrpoRun *g, const GrpoProblems *ps, const GrpoProblems *ev, int *stopped, DsErr *e) {
    const GrpoOpts *o = &g->o;
    Model_f32 *m = g->pol;
    int P = o->prompts_per_step, G = o->group_size, MB = o->micro_batch;
    int *perm = ds_malloc(sizeof(int) * (size_t)ps->n), *order = ds_malloc(sizeof(int) * (size_t)P);
    double *r = ds_malloc(sizeof(double) * G), *A = ds_malloc(sizeof(double) * G);
    int *offs = ds_malloc(sizeof(int) * (size_t)g->ns), *lens = ds_malloc(sizeof(int) * (size_t)g->ns);
    double *advs = ds_malloc(sizeof(double) * (size_t)g->ns);
    double t_start = ds_now();
    int rc = DS_OK;
    *stopped = 0;
    Progress pg;
    progress_start(&pg, "ds-grpo", (double)o->steps, "steps");
    pg.from = pg.done = (double)g->step;
    long note_every = o->eval_every > 0 ? o->eval_every : DS_MAX(1, o->steps / 10);
    for (; g->step < o->steps; g->step++) {
        long step = g->step;
        json_t *j = json_pack("{s:I}", "step", (json_int_t)(step + 1));
        if (ev && o->eval_every > 0 && step % o->eval_every == 0 && (rc = evaluate(g, ev, j, e))) goto fail;
        // prompts of this step: a pure function of (seed, step)
        for (int i = 0; i < P; i++) {
            long k = step * P + i, epoch = k / ps->n;
            if (i == 0 || k % ps->n == 0) shuffle_order(perm, ps->n, o->seed, epoch);
            order[i] = perm[k % ps->n];
        }
        double t0 = ds_now();
        long rtokens;
        if ((rc = rollout(g, ps, order, P, G, &o->sp, rollout_step_seed(o->seed, step), g->s, &rtokens, e))) goto fail;
        double t_roll = ds_now() - t0;
        // rewards → advantages
        double rsum = 0, rsq = 0, acc = 0, fmt = 0, lang = 0, lmax = 0, lsum = 0, lc = 0, li = 0, refl = 0, rwords = 0;
        int nc = 0, ni = 0, equal = 0;
        long total = 0;
        int nseq = 0;
        for (int p = 0; p < P; p++) {
            int same = 1;
            for (int k = 0; k < G; k++) {
                r[k] = g->s[p * G + k].reward;
                same &= r[k] == r[0];
            }
            equal += same;
            grpo_advantages(r, G, o->adv_norm, A);
            for (int k = 0; k < G; k++) g->s[p * G + k].adv = A[k];
        }
        for (int i = 0; i < g->ns; i++) {
            Sample *s = &g->s[i];
            rsum += s->reward, rsq += s->reward * s->reward, acc += s->correct, fmt += s->formatted;
            lang += s->lang, lsum += s->clen, lmax = fmax(lmax, s->clen);
            refl += s->reflect > 0, rwords += (double)s->reflect;
            if (s->correct) lc += s->clen, nc++;
            else li += s->clen, ni++;
            s->off = (int)total;
            int masked = s->truncated && o->overlong == OVERLONG_MASK;
            offs[i] = s->off, lens[i] = masked ? 0 : s->clen, advs[i] = s->adv;
            total += s->clen;
            nseq += !masked;
        }
        long loss_tokens = 0;
        for (int i = 0; i < g->ns; i++) loss_tokens += lens[i];
        // reference log-probs
        double t1 = ds_now();
        for (int a = 0; a < g->ns && g->has_ref; a += MB) {
            int b = DS_MIN(a + MB, g->ns), T = pack(g, a, b);
            model_forward_f32(&g->ref, &g->ref_acts, g->tokens, g->pos, b - a, T);
            obj_token_logprobs(&g->ref, &g->ref_acts, g->targets, g->lpf, NULL);
            gather(g, g->lpf, a, b, T, g->lp_ref);
        }
        // μ updates against π_old (the sampling policy: log-probs from the first pass)
        GrpoStats gs = {0};
        double loss = 0, ent = 0, norm = 0, lr = o->lr * (o->warmup > 0 && step < o->warmup ? (double)(step + 1) / o->warmup : 1.0);
        for (int ep = 0; ep < o->inner_epochs; ep++) {
            m->be->zero(m->grads, sizeof(float) * m->L.total);
            loss = 0;
            GrpoStats acc_st = {0};
            for (int a = 0; a < g->ns; a += MB) {
                int b = DS_MIN(a + MB, g->ns), T = pack(g, a, b);
                model_forward_f32(m, &g->acts, g->tokens, g->pos, b - a, T);
                obj_token_logprobs(m, &g->acts, g->targets, g->lpf, g->entf);
                gather(g, g->lpf, a, b, T, g->lp);
                if (ep == 0) {
                    gather(g, g->lpf, a, b, T, g->lp_old);
                    for (int i = a; i < b; i++)
                        for (int k = 0; k < g->s[i].clen; k++) ent += g->entf[(i - a) * T + g->s[i].plen - 1 + k];
                }
                GrpoStats st;
                loss += grpo_loss(b - a, offs + a, lens + a, g->lp, g->lp_old, g->lp_ref, advs + a, o->epsilon,
                                  o->beta, o->agg, o->max_tokens, nseq, loss_tokens, g->dlp, &st);
                acc_st.kl += st.kl * st.tokens, acc_st.clipfrac += st.clipfrac * st.tokens;
                acc_st.ratio += st.ratio * st.tokens, acc_st.tokens += st.tokens;
                memset(g->dlpf, 0, sizeof(float) * (size_t)(b - a) * T);
                for (int i = a; i < b; i++)
                    for (int k = 0; k < lens[i]; k++) g->dlpf[(i - a) * T + g->s[i].plen - 1 + k] = (float)g->dlp[offs[i] + k];
                obj_set_dlogprobs(m, &g->acts, g->targets, g->dlpf);
                model_backward_f32(m, &g->acts);
            }
            if (acc_st.tokens) gs = (GrpoStats){acc_st.kl / acc_st.tokens, acc_st.clipfrac / acc_st.tokens,
                                                 acc_st.ratio / acc_st.tokens, acc_st.tokens};
            norm = grad_global_norm(&m->L, m->grads);
            if (!isfinite(norm)) {
                rc = ds_errf(e, "step %ld: gradient norm is not finite", step);
                goto fail;
            }
            adamw_step(&g->opt, &m->L, m->params, m->grads, lr, o->clip > 0 && norm > o->clip ? o->clip / norm : 1.0);
            model_params_changed_f32(m);
        }
        if (g->has_ref && o->ref_refresh > 0 && (step + 1) % o->ref_refresh == 0) {
            m->be->copy(g->ref.params, m->params, sizeof(float) * m->L.total);
            model_params_changed_f32(&g->ref);
        }
        double t_upd = ds_now() - t1, n = g->ns;
        double mean = rsum / n;
        json_t *row = json_pack("{s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:f}",
            "reward_mean", mean, "reward_std", sqrt(fmax(rsq / n - mean * mean, 0)), "accuracy", acc / n,
            "format_rate", fmt / n, "lang_consistency", lang / n, "response_length_mean", lsum / n,
            "response_length_max", lmax, "length_correct", nc ? lc / nc : 0.0, "length_incorrect", ni ? li / ni : 0.0,
            "kl", gs.kl, "clip_fraction", gs.clipfrac, "ratio_mean", gs.ratio, "entropy", total ? ent / total : 0.0,
            "all_equal_groups", (double)equal / P, "loss", loss, "grad_norm", norm, "lr", lr,
            "rollout_s", t_roll, "update_s", t_upd, "rollout_tokens_per_s", t_roll > 0 ? rtokens / t_roll : 0.0,
            "time", ds_now() - t_start);
        json_object_set_new(row, "reflection_rate", json_real(refl / n));
        json_object_set_new(row, "reflection_words", json_real(rwords / n));
        json_object_update(j, row);
        json_decref(row);
        int last = step + 1 == o->steps;
        if (ev && o->eval_every > 0 && last && (rc = evaluate(g, ev, j, e))) goto fail;
        if (o->metrics) {
            jsonl_write(o->metrics, j);
            fflush(o->metrics);
        }
        report_step(&pg, j, step, o->steps, note_every);
        json_decref(j);
        j = NULL;
        int stop = (o->stop && *o->stop) || (o->stop_at > 0 && step + 1 == o->stop_at);
        if (stop || last || (o->ckpt_every > 0 && (step + 1) % o->ckpt_every == 0)) {
            g->step++;
            rc = save(g, e);
            g->step--;
            if (rc) goto fail;
        }
        if (stop) {
            g->step++;
            *stopped = 1;
            break;
        }
        continue;
    fail:
        json_decref(j);
        break;
    }
    progress_end(&pg, (double)g->step);
    free(perm), free(order), free(r), free(A), free(offs), free(lens), free(advs);
    return rc;
}
