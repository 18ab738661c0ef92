# Makefile - builds libdcache, the dcache CLI, the tests and the benchmarks
# SPDX-License-Identifier: MIT
#
#   make            build everything into $(BUILD)/
#   make deps       install the Debian packages the build and tests need
#   make test       deps + build + every test suite (Check, CLI, interop)
#   make test SAN=1 the same under AddressSanitizer/UBSan, in build-san/
#   make bench      the benchmark table (see docs/benchmarks.md)
#   make format     reformat C sources; make format-check to verify

SAN ?=
ifeq ($(SAN),1)
BUILD ?= build-san
SANFLAGS = -fsanitize=address,undefined -fno-omit-frame-pointer \
	   -fno-sanitize-recover=undefined
else
BUILD ?= build
SANFLAGS =
endif

CC ?= cc
WERROR ?= -Werror
OPT ?= -O2 -g
WARNINGS = -Wall -Wextra $(WERROR) -Wshadow -Wstrict-prototypes \
	   -Wmissing-prototypes -Wformat=2 -Wvla -Wno-format-nonliteral
CPPFLAGS += -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -Icore/include
CFLAGS ?= $(OPT)
ALL_CFLAGS = -std=c11 $(WARNINGS) $(CFLAGS) $(SANFLAGS) -fPIC -pthread \
	     -MMD -MP
LDFLAGS += $(SANFLAGS) -pthread

SQLITE_LIBS = $(shell pkg-config --libs sqlite3 2>/dev/null || echo -lsqlite3)
CHECK_CFLAGS = $(shell pkg-config --cflags check 2>/dev/null)
CHECK_LIBS = $(shell pkg-config --libs check 2>/dev/null || echo -lcheck)

CORE_SRC = $(wildcard core/src/*.c)
CORE_OBJ = $(CORE_SRC:%.c=$(BUILD)/%.o)
LIB_A = $(BUILD)/libdcache.a
LIB_SO = $(BUILD)/libdcache.so

CLI = $(BUILD)/dcache
CLI_SRC = $(wildcard cli/*.c)
CLI_OBJ = $(CLI_SRC:%.c=$(BUILD)/%.o)

TEST_SRC = $(filter-out tests/check_main.c,$(wildcard tests/check_*.c))
TEST_OBJ = $(TEST_SRC:%.c=$(BUILD)/%.o) $(BUILD)/tests/check_main.o \
	   $(BUILD)/tests/testutil.o
TEST_BIN = $(BUILD)/check_dcache
SUITES_H = $(BUILD)/tests/suites.h

# The FUSE daemon: fs/*.c, linked with libfuse3.
FUSE_CFLAGS = $(shell pkg-config --cflags fuse3 2>/dev/null)
FUSE_LIBS = $(shell pkg-config --libs fuse3 2>/dev/null)
FS_SRC = $(wildcard fs/*.c)
FS_OBJ = $(FS_SRC:%.c=$(BUILD)/%.o)
FS_BIN = $(if $(FS_SRC),$(BUILD)/dcachefs)

# Small C programs used by the interop tests and the benchmark.
TOOL_SRC = $(wildcard tests/interop/*.c) $(wildcard bench/*.c)
TOOL_BIN = $(patsubst %.c,$(BUILD)/%,$(notdir $(TOOL_SRC)))

.PHONY: all deps test check-unit check-cli check-interop check-fs bench format \
	format-check clean
all: $(LIB_A) $(LIB_SO) $(CLI) $(FS_BIN) $(TEST_BIN) $(TOOL_BIN)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) $(CHECK_CFLAGS) -c -o $@ $<

$(LIB_A): $(CORE_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

$(LIB_SO): $(CORE_OBJ)
	$(CC) -shared -Wl,-soname,libdcache.so.0 -o $@ $^ $(LDFLAGS) \
		$(SQLITE_LIBS) -lm

$(CLI): $(CLI_OBJ) $(LIB_A)
	$(CC) -o $@ $(CLI_OBJ) $(LIB_A) $(LDFLAGS) $(SQLITE_LIBS) -lm

$(BUILD)/fs/%.o: fs/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) $(FUSE_CFLAGS) -c -o $@ $<

$(FS_BIN): $(FS_OBJ) $(LIB_A)
	$(CC) -o $@ $(FS_OBJ) $(LIB_A) $(LDFLAGS) $(FUSE_LIBS) \
		$(SQLITE_LIBS) -lm

$(SUITES_H): $(TEST_SRC)
	@mkdir -p $(dir $@)
	@for f in $(notdir $(TEST_SRC:.c=)); do \
		echo "SUITE($${f#check_})"; done > $@.tmp && mv $@.tmp $@

$(BUILD)/tests/check_main.o: tests/check_main.c $(SUITES_H)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -I$(BUILD)/tests $(ALL_CFLAGS) $(CHECK_CFLAGS) \
		-c -o $@ $<

$(TEST_BIN): $(TEST_OBJ) $(LIB_A)
	$(CC) -o $@ $(TEST_OBJ) $(LIB_A) $(LDFLAGS) $(CHECK_LIBS) \
		$(SQLITE_LIBS) -lm

$(BUILD)/%: tests/interop/%.c $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -o $@ $< $(LIB_A) $(LDFLAGS) \
		$(SQLITE_LIBS) -lm

$(BUILD)/%: bench/%.c $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -o $@ $< $(LIB_A) $(LDFLAGS) \
		$(SQLITE_LIBS) -lm

# Debian packages needed to build and test; installed only when missing.
DEPS = build-essential pkg-config libsqlite3-dev sqlite3 check \
       libsubunit-dev python3 python3-diskcache clang-format \
       libfuse3-dev fuse3 attr
deps:
	@missing=""; for p in $(DEPS); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | \
		grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		if [ "$$(id -u)" != 0 ]; then SUDO=sudo; else SUDO=; fi; \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq \
			--no-install-recommends $$missing; \
	fi

test: deps
	$(MAKE) all
	$(MAKE) check-unit check-cli check-interop check-fs

check-unit: $(TEST_BIN)
	$(TEST_BIN)

check-cli: $(CLI)
	@if [ -x tests/cli/run.sh ]; then BUILD=$(BUILD) tests/cli/run.sh; fi

check-interop: $(CLI) $(TOOL_BIN)
	@if [ -x tests/interop/run.sh ]; then \
		BUILD=$(BUILD) tests/interop/run.sh; fi

check-fs: $(FS_BIN) $(CLI)
	@if [ -x tests/fs/run.sh ]; then BUILD=$(BUILD) tests/fs/run.sh; fi

bench: deps
	$(MAKE) SAN= all
	BUILD=build bench/run.sh

C_FILES = $(shell git ls-files '*.c' '*.h' 2>/dev/null)
format:
	clang-format -i $(C_FILES)
format-check:
	clang-format --dry-run -Werror $(C_FILES)

clean:
	rm -rf build build-san

-include $(CORE_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(TEST_OBJ:.o=.d) $(FS_OBJ:.o=.d)
