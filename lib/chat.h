// chat.h — turning a record ({"prompt"} or {"messages": [...]}) into the text a model continues,
// under the plain chat template or the R1 reasoning template. ds-infer, ds-sft and ds-grpo share it
// so data is trained and sampled in the same form.
#ifndef DS_CHAT_H
#define DS_CHAT_H

#include <jansson.h>

#include "task.h"

// Renders the prompt up to and including the assistant cue ("Assistant:"). With `messages`, a final
// assistant message (if any) is left out and returned through *answer (malloc'd, or NULL) so SFT
// can train on it. Plain: "System: …\nUser: …\nAssistant:"; r1: the R1-Zero system text around the
// (single) user turn. DS_ERR names the record (`where`) and the problem.
int chat_render(const json_t *rec, PromptTemplate t, const char *where, char **prompt, char **answer,
                DsErr *e);

#endif
