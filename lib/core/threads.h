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

#endif
