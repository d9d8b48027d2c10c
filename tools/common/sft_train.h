// sft_train.h — `train` of ds-sft (logits = 0) and ds-distill (logits = 1 also accepts --logits
// -t TEACHER --temperature --alpha): supervised fine-tuning on chat or prompt/completion JSONL,
// optionally on a teacher's logits.
#ifndef DS_SFT_TRAIN_H
#define DS_SFT_TRAIN_H

#include <signal.h>

// Parses argv (argv[0] = "train") and runs; exits 2 on a usage error and 1 on a failure, like a
// tool's main. usage prints the tool's help; stop is the tool's signal flag.
int sft_train_command(const char *prog, int argc, char **argv, int logits, void (*usage)(void),
                      volatile sig_atomic_t *stop);

#endif
