// chat_template.h — a model's own chat template: the Jinja `chat_template` of its
// tokenizer_config.json, rendered as transformers' apply_chat_template does (messages, tools,
// add_generation_prompt and the special-token strings as variables), and the spans of the
// rendered text that are assistant turns, for SFT loss masks. docs/CHAT_TEMPLATE.md.
#ifndef DS_CHAT_TEMPLATE_H
#define DS_CHAT_TEMPLATE_H

#include <jansson.h>

#include "core/common.h"
#include "text/jinja.h"

typedef struct ChatTemplate {
    JinjaTemplate *tpl;
    json_t *vars;   // special_tokens_map as transformers passes it: bos_token, eos_token, ... (strings)
    char *eos;      // eos_token's text, NULL when the config has none
    char *name;     // for messages
} ChatTemplate;

// From tokenizer_config.json's text; name is its file name for messages
// ("tokenizer_config.json: chat_template: line 3: ..."). DS_ERR when the file is not JSON, has no
// string chat_template (a list of named templates is refused), or the template does not parse.
int chat_template_load(ChatTemplate *ct, const char *json, size_t len, const char *name, DsErr *e);
int chat_template_load_file(ChatTemplate *ct, const char *path, DsErr *e);
void chat_template_free(ChatTemplate *ct);

// The eos_token of a tokenizer_config.json (a string or an AddedToken {"content": ...}), or NULL
// when it has none; no template needed. malloc'd.
char *chat_template_config_eos(const char *json, size_t len);

// Renders messages (an array of {"role","content",...}) with tools (NULL: none) and
// add_generation_prompt; extra (an object or NULL) adds variables such as enable_thinking.
// Appends to out (a C string); DS_ERR names the template and line.
int chat_template_render(const ChatTemplate *ct, const json_t *messages, const json_t *tools, int add_generation_prompt,
                         const json_t *extra, DsBuf *out, DsErr *e);

// A byte range [start, end) of rendered text.
typedef struct ChatSpan {
    size_t start, end;
} ChatSpan;

// Renders the whole conversation into *text (malloc'd) and finds every assistant turn in it:
// a turn starts where the conversation before it, rendered with the generation prompt, ends (that
// rendering must be a prefix of the whole text), and ends after the first eos_token that follows
// (or, for a template without one, where the conversation up to and including the turn ends,
// when that is a prefix too). *spans (malloc'd) gets one span per assistant message, in order.
// DS_ERR names `where` and the message when a turn cannot be located.
int chat_template_assistant_spans(const ChatTemplate *ct, const json_t *messages, const json_t *tools,
                                  const json_t *extra, const char *where, char **text, ChatSpan **spans, int *nspans,
                                  DsErr *e);

#endif
