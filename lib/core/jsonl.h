// jsonl.h — streaming JSON-lines reader and writer (jansson): one object per line, constant memory.
#ifndef DS_JSONL_H
#define DS_JSONL_H

#include <jansson.h>

#include "core/common.h"

typedef struct JsonlReader {
    FILE *f;
    char *path;   // as given ("-" reads stdin, reported as "<stdin>")
    long line;    // 1-based number of the line last read
    char *buf;    // getline buffer
    size_t cap;
    int skip_bad; // warn on stderr and skip malformed lines instead of failing
    long skipped; // lines skipped under skip_bad
} JsonlReader;

int jsonl_open(JsonlReader *r, const char *path, int skip_bad, DsErr *e);
// Reads the next object: returns 1 and a new reference in *obj, 0 at end of input, DS_ERR with
// "FILE:LINE: what" on a malformed line (invalid JSON, invalid UTF-8, not an object) or read error.
// Blank lines are ignored.
int jsonl_next(JsonlReader *r, json_t **obj, DsErr *e);
void jsonl_close(JsonlReader *r);
// The number of non-blank lines of a regular file (for a progress total), or -1 when path is "-",
// not a regular file or unreadable. Reads the file once; the reader is not affected.
long jsonl_count_lines(const char *path);
const char *jsonl_name(const JsonlReader *r); // path for messages

// Writes obj compactly on one line followed by '\n' (keys in insertion order). Returns DS_ERR on
// a write error.
int jsonl_write(FILE *f, const json_t *obj);

// Typed getters for records: on a missing or mistyped field they fill e with "FILE:LINE: field
// 'NAME' ..." using the reader's position.
int jsonl_get_string(const JsonlReader *r, const json_t *obj, const char *key, const char **out,
                     DsErr *e);
int jsonl_get_int(const JsonlReader *r, const json_t *obj, const char *key, long long *out,
                  DsErr *e);

#endif
