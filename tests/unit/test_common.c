// test_common.c — sha256, rng, jsonl reader, atomic files.
#include <unistd.h>

#include "core/atomic_file.h"
#include "core/jsonl.h"
#include "core/rng.h"
#include "core/sha256.h"
#include "core/threads.h"
#include "unit.h"

static void sha256_vectors(T *t) {
    char hex[65];
    CHECK(t, strcmp(sha256_hex("", 0, hex),
                    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855") == 0);
    CHECK(t, strcmp(sha256_hex("abc", 3, hex),
                    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") == 0);
    const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    CHECK(t, strcmp(sha256_hex(m, strlen(m), hex),
                    "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1") == 0);
    // Incremental updates in odd pieces equal the one-shot digest (a million 'a's).
    Sha256 s;
    sha256_init(&s);
    char a[997];
    memset(a, 'a', sizeof a);
    size_t left = 1000000;
    while (left) {
        size_t n = left < sizeof a ? left : sizeof a;
        sha256_update(&s, a, n);
        left -= n;
    }
    uint8_t d[32];
    sha256_final(&s, d);
    sha256_to_hex(d, hex);
    CHECK(t, strcmp(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0") == 0);
}

static void rng_streams(T *t) {
    Rng a, b;
    rng_seed(&a, 42);
    rng_seed(&b, 42);
    for (int i = 0; i < 100; i++) CHECK(t, rng_u64(&a) == rng_u64(&b));
    rng_derive(&a, 1, 2, 3);
    rng_derive(&b, 1, 2, 4);
    CHECK(t, rng_u64(&a) != rng_u64(&b));
    // Moments of the normal and uniform generators.
    double s = 0, s2 = 0, u = 0;
    int n = 200000;
    for (int i = 0; i < n; i++) {
        double x = rng_normal(&a);
        s += x, s2 += x * x;
        u += rng_uniform(&a);
    }
    CHECK_CLOSE(t, s / n, 0.0, 0.01);
    CHECK_CLOSE(t, s2 / n, 1.0, 0.02);
    CHECK_CLOSE(t, u / n, 0.5, 0.01);
    int counts[3] = {0};
    for (int i = 0; i < 30000; i++) counts[rng_below(&a, 3)]++;
    for (int i = 0; i < 3; i++) CHECK(t, counts[i] > 9500 && counts[i] < 10500);
}

static char *write_temp(const char *content) {
    char *path = strdup("/tmp/ds-test-XXXXXX");
    int fd = mkstemp(path);
    if (write(fd, content, strlen(content)) < 0) abort();
    close(fd);
    return path;
}

static void jsonl_reads_and_reports(T *t) {
    char *p = write_temp("{\"a\": 1}\n\n{\"a\": 2}\n[1]\n{bad\n{\"a\": 3}\n");
    JsonlReader r;
    DsErr e;
    json_t *o;
    CHECK(t, jsonl_open(&r, p, 0, &e) == DS_OK);
    CHECK(t, jsonl_next(&r, &o, &e) == 1 && json_integer_value(json_object_get(o, "a")) == 1);
    json_decref(o);
    CHECK(t, jsonl_next(&r, &o, &e) == 1 && r.line == 3);
    json_decref(o);
    CHECK(t, jsonl_next(&r, &o, &e) == DS_ERR);
    CHECKF(t, strstr(e.msg, ":4: expected a JSON object") != NULL, "%s", e.msg);
    CHECK(t, jsonl_next(&r, &o, &e) == DS_ERR);
    CHECKF(t, strstr(e.msg, ":5: invalid JSON") != NULL, "%s", e.msg);
    jsonl_close(&r);
    // --skip-bad: the bad lines are skipped and counted.
    CHECK(t, jsonl_open(&r, p, 1, &e) == DS_OK);
    int n = 0;
    while (jsonl_next(&r, &o, &e) == 1) n++, json_decref(o);
    CHECK(t, n == 3 && r.skipped == 2);
    jsonl_close(&r);
    unlink(p);
    free(p);
    // Invalid UTF-8 inside a string is a malformed line.
    p = write_temp("{\"a\": \"\xff\"}\n");
    CHECK(t, jsonl_open(&r, p, 0, &e) == DS_OK);
    CHECK(t, jsonl_next(&r, &o, &e) == DS_ERR && strstr(e.msg, ":1:") != NULL);
    jsonl_close(&r);
    unlink(p);
    free(p);
}

static void atomic_file_commit_and_abort(T *t) {
    char dir[] = "/tmp/ds-atomic-XXXXXX";
    CHECK(t, mkdtemp(dir) != NULL);
    char path[256];
    snprintf(path, sizeof path, "%s/out.txt", dir);
    AtomicFile a;
    DsErr e;
    CHECK(t, atomic_open(&a, path, &e) == DS_OK);
    fputs("hello", a.f);
    CHECK(t, access(path, F_OK) != 0); // not visible before commit
    CHECK(t, atomic_commit(&a, &e) == DS_OK);
    CHECK(t, access(path, F_OK) == 0);
    CHECK(t, atomic_open(&a, path, &e) == DS_OK);
    fputs("partial", a.f);
    atomic_abort(&a);
    char *data;
    size_t len;
    CHECK(t, ds_read_file(path, &data, &len, &e) == DS_OK && len == 5 && memcmp(data, "hello", 5) == 0);
    free(data);
    unlink(path);
    CHECK(t, rmdir(dir) == 0); // no temp file left behind
}

// Records which chunk (tid, i0, i1) covered each index.
typedef struct Cover {
    int tid[64], i0[64], i1[64], hits[64];
} Cover;
static void cover_fn(void *ctx, int tid, int i0, int i1) {
    Cover *c = ctx;
    for (int i = i0; i < i1; i++) c->tid[i] = tid, c->i0[i] = i0, c->i1[i] = i1, __atomic_add_fetch(&c->hits[i], 1, __ATOMIC_RELAXED);
}

// A pool splits a loop exactly as threads_run does (same chunks, same thread ids), every index
// once, for every pool size, thread count and length, many times over on the same pool.
static void threadpool_splits_as_threads_run(T *t) {
    for (int size = 1; size <= 4; size++) {
        ThreadPool *p = threadpool_new(size);
        CHECK(t, (p == NULL) == (size == 1));
        for (int rep = 0; rep < 50; rep++)
            for (int threads = 1; threads <= 5; threads++)
                for (int n = 0; n <= 64; n += 7) {
                    Cover a = {0}, b = {0};
                    threads_run(threads < size ? threads : size, n, cover_fn, &a);
                    threadpool_run(p, threads, n, cover_fn, &b);
                    CHECKF(t, !memcmp(&a, &b, sizeof a), "size %d threads %d n %d", size, threads, n);
                    for (int i = 0; i < n; i++) CHECK(t, b.hits[i] == 1);
                }
        threadpool_free(p);
    }
}

UNIT_MAIN(CASE(sha256_vectors), CASE(rng_streams), CASE(jsonl_reads_and_reports),
          CASE(atomic_file_commit_and_abort), CASE(threadpool_splits_as_threads_run))
