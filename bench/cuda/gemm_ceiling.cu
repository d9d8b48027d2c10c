// gemm_ceiling.cu — the GPU's measured ceilings, the denominators of every GPU ratio ds reports:
// dense bf16 GEMM TFLOP/s through cuBLAS (fp32 accumulation) at a few large square sizes, and
// device-to-device copy bandwidth. Prints one JSON line per measurement.
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <stdio.h>

static float time_ms(cudaEvent_t a, cudaEvent_t b) {
    float ms = 0;
    cudaEventSynchronize(b);
    cudaEventElapsedTime(&ms, a, b);
    return ms;
}

int main(void) {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0) {
        puts("{\"skip\": \"no CUDA device\"}");
        return 77;
    }
    cudaDeviceProp p;
    cudaGetDeviceProperties(&p, 0);
    printf("{\"device\": \"%s\", \"sm\": %d%d, \"memory_gib\": %.1f}\n", p.name, p.major, p.minor,
           (double)p.totalGlobalMem / (1 << 30));
    cublasHandle_t h;
    cublasCreate(&h);
    cudaEvent_t a, b;
    cudaEventCreate(&a), cudaEventCreate(&b);
    const int sizes[] = {4096, 8192, 16384};
    for (int s = 0; s < 3; s++) {
        int m = sizes[s];
        size_t elems = (size_t)m * m;
        __nv_bfloat16 *A, *B;
        float *C;
        if (cudaMalloc(&A, elems * 2) || cudaMalloc(&B, elems * 2) || cudaMalloc(&C, elems * 4)) break;
        cudaMemset(A, 0x3c, elems * 2), cudaMemset(B, 0x3c, elems * 2);
        const float alpha = 1, beta = 0;
        int reps = m >= 16384 ? 5 : 20;
        for (int w = 0; w < 3; w++)
            cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, m, m, m, &alpha, A, CUDA_R_16BF, m, B, CUDA_R_16BF, m,
                         &beta, C, CUDA_R_32F, m, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
        cudaEventRecord(a);
        for (int r = 0; r < reps; r++)
            cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, m, m, m, &alpha, A, CUDA_R_16BF, m, B, CUDA_R_16BF, m,
                         &beta, C, CUDA_R_32F, m, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
        cudaEventRecord(b);
        double sec = time_ms(a, b) / 1e3 / reps;
        printf("{\"gemm\": \"bf16\", \"m\": %d, \"tflops\": %.1f}\n", m, 2.0 * m * m * (double)m / sec / 1e12);
        cudaFree(A), cudaFree(B), cudaFree(C);
    }
    size_t bytes = (size_t)4 << 30;
    void *x, *y;
    if (cudaMalloc(&x, bytes) == cudaSuccess && cudaMalloc(&y, bytes) == cudaSuccess) {
        cudaMemcpy(y, x, bytes, cudaMemcpyDeviceToDevice);
        cudaEventRecord(a);
        for (int r = 0; r < 5; r++) cudaMemcpy(y, x, bytes, cudaMemcpyDeviceToDevice);
        cudaEventRecord(b);
        double sec = time_ms(a, b) / 1e3 / 5;
        // A copy reads and writes every byte.
        printf("{\"copy_gb_per_s\": %.0f}\n", 2.0 * bytes / sec / 1e9);
    }
    cublasDestroy(h);
    return 0;
}
