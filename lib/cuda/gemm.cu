// gemm.cu — Linear layers on cuBLAS (fp32, bf16 operands with fp32 accumulation) and DeepSeek-V3's
// fine-grained FP8 GEMM on cuBLASLt's block scaling.
//
// ds's matrices are row-major; cuBLAS is column-major, so a row-major [R,C] matrix is read as a
// column-major [C,R] one and every product is written for the transposes:
//   out[N,OC] = inp·Wᵀ        is  outᶜ(OC×N) = Wᶜᵀ · inpᶜ
//   dinp[N,C] += dout·W       is  dinpᶜ(C×N) += Wᶜ · doutᶜ
//   dW[OC,C]  += doutᵀ·inp    is  dWᶜ(C×OC)  += inpᶜ · doutᶜᵀ
#include <cuda_bf16.h>
#include <cuda_fp8.h>

#include "cuda/cuda_internal.h"

static __global__ void add_bias(float *out, const float *bias, int N, int OC) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < (size_t)N * OC) out[i] += bias[i % OC];
}

// Column sums in row order, one thread per column: deterministic, no atomics.
static __global__ void add_col_sums(float *dbias, const float *dout, int N, int OC) {
    int o = blockIdx.x * blockDim.x + threadIdx.x;
    if (o >= OC) return;
    float s = 0;
    for (int n = 0; n < N; n++) s += dout[(size_t)n * OC + o];
    dbias[o] += s;
}

static __global__ void to_bf16(__nv_bfloat16 *dst, const float *src, size_t n) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) dst[i] = __float2bfloat16_rn(src[i]);
}

// C (m×n, ld ldc) = alpha · op(A) · op(B) + beta · C in fp32 or with bf16 operands.
static void gemm(CudaCtx *c, CudaGemm g, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                 int k, const float *A, int lda, size_t a_elems, const float *B, int ldb,
                 size_t b_elems, float beta, float *C, int ldc) {
    const float alpha = 1;
    if (g == CUDA_GEMM_F32) {
        cublasSgemm(c->blas, ta, tb, m, n, k, &alpha, A, lda, B, ldb, &beta, C, ldc);
        return;
    }
    __nv_bfloat16 *a16 = (__nv_bfloat16 *)cuda_scratch(c, (a_elems + b_elems) * sizeof(__nv_bfloat16));
    __nv_bfloat16 *b16 = a16 + a_elems;
    to_bf16<<<cuda_blocks(a_elems, 256), 256, 0, c->stream>>>(a16, A, a_elems);
    to_bf16<<<cuda_blocks(b_elems, 256), 256, 0, c->stream>>>(b16, B, b_elems);
    cublasGemmEx(c->blas, ta, tb, m, n, k, &alpha, a16, CUDA_R_16BF, lda, b16, CUDA_R_16BF, ldb, &beta,
                 C, CUDA_R_32F, ldc, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
}

extern "C" void cuda_linear_forward(CudaCtx *c, CudaGemm g, float *out, const float *inp,
                                    const float *weight, const float *bias, int N, int C, int OC) {
    gemm(c, g, CUBLAS_OP_T, CUBLAS_OP_N, OC, N, C, weight, C, (size_t)OC * C, inp, C, (size_t)N * C, 0,
         out, OC);
    if (bias) add_bias<<<cuda_blocks((size_t)N * OC, 256), 256, 0, c->stream>>>(out, bias, N, OC);
}

extern "C" void cuda_linear_backward(CudaCtx *c, CudaGemm g, float *dinp, float *dweight, float *dbias,
                                     const float *dout, const float *inp, const float *weight, int N,
                                     int C, int OC) {
    if (dinp)
        gemm(c, g, CUBLAS_OP_N, CUBLAS_OP_N, C, N, OC, weight, C, (size_t)OC * C, dout, OC,
             (size_t)N * OC, 1, dinp, C);
    if (dweight)
        gemm(c, g, CUBLAS_OP_N, CUBLAS_OP_T, C, OC, N, inp, C, (size_t)N * C, dout, OC, (size_t)N * OC, 1,
             dweight, C);
    if (dbias) add_col_sums<<<cuda_blocks((size_t)OC, 128), 128, 0, c->stream>>>(dbias, dout, N, OC);
}

// ---------------------------------------------------------------------------------------------
// FP8. Quantisation as the CPU reference (lib/math/fp8.c) does it: each tile's scale maps its absolute
// maximum to E4M3's 448; the GEMM multiplies the dequantising scales back in, in fp32.

static __device__ float warp_max(float v) {
    for (int o = 16; o; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// One warp per 1×128 tile of a row-major [R, K] matrix: q gets E4M3 values, scale[kb * R + r] the
// dequantising factor (amax / 448), outer dimension contiguous as cuBLASLt's VEC128 mode reads it.
static __global__ void quant_1x128(__nv_fp8_e4m3 *q, float *scale, const float *x, int R, int K) {
    int r = blockIdx.x, kb = blockIdx.y, lane = threadIdx.x;
    int k0 = kb * 128;
    float amax = 0;
    for (int k = k0 + lane; k < k0 + 128 && k < K; k += 32) amax = fmaxf(amax, fabsf(x[(size_t)r * K + k]));
    amax = warp_max(amax);
    float s = amax > 0 ? amax / 448.0f : 1.0f;
    for (int k = k0 + lane; k < k0 + 128 && k < K; k += 32)
        q[(size_t)r * K + k] = __nv_fp8_e4m3(x[(size_t)r * K + k] / s);
    if (lane == 0) scale[(size_t)kb * R + r] = s;
}

// One block of 256 threads per 128×128 block of a row-major [R, K] matrix.
static __global__ void quant_128x128(__nv_fp8_e4m3 *q, float *scale, const float *x, int R, int K) {
    int rb = blockIdx.x, kb = blockIdx.y, t = threadIdx.x;
    __shared__ float red[8];
    float amax = 0;
    for (int i = t; i < 128 * 128; i += 256) {
        int r = rb * 128 + i / 128, k = kb * 128 + i % 128;
        if (r < R && k < K) amax = fmaxf(amax, fabsf(x[(size_t)r * K + k]));
    }
    amax = warp_max(amax);
    if (t % 32 == 0) red[t / 32] = amax;
    __syncthreads();
    if (t < 32) {
        amax = t < 8 ? red[t] : 0;
        amax = warp_max(amax);
        if (t == 0) red[0] = amax;
    }
    __syncthreads();
    float s = red[0] > 0 ? red[0] / 448.0f : 1.0f;
    for (int i = t; i < 128 * 128; i += 256) {
        int r = rb * 128 + i / 128, k = kb * 128 + i % 128;
        if (r < R && k < K) q[(size_t)r * K + k] = __nv_fp8_e4m3(x[(size_t)r * K + k] / s);
    }
    if (t == 0) scale[(size_t)kb * ((R + 127) / 128) + rb] = s;
}

#define LT_TRY(call)                                                                               \
    do {                                                                                           \
        cublasStatus_t st_ = (call);                                                               \
        if (st_ != CUBLAS_STATUS_SUCCESS) {                                                        \
            ds_errf(e, "cuda: cuBLASLt FP8 block scaling: %s failed (status %d)", #call, (int)st_); \
            goto done;                                                                             \
        }                                                                                          \
    } while (0)

extern "C" int cuda_fp8_linear_forward(CudaCtx *c, float *out, const float *inp, const float *weight,
                                       int N, int C, int OC, DsErr *e) {
    int kb = (C + 127) / 128;
    size_t qa = (size_t)OC * C, qb = (size_t)N * C;
    size_t sa = (size_t)kb * ((OC + 127) / 128), sb = (size_t)kb * N;
    // Scratch: E4M3 weight and input, then their fp32 scales (16-byte aligned).
    size_t off_b = (qa + 15) / 16 * 16, off_s = (off_b + qb + 15) / 16 * 16;
    char *base = (char *)cuda_scratch(c, off_s + (sa + sb) * sizeof(float));
    __nv_fp8_e4m3 *wq = (__nv_fp8_e4m3 *)base, *xq = (__nv_fp8_e4m3 *)(base + off_b);
    float *ws = (float *)(base + off_s), *xs = ws + sa;
    quant_128x128<<<dim3((OC + 127) / 128, kb), 256, 0, c->stream>>>(wq, ws, weight, OC, C);
    quant_1x128<<<dim3(N, kb), 32, 0, c->stream>>>(xq, xs, inp, N, C);

    int rc = DS_ERR;
    cublasLtMatmulDesc_t op = NULL;
    cublasLtMatrixLayout_t la = NULL, lb = NULL, lc = NULL;
    cublasLtMatmulPreference_t pref = NULL;
    cublasLtMatmulHeuristicResult_t heur;
    int found = 0;
    const float alpha = 1, beta = 0;
    cublasOperation_t T = CUBLAS_OP_T, Nop = CUBLAS_OP_N;
    // A = weight (K-major, "T"), B = input (K-major, "N"): the TN form FP8 GEMMs require.
    cublasLtMatmulMatrixScale_t blk = CUBLASLT_MATMUL_MATRIX_SCALE_BLK128x128_32F;
    cublasLtMatmulMatrixScale_t vec = CUBLASLT_MATMUL_MATRIX_SCALE_VEC128_32F;
    LT_TRY(cublasLtMatmulDescCreate(&op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    LT_TRY(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &T, sizeof T));
    LT_TRY(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSB, &Nop, sizeof Nop));
    LT_TRY(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_A_SCALE_MODE, &blk, sizeof blk));
    LT_TRY(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_B_SCALE_MODE, &vec, sizeof vec));
    LT_TRY(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &ws, sizeof ws));
    LT_TRY(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &xs, sizeof xs));
    LT_TRY(cublasLtMatrixLayoutCreate(&la, CUDA_R_8F_E4M3, C, OC, C));
    LT_TRY(cublasLtMatrixLayoutCreate(&lb, CUDA_R_8F_E4M3, C, N, C));
    LT_TRY(cublasLtMatrixLayoutCreate(&lc, CUDA_R_32F, OC, N, OC));
    LT_TRY(cublasLtMatmulPreferenceCreate(&pref));
    LT_TRY(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                &c->workspace_bytes, sizeof c->workspace_bytes));
    LT_TRY(cublasLtMatmulAlgoGetHeuristic(c->lt, op, la, lb, lc, lc, pref, 1, &heur, &found));
    if (!found) {
        ds_errf(e, "cuda: cuBLASLt has no FP8 block-scaled GEMM for %dx%dx%d on this GPU", N, C, OC);
        goto done;
    }
    LT_TRY(cublasLtMatmul(c->lt, op, &alpha, wq, la, xq, lb, &beta, out, lc, out, lc, &heur.algo,
                          c->workspace, c->workspace_bytes, c->stream));
    rc = DS_OK;
done:
    if (pref) cublasLtMatmulPreferenceDestroy(pref);
    if (lc) cublasLtMatrixLayoutDestroy(lc);
    if (lb) cublasLtMatrixLayoutDestroy(lb);
    if (la) cublasLtMatrixLayoutDestroy(la);
    if (op) cublasLtMatmulDescDestroy(op);
    return rc;
}
