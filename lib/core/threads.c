// threads.c — split a loop over a few short-lived threads (pthreads, created and joined per call).
#include "core/threads.h"

#include <pthread.h>

#include "core/common.h"

typedef struct Chunk {
    ThreadsFn fn;
    void *ctx;
    int tid, i0, i1;
} Chunk;

static void *chunk_main(void *arg) {
    Chunk *c = arg;
    c->fn(c->ctx, c->tid, c->i0, c->i1);
    return NULL;
}

// Threads are created per call rather than kept in a pool: a call here does milliseconds of work,
// so the ~20 µs start-up is noise, and no state outlives the call.
void threads_run(int threads, int n, ThreadsFn fn, void *ctx) {
    if (threads > n) threads = n;
    if (threads <= 1) {
        if (n > 0) fn(ctx, 0, 0, n);
        return;
    }
    enum { MAX_THREADS = 256 };
    if (threads > MAX_THREADS) threads = MAX_THREADS;
    Chunk ch[MAX_THREADS];
    pthread_t th[MAX_THREADS];
    unsigned char started[MAX_THREADS] = {0};
    for (int t = 0; t < threads; t++)
        ch[t] = (Chunk){fn, ctx, t, (int)((long)n * t / threads), (int)((long)n * (t + 1) / threads)};
    for (int t = 1; t < threads; t++) started[t] = pthread_create(&th[t], NULL, chunk_main, &ch[t]) == 0;
    chunk_main(&ch[0]);
    for (int t = 1; t < threads; t++) {
        if (started[t]) pthread_join(th[t], NULL);
        else chunk_main(&ch[t]);
    }
}
