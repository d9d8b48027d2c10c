// chat.h — turning a record ({"prompt"} or {"messages": [...]}) into the text a model continues,
// under the plain chat template or the R1 reasoning template. ds-infer, ds-sft and ds-grpo share it
// so data is trained and sampled in the same form.
#ifndef DS_CHAT_H
#define DS_CHAT_H

#include <jansson.h>

#include "text/chat_template.h"
#include "eval/task.h"

// Renders the prompt up to and including the assistant cue ("Assistant:"). With `messages`, a final
// assistant message (if any) is left out and returned through *answer (malloc'd, or NULL) so SFT
// can train on it. Plain: "System: …\nUser: …\nAssistant:"; r1: the R1-Zero system text around the
// (single) user turn. DS_ERR names the record (`where`) and the problem.
int chat_render(const json_t *rec, PromptTemplate t, const char *where, char **prompt, char **answer,
                DsErr *e);

// The same under the model's own chat template (docs/CHAT_TEMPLATE.md): `messages` without a final
// assistant message (returned through *answer, as its content string, when answer is given), or a
// `prompt` record as one user turn, rendered with the generation prompt and the record's `tools`.
int chat_render_model(const json_t *rec, const ChatTemplate *ct, const char *where, char **prompt, char **answer,
                      DsErr *e);

#endif
