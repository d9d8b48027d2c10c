// rowgemm.h — out[R,N] (+)= X[R,K] · W[N,K]ᵀ where every output element is computed by the same
// sequence of float operations whatever R, the row's place in the batch, or the thread count.
// Generation uses it so a sample's tokens never depend on which other samples share its batch
// (BLAS kernels pick different accumulation orders for different matrix shapes).
#ifndef DS_ROWGEMM_H
#define DS_ROWGEMM_H

// accumulate = 0 overwrites out, 1 adds into it; bias (N) may be NULL. ldo, ldx, ldw: row strides
// (rowgemm passes ldw = K).
void rowgemm_ld(float *out, int ldo, const float *x, int ldx, const float *w, int ldw, const float *bias,
                int R, int K, int N, int accumulate);
void rowgemm(float *out, int ldo, const float *x, int ldx, const float *w, const float *bias, int R,
             int K, int N, int accumulate);
// The 8-lane kernel alone, never the AVX-512 one: tests check that both give the same bits.
void rowgemm_ld_lanes8(float *out, int ldo, const float *x, int ldx, const float *w, int ldw, const float *bias,
                       int R, int K, int N, int accumulate);
// Σ a[i]·b[i] in the same operation order as one rowgemm element.
float rowdot(const float *a, const float *b, int n);

#endif
