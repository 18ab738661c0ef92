#!/usr/bin/env bash
# run.sh - libdcache vs Python DiskCache vs raw SQLite: one Markdown table
# SPDX-License-Identifier: MIT
#
# Runs the benchmark_core-shaped workload (bench/bench_core.c,
# bench/bench_diskcache.py) on every implementation in fresh temporary
# directories on one filesystem, ROUNDS times with the implementations
# interleaved (so that a slow patch of a shared machine hits all of them),
# and prints the median over the rounds of each number.  See
# docs/benchmarks.md.
#
# Environment:
#   BUILD   build directory holding bench_core (default: build)
#   ROUNDS  rounds per scenario (default: 5)
#   OPS     measured operations per process (default: 100000)
#   TMPDIR  where the cache directories go (default: /var/tmp, which is on
#           disk on Debian, unlike a tmpfs /tmp)
#   RAW     if set, also keep every RESULT line in this file
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD=${BUILD:-build}
ROUNDS=${ROUNDS:-5}
OPS=${OPS:-100000}
PY=/usr/bin/python3 # Debian's, which has python3-diskcache
CORE=$BUILD/bench_core
PYBENCH=bench/bench_diskcache.py

if [ ! -x "$CORE" ]; then
	echo "run.sh: $CORE not built (make BUILD=$BUILD all)" >&2
	exit 1
fi
if ! "$PY" -c 'import diskcache' 2>/dev/null; then
	echo "run.sh: $PY cannot import diskcache (make deps)" >&2
	exit 1
fi

base=$(mktemp -d "${TMPDIR:-/var/tmp}/dcache-bench.XXXXXX")
trap 'rm -rf "$base"' EXIT
results=$base/results
: >"$results"

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

start=$(date +%s)
echo "running: $ROUNDS rounds x 4 scenarios, $OPS ops per process ..." >&2
scenario "diskcache" "sqlite" "dcache"
scenario "diskcache --shards 8" "dcache --shards 8"
scenario "diskcache --procs 4" "sqlite --procs 4" "dcache --procs 4"
scenario "diskcache --shards 8 --procs 4" "dcache --shards 8 --procs 4"
elapsed=$(($(date +%s) - start))

if [ -n "${RAW:-}" ]; then
	cp "$results" "$RAW"
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
