// moe.inc.h — DeepSeekMoE routing declarations, included twice by moe.h (NN_T = float, double).

// Routing for N tokens over E experts (REFERENCE §1): s = sigmoid(logits); selection by s + bias,
// limited to the topk_group best groups (a group scores by the sum of its top-2 biased scores);
// gates g = s / Σ_selected s (norm_topk_prob) × routed_scaling_factor. idx[N,K] ascending by
// expert id within a token; ties go to the lower expert id. score[N,E] saved for backward.
void NN_(moe_route_forward)(int *idx, NN_T *gate, NN_T *score, const NN_T *logits,
                            const NN_T *bias, const ModelConfig *c, int N);
// Sequence-wise balance loss α Σ_i f_i P_i averaged over the B sequences of T tokens (N = B*T), with
// f_i = E/(K·T)·#{t: i selected}, P_i = mean_t s_i,t / Σ_j s_j,t. Returns the loss (α included).
double NN_(moe_balance_loss)(const int *idx, const NN_T *score, const ModelConfig *c, int B, int T,
                             double alpha);
// dlogits[N,E] = gradient of (Σ dgate·gate + balance loss) through the gates and sigmoid;
// overwritten.
void NN_(moe_route_backward)(NN_T *dlogits, const NN_T *dgate, const NN_T *score, const int *idx,
                             const ModelConfig *c, int B, int T, double alpha);
