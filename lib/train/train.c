// train.c — the training loop: accumulation, clipping, AdamW, schedules, bias balancing, metrics,
// validation, checkpoints.
#include "train/train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/cli.h"
#include "core/jsonl.h"
#include "core/progress.h"
#include "nn/moe.h"
#include "nn/ops.h"
#include "math/precision.h"
#include "core/rng.h"

void trainer_init(Trainer *t, Model_f32 *m, const TrainOpts *o) {
    memset(t, 0, sizeof *t);
    t->model = m;
    t->o = *o;
    size_t N = (size_t)o->batch * o->seq_len;
    acts_init_f32(&t->acts, m, o->batch, o->seq_len);
    adamw_init(&t->opt, m->L.total, o->beta1, o->beta2, o->eps, o->weight_decay);
    t->tokens = ds_malloc(sizeof(int) * N);
    t->targets = ds_malloc(sizeof(int) * N);
    t->pos = ds_malloc(sizeof(int) * N);
}

void trainer_free(Trainer *t) {
    acts_free_f32(&t->acts);
    adamw_free(&t->opt);
    free(t->tokens), free(t->targets), free(t->pos);
}

int trainer_resume(Trainer *t, const Checkpoint *ck, DsErr *e) {
    if (ckpt_load_optimizer(ck, &t->opt, e)) return DS_ERR;
    t->step = (long)json_integer_value(json_object_get(ck->state, "step"));
    if (t->step < 0 || t->step > t->o.steps)
        return ds_errf(e, "%s: state.json step %ld is outside this run's %ld steps", ck->path, t->step, t->o.steps);
    return DS_OK;
}

int trainer_save(Trainer *t, DsErr *e) {
    if (!t->o.ckpt_path) return DS_OK;
    json_t *state = json_pack("{s:I,s:I,s:s}", "step", (json_int_t)t->step, "adam_t", (json_int_t)t->opt.t,
                              "ds_version", ds_version());
    if (t->o.record) json_object_set(state, "run", t->o.record);
    // The data cursor: batches are a pure function of (seed, step, micro), so the step is the cursor.
    json_object_set_new(state, "data_cursor", json_pack("{s:I}", "step", (json_int_t)t->step));
    int rc = ckpt_save(t->o.ckpt_path, t->model, &t->opt, t->o.tokenizer_json, t->o.tokenizer_len, state, t->o.extra, t->o.nextra, e);
    json_decref(state);
    return rc;
}

// Auxiliary-loss-free balancing (V3): b_i += γ · sign(mean load − load_i) per MoE layer, from the
// loads of the whole step; the bias only shifts selection and never receives a gradient.
static void update_bias(Trainer *t, double gamma, json_t *loads) {
    Model_f32 *m = t->model;
    const ModelConfig *c = &m->L.cfg;
    int E = DS_MAX(c->n_routed_experts, 1);
    for (int l = 0; l < m->L.nlayers + m->L.nmtp; l++) {
        const LayerLayout *y = &m->L.layers[l];
        long *load = t->acts.load + (size_t)l * E;
        if (!y->moe) continue;
        json_array_append_new(loads, json_real(moe_bias_update_f32(m->params + y->router_bias, load, E, gamma)));
    }
    memset(t->acts.load, 0, sizeof(long) * (size_t)(m->L.nlayers + m->L.nmtp) * E);
}

static double train_flops_per_token(const Model_f32 *m, int T) {
    const ModelConfig *c = &m->L.cfg;
    int layers = m->L.nlayers + m->L.nmtp;
    // attention core as computed (full T×T products): QKᵀ and PV, 2 flops per multiply-add
    double attn = 2.0 * T * c->num_attention_heads * (config_qk_head_dim(c) + config_v_head_dim(c)) * layers;
    return 3.0 * (layout_matmul_flops_per_token(&m->L, 1) + attn);
}

static int validate(Trainer *t, BatchFn val, void *ctx, double *loss, DsErr *e) {
    const TrainOpts *o = &t->o;
    double sum = 0;
    long n = 0;
    for (long i = 0; i < o->eval_batches; i++) {
        if (val(ctx, 0, (int)i, t->tokens, t->targets, t->pos, e)) return DS_ERR;
        ModelLossStats st;
        model_forward_f32(t->model, &t->acts, t->tokens, t->pos, o->batch, o->seq_len);
        model_loss_f32(t->model, &t->acts, t->targets, 0, 0, 1, &st);
        sum += st.loss * st.ntokens;
        n += st.ntokens;
    }
    // Validation forwards must not move the balancing bias.
    memset(t->acts.load, 0, sizeof(long) * (size_t)(t->model->L.nlayers + t->model->L.nmtp) *
                                DS_MAX(t->model->L.cfg.n_routed_experts, 1));
    *loss = n ? sum / n : 0;
    return DS_OK;
}

// On a terminal: a progress line (steps, rate, ETA, the last loss) and a step line that stays,
// every eval_every steps (or every tenth of the run) and at the end.
static void report_step(Progress *pg, const TrainOpts *o, long step, const ModelLossStats *sum, double vl,
                        double lr, double norm, double tok_s) {
    long every = o->eval_every > 0 ? o->eval_every : DS_MAX(1, o->steps / 10);
    progress_status(pg, "loss %.4f, %.0f tok/s", sum->loss, tok_s);
    if ((step + 1) % every == 0 || step + 1 == o->steps) {
        char val[40] = "";
        if (!isnan(vl)) snprintf(val, sizeof val, "  val %.4f", vl);
        progress_note(pg, "step %ld/%ld  loss %.4f%s  lr %.2e  grad norm %.3f  %.0f tok/s", step + 1, o->steps,
                      sum->loss, val, lr, norm, tok_s);
    }
    progress_update(pg, (double)(step + 1));
}

static int run_steps(Trainer *t, BatchFn train, void *train_ctx, BatchFn val, void *val_ctx, int *stopped,
                     Progress *pg, DsErr *e) {
    const TrainOpts *o = &t->o;
    Model_f32 *m = t->model;
    double flops_tok = train_flops_per_token(m, o->seq_len), t0 = ds_now();
    long tokens_per_step = (long)o->batch * o->seq_len * o->accum;
    for (; t->step < o->steps; t->step++) {
        double ts = ds_now();
        long step = t->step;
        double lambda = schedule_switch(o->mtp_lambda, o->mtp_lambda_late, o->mtp_switch, step, o->steps);
        double gamma = schedule_switch(o->bias_gamma, o->bias_gamma_late, o->bias_switch, step, o->steps);
        m->be->zero(m->grads, sizeof(float) * m->L.total);
        ModelLossStats sum = {0};
        for (int micro = 0; micro < o->accum; micro++) {
            if (train(train_ctx, step, micro, t->tokens, t->targets, t->pos, e)) return DS_ERR;
            ModelLossStats st;
            model_forward_f32(m, &t->acts, t->tokens, t->pos, o->batch, o->seq_len);
            if (o->loss) {
                if (o->loss(o->loss_ctx, m, &t->acts, t->targets, 1.0 / o->accum, &st, e)) return DS_ERR;
            } else {
                model_loss_f32(m, &t->acts, t->targets, lambda, o->balance_alpha, 1.0 / o->accum, &st);
            }
            model_backward_f32(m, &t->acts);
            sum.loss += st.loss / o->accum, sum.mtp_loss += st.mtp_loss / o->accum;
            sum.balance_loss += st.balance_loss / o->accum, sum.ntokens += st.ntokens;
        }
        double norm = grad_global_norm(&m->L, m->grads);
        double clip = o->clip > 0 && norm > o->clip ? o->clip / norm : 1.0;
        double lr = schedule_lr(&o->sched, step);
        if (!isfinite(norm)) return ds_errf(e, "step %ld: gradient norm is not finite (loss %g)", step, sum.loss);
        adamw_step(&t->opt, &m->L, m->params, m->grads, lr, clip);
        json_t *loads = json_array();
        update_bias(t, gamma, loads);
        model_params_changed_f32(m);
        double dt = ds_now() - ts, vl = NAN;
        if (o->metrics) {
            json_t *j = json_pack("{s:I,s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:o,s:f}", "step", (json_int_t)(step + 1),
                                  "loss", sum.loss, "mtp_loss", sum.mtp_loss, "balance_loss", sum.balance_loss,
                                  "lr", lr, "grad_norm", norm, "mtp_lambda", lambda, "bias_gamma", gamma,
                                  "tokens_per_s", tokens_per_step / dt,
                                  "mfu", o->peak_gflops > 0 ? flops_tok * tokens_per_step / dt / (o->peak_gflops * 1e9) : 0,
                                  "expert_load_max_over_mean", loads, "time", ds_now() - t0);
            json_object_set_new(j, "precision", json_string(precision_name(m->precision)));
            if (o->eval_every > 0 && val && ((step + 1) % o->eval_every == 0 || step + 1 == o->steps)) {
                if (validate(t, val, val_ctx, &vl, e)) {
                    json_decref(j);
                    return DS_ERR;
                }
                json_object_set_new(j, "val_loss", json_real(vl));
            }
            jsonl_write(o->metrics, j);
            fflush(o->metrics);
            json_decref(j);
        } else {
            json_decref(loads);
        }
        report_step(pg, o, step, &sum, vl, lr, norm, tokens_per_step / dt);
        int last = t->step + 1 == o->steps;
        int stop = (o->stop && *o->stop) || (o->stop_at > 0 && step + 1 == o->stop_at);
        if (stop || last || (o->ckpt_every > 0 && (step + 1) % o->ckpt_every == 0)) {
            t->step++;
            if (trainer_save(t, e)) return DS_ERR;
            t->step--;
        }
        if (stop) {
            t->step++;
            *stopped = 1;
            return DS_OK;
        }
    }
    return DS_OK;
}

int trainer_run(Trainer *t, BatchFn train, void *train_ctx, BatchFn val, void *val_ctx, int *stopped,
                DsErr *e) {
    *stopped = 0;
    Progress pg;
    progress_start(&pg, t->o.label ? t->o.label : "train", (double)t->o.steps, "steps");
    pg.from = pg.done = (double)t->step;
    int rc = run_steps(t, train, train_ctx, val, val_ctx, stopped, &pg, e);
    progress_end(&pg, (double)t->step);
    return rc;
}

int window_batch(void *ctx, long step, int micro, int *tokens, int *targets, int *pos, DsErr *e) {
    WindowSource *w = ctx;
    uint64_t ntok = dataset_ntokens(w->data);
    int T = w->seq_len;
    if (ntok < (uint64_t)T + 1) return ds_errf(e, "dataset has %llu tokens, fewer than seq_len+1 = %d",
                                               (unsigned long long)ntok, T + 1);
    uint64_t span = ntok - (uint64_t)T;
    for (int b = 0; b < w->batch; b++) {
        uint64_t start;
        if (w->sequential) {
            start = ((uint64_t)micro * w->batch + b) * (uint64_t)T % span;
        } else {
            Rng r;
            rng_derive(&r, w->seed, (uint64_t)step, (uint64_t)micro * 65536u + (uint64_t)b);
            start = rng_below(&r, span);
        }
        if (dataset_read(w->data, start, (size_t)T + 1, w->buf, e)) return DS_ERR;
        for (int i = 0; i < T; i++) {
            int n = b * T + i;
            tokens[n] = (int)w->buf[i];
            targets[n] = (int)w->buf[i + 1];
            pos[n] = i;
        }
    }
    return DS_OK;
}

double gemm_ceiling_gflops(void) {
    int n = 1024;
    float *a = ds_aligned_alloc(sizeof(float) * n * n), *b = ds_aligned_alloc(sizeof(float) * n * n);
    float *c = ds_aligned_alloc(sizeof(float) * n * n);
    for (int i = 0; i < n * n; i++) a[i] = (float)(i % 7) * 0.1f, b[i] = (float)(i % 5) * 0.1f;
    linear_forward_f32(c, a, b, NULL, n, n, n); // warm-up
    double best = 0;
    for (int rep = 0; rep < 3; rep++) {
        double t0 = ds_now();
        linear_forward_f32(c, a, b, NULL, n, n, n);
        double g = 2.0 * n * n * n / (ds_now() - t0) / 1e9;
        best = g > best ? g : best;
    }
    free(a), free(b), free(c);
    return best;
}
