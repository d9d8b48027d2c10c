// ops.cu — row and element-wise ops of the CUDA backend, each the device twin of the CPU op in
// lib/nn/ops.c with the same arguments. Row reductions run one block per row with a fixed tree, so
// a result depends only on the shape, never on timing.
#include <math.h>

#include "cuda/cuda_internal.h"

// Sum over the block (blockDim.x a multiple of 32, at most 1024); every thread gets the result.
static __device__ float block_sum(float v, float *shared) {
    for (int o = 16; o; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32, nw = blockDim.x / 32;
    __syncthreads();
    if (lane == 0) shared[warp] = v;
    __syncthreads();
    v = lane < nw ? shared[lane] : 0;
    for (int o = 16; o; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

static __device__ float block_max(float v, float *shared) {
    for (int o = 16; o; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32, nw = blockDim.x / 32;
    __syncthreads();
    if (lane == 0) shared[warp] = v;
    __syncthreads();
    v = lane < nw ? shared[lane] : -INFINITY;
    for (int o = 16; o; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// ---- embedding ----

static __global__ void embedding_fwd(float *out, const int *tok, const float *table, int N, int C) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)N * C) return;
    size_t n = i / C, c = i % C;
    out[i] = table[(size_t)tok[n] * C + c];
}

// One thread per column walks the rows in order: two rows with the same token add in row order.
static __global__ void embedding_bwd(float *dtable, const float *dout, const int *tok, int N, int C) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    for (int n = 0; n < N; n++) dtable[(size_t)tok[n] * C + c] += dout[(size_t)n * C + c];
}

extern "C" void cuda_embedding_forward(CudaCtx *c, float *out, const int *tokens, const float *table,
                                       int N, int C) {
    embedding_fwd<<<cuda_blocks((size_t)N * C, 256), 256, 0, c->stream>>>(out, tokens, table, N, C);
}

extern "C" void cuda_embedding_backward(CudaCtx *c, float *dtable, const float *dout, const int *tokens,
                                        int N, int C) {
    embedding_bwd<<<cuda_blocks((size_t)C, 128), 128, 0, c->stream>>>(dtable, dout, tokens, N, C);
}

// ---- RMSNorm ----

static __global__ void rmsnorm_fwd(float *out, float *rstd, const float *inp, const float *w, int C,
                                   float eps) {
    __shared__ float sh[32];
    const float *x = inp + (size_t)blockIdx.x * C;
    float *y = out + (size_t)blockIdx.x * C;
    float ss = 0;
    for (int c = threadIdx.x; c < C; c += blockDim.x) ss += x[c] * x[c];
    ss = block_sum(ss, sh);
    float r = rsqrtf(ss / C + eps);
    for (int c = threadIdx.x; c < C; c += blockDim.x) y[c] = x[c] * r * w[c];
    if (threadIdx.x == 0) rstd[blockIdx.x] = r;
}

static __global__ void rmsnorm_bwd_inp(float *dinp, const float *dout, const float *inp, const float *w,
                                       const float *rstd, int C) {
    __shared__ float sh[32];
    size_t row = (size_t)blockIdx.x * C;
    float r = rstd[blockIdx.x], dot = 0;
    for (int c = threadIdx.x; c < C; c += blockDim.x) dot += dout[row + c] * w[c] * inp[row + c];
    dot = block_sum(dot, sh);
    float k = dot * r * r * r / C;
    for (int c = threadIdx.x; c < C; c += blockDim.x)
        dinp[row + c] += r * w[c] * dout[row + c] - inp[row + c] * k;
}

static __global__ void rmsnorm_bwd_w(float *dw, const float *dout, const float *inp, const float *rstd,
                                     int N, int C) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    float s = 0;
    for (int n = 0; n < N; n++) s += dout[(size_t)n * C + c] * inp[(size_t)n * C + c] * rstd[n];
    dw[c] += s;
}

static unsigned row_threads(int C) { return C >= 1024 ? 1024 : C >= 256 ? 256 : 64; }

extern "C" void cuda_rmsnorm_forward(CudaCtx *c, float *out, float *rstd, const float *inp,
                                     const float *weight, int N, int C, double eps) {
    rmsnorm_fwd<<<N, row_threads(C), 0, c->stream>>>(out, rstd, inp, weight, C, (float)eps);
}

extern "C" void cuda_rmsnorm_backward(CudaCtx *c, float *dinp, float *dweight, const float *dout,
                                      const float *inp, const float *weight, const float *rstd, int N,
                                      int C) {
    rmsnorm_bwd_inp<<<N, row_threads(C), 0, c->stream>>>(dinp, dout, inp, weight, rstd, C);
    rmsnorm_bwd_w<<<cuda_blocks((size_t)C, 128), 128, 0, c->stream>>>(dweight, dout, inp, rstd, N, C);
}

// ---- SwiGLU: gu rows are [gate | up] ----

static __global__ void swiglu_fwd(float *out, const float *gu, int N, int F) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)N * F) return;
    size_t n = i / F, f = i % F;
    float g = gu[n * 2 * F + f], u = gu[n * 2 * F + F + f];
    out[i] = g / (1.0f + expf(-g)) * u;
}

static __global__ void swiglu_bwd(float *dgu, const float *dout, const float *gu, int N, int F) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)N * F) return;
    size_t n = i / F, f = i % F;
    float g = gu[n * 2 * F + f], u = gu[n * 2 * F + F + f], d = dout[i];
    float s = 1.0f / (1.0f + expf(-g));
    dgu[n * 2 * F + f] = d * u * s * (1.0f + g * (1.0f - s));
    dgu[n * 2 * F + F + f] = d * g * s;
}

extern "C" void cuda_swiglu_forward(CudaCtx *c, float *out, const float *gu, int N, int F) {
    swiglu_fwd<<<cuda_blocks((size_t)N * F, 256), 256, 0, c->stream>>>(out, gu, N, F);
}

extern "C" void cuda_swiglu_backward(CudaCtx *c, float *dgu, const float *dout, const float *gu, int N,
                                     int F) {
    swiglu_bwd<<<cuda_blocks((size_t)N * F, 256), 256, 0, c->stream>>>(dgu, dout, gu, N, F);
}

// ---- RoPE ----

static __global__ void rope_kernel(float *x, const int *pos, int N, int H, int token_stride,
                                   int head_stride, const float *cs, const float *sn, int half,
                                   int interleaved, int inverse) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)N * H * half) return;
    int p = (int)(i % half), h = (int)(i / half % H), n = (int)(i / half / H);
    float cv = cs[(size_t)pos[n] * half + p], sv = sn[(size_t)pos[n] * half + p];
    if (inverse) sv = -sv;
    float *v = x + (size_t)n * token_stride + (size_t)h * head_stride;
    float *a = v + (interleaved ? 2 * p : p), *b = a + (interleaved ? 1 : half);
    float x0 = *a, x1 = *b;
    *a = x0 * cv - x1 * sv;
    *b = x0 * sv + x1 * cv;
}

extern "C" void cuda_rope_apply(CudaCtx *c, float *x, const int *pos, int N, int H, int token_stride,
                                int head_stride, const float *cos, const float *sin, int dim,
                                int interleaved, int inverse) {
    int half = dim / 2;
    rope_kernel<<<cuda_blocks((size_t)N * H * half, 256), 256, 0, c->stream>>>(
        x, pos, N, H, token_stride, head_stride, cos, sin, half, interleaved, inverse);
}

// ---- log-probabilities over the vocabulary ----

static __global__ void logprob_fwd(float *lp, float *lse, const float *logits, const int *targets, int V) {
    __shared__ float sh[32];
    const float *z = logits + (size_t)blockIdx.x * V;
    float mx = -INFINITY;
    for (int v = threadIdx.x; v < V; v += blockDim.x) mx = fmaxf(mx, z[v]);
    mx = block_max(mx, sh);
    float s = 0;
    for (int v = threadIdx.x; v < V; v += blockDim.x) s += expf(z[v] - mx);
    s = block_sum(s, sh);
    if (threadIdx.x == 0) {
        float l = mx + logf(s);
        int t = targets[blockIdx.x];
        lse[blockIdx.x] = l;
        lp[blockIdx.x] = t >= 0 ? z[t] - l : 0.0f;
    }
}

static __global__ void logprob_bwd(float *dlogits, const float *dlp, const float *logits, const float *lse,
                                   const int *targets, int V) {
    size_t row = (size_t)blockIdx.x * V;
    int t = targets[blockIdx.x];
    float d = t >= 0 ? dlp[blockIdx.x] : 0.0f, l = lse[blockIdx.x];
    for (int v = threadIdx.x; v < V; v += blockDim.x)
        dlogits[row + v] = d * ((v == t ? 1.0f : 0.0f) - expf(logits[row + v] - l));
}

extern "C" void cuda_logprob_forward(CudaCtx *c, float *lp, float *lse, const float *logits,
                                     const int *targets, int N, int V) {
    logprob_fwd<<<N, 1024, 0, c->stream>>>(lp, lse, logits, targets, V);
}

extern "C" void cuda_logprob_backward(CudaCtx *c, float *dlogits, const float *dlp, const float *logits,
                                      const float *lse, const int *targets, int N, int V) {
    logprob_bwd<<<N, 1024, 0, c->stream>>>(dlogits, dlp, logits, lse, targets, V);
}

// ---- causal attention (reference kernel: one block per (sequence, head, query)) ----
// Scores in shared memory, then the probability-weighted sum of values. A flash-style kernel is
// the next step; this one is the device-side reference it will be checked against.

static __global__ void attention_fwd(float *out, float *att, const float *q, const float *k,
                                     const float *v, const int *pos, int T, int H, int Hkv, int dqk,
                                     int dv, float scale) {
    extern __shared__ float p[]; // [T] scores, then 32 floats of reduction space
    float *sh = p + T;
    int i = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
    int kvh = h / (H / Hkv);
    size_t n = (size_t)b * T + i;
    int start = i - pos[n];
    const float *qi = q + n * H * dqk + (size_t)h * dqk;
    for (int j = threadIdx.x; j < T; j += blockDim.x) {
        float s = -INFINITY;
        if (j >= start && j <= i) {
            const float *kj = k + ((size_t)b * T + j) * Hkv * dqk + (size_t)kvh * dqk;
            s = 0;
            for (int d = 0; d < dqk; d++) s += qi[d] * kj[d];
            s *= scale;
        }
        p[j] = s;
    }
    __syncthreads();
    float mx = -INFINITY;
    for (int j = threadIdx.x; j < T; j += blockDim.x) mx = fmaxf(mx, p[j]);
    mx = block_max(mx, sh);
    float sum = 0;
    for (int j = threadIdx.x; j < T; j += blockDim.x) {
        float e = p[j] == -INFINITY ? 0.0f : expf(p[j] - mx);
        p[j] = e;
        sum += e;
    }
    sum = block_sum(sum, sh);
    float inv = 1.0f / sum;
    float *arow = att + (((size_t)b * H + h) * T + i) * T;
    for (int j = threadIdx.x; j < T; j += blockDim.x) arow[j] = p[j] *= inv;
    __syncthreads();
    float *o = out + n * H * dv + (size_t)h * dv;
    for (int d = threadIdx.x; d < dv; d += blockDim.x) {
        float acc = 0;
        for (int j = start; j <= i; j++) acc += p[j] * v[((size_t)b * T + j) * Hkv * dv + (size_t)kvh * dv + d];
        o[d] = acc;
    }
}

extern "C" void cuda_attention_forward(CudaCtx *c, float *out, float *att, const float *q, const float *k,
                                       const float *v, const int *pos, int B, int T, int H, int Hkv,
                                       int dqk, int dv, double scale) {
    size_t shmem = ((size_t)T + 32) * sizeof(float);
    attention_fwd<<<dim3(T, H, B), 128, shmem, c->stream>>>(out, att, q, k, v, pos, T, H, Hkv, dqk, dv,
                                                            (float)scale);
}

// ---- AdamW (as lib/train/adamw.c: bias-corrected moments, decoupled decay lr·wd·w) ----

static __global__ void adamw_kernel(float *w, const float *g, float *m, float *v, const uint8_t *decay,
                                    size_t n, float lr, float b1, float b2, float eps, float wd, float c1,
                                    float c2) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    float gi = g[i];
    m[i] = b1 * m[i] + (1 - b1) * gi;
    v[i] = b2 * v[i] + (1 - b2) * gi * gi;
    float d = decay && decay[i] ? wd : 0.0f;
    w[i] -= lr * (m[i] * c1) / (sqrtf(v[i] * c2) + eps) + d * w[i];
}

extern "C" void cuda_adamw(CudaCtx *c, float *params, const float *grads, float *m, float *v,
                           const uint8_t *decay, size_t n, double lr, double beta1, double beta2,
                           double eps, double weight_decay, long step) {
    float c1 = (float)(1.0 / (1.0 - pow(beta1, (double)step)));
    float c2 = (float)(1.0 / (1.0 - pow(beta2, (double)step)));
    adamw_kernel<<<cuda_blocks(n, 256), 256, 0, c->stream>>>(params, grads, m, v, decay, n, (float)lr,
                                                             (float)beta1, (float)beta2, (float)eps,
                                                             (float)(lr * weight_decay), c1, c2);
}
