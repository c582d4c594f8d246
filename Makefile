# fedmarket: one Makefile for the library, services, clients and tests.
#   make          build libfedmarket.a and every binary into bin/
#   make progs    only the binaries (what deploy/Dockerfile builds)
#   make test     install what is missing, build, start the local stack,
#                 run every suite, stop the stack
#   make check    the same suites built with ASan+UBSan
#   make demo     the whole marketplace end to end on this machine
#   make bench    benchmarks against the reference baselines

SAN ?=
FUZZ ?=
ifeq ($(FUZZ),1)
# libFuzzer targets (tests/fuzz/run): clang, every object instrumented
CC := clang
BUILD ?= build/fuzz
BIN ?= build/fuzz/bin
SANFLAGS = -fsanitize=fuzzer-no-link,address,undefined \
	-fno-omit-frame-pointer -fno-sanitize-recover=undefined
OPT ?= -O1 -g
else ifeq ($(SAN),1)
BUILD ?= build/san
BIN ?= build/san/bin
SANFLAGS = -fsanitize=address,undefined -fno-omit-frame-pointer \
	-fno-sanitize-recover=undefined
OPT ?= -O1 -g
else
BUILD ?= build
BIN ?= bin
SANFLAGS =
OPT ?= -O2 -g
endif

CC ?= cc
PKGS = libpq libcurl jansson libsecp256k1 libsodium openblas libmicrohttpd \
	zlib libcrypto
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CMOCKA_LIBS := $(shell pkg-config --libs cmocka 2>/dev/null)

# snprintf truncation is how bounded messages are cut: not a defect.
WARN = -Wall -Wextra -Werror -Wstrict-prototypes -Wmissing-prototypes \
	-Wshadow -Wsign-compare -Wpointer-arith -Wformat=2 -Wvla \
	-Wno-format-truncation
ifeq ($(FUZZ),1)
WARN += -Wno-unknown-warning-option
endif
CFLAGS += -std=c11 -D_GNU_SOURCE -pthread $(OPT) $(WARN) $(SANFLAGS) \
	-Icommon -Itests/support -I/usr/include/x86_64-linux-gnu $(PKG_CFLAGS) -MMD -MP
LDFLAGS += -pthread $(SANFLAGS)
LDLIBS = $(PKG_LIBS) -lm

# Three libraries: common/ (what both sides share), clients/lib/ (only
# the command-line programs) and services/lib/ (only the services). Each
# side compiles against common/ and its own lib/ alone, so a client cannot
# reach service code by accident (tests/unit/layout_test.sh checks the rest).
LIB_SRC := $(sort $(wildcard common/*/*.c))
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
LIB := $(BUILD)/libfedmarket.a
CLIENT_LIB_SRC := $(sort $(wildcard clients/lib/*/*.c))
CLIENT_LIB_OBJ := $(CLIENT_LIB_SRC:%.c=$(BUILD)/obj/%.o)
CLIENT_LIB := $(BUILD)/libfmclient.a
SERVICE_LIB_SRC := $(sort $(wildcard services/lib/*/*.c))
SERVICE_LIB_OBJ := $(SERVICE_LIB_SRC:%.c=$(BUILD)/obj/%.o)
SERVICE_LIB := $(BUILD)/libfmservice.a

# Every other folder under clients/ and services/ is one binary:
# clients/engine -> bin/fedmarket-engine, services/taskd -> bin/fedmarket-taskd
PROG_DIRS := $(sort $(filter-out clients/lib/ services/lib/,\
	$(dir $(wildcard clients/*/*.c services/*/*.c))))
PROGS := $(foreach d,$(PROG_DIRS),$(BIN)/fedmarket-$(notdir $(d:/=)))

TEST_SRC := $(sort $(wildcard tests/unit/*_test.c tests/integration/*_test.c))
TESTS := $(TEST_SRC:%.c=$(BUILD)/%)
TEST_SUPPORT := $(wildcard tests/support/*.c)
TEST_SUPPORT_OBJ := $(TEST_SUPPORT:%.c=$(BUILD)/obj/%.o)

FUZZ_SRC := $(wildcard tests/fuzz/*_fuzz.c)
FUZZ_BIN := $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/fuzz/%)

.PHONY: all lib progs tests test check demo bench clean fuzz fuzz-targets stack-up \
	stack-down contracts
all: $(LIB) $(CLIENT_LIB) $(SERVICE_LIB) $(PROGS) tests

lib: $(LIB) $(CLIENT_LIB) $(SERVICE_LIB)
progs: $(PROGS)
tests: $(TESTS)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c -o $@ $<

# The engine's elementwise loops (Adam, activations) need the vectorizer,
# and sqrtf without errno to become one instruction.
$(BUILD)/obj/common/engine/ml_%.o: CFLAGS += -O3 -fno-math-errno

$(BUILD)/obj/clients/%.o: CFLAGS += -Iclients/lib
$(BUILD)/obj/services/%.o: CFLAGS += -Iservices/lib
$(BUILD)/obj/tests/%.o $(BUILD)/obj/bench/%.o: CFLAGS += -Iclients/lib \
	-Iservices/lib

$(LIB): $(LIB_OBJ)
$(CLIENT_LIB): $(CLIENT_LIB_OBJ)
$(SERVICE_LIB): $(SERVICE_LIB_OBJ)
$(LIB) $(CLIENT_LIB) $(SERVICE_LIB):
	@mkdir -p $(@D)
	rm -f $@
	ar rcs $@ $^

side_lib = $(if $(filter clients/%,$(1)),$(CLIENT_LIB),$(SERVICE_LIB))
define prog_rule
$(BIN)/fedmarket-$(notdir $(1:/=)): $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard $(1)*.c)) $(call side_lib,$(1)) $(LIB)
	@mkdir -p $$(@D)
	$$(CC) $$(LDFLAGS) -o $$@ $$^ $$(LDLIBS)
endef
$(foreach d,$(PROG_DIRS),$(eval $(call prog_rule,$(d))))

$(BUILD)/tests/%: $(BUILD)/obj/tests/%.o $(TEST_SUPPORT_OBJ) $(CLIENT_LIB) \
		$(SERVICE_LIB) $(LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(CMOCKA_LIBS) $(LDLIBS)

fuzz-targets: $(FUZZ_BIN)

$(BUILD)/fuzz/%: $(BUILD)/obj/tests/fuzz/%.o $(CLIENT_LIB) $(SERVICE_LIB) $(LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -fsanitize=fuzzer -o $@ $^ $(LDLIBS)

# Test and demo entry points do their own set-up (deploy/local/*).
test:
	./tests/run-all

check:
	FM_SAN=1 ./tests/run-all

demo:
	./deploy/local/demo $(ARGS)

bench:
	./bench/run

fuzz:
	./tests/fuzz/run

stack-up:
	./deploy/local/stack up

stack-down:
	./deploy/local/stack down

clean:
	rm -rf build bin

-include $(LIB_OBJ:.o=.d) $(CLIENT_LIB_OBJ:.o=.d) $(SERVICE_LIB_OBJ:.o=.d) \
	$(TEST_SRC:%.c=$(BUILD)/obj/%.d)
-include $(patsubst %.c,$(BUILD)/obj/%.d,$(wildcard clients/*/*.c services/*/*.c))
