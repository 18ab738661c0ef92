#!/usr/bin/env bash
# fs.sh - dcachefs vs a plain directory on the same disk: one Markdown table
# SPDX-License-Identifier: MIT
#
# Mounts a fresh cache with dcachefs (default options) and times, with
# $BUILD/fsbench, the same work on the mount and on plain files in a
# directory next to the cache, in one run:
#   - sequential read of a 256 MiB value (1 MiB reads), page cache warm,
#     and cold (after drop_caches, when this process may drop them);
#   - open+read+close of 10,000 small keys (100 B - 4 KiB) once, the first
#     time the mount sees them, and again (what `cat` of each does);
#   - creating 10,000 small files (open, write, close: what cp does);
#   - open+read+close of one 4 KiB key over and over for a few seconds
#     (a web server without an open-file cache).
# Each number is the median of ROUNDS rounds with the two sides
# interleaved, except the first-time read, which happens once.
#
# Environment: BUILD (default build), ROUNDS (3), TMPDIR (/var/tmp: use a
# disk, not a tmpfs), HOT_SECONDS (2), BIG_MIB (256), SMALL_FILES (10000).
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD=${BUILD:-build}
ROUNDS=${ROUNDS:-3}
HOT_SECONDS=${HOT_SECONDS:-2}
BIG_MIB=${BIG_MIB:-256}
SMALL_FILES=${SMALL_FILES:-10000}
PY=/usr/bin/python3
FSBENCH=$BUILD/fsbench
DCACHEFS=$BUILD/dcachefs

for b in "$FSBENCH" "$DCACHEFS"; do
	if [ ! -x "$b" ]; then
		echo "fs.sh: $b not built (make BUILD=$BUILD all)" >&2
		exit 1
	fi
done
if [ ! -e /dev/fuse ]; then
	echo "fs.sh: /dev/fuse is missing: no dcachefs numbers" >&2
	exit 0
fi

base=$(mktemp -d "${TMPDIR:-/var/tmp}/dcachefs-bench.XXXXXX")
cache=$base/cache
mnt=$base/mnt
plain=$base/plain
mkdir -p "$mnt" "$plain"
dpid=

is_mounted() {
	awk -v m="$1" '$2 == m { f = 1 } END { exit !f }' /proc/mounts
}

cleanup() {
	if is_mounted "$mnt"; then
		fusermount3 -u "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null
	fi
	if [ -n "$dpid" ]; then
		kill "$dpid" 2>/dev/null || true
		wait "$dpid" 2>/dev/null || true
	fi
	rm -rf "$base"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$DCACHEFS" -f "$cache" "$mnt" 2>"$base/daemon.log" &
dpid=$!
for _ in $(seq 100); do
	is_mounted "$mnt" && break
	kill -0 "$dpid" 2>/dev/null || break
	sleep 0.1
done
if ! is_mounted "$mnt"; then
	echo "fs.sh: dcachefs did not mount:" >&2
	cat "$base/daemon.log" >&2
	exit 1
fi

results=$base/results
: >"$results"

# measure WORKLOAD SIDE fsbench-args...: append "WORKLOAD SIDE RESULT..."
measure() {
	local w=$1 side=$2 line
	shift 2
	line=$("$FSBENCH" "$@" | grep '^RESULT ') || {
		echo "fs.sh: fsbench $* failed" >&2
		exit 1
	}
	echo "$w $side $line" >>"$results"
}

can_drop=0
if sync && echo 3 >/proc/sys/vm/drop_caches 2>/dev/null; then
	can_drop=1
fi
drop() { sync && echo 3 >/proc/sys/vm/drop_caches; }

start=$(date +%s)
echo "fs.sh: setting up ($BIG_MIB MiB value, $SMALL_FILES small keys) ..." >&2

# --- a large value, written through the mount (spooled, then adopted) --
head -c "${BIG_MIB}M" /dev/urandom >"$plain/big.src"
cp "$plain/big.src" "$mnt/big"
bigfile=$cache/$("$PY" -c "import diskcache, sys
c = diskcache.Cache(sys.argv[1])
print(c._sql('SELECT filename FROM Cache WHERE key = ?', ('big',)).fetchone()[0])
" "$cache")
rm -f "$plain/big.src"
cmp -s "$bigfile" "$mnt/big" || {
	echo "fs.sh: the large value reads back wrong" >&2
	exit 1
}

# --- small keys (Python, one transaction) and the same as plain files --
"$PY" - "$cache" "$plain/small" "$SMALL_FILES" <<'EOF'
import os, random, sys
import diskcache
c = diskcache.Cache(sys.argv[1])
os.makedirs(sys.argv[2])
rnd = random.Random(42)
with c.transact():
    for i in range(int(sys.argv[3])):
        data = rnd.randbytes(rnd.randrange(100, 4097))
        name = 'f%05d' % i
        c['small/' + name] = data
        with open(os.path.join(sys.argv[2], name), 'wb') as f:
            f.write(data)
c['hot'] = b'h' * 4096
with open(os.path.join(os.path.dirname(sys.argv[2]), 'hot'), 'wb') as f:
    f.write(b'h' * 4096)
EOF
sync
find "$plain/small" -type f | sort >"$base/list.plain"
sed "s|^$plain/small/|$mnt/small/|" "$base/list.plain" >"$base/list.mnt"

echo "fs.sh: measuring ($ROUNDS rounds) ..." >&2
# small files: the first time the mount sees them (lookups, no cached
# names or pages), then again.  Both sides start from a warm page cache:
# the plain files and the cache's database were just written; read them
# once more to be sure.
"$FSBENCH" readfiles "$base/list.plain" >/dev/null
cat "$cache"/cache.db* >/dev/null
measure small_first dcachefs readfiles "$base/list.mnt"
measure small_first native readfiles "$base/list.plain"
for ((r = 0; r < ROUNDS; r++)); do
	measure small_again native readfiles "$base/list.plain"
	measure small_again dcachefs readfiles "$base/list.mnt"
done

# creating small files
for ((r = 0; r < ROUNDS; r++)); do
	mkdir "$plain/copy$r" "$mnt/copy$r"
	measure small_write native writefiles "$base/list.plain" "$plain/copy$r"
	measure small_write dcachefs writefiles "$base/list.plain" "$mnt/copy$r"
done
cmp -s "$plain/small/f00007" "$mnt/copy0/f00007" || {
	echo "fs.sh: a copied file reads back wrong" >&2
	exit 1
}

# one hot key
cat "$mnt/hot" "$plain/hot" >/dev/null
for ((r = 0; r < ROUNDS; r++)); do
	measure hot native hot "$plain/hot" "$HOT_SECONDS"
	measure hot dcachefs hot "$mnt/hot" "$HOT_SECONDS"
done

# sequential read, warm: untimed reads fill each page cache (the mount's
# pages are its own, apart from the value file's)
for _ in 1 2; do
	"$FSBENCH" seqread "$bigfile" >/dev/null
	"$FSBENCH" seqread "$mnt/big" >/dev/null
done
for ((r = 0; r < ROUNDS; r++)); do
	measure seq_warm native seqread "$bigfile"
	measure seq_warm dcachefs seqread "$mnt/big"
done
# cold, last: dropping the caches would spoil the warm measurements
if [ "$can_drop" = 1 ]; then
	for ((r = 0; r < ROUNDS; r++)); do
		drop
		measure seq_cold native seqread "$bigfile"
		drop
		measure seq_cold dcachefs seqread "$mnt/big"
	done
fi
elapsed=$(($(date +%s) - start))

export BENCH_DATE BENCH_KERNEL BENCH_CPU BENCH_FS BENCH_LIBFUSE BENCH_ROUNDS \
	BENCH_ELAPSED BENCH_CAN_DROP BENCH_BIG BENCH_SMALL BENCH_HOT
BENCH_DATE=$(date -u '+%Y-%m-%d %H:%M UTC')
BENCH_KERNEL=$(uname -r)
BENCH_CPU="$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo |
	head -n 1) ($(nproc) CPUs)"
BENCH_FS="$(findmnt -n -o FSTYPE -T "$base" 2>/dev/null ||
	stat -f -c %T "$base") (${TMPDIR:-/var/tmp})"
BENCH_LIBFUSE=$("$DCACHEFS" -V 2>/dev/null | sed -n 's/^libfuse //p' |
	head -n 1)
BENCH_ROUNDS=$ROUNDS BENCH_ELAPSED=$elapsed BENCH_CAN_DROP=$can_drop
BENCH_BIG=$BIG_MIB BENCH_SMALL=$SMALL_FILES BENCH_HOT=$HOT_SECONDS

"$PY" - "$results" <<'EOF'
import os
import statistics
import sys

E = os.environ
rows = {}
for line in open(sys.argv[1]):
    w, side, _, *kv = line.split()
    f = dict(x.split('=', 1) for x in kv)
    rows.setdefault((w, side), []).append(f)


def rate(w, side, unit):
    rs = rows.get((w, side))
    if not rs:
        return None
    if unit == 'bytes':
        v = [int(r['bytes']) / (int(r['ns']) / 1e9) for r in rs]
    else:
        v = [int(r['n']) / (int(r['ns']) / 1e9) for r in rs]
    return statistics.median(v)


def fmt(v, unit):
    if v is None:
        return '—'
    if unit == 'bytes':
        return '%.2f GB/s' % (v / 1e9)
    return '%.0f/s' % v


small = int(E['BENCH_SMALL'])
table = [
    ('seq_warm', 'bytes', 'sequential read of a %s MiB value, page cache '
     'warm (1 MiB reads)' % E['BENCH_BIG']),
    ('seq_cold', 'bytes', 'sequential read of a %s MiB value, cold '
     '(after drop_caches)' % E['BENCH_BIG']),
    ('small_first', 'files', 'open+read+close of %d small keys '
     '(100 B - 4 KiB), first time' % small),
    ('small_again', 'files', 'open+read+close of the %d small keys again'
     % small),
    ('small_write', 'files', 'creating %d small files (open, write, close)'
     % small),
    ('hot', 'files', 'open+read+close of one 4 KiB key, repeated for %s s'
     % E['BENCH_HOT']),
]
print('## dcachefs vs plain files on the same disk')
print()
print('- date: %s' % E['BENCH_DATE'])
print('- kernel: %s; CPU: %s' % (E['BENCH_KERNEL'], E['BENCH_CPU']))
print('- filesystem under both: %s; libfuse %s; dcachefs with default '
      'options' % (E['BENCH_FS'], E['BENCH_LIBFUSE']))
print('- each number is the median of %s interleaved rounds (the '
      'first-time read: one run); run took %s s'
      % (E['BENCH_ROUNDS'], E['BENCH_ELAPSED']))
print()
print('| workload | plain files | dcachefs | dcachefs / plain |')
print('|---|---:|---:|---:|')
for w, unit, title in table:
    if w == 'seq_cold' and E['BENCH_CAN_DROP'] != '1':
        print('| %s | — | — | not measured (cannot drop caches) |' % title)
        continue
    a, b = rate(w, 'native', unit), rate(w, 'dcachefs', unit)
    ratio = '—' if not a or b is None else '%.1f %%' % (100.0 * b / a)
    print('| %s | %s | %s | %s |' % (title, fmt(a, unit), fmt(b, unit),
                                     ratio))
EOF
