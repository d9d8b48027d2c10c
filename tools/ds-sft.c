// ds-sft — supervised fine-tuning on chat or prompt/completion JSONL: loss on the answers only,
// examples packed into rows without attention across them, resumable like ds-pretrain.
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "sft_train.h"
#include "tool.h"
#include "train_cli.h"

static const char *PROG = "ds-sft";

static void usage(void) {
    printf("Usage: ds-sft train -m BASE.tar --data SFT.jsonl -o OUT.tar [options]\n"
           "       ds-sft train --config CFG.json --tokenizer TOK.json --data SFT.jsonl -o OUT.tar [options]\n"
           "       ds-sft train --resume OUT.tar --data SFT.jsonl -o OUT.tar [same options]\n"
           "\n"
           "Records: {\"messages\":[{\"role\":\"system|user|assistant\",\"content\":...},...]} (the final\n"
           "assistant message is the answer) or {\"prompt\",\"completion\"}. The loss covers the answer\n"
           "tokens and the end-of-sequence token only; examples are packed into --seq-len rows with\n"
           "positions restarting at each (no attention across examples); longer ones are skipped.\n"
           "\n"
           "  -m, --model BASE.tar  the model to fine-tune (weights and tokenizer; not its optimizer)\n"
           "  --config CFG.json     a new model instead (with --tokenizer TOK.json)\n"
           "  --data FILE           training records    --val FILE  validation records (loss on all of them)\n"
           "  --template plain|r1|model  [plain] chat_render's template (r1: the R1 reasoning conversation;\n"
           "                        model: the chat_template of the model's tokenizer_config.json, with\n"
           "                        every assistant turn of a conversation trained; docs/CHAT_TEMPLATE.md)\n"
           "  --tokenizer-config FILE  the tokenizer_config.json to use (default: the model's, or the one\n"
           "                        beside --tokenizer); it is stored in the output checkpoint\n"
           "  --eos TOKEN           [the base model's first eos_token_id, else <|endoftext|>] appended\n"
           "                        to every answer and trained on (model: the config's eos_token)\n"
           "  --epochs N            [1] passes over the data, shuffled per epoch from --seed (or --steps N)\n"
           "  --eval-batches N      [whole --val set]\n");
    train_cli_usage();
}

static volatile sig_atomic_t stop_flag;
static void on_signal(int sig) {
    (void)sig;
    stop_flag = 1;
}

int main(int argc, char **argv) {
    if (argc < 2) cli_usage_error(PROG, "missing command (train)");
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) return usage(), EXIT_OK;
    if (!strcmp(argv[1], "--version")) return cli_print_version(PROG), EXIT_OK;
    if (strcmp(argv[1], "train")) cli_usage_error(PROG, "unknown command '%s'", argv[1]);
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    return sft_train_command(PROG, argc - 1, argv + 1, 0, usage, &stop_flag);
}
