# ds — DeepSeek V3 → R1 as small Unix tools in C.
#   make              build lib/libds.a and bin/ds-*
#   make test         run every test suite (bats + C unit tests), summary on the last line
#   make SANITIZE=1   build (and test) with -fsanitize=address,undefined into build-asan/ and bin-asan/
#   make NATIVE=1     -march=native instead of the portable x86-64-v2 default
#   make deps         install missing Debian packages (as root), else print the apt-get command
#   make fuzz         build the libFuzzer targets (clang, into build-fuzz/ and bin-fuzz/) and run each
#                     for FUZZ_TIME seconds (default 60) on a seed corpus; fails on a finding (fuzz/README.md)
#   make fuzz-ci      the same, 10 s per target, two at a time (FUZZ_JOBS=2)
#   make FAULT=1      a fault-injection build (build-fault/, bin-fault/): DS_FAULT_ALLOC=N or
#                     DS_FAULT_WRITE=N make the N-th allocation or output commit fail (tests/fault.bats)

CC      ?= cc
NATIVE  ?= 0
SANITIZE ?= 0
FUZZ    ?= 0
FAULT   ?= 0
FUZZ_TIME ?= 60
FUZZ_JOBS ?= 1
# The fuzz build is clang's: libFuzzer instruments lib/ and links the targets' main.
ifeq ($(FUZZ),1)
  CC := clang
endif

ifeq ($(NATIVE),1)
  ARCH := -march=native
else
  ARCH := $(shell $(CC) -march=x86-64-v2 -E -x c /dev/null >/dev/null 2>&1 && echo -march=x86-64-v2)
endif

ifeq ($(FUZZ),1)
  BUILD := build-fuzz
  BIN   := bin-fuzz
  SAN   := -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
  OPT   := -O1 -g
else ifeq ($(SANITIZE),1)
  BUILD := build-asan
  BIN   := bin-asan
  SAN   := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
  OPT   := -O1 -g
else
  BUILD := build
  BIN   := bin
  SAN   :=
  OPT   := -O2 -g
endif

# Fault injection compiles the failure counters of lib/core/common.c and lib/core/atomic_file.c in; it can
# be combined with SANITIZE=1 (build-asan-fault/) so that error paths also run under ASan.
ifeq ($(FAULT),1)
  BUILD := $(BUILD)-fault
  BIN   := $(BIN)-fault
  SAN   += -DDS_FAULT_INJECTION
endif

# gcc's default -O2 vectorizes only loops that need no run-time checks; "cheap" lets the plain
# element-wise loops of lib/ vectorize too (reductions keep their order: no -ffast-math).
VECT    := $(shell $(CC) -fvect-cost-model=cheap -Werror -E -x c /dev/null >/dev/null 2>&1 && echo -fvect-cost-model=cheap)
CFLAGS  ?= $(OPT) $(VECT)
CFLAGS  += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -pthread $(ARCH) $(SAN) -Ilib -I$(BUILD) -I/usr/include/openblas -MMD -MP
LDLIBS  := -lopenblas -ljansson -larchive -lpcre2-8 -lutf8proc -lcrypto -lmicrohttpd -lm -lpthread
LDFLAGS += $(SAN) -pthread

# Files under lib/nn are written once over `real` and compiled twice: float for the tools and
# double for finite-difference gradient checks (see lib/nn/real.h).
# lib/ is one folder per pipeline stage (lib/README.md); every .c in it is part of libds.
LIB_SRC   := $(filter-out lib/nn/%,$(wildcard lib/*/*.c))
NN_SRC    := $(wildcard lib/nn/*.c)
LIB_OBJ   := $(LIB_SRC:%.c=$(BUILD)/%.o) $(NN_SRC:%.c=$(BUILD)/f32/%.o) $(NN_SRC:%.c=$(BUILD)/f64/%.o)
LIBDS     := $(BUILD)/libds.a
TOOL_SRC  := $(wildcard tools/ds-*.c)
TOOLS     := $(TOOL_SRC:tools/%.c=$(BIN)/%)
# tools/common: the command-line code the tools (and bench programs) share, linked into each.
TCOM_SRC  := $(wildcard tools/common/*.c)
TCOM_OBJ  := $(TCOM_SRC:%.c=$(BUILD)/%.o)
UNIT_SRC  := $(wildcard tests/unit/test_*.c)
UNITS     := $(UNIT_SRC:tests/unit/%.c=$(BIN)/tests/%)
BENCH_SRC := $(wildcard bench/*.c)
BENCHES   := $(BENCH_SRC:bench/%.c=$(BIN)/bench/%)
FUZZ_SRC  := $(wildcard fuzz/fuzz_*.c)
FUZZERS   := $(FUZZ_SRC:fuzz/%.c=$(BIN)/%)

# The CUDA backend (lib/cuda/*.cu) builds when nvcc is found, so every machine with the toolkit
# keeps it compiling; CUDA=0 leaves it out, and sanitizer builds leave it out (ASan and the CUDA
# runtime's address reservations do not mix). Nothing here needs a GPU: tests/cuda/test_cuda exits
# 77 (skipped) without one. CUDA_ARCH: sm_90a code (Hopper's FP8 and wgmma) plus PTX for older GPUs.
NVCC ?= $(firstword $(shell command -v nvcc 2>/dev/null) $(wildcard /usr/local/cuda/bin/nvcc))
ifeq ($(SANITIZE),1)
  CUDA ?= 0
else
  CUDA ?= $(if $(NVCC),1,0)
endif
ifeq ($(CUDA),1)
  CUDA_HOME   ?= $(patsubst %/bin/nvcc,%,$(NVCC))
  CUDA_ARCH   ?= -gencode arch=compute_90a,code=sm_90a -gencode arch=compute_80,code=compute_80
  NVFLAGS     := -O2 -std=c++17 $(CUDA_ARCH) -Ilib -Xcompiler -Wall,-Wextra,-Werror -MMD -MP
  CUDA_LDLIBS := -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcublasLt -lcublas -lcudart -lstdc++
  CU_OBJ      := $(patsubst %.cu,$(BUILD)/%.o,$(wildcard lib/cuda/*.cu))
  LIBDS_CUDA  := $(BUILD)/libds_cuda.a
  CUDA_TESTS  := $(BIN)/tests/test_cuda $(BIN)/bench/cuda_gemm_ceiling
endif

VERSION := $(shell git describe --always --dirty --tags 2>/dev/null || echo unknown)

.PHONY: all lib test check deps clean smoke grpo-learn gpu-bundle fuzz fuzz-ci fuzzers
all: $(TOOLS) $(UNITS) $(BENCHES) $(CUDA_TESTS)
lib: $(LIBDS)

# version.h is rewritten (when make reads this file) only when the version string changes, so
# builds stay incremental and `make -q` stays meaningful.
$(shell mkdir -p $(BUILD) && echo '#define DS_VERSION "$(VERSION)"' > $(BUILD)/version.h.tmp && \
    (cmp -s $(BUILD)/version.h.tmp $(BUILD)/version.h && rm -f $(BUILD)/version.h.tmp || \
     mv $(BUILD)/version.h.tmp $(BUILD)/version.h))

$(BUILD)/lib/core/cli.o: $(BUILD)/version.h

$(BUILD)/%.o: %.c Makefile
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c $< -o $@
$(BUILD)/f32/%.o: %.c Makefile
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c $< -o $@
$(BUILD)/f64/%.o: %.c Makefile
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -DDS_REAL_F64 -c $< -o $@

$(LIBDS): $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/tools/%.o $(BUILD)/bench/%.o: CFLAGS += -Itools/common
$(BIN)/%: $(BUILD)/tools/%.o $(TCOM_OBJ) $(LIBDS)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) $< $(TCOM_OBJ) $(LIBDS) $(LDLIBS) -o $@
$(BIN)/tests/%: $(BUILD)/tests/unit/%.o $(LIBDS)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) $< $(LIBDS) $(LDLIBS) -o $@
$(BIN)/bench/%: $(BUILD)/bench/%.o $(TCOM_OBJ) $(LIBDS)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) $< $(TCOM_OBJ) $(LIBDS) $(LDLIBS) -o $@

ifeq ($(CUDA),1)
$(BUILD)/lib/cuda/%.o: lib/cuda/%.cu Makefile
	@mkdir -p $(@D)
	$(NVCC) $(NVFLAGS) -c $< -o $@
$(LIBDS_CUDA): $(CU_OBJ)
	@rm -f $@
	ar rcs $@ $^
$(BIN)/tests/test_cuda: $(BUILD)/tests/cuda/test_cuda.o $(LIBDS_CUDA) $(LIBDS)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) $< $(LIBDS_CUDA) $(LIBDS) $(LDLIBS) $(CUDA_LDLIBS) -o $@
$(BIN)/bench/cuda_gemm_ceiling: bench/cuda/gemm_ceiling.cu Makefile
	@mkdir -p $(@D)
	$(NVCC) $(NVFLAGS) $< -o $@ -L$(CUDA_HOME)/lib64 -Xlinker -rpath,$(CUDA_HOME)/lib64 -lcublas
endif

# What bench/gpu.sh needs on a GPU machine that has none of ds's Debian libraries: the binaries
# (built here with CUDA) and every shared library they load that is neither glibc's nor CUDA's
# (the GPU machine brings its own driver and CUDA 13), in gpu-bundle/ (ignored by git).
gpu-bundle:
	@$(MAKE) --no-print-directory CUDA=1 all
	@scripts/gpu-bundle $(BIN) gpu-bundle

.PRECIOUS: $(BUILD)/fuzz/%.o
$(BIN)/fuzz_%: $(BUILD)/fuzz/fuzz_%.o $(LIBDS)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -fsanitize=fuzzer $< $(LIBDS) $(LDLIBS) -o $@

deps:
	@scripts/deps.sh

# Fuzzing (fuzz/README.md): the targets are built with FUZZ=1; the plain tools make the seeds.
fuzzers: $(FUZZERS)
fuzz: deps
	@$(MAKE) --no-print-directory FUZZ=1 fuzzers
	@$(MAKE) --no-print-directory all
	@DS_BIN=$(CURDIR)/bin FUZZ_JOBS=$(FUZZ_JOBS) fuzz/run.sh $(FUZZ_TIME)
fuzz-ci:
	@$(MAKE) --no-print-directory fuzz FUZZ_TIME=10 FUZZ_JOBS=2

# Does GRPO learn, and does rejection sampling beat unfiltered distillation (results/grpo-learning.md)
grpo-learn: deps
	@$(MAKE) --no-print-directory all
	@DS_BIN=$(CURDIR)/$(BIN) pipelines/grpo-learn.sh out/grpo-learn

# Experiments (make tinyzero, make r1): recipes/*.mk
include recipes/tinyzero.mk recipes/r1.mk

# The suite: every tests/*.bats file, C unit programs are driven from them. DS_BIN tells the tests
# which build to run, so `make SANITIZE=1 test` tests the sanitized binaries.
test: deps
	@$(MAKE) --no-print-directory all
	@DS_BIN=$(CURDIR)/$(BIN) scripts/run-tests $(TESTS)
check: test

# All seven tools once on a tiny model (a few minutes on 2 cores); leaves out/smoke/summary.json.
smoke: deps
	@$(MAKE) --no-print-directory all
	@DS_BIN=$(CURDIR)/$(BIN) pipelines/smoke.sh out/smoke

clean:
	rm -rf build build-asan bin bin-asan build-fuzz bin-fuzz build-*fault bin-*fault

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
