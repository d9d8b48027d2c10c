// ops.inc.h — declarations of the primitive ops, included twice by ops.h (NN_T = float, double).
// Forward and backward side by side; backward ADDS into weight gradients and (where noted) into
// input gradients. All matrices are row-major; weights are [out_features, in_features].
// Threads: attention, log-probabilities, SwiGLU and RMSNorm split large calls over as many threads
// as OpenBLAS is set to (cli_set_threads); attention runs BLAS single-threaded inside its threads.
// Every output is computed in the same order whatever the thread count, so results do not depend
// on it.

// out[N,OC] = inp[N,C] · weight[OC,C]ᵀ (+ bias[OC] when not NULL)
void NN_(linear_forward)(NN_T *out, const NN_T *inp, const NN_T *weight, const NN_T *bias, int N,
                         int C, int OC);
// dinp[N,C] += dout[N,OC]·weight; dweight[OC,C] += doutᵀ·inp; dbias[OC] += Σ_n dout. NULL skips.
void NN_(linear_backward)(NN_T *dinp, NN_T *dweight, NN_T *dbias, const NN_T *dout,
                          const NN_T *inp, const NN_T *weight, int N, int C, int OC);

// out[N,C] = table[tokens[n]]
void NN_(embedding_forward)(NN_T *out, const int *tokens, const NN_T *table, int N, int C);
// dtable[V,C] += scatter of dout[N,C]
void NN_(embedding_backward)(NN_T *dtable, const NN_T *dout, const int *tokens, int N, int C);

// out[N,C] = inp / sqrt(mean(inp²) + eps) * weight; rstd[N] saved for backward
void NN_(rmsnorm_forward)(NN_T *out, NN_T *rstd, const NN_T *inp, const NN_T *weight, int N, int C,
                          double eps);
// dinp[N,C] += ...; dweight[C] += ...
void NN_(rmsnorm_backward)(NN_T *dinp, NN_T *dweight, const NN_T *dout, const NN_T *inp,
                           const NN_T *weight, const NN_T *rstd, int N, int C);

// Rotates, in place, the rope->dim wide slice starting at x of every token n and head h:
// x + n*token_stride + h*head_stride, at position pos[n]. inverse=1 applies the transpose (backward).
void NN_(rope_apply)(NN_T *x, const int *pos, int N, int H, int token_stride, int head_stride,
                     const Rope *rope, int inverse);

// Causal softmax attention over B sequences of T tokens (N = B*T). q[N, H*dqk], k[N, Hkv*dqk],
// v[N, Hkv*dv] (head h reads kv head h / (H/Hkv)); out[N, H*dv]; att[B,H,T,T] keeps the
// probabilities. Query i sees keys j with i - pos[i] <= j <= i: a document starts where pos is 0, so
// packed documents do not attend to each other.
void NN_(attention_forward)(NN_T *out, NN_T *att, const NN_T *q, const NN_T *k, const NN_T *v,
                            const int *pos, int B, int T, int H, int Hkv, int dqk, int dv,
                            double scale);
// dq, dk, dv are overwritten. scratch holds T*T values. Only the causal blocks of the products are
// computed (64-row query blocks against the keys up to the block's end).
void NN_(attention_backward)(NN_T *dq, NN_T *dk, NN_T *dvals, NN_T *scratch, const NN_T *dout,
                             const NN_T *att, const NN_T *q, const NN_T *k, const NN_T *v, int B,
                             int T, int H, int Hkv, int dqk, int dv, double scale);

// SwiGLU: gu[N, 2F] holds [gate | up] per row; out[N,F] = silu(gate) * up.
void NN_(swiglu_forward)(NN_T *out, const NN_T *gu, int N, int F);
// dgu[N,2F] overwritten.
void NN_(swiglu_backward)(NN_T *dgu, const NN_T *dout, const NN_T *gu, int N, int F);

// Log-probabilities of targets: lp[n] = log softmax(logits[n])[targets[n]], 0 where targets[n] < 0;
// lse[n] saved. Returns Σ lp over valid rows.
double NN_(logprob_forward)(NN_T *lp, NN_T *lse, const NN_T *logits, const int *targets, int N,
                            int V);
// dlogits[N,V] = dlp[n] · (onehot(target) − softmax(logits[n])); rows with target < 0 get 0.
void NN_(logprob_backward)(NN_T *dlogits, const NN_T *dlp, const NN_T *logits, const NN_T *lse,
                           const int *targets, int N, int V);

// Column slices: dst[N, ncols] = src[:, col0:col0+ncols] of a [N, src_cols] matrix, and the reverse
// (add_cols adds a [N, ncols] block into the slice).
void NN_(copy_cols)(NN_T *dst, const NN_T *src, int N, int src_cols, int col0, int ncols);
void NN_(add_cols)(NN_T *dst, const NN_T *src, int N, int dst_cols, int col0, int ncols);
