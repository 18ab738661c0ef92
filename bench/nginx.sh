#!/usr/bin/env bash
# nginx.sh - nginx requests/s from a dcachefs mount vs a plain directory
# SPDX-License-Identifier: MIT
#
# One nginx on a free 127.0.0.1 port (its own config, pid file and logs in
# a temporary directory, workers as nobody, access_log off, sendfile on)
# serves the same two files from three places, each by a plain static
# `location ... { alias DIR/; }` -- the static-file path that
# X-Accel-Redirect ends in (going through a backend would measure the
# backend, not the file system):
#   /plain/   a plain directory on the same disk as the cache
#   /mount/   a dcachefs mount of the cache (-o allow_other, default
#             kernel caching)
#   /strict/  a second dcachefs mount of the same cache with -o strict
#             (4 KiB only)
# and the same three again with nginx's open_file_cache on (/plain-ofc/,
# ...).  The values are written through the mount: the 4 KiB value is
# stored inline in SQLite, the 100 MiB value in a value file (checked with
# `dcache get -m`).  Debian's wrk measures each location ROUNDS times,
# the sides alternating, and the median is printed as a Markdown table
# with the ratio mount/plain.
#
# wrk is installed with apt-get if missing (as `make deps` does).
#
# Environment: BUILD (default build), ROUNDS (2), SMALL_SECONDS (5),
# BIG_SECONDS (5), STRICT (1: also measure -o strict), TMPDIR (/var/tmp:
# use a disk, not a tmpfs), RAW (also keep every run's WRK line in this
# file).
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD=${BUILD:-build}
ROUNDS=${ROUNDS:-2}
SMALL_SECONDS=${SMALL_SECONDS:-5}
BIG_SECONDS=${BIG_SECONDS:-5}
STRICT=${STRICT:-1}
PY=/usr/bin/python3
DCACHEFS=$BUILD/dcachefs
DCACHE=$BUILD/dcache
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

# skip WHY: no numbers, said in the output too (make bench goes on).
skip() {
	echo "nginx.sh: $*: no nginx numbers" >&2
	printf '## nginx: dcachefs mount vs plain directory\n\n'
	printf '*Not measured: %s.*\n' "$*"
	exit 0
}

for b in "$DCACHEFS" "$DCACHE"; do
	if [ ! -x "$b" ]; then
		echo "nginx.sh: $b not built (make BUILD=$BUILD all)" >&2
		exit 1
	fi
done
[ -e /dev/fuse ] || skip "/dev/fuse is missing"
[ -x "$NGINX" ] || skip "nginx is not installed (make test-deps installs it)"
# The workers must switch to nobody, and the mounts need allow_other.
[ "$(id -u)" = 0 ] || skip "needs root"
if ! command -v wrk >/dev/null; then
	# Like `make deps`: Debian's package, installed only when missing.
	echo "nginx.sh: installing wrk (apt-get)" >&2
	apt-get update -qq &&
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends wrk >&2
fi

base=$(mktemp -d "${TMPDIR:-/var/tmp}/dcachefs-nginx-bench.XXXXXX")
# nginx's workers (nobody) must reach the files through this directory.
chmod 755 "$base"
cache=$base/cache
mnt=$base/mnt
smnt=$base/smnt
plain=$base/plain
mkdir -p "$mnt" "$smnt" "$plain" "$base/nginx/tmp"
pids=()   # the dcachefs daemons
npid=     # nginx's master
mounts=()

is_mounted() {
	awk -v m="$1" '$2 == m { f = 1 } END { exit !f }' /proc/mounts
}

cleanup() {
	local p m
	# nginx first, so that nothing holds files open on the mounts; then
	# unmount, which ends the daemons; then stop whatever is left.
	if [ -n "$npid" ]; then
		kill "$npid" 2>/dev/null || true
		wait "$npid" 2>/dev/null || true
	fi
	for m in "${mounts[@]}"; do
		if is_mounted "$m"; then
			fusermount3 -u "$m" 2>/dev/null ||
				umount -l "$m" 2>/dev/null || true
		fi
	done
	for p in "${pids[@]}"; do
		kill "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	rm -rf "$base"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# mount DIR OPTIONS: a dcachefs of $cache in the foreground, PID kept.
mount_fs() {
	local dir=$1 opts=$2
	mounts+=("$dir")
	"$DCACHEFS" -f -o "$opts" "$cache" "$dir" \
		2>"$base/dcachefs.$(basename "$dir").log" &
	pids+=($!)
	for _ in $(seq 100); do
		is_mounted "$dir" && return 0
		kill -0 "${pids[-1]}" 2>/dev/null || break
		sleep 0.1
	done
	echo "nginx.sh: dcachefs -o $opts did not mount:" >&2
	cat "$base/dcachefs.$(basename "$dir").log" >&2
	exit 1
}

start=$(date +%s)
load_before=$(cut -d ' ' -f 1-3 /proc/loadavg)
echo "nginx.sh: setting up (4 KiB and 100 MiB values) ..." >&2
mount_fs "$mnt" allow_other

# The values, written through the mount; the same bytes as plain files.
head -c 4096 /dev/urandom >"$plain/small.bin"
head -c 100M /dev/urandom >"$plain/big.bin"
cp "$plain/small.bin" "$mnt/small.bin"
cp "$plain/big.bin" "$mnt/big.bin"
# Where they are stored: inline in SQLite, and a value file.
small_fb=$("$DCACHE" -d "$cache" get -m small.bin | sed -n 's/^file_backed //p')
big_fb=$("$DCACHE" -d "$cache" get -m big.bin | sed -n 's/^file_backed //p')
if [ "$small_fb" != 0 ] || [ "$big_fb" != 1 ]; then
	echo "nginx.sh: expected the 4 KiB value inline and the 100 MiB one" \
		"file-backed, got file_backed=$small_fb and $big_fb" >&2
	exit 1
fi
if [ "$STRICT" = 1 ]; then
	mount_fs "$smnt" allow_other,strict
fi
sync

port=$("$PY" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])')

# open_file_cache as docs/nginx.md recommends it (stale for at most 2 s).
ofc='open_file_cache max=10000 inactive=30s; open_file_cache_valid 2s;
			open_file_cache_errors off;'
cat >"$base/nginx/nginx.conf" <<EOF
# A private nginx: nothing outside $base is read or written.
daemon off;
user nobody nogroup;
worker_processes auto;
pid $base/nginx/nginx.pid;
error_log $base/nginx/error.log warn;
events { worker_connections 256; }
http {
	access_log off;
	client_body_temp_path $base/nginx/tmp/body;
	proxy_temp_path $base/nginx/tmp/proxy;
	fastcgi_temp_path $base/nginx/tmp/fastcgi;
	uwsgi_temp_path $base/nginx/tmp/uwsgi;
	scgi_temp_path $base/nginx/tmp/scgi;
	default_type application/octet-stream;
	sendfile on;
	# Measure the file path, not reconnects.
	keepalive_requests 1000000;
	server {
		listen 127.0.0.1:$port;
		location /plain/ { alias $plain/; }
		location /mount/ { alias $mnt/; }
		location /strict/ { alias $smnt/; }
		location /plain-ofc/ { alias $plain/; $ofc }
		location /mount-ofc/ { alias $mnt/; $ofc }
		location /strict-ofc/ { alias $smnt/; $ofc }
	}
}
EOF
"$NGINX" -t -p "$base/nginx" -c "$base/nginx/nginx.conf" \
	-e "$base/nginx/error.log" >"$base/nginx-t.log" 2>&1 || {
	echo "nginx.sh: nginx -t failed:" >&2
	cat "$base/nginx-t.log" >&2
	exit 1
}
"$NGINX" -p "$base/nginx" -c "$base/nginx/nginx.conf" \
	-e "$base/nginx/error.log" &
npid=$!
for _ in $(seq 100); do
	curl -s -o /dev/null "http://127.0.0.1:$port/" && break
	kill -0 "$npid" 2>/dev/null || break
	sleep 0.1
done
workers=$(ps -o user= --ppid "$npid" | sort -u | tr '\n' ' ')
if [ "$workers" != "nobody " ]; then
	echo "nginx.sh: nginx workers run as [$workers], not nobody" >&2
	exit 1
fi

sides=(plain mount)
[ "$STRICT" = 1 ] && sides+=(strict)

# Every URL serves the right bytes (this also warms every page cache).
for loc in "${sides[@]}"; do
	for ofcsfx in "" -ofc; do
		for f in small big; do
			[ "$loc" = strict ] && [ "$f" = big ] && continue
			url=http://127.0.0.1:$port/$loc$ofcsfx/$f.bin
			if ! curl -sf -o "$base/body" "$url" ||
				! cmp -s "$base/body" "$plain/$f.bin"; then
				echo "nginx.sh: $url serves wrong bytes" >&2
				exit 1
			fi
		done
	done
done
rm -f "$base/body"

# wrk prints one machine-readable line at the end of each run.
cat >"$base/report.lua" <<'EOF'
done = function(summary, latency, requests)
	local e = summary.errors
	io.write(string.format(
		"WRK requests=%d bytes=%d us=%d errors=%d non2xx=%d\n",
		summary.requests, summary.bytes, summary.duration,
		e.connect + e.read + e.write + e.timeout, e.status))
end
EOF

results=$base/results
: >"$results"
failures=0
# measure SIZE OFC SIDE CONNS SECONDS: one wrk run, appended to $results.
measure() {
	local size=$1 ofcsfx=$2 side=$3 conns=$4 secs=$5 line
	line=$(wrk -t2 -c"$conns" -d"${secs}s" --timeout 30s \
		-s "$base/report.lua" \
		"http://127.0.0.1:$port/$side$ofcsfx/$size.bin" |
		grep '^WRK ') || {
		echo "nginx.sh: wrk failed on /$side$ofcsfx/$size.bin" >&2
		failures=$((failures + 1))
		return 0
	}
	echo "$size ${ofcsfx:-off} $side $line" >>"$results"
}

nruns=$((ROUNDS * 2 * (${#sides[@]} * SMALL_SECONDS + 2 * BIG_SECONDS)))
echo "nginx.sh: measuring (about $nruns s) ..." >&2
for ofcsfx in "" -ofc; do
	for ((r = 0; r < ROUNDS; r++)); do
		# Alternate which side goes first from round to round.
		if ((r % 2 == 0)); then order=("${sides[@]}"); else
			order=(); for ((i = ${#sides[@]} - 1; i >= 0; i--)); do
				order+=("${sides[$i]}")
			done
		fi
		for s in "${order[@]}"; do
			measure small "$ofcsfx" "$s" 16 "$SMALL_SECONDS"
		done
	done
	for ((r = 0; r < ROUNDS; r++)); do
		if ((r % 2 == 0)); then order=(plain mount); else
			order=(mount plain)
		fi
		for s in "${order[@]}"; do
			measure big "$ofcsfx" "$s" 4 "$BIG_SECONDS"
		done
	done
done
elapsed=$(($(date +%s) - start))
if [ -n "${RAW:-}" ]; then
	cp "$results" "$RAW"
fi

export BENCH_DATE BENCH_KERNEL BENCH_CPU BENCH_FS BENCH_LIBFUSE BENCH_ROUNDS \
	BENCH_ELAPSED BENCH_NGINX BENCH_WRK BENCH_LOAD BENCH_SECS
BENCH_DATE=$(date -u '+%Y-%m-%d %H:%M UTC')
BENCH_KERNEL=$(uname -r)
BENCH_CPU="$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo |
	head -n 1) ($(nproc) CPUs)"
BENCH_FS="$(findmnt -n -o FSTYPE -T "$base" 2>/dev/null ||
	stat -f -c %T "$base") (${TMPDIR:-/var/tmp})"
BENCH_LIBFUSE=$("$DCACHEFS" -V 2>/dev/null | sed -n 's/^libfuse //p' |
	head -n 1)
BENCH_NGINX=$("$NGINX" -v 2>&1 | sed 's/^nginx version: //')
BENCH_WRK=$( (wrk -v 2>&1 || true) | head -n 1 | cut -d " " -f 1-2)
BENCH_LOAD="$load_before before, $(cut -d ' ' -f 1-3 /proc/loadavg) after"
BENCH_ROUNDS=$ROUNDS BENCH_ELAPSED=$elapsed
BENCH_SECS="$SMALL_SECONDS s (4 KiB), $BIG_SECONDS s (100 MiB)"

"$PY" - "$results" <<'EOF'
import os
import statistics
import sys

E = os.environ
rows = {}
bad = []
for line in open(sys.argv[1]):
    size, ofc, side, _, *kv = line.split()
    f = {k: int(v) for k, v in (x.split('=', 1) for x in kv)}
    rows.setdefault((size, ofc, side), []).append(f)
    if f['errors'] or f['non2xx']:
        bad.append('%s %s %s: %d socket errors, %d non-2xx responses'
                   % (size, ofc, side, f['errors'], f['non2xx']))


def med(size, ofc, side, field):
    rs = rows.get((size, ofc, side))
    if not rs:
        return None
    if field == 'rps':
        return statistics.median(r['requests'] / (r['us'] / 1e6) for r in rs)
    return statistics.median(r['bytes'] / (r['us'] / 1e6) for r in rs)


def rps(v):
    return '—' if v is None else '%.0f' % v


def mbs(v):
    return '' if v is None else ' (%.0f MB/s)' % (v / 1e6)


def ratio(a, b):
    return '—' if a is None or b is None or a == 0 else '%.2f' % (b / a)


print('## nginx: dcachefs mount vs plain directory')
print()
print('- date: %s' % E['BENCH_DATE'])
print('- kernel: %s; CPU: %s; load average %s'
      % (E['BENCH_KERNEL'], E['BENCH_CPU'], E['BENCH_LOAD']))
print('- filesystem under both: %s; libfuse %s; %s; %s'
      % (E['BENCH_FS'], E['BENCH_LIBFUSE'], E['BENCH_NGINX'], E['BENCH_WRK']))
print('- static files (`location /x/ { alias DIR/; }`), sendfile on, '
      'access_log off, worker_processes auto, keep-alive; '
      '`wrk -t2 -c16` (4 KiB) and `-c4` (100 MiB) for %s; each number is '
      'the median of %s runs with the sides alternating; run took %s s'
      % (E['BENCH_SECS'], E['BENCH_ROUNDS'], E['BENCH_ELAPSED']))
print('- open_file_cache on = `max=10000 inactive=30s`, '
      '`open_file_cache_valid 2s`, `open_file_cache_errors off`')
print()
print('| value | nginx open_file_cache | plain dir req/s | dcachefs req/s '
      '| mount/plain |')
print('|---|---|---:|---:|---:|')
for size, title in (('small', '4 KiB (inline in SQLite)'),
                    ('big', '100 MiB (value file)')):
    for ofc in ('off', '-ofc'):
        for side, mtitle in (('mount', ''), ('strict', ', `-o strict`')):
            if not rows.get((size, ofc, side)):
                continue
            a = med(size, ofc, 'plain', 'rps')
            b = med(size, ofc, side, 'rps')
            extra_a = extra_b = ''
            if size == 'big':
                extra_a = mbs(med(size, ofc, 'plain', 'bps'))
                extra_b = mbs(med(size, ofc, side, 'bps'))
            print('| %s%s | %s | %s%s | %s%s | %s |' % (
                title, mtitle, 'off' if ofc == 'off' else 'on',
                rps(a), extra_a, rps(b), extra_b, ratio(a, b)))
if bad:
    print()
    for b in bad:
        print('- WARNING: %s' % b)
EOF

if [ "$failures" -ne 0 ]; then
	echo "nginx.sh: $failures wrk run(s) failed; their cells are empty" >&2
	exit 1
fi
