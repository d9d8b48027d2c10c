// real.h — the scalar type of lib/nn. Every file in lib/nn is compiled twice: as float (the tools)
// and with DS_REAL_F64 as double (finite-difference gradient checks in double precision). Public
// names are written R_(name) and become name_f32 / name_f64. Headers declare both variants by
// including their *.inc.h body twice through NN_DECLARE_BOTH.
#ifndef DS_NN_REAL_H
#define DS_NN_REAL_H

#include <cblas.h>

#ifdef DS_REAL_F64
typedef double real;
#define R_(name) name##_f64
#define GEMM cblas_dgemm
#define REAL_EPS 1e-12
#define REAL_SQRT sqrt
#else
typedef float real;
#define R_(name) name##_f32
#define GEMM cblas_sgemm
#define REAL_EPS 1e-6f
#define REAL_SQRT sqrtf
#endif

#endif
