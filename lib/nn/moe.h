// moe.h — DeepSeekMoE routing (sigmoid gates, group-limited top-k, balance loss), both precisions.
#ifndef DS_NN_MOE_H
#define DS_NN_MOE_H

#include "checkpoint/config.h"

#define NN_T float
#define NN_(name) name##_f32
#include "nn/moe.inc.h"
#undef NN_T
#undef NN_
#define NN_T double
#define NN_(name) name##_f64
#include "nn/moe.inc.h"
#undef NN_T
#undef NN_

#endif
