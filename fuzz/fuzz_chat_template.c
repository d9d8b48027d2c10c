// fuzz_chat_template.c — the Jinja-subset interpreter (lib/jinja_*.c) through the chat template of a
// tokenizer_config.json (lib/text/chat_template.c): the bytes are a template; when it parses it renders
// a fixed conversation (system, user, assistant with <think> content, user), with and without the
// generation prompt. Refusals are fine; crashes, leaks, unbounded recursion and UB are findings.
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "text/chat_template.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    // The template text as tokenizer_config.json carries it.
    json_t *cfg = json_pack("{s:s%, s:s, s:s}", "chat_template", (const char *)data, size, "eos_token",
                            "<|im_end|>", "bos_token", "<s>");
    if (!cfg) return 0; // not valid UTF-8: jansson refuses it, as it would refuse the file
    char *text = json_dumps(cfg, JSON_COMPACT);
    json_decref(cfg);
    ChatTemplate ct;
    DsErr e;
    if (chat_template_load(&ct, text, strlen(text), "fuzz.json", &e) == DS_OK) {
        json_t *msgs = json_pack("[{s:s, s:s}, {s:s, s:s}, {s:s, s:s}, {s:s, s:s}]", "role", "system", "content",
                                 "Be brief.", "role", "user", "content", "1+1?", "role", "assistant", "content",
                                 "<think>2</think>2", "role", "user", "content", "and 2+2?");
        for (int gen = 0; gen < 2; gen++) {
            DsBuf out = {0};
            (void)chat_template_render(&ct, msgs, NULL, gen, NULL, &out, &e);
            dsbuf_free(&out);
        }
        json_decref(msgs);
        chat_template_free(&ct);
    }
    free(text);
    return 0;
}
