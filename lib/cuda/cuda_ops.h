// cuda_ops.h — the CUDA backend's ops: the float ops of lib/nn/ops.h with the same argument order
// and meaning, on device memory, plus the memory calls a driver needs. Built only with CUDA=1
// (nvcc found). Every call is asynchronous on the context's stream; cuda_sync waits for them and
// reports the first error. Results are deterministic for a given GPU and shape: no atomics in
// reductions (the embedding backward scatters column by column in row order).
//
// The kernels are checked against the CPU reference by tests/cuda/test_cuda.c, which skips when no
// device is present. This header is C; the implementation is CUDA C++ behind extern "C".
#ifndef DS_CUDA_OPS_H
#define DS_CUDA_OPS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" { // libds is C: its helpers keep C linkage when nvcc compiles this header as C++
#endif

#include "core/common.h"

typedef struct CudaCtx CudaCtx;

// Number of usable devices (0 when there is no driver or no GPU); name gets device 0's name.
int cuda_device_count(char *name, size_t name_len);
// A context on device `dev`: stream, cuBLAS and cuBLASLt handles, GEMM workspace.
CudaCtx *cuda_ctx_new(int dev, DsErr *e);
void cuda_ctx_free(CudaCtx *c); // accepts NULL
// Waits for the stream; DS_ERR with the first failure ("cuda: kernel rmsnorm_forward: ...").
int cuda_sync(CudaCtx *c, DsErr *e);

// ---- memory: the only way a driver touches device buffers ----
void *cuda_alloc(CudaCtx *c, size_t bytes); // zeroed; aborts with a message when out of memory
void cuda_free(CudaCtx *c, void *p);
void cuda_zero(CudaCtx *c, void *p, size_t bytes);
void cuda_upload(CudaCtx *c, void *dst, const void *src, size_t bytes);
void cuda_download(CudaCtx *c, void *dst, const void *src, size_t bytes); // synchronous
void cuda_copy(CudaCtx *c, void *dst, const void *src, size_t bytes);

// ---- GEMMs ----
typedef enum { CUDA_GEMM_F32, CUDA_GEMM_BF16 } CudaGemm; // bf16: operands rounded, fp32 accumulate
// out[N,OC] = inp[N,C] · weight[OC,C]ᵀ (+ bias)
void cuda_linear_forward(CudaCtx *c, CudaGemm g, float *out, const float *inp, const float *weight,
                         const float *bias, int N, int C, int OC);
// dinp += dout·weight; dweight += doutᵀ·inp; dbias += Σ dout (NULL skips)
void cuda_linear_backward(CudaCtx *c, CudaGemm g, float *dinp, float *dweight, float *dbias,
                          const float *dout, const float *inp, const float *weight, int N, int C,
                          int OC);
// DeepSeek-V3's FP8 GEMM through cuBLASLt's block scaling: inp quantised to E4M3 in 1×128 tiles
// (one fp32 scale per row and 128 columns), weight in 128×128 blocks; fp32 output. DS_ERR when the
// GPU or library does not offer the scale modes (the caller then uses its own kernel).
int cuda_fp8_linear_forward(CudaCtx *c, float *out, const float *inp, const float *weight, int N,
                            int C, int OC, DsErr *e);

// ---- element-wise and row ops (as lib/nn/ops.inc.h) ----
void cuda_embedding_forward(CudaCtx *c, float *out, const int *tokens, const float *table, int N, int C);
void cuda_embedding_backward(CudaCtx *c, float *dtable, const float *dout, const int *tokens, int N, int C);
void cuda_rmsnorm_forward(CudaCtx *c, float *out, float *rstd, const float *inp, const float *weight,
                          int N, int C, double eps);
void cuda_rmsnorm_backward(CudaCtx *c, float *dinp, float *dweight, const float *dout,
                           const float *inp, const float *weight, const float *rstd, int N, int C);
void cuda_swiglu_forward(CudaCtx *c, float *out, const float *gu, int N, int F);
void cuda_swiglu_backward(CudaCtx *c, float *dgu, const float *dout, const float *gu, int N, int F);
// cos/sin are device copies of a Rope's tables as float [max_pos][dim/2].
void cuda_rope_apply(CudaCtx *c, float *x, const int *pos, int N, int H, int token_stride,
                     int head_stride, const float *cos, const float *sin, int dim, int interleaved,
                     int inverse);
// lp[n] = log softmax(logits[n])[targets[n]] (0 where target < 0), lse[n] saved.
void cuda_logprob_forward(CudaCtx *c, float *lp, float *lse, const float *logits, const int *targets,
                          int N, int V);
void cuda_logprob_backward(CudaCtx *c, float *dlogits, const float *dlp, const float *logits,
                           const float *lse, const int *targets, int N, int V);
// Causal attention as attention_forward in ops.inc.h (att[B,H,T,T] keeps the probabilities).
void cuda_attention_forward(CudaCtx *c, float *out, float *att, const float *q, const float *k,
                            const float *v, const int *pos, int B, int T, int H, int Hkv, int dqk,
                            int dv, double scale);
// One AdamW step over n parameters (decay[i] != 0 applies weight decay), bias-corrected at `step`.
void cuda_adamw(CudaCtx *c, float *params, const float *grads, float *m, float *v,
                const uint8_t *decay, size_t n, double lr, double beta1, double beta2, double eps,
                double weight_decay, long step);

#ifdef __cplusplus
}
#endif

#endif
