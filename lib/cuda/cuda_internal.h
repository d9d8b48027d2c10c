// cuda_internal.h — what the backend's .cu files share: the context's fields and scratch space.
#ifndef DS_CUDA_INTERNAL_H
#define DS_CUDA_INTERNAL_H

#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "cuda/cuda_ops.h"

struct CudaCtx {
    int dev;
    cudaStream_t stream;
    cublasHandle_t blas;
    cublasLtHandle_t lt;
    void *workspace; // cuBLASLt's
    size_t workspace_bytes;
    void *scratch;   // per-op temporaries (bf16 operand copies, FP8 tiles and scales)
    size_t scratch_bytes;
};

void *cuda_scratch(CudaCtx *c, size_t bytes);

static inline unsigned cuda_blocks(size_t n, unsigned threads) { return (unsigned)((n + threads - 1) / threads); }

#endif
