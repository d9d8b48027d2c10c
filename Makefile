# ds — DeepSeek V3 → R1 as small Unix tools in C.
#   make              build lib/libds.a and bin/ds-*
#   make test         run every test suite (bats + C unit tests), summary on the last line
#   make SANITIZE=1   build (and test) with -fsanitize=address,undefined into build-asan/ and bin-asan/
#   make NATIVE=1     -march=native instead of the portable x86-64-v2 default
#   make deps         install missing Debian packages (as root), else print the apt-get command

CC      ?= cc
NATIVE  ?= 0
SANITIZE ?= 0

ifeq ($(NATIVE),1)
  ARCH := -march=native
else
  ARCH := $(shell $(CC) -march=x86-64-v2 -E -x c /dev/null >/dev/null 2>&1 && echo -march=x86-64-v2)
endif

ifeq ($(SANITIZE),1)
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

# gcc's default -O2 vectorizes only loops that need no run-time checks; "cheap" lets the plain
# element-wise loops of lib/ vectorize too (reductions keep their order: no -ffast-math).
VECT    := $(shell $(CC) -fvect-cost-model=cheap -Werror -E -x c /dev/null >/dev/null 2>&1 && echo -fvect-cost-model=cheap)
CFLAGS  ?= $(OPT) $(VECT)
CFLAGS  += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -pthread $(ARCH) $(SAN) -Ilib -I$(BUILD) -I/usr/include/openblas -MMD -MP
LDLIBS  := -lopenblas -ljansson -larchive -lpcre2-8 -lutf8proc -lcrypto -lm -lpthread
LDFLAGS += $(SAN) -pthread

# Files under lib/nn are written once over `real` and compiled twice: float for the tools and
# double for finite-difference gradient checks (see lib/nn/real.h).
LIB_SRC   := $(wildcard lib/*.c)
NN_SRC    := $(wildcard lib/nn/*.c)
LIB_OBJ   := $(LIB_SRC:%.c=$(BUILD)/%.o) $(NN_SRC:%.c=$(BUILD)/f32/%.o) $(NN_SRC:%.c=$(BUILD)/f64/%.o)
LIBDS     := $(BUILD)/libds.a
TOOL_SRC  := $(wildcard tools/ds-*.c)
TOOLS     := $(TOOL_SRC:tools/%.c=$(BIN)/%)
UNIT_SRC  := $(wildcard tests/unit/test_*.c)
UNITS     := $(UNIT_SRC:tests/unit/%.c=$(BIN)/tests/%)
BENCH_SRC := $(wildcard bench/*.c)
BENCHES   := $(BENCH_SRC:bench/%.c=$(BIN)/bench/%)

VERSION := $(shell git describe --always --dirty --tags 2>/dev/null || echo unknown)

.PHONY: all lib test check deps clean smoke grpo-learn
all: $(TOOLS) $(UNITS) $(BENCHES)
lib: $(LIBDS)

# version.h is rewritten (when make reads this file) only when the version string changes, so
# builds stay incremental and `make -q` stays meaningful.
$(shell mkdir -p $(BUILD) && echo '#define DS_VERSION "$(VERSION)"' > $(BUILD)/version.h.tmp && \
    (cmp -s $(BUILD)/version.h.tmp $(BUILD)/version.h && rm -f $(BUILD)/version.h.tmp || \
     mv $(BUILD)/version.h.tmp $(BUILD)/version.h))

$(BUILD)/lib/cli.o: $(BUILD)/version.h

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

$(BIN)/%: $(BUILD)/tools/%.o $(LIBDS)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) $< $(LIBDS) $(LDLIBS) -o $@
$(BIN)/tests/%: $(BUILD)/tests/unit/%.o $(LIBDS)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) $< $(LIBDS) $(LDLIBS) -o $@
$(BIN)/bench/%: $(BUILD)/bench/%.o $(LIBDS)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) $< $(LIBDS) $(LDLIBS) -o $@

deps:
	@scripts/deps.sh

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
	rm -rf build build-asan bin bin-asan

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
