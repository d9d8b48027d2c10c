// context.cu — the CUDA context (stream, cuBLAS and cuBLASLt handles, workspace) and device memory.
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <stdio.h>
#include <string.h>

#include "cuda/cuda_internal.h"

extern "C" int cuda_device_count(char *name, size_t name_len) {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError(); // clear the sticky "no driver" error
        return 0;
    }
    if (n > 0 && name && name_len) {
        cudaDeviceProp p;
        if (cudaGetDeviceProperties(&p, 0) == cudaSuccess) snprintf(name, name_len, "%s (sm_%d%d)", p.name, p.major, p.minor);
    }
    return n;
}

extern "C" CudaCtx *cuda_ctx_new(int dev, DsErr *e) {
    if (cudaSetDevice(dev) != cudaSuccess) {
        ds_errf(e, "cuda: device %d: %s", dev, cudaGetErrorString(cudaGetLastError()));
        return NULL;
    }
    CudaCtx *c = (CudaCtx *)ds_calloc(1, sizeof *c);
    c->dev = dev;
    if (cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking) != cudaSuccess ||
        cublasCreate(&c->blas) != CUBLAS_STATUS_SUCCESS ||
        cublasLtCreate(&c->lt) != CUBLAS_STATUS_SUCCESS) {
        ds_errf(e, "cuda: cannot create the stream or the cuBLAS handles");
        cuda_ctx_free(c);
        return NULL;
    }
    cublasSetStream(c->blas, c->stream);
    // Plain fp32 GEMMs stay fp32: no TF32 unless a caller asks for a lower precision.
    cublasSetMathMode(c->blas, CUBLAS_DEFAULT_MATH);
    c->workspace_bytes = (size_t)32 << 20;
    c->workspace = cuda_alloc(c, c->workspace_bytes);
    return c;
}

extern "C" void cuda_ctx_free(CudaCtx *c) {
    if (!c) return;
    if (c->workspace) cudaFree(c->workspace);
    if (c->scratch) cudaFree(c->scratch);
    if (c->lt) cublasLtDestroy(c->lt);
    if (c->blas) cublasDestroy(c->blas);
    if (c->stream) cudaStreamDestroy(c->stream);
    free(c);
}

extern "C" int cuda_sync(CudaCtx *c, DsErr *e) {
    cudaError_t err = cudaStreamSynchronize(c->stream);
    if (err == cudaSuccess) err = cudaGetLastError();
    if (err != cudaSuccess) return ds_errf(e, "cuda: %s", cudaGetErrorString(err));
    return DS_OK;
}

extern "C" void *cuda_alloc(CudaCtx *c, size_t bytes) {
    void *p = NULL;
    if (cudaMalloc(&p, bytes ? bytes : 1) != cudaSuccess)
        ds_fatal(__FILE__, __LINE__, "cuda: out of device memory (%zu bytes)", bytes);
    cudaMemsetAsync(p, 0, bytes, c->stream);
    return p;
}

extern "C" void cuda_free(CudaCtx *c, void *p) {
    if (!p) return;
    cudaStreamSynchronize(c->stream);
    cudaFree(p);
}

extern "C" void cuda_zero(CudaCtx *c, void *p, size_t bytes) { cudaMemsetAsync(p, 0, bytes, c->stream); }

extern "C" void cuda_upload(CudaCtx *c, void *dst, const void *src, size_t bytes) {
    cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, c->stream);
    cudaStreamSynchronize(c->stream); // src may be reused by the caller right after
}

extern "C" void cuda_download(CudaCtx *c, void *dst, const void *src, size_t bytes) {
    cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, c->stream);
    cudaStreamSynchronize(c->stream);
}

extern "C" void cuda_copy(CudaCtx *c, void *dst, const void *src, size_t bytes) {
    cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, c->stream);
}

// Scratch grows to the largest request and is reused: ops run in stream order, so one buffer
// serves every op of the context.
void *cuda_scratch(CudaCtx *c, size_t bytes) {
    if (bytes > c->scratch_bytes) {
        if (c->scratch) {
            cudaStreamSynchronize(c->stream);
            cudaFree(c->scratch);
        }
        if (cudaMalloc(&c->scratch, bytes) != cudaSuccess)
            ds_fatal(__FILE__, __LINE__, "cuda: out of device memory (%zu bytes of scratch)", bytes);
        c->scratch_bytes = bytes;
    }
    return c->scratch;
}
