// test_chat_template.c — the Jinja interpreter against Jinja's own renderings of released chat
// templates (fixtures made by tests/fixtures/chat/make_fixtures.py), its semantics case by case,
// its refusals, and the assistant spans SFT trains on.
#include <jansson.h>

#include "text/chat_template.h"
#include "text/jinja.h"
#include "unit.h"

// Renders src with vars (JSON text) and compares with want; want NULL = must fail with an error
// containing err_part.
static void expect(T *t, const char *src, const char *vars, const char *want, const char *err_part) {
    DsErr e = {{0}};
    JinjaTemplate *tp = jinja_parse(src, strlen(src), "tpl", &e);
    DsBuf out = {0};
    int rc = DS_ERR;
    if (tp) {
        json_t *v = json_loads(vars ? vars : "{}", 0, NULL);
        rc = jinja_render(tp, v, &out, &e);
        json_decref(v);
    }
    if (want) {
        CHECKF(t, rc == DS_OK && !strcmp(out.data, want), "%s\n  got  [%s]\n  want [%s] (%s)", src, rc ? "" : out.data, want,
               rc ? e.msg : "");
    } else {
        CHECKF(t, rc == DS_ERR && strstr(e.msg, err_part), "%s\n  error [%s] lacks [%s]", src, rc ? e.msg : "(rendered)", err_part);
    }
    dsbuf_free(&out);
    jinja_free(tp);
}

static void semantics(T *t) {
    // whitespace: trim_blocks, lstrip_blocks, '-' markers, the final newline
    expect(t, "{% if true %}\n  a\n  {% endif %}\nb\n", NULL, "  a\nb", NULL);
    expect(t, "x  {%- if true -%}  y  {%- endif %}\n", NULL, "xy", NULL);
    expect(t, "a\n    {{- 'b' -}}\n  c", NULL, "abc", NULL);
    expect(t, "  {% if true %}x{% endif %}", NULL, "x", NULL);
    expect(t, "a {% if true %}x{% endif %}", NULL, "a x", NULL);
    expect(t, "{# c #}\nA{#- c -#}  B", NULL, "AB", NULL);
    // loops
    expect(t, "{% for x in xs %}{{ loop.index }}{{ loop.index0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}"
              "{{ loop.revindex }};{% endfor %}", "{\"xs\":[5,6]}", "10TrueFalse22;21FalseTrue21;", NULL);
    expect(t, "{% for x in xs if x > 1 %}{{ x }}{{ loop.length }}{% else %}none{% endfor %}", "{\"xs\":[1,2,3]}", "2232", NULL);
    expect(t, "{% for x in [] %}{{ x }}{% else %}none{% endfor %}", NULL, "none", NULL);
    expect(t, "{% for k, v in d.items() %}{{ k }}={{ v }},{% endfor %}", "{\"d\":{\"b\":1,\"a\":2}}", "b=1,a=2,", NULL);
    expect(t, "{% for x in [1,2,3,4] %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 4 %}{% break %}{% endif %}{{ x }}{% endfor %}",
           NULL, "13", NULL);
    // scoping: a loop body is a fresh scope each iteration; a namespace carries state out
    expect(t, "{% set x = 5 %}{% for i in [1,2] %}[{{ x }}]{% set x = i %}{% endfor %}{{ x }}", NULL, "[5][5]5", NULL);
    expect(t, "{% set ns = namespace(n=0) %}{% for i in [1,2,3] %}{% set ns.n = ns.n + i %}{% endfor %}{{ ns.n }}", NULL, "6", NULL);
    expect(t, "{% if true %}{% set y = 1 %}{% endif %}{{ y }}", NULL, "1", NULL);
    // expressions
    expect(t, "{{ 'abc'[::-1] }} {{ 'abc'[-1] }} {{ [1,2,3][1:] }} {{ 'héllo'[1:3] }}", NULL, "cba c [2, 3] él", NULL);
    expect(t, "{{ 1 if a else 2 }}{{ 'y' if not a }}|{{ a is defined }}{{ b is not defined }}{{ n is none }}", "{\"a\":false,\"n\":null}",
           "2y|TrueTrueTrue", NULL);
    expect(t, "{{ not x is defined }} {{ x is string }} {{ 3 is odd }} {{ 6 is divisibleby 3 }}", "{\"x\":\"s\"}", "False True True True", NULL);
    expect(t, "{{ 'a' ~ 1 ~ none ~ u }} {{ 'a' + 'b' }} {{ [1] + [2] }} {{ 7 // 2 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 3 / 2 }} {{ 2 ** 10 }}",
           NULL, "a1None ab [1, 2] 3 -4 2 1.5 1024", NULL);
    expect(t, "{{ 'x' in 'axb' }} {{ 2 in [1,2] }} {{ 'k' in d }} {{ 'z' not in d }} {{ a and b }} {{ a or b }}", "{\"d\":{\"k\":1},\"a\":0,\"b\":3}",
           "True True True True 0 3", NULL);
    expect(t, "{{ m.role }}{{ m['content'] }}{{ m.missing }}{{ m.x is defined }}", "{\"m\":{\"role\":\"user\",\"content\":\"hi\"}}", "userhiFalse", NULL);
    expect(t, "{{ 1e-5 }} {{ 1.0 }} {{ 1e16 }} {{ 0.1 + 0.2 }} {{ true }} {{ none }} {{ [1, 'a', none, {'k': 'v'}] }}", NULL,
           "1e-05 1.0 1e+16 0.30000000000000004 True None [1, 'a', None, {'k': 'v'}]", NULL);
    // filters and string methods
    expect(t, "{{ '  x ' | trim }}|{{ xs | length }}|{{ u | default('d') }}|{{ '' | default('d', true) }}|{{ xs | join(',') }}|{{ xs | first }}{{ xs | last }}",
           "{\"xs\":[1,2,3]}", "x|3|d|d|1,2,3|13", NULL);
    expect(t, "{{ d | tojson }}", "{\"d\":{\"a\":[1,2.5,\"é\\n\\\"\"],\"b\":null,\"c\":true,\"e\":{}}}",
           "{\"a\": [1, 2.5, \"é\\n\\\"\"], \"b\": null, \"c\": true, \"e\": {}}", NULL);
    expect(t, "{{ d | tojson(indent=2) }}", "{\"d\":{\"a\":[1]}}", "{\n  \"a\": [\n    1\n  ]\n}", NULL);
    expect(t, "{{ s.startswith('<a') }}{{ s.endswith('b>') }}|{{ s.split('|') }}|{{ ' a  b '.split() }}|{{ 'xxaxx'.strip('x') }}"
              "|{{ '\\n a'.lstrip() }}|{{ 'a\\n'.rstrip('\\n') }}|{{ 'aXbX'.replace('X', '-') }}|{{ 'ab'.upper() }}",
           "{\"s\":\"<a|b>\"}", "TrueTrue|['<a', 'b>']|['a', 'b']|a|a|a|a-b-|AB", NULL);
    expect(t, "{{ s.split('</think>')[-1].lstrip('\\n') }}", "{\"s\":\"<think>r</think>\\n\\nanswer\"}", "answer", NULL);
    expect(t, "{% set x %}in{{ 1 }}{% endset %}[{{ x }}]", NULL, "[in1]", NULL);
}

static void refusals(T *t) {
    expect(t, "a\n\n{{ x | wordcount }}", NULL, NULL, "tpl: line 3: filter \"wordcount\" is not supported");
    expect(t, "{% macro m() %}{% endmacro %}", NULL, NULL, "line 1: tag 'macro' is not supported");
    expect(t, "\n{{ raise_exception('Only user and assistant roles') }}", NULL, NULL,
           "line 2: the template raised an error: Only user and assistant roles");
    expect(t, "{{ m.x.y }}", "{}", NULL, "'m' is undefined");
    expect(t, "{{ 'a' + none }}", NULL, NULL, "unsupported operand types for +: string and none");
    expect(t, "{{ u + 'a' }}", NULL, NULL, "'u' is undefined");
    expect(t, "{% set d = {} %}{% set d.x = 1 %}", NULL, NULL, "not a namespace");
    expect(t, "{{ x.title }}", "{\"x\":\"s\"}", NULL, "used without calling it");
    expect(t, "{{ 'é'.upper() }}", NULL, NULL, "non-ASCII");
    expect(t, "{% if x %}", NULL, NULL, "expected 'elif'");
    expect(t, "{{ x ", NULL, NULL, "unexpected end of template inside a tag");
    expect(t, "{{ 1 < 2 < 3 }}", NULL, NULL, "chained comparisons are not supported");
}

// Bad templates fail with a message, never a crash: every prefix of the Qwen3 template (most are
// broken: cut inside a tag, a string, a block), rendered on a conversation; deep nesting.
static void malformed_templates_fail_cleanly(T *t) {
    const char *dir = getenv("DS_TOKENIZERS");
    CHECK(t, dir != NULL);
    if (!dir) return;
    char path[4096];
    snprintf(path, sizeof path, "%s/qwen3/tokenizer_config.json", dir);
    json_t *cfg = json_load_file(path, 0, NULL);
    const char *src = json_string_value(json_object_get(cfg, "chat_template"));
    CHECK(t, src != NULL);
    if (!src) return;
    json_t *vars = json_loads("{\"messages\":[{\"role\":\"system\",\"content\":\"S\"},{\"role\":\"user\",\"content\":\"q\"},"
                              "{\"role\":\"assistant\",\"content\":\"<think>r</think>a\",\"tool_calls\":[{\"function\":"
                              "{\"name\":\"f\",\"arguments\":{\"x\":1}}}]},{\"role\":\"tool\",\"content\":\"o\"}],"
                              "\"add_generation_prompt\":true,\"tools\":[{\"name\":\"f\"}]}", 0, NULL);
    size_t len = strlen(src);
    int parsed = 0, failed = 0;
    for (size_t k = 0; k <= len; k++) {
        DsErr e = {{0}};
        JinjaTemplate *tp = jinja_parse(src, k, "tpl", &e);
        if (!tp) {
            CHECKF(t, !strncmp(e.msg, "tpl: line ", 10), "prefix %zu: %s", k, e.msg);
            failed++;
            continue;
        }
        DsBuf out = {0};
        if (jinja_render(tp, vars, &out, &e) == DS_ERR) CHECKF(t, !strncmp(e.msg, "tpl: line ", 10), "prefix %zu: %s", k, e.msg);
        parsed++;
        dsbuf_free(&out);
        jinja_free(tp);
    }
    CHECK(t, parsed > 0 && (size_t)failed > len / 2);
    DsBuf deep = {0};
    dsbuf_append(&deep, "{{ ", 3);
    for (int i = 0; i < 5000; i++) dsbuf_append(&deep, "(", 1);
    dsbuf_append(&deep, "1", 1);
    for (int i = 0; i < 5000; i++) dsbuf_append(&deep, ")", 1);
    dsbuf_append(&deep, " }}", 4);
    expect(t, deep.data, NULL, NULL, "nested more than 200 deep");
    deep.len = 0;
    for (int i = 0; i < 5000; i++) dsbuf_append(&deep, "{% if 1 %}", 10);
    dsbuf_append(&deep, "", 1);
    expect(t, deep.data, NULL, NULL, "nested more than 200 deep");
    deep.len = 0;
    dsbuf_append(&deep, "{{ ", 3);
    for (int i = 0; i < 5000; i++) dsbuf_append(&deep, "-", 1);
    dsbuf_append(&deep, "1 }}", 5);
    expect(t, deep.data, NULL, NULL, "nested more than 200 deep");
    deep.len = 0;
    dsbuf_append(&deep, "{{ ", 3);
    for (int i = 0; i < 5000; i++) dsbuf_append(&deep, "not ", 4);
    dsbuf_append(&deep, "1 }}", 5);
    expect(t, deep.data, NULL, NULL, "nested more than 200 deep");
    expect(t, "{{ not }}", NULL, NULL, "line 1: expected an expression, got 'end of print statement'");
    dsbuf_free(&deep);
    json_decref(vars), json_decref(cfg);
}

static char *env_path(T *t, const char *var, const char *rest) {
    const char *d = getenv(var);
    CHECKF(t, d != NULL, "set %s", var);
    if (!d) return NULL;
    char *p = ds_malloc(strlen(d) + strlen(rest) + 2);
    sprintf(p, "%s/%s", d, rest);
    return p;
}

// Every fixture conversation under both released templates: the same bytes as Jinja, and an error
// wherever Jinja failed.
static void released_templates_match_jinja(T *t) {
    static const char *const names[] = {"deepseek_v3", "qwen3"};
    char *convs = env_path(t, "DS_CHAT_FIXTURES", "conversations.jsonl");
    if (!convs) return;
    json_error_t je;
    for (size_t k = 0; k < DS_ARRAY_LEN(names); k++) {
        char rel[64], cfgname[64];
        snprintf(rel, sizeof rel, "%s.jsonl", names[k]);
        snprintf(cfgname, sizeof cfgname, "%s/tokenizer_config.json", names[k]);
        char *exp_path = env_path(t, "DS_CHAT_FIXTURES", rel), *cfg_path = env_path(t, "DS_TOKENIZERS", cfgname);
        if (!exp_path || !cfg_path) return;
        ChatTemplate ct;
        DsErr e;
        CHECKF(t, chat_template_load_file(&ct, cfg_path, &e) == DS_OK, "%s", e.msg);
        FILE *fc = fopen(convs, "r"), *fe = fopen(exp_path, "r");
        CHECK(t, fc && fe);
        char *lc = NULL, *le = NULL;
        size_t cc = 0, ce = 0;
        int cases = 0, same = 0, refused = 0;
        while (fc && fe && getline(&lc, &cc, fc) > 0 && getline(&le, &ce, fe) > 0) {
            json_t *c = json_loads(lc, 0, &je), *x = json_loads(le, 0, &je);
            json_t *extra = json_object();
            if (json_object_get(c, "enable_thinking")) json_object_set(extra, "enable_thinking", json_object_get(c, "enable_thinking"));
            DsBuf out = {0};
            int rc = chat_template_render(&ct, json_object_get(c, "messages"), json_object_get(c, "tools"),
                                          json_is_true(json_object_get(c, "add_generation_prompt")), extra, &out, &e);
            json_t *want = json_object_get(x, "text");
            cases++;
            if (want) {
                int ok = rc == DS_OK && out.len == json_string_length(want) && !memcmp(out.data, json_string_value(want), out.len);
                CHECKF(t, ok, "%s case %d: %s\n--- got\n%s\n--- want\n%s", names[k], cases, rc ? e.msg : "", rc ? "" : out.data,
                       json_string_value(want));
                same += ok;
            } else {
                CHECKF(t, rc == DS_ERR, "%s case %d: Jinja failed (%s) but this rendered", names[k], cases,
                       json_string_value(json_object_get(x, "error")));
                refused += rc == DS_ERR;
            }
            dsbuf_free(&out);
            json_decref(c), json_decref(x), json_decref(extra);
        }
        printf("%s: %d cases, %d rendered byte-identically, %d refused as Jinja did\n", names[k], cases, same, refused);
        CHECKF(t, same >= 50, "%s: only %d identical renderings", names[k], same);
        free(lc), free(le);
        if (fc) fclose(fc);
        if (fe) fclose(fe);
        chat_template_free(&ct);
        free(exp_path), free(cfg_path);
    }
    free(convs);
}

// Qwen3 drops the reasoning of turns before the last user message, so the whole conversation is
// not the concatenation of its prefixes; the spans must still be the turns as rendered in it.
static void assistant_spans_qwen3(T *t) {
    char *cfg = env_path(t, "DS_TOKENIZERS", "qwen3/tokenizer_config.json");
    if (!cfg) return;
    ChatTemplate ct;
    DsErr e;
    CHECKF(t, chat_template_load_file(&ct, cfg, &e) == DS_OK, "%s", e.msg);
    CHECK(t, ct.eos && !strcmp(ct.eos, "<|im_end|>"));
    json_t *m = json_loads("[{\"role\":\"system\",\"content\":\"S\"},{\"role\":\"user\",\"content\":\"q1\"},"
                           "{\"role\":\"assistant\",\"content\":\"<think>r1</think>a1\"},{\"role\":\"user\",\"content\":\"q2\"},"
                           "{\"role\":\"assistant\",\"content\":\"<think>r2</think>a2\"}]", 0, NULL);
    char *text;
    ChatSpan *sp;
    int n;
    CHECKF(t, chat_template_assistant_spans(&ct, m, NULL, NULL, "rec", &text, &sp, &n, &e) == DS_OK, "%s", e.msg);
    CHECK(t, n == 2);
    if (n == 2) {
        const char *want = "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nq1<|im_end|>\n<|im_start|>assistant\n"
                           "a1<|im_end|>\n<|im_start|>user\nq2<|im_end|>\n<|im_start|>assistant\n"
                           "<think>\nr2\n</think>\n\na2<|im_end|>\n";
        CHECKF(t, !strcmp(text, want), "%s", text);
        CHECKF(t, sp[0].end - sp[0].start == strlen("a1<|im_end|>") && !memcmp(text + sp[0].start, "a1<|im_end|>", 12),
               "%.*s", (int)(sp[0].end - sp[0].start), text + sp[0].start);
        const char *t2 = "<think>\nr2\n</think>\n\na2<|im_end|>";
        CHECKF(t, sp[1].end - sp[1].start == strlen(t2) && !memcmp(text + sp[1].start, t2, strlen(t2)), "%.*s",
               (int)(sp[1].end - sp[1].start), text + sp[1].start);
    }
    free(text), free(sp);
    json_decref(m);
    chat_template_free(&ct);
    free(cfg);
}

// DeepSeek-V3: turns end with <｜end▁of▁sentence｜>; a tool-call turn is trained with its calls; the
// turn after tool outputs starts after <｜tool▁outputs▁end｜>. Its template closes a single tool
// call with no end token, so such a conversation is refused rather than mis-masked.
static void assistant_spans_deepseek(T *t) {
    char *cfg = env_path(t, "DS_TOKENIZERS", "deepseek_v3/tokenizer_config.json");
    if (!cfg) return;
    ChatTemplate ct;
    DsErr e;
    CHECKF(t, chat_template_load_file(&ct, cfg, &e) == DS_OK, "%s", e.msg);
    const char *call = "{\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}";
    char js[2048];
    snprintf(js, sizeof js, "[{\"role\":\"user\",\"content\":\"q1\"},{\"role\":\"assistant\",\"content\":\"a1\"},"
             "{\"role\":\"user\",\"content\":\"q2\"},{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[%s,%s]},"
             "{\"role\":\"tool\",\"content\":\"o\"},{\"role\":\"assistant\",\"content\":\"a2\"}]", call, call);
    json_t *m = json_loads(js, 0, NULL);
    char *text;
    ChatSpan *sp;
    int n;
    CHECKF(t, chat_template_assistant_spans(&ct, m, NULL, NULL, "rec", &text, &sp, &n, &e) == DS_OK, "%s", e.msg);
    CHECK(t, n == 3);
    if (n == 3) {
        const char *eos = "<｜end▁of▁sentence｜>", *calls_end = "<｜tool▁calls▁end｜><｜end▁of▁sentence｜>";
        size_t el = strlen(eos), cl = strlen(calls_end);
        CHECK(t, sp[0].end - sp[0].start == 2 + el && !memcmp(text + sp[0].start, "a1", 2));
        CHECK(t, !strncmp(text + sp[1].start, "<｜tool▁calls▁begin｜>", strlen("<｜tool▁calls▁begin｜>")));
        CHECK(t, sp[1].end - sp[1].start > cl && !memcmp(text + sp[1].end - cl, calls_end, cl));
        CHECK(t, sp[2].end == strlen(text) && !memcmp(text + sp[2].start, "a2", 2));
        const char *before = "<｜tool▁outputs▁end｜>";
        CHECK(t, !memcmp(text + sp[2].start - strlen(before), before, strlen(before)));
    }
    free(text), free(sp);
    json_decref(m);
    snprintf(js, sizeof js, "[{\"role\":\"user\",\"content\":\"q\"},{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[%s]},"
             "{\"role\":\"tool\",\"content\":\"o\"},{\"role\":\"assistant\",\"content\":\"a\"}]", call);
    m = json_loads(js, 0, NULL);
    CHECK(t, chat_template_assistant_spans(&ct, m, NULL, NULL, "data.jsonl:4", &text, &sp, &n, &e) == DS_ERR);
    CHECKF(t, strstr(e.msg, "data.jsonl:4: messages[3]: the template does not end the previous assistant turn") != NULL, "%s", e.msg);
    json_decref(m);
    chat_template_free(&ct);
    free(cfg);
}

UNIT_MAIN(CASE(semantics), CASE(refusals), CASE(malformed_templates_fail_cleanly), CASE(released_templates_match_jinja), CASE(assistant_spans_qwen3), CASE(assistant_spans_deepseek))
