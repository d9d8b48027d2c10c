// backend.h — the device seam: the memory API through which the model and engine drivers touch
// their buffers. Every pointer a lib/nn op takes is backend memory; drivers allocate, zero and copy
// it only through a Backend, and host code reads or writes it only through upload/download, at the
// crossings listed in docs/BACKEND.md.
//
// A backend is a table of functions chosen at run time (ggml's backend interface, llm.c's
// cudaMalloc/cudaMemcpy pairs): the CPU table below is the only one built today; a CUDA table
// supplies the same functions over device memory, and the ops of lib/nn (ops.h, moe.h) are the
// kernels it must provide. The table is immutable, so sharing it breaks no "no mutable globals".
#ifndef DS_NN_BACKEND_H
#define DS_NN_BACKEND_H

#include <stddef.h>

typedef struct Backend {
    const char *name;
    // bytes of backend memory, aligned for vector loads, zeroed; aborts when out of memory
    void *(*alloc)(size_t bytes);
    void (*free)(void *p);                                         // NULL is fine
    void (*zero)(void *p, size_t bytes);
    void (*copy)(void *dst, const void *src, size_t bytes);        // backend → backend
    void (*upload)(void *dst, const void *host, size_t bytes);     // host → backend
    void (*download)(void *host, const void *src, size_t bytes);   // backend → host
    // worker threads of the ops (the CPU backend: OpenBLAS's pool, which the ops also split
    // their own outer loops over)
    void (*set_threads)(int n);
    int (*threads)(void);
} Backend;

// One allocation per lifetime (llm.c's malloc_and_point_activations): a layout function takes its
// buffers from a plan twice, first with base NULL to add up the sizes (it gets NULL pointers and
// must not use them), then with base = one allocation of that size to point into it.
typedef struct BufPlan {
    char *base;  // NULL while sizing
    size_t used; // bytes handed out so far, each buffer 64-byte aligned
} BufPlan;

static inline void *bufplan_take(BufPlan *p, size_t bytes) {
    size_t at = (p->used + 63) / 64 * 64;
    p->used = at + (bytes ? bytes : 1);
    return p->base ? p->base + at : NULL;
}

// The CPU backend: host memory, OpenBLAS and lib/threads.
const Backend *backend_cpu(void);
// The backend called name ("cpu"), or NULL when this build has none of that name.
const Backend *backend_find(const char *name);

#endif
