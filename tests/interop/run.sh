#!/usr/bin/env bash
# run.sh - the libdcache <-> Python DiskCache interoperability tests
# SPDX-License-Identifier: MIT
#
# usage: BUILD=build-x tests/interop/run.sh [-k PATTERN]...
# Drives $BUILD/dcinterop against Debian's python3-diskcache (5.4.0, run
# with /usr/bin/python3, never a pyenv python).  The last line printed is
# "N passed, N failed"; the exit status is non-zero on any failure.
set -u
cd "$(dirname "$0")/../.." || exit 1
BUILD=${BUILD:-build}
PY=/usr/bin/python3
driver=$BUILD/dcinterop

fail() {
	echo "interop: $*"
	echo "0 passed, 1 failed"
	exit 1
}

[ -x "$driver" ] || fail "$driver is not built (make BUILD=$BUILD all)"
[ -x "$PY" ] || fail "$PY is missing (apt-get install python3)"
"$PY" -c 'import diskcache' 2>/dev/null ||
	fail "python3-diskcache is missing (make deps)"
command -v sqlite3 >/dev/null || fail "the sqlite3 CLI is missing (make deps)"

case $driver in /*) ;; *) driver=$PWD/$driver ;; esac
export DCINTEROP="$driver"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
# Keep the source tree clean of __pycache__.
export PYTHONDONTWRITEBYTECODE=1
exec "$PY" tests/interop/runtests.py "$@"
