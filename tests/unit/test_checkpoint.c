// test_checkpoint.c — checkpoint folders refused with messages that show the real shapes, and
// folder export that is all or nothing. The model config is recipes/tiny-moe.json ($CONFIG).
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint/checkpoint.h"
#include "unit.h"

static char *make_dir(void) {
    char *d = strdup("/tmp/ds-ckpt-XXXXXX");
    if (!mkdtemp(d)) abort();
    return d;
}

static void put_file(const char *dir, const char *name, const void *data, size_t n) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    if (!f) abort();
    fwrite(data, 1, n, f);
    fclose(f);
}

static void remove_files(const char *dir) {
    static const char *names[] = {"config.json", "model.safetensors", "tokenizer.json"};
    char p[512];
    for (size_t i = 0; i < DS_ARRAY_LEN(names); i++) {
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        unlink(p);
    }
}

// Writes dir/config.json and a model.safetensors whose tensor `bad` (a 1-D one) has the given
// shape instead of its own; opens the folder and returns the error message.
static void open_with_shape(T *t, const char *want, int ndim, const int64_t *shape) {
    const char *cfgpath = getenv("CONFIG");
    if (!cfgpath) cfgpath = "recipes/tiny-moe.json";
    char *text;
    size_t len;
    DsErr e;
    CHECKF(t, ds_read_file(cfgpath, &text, &len, &e) == DS_OK, "%s", e.msg);
    ModelConfig cfg;
    CHECK(t, config_from_string(&cfg, text, len, cfgpath, &e) == DS_OK);
    ModelLayout L;
    layout_build(&L, &cfg);
    int bad = -1;
    for (int i = 0; i < L.np && bad < 0; i++)
        if (L.p[i].ndim == 1) bad = i;
    CHECK(t, bad >= 0);
    size_t most = 0;
    for (int i = 0; i < L.np; i++) most = DS_MAX(most, L.p[i].numel);
    int64_t n = 1;
    for (int k = 0; k < ndim; k++) n *= shape[k];
    float *zeros = calloc(DS_MAX(most, (size_t)n) + 1, sizeof *zeros);
    StWriter *w = st_writer_new();
    for (int i = 0; i < L.np; i++) {
        if (i == bad) st_writer_add(w, L.p[i].name, ST_F32, ndim, shape, zeros);
        else st_writer_add(w, L.p[i].name, ST_F32, L.p[i].ndim, L.p[i].shape, zeros);
    }
    DsBuf st = {0};
    st_writer_serialize(w, &st);
    st_writer_free(w);
    char *dir = make_dir();
    put_file(dir, "config.json", text, len);
    put_file(dir, "model.safetensors", st.data, st.len);
    Checkpoint ck;
    CHECK(t, ckpt_open(&ck, dir, &e) == DS_ERR);
    char needs[64];
    snprintf(needs, sizeof needs, "config.json needs [%lld]", (long long)L.p[bad].shape[0]);
    CHECKF(t, strstr(e.msg, want) && strstr(e.msg, needs), "expected '%s' and '%s' in: %s", want, needs, e.msg);
    remove_files(dir);
    rmdir(dir);
    free(dir);
    dsbuf_free(&st);
    free(zeros);
    free(text);
    layout_free(&L);
}

static void shape_messages(T *t) {
    int64_t one[1] = {3}, three[3] = {4, 8, 2}, eight[8] = {1, 2, 1, 2, 1, 2, 1, 3};
    open_with_shape(t, "has shape [3],", 1, one);
    open_with_shape(t, "has shape [4, 8, 2],", 3, three);
    open_with_shape(t, "has shape [1, 2, 1, 2, 1, 2, 1, 3],", 8, eight);
}

UNIT_MAIN(CASE(shape_messages))
