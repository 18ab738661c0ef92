# Makefile - builds libdcache, the dcache CLI, the tests and the benchmarks
# SPDX-License-Identifier: MIT
#
#   make            build everything into $(BUILD)/
#   make deps       install the Debian packages the build and tests need
#   make test       deps + build + every test suite (Check, CLI, interop,
#                   FUSE, install, mount/systemd, nginx)
#   make try        deps + build + mount a cache at ./mnt in the foreground
#   make install    PREFIX=/usr/local, DESTDIR honoured; make uninstall
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
ZLIB_LIBS = $(shell pkg-config --libs zlib 2>/dev/null || echo -lz)
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

# Small C programs used by the interop tests and the benchmark.  The
# interop ones share drvutil.c, linked into each, not a program itself.
DRV_OBJ = $(BUILD)/tests/interop/drvutil.o
.SECONDARY: $(DRV_OBJ)
TOOL_SRC = $(filter-out tests/interop/drvutil.c,$(wildcard tests/interop/*.c)) \
	   $(wildcard bench/*.c)
TOOL_BIN = $(patsubst %.c,$(BUILD)/%,$(notdir $(TOOL_SRC)))

.PHONY: all deps test-deps test check-unit check-cli check-interop check-fs bench format \
	format-check clean install uninstall try check-install check-mount \
	check-nginx
all: $(LIB_A) $(LIB_SO) $(CLI) $(FS_BIN) $(TEST_BIN) $(TOOL_BIN)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) $(CHECK_CFLAGS) -c -o $@ $<

$(LIB_A): $(CORE_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

$(LIB_SO): $(CORE_OBJ)
	$(CC) -shared -Wl,-soname,libdcache.so.0 -Wl,-z,nodelete -o $@ $^ \
		$(LDFLAGS) \
		$(SQLITE_LIBS) $(ZLIB_LIBS) -lm

$(CLI): $(CLI_OBJ) $(LIB_A)
	$(CC) -o $@ $(CLI_OBJ) $(LIB_A) $(LDFLAGS) $(SQLITE_LIBS) \
		$(ZLIB_LIBS) -lm

$(BUILD)/fs/%.o: fs/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) $(FUSE_CFLAGS) -c -o $@ $<

$(FS_BIN): $(FS_OBJ) $(LIB_A)
	$(CC) -o $@ $(FS_OBJ) $(LIB_A) $(LDFLAGS) $(FUSE_LIBS) \
		$(SQLITE_LIBS) $(ZLIB_LIBS) -lm

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
		$(SQLITE_LIBS) $(ZLIB_LIBS) -lm

$(BUILD)/%: tests/interop/%.c $(DRV_OBJ) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -o $@ $< $(DRV_OBJ) $(LIB_A) \
		$(LDFLAGS) $(SQLITE_LIBS) $(ZLIB_LIBS) -lm

$(BUILD)/%: bench/%.c $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -o $@ $< $(LIB_A) $(LDFLAGS) \
		$(SQLITE_LIBS) $(ZLIB_LIBS) -lm

# Debian packages, installed only when missing.  DEPS build and run
# dcachefs; TEST_DEPS are what the test suites drive (nginx, systemd's
# unit checker, man).  Installing nginx must not start Debian's own nginx
# on port 80, so test-deps holds service starts back with policy-rc.d.
DEPS = build-essential pkg-config libsqlite3-dev sqlite3 check \
       libsubunit-dev python3 python3-diskcache libfuse3-dev fuse3 attr \
       zlib1g-dev
TEST_DEPS = clang-format systemd nginx groff-base man-db rsync
APT_INSTALL = \
	missing=""; for p in $$pkgs; do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | \
		grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		if [ "$$(id -u)" != 0 ]; then SUDO=sudo; else SUDO=; fi; \
		held=; if [ -n "$$hold" ] && [ ! -e /usr/sbin/policy-rc.d ]; then \
			printf '\043!/bin/sh\nexit 101\n' | \
			$$SUDO tee /usr/sbin/policy-rc.d >/dev/null && \
			$$SUDO chmod 755 /usr/sbin/policy-rc.d && held=1; \
		fi; \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq \
			--no-install-recommends $$missing; rc=$$?; \
		[ -z "$$held" ] || $$SUDO rm -f /usr/sbin/policy-rc.d; \
		exit $$rc; \
	fi

deps:
	@pkgs="$(DEPS)"; hold=; $(APT_INSTALL)

test-deps: deps
	@pkgs="$(TEST_DEPS)"; hold=1; $(APT_INSTALL)

test: test-deps
	$(MAKE) all
	$(MAKE) check-unit check-cli check-interop check-fs check-install \
		check-mount check-nginx

check-unit: $(TEST_BIN)
	$(TEST_BIN)

check-cli: $(CLI)
	@if [ -x tests/cli/run.sh ]; then BUILD=$(BUILD) tests/cli/run.sh; fi

check-interop: $(CLI) $(TOOL_BIN)
	@if [ -x tests/interop/run.sh ]; then \
		BUILD=$(BUILD) tests/interop/run.sh; fi

check-fs: $(FS_BIN) $(CLI)
	@if [ -x tests/fs/run.sh ]; then BUILD=$(BUILD) tests/fs/run.sh; fi

# The installed tree, tried from a temporary DESTDIR: pkg-config, a C
# program linked statically and dynamically, man pages, uninstall.
check-install: $(LIB_A) $(LIB_SO) $(CLI) $(FS_BIN)
	@if [ -x tests/install/run.sh ]; then \
		BUILD=$(BUILD) tests/install/run.sh; fi

# fstab (mount -T), mount -t fuse.dcachefs, the helper, systemd units,
# sd_notify, SIGHUP and logs.
check-mount: $(CLI) $(FS_BIN)
	@if [ -x tests/mount/run.sh ]; then BUILD=$(BUILD) tests/mount/run.sh; fi

# nginx serving cached values through X-Accel-Redirect.
check-nginx: $(CLI) $(FS_BIN)
	@if [ -x tests/nginx/run.sh ]; then BUILD=$(BUILD) tests/nginx/run.sh; fi

# A first try: mount a cache with default options at ./mnt, in the
# foreground; Ctrl-C unmounts.  The cache lives in ./try-cache.
TRY_CACHE ?= try-cache
try: deps
	$(MAKE) $(FS_BIN) $(CLI)
	@mkdir -p mnt
	@echo
	@echo "Mounting the cache $(TRY_CACHE)/ at ./mnt (Ctrl-C unmounts)."
	@echo "In another terminal, in $(CURDIR):"
	@echo "  echo hello > mnt/greeting; cat mnt/greeting; ls -l mnt"
	@echo "  getfattr -d -m - mnt/greeting; cat mnt/.ctl/stats; df -h mnt"
	@echo "  $(CLI) -d $(TRY_CACHE) set --expire 1m note hi; cat mnt/note"
	@echo "  /usr/bin/python3 -c \"import diskcache;" \
		"print(diskcache.Cache('$(TRY_CACHE)')['greeting'])\""
	@echo
	@trap : INT TERM; $(FS_BIN) -f $(TRY_CACHE) mnt; \
		echo "unmounted ./mnt; the cache stays in $(TRY_CACHE)/"

# Installation.  The mount helper goes where mount(8) looks for helpers
# (/sbin, whatever the prefix); units where systemd looks for a prefix.
VERSION := $(shell sed -n 's/^\#define DC_VERSION "\(.*\)"/\1/p' \
	core/include/dcache.h)
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
MANDIR ?= $(PREFIX)/share/man
DOCDIR ?= $(PREFIX)/share/doc/dcachefs
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
MOUNTHELPERDIR ?= /sbin
MAN1 = $(wildcard docs/man/*.1)
MAN3 = $(wildcard docs/man/*.3)
MAN8 = $(wildcard docs/man/*.8)
EXAMPLES = systemd/mnt-cache.mount systemd/mnt-cache.automount
D = $(DESTDIR)

install: $(LIB_A) $(LIB_SO) $(CLI) $(FS_BIN)
	install -d $(D)$(BINDIR) $(D)$(LIBDIR) $(D)$(INCLUDEDIR) \
		$(D)$(PKGCONFIGDIR) $(D)$(MANDIR)/man1 $(D)$(MANDIR)/man3 \
		$(D)$(MANDIR)/man8 $(D)$(DOCDIR)/examples \
		$(D)$(SYSTEMDUNITDIR) $(D)$(MOUNTHELPERDIR)
	install -m 755 $(FS_BIN) $(CLI) $(D)$(BINDIR)/
	install -m 644 $(LIB_A) $(D)$(LIBDIR)/libdcache.a
	install -m 755 $(LIB_SO) $(D)$(LIBDIR)/libdcache.so.$(VERSION)
	ln -sf libdcache.so.$(VERSION) $(D)$(LIBDIR)/libdcache.so.0
	ln -sf libdcache.so.0 $(D)$(LIBDIR)/libdcache.so
	install -m 644 core/include/dcache.h $(D)$(INCLUDEDIR)/dcache.h
	sed -e 's|@prefix@|$(PREFIX)|; s|@libdir@|$(LIBDIR)|' \
		-e 's|@includedir@|$(INCLUDEDIR)|; s|@version@|$(VERSION)|' \
		dcache.pc.in > $(D)$(PKGCONFIGDIR)/dcache.pc
	chmod 644 $(D)$(PKGCONFIGDIR)/dcache.pc
	install -m 644 $(MAN1) $(D)$(MANDIR)/man1/
	install -m 644 $(MAN3) $(D)$(MANDIR)/man3/
	install -m 644 $(MAN8) $(D)$(MANDIR)/man8/
	sed -e 's|^bindir=.*|bindir=$(BINDIR)|' \
		mount-helpers/mount.fuse.dcachefs \
		> $(D)$(MOUNTHELPERDIR)/mount.fuse.dcachefs
	chmod 755 $(D)$(MOUNTHELPERDIR)/mount.fuse.dcachefs
	sed -e 's|/usr/local/bin/|$(BINDIR)/|g' systemd/dcachefs@.service \
		> $(D)$(SYSTEMDUNITDIR)/dcachefs@.service
	chmod 644 $(D)$(SYSTEMDUNITDIR)/dcachefs@.service
	sed -e 's|/usr/local/bin/|$(BINDIR)/|g' systemd/dcachefs.conf.example \
		> $(D)$(DOCDIR)/examples/dcachefs.conf.example
	install -m 644 $(EXAMPLES) $(D)$(DOCDIR)/examples/

uninstall:
	rm -f $(D)$(BINDIR)/dcachefs $(D)$(BINDIR)/dcache \
		$(D)$(LIBDIR)/libdcache.a $(D)$(LIBDIR)/libdcache.so \
		$(D)$(LIBDIR)/libdcache.so.0 \
		$(D)$(LIBDIR)/libdcache.so.$(VERSION) \
		$(D)$(INCLUDEDIR)/dcache.h $(D)$(PKGCONFIGDIR)/dcache.pc \
		$(addprefix $(D)$(MANDIR)/man1/,$(notdir $(MAN1))) \
		$(addprefix $(D)$(MANDIR)/man3/,$(notdir $(MAN3))) \
		$(addprefix $(D)$(MANDIR)/man8/,$(notdir $(MAN8))) \
		$(D)$(MOUNTHELPERDIR)/mount.fuse.dcachefs \
		$(D)$(SYSTEMDUNITDIR)/dcachefs@.service \
		$(D)$(DOCDIR)/examples/dcachefs.conf.example \
		$(addprefix $(D)$(DOCDIR)/examples/,$(notdir $(EXAMPLES)))
	-rmdir $(D)$(DOCDIR)/examples $(D)$(DOCDIR) 2>/dev/null

bench: test-deps
	$(MAKE) SAN= all
	BUILD=build bench/run.sh

C_FILES = $(shell git ls-files '*.c' '*.h' 2>/dev/null)
format:
	clang-format -i $(C_FILES)
format-check:
	clang-format --dry-run -Werror $(C_FILES)

clean:
	rm -rf build build-san

-include $(CORE_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(TEST_OBJ:.o=.d) $(FS_OBJ:.o=.d) \
	 $(DRV_OBJ:.o=.d)
