# r1.mk — the V3 → R1 chain at small scale (`make r1`, `FAST=1` for a miniature). It continues
# `make tinyzero`: the same V3 base and its R1-Zero run, then R1's stages, each a file the next
# one reads, so make re-runs only what changed and any stage can be built alone
# (e.g. `make out/tinyzero/r1/coldstart.tar`).
#
#   base ─ R1-Zero (GRPO, tinyzero.mk)
#     └─ cold-start SFT ─ RL (accuracy + format + language) ─ rejection sampling ─┐
#     └──────────────────────────────── SFT on cold start + kept samples ─────────┤
#   dense student base ─ distilled on the same samples ─────────────────────────────┘
#                      └ GRPO directly (R1 §4.1's comparison)
#
# Every stage is evaluated on the held-out problems: accuracy, format, language consistency,
# length (pipelines/r1-report.sh). Why these settings: recipes/R1.md.

R1 ?= $(TZ)/r1
ifeq ($(FAST),1)
  R1_COLD    ?= 48
  R1_SFT     ?= 12
  R1_RL      ?= 3
  R1_P       ?= 4
  R1_RS      ?= 16
  R1_STUDENT ?= recipes/student-tiny.json
  R1_SSTEPS  ?= 30
  R1_K       ?= 2
else
  R1_COLD    ?= 400
  R1_SFT     ?= 150
  R1_RL      ?= 40
  R1_P       ?= 8
  R1_RS      ?= 400
  R1_STUDENT ?= recipes/r1-student.json
  R1_SSTEPS  ?= 600
  R1_K       ?= 4
endif
R1_SEQ  ?= 640
# Room for the cold-start traces (up to 8 attempts and a check line: at most ~380 tokens).
R1_MAXTOK ?= 400
# R1-Zero's reward plus R1's language-consistency reward: the share of reasoning words in the
# prompt's language (English, Latin script), summed with accuracy as in the paper.
R1_GRPO  = $(call tz-grpo,$(R1_P)) --max-tokens $(R1_MAXTOK) --steps $(R1_RL) --w-lang 1 --lang-script latin
R1_TUNE  = --template r1 --seq-len $(R1_SEQ) --batch 8 --steps $(R1_SFT) --lr 5e-4 --warmup 10 \
    --eval-every 0 --seed $(TZ_SEED) --threads $(TZ_THREADS)
R1_STAGES = base zero coldstart rl rs-sft student-base student-distill student-rl

.PHONY: r1
.PRECIOUS: $(R1)/%.completions.jsonl
r1: $(R1)/report.md

# The two stages `make tinyzero` already built, under the names of the table.
$(R1)/base.tar: $(TZ)/base.tar
	@mkdir -p $(@D)
	ln -sf ../base.tar $@
$(R1)/zero.tar: $(TZ)/rl.tar
	@mkdir -p $(@D)
	ln -sf ../rl.tar $@

# Cold start: a few hundred readable traces — a careful search in English with a check
# line before the answer — from problems outside the held-out set.
# Settings stamps as in tinyzero.mk: $(TZ)/r1-NAME.args holds TZ_ARGS_r1-NAME.
$(patsubst %,$(TZ)/r1-%.args,coldstart tune rl rs-problems rs student sample): $(TZ)/%.args: $$(call tz-changed,$$*)
	$(tz-stamp)
TZ_ARGS_r1-coldstart = --task countdown $(TZ_NUMS) --n $(R1_COLD) --max-attempts 8 --lang en --seed $(TZ_SEED)
TZ_ARGS_r1-tune = $(R1_TUNE)
TZ_ARGS_r1-rl = $(R1_GRPO)
$(R1)/coldstart.jsonl: $(TZ)/test.jsonl $(TZ)/r1-coldstart.args
	@mkdir -p $(@D)
	$(TZ_BIN)/ds-synth sft $(TZ_ARGS_r1-coldstart) --exclude $(TZ)/test.jsonl -o $@
$(R1)/coldstart.tar: $(TZ)/base.tar $(R1)/coldstart.jsonl $(TZ)/r1-tune.args
	$(TZ_BIN)/ds-sft train -m $< --data $(R1)/coldstart.jsonl $(R1_TUNE) -o $@ --metrics $(R1)/coldstart.metrics.jsonl

# Reasoning RL from the cold start, with the language-consistency reward.
$(R1)/rl.tar: $(R1)/coldstart.tar $(TZ)/train.jsonl $(TZ)/test.jsonl $(TZ)/r1-rl.args
	$(TZ_BIN)/ds-grpo train -m $< --tasks $(TZ)/train.jsonl $(R1_GRPO) -o $@ --metrics $(R1)/rl.jsonl

# Rejection sampling: 4 samples per training problem from the RL model; keep the correct,
# well-formatted ones whose reasoning is all in one language.
TZ_ARGS_r1-rs = --n 4 --temperature 0.6 --top-p 0.95 --max-tokens $(R1_MAXTOK) --require-format \
    --seed $(TZ_SEED) --threads $(TZ_THREADS) --batch 32
TZ_ARGS_r1-rs-problems = $(R1_RS)
$(R1)/rs-problems.jsonl: $(TZ)/train.jsonl $(TZ)/r1-rs-problems.args
	@mkdir -p $(@D)
	head -n $(R1_RS) $< > $@
$(R1)/rs.jsonl: $(R1)/rl.tar $(R1)/rs-problems.jsonl $(TZ)/r1-rs.args
	$(TZ_BIN)/ds-distill sample -m $< --task countdown --problems $(R1)/rs-problems.jsonl \
	    $(TZ_ARGS_r1-rs) -o $@.all --summary $@.summary.json
	DS_BIN=$(TZ_BIN) pipelines/rs-filter.sh $(R1)/rs-problems.jsonl $@.all > $@.tmp
	mv $@.tmp $@
# R1 retrains the base on the cold-start data plus the rejection-sampled set.
$(R1)/rs-sft.jsonl: $(R1)/coldstart.jsonl $(R1)/rs.jsonl
	cat $^ > $@
$(R1)/rs-sft.tar: $(TZ)/base.tar $(R1)/rs-sft.jsonl $(TZ)/r1-tune.args
	$(TZ_BIN)/ds-sft train -m $< --data $(R1)/rs-sft.jsonl $(R1_TUNE) -o $@ --metrics $(R1)/rs-sft.metrics.jsonl

# The small dense student: pretrained on the same corpus, then either distilled on the
# reasoner's samples or trained with the same RL directly.
TZ_ARGS_r1-student = --config $(R1_STUDENT) --seq-len $(TZ_SEQ) --batch 8 --steps $(R1_SSTEPS) --lr 2e-3 \
    --warmup 50 --eval-every 0 --threads $(TZ_THREADS) --seed $(TZ_SEED)
$(R1)/student-base.tar: $(TZ)/corpus-000000.tar $(R1_STUDENT) $(TZ)/r1-student.args
	@mkdir -p $(@D)
	$(TZ_BIN)/ds-pretrain train $(TZ_ARGS_r1-student) --data $< --tokenizer $(TZ)/tok.json -o $@ \
	    --metrics $(R1)/student-base.metrics.jsonl
$(R1)/student-distill.tar: $(R1)/student-base.tar $(R1)/rs-sft.jsonl $(TZ)/r1-tune.args
	$(TZ_BIN)/ds-distill train -m $< --data $(R1)/rs-sft.jsonl $(R1_TUNE) -o $@ \
	    --metrics $(R1)/student-distill.metrics.jsonl
$(R1)/student-rl.tar: $(R1)/student-base.tar $(TZ)/train.jsonl $(TZ)/test.jsonl $(TZ)/r1-rl.args
	$(TZ_BIN)/ds-grpo train -m $< --tasks $(TZ)/train.jsonl $(R1_GRPO) -o $@ --metrics $(R1)/student-rl.jsonl

# Evaluation of every stage: R1_K samples per held-out problem at R1's sampling settings,
# graded for accuracy/format and for language consistency.
TZ_ARGS_r1-sample = --n $(R1_K) --temperature 0.6 --top-p 0.95 --max-tokens $(R1_MAXTOK) \
    --seed $(TZ_SEED) --threads $(TZ_THREADS) --batch 32
$(R1)/%.completions.jsonl: $(R1)/%.tar $(TZ)/test.jsonl $(TZ)/r1-sample.args
	$(call tz-sample,$<,$(TZ_ARGS_r1-sample))
$(R1)/%.eval.json: $(R1)/%.completions.jsonl
	$(TZ_BIN)/ds-eval --task countdown --problems $(TZ)/test.jsonl $< --k 1 --summary $@ > /dev/null
$(R1)/%.lang.json: $(R1)/%.completions.jsonl
	$(TZ_BIN)/ds-eval --task lang --lang-script latin --problems $(TZ)/test.jsonl $< --k 1 \
	    --summary $@ > /dev/null

# Curves of every training stage beside the table: SFT and pretraining (plot-train.sh), RL
# (plot-grpo.sh), one PNG per stage.
R1_SFT_CURVES = coldstart rs-sft student-base student-distill
$(R1)/report.md: $(foreach s,$(R1_STAGES),$(R1)/$(s).eval.json $(R1)/$(s).lang.json)
	$(foreach s,$(R1_SFT_CURVES),pipelines/plot-train.sh $(R1)/$(s).metrics.jsonl $(R1)/$(s).png "$(s)" &&) true
	pipelines/plot-grpo.sh $(R1)/rl.jsonl $(R1)/rl.png "reasoning RL from the cold start"
	pipelines/plot-grpo.sh $(R1)/student-rl.jsonl $(R1)/student-rl.png "the student trained by GRPO"
	pipelines/r1-report.sh $(R1) $(R1_STAGES) > $@.tmp
	mv $@.tmp $@
	@cat $@
