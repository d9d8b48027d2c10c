// chat_template.c — tokenizer_config.json's chat template: loading, rendering, assistant spans.
#include "text/chat_template.h"

#include <stdlib.h>
#include <string.h>

// transformers' special_tokens_map: the attributes that are set, as strings.
static const char *const SPECIAL_KEYS[] = {"bos_token", "eos_token", "unk_token", "sep_token", "pad_token",
                                           "cls_token", "mask_token"};

static const char *token_text(const json_t *v) {
    if (json_is_string(v)) return json_string_value(v);
    if (json_is_object(v)) return json_string_value(json_object_get(v, "content"));
    return NULL;
}

char *chat_template_config_eos(const char *json, size_t len) {
    json_t *cfg = json_loadb(json, len, 0, NULL);
    const char *s = token_text(json_object_get(cfg, "eos_token"));
    char *r = s ? ds_strdup(s) : NULL;
    json_decref(cfg);
    return r;
}

int chat_template_load(ChatTemplate *ct, const char *json, size_t len, const char *name, DsErr *e) {
    memset(ct, 0, sizeof *ct);
    json_error_t je;
    json_t *cfg = json_loadb(json, len, 0, &je);
    if (!json_is_object(cfg)) {
        json_decref(cfg);
        return ds_errf(e, "%s: not a JSON object (%s, line %d)", name, je.text, je.line);
    }
    json_t *tpl = json_object_get(cfg, "chat_template");
    if (json_is_array(tpl)) {
        json_decref(cfg);
        return ds_errf(e, "%s: chat_template is a list of named templates; only a single template is supported", name);
    }
    if (!json_is_string(tpl)) {
        json_decref(cfg);
        return ds_errf(e, "%s: has no chat_template string", name);
    }
    char tname[600];
    snprintf(tname, sizeof tname, "%s: chat_template", name);
    ct->tpl = jinja_parse(json_string_value(tpl), json_string_length(tpl), tname, e);
    if (!ct->tpl) {
        json_decref(cfg);
        return DS_ERR;
    }
    ct->vars = json_object();
    for (size_t i = 0; i < DS_ARRAY_LEN(SPECIAL_KEYS); i++) {
        const char *s = token_text(json_object_get(cfg, SPECIAL_KEYS[i]));
        if (s) json_object_set_new(ct->vars, SPECIAL_KEYS[i], json_string(s));
    }
    json_t *extra = json_object_get(cfg, "additional_special_tokens");
    if (json_is_array(extra) && json_array_size(extra)) {
        json_t *l = json_array();
        for (size_t i = 0; i < json_array_size(extra); i++) {
            const char *s = token_text(json_array_get(extra, i));
            if (s) json_array_append_new(l, json_string(s));
        }
        json_object_set_new(ct->vars, "additional_special_tokens", l);
    }
    const char *eos = json_string_value(json_object_get(ct->vars, "eos_token"));
    ct->eos = eos ? ds_strdup(eos) : NULL;
    ct->name = ds_strdup(name);
    json_decref(cfg);
    return DS_OK;
}

int chat_template_load_file(ChatTemplate *ct, const char *path, DsErr *e) {
    char *data;
    size_t len;
    memset(ct, 0, sizeof *ct);
    if (ds_read_file(path, &data, &len, e)) return DS_ERR;
    int rc = chat_template_load(ct, data, len, path, e);
    free(data);
    return rc;
}

void chat_template_free(ChatTemplate *ct) {
    jinja_free(ct->tpl);
    json_decref(ct->vars);
    free(ct->eos), free(ct->name);
    memset(ct, 0, sizeof *ct);
}

int chat_template_render(const ChatTemplate *ct, const json_t *messages, const json_t *tools, int add_generation_prompt,
                         const json_t *extra, DsBuf *out, DsErr *e) {
    // apply_chat_template's variables: the special tokens, then messages, tools (None when not
    // given), documents, add_generation_prompt, then the caller's keyword arguments.
    json_t *v = json_copy(ct->vars);
    json_object_set(v, "messages", (json_t *)messages);
    json_object_set_new(v, "tools", tools ? json_incref((json_t *)tools) : json_null());
    json_object_set_new(v, "documents", json_null());
    json_object_set_new(v, "add_generation_prompt", json_boolean(add_generation_prompt));
    if (extra) json_object_update(v, (json_t *)extra);
    int rc = jinja_render(ct->tpl, v, out, e);
    json_decref(v);
    return rc;
}

static json_t *head(const json_t *messages, size_t k) {
    json_t *h = json_array();
    for (size_t i = 0; i < k; i++) json_array_append(h, json_array_get(messages, i));
    return h;
}

// Renders messages[0, k) into b (reset first).
static int render_head(const ChatTemplate *ct, const json_t *messages, size_t k, const json_t *tools, int gen,
                       const json_t *extra, DsBuf *b, DsErr *e) {
    b->len = 0;
    json_t *h = head(messages, k);
    int rc = chat_template_render(ct, h, tools, gen, extra, b, e);
    json_decref(h);
    return rc;
}

int chat_template_assistant_spans(const ChatTemplate *ct, const json_t *messages, const json_t *tools,
                                  const json_t *extra, const char *where, char **text, ChatSpan **spans, int *nspans,
                                  DsErr *e) {
    *text = NULL, *spans = NULL, *nspans = 0;
    DsBuf full = {0}, part = {0};
    ChatSpan *sp = NULL;
    int n = 0;
    if (chat_template_render(ct, messages, tools, 0, extra, &full, e)) goto fail;
    size_t nmsg = json_array_size(messages), eos_len = ct->eos ? strlen(ct->eos) : 0;
    for (size_t i = 0; i < nmsg; i++) {
        const char *role = json_string_value(json_object_get(json_array_get(messages, i), "role"));
        if (!role || strcmp(role, "assistant")) continue;
        if (render_head(ct, messages, i, tools, 1, extra, &part, e)) goto fail;
        if (part.len > full.len || memcmp(part.data, full.data, part.len)) {
            ds_errf(e, "%s: messages[%zu]: %s renders the conversation before this assistant turn (with the generation "
                    "prompt) differently from the start of the whole conversation, so the turn cannot be located",
                    where, i, ct->name);
            goto fail;
        }
        size_t start = part.len, end = 0;
        if (n && start < sp[n - 1].end) {
            ds_errf(e, "%s: messages[%zu]: the template does not end the previous assistant turn with %s before this "
                    "one starts, so that turn's end cannot be located", where, i, ct->eos ? ct->eos : "an eos_token");
            goto fail;
        }
        const char *hit = eos_len ? memmem(full.data + start, full.len - start, ct->eos, eos_len) : NULL;
        if (hit) {
            end = (size_t)(hit - full.data) + eos_len;
        } else {
            if (render_head(ct, messages, i + 1, tools, 0, extra, &part, e)) goto fail;
            if (part.len < start || part.len > full.len || memcmp(part.data, full.data, part.len)) {
                ds_errf(e, "%s: messages[%zu]: no %s ends this assistant turn, and the conversation up to it does not render "
                        "as a prefix of the whole", where, i, ct->eos ? ct->eos : "eos_token");
                goto fail;
            }
            end = part.len;
        }
        sp = ds_realloc(sp, sizeof *sp * (size_t)(n + 1));
        sp[n].start = start, sp[n].end = end;
        n++;
    }
    dsbuf_free(&part);
    *text = full.data, *spans = sp, *nspans = n;
    return DS_OK;
fail:
    dsbuf_free(&full), dsbuf_free(&part);
    free(sp);
    return DS_ERR;
}
