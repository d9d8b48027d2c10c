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
// out[N,OC] += inp[N,C] · weight[OC,C]ᵀ (a residual added in the same GEMM)
void NN_(linear_forward_add)(NN_T *out, const NN_T *inp, const NN_T *weight, int N, int C, int OC);
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

// ---- data movement shared by the training model and the inference engine ----

// out[N, ca+cb] = [a[N,ca] | b[N,cb]] row by row (MTP: [norm(embedding) | norm(hidden)]).
void NN_(concat_cols_forward)(NN_T *out, const NN_T *a, int ca, const NN_T *b, int cb, int N);
// da[N,ca], db[N,cb] = the two column blocks of dout (overwritten; NULL skips one).
void NN_(concat_cols_backward)(NN_T *da, NN_T *db, const NN_T *dout, int ca, int cb, int N);
// dst[R,C] row r = src row idx[r] (of width C).
void NN_(gather_rows)(NN_T *dst, const NN_T *src, const int *idx, int R, int C);
// dst + at[r] = src row r (C values from src + r*ld); scatters rows into a cache.
void NN_(scatter_rows)(NN_T *dst, const size_t *at, const NN_T *src, int ld, int R, int C);

// MLA keys and values of N tokens from kv_b's output kvb[N, H*(dn+dv)] (per head [k_nope | v])
// and the rotated rotary key kpe (token n at kpe + n*ld_pe, dr wide) that all heads share:
// key of head h = [k_nope_h | kpe] at k + n*ldk + h*(dn+dr); value h at v + n*ldv + h*dv.
void NN_(mla_kv_forward)(NN_T *k, int ldk, NN_T *v, int ldv, const NN_T *kvb, const NN_T *kpe,
                         int ld_pe, int N, int H, int dn, int dr, int dv);
// dkvb[N, H*(dn+dv)] and dkpe[N,dr] (Σ over heads) from dk[N, H*(dn+dr)], dvals[N, H*dv];
// both overwritten.
void NN_(mla_kv_backward)(NN_T *dkvb, NN_T *dkpe, const NN_T *dk, const NN_T *dvals, int N, int H,
                          int dn, int dr, int dv);

// dst[C,R] = src[R,C]ᵀ
void NN_(transpose)(NN_T *dst, const NN_T *src, int R, int C);
// x[n] = value
void NN_(fill)(NN_T *x, int n, NN_T value);
// MTP depth k's inputs and targets over B sequences of T tokens: tok[n] = tokens[n + k] within the
// sequence (0 past its end); tgt[n] = targets[n + k] when position n + k is still in the same
// sequence and document (pos[n+k] = pos[n] + k), else -1 (ignored).
void NN_(mtp_shift_tokens)(int *tok, const int *tokens, int B, int T, int k);
void NN_(mtp_shift_targets)(int *tgt, const int *targets, const int *pos, int B, int T, int k);

// ---- losses and statistics over logits ----

// ent[n] = entropy of softmax(logits[n]) for rows with targets[n] >= 0, else 0; lse[n] from
// logprob_forward.
void NN_(entropy_forward)(NN_T *ent, const NN_T *logits, const NN_T *lse, const int *targets, int N,
                          int V);
// Logit distillation over rows with targets[n] >= 0 at temperature T: returns Σ_n T²·KL(p‖q)
// with p = softmax(teacher[n]/T), q = softmax(logits[n]/T), and *ce_sum = Σ_n CE(targets[n]).
// dlogits[N,V] (overwritten) = w · d/dlogits [(1−α)·T²·KL + α·CE] summed over rows.
double NN_(distill_forward_backward)(NN_T *dlogits, double *ce_sum, const NN_T *logits,
                                     const NN_T *teacher, const int *targets, int N, int V, double T,
                                     double alpha, double w);

// ---- optimizer ----

// acc + Σ x[i]² (in index order, so a norm over many tensors keeps one summation order).
double NN_(sumsq_acc)(double acc, const NN_T *x, size_t n);
// AdamW on n weights: g·clip into the moments m, v; w -= lr·m̂/(√v̂ + eps) + wd·w, with bias
// corrections c1 = 1/(1−β1ᵗ), c2 = 1/(1−β2ᵗ) and wd = lr·weight_decay (0: no decay).
void NN_(adamw_update)(NN_T *w, NN_T *m, NN_T *v, const NN_T *g, size_t n, double lr, double beta1,
                       double beta2, double c1, double c2, double eps, double wd, double clip);
