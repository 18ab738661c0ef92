#!/usr/bin/env bash
# run.sh - nginx serving cached values from a dcachefs mount (X-Accel-Redirect)
# SPDX-License-Identifier: MIT
#
# Everything lives in one mktemp -d directory: a cache written by Python
# DiskCache, its dcachefs mount (-o allow_other), a backend on a loopback
# port (python3 http.server) that answers every /k/KEY with
# "X-Accel-Redirect: /cached/KEY" and a Content-Type, and Debian's nginx
# on another loopback port with its own config, prefix, pid file, logs
# and temp paths, workers running as nobody.  docs/nginx.md shows the
# same configuration.  A trap stops nginx and the backend by PID and
# unmounts.
#
#   BUILD=build tests/nginx/run.sh
set -u

top=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$top/$BUILD ;; esac
DCACHEFS=$BUILD/dcachefs
PY=/usr/bin/python3
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

if [ ! -e /dev/fuse ]; then
	echo "SKIP: /dev/fuse is missing: the nginx tests did NOT run"
	exit 0
fi
if [ ! -x "$NGINX" ]; then
	echo "FAIL: nginx is not installed (make deps installs it)"
	echo "0 passed, 1 failed"
	exit 1
fi
if [ "$(id -u)" != 0 ]; then
	echo "SKIP: needs root (workers switch to nobody): did NOT run"
	exit 0
fi

work=$(mktemp -d /tmp/dcachefs-nginx.XXXXXX)
# nginx's workers (nobody) must reach the mount through this directory.
chmod 755 "$work"
C=$work/cache
M=$work/mnt
pids=()
passed=0
failed=0

is_mounted() {
	awk -v m="$1" '$2 == m { found = 1 } END { exit !found }' /proc/mounts
}

cleanup() {
	local p
	for p in "${pids[@]}"; do
		kill "$p" 2>/dev/null
	done
	wait 2>/dev/null
	if is_mounted "$M"; then
		fusermount3 -u "$M" 2>/dev/null || umount -l "$M"
	fi
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
	"$PY" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

wait_port() {
	"$PY" -c 'import socket, sys, time
for _ in range(100):
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[1])), 0.2)
        sys.exit(0)
    except OSError:
        time.sleep(0.1)
sys.exit(1)' "$1"
}

fatal() {
	echo "FAIL: $*"
	[ -s "$work/error.log" ] && tail -20 "$work/error.log"
	echo "$passed passed, $((failed + 1)) failed"
	exit 1
}

# The cache, written by Python DiskCache directly in the directory.
"$PY" - "$C" <<'EOF' || fatal "writing the cache with Python"
import diskcache, os, sys
c = diskcache.Cache(sys.argv[1])
c['small'] = 'hello nginx'                     # inline text
big = os.urandom(200 * 1024)
c['img/big.bin'] = big                         # a value file
open(sys.argv[1] + '/../big.expected', 'wb').write(big)
c.set('short', 'gone soon', expire=1)          # expires in a second
c['py/only'] = b'written by python'
EOF
set_time=$(date +%s.%N)

mkdir -p "$M"
"$DCACHEFS" -o allow_other "$C" "$M" 2>"$work/dcachefs.err" ||
	fatal "mount: $(cat "$work/dcachefs.err")"

NPORT=$(free_port)
BPORT=$(free_port)
[ "$NPORT" != "$BPORT" ] || BPORT=$(free_port)

cat >"$work/backend.py" <<'EOF'
# The application: decides what to serve and lets nginx send the bytes.
import http.server, sys

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if not self.path.startswith('/k/'):
            self.send_error(404)
            return
        key = self.path[3:]
        self.send_response(200)
        self.send_header('X-Accel-Redirect', '/cached/' + key)
        self.send_header('Content-Type', 'application/x-dcache-test'
                         if key.endswith('.bin') else
                         'text/plain; charset=utf-8')
        self.send_header('Content-Length', '0')
        self.end_headers()

    def log_message(self, *args):
        pass

http.server.HTTPServer(('127.0.0.1', int(sys.argv[1])), Handler).serve_forever()
EOF
"$PY" "$work/backend.py" "$BPORT" 2>"$work/backend.err" &
pids+=($!)

mkdir -p "$work/nginx/tmp"
cat >"$work/nginx/nginx.conf" <<EOF
# A private nginx: nothing outside $work is read or written.
daemon off;
user nobody nogroup;
worker_processes 1;
pid $work/nginx/nginx.pid;
error_log $work/error.log info;
events { worker_connections 64; }
http {
	access_log $work/nginx/access.log;
	client_body_temp_path $work/nginx/tmp/body;
	proxy_temp_path $work/nginx/tmp/proxy;
	fastcgi_temp_path $work/nginx/tmp/fastcgi;
	uwsgi_temp_path $work/nginx/tmp/uwsgi;
	scgi_temp_path $work/nginx/tmp/scgi;
	default_type application/octet-stream;
	sendfile on;
	server {
		listen 127.0.0.1:$NPORT;
		location / {
			proxy_pass http://127.0.0.1:$BPORT;
		}
		# Only reachable through X-Accel-Redirect.
		location /cached/ {
			internal;
			alias $M/;
		}
	}
}
EOF
"$NGINX" -t -p "$work/nginx" -c "$work/nginx/nginx.conf" -e "$work/error.log" \
	>"$work/nginx-t.log" 2>&1 || fatal "nginx -t: $(cat "$work/nginx-t.log")"
"$NGINX" -p "$work/nginx" -c "$work/nginx/nginx.conf" -e "$work/error.log" &
pids+=($!)
wait_port "$BPORT" || fatal "the backend did not start"
wait_port "$NPORT" || fatal "nginx did not start"

# get PATH [RANGE]: prints "STATUS CONTENT-TYPE", body in $work/body.
get() {
	"$PY" - "$NPORT" "$1" "${2:-}" "$work/body" <<'EOF'
import http.client, sys
c = http.client.HTTPConnection('127.0.0.1', int(sys.argv[1]), timeout=10)
h = {'Range': sys.argv[3]} if sys.argv[3] else {}
c.request('GET', sys.argv[2], headers=h)
r = c.getresponse()
open(sys.argv[4], 'wb').write(r.read())
print(r.status, r.getheader('Content-Type'))
EOF
}

check() {
	local name=$1
	shift
	if "$@" >"$work/log" 2>&1; then
		passed=$((passed + 1))
		echo "ok   $name"
	else
		failed=$((failed + 1))
		echo "FAIL $name"
		sed 's/^/     /' "$work/log"
	fi
}

expect() { # expect "STATUS TYPE" PATH [RANGE]
	local got
	got=$(get "$2" "${3:-}") || return 1
	[ "$got" = "$1" ] || {
		echo "expected [$1], got [$got]"
		return 1
	}
}

status_is() { # status_is STATUS PATH: the status only (error pages vary)
	local got
	got=$(get "$2") || return 1
	[ "${got%% *}" = "$1" ] || {
		echo "expected status $1, got [$got]"
		return 1
	}
}

workers_unprivileged() {
	local users
	users=$(ps -o user= --ppid "${pids[1]}" | sort -u)
	echo "worker users: [$users]"
	[ "$users" = nobody ]
}
check "nginx workers run as nobody" workers_unprivileged

small() {
	expect "200 text/plain; charset=utf-8" /k/small &&
		[ "$(cat "$work/body")" = "hello nginx" ]
}
check "small (inline) value: body and backend Content-Type" small

large() {
	expect "200 application/x-dcache-test" /k/img/big.bin &&
		cmp "$work/body" "$work/big.expected"
}
check "200 KiB (file-backed) value: body and Content-Type" large

range() {
	expect "206 application/x-dcache-test" /k/img/big.bin bytes=1000-70999 &&
		[ "$(stat -c %s "$work/body")" = 70000 ] &&
		cmp "$work/body" <(tail -c +1001 "$work/big.expected" | head -c 70000) &&
		expect "206 application/x-dcache-test" /k/img/big.bin bytes=-10 &&
		cmp "$work/body" <(tail -c 10 "$work/big.expected") &&
		expect "206 text/plain; charset=utf-8" /k/small bytes=6-10 &&
		[ "$(cat "$work/body")" = nginx ]
}
check "Range requests: 206 with the exact slice" range

missing() {
	status_is 404 /k/no/such/key
}
check "missing key: 404" missing

python_value() {
	expect "200 text/plain; charset=utf-8" /k/py/only &&
		[ "$(cat "$work/body")" = "written by python" ] &&
		"$PY" -c "import diskcache, sys
diskcache.Cache(sys.argv[1])['py/late'] = 'added while serving'" "$C" &&
		expect "200 text/plain; charset=utf-8" /k/py/late &&
		[ "$(cat "$work/body")" = "added while serving" ]
}
check "values written by Python DiskCache are served" python_value

expired() {
	# 'short' expired one second after it was written.
	local left
	left=$("$PY" -c "import sys, time
print(max(0.0, float(sys.argv[1]) + 1.2 - time.time()))" "$set_time")
	sleep "$left"
	status_is 404 /k/short
}
check "expired key: 404" expired

internal() {
	status_is 404 /cached/small &&
		! grep -q "hello nginx" "$work/body"
}
check "the internal location is not fetchable directly (404)" internal

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
