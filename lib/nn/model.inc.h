// model.inc.h — the model and its activations, declared for NN_T = float and double (model.h).

#include "math/precision.h"

// Activations of one transformer block, kept for the backward pass.
typedef struct NN_(BlockActs) {
    NN_T *x_in;                     // [N,d] block input (not owned)
    NN_T *h1, *rstd1;               // attention-norm output [N,d], [N]
    NN_T *cq, *cqn, *rstd_q;        // MLA query latent [N,rq] (q_lora_rank only)
    NN_T *kva, *ckv, *ckvn, *rstd_kv; // [N, rkv+dr], [N,rkv] raw and normalised latent
    NN_T *kvb;                      // [N, H*(dn+dv)] expanded keys (nope part) and values
    NN_T *qkv;                      // llama/qwen2 [N, (H+2Hkv)*hd]
    NN_T *qf, *kf, *vf;             // attention inputs after RoPE: [N,H*dqk], [N,Hkv*dqk], [N,Hkv*dv]
    NN_T *att;                      // [B,H,T,T] probabilities
    NN_T *ao;                       // [N, H*dv] attention output before o_proj
    NN_T *x_mid, *h2, *rstd2;       // residual after attention, FFN-norm output
    NN_T *gu, *act;                 // dense FFN or shared experts: [N,2F], [N,F]
    NN_T *rlogit, *score, *gate;    // router [N,E], [N,E], [N,K]
    int *idx;                       // [N,K] selected experts
    int *perm, *eoff;               // [N*K] (token*K + slot) sorted by expert; [E+1] row offsets
    NN_T *xe, *gue, *acte, *ye;     // expert rows [N*K,d], [N*K,2Fm], [N*K,Fm], [N*K,d]
} NN_(BlockActs);

// One MTP module (depth k): predicts token i+k+1 from the depth k-1 state and token i+k.
typedef struct NN_(MtpActs) {
    int *tok, *targets;             // [N] input token i+k and target (-1 = ignored)
    NN_T *emb, *en, *rstd_e;        // embedding of tok and its norm
    NN_T *hn, *rstd_h;              // norm of the previous depth's state
    NN_T *cat, *x0, *x_out;         // [N,2d] = [en | hn], eh_proj output, block output
    NN_T *xf, *rstd_f, *logits, *lse, *lp; // head
    NN_T *dlogits;
} NN_(MtpActs);

typedef struct NN_(Acts) {
    int B, T, N;                    // shape of the last forward
    int cap_N, cap_T;               // what the buffers hold: B*T <= cap_N, T <= cap_T
    int *tokens, *pos;              // [N] copies of the forward inputs
    NN_T *resid;                    // [(L+1), N, d] block inputs/outputs of the main model
    NN_(BlockActs) *blk;            // L main blocks then the MTP blocks
    NN_(MtpActs) *mtp;              // num_nextn_predict_layers
    NN_T *xf, *rstd_f, *logits, *lse, *lp, *dlogits; // main head [N,d],[N],[N,V],[N],[N],[N,V]
    double balance_alpha;           // α × grad scale of the last model_loss, used by backward
    long *load;                     // [(L+D), E] tokens routed to each expert since reset
    // backward scratch, sized for the largest block
    NN_T *dres, *dcur, *dprev, *dh, *dao, *dq, *dk, *dv, *datt, *dkvb, *dlat, *dlat2, *dkva, *dqkv;
    NN_T *dgu, *dact, *dxe, *dye, *dgate, *drlogit, *dcat, *dsmall;
    PrecisionScratch prec;          // Linear GEMM operand buffers (float build, BF16/FP8 only)
    int forward_only;               // no MTP modules, logits gradients or backward scratch
    const Backend *be;              // the model's backend, which owns buf
    void *buf;                      // every buffer above points into this one allocation
    size_t bytes;                   // its size
} NN_(Acts);

typedef struct NN_(Model) {
    const Backend *be;              // where params, grads and activations live (backend_cpu)
    ModelLayout L;                  // config, tensor table and offsets
    Rope rope;
    NN_T *params;                   // [L.total]
    NN_T *grads;                    // [L.total], NULL when built for inference
    // Bumped by every writer of params (model_params_changed): whatever derives state from the
    // weights (the engine) records the version it derived from and refuses a stale one.
    uint64_t params_version;
    // GEMM inputs of every Linear layer (float build only; the double build always computes
    // exactly). FP32 after model_init; set it before acts_init, which sizes the buffers.
    Precision precision;
} NN_(Model);

// Builds the layout and allocates parameters (zeroed) and, when with_grads, gradients. max_pos
// bounds positions (RoPE table).
void NN_(model_init)(NN_(Model) *m, const ModelConfig *c, int with_grads, int max_pos);
void NN_(model_free)(NN_(Model) *m);
// Random initialisation from the layout's init rules; each tensor from its own stream of seed.
void NN_(model_init_weights)(NN_(Model) *m, uint64_t seed);
// Every writer of params calls this after writing (loaders, the optimizer step, the router-bias
// update, a copy into a reference model); docs/CONVENTIONS.md lists them.
static inline void NN_(model_params_changed)(NN_(Model) *m) { m->params_version++; }

// Activations for B sequences of T tokens, in one backend allocation. acts_init keeps what
// model_loss and model_backward need; acts_init_forward only what a forward needs for the main
// logits (reference and teacher models: no MTP modules, no gradients).
void NN_(acts_init)(NN_(Acts) *a, const NN_(Model) *m, int B, int T);
void NN_(acts_init_forward)(NN_(Acts) *a, const NN_(Model) *m, int B, int T);
void NN_(acts_init_mode)(NN_(Acts) *a, const NN_(Model) *m, int B, int T, int forward_only);
void NN_(acts_free)(NN_(Acts) *a);

// Forward over B sequences of T tokens: tokens[N], pos[N] (position within its document; 0 starts
// a new document). Fills the main logits and every MTP module's logits (MTP inputs come from the
// same sequence: token i+k; past the end the target is ignored).
void NN_(model_forward)(NN_(Model) *m, NN_(Acts) *a, const int *tokens, const int *pos, int B, int T);
// Losses for targets[N] (-1 = ignored; usually the next token) and their gradients w.r.t. logits,
// scaled by grad_scale (1/accumulation steps): CE + mtp_lambda · mean_k CE_k + balance α.
void NN_(model_loss)(NN_(Model) *m, NN_(Acts) *a, const int *targets, double mtp_lambda,
                     double balance_alpha, double grad_scale, ModelLossStats *st);
// Accumulates parameter gradients into m->grads from the logits gradients set by model_loss.
void NN_(model_backward)(NN_(Model) *m, NN_(Acts) *a);
