#!/usr/bin/env bash
# run.sh - libdcache vs Python DiskCache vs raw SQLite: Markdown tables
# SPDX-License-Identifier: MIT
#
# Runs the benchmark_core-shaped workload (bench/bench_core.c,
# bench/bench_diskcache.py) on every implementation in fresh temporary
# directories on one filesystem, ROUNDS times with the implementations
# interleaved (so that a slow patch of a shared machine hits all of them),
# and prints the median over the rounds of each number.  Then the same for
# the Deque, Index, memoize, recipe and zlib-serializer operations
# (bench/bench_extras.c, bench/bench_extras.py), libdcache against Python.
# See docs/benchmarks.md.
#
# Environment:
#   BUILD   build directory holding bench_core and bench_extras (default:
#           build)
#   ROUNDS  rounds per scenario (default: 5)
#   OPS     measured operations per process (default: 100000)
#   TMPDIR  where the cache directories go (default: /var/tmp, which is on
#           disk on Debian, unlike a tmpfs /tmp)
#   RAW     if set, also keep every RESULT line in this file
#   GETSET  0 leaves out the get/set/delete table
#   EXTRAS  0 leaves out the Deque/Index/memoize/recipes/zlib table
#   EXTRA_ROUNDS  rounds of that table (default: 10; short rounds, as
#           the speed of this shared VM changes every few seconds)
#   EXTRA_OPS  measured calls per operation and round there (default: 1000)
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD=${BUILD:-build}
ROUNDS=${ROUNDS:-5}
OPS=${OPS:-100000}
PY=/usr/bin/python3 # Debian's, which has python3-diskcache
EXTRA_ROUNDS=${EXTRA_ROUNDS:-10}
EXTRA_OPS=${EXTRA_OPS:-1000}
CORE=$BUILD/bench_core
PYBENCH=bench/bench_diskcache.py
XBENCH=$BUILD/bench_extras
PYXBENCH=bench/bench_extras.py

for prog in "$CORE" "$XBENCH"; do
	if [ ! -x "$prog" ]; then
		echo "run.sh: $prog not built (make BUILD=$BUILD all)" >&2
		exit 1
	fi
done
if ! "$PY" -c 'import diskcache' 2>/dev/null; then
	echo "run.sh: $PY cannot import diskcache (make deps)" >&2
	exit 1
fi

base=$(mktemp -d "${TMPDIR:-/var/tmp}/dcache-bench.XXXXXX")
trap 'rm -rf "$base"' EXIT
results=$base/results
extras=$base/extras
: >"$results"
: >"$extras"

# run NAME ARGS... - one measured run in a fresh directory; a failure is
# reported and leaves a gap in the table rather than stopping everything.
n=0
failures=0
run() {
	local impl=$1
	shift
	local dir=$base/c$((n += 1))
	local out=$base/out err=$base/err
	local rc=0

	mkdir "$dir"
	case $impl in
	diskcache) "$PY" "$PYBENCH" "$dir" --ops "$OPS" "$@" >"$out" \
		2>"$err" || rc=$? ;;
	*) "$CORE" "$impl" "$dir" --ops "$OPS" "$@" >"$out" 2>"$err" ||
		rc=$? ;;
	esac
	if [ "$rc" -ne 0 ]; then
		failures=$((failures + 1))
		echo "run.sh: $impl $* failed (exit $rc):" >&2
		sed 's/^/  /' "$err" >&2
	fi
	grep '^RESULT ' "$out" >>"$results" || true
	rm -rf "$dir"
}

# The four scenarios; each round rotates the order of the implementations.
scenario() {
	local impls=("$@")
	local r i k

	for ((r = 0; r < ROUNDS; r++)); do
		for ((i = 0; i < ${#impls[@]}; i++)); do
			k=$(((i + r) % ${#impls[@]}))
			run ${impls[$k]}
		done
	done
}

# run_extras IMPL - one run of the issue-5 operations in a fresh
# directory, as run() does for the scenarios.
run_extras() {
	local impl=$1
	local dir=$base/x$((n += 1))
	local out=$base/out err=$base/err
	local rc=0

	case $impl in
	diskcache) "$PY" "$PYXBENCH" "$dir" --ops "$EXTRA_OPS" >"$out" \
		2>"$err" || rc=$? ;;
	*) "$XBENCH" "$dir" --ops "$EXTRA_OPS" >"$out" 2>"$err" || rc=$? ;;
	esac
	if [ "$rc" -ne 0 ]; then
		failures=$((failures + 1))
		echo "run.sh: extras $impl failed (exit $rc):" >&2
		sed 's/^/  /' "$err" >&2
	fi
	grep '^RESULT ' "$out" >>"$extras" || true
	rm -rf "$dir"
}

loadavg() {
	cut -d' ' -f1-3 /proc/loadavg
}

# The issue-5 operations first (one process at a time, so the load average
# read before the scenarios is not their own): the two implementations
# alternate, each round starting with the other one.
x_elapsed=0
x_load_before=$(loadavg)
if [ "${EXTRAS:-1}" != 0 ]; then
	echo "running: $EXTRA_ROUNDS rounds of Deque, Index, memoize," \
		"recipes, zlib: $EXTRA_OPS calls each ..." >&2
	x_start=$(date +%s)
	for ((r = 0; r < EXTRA_ROUNDS; r++)); do
		if ((r % 2)); then
			run_extras dcache
			run_extras diskcache
		else
			run_extras diskcache
			run_extras dcache
		fi
	done
	x_elapsed=$(($(date +%s) - x_start))
fi
x_load_after=$(loadavg)

start=$(date +%s)
elapsed=0
load_before=$(loadavg)
if [ "${GETSET:-1}" != 0 ]; then
	echo "running: $ROUNDS rounds x 4 scenarios, $OPS ops per process ..." >&2
	scenario "diskcache" "sqlite" "dcache"
	scenario "diskcache --shards 8" "dcache --shards 8"
	scenario "diskcache --procs 4" "sqlite --procs 4" "dcache --procs 4"
	scenario "diskcache --shards 8 --procs 4" "dcache --shards 8 --procs 4"
	elapsed=$(($(date +%s) - start))
fi
load_after=$(loadavg)

if [ -n "${RAW:-}" ]; then
	cat "$results" "$extras" >"$RAW"
fi

versions=$("$CORE" version)
pyver=$("$PY" -c 'import sys, diskcache, sqlite3
print("python=%d.%d.%d diskcache=%s pysqlite=%s" % (sys.version_info[:3]
      + (diskcache.__version__, sqlite3.sqlite_version)))')
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)

BENCH_DATE=$(date -u '+%Y-%m-%d %H:%M UTC')
BENCH_KERNEL=$(uname -r)
BENCH_CPU="$cpu ($(nproc) CPUs)"
export BENCH_DATE BENCH_KERNEL BENCH_CPU
fstype=$(findmnt -n -o FSTYPE -T "$base" 2>/dev/null ||
	stat -f -c %T "$base")
export BENCH_FS="$fstype (${TMPDIR:-/var/tmp})"
export BENCH_VERSIONS="$versions $pyver"
export BENCH_ROUNDS=$ROUNDS BENCH_OPS=$OPS BENCH_ELAPSED=$elapsed
export BENCH_LOAD="$load_before before, $load_after after"
export BENCH_X_LOAD="$x_load_before before, $x_load_after after"
export BENCH_X_OPS=$EXTRA_OPS BENCH_X_ROUNDS=$EXTRA_ROUNDS
export BENCH_X_ELAPSED=$x_elapsed

if [ "${GETSET:-1}" != 0 ]; then
	"$PY" - "$results" <<'EOF'
import os
import statistics
import sys

rows = {}
for line in open(sys.argv[1]):
    f = dict(kv.split('=', 1) for kv in line.split()[1:])
    rows.setdefault((f['layout'], f['procs'], f['op'], f['impl']), []).append(f)


def med(layout, procs, op, impl, field):
    rs = rows.get((layout, procs, op, impl))
    if not rs:
        return None
    return statistics.median(float(r[field]) for r in rs)


def us(v):
    return '—' if v is None else '%.1f' % (v / 1000.0)


def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


def fmt_ratio(v, goal, better):
    if v is None:
        return '—'
    ok = v >= goal if better == 'high' else v <= goal
    return '%.2f× %s' % (v, '✓' if ok else '✗')


E = os.environ
print('## libdcache vs Python DiskCache vs raw SQLite')
print()
print('- date: %s' % E['BENCH_DATE'])
print('- kernel: %s; CPU: %s' % (E['BENCH_KERNEL'], E['BENCH_CPU']))
print('- load average: %s' % E['BENCH_LOAD'])
print('- filesystem: %s' % E['BENCH_FS'])
print('- versions: %s' % E['BENCH_VERSIONS'])
print('- workload: %s measured ops per process (after 1000 warm-up ops), '
      '90%% get / 9%% set / 1%% delete, 1000 pre-populated byte keys, '
      'byte values of 1-594 bytes, seed 42 (+ process index); each number '
      'is the median of %s interleaved rounds; run took %s s'
      % (E['BENCH_OPS'], E['BENCH_ROUNDS'], E['BENCH_ELAPSED']))
print()
print('Latencies in µs.  "vs Python" = Python median / libdcache median '
      '(goal ≥ 2× for get, ≥ 3× for set and delete); "vs SQLite" = '
      'libdcache median / raw-SQLite median (goal ≤ 1.3×); "floor vs '
      'Python" = Python median / raw-SQLite median, the best "vs Python" '
      'any implementation doing the same SQLite work could reach.')
print()
print('| scenario | op | Python median | Python p99 | SQLite median | '
      'SQLite p99 | libdcache median | libdcache p99 | vs Python | '
      'vs SQLite | floor vs Python |')
print('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|')
scenarios = [('plain', '1', 'Cache, 1 process'),
             ('fanout8', '1', 'FanoutCache(8), 1 process'),
             ('plain', '4', 'Cache, 4 processes'),
             ('fanout8', '4', 'FanoutCache(8), 4 processes')]
errors = {}
seqs = {}
for layout, procs, title in scenarios:
    for op in ('get', 'set', 'delete'):
        vals = {}
        for impl in ('diskcache', 'sqlite', 'libdcache'):
            vals[impl] = (med(layout, procs, op, impl, 'median_ns'),
                          med(layout, procs, op, impl, 'p99_ns'))
            for r in rows.get((layout, procs, op, impl), []):
                if int(r['err']):
                    key = (title, impl, op)
                    errors[key] = errors.get(key, 0) + int(r['err'])
        goal = 2.0 if op == 'get' else 3.0
        vs_py = ratio(vals['diskcache'][0], vals['libdcache'][0])
        vs_sql = ratio(vals['libdcache'][0], vals['sqlite'][0])
        floor = ratio(vals['diskcache'][0], vals['sqlite'][0])
        print('| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |' % (
            title, op, us(vals['diskcache'][0]), us(vals['diskcache'][1]),
            us(vals['sqlite'][0]), us(vals['sqlite'][1]),
            us(vals['libdcache'][0]), us(vals['libdcache'][1]),
            fmt_ratio(vs_py, goal, 'high'),
            fmt_ratio(vs_sql, 1.3, 'low') if layout == 'plain' else '—',
            '—' if floor is None else '%.2f×' % floor))
    tput = {impl: med(layout, procs, 'all', impl, 'ops_per_s')
            for impl in ('diskcache', 'sqlite', 'libdcache')}
    for impl in tput:
        for r in rows.get((layout, procs, 'all', impl), []):
            seqs.setdefault(procs, set()).add(r['seq'])

    def k(v):
        return '—' if v is None else '%.0f' % v

    def x(v):
        return '—' if v is None else '%.2f×' % v
    tp_py = ratio(tput['libdcache'], tput['diskcache'])
    tp_sql = ratio(tput['libdcache'], tput['sqlite'])
    tp_floor = ratio(tput['sqlite'], tput['diskcache'])
    print('| %s | **ops/s (all procs)** | %s | | %s | | %s | | %s | %s | %s |'
          % (title, k(tput['diskcache']), k(tput['sqlite']),
             k(tput['libdcache']), x(tp_py), x(tp_sql), x(tp_floor)))
notes = []
for (title, impl, op), count in errors.items():
    notes.append('%s: %s %s failed %d times over all rounds (a shard '
                 'timeout; Python\'s FanoutCache.delete reports one as a '
                 'miss, so only its set timeouts show)'
                 % (title, impl, op, count))
for procs, s in sorted(seqs.items()):
    if len(s) != 1:
        notes.append('WARNING: the operation streams differ (%s procs): %s'
                     % (procs, ' '.join(sorted(s))))
if notes:
    print()
    for n in notes:
        print('- %s' % n)
EOF
fi

# The issue-5 operations: libdcache vs Python, one row per call.
if [ "${EXTRAS:-1}" != 0 ]; then
	if [ "${GETSET:-1}" != 0 ]; then
		echo
	fi
	"$PY" - "$extras" <<'EOF'
import os
import statistics
import sys
import zlib

sys.path.insert(0, 'bench')
from bench_extras import make_big  # noqa: E402 (the value both sides use)

rows = {}
for line in open(sys.argv[1]):
    f = dict(kv.split('=', 1) for kv in line.split()[1:])
    rows.setdefault((f['op'], f['impl']), []).append(f)


def med(op, impl, field):
    rs = rows.get((op, impl))
    if not rs:
        return None
    return statistics.median(float(r[field]) for r in rs)


def us(v):
    return '—' if v is None else '%.1f' % (v / 1000.0)


E = os.environ
big = make_big()
print('## Deque, Index, memoize, recipes, zlib: libdcache vs Python DiskCache')
print()
print('- date: %s' % E['BENCH_DATE'])
print('- kernel: %s; CPU: %s' % (E['BENCH_KERNEL'], E['BENCH_CPU']))
print('- load average: %s' % E['BENCH_X_LOAD'])
print('- filesystem: %s' % E['BENCH_FS'])
print('- versions: %s' % E['BENCH_VERSIONS'])
print('- workload: one process, default settings, fresh directories; each '
      'operation %s measured calls after 200 warm-up calls, on 1000 '
      'pre-populated keys/items; each number is the median of %s rounds, '
      'the two implementations alternating; run took %s s'
      % (E['BENCH_X_OPS'], E['BENCH_X_ROUNDS'], E['BENCH_X_ELAPSED']))
print('- values: Deque and Index: bytes of 10-50 B; zlib: a %d-byte '
      'HTML-like bytes value, %d B compressed (`dc_serializer_zlib(-1)` vs '
      'the `ZlibDisk` class of docs/serializers.md)'
      % (len(big), len(zlib.compress(big))))
print()
print('Latencies in µs.  "C/Python" = libdcache median / Python median '
      '(below 1: C is faster); "speed-up" = Python median / libdcache '
      'median.')
print()
print('| operation | Python median | Python p99 | libdcache median | '
      'libdcache p99 | C/Python | speed-up |')
print('|---|---:|---:|---:|---:|---:|---:|')
table = [
    ('deque_append', 'Deque: append'),
    ('deque_popleft', 'Deque: popleft'),
    ('deque_pair', '**Deque: append + popleft**'),
    ('index_set', '**Index: set** (existing key)'),
    ('index_get', '**Index: get**'),
    ('memo_hit', '**memoize: hit**'),
    ('memo_miss', '**memoize: miss + store**'),
    ('lock_acquire', 'Lock: acquire'),
    ('lock_release', 'Lock: release'),
    ('lock_pair', '**Lock: acquire + release** (uncontended)'),
    ('sem_acquire', 'BoundedSemaphore(1): acquire'),
    ('sem_release', 'BoundedSemaphore(1): release'),
    ('sem_pair', '**BoundedSemaphore(1): acquire + release**'),
    ('avg_add', '**Averager: add**'),
    ('zlib_set', '**zlib serializer: set 4 KiB**'),
    ('zlib_get', '**zlib serializer: get 4 KiB**'),
    ('raw4k_set', 'reference: plain set of the same 4 KiB'),
    ('raw4k_get', 'reference: plain get of the same 4 KiB'),
]
notes = []
for op, title in table:
    py = med(op, 'diskcache', 'median_ns')
    c = med(op, 'libdcache', 'median_ns')
    ratio = None if py is None or c is None or py == 0 else c / py
    print('| %s | %s | %s | %s | %s | %s | %s |' % (
        title, us(py), us(med(op, 'diskcache', 'p99_ns')), us(c),
        us(med(op, 'libdcache', 'p99_ns')),
        '—' if ratio is None else '%.2f' % ratio,
        '—' if not ratio else '%.2f×' % (1 / ratio)))
    for impl in ('diskcache', 'libdcache'):
        for r in rows.get((op, impl), []):
            if int(r['miss']) or int(r['err']):
                notes.append('%s %s: %s unexpected results, %s errors'
                             % (impl, op, r['miss'], r['err']))
if notes:
    print()
    for n in notes:
        print('- WARNING: %s' % n)
EOF
fi

# The filesystem: dcachefs vs plain files (bench/fs.sh, its own table);
# FS=0 leaves it out.
if [ "${FS:-1}" != 0 ]; then
	echo
	BUILD=$BUILD bench/fs.sh || failures=$((failures + 1))
fi

# nginx from a dcachefs mount vs a plain directory (bench/nginx.sh);
# NGINX=0 leaves it out.
if [ "${NGINX:-1}" != 0 ]; then
	echo
	BUILD=$BUILD bench/nginx.sh || failures=$((failures + 1))
fi

# The targets are reported, not asserted; a run that failed outright is an
# error, though.
if [ "$failures" -ne 0 ]; then
	echo "run.sh: $failures run(s) failed; their cells are empty" >&2
	exit 1
fi
