// jinja.h — an interpreter for the subset of Jinja that released chat templates use, with the
// settings Hugging Face transformers renders them under (trim_blocks, lstrip_blocks, loop
// controls, its raise_exception and tojson). Values are jansson JSON values. Anything outside the
// subset is refused with a message naming the template and line, never approximated. The subset
// and its semantics: docs/CHAT_TEMPLATE.md.
#ifndef DS_JINJA_H
#define DS_JINJA_H

#include <jansson.h>

#include "core/common.h"

typedef struct JinjaTemplate JinjaTemplate;

// Parses src. name prefixes every message ("tokenizer_config.json: chat_template"), followed by
// "line N: ...". NULL and e filled on a syntax error or an unsupported tag.
JinjaTemplate *jinja_parse(const char *src, size_t len, const char *name, DsErr *e);
void jinja_free(JinjaTemplate *t); // accepts NULL

// Renders with the variables of vars (an object, borrowed) and appends to out. DS_ERR on an
// error the template raises (raise_exception), an unsupported filter, test or method, or an
// operation Jinja would fail on (adding a string to none, reading an attribute of an undefined
// value); out then holds a partial rendering the caller discards.
int jinja_render(const JinjaTemplate *t, const json_t *vars, DsBuf *out, DsErr *e);

#endif
