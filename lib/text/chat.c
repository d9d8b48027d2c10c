// chat.c — prompt and chat templates.
#include "text/chat.h"

#include <stdlib.h>
#include <string.h>

static const char *role_label(const char *role) {
    if (!strcmp(role, "system")) return "System";
    if (!strcmp(role, "user")) return "User";
    if (!strcmp(role, "assistant")) return "Assistant";
    return NULL;
}

int chat_render(const json_t *rec, PromptTemplate t, const char *where, char **prompt, char **answer,
                DsErr *e) {
    *prompt = NULL;
    if (answer) *answer = NULL;
    const char *p = json_string_value(json_object_get(rec, "prompt"));
    if (p) {
        *prompt = task_apply_template(p, t);
        const char *c = json_string_value(json_object_get(rec, "completion"));
        if (answer && c) *answer = ds_strdup(c);
        return DS_OK;
    }
    json_t *msgs = json_object_get(rec, "messages");
    if (!json_is_array(msgs) || json_array_size(msgs) == 0)
        return ds_errf(e, "%s: needs a string 'prompt' or a non-empty 'messages' array", where);
    size_t n = json_array_size(msgs);
    const char *last_role = json_string_value(json_object_get(json_array_get(msgs, n - 1), "role"));
    size_t upto = n;
    if (last_role && !strcmp(last_role, "assistant")) upto = n - 1;
    DsBuf b = {0};
    const char *user = NULL;
    int users = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *m = json_array_get(msgs, i);
        const char *role = json_string_value(json_object_get(m, "role"));
        const char *content = json_string_value(json_object_get(m, "content"));
        if (!role || !content || !role_label(role)) {
            dsbuf_free(&b);
            return ds_errf(e, "%s: messages[%zu] needs 'role' (system, user, assistant) and 'content' strings", where, i);
        }
        if (i >= upto) {
            if (answer) *answer = ds_strdup(content);
            continue;
        }
        if (!strcmp(role, "user")) user = content, users++;
        dsbuf_printf(&b, "%s: %s\n", role_label(role), content);
    }
    if (t == TEMPLATE_R1) {
        dsbuf_free(&b);
        if (users != 1)
            return ds_errf(e, "%s: the r1 template takes exactly one user message", where);
        *prompt = task_apply_template(user, TEMPLATE_R1);
        return DS_OK;
    }
    dsbuf_printf(&b, "Assistant:");
    *prompt = b.data;
    return DS_OK;
}

int chat_render_model(const json_t *rec, const ChatTemplate *ct, const char *where, char **prompt, char **answer,
                      DsErr *e) {
    *prompt = NULL;
    if (answer) *answer = NULL;
    json_t *msgs = json_object_get(rec, "messages"), *conv;
    const char *p = json_string_value(json_object_get(rec, "prompt"));
    if (json_is_array(msgs) && json_array_size(msgs) > 0) {
        size_t n = json_array_size(msgs);
        json_t *last = json_array_get(msgs, n - 1);
        int drop = !strcmp(json_string_value(json_object_get(last, "role")) ? json_string_value(json_object_get(last, "role")) : "", "assistant");
        conv = json_array();
        for (size_t i = 0; i + (size_t)drop < n; i++) json_array_append(conv, json_array_get(msgs, i));
        const char *c = json_string_value(json_object_get(last, "content"));
        if (drop && answer && c) *answer = ds_strdup(c);
    } else if (p) {
        conv = json_pack("[{s:s,s:s}]", "role", "user", "content", p);
        const char *c = json_string_value(json_object_get(rec, "completion"));
        if (answer && c) *answer = ds_strdup(c);
    } else {
        return ds_errf(e, "%s: needs a string 'prompt' or a non-empty 'messages' array", where);
    }
    DsBuf b = {0};
    int rc = chat_template_render(ct, conv, json_object_get(rec, "tools"), 1, NULL, &b, e);
    json_decref(conv);
    if (rc) {
        dsbuf_free(&b);
        if (answer) free(*answer), *answer = NULL;
        return ds_err_prefix(e, "%s", where);
    }
    *prompt = b.data;
    return DS_OK;
}
