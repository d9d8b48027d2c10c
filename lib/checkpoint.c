// checkpoint.c — checkpoint tars and exchange folders.
#include "checkpoint.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "atomic_file.h"
#include "cli.h"

static int read_dir(TarArchive *a, const char *dir, DsErr *e) {
    static const char *names[] = {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"};
    memset(a, 0, sizeof *a);
    a->m = ds_calloc(DS_ARRAY_LEN(names), sizeof(TarMember));
    for (size_t i = 0; i < DS_ARRAY_LEN(names); i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        struct stat sb;
        if (stat(path, &sb) != 0) {
            if (i < 2) return ds_errf(e, "%s: missing %s", dir, names[i]);
            continue;
        }
        char *data;
        size_t len;
        if (ds_read_file(path, &data, &len, e)) return DS_ERR;
        // Members are 64-byte aligned so tensors can be used in place.
        TarMember *m = &a->m[a->n++];
        m->name = ds_strdup(names[i]);
        m->data = ds_aligned_alloc(len + 1);
        memcpy(m->data, data, len);
        m->size = len;
        free(data);
    }
    return DS_OK;
}

// Tensors a Hugging Face DeepSeek-V3 checkpoint carries for MTP layers that ds shares instead.
static int shared_copy(const ModelLayout *L, const char *name) {
    for (int k = 0; k < L->nmtp; k++) {
        char a[128], b[128];
        snprintf(a, sizeof a, "model.layers.%d.embed_tokens.weight", L->nlayers + k);
        snprintf(b, sizeof b, "model.layers.%d.shared_head.head.weight", L->nlayers + k);
        if (!strcmp(name, a) || !strcmp(name, b)) return 1;
    }
    return 0;
}

static int check_weights(const Checkpoint *ck, DsErr *e) {
    ModelLayout L;
    layout_build(&L, &ck->cfg);
    int rc = DS_OK;
    for (int i = 0; i < L.np && rc == DS_OK; i++) {
        const ParamInfo *p = &L.p[i];
        const StTensor *t = st_find(&ck->weights, p->name);
        if (!t) {
            rc = ds_errf(e, "%s: model.safetensors has no tensor '%s' (does config.json match?)", ck->path, p->name);
            break;
        }
        int ok = t->ndim == p->ndim && t->shape[0] == p->shape[0] && (p->ndim == 1 || t->shape[1] == p->shape[1]);
        if (!ok)
            rc = ds_errf(e, "%s: tensor '%s' has shape [%lld%s%lld], config.json needs [%lld%s%lld]", ck->path,
                         p->name, (long long)t->shape[0], t->ndim > 1 ? ", " : "",
                         t->ndim > 1 ? (long long)t->shape[1] : 0LL, (long long)p->shape[0],
                         p->ndim > 1 ? ", " : "", p->ndim > 1 ? (long long)p->shape[1] : 0LL);
        else if (t->dtype != ST_F32 && t->dtype != ST_BF16 && t->dtype != ST_F16)
            rc = ds_errf(e, "%s: tensor '%s' has dtype %s (F32, BF16 or F16 expected)", ck->path, p->name,
                         st_dtype_name(t->dtype));
    }
    for (int i = 0; i < ck->weights.n && rc == DS_OK; i++) {
        const char *name = ck->weights.t[i].name;
        if (!layout_find(&L, name) && !shared_copy(&L, name))
            rc = ds_errf(e, "%s: unexpected tensor '%s' for this config.json", ck->path, name);
    }
    layout_free(&L);
    return rc;
}

int ckpt_open(Checkpoint *ck, const char *path, DsErr *e) {
    memset(ck, 0, sizeof *ck);
    ck->path = ds_strdup(path);
    struct stat sb;
    if (stat(path, &sb) != 0) {
        ds_errf(e, "%s: %s", path, strerror(errno));
        goto fail;
    }
    if (S_ISDIR(sb.st_mode) ? read_dir(&ck->files, path, e) : tar_read_all(path, &ck->files, e)) goto fail;
    const TarMember *cfg = tar_find(&ck->files, "config.json");
    const TarMember *w = tar_find(&ck->files, "model.safetensors");
    if (!cfg || !w) {
        ds_errf(e, "%s: not a ds checkpoint (needs config.json and model.safetensors)", path);
        goto fail;
    }
    char where[4200];
    snprintf(where, sizeof where, "%s: config.json", path);
    if (config_from_string(&ck->cfg, (const char *)cfg->data, cfg->size, where, e)) goto fail;
    snprintf(where, sizeof where, "%s: model.safetensors", path);
    if (st_parse(&ck->weights, w->data, w->size, where, e)) goto fail;
    if (check_weights(ck, e)) goto fail;
    const TarMember *st = tar_find(&ck->files, "state.json");
    if (st) {
        json_error_t je;
        ck->state = json_loadb((const char *)st->data, st->size, 0, &je);
        if (!json_is_object(ck->state)) {
            ds_errf(e, "%s: state.json:%d: invalid: %s", path, je.line, ck->state ? "not an object" : je.text);
            goto fail;
        }
    }
    return DS_OK;
fail:
    ckpt_close(ck);
    return DS_ERR;
}

void ckpt_close(Checkpoint *ck) {
    if (!ck) return;
    free(ck->path);
    tar_free(&ck->files);
    st_free(&ck->weights);
    json_decref(ck->state);
    memset(ck, 0, sizeof *ck);
}

int ckpt_load_weights(const Checkpoint *ck, Model_f32 *m, DsErr *e) {
    DS_CHECK(config_equal(&m->L.cfg, &ck->cfg));
    for (int i = 0; i < m->L.np; i++) {
        const ParamInfo *p = &m->L.p[i];
        const StTensor *t = st_find(&ck->weights, p->name);
        if (st_read_f32(&ck->weights, t, m->params + p->offset, p->numel, e))
            return ds_err_prefix(e, "%s", ck->path);
    }
    return DS_OK;
}

int ckpt_load_optimizer(const Checkpoint *ck, AdamW *o, DsErr *e) {
    const TarMember *f = tar_find(&ck->files, "optimizer.safetensors");
    if (!f || !ck->state) return ds_errf(e, "%s: no optimizer state (not a training checkpoint)", ck->path);
    Safetensors st;
    if (st_parse(&st, f->data, f->size, "optimizer.safetensors", e)) return ds_err_prefix(e, "%s", ck->path);
    const StTensor *m = st_find(&st, "adamw.exp_avg"), *v = st_find(&st, "adamw.exp_avg_sq");
    int rc = DS_OK;
    if (!m || !v || st_numel(m) != o->n || st_numel(v) != o->n || m->dtype != ST_F32 || v->dtype != ST_F32)
        rc = ds_errf(e, "%s: optimizer state does not match the model", ck->path);
    else {
        memcpy(o->m, st.data + m->begin, sizeof(float) * o->n);
        memcpy(o->v, st.data + v->begin, sizeof(float) * o->n);
        o->t = (long)json_integer_value(json_object_get(ck->state, "adam_t"));
    }
    st_free(&st);
    return rc;
}

const TarMember *ckpt_member(const Checkpoint *ck, const char *name) { return tar_find(&ck->files, name); }

const char *ckpt_tokenizer_json(const Checkpoint *ck, size_t *len) {
    const TarMember *t = tar_find(&ck->files, "tokenizer.json");
    *len = t ? t->size : 0;
    return t ? (const char *)t->data : NULL;
}

void ckpt_weights_safetensors(const Model_f32 *m, DsBuf *out) {
    StWriter *w = st_writer_new();
    for (int i = 0; i < m->L.np; i++) {
        const ParamInfo *p = &m->L.p[i];
        st_writer_add(w, p->name, ST_F32, p->ndim, p->shape, m->params + p->offset);
    }
    st_writer_meta(w, "format", "pt");
    st_writer_meta(w, "producer", "ds");
    st_writer_meta(w, "ds_version", ds_version());
    st_writer_serialize(w, out);
    st_writer_free(w);
}

static char *config_text(const ModelConfig *c, size_t *len) {
    json_t *j = config_to_json(c);
    char *s = json_dumps(j, JSON_INDENT(2));
    json_decref(j);
    *len = strlen(s);
    return s;
}

int ckpt_save(const char *path, const Model_f32 *m, const AdamW *opt, const char *tokenizer_json,
              size_t tokenizer_len, const json_t *state, const TarMember *extra, int nextra, DsErr *e) {
    TarWriter *w = tar_writer_open(path, e);
    if (!w) return DS_ERR;
    size_t clen;
    char *cfg = config_text(&m->L.cfg, &clen);
    DsBuf weights = {0}, optim = {0};
    ckpt_weights_safetensors(m, &weights);
    int rc = tar_writer_add(w, "config.json", cfg, clen, e);
    if (!rc) rc = tar_writer_add(w, "model.safetensors", weights.data, weights.len, e);
    if (!rc && tokenizer_json) rc = tar_writer_add(w, "tokenizer.json", tokenizer_json, tokenizer_len, e);
    if (!rc && opt) {
        // Moments in the flat parameter layout (padding included), restored by ckpt_load_optimizer.
        StWriter *sw = st_writer_new();
        int64_t shape[1] = {(int64_t)opt->n};
        st_writer_add(sw, "adamw.exp_avg", ST_F32, 1, shape, opt->m);
        st_writer_add(sw, "adamw.exp_avg_sq", ST_F32, 1, shape, opt->v);
        st_writer_serialize(sw, &optim);
        st_writer_free(sw);
        rc = tar_writer_add(w, "optimizer.safetensors", optim.data, optim.len, e);
    }
    if (!rc && state) {
        char *s = json_dumps(state, JSON_INDENT(2) | JSON_SORT_KEYS);
        rc = tar_writer_add(w, "state.json", s, strlen(s), e);
        free(s);
    }
    for (int i = 0; i < nextra && !rc; i++) rc = tar_writer_add(w, extra[i].name, extra[i].data, extra[i].size, e);
    free(cfg);
    dsbuf_free(&weights);
    dsbuf_free(&optim);
    if (rc) {
        tar_writer_abort(w);
        return DS_ERR;
    }
    return tar_writer_close(w, e);
}

static int write_file(const char *dir, const char *name, const void *data, size_t len, DsErr *e) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    AtomicFile f;
    if (atomic_open(&f, path, e)) return DS_ERR;
    if (fwrite(data, 1, len, f.f) != len) {
        atomic_abort(&f);
        return ds_errf(e, "%s: write error", path);
    }
    return atomic_commit(&f, e);
}

int ckpt_export_dir(const Checkpoint *ck, const char *dir, DsErr *e) {
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) return ds_errf(e, "%s: %s", dir, strerror(errno));
    static const char *names[] = {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"};
    for (size_t i = 0; i < DS_ARRAY_LEN(names); i++) {
        const TarMember *m = tar_find(&ck->files, names[i]);
        if (m && write_file(dir, names[i], m->data, m->size, e)) return DS_ERR;
    }
    return DS_OK;
}
