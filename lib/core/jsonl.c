// jsonl.c — streaming JSON-lines reader and writer.
#include "core/jsonl.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/cli.h"

int jsonl_open(JsonlReader *r, const char *path, int skip_bad, DsErr *e) {
    memset(r, 0, sizeof *r);
    r->f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!r->f) return ds_errf(e, "%s: %s", path, strerror(errno));
    r->path = ds_strdup(path);
    r->skip_bad = skip_bad;
    return DS_OK;
}

const char *jsonl_name(const JsonlReader *r) {
    return strcmp(r->path, "-") == 0 ? "<stdin>" : r->path;
}

static int only_space(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n') return 0;
    return 1;
}

int jsonl_next(JsonlReader *r, json_t **obj, DsErr *e) {
    *obj = NULL;
    for (;;) {
        errno = 0;
        ssize_t n = getline(&r->buf, &r->cap, r->f);
        if (n < 0) {
            if (ferror(r->f)) return ds_errf(e, "%s: read error: %s", jsonl_name(r), strerror(errno));
            return 0;
        }
        r->line++;
        if (only_space(r->buf, (size_t)n)) continue;
        json_error_t je;
        // json_loadb validates UTF-8 and rejects NUL bytes inside the line.
        json_t *j = json_loadb(r->buf, (size_t)n, JSON_REJECT_DUPLICATES, &je);
        DsErr bad;
        if (!j)
            ds_errf(&bad, "%s:%ld: invalid JSON: %s (column %d)", jsonl_name(r), r->line, je.text,
                    je.column);
        else if (!json_is_object(j)) {
            ds_errf(&bad, "%s:%ld: expected a JSON object", jsonl_name(r), r->line);
            json_decref(j);
            j = NULL;
        }
        if (j) {
            *obj = j;
            return 1;
        }
        if (!r->skip_bad) {
            if (e) *e = bad;
            return DS_ERR;
        }
        fputs("warning: ", stderr);
        cli_print_escaped(stderr, bad.msg); // quotes the file: no raw control characters
        fputs(" (skipped)\n", stderr);
        r->skipped++;
    }
}

void jsonl_close(JsonlReader *r) {
    if (r->f && r->f != stdin) fclose(r->f);
    free(r->buf);
    free(r->path);
    memset(r, 0, sizeof *r);
}

int jsonl_write(FILE *f, const json_t *obj) {
    char *s = json_dumps(obj, JSON_COMPACT);
    if (!s) return DS_ERR;
    size_t n = strlen(s);
    int bad = fwrite(s, 1, n, f) != n || fputc('\n', f) == EOF;
    free(s);
    return bad ? DS_ERR : DS_OK;
}

int jsonl_get_string(const JsonlReader *r, const json_t *obj, const char *key, const char **out,
                     DsErr *e) {
    json_t *v = json_object_get(obj, key);
    if (!v) return ds_errf(e, "%s:%ld: missing field '%s'", jsonl_name(r), r->line, key);
    if (!json_is_string(v))
        return ds_errf(e, "%s:%ld: field '%s' must be a string", jsonl_name(r), r->line, key);
    *out = json_string_value(v);
    return DS_OK;
}

int jsonl_get_int(const JsonlReader *r, const json_t *obj, const char *key, long long *out,
                  DsErr *e) {
    json_t *v = json_object_get(obj, key);
    if (!v) return ds_errf(e, "%s:%ld: missing field '%s'", jsonl_name(r), r->line, key);
    if (!json_is_integer(v))
        return ds_errf(e, "%s:%ld: field '%s' must be an integer", jsonl_name(r), r->line, key);
    *out = json_integer_value(v);
    return DS_OK;
}

long jsonl_count_lines(const char *path) {
    struct stat sb;
    if (!strcmp(path, "-") || stat(path, &sb) || !S_ISREG(sb.st_mode)) return -1;
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    long n = 0;
    int c, blank = 1;
    while ((c = getc(f)) != EOF) {
        if (c == '\n') {
            n += !blank;
            blank = 1;
        } else if (!isspace(c)) {
            blank = 0;
        }
    }
    n += !blank;
    fclose(f);
    return n;
}
