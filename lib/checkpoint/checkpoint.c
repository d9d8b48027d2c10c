// checkpoint.c — checkpoint tars and Hugging Face folders: mapped, validated, loaded, exported.
#include "checkpoint/checkpoint.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/atomic_file.h"
#include "core/cli.h"
#include "math/half.h"
#include "text/tokenizer.h"

#define INDEX_JSON "model.safetensors.index.json"

// Small files of a Hugging Face folder that travel with the model (read into memory).
static const char *side_files[] = {"config.json",           "tokenizer.json",
                                   "tokenizer_config.json", "generation_config.json",
                                   "chat_template.jinja",   "special_tokens_map.json",
                                   INDEX_JSON};

// ---------------------------------------------------------------------------------------------
// Gathering the files: a tar is mapped and its members used in place; a folder's small files are
// read and its safetensors files mapped.

static TarMember *add_member(Checkpoint *ck, const char *name, uint8_t *data, size_t size, int owned) {
    TarArchive *a = &ck->files;
    a->m = ds_realloc(a->m, sizeof *a->m * (size_t)(a->n + 1));
    ck->owned = ds_realloc(ck->owned, (size_t)(a->n + 1));
    ck->owned[a->n] = (char)owned;
    TarMember *m = &a->m[a->n++];
    m->name = ds_strdup(name);
    m->data = data;
    m->size = size;
    return m;
}

static int map_file(Checkpoint *ck, const char *path, const uint8_t **buf, size_t *len, DsErr *e) {
    if (tar_map_file(path, buf, len, e)) return DS_ERR;
    ck->maps = ds_realloc(ck->maps, sizeof *ck->maps * (size_t)(ck->nmaps + 1));
    ck->map_lens = ds_realloc(ck->map_lens, sizeof *ck->map_lens * (size_t)(ck->nmaps + 1));
    ck->maps[ck->nmaps] = *buf;
    ck->map_lens[ck->nmaps++] = *len;
    return DS_OK;
}

static int read_tar(Checkpoint *ck, const char *path, DsErr *e) {
    const uint8_t *buf;
    size_t len;
    if (map_file(ck, path, &buf, &len, e)) return DS_ERR;
    TarSpan *spans;
    int n;
    if (tar_index(buf, len, path, &spans, &n, e) == DS_OK) {
        for (int i = 0; i < n; i++)
            add_member(ck, spans[i].name, (uint8_t *)(buf + spans[i].offset), (size_t)spans[i].size, 0);
        tar_spans_free(spans, n);
        return DS_OK;
    }
    // Not a plain tar (compressed, say): libarchive reads it into memory instead.
    TarArchive a;
    if (tar_read_all(path, &a, e)) return DS_ERR;
    for (int i = 0; i < a.n; i++) {
        add_member(ck, a.m[i].name, a.m[i].data, a.m[i].size, 1);
        free(a.m[i].name);
    }
    free(a.m);
    return DS_OK;
}

static int exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0;
}

// A shard's file name as index.json gives it: a plain name inside the folder.
static int plain_name(const char *s) {
    return *s && !strchr(s, '/') && strcmp(s, ".") && strcmp(s, "..");
}

static int read_dir(Checkpoint *ck, const char *dir, DsErr *e) {
    char path[4096];
    for (size_t i = 0; i < DS_ARRAY_LEN(side_files); i++) {
        snprintf(path, sizeof path, "%s/%s", dir, side_files[i]);
        if (!exists(path)) continue;
        char *data;
        size_t len;
        if (ds_read_file(path, &data, &len, e)) return DS_ERR;
        add_member(ck, side_files[i], (uint8_t *)data, len, 1);
    }
    if (!tar_find(&ck->files, "config.json")) return ds_errf(e, "%s: missing config.json", dir);
    const TarMember *ix = tar_find(&ck->files, INDEX_JSON);
    if (!ix) {
        snprintf(path, sizeof path, "%s/model.safetensors", dir);
        if (!exists(path))
            return ds_errf(e, "%s: missing model.safetensors (or %s with its shards)", dir, INDEX_JSON);
        const uint8_t *buf;
        size_t len;
        if (map_file(ck, path, &buf, &len, e)) return DS_ERR;
        add_member(ck, "model.safetensors", (uint8_t *)buf, len, 0);
        return DS_OK;
    }
    // Map every shard the index names (validated in full by open_shards).
    json_error_t je;
    json_t *j = json_loadb((const char *)ix->data, ix->size, 0, &je);
    const json_t *wm = json_object_get(j, "weight_map");
    int rc = DS_OK;
    if (!json_is_object(wm)) {
        rc = ds_errf(e, "%s/%s: %s", dir, INDEX_JSON, j ? "needs a \"weight_map\" object" : je.text);
        goto done;
    }
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)wm, key, v) {
        const char *f = json_string_value(v);
        if (!f || !plain_name(f)) {
            rc = ds_errf(e, "%s/%s: tensor '%s': the shard must be a file name in the folder", dir, INDEX_JSON, key);
            goto done;
        }
        if (tar_find(&ck->files, f)) continue;
        snprintf(path, sizeof path, "%s/%s", dir, f);
        if (!exists(path)) {
            rc = ds_errf(e, "%s/%s: tensor '%s' is in %s, which does not exist", dir, INDEX_JSON, key, f);
            goto done;
        }
        const uint8_t *buf;
        size_t len;
        if ((rc = map_file(ck, path, &buf, &len, e))) goto done;
        add_member(ck, f, (uint8_t *)buf, len, 0);
    }
done:
    json_decref(j);
    return rc;
}

// ---------------------------------------------------------------------------------------------
// The weights: one safetensors file or the shards of index.json.

static CkptShard *add_shard(Checkpoint *ck, const char *file, const TarMember *m, DsErr *e) {
    ck->shards = ds_realloc(ck->shards, sizeof *ck->shards * (size_t)(ck->nshards + 1));
    CkptShard *s = &ck->shards[ck->nshards];
    memset(s, 0, sizeof *s);
    char where[4200];
    snprintf(where, sizeof where, "%s: %s", ck->path, file);
    if (st_parse(&s->st, m->data, m->size, where, e)) return NULL;
    s->file = ds_strdup(file);
    ck->nshards++;
    return s;
}

const StTensor *ckpt_tensor(const Checkpoint *ck, const char *name, const Safetensors **in) {
    for (int i = 0; i < ck->nshards; i++) {
        const StTensor *t = st_find(&ck->shards[i].st, name);
        if (t) {
            if (in) *in = &ck->shards[i].st;
            return t;
        }
    }
    return NULL;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int open_shards(Checkpoint *ck, DsErr *e) {
    const TarMember *ix = tar_find(&ck->files, INDEX_JSON);
    if (!ix) {
        const TarMember *w = tar_find(&ck->files, "model.safetensors");
        if (!w) return ds_errf(e, "%s: not a ds checkpoint (needs config.json and model.safetensors)", ck->path);
        return add_shard(ck, "model.safetensors", w, e) ? DS_OK : DS_ERR;
    }
    json_error_t je;
    json_t *j = json_loadb((const char *)ix->data, ix->size, JSON_REJECT_DUPLICATES, &je);
    const json_t *wm = json_object_get(j, "weight_map");
    int rc = DS_OK;
    const char **files = NULL;
    size_t nf = 0;
    if (!json_is_object(wm)) {
        rc = ds_errf(e, "%s: %s:%d: %s", ck->path, INDEX_JSON, j ? 1 : je.line,
                     j ? "needs a \"weight_map\" object" : je.text);
        goto done;
    }
    // The shards in name order (model-00001-of-0000N first).
    files = ds_calloc(json_object_size(wm) + 1, sizeof *files);
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)wm, key, v) {
        const char *f = json_string_value(v);
        if (!f || !plain_name(f)) {
            rc = ds_errf(e, "%s: %s: tensor '%s': the shard must be a file name", ck->path, INDEX_JSON, key);
            goto done;
        }
        size_t k = 0;
        while (k < nf && strcmp(files[k], f)) k++;
        if (k == nf) files[nf++] = f;
    }
    qsort(files, nf, sizeof *files, cmp_str);
    for (size_t i = 0; i < nf; i++) {
        const TarMember *m = tar_find(&ck->files, files[i]);
        if (!m) {
            rc = ds_errf(e, "%s: %s names shard %s, which is missing", ck->path, INDEX_JSON, files[i]);
            goto done;
        }
        CkptShard *s = add_shard(ck, files[i], m, e);
        if (!s) {
            rc = DS_ERR;
            goto done;
        }
        // Every tensor of the shard is listed for it, and in no other shard.
        for (int t = 0; t < s->st.n; t++) {
            const char *name = s->st.t[t].name;
            const char *want = json_string_value(json_object_get(wm, name));
            for (int o = 0; o < ck->nshards - 1; o++)
                if (st_find(&ck->shards[o].st, name)) {
                    rc = ds_errf(e, "%s: tensor '%s' is stored twice: in %s and in %s", ck->path, name,
                                 ck->shards[o].file, s->file);
                    goto done;
                }
            if (!want) {
                rc = ds_errf(e, "%s: %s holds tensor '%s', which %s does not list", ck->path, s->file, name, INDEX_JSON);
                goto done;
            }
            if (strcmp(want, s->file)) {
                rc = ds_errf(e, "%s: tensor '%s' is in %s, but %s says %s", ck->path, name, s->file, INDEX_JSON, want);
                goto done;
            }
        }
    }
    json_object_foreach((json_t *)wm, key, v) if (!ckpt_tensor(ck, key, NULL)) {
        rc = ds_errf(e, "%s: %s lists tensor '%s' in %s, which does not hold it", ck->path, INDEX_JSON, key,
                     json_string_value(v));
        goto done;
    }
done:
    free(files);
    json_decref(j);
    return rc;
}

// ---------------------------------------------------------------------------------------------
// Validation against the config's layout

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

// "[32]", "[4, 8, 2]": every dimension, as many as there are.
static const char *shape_text(char *buf, size_t n, int ndim, const int64_t *shape) {
    size_t k = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < ndim && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (k < n) snprintf(buf + k, n - k, "]");
    return buf;
}

static int is_fp8(StDtype d) { return d == ST_F8_E4M3 || d == ST_F8_E5M2; }

// The block scales of an FP8 weight "X.weight" are "X.weight_scale_inv".
static const StTensor *scale_of(const Checkpoint *ck, const char *name, const Safetensors **in) {
    char s[160];
    snprintf(s, sizeof s, "%s_scale_inv", name);
    return ckpt_tensor(ck, s, in);
}

// The weight a "NAME_scale_inv" tensor scales, if that weight is stored in FP8.
static int scale_for_fp8(const Checkpoint *ck, const char *name) {
    size_t n = strlen(name), k = strlen("_scale_inv");
    if (n <= k || strcmp(name + n - k, "_scale_inv") || n - k >= 160) return 0;
    char w[160];
    memcpy(w, name, n - k);
    w[n - k] = 0;
    const StTensor *t = ckpt_tensor(ck, w, NULL);
    return t && is_fp8(t->dtype);
}

static int check_tensor(const Checkpoint *ck, const ParamInfo *p, const StTensor *t, DsErr *e) {
    int ok = t->ndim == p->ndim && t->shape[0] == p->shape[0] && (p->ndim == 1 || t->shape[1] == p->shape[1]);
    char has[200], needs[64];
    if (!ok)
        return ds_errf(e, "%s: tensor '%s' has shape %s, config.json needs %s", ck->path, p->name,
                       shape_text(has, sizeof has, t->ndim, t->shape), shape_text(needs, sizeof needs, p->ndim, p->shape));
    if (is_fp8(t->dtype)) {
        const StTensor *s = t->ndim == 2 ? scale_of(ck, p->name, NULL) : NULL;
        if (!s)
            return ds_errf(e, "%s: tensor '%s' has dtype %s but no '%s_scale_inv' block scales", ck->path,
                           p->name, st_dtype_name(t->dtype), p->name);
        int64_t sr = (t->shape[0] + ck->fp8_block[0] - 1) / ck->fp8_block[0];
        int64_t sc = (t->shape[1] + ck->fp8_block[1] - 1) / ck->fp8_block[1];
        if (s->ndim != 2 || s->shape[0] != sr || s->shape[1] != sc ||
            (s->dtype != ST_F32 && s->dtype != ST_BF16))
            return ds_errf(e, "%s: tensor '%s' needs F32 block scales of shape [%lld, %lld] (%dx%d blocks)",
                           ck->path, s->name, (long long)sr, (long long)sc, ck->fp8_block[0], ck->fp8_block[1]);
        return DS_OK;
    }
    if (t->dtype != ST_F32 && t->dtype != ST_BF16 && t->dtype != ST_F16)
        return ds_errf(e, "%s: tensor '%s' has dtype %s (F32, BF16, F16, or F8_E4M3 with block scales expected)",
                       ck->path, p->name, st_dtype_name(t->dtype));
    return DS_OK;
}

static int check_weights(const Checkpoint *ck, DsErr *e) {
    ModelLayout L;
    layout_build(&L, &ck->cfg);
    int rc = DS_OK;
    for (int i = 0; i < L.np && rc == DS_OK; i++) {
        const ParamInfo *p = &L.p[i];
        const StTensor *t = ckpt_tensor(ck, p->name, NULL);
        if (!t) rc = ds_errf(e, "%s: model.safetensors has no tensor '%s' (does config.json match?)", ck->path, p->name);
        else rc = check_tensor(ck, p, t, e);
    }
    // A tied model may still store its head (many exports do); it is checked against the embedding
    // when loaded.
    const StTensor *head = ckpt_tensor(ck, "lm_head.weight", NULL);
    if (rc == DS_OK && head && ck->cfg.tie_word_embeddings) {
        ParamInfo p = L.p[0];
        snprintf(p.name, sizeof p.name, "lm_head.weight");
        rc = check_tensor(ck, &p, head, e);
    }
    for (int s = 0; s < ck->nshards && rc == DS_OK; s++)
        for (int i = 0; i < ck->shards[s].st.n && rc == DS_OK; i++) {
            const char *name = ck->shards[s].st.t[i].name;
            if (layout_find(&L, name) || shared_copy(&L, name) || scale_for_fp8(ck, name)) continue;
            if (!strcmp(name, "lm_head.weight") && ck->cfg.tie_word_embeddings) continue;
            rc = ds_errf(e, "%s: unexpected tensor '%s' for this config.json", ck->path, name);
        }
    layout_free(&L);
    return rc;
}

// quantization_config (read here until config.c parses it): only fp8 with 2-D weight blocks.
static int read_quantization(Checkpoint *ck, const json_t *cfg, DsErr *e) {
    ck->fp8_block[0] = ck->fp8_block[1] = 128;
    const json_t *q = json_object_get(cfg, "quantization_config");
    if (!q || json_is_null(q)) return DS_OK;
    const char *m = json_string_value(json_object_get(q, "quant_method"));
    if (!json_is_object(q) || !m || strcmp(m, "fp8"))
        return ds_errf(e, "%s: config.json: quantization_config: quant_method '%s' is not supported (fp8 expected)",
                       ck->path, m ? m : "(none)");
    const json_t *b = json_object_get(q, "weight_block_size");
    if (!b || json_is_null(b)) return DS_OK;
    for (int i = 0; i < 2; i++) {
        const json_t *v = json_array_get(b, (size_t)i);
        if (json_array_size(b) != 2 || !json_is_integer(v) || json_integer_value(v) < 1 ||
            json_integer_value(v) > 1 << 20)
            return ds_errf(e, "%s: config.json: quantization_config.weight_block_size must be [rows, cols]", ck->path);
        ck->fp8_block[i] = (int)json_integer_value(v);
    }
    return DS_OK;
}

// ---------------------------------------------------------------------------------------------
// EOS / BOS from the model's files

static json_t *member_json(const Checkpoint *ck, const char *name, DsErr *e, int *bad) {
    const TarMember *m = tar_find(&ck->files, name);
    if (!m) return NULL;
    json_error_t je;
    json_t *j = json_loadb((const char *)m->data, m->size, 0, &je);
    if (!json_is_object(j)) {
        ds_errf(e, "%s: %s:%d: %s", ck->path, name, j ? 1 : je.line, j ? "not a JSON object" : je.text);
        json_decref(j);
        *bad = 1;
        return NULL;
    }
    return j;
}

// An id or list of ids under key; 0 when absent or null, -1 on a bad value.
static int read_ids(const Checkpoint *ck, const json_t *j, const char *file, const char *key, int list_ok,
                    uint32_t *ids, int max, DsErr *e) {
    const json_t *v = json_object_get(j, key);
    if (!v || json_is_null(v)) return 0;
    int n = 0;
    if (json_is_integer(v)) {
        ids[n++] = (uint32_t)json_integer_value(v);
        if (json_integer_value(v) < 0 || json_integer_value(v) >= ck->cfg.vocab_size) goto bad;
        return n;
    }
    if (!list_ok || !json_is_array(v) || json_array_size(v) == 0 || json_array_size(v) > (size_t)max) goto bad;
    size_t i;
    json_t *x;
    json_array_foreach(v, i, x) {
        if (!json_is_integer(x) || json_integer_value(x) < 0 || json_integer_value(x) >= ck->cfg.vocab_size)
            goto bad;
        ids[n++] = (uint32_t)json_integer_value(x);
    }
    return n;
bad:
    ds_errf(e, "%s: %s: %s must be %s below vocab_size %d", ck->path, file, key,
            list_ok ? "a token id or a list of at most 16 ids" : "a token id", ck->cfg.vocab_size);
    return -1;
}

// A token's id by its text in tokenizer.json (added tokens, then the vocabulary), or -1.
static int token_id(const json_t *tok, const char *text) {
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(tok, "added_tokens"), i, a) {
        const char *c = json_string_value(json_object_get(a, "content"));
        if (c && !strcmp(c, text) && json_is_integer(json_object_get(a, "id")))
            return (int)json_integer_value(json_object_get(a, "id"));
    }
    const json_t *v = json_object_get(json_object_get(json_object_get(tok, "model"), "vocab"), text);
    return json_is_integer(v) ? (int)json_integer_value(v) : -1;
}

// A token's text by id in tokenizer.json, or NULL.
static const char *token_text(const json_t *tok, int id) {
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(tok, "added_tokens"), i, a)
        if (json_integer_value(json_object_get(a, "id")) == id) return json_string_value(json_object_get(a, "content"));
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(json_object_get(tok, "model"), "vocab"), k, v)
        if (json_integer_value(v) == id) return k;
    return NULL;
}

// tokenizer_config.json's eos_token/bos_token: a string or an AddedToken object.
static const char *special_text(const json_t *tc, const char *key) {
    const json_t *v = json_object_get(tc, key);
    if (json_is_object(v)) v = json_object_get(v, "content");
    return json_string_value(v);
}

// Highest id + 1 over the vocabulary and the added tokens of tokenizer.json.
static long tokenizer_size(const json_t *tok) {
    long n = 0;
    size_t i;
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(json_object_get(tok, "model"), "vocab"), k, v)
        n = DS_MAX(n, (long)json_integer_value(v) + 1);
    json_array_foreach(json_object_get(tok, "added_tokens"), i, v)
        n = DS_MAX(n, (long)json_integer_value(json_object_get(v, "id")) + 1);
    return n;
}

static json_t *tokenizer_doc(const Checkpoint *ck) {
    const TarMember *m = tar_find(&ck->files, "tokenizer.json");
    return m ? json_loadb((const char *)m->data, m->size, 0, NULL) : NULL;
}

static int read_specials(Checkpoint *ck, const json_t *cfg, DsErr *e) {
    int bad = 0, rc = DS_OK;
    ck->bos = -1;
    json_t *gen = member_json(ck, "generation_config.json", e, &bad);
    json_t *tc = bad ? NULL : member_json(ck, "tokenizer_config.json", e, &bad);
    json_t *tok = NULL;
    if (bad) {
        rc = DS_ERR;
        goto done;
    }
    uint32_t bos;
    int n;
    if ((n = read_ids(ck, gen, "generation_config.json", "eos_token_id", 1, ck->eos, CKPT_MAX_EOS, e)) == 0)
        n = read_ids(ck, cfg, "config.json", "eos_token_id", 1, ck->eos, CKPT_MAX_EOS, e);
    if (n < 0) goto fail;
    ck->n_eos = n;
    if ((n = read_ids(ck, gen, "generation_config.json", "bos_token_id", 0, &bos, 1, e)) == 0)
        n = read_ids(ck, cfg, "config.json", "bos_token_id", 0, &bos, 1, e);
    if (n < 0) goto fail;
    if (n) ck->bos = (int)bos;
    const char *et = special_text(tc, "eos_token"), *bt = special_text(tc, "bos_token");
    if ((!ck->n_eos || ck->bos < 0) && (tok = tokenizer_doc(ck))) {
        if (!ck->n_eos && et) {
            int id = token_id(tok, et);
            if (id < 0 || id >= ck->cfg.vocab_size) {
                rc = ds_errf(e, "%s: tokenizer_config.json: eos_token '%s' is not a token of tokenizer.json", ck->path, et);
                goto done;
            }
            ck->eos[ck->n_eos++] = (uint32_t)id;
        }
        if (ck->bos < 0 && bt) {
            int id = token_id(tok, bt);
            if (id < 0 || id >= ck->cfg.vocab_size) {
                rc = ds_errf(e, "%s: tokenizer_config.json: bos_token '%s' is not a token of tokenizer.json", ck->path, bt);
                goto done;
            }
            ck->bos = id;
        }
        // What ds's own tokenizers end documents with (and what the tools stopped on before).
        int id = token_id(tok, "<|endoftext|>");
        if (!ck->n_eos && !et && id >= 0 && id < ck->cfg.vocab_size) ck->eos[ck->n_eos++] = (uint32_t)id;
    }
    goto done;
fail:
    rc = DS_ERR;
done:
    json_decref(gen);
    json_decref(tc);
    json_decref(tok);
    return rc;
}

// ---------------------------------------------------------------------------------------------
// Open, close

static void collect_warning(void *ctx, const char *msg) {
    Checkpoint *ck = ctx;
    ck->warnings = ds_realloc(ck->warnings, sizeof(char *) * (size_t)(ck->nwarnings + 1));
    ck->warnings[ck->nwarnings++] = ds_strdup(msg);
}

int ckpt_open(Checkpoint *ck, const char *path, DsErr *e) {
    memset(ck, 0, sizeof *ck);
    ck->path = ds_strdup(path);
    json_t *cj = NULL;
    struct stat sb;
    if (stat(path, &sb) != 0) {
        ds_errf(e, "%s: %s", path, strerror(errno));
        goto fail;
    }
    if (S_ISDIR(sb.st_mode) ? read_dir(ck, path, e) : read_tar(ck, path, e)) goto fail;
    const TarMember *cfg = tar_find(&ck->files, "config.json");
    if (!cfg) {
        ds_errf(e, "%s: not a ds checkpoint (needs config.json and model.safetensors)", path);
        goto fail;
    }
    char where[4200];
    snprintf(where, sizeof where, "%s: config.json", path);
    if (config_from_string_warn(&ck->cfg, (const char *)cfg->data, cfg->size, where, collect_warning, ck, e))
        goto fail;
    cj = json_loadb((const char *)cfg->data, cfg->size, 0, NULL);
    if (read_quantization(ck, cj, e)) goto fail;
    if (open_shards(ck, e)) goto fail;
    if (check_weights(ck, e)) goto fail;
    // Token ids index the embedding: a tokenizer with more ids than vocab_size would read past it.
    // Counted from the JSON, so a tokenizer whose normalizer ds cannot run yet still opens.
    const TarMember *tj = tar_find(&ck->files, "tokenizer.json");
    if (tj) {
        snprintf(where, sizeof where, "%s%s", path, S_ISDIR(sb.st_mode) ? "/tokenizer.json" : ": tokenizer.json");
        json_error_t je;
        json_t *tok = json_loadb((const char *)tj->data, tj->size, 0, &je);
        if (!tok) {
            ds_errf(e, "%s:%d: invalid JSON: %s", where, je.line, je.text);
            goto fail;
        }
        long n = tokenizer_size(tok);
        json_decref(tok);
        if (n > ck->cfg.vocab_size) {
            ds_errf(e, "%s: %ld token ids, more than config.json's vocab_size %d", where, n, ck->cfg.vocab_size);
            goto fail;
        }
    }
    if (read_specials(ck, cj, e)) goto fail;
    const TarMember *st = tar_find(&ck->files, "state.json");
    if (st) {
        json_error_t je;
        ck->state = json_loadb((const char *)st->data, st->size, 0, &je);
        if (!json_is_object(ck->state)) {
            ds_errf(e, "%s: state.json:%d: invalid: %s", path, je.line, ck->state ? "not an object" : je.text);
            goto fail;
        }
    }
    json_decref(cj);
    return DS_OK;
fail:
    json_decref(cj);
    ckpt_close(ck);
    return DS_ERR;
}

void ckpt_close(Checkpoint *ck) {
    if (!ck) return;
    free(ck->path);
    for (int i = 0; i < ck->nwarnings; i++) free(ck->warnings[i]);
    free(ck->warnings);
    for (int i = 0; i < ck->files.n; i++) {
        free(ck->files.m[i].name);
        if (ck->owned[i]) free(ck->files.m[i].data);
    }
    free(ck->files.m);
    free(ck->owned);
    for (int i = 0; i < ck->nshards; i++) {
        free(ck->shards[i].file);
        st_free(&ck->shards[i].st);
    }
    free(ck->shards);
    for (int i = 0; i < ck->nmaps; i++) tar_unmap(ck->maps[i], ck->map_lens[i]);
    free(ck->maps);
    free(ck->map_lens);
    json_decref(ck->state);
    memset(ck, 0, sizeof *ck);
}

// ---------------------------------------------------------------------------------------------
// Loading

// Lets the kernel drop a tensor's mapped pages once converted, so peak memory is the model plus
// one tensor rather than the model plus the file. Clean file pages are simply re-read if touched.
static void drop_pages(const Safetensors *in, const StTensor *t) {
    long pg = sysconf(_SC_PAGESIZE);
    uintptr_t a = (uintptr_t)(in->data + t->begin), b = (uintptr_t)(in->data + t->end);
    a = (a + (uintptr_t)pg - 1) / (uintptr_t)pg * (uintptr_t)pg;
    b = b / (uintptr_t)pg * (uintptr_t)pg;
    if (b > a) (void)madvise((void *)a, b - a, MADV_DONTNEED);
}

static int read_tensor(const Checkpoint *ck, const char *name, float *out, size_t n, DsErr *e) {
    const Safetensors *in, *sin = NULL;
    const StTensor *t = ckpt_tensor(ck, name, &in), *scale = is_fp8(t->dtype) ? scale_of(ck, name, &sin) : NULL;
    int rc = scale ? st_read_f32_fp8_blocks(in, t, sin, scale, ck->fp8_block[0], ck->fp8_block[1], out, n, e)
                   : st_read_f32(in, t, out, n, e);
    if (rc) return ds_err_prefix(e, "%s", ck->path);
    if (in->data) drop_pages(in, t);
    long bad = st_first_nonfinite(out, n);
    if (bad >= 0)
        return ds_errf(e, "%s: tensor '%s' holds %s at element %ld: NaN or infinite weights are refused", ck->path,
                       name, out[bad] != out[bad] ? "NaN" : "an infinity", bad);
    return DS_OK;
}

int ckpt_load_weights(const Checkpoint *ck, Model_f32 *m, DsErr *e) {
    DS_CHECK(config_equal(&m->L.cfg, &ck->cfg));
    model_params_changed_f32(m); // even a failed load has written some of them
    for (int i = 0; i < m->L.np; i++) {
        const ParamInfo *p = &m->L.p[i];
        if (read_tensor(ck, p->name, m->params + p->offset, p->numel, e)) return DS_ERR;
    }
    if (ck->cfg.tie_word_embeddings && ckpt_tensor(ck, "lm_head.weight", NULL)) {
        const ParamInfo *p = &m->L.p[0];
        float *head = ds_malloc(sizeof(float) * p->numel);
        int rc = read_tensor(ck, "lm_head.weight", head, p->numel, e);
        const float *emb = m->params + p->offset;
        for (size_t j = 0; j < p->numel && rc == DS_OK; j++)
            if (head[j] != emb[j])
                rc = ds_errf(e, "%s: config.json ties the embeddings (tie_word_embeddings), but lm_head.weight "
                             "differs from model.embed_tokens.weight at element %zu (%g vs %g)",
                             ck->path, j, (double)head[j], (double)emb[j]);
        free(head);
        if (rc) return DS_ERR;
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

// ---------------------------------------------------------------------------------------------
// Saving a ds checkpoint

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

// ---------------------------------------------------------------------------------------------
// Import: a Hugging Face folder into a ds checkpoint

static void set_ids(json_t *j, const Checkpoint *ck) {
    if (ck->n_eos == 1) json_object_set_new(j, "eos_token_id", json_integer(ck->eos[0]));
    else if (ck->n_eos > 1) {
        json_t *a = json_array();
        for (int i = 0; i < ck->n_eos; i++) json_array_append_new(a, json_integer(ck->eos[i]));
        json_object_set_new(j, "eos_token_id", a);
    }
    if (ck->bos >= 0) json_object_set_new(j, "bos_token_id", json_integer(ck->bos));
}

// generation_config.json as the model had it, with the EOS/BOS ids ds resolved (NULL when the
// model names none).
static char *generation_config(const Checkpoint *ck, size_t *len) {
    const TarMember *m = tar_find(&ck->files, "generation_config.json");
    json_t *j = m ? json_loadb((const char *)m->data, m->size, 0, NULL) : NULL;
    if (!j && !ck->n_eos && ck->bos < 0) return NULL;
    if (!j) j = json_object();
    set_ids(j, ck);
    char *s = json_dumps(j, JSON_INDENT(2));
    json_decref(j);
    *len = strlen(s);
    return s;
}

void ckpt_carry(const Checkpoint *ck, int derive, CkptCarry *c) {
    memset(c, 0, sizeof *c);
    size_t gl;
    char *gen = derive || tar_find(&ck->files, "generation_config.json") ? generation_config(ck, &gl) : NULL;
    if (gen) c->m[c->n++] = (TarMember){"generation_config.json", (uint8_t *)gen, gl};
    static const char *carried[] = {"tokenizer_config.json", "chat_template.jinja", "special_tokens_map.json"};
    for (size_t i = 0; i < DS_ARRAY_LEN(carried); i++) {
        const TarMember *m = tar_find(&ck->files, carried[i]);
        if (!m) continue;
        uint8_t *copy = ds_malloc(m->size ? m->size : 1);
        memcpy(copy, m->data, m->size);
        c->m[c->n++] = (TarMember){(char *)carried[i], copy, m->size};
    }
}

void ckpt_carry_free(CkptCarry *c) {
    for (int i = 0; i < c->n; i++) free(c->m[i].data);
    memset(c, 0, sizeof *c);
}

int ckpt_import(const char *src, const char *out, DsErr *e) {
    Checkpoint ck;
    if (ckpt_open(&ck, src, e)) return DS_ERR;
    size_t tl;
    const char *tj = ckpt_tokenizer_json(&ck, &tl);
    int rc = DS_OK;
    json_t *tok = tokenizer_doc(&ck);
    if (tj && !tok) rc = ds_errf(e, "%s: tokenizer.json is not valid JSON", src);
    if (tok) {
        // Counted from the JSON, so a tokenizer whose normalizer ds cannot run yet still imports.
        long n = tokenizer_size(tok);
        if (n > ck.cfg.vocab_size)
            rc = ds_errf(e, "%s: tokenizer.json has %ld tokens, more than config.json's vocab_size %d", src, n,
                         ck.cfg.vocab_size);
        json_decref(tok);
    }
    if (rc) {
        ckpt_close(&ck);
        return rc;
    }
    Model_f32 m;
    model_init_f32(&m, &ck.cfg, 0, 1);
    CkptCarry carry;
    ckpt_carry(&ck, 1, &carry);
    rc = ckpt_load_weights(&ck, &m, e);
    if (!rc) rc = ckpt_save(out, &m, NULL, tj, tl, NULL, carry.m, carry.n, e);
    ckpt_carry_free(&carry);
    model_free_f32(&m);
    ckpt_close(&ck);
    return rc;
}

// ---------------------------------------------------------------------------------------------
// Export: a ds checkpoint (or folder) as a Hugging Face folder

static const char *torch_dtype(StDtype d) {
    return d == ST_F32 ? "float32" : d == ST_F16 ? "float16" : "bfloat16";
}

static int write_file(const char *dir, const char *name, const void *data, size_t len, DsErr *e) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) return ds_errf(e, "%s: %s", path, strerror(errno));
    int ok = fwrite(data, 1, len, f) == len;
    ok &= fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok &= fclose(f) == 0;
    return ok ? DS_OK : ds_errf(e, "%s: write error", path);
}

static int write_json(const char *dir, const char *name, const json_t *j, DsErr *e) {
    char *s = json_dumps(j, JSON_INDENT(2));
    int rc = write_file(dir, name, s, strlen(s), e);
    free(s);
    return rc;
}

// One exported tensor: a parameter, or a copy of one under a second name (the MTP layers' own
// embedding and head).
typedef struct OutTensor {
    char name[160];
    const ParamInfo *p;
    StDtype dtype;
    size_t at;         // byte offset in the converted buffer
} OutTensor;

static size_t out_bytes(const OutTensor *t) { return t->p->numel * st_dtype_size(t->dtype); }

static OutTensor *export_list(const ModelLayout *L, StDtype dtype, int *n) {
    OutTensor *t = ds_calloc((size_t)(L->np + 2 * L->nmtp), sizeof *t);
    int k = 0;
    for (int i = 0; i < L->np; i++) {
        const ParamInfo *p = &L->p[i];
        snprintf(t[k].name, sizeof t[k].name, "%s", p->name);
        t[k].p = p;
        // The routing bias only ever moves by tiny steps: it stays F32, as in released V3.
        size_t nl = strlen(p->name), sl = strlen("e_score_correction_bias");
        t[k++].dtype = nl > sl && !strcmp(p->name + nl - sl, "e_score_correction_bias") ? ST_F32 : dtype;
    }
    for (int d = 0; d < L->nmtp; d++) {
        int l = L->nlayers + d;
        const ParamInfo *emb = &L->p[0], *head = layout_find(L, "lm_head.weight");
        snprintf(t[k].name, sizeof t[k].name, "model.layers.%d.embed_tokens.weight", l);
        t[k].p = emb, t[k++].dtype = dtype;
        snprintf(t[k].name, sizeof t[k].name, "model.layers.%d.shared_head.head.weight", l);
        t[k].p = head ? head : emb, t[k++].dtype = dtype;
    }
    *n = k;
    return t;
}

static void convert(const float *x, size_t n, StDtype d, uint8_t *out) {
    if (d == ST_F32) {
        memcpy(out, x, n * 4);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        uint16_t h = d == ST_BF16 ? f32_to_bf16(x[i]) : f32_to_f16(x[i]);
        out[2 * i] = (uint8_t)h, out[2 * i + 1] = (uint8_t)(h >> 8);
    }
}

static int write_weights(const char *tmp, const Model_f32 *m, const CkptExport *o, DsErr *e) {
    int n;
    OutTensor *t = export_list(&m->L, o->dtype, &n);
    size_t total = 0;
    for (int i = 0; i < n; i++) t[i].at = total, total += out_bytes(&t[i]);
    uint8_t *buf = ds_malloc(total ? total : 1);
    for (int i = 0; i < n; i++) convert(m->params + t[i].p->offset, t[i].p->numel, t[i].dtype, buf + t[i].at);
    // Shards fill in layout order up to max_shard bytes of data (a larger tensor gets its own).
    int *shard = ds_malloc(sizeof(int) * (size_t)(n ? n : 1)), ns = 0;
    uint64_t cur = 0;
    for (int i = 0; i < n; i++) {
        uint64_t b = out_bytes(&t[i]);
        if (i == 0 || (cur > 0 && cur + b > o->max_shard)) ns++, cur = 0;
        shard[i] = ns - 1;
        cur += b;
    }
    json_t *wm = json_object();
    int rc = DS_OK;
    for (int s = 0; s < ns && rc == DS_OK; s++) {
        char file[64];
        if (ns == 1) snprintf(file, sizeof file, "model.safetensors");
        else snprintf(file, sizeof file, "model-%05d-of-%05d.safetensors", s + 1, ns);
        StWriter *w = st_writer_new();
        for (int i = 0; i < n; i++)
            if (shard[i] == s) {
                st_writer_add(w, t[i].name, t[i].dtype, t[i].p->ndim, t[i].p->shape, buf + t[i].at);
                json_object_set_new(wm, t[i].name, json_string(file));
            }
        st_writer_meta(w, "format", "pt");
        st_writer_meta(w, "producer", "ds");
        st_writer_meta(w, "ds_version", ds_version());
        DsBuf b = {0};
        st_writer_serialize(w, &b);
        st_writer_free(w);
        rc = write_file(tmp, file, b.data, b.len, e);
        dsbuf_free(&b);
    }
    if (rc == DS_OK && ns > 1) {
        json_t *ix = json_pack("{s:{s:I},s:O}", "metadata", "total_size", (json_int_t)total, "weight_map", wm);
        rc = write_json(tmp, INDEX_JSON, ix, e);
        json_decref(ix);
    }
    json_decref(wm);
    free(shard);
    free(buf);
    free(t);
    return rc;
}

// tokenizer_config.json: the model's own (with its chat template) or, for a model trained here,
// one naming the tokenizer class and the bos/eos tokens.
static int write_tokenizer_config(const Checkpoint *ck, const char *tmp, DsErr *e) {
    const TarMember *m = tar_find(&ck->files, "tokenizer_config.json");
    if (m) return write_file(tmp, "tokenizer_config.json", m->data, m->size, e);
    json_t *tok = tokenizer_doc(ck);
    if (!tok) return DS_OK;
    const char *eos = ck->n_eos ? token_text(tok, (int)ck->eos[0]) : NULL;
    const char *bos = ck->bos >= 0 ? token_text(tok, ck->bos) : NULL;
    json_t *j = json_pack("{s:s,s:b,s:I}", "tokenizer_class", "PreTrainedTokenizerFast",
                          "clean_up_tokenization_spaces", 0, "model_max_length",
                          (json_int_t)ck->cfg.max_position_embeddings);
    json_object_set_new(j, "bos_token", bos ? json_string(bos) : json_null());
    json_object_set_new(j, "eos_token", eos ? json_string(eos) : json_null());
    int rc = write_json(tmp, "tokenizer_config.json", j, e);
    json_decref(j);
    json_decref(tok);
    return rc;
}

static int write_folder(const Checkpoint *ck, const char *tmp, const CkptExport *o, DsErr *e) {
    Model_f32 m;
    model_init_f32(&m, &ck->cfg, 0, 1);
    int rc = ckpt_load_weights(ck, &m, e);
    if (!rc) rc = write_weights(tmp, &m, o, e);
    model_free_f32(&m);
    if (rc) return rc;
    json_t *cfg = config_to_json(&ck->cfg);
    json_object_del(cfg, "quantization_config"); // the weights are written dequantised
    json_object_set_new(cfg, "torch_dtype", json_string(torch_dtype(o->dtype)));
    set_ids(cfg, ck);
    rc = write_json(tmp, "config.json", cfg, e);
    json_decref(cfg);
    size_t gl;
    char *gen = rc ? NULL : generation_config(ck, &gl);
    if (gen) rc = write_file(tmp, "generation_config.json", gen, gl, e);
    free(gen);
    if (!rc) rc = write_tokenizer_config(ck, tmp, e);
    static const char *carried[] = {"tokenizer.json", "chat_template.jinja", "special_tokens_map.json"};
    for (size_t i = 0; i < DS_ARRAY_LEN(carried) && !rc; i++) {
        const TarMember *c = tar_find(&ck->files, carried[i]);
        if (c) rc = write_file(tmp, carried[i], c->data, c->size, e);
    }
    return rc;
}

// Removes a temp folder of ours and the plain files in it (never follows a symlink).
static void remove_tree(const char *dir) {
    struct stat sb;
    if (lstat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) return;
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *de;
    char path[4400];
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
            snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
            unlink(path);
        }
    closedir(d);
    rmdir(dir);
}

static int empty_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    struct dirent *de;
    int empty = 1;
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) empty = 0;
    closedir(d);
    return empty;
}

int ckpt_export_dir(const Checkpoint *ck, const char *dir, const CkptExport *o, DsErr *e) {
    DS_CHECK(o->dtype == ST_F32 || o->dtype == ST_BF16 || o->dtype == ST_F16);
    struct stat sb;
    if (lstat(dir, &sb) == 0 && !(S_ISDIR(sb.st_mode) && empty_dir(dir)))
        return ds_errf(e, "%s: already exists (export writes a new folder, or into an empty one)", dir);
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp-%ld", dir, (long)getpid());
    remove_tree(tmp); // a leftover of an earlier writer with this pid
    if (mkdir(tmp, 0755) != 0) return ds_errf(e, "%s: %s", tmp, strerror(errno));
    int rc = write_folder(ck, tmp, o, e);
    if (!rc && rename(tmp, dir) != 0) rc = ds_errf(e, "%s: %s", dir, strerror(errno));
    if (rc) remove_tree(tmp);
    return rc;
}
