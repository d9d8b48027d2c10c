// model.h — the DeepSeek-V3 (MLA + DeepSeekMoE + MTP) and llama/qwen2 models: parameters,
// activations, forward, losses and backward, in float (_f32) and double (_f64).
#ifndef DS_NN_MODEL_H
#define DS_NN_MODEL_H

#include <stdint.h>

#include "checkpoint/layout.h"
#include "nn/backend.h"
#include "math/rope.h"

typedef struct ModelLossStats {
    double loss;                    // main next-token cross-entropy (mean over valid targets)
    double mtp_loss;                // mean over depths of the MTP cross-entropies (0 without MTP)
    double balance_loss;            // α Σ f_i P_i summed over MoE layers
    long ntokens;                   // valid main targets
} ModelLossStats;


#define NN_T float
#define NN_(name) name##_f32
#include "nn/model.inc.h"
#undef NN_T
#undef NN_
#define NN_T double
#define NN_(name) name##_f64
#include "nn/model.inc.h"
#undef NN_T
#undef NN_

#endif
