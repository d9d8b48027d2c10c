// threads.c — split a loop over a few short-lived threads (pthreads, created and joined per call),
// or over a pool of workers kept for the owner's lifetime.
#include "core/threads.h"

#include <pthread.h>

#include "core/common.h"

#include <stdlib.h>

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

// ---------------------------------------------------------------------------------------------
// The pool: the owner publishes a job under the mutex and bumps the generation; each worker runs
// its chunk of every generation it sees and counts itself done; the owner runs chunk 0 and waits
// for the count. A worker whose chunk is empty (fewer chunks than workers) only counts itself.

struct ThreadPool {
    pthread_mutex_t mu;
    pthread_cond_t work, done;
    pthread_t *th;
    int nworkers, started;     // workers asked for, workers running
    unsigned long generation;  // bumped per job
    int pending;               // workers that have not finished the current job
    int quit;
    ThreadsFn fn;              // the current job
    void *ctx;
    int n, chunks;
};

typedef struct Worker {
    ThreadPool *p;
    int tid;                   // 1..nworkers
} Worker;

static void *worker_main(void *arg) {
    Worker w = *(Worker *)arg;
    free(arg);
    ThreadPool *p = w.p;
    unsigned long seen = 0;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->quit && p->generation == seen) pthread_cond_wait(&p->work, &p->mu);
        if (p->quit) break;
        seen = p->generation;
        ThreadsFn fn = p->fn;
        void *ctx = p->ctx;
        int n = p->n, chunks = p->chunks, t = w.tid;
        pthread_mutex_unlock(&p->mu);
        if (t < chunks) fn(ctx, t, (int)((long)n * t / chunks), (int)((long)n * (t + 1) / chunks));
        pthread_mutex_lock(&p->mu);
        if (--p->pending == 0) pthread_cond_signal(&p->done);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

ThreadPool *threadpool_new(int threads) {
    if (threads <= 1) return NULL;
    ThreadPool *p = ds_calloc(1, sizeof *p);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->work, NULL);
    pthread_cond_init(&p->done, NULL);
    p->nworkers = threads - 1;
    p->th = ds_calloc((size_t)p->nworkers, sizeof(pthread_t));
    for (int t = 0; t < p->nworkers; t++) {
        Worker *w = ds_malloc(sizeof *w);
        *w = (Worker){p, t + 1};
        if (pthread_create(&p->th[t], NULL, worker_main, w) != 0) {
            free(w);
            break; // fewer workers: the missing chunks run on the owner
        }
        p->started++;
    }
    return p;
}

void threadpool_free(ThreadPool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->quit = 1;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->mu);
    for (int t = 0; t < p->started; t++) pthread_join(p->th[t], NULL);
    pthread_cond_destroy(&p->work);
    pthread_cond_destroy(&p->done);
    pthread_mutex_destroy(&p->mu);
    free(p->th);
    free(p);
}

void threadpool_run(ThreadPool *p, int threads, int n, ThreadsFn fn, void *ctx) {
    int chunks = threads < n ? threads : n;
    if (!p || chunks <= 1) {
        if (n > 0) fn(ctx, 0, 0, n);
        return;
    }
    if (chunks > p->nworkers + 1) chunks = p->nworkers + 1;
    int run_here = p->started + 1; // chunks beyond the started workers run on the owner
    pthread_mutex_lock(&p->mu);
    p->fn = fn, p->ctx = ctx, p->n = n, p->chunks = chunks;
    p->pending = p->started;
    p->generation++;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->mu);
    fn(ctx, 0, 0, (int)((long)n / chunks));
    for (int t = run_here; t < chunks; t++) fn(ctx, t, (int)((long)n * t / chunks), (int)((long)n * (t + 1) / chunks));
    pthread_mutex_lock(&p->mu);
    while (p->pending > 0) pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}
