// test_shard.c — tar containers, token shard writer and reader, datasets, inspect.
// Fake shards hold token value BASE + p at dataset position p, so every expected read is arithmetic.
#include <dirent.h>
#include <jansson.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/rng.h"
#include "data/shard.h"
#include "data/tarball.h"
#include "unit.h"

// ---------------------------------------------------------------------------------------------
// Helpers

static char *make_dir(void) {
    char *d = strdup("/tmp/ds-shard-XXXXXX");
    if (!mkdtemp(d)) abort();
    return d;
}

static int count_files(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        if (de->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

// Shards (and other tars) in dir.
static int count_tars(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t l = strlen(de->d_name);
        n += l > 4 && strcmp(de->d_name + l - 4, ".tar") == 0;
    }
    closedir(d);
    return n;
}

static void remove_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *de;
    char p[512];
    while ((de = readdir(d)))
        if (de->d_name[0] != '.') {
            snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
            unlink(p);
        }
    closedir(d);
    rmdir(dir);
}

// Writes documents of the given lengths; document tokens continue the sequence BASE, BASE+1, ...
// Returns 1 on success, -1 on failure.
static int write_docs(const char *prefix, int bits, uint64_t per_shard, const size_t *lens, int ndocs,
                      uint32_t base, const char *tok_hash) {
    ShardWriterOpts o = {prefix, bits, per_shard, tok_hash, "test_shard"};
    DsErr e;
    ShardWriter *w = shard_writer_open(&o, &e);
    if (!w) return -1;
    uint32_t next = base;
    for (int d = 0; d < ndocs; d++) {
        uint32_t *ids = malloc((lens[d] + 1) * sizeof *ids);
        for (size_t i = 0; i < lens[d]; i++) ids[i] = next++;
        int rc = shard_writer_add(w, ids, lens[d], &e);
        free(ids);
        if (rc != DS_OK) {
            shard_writer_abort(w);
            return -1;
        }
    }
    return shard_writer_close(w, &e) == DS_OK ? 1 : -1;
}

// Every read of [pos, pos+n) returns base+pos ... ; checks a spread of ranges.
static void check_reads(T *t, const Dataset *d, uint32_t base) {
    uint64_t N = dataset_ntokens(d);
    uint32_t *buf = malloc((N + 1) * sizeof *buf);
    DsErr e;
    CHECK(t, dataset_read(d, 0, (size_t)N, buf, &e) == DS_OK);
    int bad = 0;
    for (uint64_t i = 0; i < N; i++) bad += buf[i] != base + (uint32_t)i;
    CHECKF(t, bad == 0, "%d wrong tokens in a full read", bad);
    for (uint64_t pos = 0; pos < N; pos += 7) {
        for (size_t n = 0; pos + n <= N && n < 300; n += 41) {
            memset(buf, 0xff, n * sizeof *buf);
            CHECK(t, dataset_read(d, pos, n, buf, &e) == DS_OK);
            for (size_t i = 0; i < n; i++) bad += buf[i] != base + (uint32_t)(pos + i);
        }
    }
    CHECKF(t, bad == 0, "%d wrong tokens in ranged reads", bad);
    CHECK(t, dataset_read(d, N, 0, buf, &e) == DS_OK);
    CHECK(t, dataset_read(d, N, 1, buf, &e) == DS_ERR);
    CHECKF(t, strstr(e.msg, "beyond") != NULL, "%s", e.msg);
    CHECK(t, dataset_read(d, 0, (size_t)N + 1, buf, &e) == DS_ERR);
    CHECK(t, dataset_read(d, UINT64_MAX, 2, buf, &e) == DS_ERR);
    free(buf);
}

static void check_doc_starts(T *t, const Dataset *d, const size_t *lens, int ndocs) {
    CHECK(t, dataset_ndocs(d) == (uint64_t)ndocs);
    uint64_t start = 0;
    int bad = 0;
    for (int i = 0; i < ndocs; i++) {
        bad += dataset_doc_start(d, (uint64_t)i) != start;
        start += lens[i];
    }
    CHECKF(t, bad == 0, "%d wrong document starts", bad);
    CHECK(t, dataset_doc_start(d, (uint64_t)ndocs) == start);
    CHECK(t, dataset_ntokens(d) == start);
}

// Rewrites the tar at path with member `name` replaced by data (other members kept in order).
static int replace_member(const char *path, const char *name, const void *data, size_t n) {
    TarArchive a;
    DsErr e;
    if (tar_read_all(path, &a, &e) != DS_OK) return -1;
    TarWriter *w = tar_writer_open(path, &e);
    int rc = w ? 0 : -1;
    for (int i = 0; w && i < a.n && rc == 0; i++) {
        int mine = strcmp(a.m[i].name, name) == 0;
        rc = tar_writer_add(w, a.m[i].name, mine ? data : a.m[i].data, mine ? n : a.m[i].size, &e);
    }
    if (w) rc = rc == 0 ? tar_writer_close(w, &e) : (tar_writer_abort(w), -1);
    tar_free(&a);
    return rc;
}

// Sets one manifest field to an integer and rewrites the shard.
static int set_manifest_int(const char *path, const char *key, long long v) {
    TarArchive a;
    DsErr e;
    if (tar_read_all(path, &a, &e) != DS_OK) return -1;
    const TarMember *m = tar_find(&a, "manifest.json");
    json_t *j = json_loadb((const char *)m->data, m->size, 0, NULL);
    tar_free(&a);
    if (!j) return -1;
    json_object_set_new(j, key, json_integer(v));
    char *s = json_dumps(j, JSON_INDENT(2));
    json_decref(j);
    int rc = replace_member(path, "manifest.json", s, strlen(s));
    free(s);
    return rc;
}

static const size_t LENS[] = {5, 1, 17, 0, 40, 3, 64, 2, 9, 30, 11, 1, 8, 0, 25};
enum { NLENS = (int)(sizeof LENS / sizeof LENS[0]) };

// ---------------------------------------------------------------------------------------------
// Tar

static void tar_roundtrip(T *t) {
    char *dir = make_dir();
    char p1[256], p2[256];
    snprintf(p1, sizeof p1, "%s/a.tar", dir);
    snprintf(p2, sizeof p2, "%s/b.tar", dir);
    uint8_t big[5000];
    for (size_t i = 0; i < sizeof big; i++) big[i] = (uint8_t)(i * 7);
    char longname[200];
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    memcpy(longname, "dir/", 4);
    for (int k = 0; k < 2; k++) {
        DsErr e;
        TarWriter *w = tar_writer_open(k ? p2 : p1, &e);
        CHECK(t, w != NULL);
        CHECK(t, tar_writer_add(w, "config.json", "{}\n", 3, &e) == DS_OK);
        CHECK(t, tar_writer_add(w, "empty", "", 0, &e) == DS_OK);
        CHECK(t, tar_writer_add(w, "model.bin", big, sizeof big, &e) == DS_OK);
        CHECK(t, tar_writer_add(w, longname, "L", 1, &e) == DS_OK);
        CHECK(t, tar_writer_add(w, "config.json", "x", 1, &e) == DS_ERR);
        CHECKF(t, strstr(e.msg, "duplicate member 'config.json'") != NULL, "%s", e.msg);
        CHECK(t, tar_writer_add(w, "../evil", "x", 1, &e) == DS_ERR);
        CHECK(t, tar_writer_add(w, "/abs", "x", 1, &e) == DS_ERR);
        CHECK(t, tar_writer_add(w, "a//b", "x", 1, &e) == DS_ERR);
        CHECKF(t, strstr(e.msg, "invalid member name") != NULL, "%s", e.msg);
        CHECK(t, access(k ? p2 : p1, F_OK) != 0); // invisible until close
        CHECK(t, tar_writer_close(w, &e) == DS_OK);
    }
    // Same content, same bytes.
    char *d1 = NULL, *d2 = NULL;
    size_t n1 = 0, n2 = 1;
    DsErr e;
    CHECK(t, ds_read_file(p1, &d1, &n1, &e) == DS_OK);
    CHECK(t, ds_read_file(p2, &d2, &n2, &e) == DS_OK);
    CHECK(t, d1 && d2 && n1 == n2 && memcmp(d1, d2, n1) == 0);
    CHECK(t, n1 % 512 == 0);
    free(d1);
    free(d2);
    TarArchive a;
    CHECK(t, tar_read_all(p1, &a, &e) == DS_OK);
    CHECK(t, a.n == 4);
    const TarMember *m = tar_find(&a, "model.bin");
    CHECK(t, m && m->size == sizeof big && memcmp(m->data, big, sizeof big) == 0);
    CHECK(t, m && ((uintptr_t)m->data & 63) == 0);
    m = tar_find(&a, "config.json");
    CHECK(t, m && m->size == 3 && memcmp(m->data, "{}\n", 3) == 0);
    m = tar_find(&a, "empty");
    CHECK(t, m && m->size == 0);
    m = tar_find(&a, longname);
    CHECK(t, m && m->size == 1 && m->data[0] == 'L');
    CHECK(t, tar_find(&a, "missing") == NULL);
    tar_free(&a);
    // Abort leaves nothing behind.
    snprintf(p2, sizeof p2, "%s/c.tar", dir);
    TarWriter *w = tar_writer_open(p2, &e);
    CHECK(t, w && tar_writer_add(w, "x", "1", 1, &e) == DS_OK);
    tar_writer_abort(w);
    CHECK(t, count_files(dir) == 2);
    remove_dir(dir);
    free(dir);
}

static void tar_rejects_damage(T *t) {
    char *dir = make_dir();
    char p[256], q[256];
    snprintf(p, sizeof p, "%s/a.tar", dir);
    snprintf(q, sizeof q, "%s/bad.tar", dir);
    uint8_t big[3000];
    memset(big, 'z', sizeof big);
    DsErr e;
    TarWriter *w = tar_writer_open(p, &e);
    tar_writer_add(w, "one", "1", 1, &e);
    tar_writer_add(w, "two", big, sizeof big, &e);
    CHECK(t, tar_writer_close(w, &e) == DS_OK);
    char *d;
    size_t n;
    CHECK(t, ds_read_file(p, &d, &n, &e) == DS_OK);
    // two's data occupies [1536, 4536); the end-of-archive marker starts at 4608.
    size_t cuts[] = {0, 100, 700, 2000, 4536, 4608, 4608 + 512};
    TarArchive a;
    for (size_t i = 0; i < DS_ARRAY_LEN(cuts); i++) {
        FILE *f = fopen(q, "wb");
        fwrite(d, 1, cuts[i], f);
        fclose(f);
        CHECKF(t, tar_read_all(q, &a, &e) == DS_ERR, "cut at %zu accepted", cuts[i]);
        CHECKF(t, strstr(e.msg, q) != NULL, "%s", e.msg);
        if (cuts[i] >= 2000)
            CHECKF(t, strstr(e.msg, "truncated") != NULL || strstr(e.msg, "Truncated") != NULL,
                   "cut at %zu: %s", cuts[i], e.msg);
    }
    // A flipped byte in a header (two's mode field) breaks its checksum.
    d[1024 + 100] ^= 1;
    FILE *f = fopen(q, "wb");
    fwrite(d, 1, n, f);
    fclose(f);
    CHECK(t, tar_read_all(q, &a, &e) == DS_ERR);
    CHECKF(t, strstr(e.msg, q) != NULL, "%s", e.msg);
    // Not a tar at all.
    f = fopen(q, "wb");
    fputs("hello, this is not a tar archive\n", f);
    fclose(f);
    CHECK(t, tar_read_all(q, &a, &e) == DS_ERR);
    CHECKF(t, strstr(e.msg, "not a tar") != NULL, "%s", e.msg);
    CHECK(t, tar_read_all("/nonexistent/x.tar", &a, &e) == DS_ERR);
    free(d);
    remove_dir(dir);
    free(dir);
}

// Thousands of members: every name is found, and a duplicate anywhere is refused by the writer
// and by the reader (a hand-made archive whose last member repeats the first name).
static void tar_many_members(T *t) {
    char *dir = make_dir();
    char p[256], name[32];
    snprintf(p, sizeof p, "%s/many.tar", dir);
    enum { N = 3000 };
    DsErr e;
    TarWriter *w = tar_writer_open(p, &e);
    int bad = 0;
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof name, "m/%05d", i);
        bad += tar_writer_add(w, name, name, 7, &e) != DS_OK;
    }
    CHECK(t, bad == 0);
    CHECK(t, tar_writer_add(w, "m/01234", "x", 1, &e) == DS_ERR);
    CHECKF(t, strstr(e.msg, "duplicate member 'm/01234'") != NULL, "%s", e.msg);
    CHECK(t, tar_writer_close(w, &e) == DS_OK);
    TarArchive a;
    CHECK(t, tar_read_all(p, &a, &e) == DS_OK && a.n == N);
    for (int i = 0; i < N; i += 7) {
        snprintf(name, sizeof name, "m/%05d", i);
        const TarMember *m = tar_find(&a, name);
        bad += !m || m->size != 7 || memcmp(m->data, name, 7) != 0;
    }
    CHECK(t, bad == 0);
    tar_free(&a);
    // Each member is a 512-byte ustar header and one block of data: rename the last to the first
    // name and fix its header checksum (the sum of the header bytes, the field counted as spaces).
    char *img;
    size_t len;
    CHECK(t, ds_read_file(p, &img, &len, &e) == DS_OK);
    unsigned char *h = (unsigned char *)img + (size_t)(N - 1) * 1024;
    CHECK(t, memcmp(h, "m/02999", 8) == 0);
    memcpy(h, "m/00000", 7);
    memset(h + 148, ' ', 8);
    unsigned sum = 0;
    for (int i = 0; i < 512; i++) sum += h[i];
    snprintf((char *)h + 148, 8, "%06o", sum);
    h[155] = ' ';
    FILE *f = fopen(p, "wb");
    fwrite(img, 1, len, f);
    fclose(f);
    free(img);
    CHECK(t, tar_read_all(p, &a, &e) == DS_ERR);
    CHECKF(t, strstr(e.msg, "duplicate member 'm/00000'") && strstr(e.msg, p), "%s", e.msg);
    remove_dir(dir);
    free(dir);
}

// ---------------------------------------------------------------------------------------------
// Shards and datasets

static void shard_u16_single(T *t) {
    char *dir = make_dir();
    char prefix[256], path[300];
    snprintf(prefix, sizeof prefix, "%s/train", dir);
    snprintf(path, sizeof path, "%s-000000.tar", prefix);
    CHECK(t, write_docs(prefix, 16, 0, LENS, NLENS, 100, "") >= 1);
    CHECK(t, count_files(dir) == 2 && count_tars(dir) == 1); // the shard and its record
    DsErr e;
    Dataset *d = dataset_open(path, &e);
    CHECKF(t, d != NULL, "%s", e.msg);
    if (d) {
        CHECK(t, dataset_nshards(d) == 1);
        CHECK(t, strcmp(dataset_tokenizer_hash(d), "") == 0);
        check_doc_starts(t, d, LENS, NLENS);
        check_reads(t, d, 100);
    }
    dataset_close(d);
    // u16 refuses ids above 65535 and adds nothing.
    ShardWriterOpts o = {prefix, 16, 0, NULL, NULL};
    ShardWriter *w = shard_writer_open(&o, &e);
    uint32_t ids[] = {1, 65535, 65536};
    CHECK(t, shard_writer_add(w, ids, 2, &e) == DS_OK);
    CHECK(t, shard_writer_add(w, ids, 3, &e) == DS_ERR);
    CHECKF(t, strstr(e.msg, "65536") && strstr(e.msg, "u16"), "%s", e.msg);
    CHECK(t, shard_writer_close(w, &e) == DS_OK);
    d = dataset_open(path, &e);
    CHECK(t, d && dataset_ntokens(d) == 2 && dataset_ndocs(d) == 1);
    dataset_close(d);
    // Bad options.
    o.dtype_bits = 8;
    CHECK(t, shard_writer_open(&o, &e) == NULL && strstr(e.msg, "16 or 32"));
    o.dtype_bits = 32;
    o.tokenizer_hash = "abc";
    CHECK(t, shard_writer_open(&o, &e) == NULL && strstr(e.msg, "sha256"));
    remove_dir(dir);
    free(dir);
}

static void shard_u32_multi(T *t) {
    char *dir = make_dir();
    char prefix[256], spec[300];
    snprintf(prefix, sizeof prefix, "%s/train", dir);
    // Ids above 65535 need u32; a 250-token document is longer than a shard.
    size_t lens[3 * NLENS + 1];
    int n = 0;
    for (int r = 0; r < 3; r++)
        for (int i = 0; i < NLENS; i++) lens[n++] = LENS[i];
    lens[20] = 250;
    const char *h = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    CHECK(t, write_docs(prefix, 32, 100, lens, n, 70000, h) > 0);
    int files = count_tars(dir);
    CHECKF(t, files >= 8, "%d shards", files);
    DsErr e;
    Dataset *d = dataset_open(dir, &e); // a directory
    CHECKF(t, d != NULL, "%s", e.msg);
    if (d) {
        CHECK(t, dataset_nshards(d) == files);
        CHECK(t, strcmp(dataset_tokenizer_hash(d), h) == 0);
        check_doc_starts(t, d, lens, n);
        check_reads(t, d, 70000);
        // Documents are never split: every shard boundary is a document boundary, and a shard
        // holds at most 100 tokens unless it holds one document.
        uint64_t prev = 0;
        int bad = 0;
        for (int i = 0; i <= n; i++) {
            uint64_t s = dataset_doc_start(d, (uint64_t)i);
            if (i > 0 && s - prev > 100 && lens[i - 1] <= 100) bad++;
            prev = s;
        }
        CHECK(t, bad == 0);
    }
    dataset_close(d);
    // A glob selects shards by name; a single file is a dataset of one shard.
    snprintf(spec, sizeof spec, "%s-00000[01].tar", prefix);
    d = dataset_open(spec, &e);
    CHECKF(t, d && dataset_nshards(d) == 2, "%s", e.msg);
    if (d) check_reads(t, d, 70000);
    dataset_close(d);
    snprintf(spec, sizeof spec, "%s/nothing-*.tar", dir);
    CHECK(t, dataset_open(spec, &e) == NULL);
    CHECKF(t, strstr(e.msg, "no shards found"), "%s", e.msg);
    snprintf(spec, sizeof spec, "%s/missing.tar", dir);
    CHECK(t, dataset_open(spec, &e) == NULL && strstr(e.msg, "missing.tar"));
    // An empty shard in the middle of the order changes nothing.
    snprintf(spec, sizeof spec, "%s/train-000003", dir);
    ShardWriterOpts o = {spec, 16, 0, h, ""};
    CHECK(t, shard_writer_close(shard_writer_open(&o, &e), &e) == DS_OK);
    d = dataset_open(dir, &e);
    CHECKF(t, d && dataset_nshards(d) == files + 1, "%s", e.msg);
    if (d) {
        check_doc_starts(t, d, lens, n);
        check_reads(t, d, 70000);
    }
    dataset_close(d);
    // Shards recording another tokenizer make the dataset's hash unknown.
    snprintf(prefix, sizeof prefix, "%s/zz", dir);
    CHECK(t, write_docs(prefix, 16, 0, LENS, 2, 0, "") >= 1);
    d = dataset_open(dir, &e);
    CHECK(t, d && strcmp(dataset_tokenizer_hash(d), "") == 0);
    dataset_close(d);
    remove_dir(dir);
    free(dir);
}

static void shard_empty_and_reproducible(T *t) {
    char *dir = make_dir();
    char prefix[256], path[300];
    snprintf(prefix, sizeof prefix, "%s/e", dir);
    snprintf(path, sizeof path, "%s-000000.tar", prefix);
    DsErr e;
    ShardWriterOpts o = {prefix, 32, 10, NULL, "nothing"};
    ShardWriter *w = shard_writer_open(&o, &e);
    CHECK(t, shard_writer_close(w, &e) == DS_OK);
    CHECK(t, count_files(dir) == 2 && count_tars(dir) == 1);
    Dataset *d = dataset_open(path, &e);
    CHECKF(t, d && dataset_ntokens(d) == 0 && dataset_ndocs(d) == 0, "%s", e.msg);
    uint32_t x;
    if (d) {
        CHECK(t, dataset_read(d, 0, 0, &x, &e) == DS_OK);
        CHECK(t, dataset_read(d, 0, 1, &x, &e) == DS_ERR);
        CHECK(t, dataset_doc_start(d, 0) == 0);
    }
    dataset_close(d);
    // The same documents give byte-identical shards.
    char *a = NULL, *b = NULL;
    size_t na = 0, nb = 1;
    CHECK(t, write_docs(prefix, 16, 0, LENS, NLENS, 7, "") >= 1);
    CHECK(t, ds_read_file(path, &a, &na, &e) == DS_OK);
    CHECK(t, write_docs(prefix, 16, 0, LENS, NLENS, 7, "") >= 1);
    CHECK(t, ds_read_file(path, &b, &nb, &e) == DS_OK);
    CHECK(t, a && b && na == nb && memcmp(a, b, na) == 0);
    free(a);
    free(b);
    // Abort deletes every shard written so far.
    remove_dir(dir);
    CHECK(t, mkdir(dir, 0700) == 0);
    o.tokens_per_shard = 4;
    w = shard_writer_open(&o, &e);
    uint32_t ids[3] = {1, 2, 3};
    for (int i = 0; i < 10; i++) CHECK(t, shard_writer_add(w, ids, 3, &e) == DS_OK);
    CHECK(t, shard_writer_nshards(w) == 9);
    CHECK(t, count_files(dir) == 9);
    shard_writer_abort(w);
    CHECK(t, count_files(dir) == 0);
    remove_dir(dir);
    free(dir);
}

// Writes one good shard at dir/s-000000.tar and returns its path.
static char *good_shard(const char *dir) {
    char prefix[256];
    snprintf(prefix, sizeof prefix, "%s/s", dir);
    if (write_docs(prefix, 16, 0, LENS, NLENS, 0, "") < 1) abort();
    char *p = malloc(300);
    snprintf(p, 300, "%s-000000.tar", prefix);
    return p;
}

static void expect_bad(T *t, const char *path, const char *what) {
    DsErr e = {{0}};
    Dataset *d = dataset_open(path, &e);
    CHECKF(t, d == NULL, "accepted a shard that should fail with '%s'", what);
    dataset_close(d);
    CHECKF(t, strstr(e.msg, path) != NULL && strstr(e.msg, what) != NULL,
           "expected '%s' in: %s", what, e.msg);
}

static void shard_rejects_damage(T *t) {
    char *dir = make_dir();
    char *path = good_shard(dir);
    char *img;
    size_t len;
    DsErr e;
    CHECK(t, ds_read_file(path, &img, &len, &e) == DS_OK);
    // Truncated anywhere: inside the token data, at a member boundary, in the end marker.
    TarSpan *sp;
    int ns;
    CHECK(t, tar_index((const uint8_t *)img, len, path, &sp, &ns, &e) == DS_OK && ns == 3);
    size_t cuts[] = {sp[1].offset + 3, sp[2].offset - 512, len - 1024, len - 1};
    for (size_t i = 0; i < DS_ARRAY_LEN(cuts); i++) {
        FILE *f = fopen(path, "wb");
        fwrite(img, 1, cuts[i], f);
        fclose(f);
        expect_bad(t, path, "truncated");
    }
    // A flipped token byte breaks the content hash.
    img[sp[1].offset + 11] ^= 0x20;
    FILE *f = fopen(path, "wb");
    fwrite(img, 1, len, f);
    fclose(f);
    expect_bad(t, path, "content hash mismatch");
    // Offsets that do not add up (with a recomputed hash would still fail the ordering check).
    img[sp[1].offset + 11] ^= 0x20;
    img[sp[2].offset + 8] = 0xff;
    f = fopen(path, "wb");
    fwrite(img, 1, len, f);
    fclose(f);
    expect_bad(t, path, "offsets.bin: document 0 ends at");
    tar_spans_free(sp, ns);
    free(img);
    free(path);
    // Manifest counts that disagree with the members.
    path = good_shard(dir);
    CHECK(t, set_manifest_int(path, "n_tokens", 9999) == 0);
    expect_bad(t, path, "tokens.bin holds");
    path = (free(path), good_shard(dir));
    CHECK(t, set_manifest_int(path, "n_docs", 3) == 0);
    expect_bad(t, path, "offsets.bin holds");
    path = (free(path), good_shard(dir));
    CHECK(t, set_manifest_int(path, "version", 2) == 0);
    expect_bad(t, path, "unsupported shard format version 2");
    path = (free(path), good_shard(dir));
    CHECK(t, set_manifest_int(path, "dtype", 16) == 0);
    expect_bad(t, path, "field 'dtype' must be a string");
    path = (free(path), good_shard(dir));
    CHECK(t, replace_member(path, "manifest.json", "{\"format\": ", 11) == 0);
    expect_bad(t, path, "manifest.json:1: invalid JSON");
    // A tar without the shard members.
    TarWriter *w = tar_writer_open(path, &e);
    tar_writer_add(w, "readme.txt", "hi", 2, &e);
    CHECK(t, tar_writer_close(w, &e) == DS_OK);
    expect_bad(t, path, "no member 'manifest.json'");
    free(path);
    remove_dir(dir);
    free(dir);
}

static void shard_inspect_output(T *t) {
    char *dir = make_dir();
    char *path = good_shard(dir);
    char *buf = NULL;
    size_t len = 0;
    DsErr e;
    FILE *f = open_memstream(&buf, &len);
    CHECK(t, shard_inspect(path, f, 0, &e) == DS_OK);
    fclose(f);
    CHECKF(t, strstr(buf, "verified        ok\n") != NULL, "%s", buf);
    CHECKF(t, strstr(buf, "n_tokens        216\n") != NULL, "%s", buf);
    CHECKF(t, strstr(buf, "doc length      min 0, mean 14.4, max 64\n") != NULL, "%s", buf);
    free(buf);
    f = open_memstream(&buf, &len);
    CHECK(t, shard_inspect(path, f, 1, &e) == DS_OK);
    fclose(f);
    json_t *j = json_loads(buf, 0, NULL);
    CHECKF(t, j != NULL, "%s", buf);
    CHECK(t, json_is_true(json_object_get(j, "ok")));
    json_t *m = json_object_get(j, "manifest");
    CHECK(t, json_integer_value(json_object_get(m, "n_docs")) == NLENS);
    CHECK(t, strcmp(json_string_value(json_object_get(m, "dtype")), "u16") == 0);
    CHECK(t, strcmp(json_string_value(json_object_get(m, "format")), "ds-token-shard") == 0);
    CHECK(t, strlen(json_string_value(json_object_get(m, "content_hash"))) == 64);
    CHECK(t, strcmp(json_string_value(json_object_get(m, "source")), "test_shard") == 0);
    CHECK(t, strncmp(json_string_value(json_object_get(m, "created_by")), "ds ", 3) == 0);
    json_decref(j);
    free(buf);
    // A bad shard: the manifest is still shown, the verdict and DS_ERR say what is wrong.
    CHECK(t, set_manifest_int(path, "n_tokens", 5) == 0);
    f = open_memstream(&buf, &len);
    CHECK(t, shard_inspect(path, f, 1, &e) == DS_ERR);
    fclose(f);
    CHECKF(t, strstr(e.msg, "tokens.bin holds") != NULL, "%s", e.msg);
    j = json_loads(buf, 0, NULL);
    CHECK(t, j && json_is_false(json_object_get(j, "ok")));
    CHECK(t, j && strstr(json_string_value(json_object_get(j, "error")), "tokens.bin holds"));
    json_decref(j);
    free(buf);
    f = open_memstream(&buf, &len);
    CHECK(t, shard_inspect(path, f, 0, &e) == DS_ERR);
    fclose(f);
    CHECKF(t, strstr(buf, "verified        FAILED\n") != NULL, "%s", buf);
    free(buf);
    free(path);
    remove_dir(dir);
    free(dir);
}

// Whether two manifest texts agree on the fields that define the data.
static int same_data_fields(const void *a, const void *b, size_t n) {
    json_t *x = json_loadb(a, n, 0, NULL), *y = json_loadb(b, n, 0, NULL);
    int same = x && y;
    const char *keys[] = {"format",       "version",     "dtype", "n_tokens", "n_docs",
                          "max_token_id", "content_hash"};
    for (size_t i = 0; same && i < DS_ARRAY_LEN(keys); i++)
        same = json_equal(json_object_get(x, keys[i]), json_object_get(y, keys[i]));
    json_decref(x);
    json_decref(y);
    return same;
}

// Random byte flips and truncations of a good shard are refused with a message naming it unless
// they change nothing that defines the data (the content hash covers the data, the tar checksums the
// headers, the checks the manifest), and never read outside the file (the sanitizer build checks).
static void shard_mutations(T *t) {
    char *dir = make_dir();
    char *path = good_shard(dir);
    char *img;
    size_t len;
    DsErr e;
    CHECK(t, ds_read_file(path, &img, &len, &e) == DS_OK);
    uint8_t *m = malloc(len);
    Rng r;
    rng_seed(&r, 5);
    int accepted = 0, unnamed = 0, tries = 1000;
    for (int it = 0; it < tries; it++) {
        memcpy(m, img, len);
        size_t n = len;
        // Flip bytes before the end-of-archive marker (zeros there may be anything a tar ignores).
        size_t at = (size_t)rng_below(&r, len - 1024);
        uint8_t x = (uint8_t)(1 + rng_below(&r, 255));
        m[at] ^= x;
        if (it % 4 == 0) n = (size_t)rng_below(&r, len);
        FILE *f = fopen(path, "wb");
        fwrite(m, 1, n, f);
        fclose(f);
        Dataset *d = dataset_open(path, &e);
        if (d) {
            // Harmless flips: in the zero padding after a member's data (nothing reads it), or in
            // a manifest field that describes rather than defines the data (source, created_by,
            // shard_index, tokenizer_hash: the manifest is not itself hashed).
            TarSpan *sp;
            int ns, harmful = n < len;
            if (tar_index(m, n, path, &sp, &ns, &e) == DS_OK) {
                for (int i = 0; i < ns; i++) {
                    if (at < sp[i].offset || at >= sp[i].offset + sp[i].size) continue;
                    harmful = 1;
                    if (strcmp(sp[i].name, "manifest.json") == 0)
                        harmful = !same_data_fields(img + sp[i].offset, m + sp[i].offset,
                                                    sp[i].size);
                }
                tar_spans_free(sp, ns);
            }
            if (harmful)
                fprintf(stderr, "accepted: flip at %zu (^%02x), %zu of %zu bytes\n", at, x, n, len);
            accepted += harmful;
            dataset_close(d);
        } else {
            unnamed += strstr(e.msg, path) == NULL;
        }
    }
    CHECKF(t, accepted == 0, "%d damaged shards accepted", accepted);
    CHECKF(t, unnamed == 0, "%d errors without the shard's name", unnamed);
    free(m);
    free(img);
    free(path);
    remove_dir(dir);
    free(dir);
}

// ---------------------------------------------------------------------------------------------
// Dataset records: complete or absent

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    fputs(text, f);
    fclose(f);
}

static void copy_file(const char *from, const char *to) {
    char *d;
    size_t n;
    DsErr e;
    if (ds_read_file(from, &d, &n, &e) != DS_OK) abort();
    FILE *f = fopen(to, "wb");
    fwrite(d, 1, n, f);
    fclose(f);
    free(d);
}

static void expect_open_fails(T *t, const char *spec, const char *a, const char *b) {
    DsErr e = {{0}};
    Dataset *d = dataset_open(spec, &e);
    CHECKF(t, d == NULL, "%s: accepted, expected '%s'", spec, a);
    dataset_close(d);
    CHECKF(t, strstr(e.msg, a) && strstr(e.msg, b), "expected '%s' and '%s' in: %s", a, b, e.msg);
}

// A pid that no process has now: a child that has exited and been reaped.
static long dead_pid(void) {
    pid_t p = fork();
    if (p == 0) _exit(0);
    waitpid(p, NULL, 0);
    return (long)p;
}

static void dataset_record(T *t) {
    char *dir = make_dir();
    char prefix[256], rec[300], s0[300], s2[300], s4[300], other[300], spec[300];
    snprintf(prefix, sizeof prefix, "%s/train", dir);
    snprintf(rec, sizeof rec, "%s.dataset.json", prefix);
    snprintf(s0, sizeof s0, "%s-000000.tar", prefix);
    snprintf(s2, sizeof s2, "%s-000002.tar", prefix);
    snprintf(s4, sizeof s4, "%s-000004.tar", prefix);
    CHECK(t, write_docs(prefix, 16, 50, LENS, NLENS, 0, "") > 0);
    int nsh = count_tars(dir);
    CHECKF(t, nsh == 5, "%d shards", nsh);
    // The record lists every shard with its counts, largest id and content hash.
    json_t *r = json_load_file(rec, 0, NULL);
    CHECK(t, r != NULL);
    CHECK(t, strcmp(json_string_value(json_object_get(r, "format")), "ds-token-dataset") == 0);
    CHECK(t, json_integer_value(json_object_get(r, "n_shards")) == nsh);
    CHECK(t, json_integer_value(json_object_get(r, "n_tokens")) == 216);
    CHECK(t, json_integer_value(json_object_get(r, "max_token_id")) == 215);
    json_t *sh = json_object_get(r, "shards");
    CHECK(t, json_array_size(sh) == (size_t)nsh);
    CHECK(t, strcmp(json_string_value(json_object_get(json_array_get(sh, 0), "file")),
                    "train-000000.tar") == 0);
    json_decref(r);
    DsErr e;
    Dataset *d = dataset_open(dir, &e);
    CHECKF(t, d && dataset_max_token_id(d) == 215, "%s", e.msg);
    dataset_close(d);
    // Without the record (an interrupted run) no spec reads the shards.
    char *saved;
    size_t saved_len;
    CHECK(t, ds_read_file(rec, &saved, &saved_len, &e) == DS_OK);
    unlink(rec);
    expect_open_fails(t, dir, "incomplete dataset", rec);
    expect_open_fails(t, s0, "incomplete dataset", s0);
    snprintf(spec, sizeof spec, "%s-*.tar", prefix);
    expect_open_fails(t, spec, "encode the data again", s0);
    write_file(rec, saved);
    // A folder must hold every listed shard; a glob or a file may pick some.
    char moved[300];
    snprintf(moved, sizeof moved, "%s/moved", dir);
    CHECK(t, rename(s2, moved) == 0);
    expect_open_fails(t, dir, "train-000002.tar listed in", "is missing");
    snprintf(spec, sizeof spec, "%s-00000[01].tar", prefix);
    d = dataset_open(spec, &e);
    CHECKF(t, d && dataset_nshards(d) == 2, "%s", e.msg);
    dataset_close(d);
    CHECK(t, rename(moved, s2) == 0);
    // A shard the record does not list, or whose content differs from it, is refused.
    snprintf(other, sizeof other, "%s-000009.tar", prefix);
    copy_file(s0, other);
    expect_open_fails(t, dir, other, "not listed in");
    unlink(other);
    copy_file(s0, s4);
    expect_open_fails(t, dir, s4, "content differs");
    // A shard not named PREFIX-NNNNNN.tar has no record to find.
    snprintf(other, sizeof other, "%s/renamed.tar", dir);
    copy_file(s0, other);
    expect_open_fails(t, other, other, "PREFIX-NNNNNN.tar");
    unlink(other);
    // A new run with the prefix replaces the dataset whole: its record goes first, and shards and
    // dead writers' temps of the old run go too (a live writer's temp and other prefixes stay).
    char dead[400], live[400], keep[300];
    snprintf(dead, sizeof dead, "%s.tmp.%ld.abcdef", s4, dead_pid());
    snprintf(live, sizeof live, "%s.tmp.%ld.abcdef", s4, (long)getppid());
    snprintf(keep, sizeof keep, "%s/train-x-000000.tar", dir);
    write_file(dead, "x");
    write_file(live, "x");
    write_file(keep, "x");
    ShardWriterOpts o = {prefix, 16, 0, NULL, ""};
    ShardWriter *w = shard_writer_open(&o, &e);
    CHECK(t, w != NULL);
    CHECK(t, access(rec, F_OK) != 0 && access(s0, F_OK) != 0 && access(s4, F_OK) != 0);
    CHECK(t, access(dead, F_OK) != 0);
    CHECK(t, access(live, F_OK) == 0 && access(keep, F_OK) == 0);
    uint32_t ids[] = {3, 1, 2};
    CHECK(t, shard_writer_add(w, ids, 3, &e) == DS_OK);
    CHECK(t, shard_writer_close(w, &e) == DS_OK);
    unlink(live);
    unlink(keep);
    d = dataset_open(dir, &e);
    CHECKF(t, d && dataset_nshards(d) == 1 && dataset_ntokens(d) == 3 && dataset_max_token_id(d) == 3,
           "%s", e.msg);
    dataset_close(d);
    free(saved);
    remove_dir(dir);
    free(dir);
}

// Ids at or past a model's vocab_size are found from the verified data, named with their shard
// and position; a manifest max_token_id that disagrees with the data is refused.
static void dataset_vocab_check(T *t) {
    char *dir = make_dir();
    char prefix[256], path[300];
    snprintf(prefix, sizeof prefix, "%s/v", dir);
    snprintf(path, sizeof path, "%s-000001.tar", prefix);
    ShardWriterOpts o = {prefix, 16, 4, NULL, ""};
    DsErr e;
    ShardWriter *w = shard_writer_open(&o, &e);
    uint32_t a[] = {0, 511, 7, 3}, b[] = {5, 600, 65535};
    CHECK(t, shard_writer_add(w, a, 4, &e) == DS_OK);
    CHECK(t, shard_writer_add(w, b, 3, &e) == DS_OK);
    CHECK(t, shard_writer_close(w, &e) == DS_OK);
    Dataset *d = dataset_open(dir, &e);
    CHECKF(t, d != NULL, "%s", e.msg);
    if (d) {
        CHECK(t, dataset_max_token_id(d) == 65535);
        CHECK(t, dataset_check_vocab(d, 65536, &e) == DS_OK);
        CHECK(t, dataset_check_vocab(d, 600, &e) == DS_ERR);
        CHECKF(t, strstr(e.msg, path) && strstr(e.msg, "token 1 has id 600") &&
                      strstr(e.msg, "vocab_size 600"),
               "%s", e.msg);
        CHECK(t, dataset_check_vocab(d, 512, &e) == DS_ERR);
        CHECKF(t, strstr(e.msg, "id 600"), "%s", e.msg);
    }
    dataset_close(d);
    // The first shard is within 512; only the second is named.
    snprintf(path, sizeof path, "%s-000000.tar", prefix);
    d = dataset_open(path, &e);
    CHECK(t, d && dataset_check_vocab(d, 512, &e) == DS_OK);
    dataset_close(d);
    CHECK(t, set_manifest_int(path, "max_token_id", 5) == 0);
    expect_bad(t, path, "max_token_id is wrong but the largest id in tokens.bin is 511");
    remove_dir(dir);
    free(dir);
}

// Writes shards for the shell tests into $SHARD_OUT (a prefix): u16, 5 shards of <= 50 tokens.
// Without SHARD_OUT (a plain run of every case) there is nothing to make.
static void make_fixture(T *t) {
    const char *prefix = getenv("SHARD_OUT");
    if (prefix) CHECK(t, write_docs(prefix, 16, 50, LENS, NLENS, 0, "") > 0);
}

UNIT_MAIN(CASE(tar_roundtrip), CASE(tar_rejects_damage), CASE(tar_many_members), CASE(shard_u16_single),
          CASE(shard_u32_multi), CASE(shard_empty_and_reproducible), CASE(shard_rejects_damage),
          CASE(shard_inspect_output), CASE(shard_mutations), CASE(dataset_record),
          CASE(dataset_vocab_check), CASE(make_fixture))
