// threads.h — split a loop over a few short-lived threads; the split depends only on (n, threads).
#ifndef DS_THREADS_H
#define DS_THREADS_H

// Body of a parallel loop: handles items [i0, i1) as worker `tid` (0 = the calling thread).
typedef void (*ThreadsFn)(void *ctx, int tid, int i0, int i1);

// Runs fn over [0, n) in `threads` contiguous chunks, chunk t = [n*t/threads, n*(t+1)/threads),
// chunk 0 on the caller and the others on new threads, and returns when all are done. With
// threads <= 1 (or n <= 1) it is a plain call fn(ctx, 0, 0, n). A thread that cannot be started
// runs its chunk on the caller, so the result never depends on thread creation succeeding.
void threads_run(int threads, int n, ThreadsFn fn, void *ctx);

// A pool of threads - 1 workers started once and kept, for callers that split many short loops
// (the inference engine: a hundred splits per forward). threadpool_run splits exactly as
// threads_run does, so results are the same with either. A pool runs one loop at a time: it
// belongs to one caller (its owner), which must not call it from inside fn.
typedef struct ThreadPool ThreadPool;
ThreadPool *threadpool_new(int threads); // NULL when threads <= 1 (threadpool_run then runs inline)
void threadpool_free(ThreadPool *p);
// Runs fn over [0, n) in min(threads, pool size, n) chunks, as threads_run(threads, n, fn, ctx).
void threadpool_run(ThreadPool *p, int threads, int n, ThreadsFn fn, void *ctx);

#endif
