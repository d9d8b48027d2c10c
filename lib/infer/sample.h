// sample.h — choosing the next token from logits: greedy, temperature, top-k, top-p.
#ifndef DS_SAMPLE_H
#define DS_SAMPLE_H

typedef struct SampleParams {
    double temperature; // 0 = greedy (argmax, ties to the lowest id)
    double top_p;       // nucleus mass kept (1 = all)
    int top_k;          // keep the k most likely (0 = all)
} SampleParams;

// u: a uniform draw in [0, 1), one per sampled token, from the sample's own random stream.
// scratch must hold 2*V floats.
int sample_token(const float *logits, int V, const SampleParams *p, double u, float *scratch);
int sample_argmax(const float *logits, int V);
double sample_logprob(const float *logits, int V, int token); // log softmax at temperature 1

#endif
