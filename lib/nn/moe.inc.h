// moe.inc.h — DeepSeekMoE routing declarations, included twice by moe.h (NN_T = float, double).

// Routing for N tokens over E experts (docs/FORMULAS.md §1): s = sigmoid(logits); selection by s + bias,
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

// Dispatch (docs/FORMULAS.md §1): the N*K (token, slot) pairs sorted by expert, stably (a counting sort),
// so each expert runs one GEMM over its rows: perm[r] = token*K + slot of row r; expert e owns rows
// eoff[e] .. eoff[e+1] (eoff[E+1]); xe[N*K,d] row r = x[perm[r] / K].
void NN_(moe_dispatch_forward)(NN_T *xe, int *perm, int *eoff, const int *idx, const NN_T *x, int N,
                               int K, int E, int d);
// dx[N,d] += Σ_r dxe[r] into token perm[r] / K (in row order).
void NN_(moe_dispatch_backward)(NN_T *dx, const NN_T *dxe, const int *perm, int N, int K, int d);
// out[N,d] += gate[perm[r]] · ye[r] for every row r; a token adds its experts in ascending expert
// id (its idx order), whatever else is in the batch.
void NN_(moe_combine_forward)(NN_T *out, const NN_T *ye, const NN_T *gate, const int *perm, int N,
                              int K, int d);
// dye[N*K,d] = gate · dout[token] and dgate[N*K] (by slot) = dout[token]·ye[r]; both overwritten.
void NN_(moe_combine_backward)(NN_T *dye, NN_T *dgate, const NN_T *dout, const NN_T *ye,
                               const NN_T *gate, const int *perm, int N, int K, int d);
// Auxiliary-loss-free balancing (V3): bias[E] += γ · sign(mean load − load_i), from the loads
// counted since the last update. Returns max load / mean load (0 when nothing was routed).
double NN_(moe_bias_update)(NN_T *bias, const long *load, int E, double gamma);
