// ds-synth — deterministic synthetic data for the R1 experiments: problems with a fixed train/test
// split, a pretraining corpus of arithmetic facts and Countdown search texts, cold-start traces.
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "core/atomic_file.h"
#include "tool.h"
#include "synth/synth.h"

static const char *prog = "ds-synth";

static void usage(void) {
    printf(
        "Usage: ds-synth problems --task countdown|add|larger --n N [options]\n"
        "       ds-synth corpus   --task countdown|add|larger --n N [options]\n"
        "       ds-synth sft      --task countdown --n N [options]\n"
        "\n"
        "Everything follows from --seed: the same options give the same bytes. A problem's split\n"
        "(train or test) is a hash of the problem itself (countdown: sorted numbers and target;\n"
        "add/larger: the unordered pair), so no call ever writes a test problem as training data.\n"
        "\n"
        "problems  solvable problems of --split: countdown {\"id\",\"task\",\"target\",\"nums\"}\n"
        "          (task_prompt renders TinyZero's wording); add (\"What is 37 + 58?\") and\n"
        "          larger as math records "
        "{\"id\",\"task\":\"math\",\"prompt\",\"answer\",\"a\",\"b\"},\n"
        "          graded by `ds-eval --task math --extract answer`.\n"
        "corpus    pretraining documents {\"text\"}: arithmetic facts and, from the train split,\n"
        "          R1-template conversations with a search (countdown) or a worked answer\n"
        "          (add/larger) after \"Assistant:\".\n"
        "sft       cold-start records {\"prompt\",\"completion\"}: a careful search, a check\n"
        "          line and a correct answer, in one language.\n"
        "\n"
        "  --task T            countdown (default) | add | larger\n"
        "  --n N               records to write (default 1000)\n"
        "  --seed S            random seed (default 0)\n"
        "  -o, --output FILE   output JSONL (default '-': stdout)\n"
        "  --nums K            countdown numbers per problem, 2..4 (default 3)\n"
        "  --min-num A, --max-num B        number range (countdown 1..99, add/larger 10..99)\n"
        "  --min-target A, --max-target B  countdown target range (default 10..100)\n"
        "  --split S           problems: train (default) | test\n"
        "  --exclude FILE      never write the problems of FILE (countdown {\"target\",\"nums\"}\n"
        "                      records, or add/larger records); repeatable\n"
        "  --with-prompt       problems: also store the user prompt\n"
        "  --lang L            reasoning words: en (default) | xx (Cyrillic vocabulary) | mix\n"
        "                      (corpus: documents switch language mid-reasoning)\n"
        "  --wrong-frac F      corpus (add/larger): share of wrong guesses (0.1)\n"
        "  --quit-frac F       corpus (countdown): share of searches that guess (random\n"
        "                      order) and quit early (0.1)\n"
        "  --quit-after Q      corpus (countdown): they quit after 1..Q attempts (4)\n"
        "  --heuristic-frac F  corpus (countdown): share of the other searches that are careful:\n"
        "                      every first step, finished by the last step closest to the\n"
        "                      target (0.5); the rest try attempts in random order\n"
        "  --practice-frac F   corpus (countdown): share of searches written without the\n"
        "                      prompt and never quitting early (0)\n"
        "  --careful-order O   corpus (countdown): fixed (default; a \"Start with A and B.\" line\n"
        "                      when the pair changes) | random: the order in which careful\n"
        "                      searches take the first steps\n"
        "  --practice-order O  corpus (countdown): the same for practice searches (default:\n"
        "                      as --careful-order)\n"
        "  --check-frac F      corpus (countdown): share of check drills (\"17 + 2 = 19 vs 19,\n"
        "                      yes.\"), half of their lines hits (0)\n"
        "  --facts-frac F      corpus: share of arithmetic-fact documents (0.25)\n"
        "  --max-attempts K    corpus: attempts before a search gives up (16); sft: longest\n"
        "                      careful search kept (default: no limit)\n"
        "  --help, --version\n"
        "\n"
        "Counts go to stderr. Exit status: 0 ok, 1 bad input or I/O error, 2 usage error.\n");
}

enum {
    OPT_TASK = OPT_FIRST_TOOL_OPTION,
    OPT_N,
    OPT_SEED,
    OPT_NUMS,
    OPT_MIN_NUM,
    OPT_MAX_NUM,
    OPT_MIN_TARGET,
    OPT_MAX_TARGET,
    OPT_SPLIT,
    OPT_EXCLUDE,
    OPT_WITH_PROMPT,
    OPT_LANG,
    OPT_WRONG,
    OPT_QUIT,
    OPT_QUIT_AFTER,
    OPT_HEURISTIC,
    OPT_PRACTICE,
    OPT_PRACTICE_ORDER,
    OPT_CAREFUL_ORDER,
    OPT_CHECK,
    OPT_FACTS,
    OPT_ATTEMPTS,
};
enum { CMD_PROBLEMS, CMD_CORPUS, CMD_SFT };
enum { MAX_EXCLUDE = 16 };

typedef struct Args {
    int cmd;
    SynthOpts o;
    const char *output;
    const char *exclude[MAX_EXCLUDE];
    int n_exclude, have_num_range, have_attempts;
} Args;

// "fixed" or "random" for --careful-order / --practice-order: 1 for random.
static int parse_order(const char *opt, const char *v) {
    if (strcmp(v, "fixed") && strcmp(v, "random"))
        cli_usage_error(prog, "%s: want fixed or random, got '%s'", opt, v);
    return strcmp(v, "random") == 0;
}

static void parse_args(int argc, char **argv, Args *a) {
    static const struct option opts[] = {{"help", no_argument, 0, OPT_HELP},
                                         {"version", no_argument, 0, OPT_VERSION},
                                         {"task", required_argument, 0, OPT_TASK},
                                         {"n", required_argument, 0, OPT_N},
                                         {"seed", required_argument, 0, OPT_SEED},
                                         {"output", required_argument, 0, 'o'},
                                         {"nums", required_argument, 0, OPT_NUMS},
                                         {"min-num", required_argument, 0, OPT_MIN_NUM},
                                         {"max-num", required_argument, 0, OPT_MAX_NUM},
                                         {"min-target", required_argument, 0, OPT_MIN_TARGET},
                                         {"max-target", required_argument, 0, OPT_MAX_TARGET},
                                         {"split", required_argument, 0, OPT_SPLIT},
                                         {"exclude", required_argument, 0, OPT_EXCLUDE},
                                         {"with-prompt", no_argument, 0, OPT_WITH_PROMPT},
                                         {"lang", required_argument, 0, OPT_LANG},
                                         {"wrong-frac", required_argument, 0, OPT_WRONG},
                                         {"quit-frac", required_argument, 0, OPT_QUIT},
                                         {"quit-after", required_argument, 0, OPT_QUIT_AFTER},
                                         {"heuristic-frac", required_argument, 0, OPT_HEURISTIC},
                                         {"practice-order", required_argument, 0, OPT_PRACTICE_ORDER},
                                         {"careful-order", required_argument, 0, OPT_CAREFUL_ORDER},
                                         {"practice-frac", required_argument, 0, OPT_PRACTICE},
                                         {"check-frac", required_argument, 0, OPT_CHECK},
                                         {"facts-frac", required_argument, 0, OPT_FACTS},
                                         {"max-attempts", required_argument, 0, OPT_ATTEMPTS},
                                         {0, 0, 0, 0}};
    memset(a, 0, sizeof *a);
    synth_opts_default(&a->o);
    a->output = "-";
    a->cmd = -1;
    if (argc > 1 && argv[1][0] != '-') {
        static const char *const cmds[] = {"problems", "corpus", "sft"};
        for (int i = 0; i < 3; i++)
            if (strcmp(argv[1], cmds[i]) == 0) a->cmd = i;
        if (a->cmd < 0) cli_usage_error(prog, "unknown command '%s'", argv[1]);
        argv[1] = argv[0];
        argc--, argv++;
    }
    int64_t min_num = 0, max_num = 0;
    int c;
    while ((c = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
        switch (c) {
        case OPT_HELP: usage(); exit(EXIT_OK);
        case OPT_VERSION: cli_print_version(prog); exit(EXIT_OK);
        case OPT_TASK:
            if (synth_task_from_name(optarg, &a->o.task) != DS_OK)
                cli_usage_error(prog, "--task: expected countdown, add or larger");
            break;
        case OPT_N: a->o.n = cli_long(prog, "--n", optarg, 0, 100000000); break;
        case OPT_SEED: a->o.seed = cli_u64(prog, "--seed", optarg); break;
        case 'o': a->output = optarg; break;
        case OPT_NUMS:
            a->o.n_nums = (int)cli_long(prog, "--nums", optarg, 2, SYNTH_MAX_NUMS);
            break;
        case OPT_MIN_NUM:
            min_num = cli_long(prog, "--min-num", optarg, 0, 10000);
            a->have_num_range |= 1;
            break;
        case OPT_MAX_NUM:
            max_num = cli_long(prog, "--max-num", optarg, 0, 10000);
            a->have_num_range |= 2;
            break;
        case OPT_MIN_TARGET:
            a->o.min_target = cli_long(prog, "--min-target", optarg, -1000000, 1000000);
            break;
        case OPT_MAX_TARGET:
            a->o.max_target = cli_long(prog, "--max-target", optarg, -1000000, 1000000);
            break;
        case OPT_SPLIT:
            if (synth_split_from_name(optarg, &a->o.split) != DS_OK)
                cli_usage_error(prog, "--split: expected train or test");
            break;
        case OPT_EXCLUDE:
            if (a->n_exclude == MAX_EXCLUDE)
                cli_usage_error(prog, "--exclude: at most %d files", MAX_EXCLUDE);
            a->exclude[a->n_exclude++] = optarg;
            break;
        case OPT_WITH_PROMPT: a->o.with_prompt = 1; break;
        case OPT_LANG:
            if (synth_lang_from_name(optarg, &a->o.lang) != DS_OK)
                cli_usage_error(prog, "--lang: expected en, xx or mix");
            break;
        case OPT_WRONG: a->o.wrong_frac = cli_double(prog, "--wrong-frac", optarg, 0, 1); break;
        case OPT_QUIT: a->o.quit_frac = cli_double(prog, "--quit-frac", optarg, 0, 1); break;
        case OPT_HEURISTIC:
            a->o.heuristic_frac = cli_double(prog, "--heuristic-frac", optarg, 0, 1);
            break;
        case OPT_PRACTICE_ORDER: a->o.practice_random = parse_order("--practice-order", optarg); break;
        case OPT_CAREFUL_ORDER: a->o.random_starts = parse_order("--careful-order", optarg); break;
        case OPT_CHECK: a->o.check_frac = cli_double(prog, "--check-frac", optarg, 0, 1); break;
        case OPT_PRACTICE:
            a->o.practice_frac = cli_double(prog, "--practice-frac", optarg, 0, 1);
            break;
        case OPT_QUIT_AFTER:
            a->o.quit_after = (int)cli_long(prog, "--quit-after", optarg, 1, 1000000);
            break;
        case OPT_FACTS: a->o.facts_frac = cli_double(prog, "--facts-frac", optarg, 0, 1); break;
        case OPT_ATTEMPTS:
            a->o.max_attempts = (int)cli_long(prog, "--max-attempts", optarg, 1, 1000000);
            a->have_attempts = 1;
            break;
        default: cli_usage_error(prog, "unknown option");
        }
    }
    if (a->cmd < 0) cli_usage_error(prog, "expected a command: problems, corpus or sft");
    if (optind < argc) cli_usage_error(prog, "unexpected argument '%s'", argv[optind]);
    // add and larger default to two-digit operands.
    if (a->have_num_range & 1)
        a->o.min_num = min_num;
    else if (a->o.task != SYNTH_COUNTDOWN)
        a->o.min_num = 10;
    if (a->have_num_range & 2) a->o.max_num = max_num;
    if (a->cmd == CMD_SFT && !a->have_attempts) a->o.max_attempts = 1000000;
    if (a->cmd == CMD_SFT && a->o.task != SYNTH_COUNTDOWN)
        cli_usage_error(prog, "sft: only --task countdown");
    if (a->cmd == CMD_SFT && a->o.lang == SYNTH_MIX)
        cli_usage_error(prog, "sft: --lang must be en or xx (one language per trace)");
    DsErr e;
    if (synth_opts_check(&a->o, &e) != DS_OK) cli_usage_error(prog, "%s", e.msg);
}

int main(int argc, char **argv) {
    Args a;
    parse_args(argc, argv, &a);
    DsErr e;
    SynthKeySet ex = {0};
    for (int i = 0; i < a.n_exclude; i++)
        if (synth_keyset_load(&ex, a.o.task, a.exclude[i], &e) != DS_OK) cli_fail_err(prog, &e);
    a.o.exclude = &ex;
    AtomicFile out;
    if (atomic_open(&out, a.output, &e) != DS_OK) cli_fail_err(prog, &e);
    SynthStats st;
    double t0 = ds_now();
    int rc = a.cmd == CMD_PROBLEMS ? synth_problems(&a.o, out.f, &st, &e)
             : a.cmd == CMD_CORPUS ? synth_corpus(&a.o, out.f, &st, &e)
                                   : synth_sft(&a.o, out.f, &st, &e);
    if (rc != DS_OK) {
        atomic_abort(&out);
        synth_keyset_free(&ex);
        ds_err_prefix(&e, "%s", a.output);
        cli_fail_err(prog, &e);
    }
    if (atomic_commit(&out, &e) != DS_OK) cli_fail_err(prog, &e);
    double dt = ds_now() - t0;
    if (a.cmd == CMD_PROBLEMS)
        fprintf(stderr, "%s: %ld problems (%ld candidates drawn, %zu excluded keys) in %.2fs\n",
                prog, st.records, st.candidates, ex.n, dt);
    else if (a.o.task == SYNTH_COUNTDOWN)
        fprintf(stderr,
                "%s: %ld records: %ld facts, %ld searches (%ld correct, %ld wrong, %.1f attempts "
                "each; %ld practice; %ld check drills) in %.2fs\n",
                prog, st.records, st.facts, st.search, st.correct, st.wrong,
                st.search ? (double)st.attempts / (double)st.search : 0.0, st.practice, st.checks, dt);
    else
        fprintf(stderr,
                "%s: %ld records: %ld facts, %ld worked answers (%ld correct, %ld wrong) in "
                "%.2fs\n",
                prog, st.records, st.facts, st.search, st.correct, st.wrong, dt);
    synth_keyset_free(&ex);
    return EXIT_OK;
}
