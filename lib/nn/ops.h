// ops.h — primitive neural-network ops (forward + backward) in float (_f32) and double (_f64).
#ifndef DS_NN_OPS_H
#define DS_NN_OPS_H

#include "math/rope.h"

#define NN_T float
#define NN_(name) name##_f32
#include "nn/ops.inc.h"
#undef NN_T
#undef NN_
#define NN_T double
#define NN_(name) name##_f64
#include "nn/ops.inc.h"
#undef NN_T
#undef NN_

#endif
