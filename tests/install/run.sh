#!/usr/bin/env bash
# run.sh - make install into a temporary DESTDIR, use it, make uninstall
# SPDX-License-Identifier: MIT
#
# Installs with the default PREFIX (/usr/local) under a mktemp -d DESTDIR,
# checks every installed file, builds a C program against the installed
# libdcache with pkg-config (PKG_CONFIG_PATH and PKG_CONFIG_SYSROOT_DIR
# point into the DESTDIR), shared and static, runs both against a real
# cache that Python DiskCache also reads and writes, renders the man pages
# and finally checks that make uninstall leaves no file behind.
#
#   BUILD=build tests/install/run.sh
set -u

top=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$top/$BUILD ;; esac
PY=/usr/bin/python3
MAKE=${MAKE:-make}

work=$(mktemp -d /tmp/dcachefs-install.XXXXXX)
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT TERM
D=$work/dest
passed=0
failed=0

pass() {
	passed=$((passed + 1))
	echo "ok   $1"
}

fail() {
	failed=$((failed + 1))
	echo "FAIL $1"
	[ -s "$work/log" ] && sed 's/^/     /' "$work/log" | tail -20
}

# check NAME COMMAND...: one assertion; output of COMMAND in $work/log.
check() {
	local name=$1
	shift
	if "$@" >"$work/log" 2>&1; then
		pass "$name"
	else
		fail "$name"
	fi
}

mk() {
	"$MAKE" -s --no-print-directory -C "$top" BUILD="$BUILD" "$@"
}

version=$(sed -n 's/^#define DC_VERSION "\(.*\)"/\1/p' \
	"$top/core/include/dcache.h")
P=$D/usr/local

check "make install DESTDIR=..." mk install DESTDIR="$D"

files_present() {
	local f
	for f in bin/dcachefs bin/dcache lib/libdcache.a \
		"lib/libdcache.so.$version" include/dcache.h \
		lib/pkgconfig/dcache.pc share/man/man1/dcachefs.1 \
		share/man/man1/dcache.1 share/man/man3/libdcache.3 \
		share/man/man8/mount.fuse.dcachefs.8 \
		lib/systemd/system/dcachefs@.service \
		share/doc/dcachefs/examples/mnt-cache.mount \
		share/doc/dcachefs/examples/mnt-cache.automount \
		share/doc/dcachefs/examples/dcachefs.conf.example; do
		[ -f "$P/$f" ] || {
			echo "missing: $f"
			return 1
		}
	done
	[ -x "$P/bin/dcachefs" ] && [ -x "$P/bin/dcache" ] &&
		[ -x "$D/sbin/mount.fuse.dcachefs" ]
}
check "every file is installed" files_present

so_chain() {
	[ "$(readlink "$P/lib/libdcache.so")" = libdcache.so.0 ] &&
		[ "$(readlink "$P/lib/libdcache.so.0")" = "libdcache.so.$version" ] &&
		readelf -d "$P/lib/libdcache.so.$version" |
		grep -q 'SONAME.*\[libdcache\.so\.0\]'
}
check "libdcache.so -> .so.0 -> .so.$version, soname libdcache.so.0" so_chain

paths_rewritten() {
	grep -qx 'bindir=/usr/local/bin' "$D/sbin/mount.fuse.dcachefs" &&
		grep -q '^ExecStart=/usr/local/bin/dcachefs ' \
			"$P/lib/systemd/system/dcachefs@.service" &&
		grep -qx 'prefix=/usr/local' "$P/lib/pkgconfig/dcache.pc" &&
		! grep -q @ "$P/lib/pkgconfig/dcache.pc"
}
check "installed paths name the prefix" paths_rewritten

other_prefix() {
	local d2=$work/dest2
	mk install DESTDIR="$d2" PREFIX=/usr || return 1
	grep -qx 'bindir=/usr/bin' "$d2/sbin/mount.fuse.dcachefs" &&
		grep -q '^ExecStart=/usr/bin/dcachefs ' \
			"$d2/usr/lib/systemd/system/dcachefs@.service" &&
		grep -qx 'libdir=/usr/lib' "$d2/usr/lib/pkgconfig/dcache.pc" &&
		mk uninstall DESTDIR="$d2" PREFIX=/usr &&
		[ -z "$(find "$d2" -type f -o -type l)" ]
}
check "PREFIX=/usr rewrites every path" other_prefix

check "installed dcachefs -V runs" "$P/bin/dcachefs" -V
check "installed dcache --version runs" "$P/bin/dcache" --version

export PKG_CONFIG_PATH=$P/lib/pkgconfig PKG_CONFIG_SYSROOT_DIR=$D
pc_flags() {
	[ "$(pkg-config --modversion dcache)" = "$version" ] &&
		pkg-config --cflags dcache | grep -q -- "-I$P/include" &&
		pkg-config --libs dcache | grep -q -- "-L$P/lib -ldcache" &&
		pkg-config --static --libs dcache | grep -q -- -lsqlite3 &&
		pkg-config --static --libs dcache | grep -q -- -pthread
}
check "pkg-config --cflags --libs dcache" pc_flags

cat >"$work/hello.c" <<'EOF'
/* hello.c - reads the key Python wrote, writes one for Python to read */
#include <dcache.h>
#include <stdio.h>

int main(int argc, char **argv)
{
	dc_cache *c;
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_item item;
	struct dc_value key = dc_text("from_py"), mine = dc_text("from_c");
	struct dc_value val = dc_text(argc > 2 ? argv[2] : "c-value");
	int rc;

	if (argc < 2)
		return 2;
	rc = dc_cache_open(argv[1], NULL, &c);
	if (rc) {
		fprintf(stderr, "open: %s\n", dc_strerror(rc));
		return 1;
	}
	rc = dc_cache_get(c, &key, &buf, &item, 0);
	if (rc == 0)
		printf("%.*s\n", (int)item.value.len,
		       (const char *)item.value.data);
	if (rc == 0)
		rc = dc_cache_set(c, &mine, &val, DC_NO_EXPIRE, NULL, 0);
	if (rc)
		fprintf(stderr, "%s\n", dc_strerror(rc));
	dc_buf_release(&buf);
	dc_cache_close(c);
	return rc != 0;
}
EOF

# A sanitizer build's libdcache needs the program linked the same way.
san=
if nm "$P/lib/libdcache.a" 2>/dev/null | grep -q __asan; then
	san="-fsanitize=address,undefined"
fi

C=$work/cache
"$PY" -c "import diskcache, sys; diskcache.Cache(sys.argv[1])['from_py'] = 'py-value'" "$C"

build_shared() {
	# shellcheck disable=SC2046
	cc $san -o "$work/hello_shared" "$work/hello.c" \
		$(pkg-config --cflags --libs dcache) &&
		readelf -d "$work/hello_shared" |
		grep -q 'NEEDED.*\[libdcache\.so\.0\]'
}
check "cc hello.c \$(pkg-config --cflags --libs dcache): shared" build_shared

build_static() {
	# -l:libdcache.a picks the archive although the .so sits beside it.
	# shellcheck disable=SC2046
	cc $san -o "$work/hello_static" "$work/hello.c" \
		$(pkg-config --cflags --static --libs dcache |
			sed 's/-ldcache/-l:libdcache.a/') &&
		! readelf -d "$work/hello_static" | grep -q libdcache
}
check "cc hello.c \$(pkg-config --static ...): libdcache.a linked in" \
	build_static

py_get() {
	"$PY" -c "import diskcache, sys; print(diskcache.Cache(sys.argv[1]).get('from_c'))" "$C"
}

run_shared() {
	local out
	out=$(LD_LIBRARY_PATH=$P/lib "$work/hello_shared" "$C" shared-value) &&
		[ "$out" = py-value ] && [ "$(py_get)" = shared-value ] &&
		LD_LIBRARY_PATH=$P/lib ldd "$work/hello_shared" |
		grep -q "$P/lib/libdcache.so.0"
}
check "shared program reads Python's key, Python reads its key" run_shared

run_static() {
	local out
	out=$("$work/hello_static" "$C" static-value) &&
		[ "$out" = py-value ] && [ "$(py_get)" = static-value ]
}
check "static program reads Python's key, Python reads its key" run_static

man_pages() {
	local f warn
	for f in "$P"/share/man/man*/*; do
		if command -v groff >/dev/null; then
			warn=$(LC_ALL=C.UTF-8 groff -man -Tutf8 -ww -z "$f" 2>&1)
			[ -z "$warn" ] || {
				echo "$f: $warn"
				return 1
			}
		fi
		if command -v man >/dev/null; then
			MANWIDTH=80 man -l "$f" 2>&1 | grep -q NAME || {
				echo "man -l $f shows no NAME section"
				return 1
			}
		fi
	done
	command -v groff >/dev/null || echo "NOTE: groff missing, not checked"
}
check "man pages render without warnings (groff -ww, man -l)" man_pages

check "make uninstall DESTDIR=..." mk uninstall DESTDIR="$D"
nothing_left() {
	find "$D" -type f -o -type l
	[ -z "$(find "$D" -type f -o -type l)" ]
}
check "uninstall leaves no file behind" nothing_left

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
