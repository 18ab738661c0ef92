#!/usr/bin/env bash
# run.sh - black-box tests of the dcache command-line tool
# SPDX-License-Identifier: MIT
#
# Usage: BUILD=build tests/cli/run.sh [TEST_NAME...]
# Runs $BUILD/dcache against real cache directories and cross-checks with
# Python DiskCache (/usr/bin/python3).  Each test runs in a subshell with
# its own mktemp -d directory, removed on exit.  Prints one line per test
# and "N passed, N failed"; exits 1 if any test failed.
set -u

top=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-build}
case $BUILD in
/*) DCACHE=$BUILD/dcache ;;
*) DCACHE=$top/$BUILD/dcache ;;
esac
PY=/usr/bin/python3
export DCACHE PY

if [ ! -x "$DCACHE" ]; then
	echo "run.sh: $DCACHE not built" >&2
	echo "0 passed, 1 failed"
	exit 1
fi

# ---------------------------------------------------------------------------
# Helpers (run inside a test's subshell; a failed assertion exits it)

# dc ARGS...: run dcache with stdout in $T/out, stderr in $T/err; $rc.
dc() {
	"$DCACHE" "$@" >"$T/out" 2>"$T/err"
	rc=$?
}

fail() {
	echo "  $*"
	echo "  --- stdout:"
	head -c 2000 "$T/out" 2>/dev/null | sed 's/^/  | /'
	echo
	echo "  --- stderr:"
	sed 's/^/  | /' "$T/err" 2>/dev/null
	exit 1
}

# expect RC ARGS...: dc ARGS and check the exit status.
expect() {
	local want=$1
	shift
	dc "$@"
	[ "$rc" -eq "$want" ] || fail "dcache $*: exit $rc, expected $want"
}

# out_is STRING: stdout is exactly STRING (no newline added).
out_is() {
	printf '%s' "$1" >"$T/want"
	cmp -s "$T/out" "$T/want" ||
		fail "stdout is not exactly '$(printf '%q' "$1")'"
}

out_has() {
	grep -q -e "$1" "$T/out" || fail "stdout lacks '$1'"
}

err_has() {
	grep -q -e "$1" "$T/err" || fail "stderr lacks '$1'"
}

err_empty() {
	[ ! -s "$T/err" ] || fail "stderr is not empty"
}

# One error line, in the documented form.
err_line() {
	[ "$(wc -l <"$T/err")" -eq 1 ] || fail "stderr is not one line"
	grep -q "^dcache: $1: " "$T/err" || fail "stderr not 'dcache: $1: ...'"
}

# py SCRIPT ARGS...: run Python with diskcache; DIR is sys.argv[1].
py() {
	local code=$1
	shift
	"$PY" -c "import sys, diskcache
$code" "$@"
}

# ---------------------------------------------------------------------------
# Tests

test_version_and_help() {
	expect 0 --version
	out_has '^dcache '
	out_has 'libdcache'
	expect 0 --help
	out_has '^Usage: dcache'
	cp "$T/out" "$T/help"
	for c in get set add delete touch incr decr pop push pull peek list \
		stats volume len expire evict cull clear check settings \
		deque index lock unlock; do
		grep -q "^  $c " "$T/help" || fail "--help does not list $c"
		expect 0 help "$c"
		out_has "^Usage: dcache $c"
	done
	expect 0 get --help
	out_has '^Usage: dcache get'
	expect 2 help nosuch
	err_line help
	# a group lists its commands; each has its own help
	expect 0 index --help
	cp "$T/out" "$T/ihelp"
	expect 0 help deque
	out_has '^Usage: dcache deque '
	cp "$T/out" "$T/dhelp"
	expect 0 deque --help
	cmp -s "$T/out" "$T/dhelp" || fail "deque --help differs"
	for c in append appendleft pop popleft peek peekleft len list get set \
		del remove count rotate reverse clear; do
		grep -q "^  $c " "$T/dhelp" || fail "help deque does not list $c"
		expect 0 help deque "$c"
		out_has "^Usage: dcache deque $c"
		expect 0 deque "$c" --help
		out_has "^Usage: dcache deque $c"
	done
	for c in get set del contains pop popitem peekitem setdefault keys \
		values items len clear push pull peek; do
		grep -q "^  $c " "$T/ihelp" || fail "help index does not list $c"
		expect 0 help index "$c"
		out_has "^Usage: dcache index $c"
	done
	expect 2 help deque nosuch
	err_line help
	expect 2 help get sub
	[ ! -e "$DCACHE_DIR" ] || fail "help created the cache directory"
}

test_usage_errors() {
	expect 2
	err_has 'missing command'
	expect 2 frobnicate
	err_has "unknown command 'frobnicate'"
	expect 2 get
	err_line get
	expect 2 get a b
	expect 2 get --bogus k
	err_has "unknown option '--bogus'"
	expect 2 len --expire 5
	err_has 'does not apply'
	expect 2 --expire 5 set k v
	expect 2 --shards abc len
	expect 2 --shards -1 len
	expect 2 --key-type blob get k
	expect 2 set -e 5x k v
	expect 2 set -e '' k v
	expect 2 set --expire
	expect 2 --type int set k 12x
	expect 2 --type int set k ' 12'
	expect 2 --type int set k 99999999999999999999
	expect 2 --type float set k 1.5.5
	expect 2 --type float set k 0x10
	expect 2 -k int get 1e3
	expect 2 incr n 1.5
	expect 2 incr --default x n
	expect 2 stats --enable --disable
	expect 2 pull --front --back
	# nothing was stored by any of these
	expect 0 len
	out_is $'0\n'
}

# refused ARGS...: dcache -d $T/new ARGS exits with 2 and creates
# nothing: operands are checked before the cache is opened.
refused() {
	expect 2 -d "$T/new" "$@"
	[ ! -e "$T/new" ] || fail "dcache $*: created the cache directory"
}

test_bad_input_creates_nothing() {
	refused --type int set k notanumber
	err_line set
	err_has 'not an integer'
	refused --type float set k 1.5.5
	refused set k v --expire bad
	refused set k v --tag $'\xff'
	refused add $'bad\xffkey' v
	refused add k $'\xc0\x80'
	refused get $'bad\xffkey'
	err_line get
	err_has 'UTF-8'
	refused -k int get 1e3
	refused contains $'\xff'
	refused delete $'\xff'
	refused touch $'\xff' -e 10
	refused touch k -e 10x
	refused pop $'\xff'
	refused incr n notanumber
	err_line incr
	err_has 'DELTA'
	refused decr n 1.5
	refused incr n --default x
	refused -t int push 12x
	refused push v --tag $'\xff'
	refused --tag-type int evict red
	refused pull --front --back
	refused stats --enable --disable
	refused settings cull_limit abc
	err_line settings
	refused settings eviction_policy $'\xff'
	refused -t int settings size_limit 1x
	refused --shards 4 -t int set k x
	# the same commands with good operands do create the cache
	expect 0 -d "$T/new" --type int set k 5
	[ -f "$T/new/cache.db" ] || fail "no cache.db after a good set"
	expect 0 -d "$T/new" incr k 2
	out_is $'7\n'
	expect 0 -d "$T/new" settings cull_limit 4
	expect 0 -d "$T/new" settings cull_limit
	out_is $'4\n'
}

test_set_get_text() {
	expect 0 set greeting 'hello world'
	err_empty
	[ ! -s "$T/out" ] || fail "set printed something"
	expect 0 get greeting
	out_is 'hello world'
	expect 0 set k2 ''
	expect 0 get k2
	out_is ''
	# a value that looks like an option needs --
	expect 0 set -- dash --not-an-option
	expect 0 get dash
	out_is '--not-an-option'
	# a negative number is an operand
	expect 0 set neg -5
	expect 0 get neg
	out_is '-5'
	# options after operands
	expect 0 set later v -e 1h
	expect 0 get later -m
	out_has '^ttl 3[56]'
}

test_get_missing_exit_1() {
	expect 1 get nope
	err_line get
	err_has 'nope'
	[ ! -s "$T/out" ] || fail "a miss printed to stdout"
	expect 1 -q get nope
	err_empty
	expect 1 get -q nope
	err_empty
}

test_set_from_stdin_exact_bytes() {
	head -c 3000 /dev/urandom >"$T/bin"
	dc --type bytes set blob <"$T/bin"
	[ "$rc" -eq 0 ] || fail "set from stdin: exit $rc"
	expect 0 get blob
	cmp -s "$T/out" "$T/bin" || fail "binary value differs"
	printf 'line1\nline2\n\n' | "$DCACHE" set text - || fail "set -"
	expect 0 get text
	out_is $'line1\nline2\n\n'
	# an empty stdin is an empty value
	"$DCACHE" set empty </dev/null || fail "set empty"
	expect 0 get empty
	out_is ''
	# numbers from stdin may carry blanks and a newline
	echo ' 42 ' | "$DCACHE" --type int set n || fail "set int from stdin"
	expect 0 incr n
	out_is $'43\n'
	echo '4x' | "$DCACHE" --type int set n2
	[ $? -eq 2 ] || fail "bad int on stdin was accepted"
	py 'c = diskcache.Cache(sys.argv[1])
assert c["blob"] == open(sys.argv[2], "rb").read()
assert c["text"] == "line1\nline2\n\n", repr(c["text"])
assert c["empty"] == ""
assert c["n"] == 43 and type(c["n"]) is int' "$DCACHE_DIR" "$T/bin" ||
		fail "python disagrees"
}

test_large_value_is_file_backed_and_streamed() {
	# 200 KiB: past the 32 KiB threshold and past the CLI's read limit
	head -c 204800 /dev/urandom >"$T/big"
	"$DCACHE" -t bytes set big <"$T/big" || fail "set big"
	expect 0 get big
	cmp -s "$T/out" "$T/big" || fail "big value differs"
	expect 0 get -m big
	out_has '^file_backed 1$'
	out_has '^size 204800$'
	# 70000 code points of 2 bytes each: a MODE_TEXT value file, read
	# past the CLI's in-memory limit (4 x 32 KiB) and so streamed
	"$PY" -c 'import sys; sys.stdout.buffer.write(("é" * 70000).encode())' \
		>"$T/txt"
	"$DCACHE" set bigtext <"$T/txt" || fail "set bigtext"
	expect 0 get bigtext
	cmp -s "$T/out" "$T/txt" || fail "big text differs"
	# invalid UTF-8 at the very end of a large text value
	{ cat "$T/txt"; printf '\xff'; } | "$DCACHE" set badtext
	[ $? -eq 2 ] || fail "large invalid text accepted"
	expect 1 get badtext
	# add of a large value: the key exists, nothing changes
	head -c 150000 /dev/zero | "$DCACHE" -t bytes add big
	[ $? -eq 1 ] || fail "add of an existing key did not exit 1"
	expect 0 check
	py 'c = diskcache.Cache(sys.argv[1])
assert c["big"] == open(sys.argv[2], "rb").read()
assert c["bigtext"] == "é" * 70000
w = [str(x.message) for x in c.check()]
assert not w, w' "$DCACHE_DIR" "$T/big" ||
		fail "python disagrees"
	expect 0 check
}

test_python_reads_what_dcache_wrote() {
	expect 0 set s text
	expect 0 -t bytes set b $'\x01bytes'
	expect 0 -t int set i -17
	expect 0 -t float set f 2.5
	expect 0 -k bytes set rawkey v1
	expect 0 -k int set 7 v2
	expect 0 -k float set 1.5 v3
	expect 0 -t pickle set p "$("$PY" -c \
		'import pickle,sys; print(pickle.dumps([1,2],protocol=0).decode())')"
	py 'c = diskcache.Cache(sys.argv[1])
assert c["s"] == "text"
assert c["b"] == b"\x01bytes"
assert c["i"] == -17 and type(c["i"]) is int
assert c["f"] == 2.5 and type(c["f"]) is float
assert c[b"rawkey"] == "v1"
assert c[7] == "v2"
assert c[1.5] == "v3"
assert c["p"] == [1, 2], c["p"]' "$DCACHE_DIR" || fail "python disagrees"
}

test_dcache_reads_what_python_wrote() {
	py 'import pickle
c = diskcache.Cache(sys.argv[1])
c["s"] = "from python"
c["b"] = b"\x00\x01\x02"
c["i"] = 12345678901
c["f"] = 0.1
c[b"bk"] = "bytes key"
c[42] = "int key"
c[2.5] = "float key"
c["tuple"] = (1, "a")
c["big"] = bytes(range(256)) * 200
c["bigs"] = "x\n" * 20000
open(sys.argv[2], "wb").write(pickle.dumps((1, "a"), protocol=5))' \
		"$DCACHE_DIR" "$T/pickle" || fail "python setup"
	expect 0 get s
	out_is 'from python'
	expect 0 get b
	printf '\x00\x01\x02' | cmp -s - "$T/out" || fail "bytes differ"
	expect 0 get i
	out_is '12345678901'
	expect 0 get f
	out_is '0.1'
	expect 0 -k bytes get bk
	out_is 'bytes key'
	expect 0 -k int get 42
	out_is 'int key'
	expect 0 -k float get 2.5
	out_is 'float key'
	expect 0 get tuple
	cmp -s "$T/out" "$T/pickle" || fail "pickle bytes differ"
	expect 0 get -M tuple
	cmp -s "$T/out" "$T/pickle" || fail "pickle bytes differ with -M"
	err_has '^type pickle$'
	expect 0 get big
	"$PY" -c 'import sys; sys.stdout.buffer.write(bytes(range(256)) * 200)' |
		cmp -s - "$T/out" || fail "file-backed bytes differ"
	expect 0 get bigs
	"$PY" -c 'import sys; sys.stdout.write("x\n" * 20000)' |
		cmp -s - "$T/out" || fail "file-backed text differs"
}

test_invalid_utf8_text_is_usage_error() {
	expect 2 set $'bad\xffkey' v
	err_line set
	err_has 'UTF-8'
	expect 2 set k $'bad\xc0\x80'
	expect 2 set k $'\xed\xa0\x80'
	printf 'x\xfe' >"$T/v"
	dc set k <"$T/v"
	[ "$rc" -eq 2 ] || fail "invalid UTF-8 on stdin: exit $rc"
	expect 0 -k bytes set $'bad\xffkey' v
	expect 0 -t bytes set k $'bad\xff'
	expect 0 set k $'caf\xc3\xa9 \xf0\x9f\x98\x80'
	py 'c = diskcache.Cache(sys.argv[1])
assert c[b"bad\xffkey"] == "v"
assert c["k"] == "café 😀"' "$DCACHE_DIR" || fail "python disagrees"
}

test_expire_and_durations() {
	expect 0 set gone v -e 0
	expect 1 get gone
	expect 0 set short v -e 1.5
	expect 0 get short
	sleep 2
	expect 1 get short
	expect 0 set k v -e 2h
	expect 0 get -m k
	out_has '^ttl 7[12][0-9][0-9]\.'
	expect 0 set k v --expire=1d
	expect 0 get -m k
	out_has '^ttl 86[34][0-9][0-9]\.'
	expect 0 set k v -e 5m
	py 'import time
c = diskcache.Cache(sys.argv[1])
v, t = c.get("k", expire_time=True)
assert v == "v" and 290 < t - time.time() <= 300, t' "$DCACHE_DIR" ||
		fail "python sees another expire_time"
	expect 0 set k v -e none
	expect 0 get -m k
	out_has '^expire_time none$'
	out_has '^ttl none$'
}

test_tags_and_evict() {
	expect 0 set a 1 --tag red
	expect 0 set b 2 --tag red
	expect 0 set c 3 --tag blue
	expect 0 --tag-type int set d 4 --tag 7
	py 'c = diskcache.Cache(sys.argv[1])
assert c.get("a", tag=True) == ("1", "red")
assert c.get("d", tag=True) == ("4", 7)' "$DCACHE_DIR" ||
		fail "python sees other tags"
	expect 0 get -m a
	out_has '^tag red$'
	out_has '^tag_type str$'
	expect 0 get -m d
	out_has '^tag 7$'
	out_has '^tag_type int$'
	expect 0 evict red
	out_is $'2\n'
	expect 1 get a
	expect 0 get c
	expect 0 evict red
	out_is $'0\n'
	expect 0 --tag-type int evict 7
	out_is $'1\n'
	expect 0 len
	out_is $'1\n'
}

test_add_delete_touch_contains() {
	expect 0 add k first
	expect 1 add k second
	err_line add
	expect 0 get k
	out_is first
	expect 0 contains k
	if [ -s "$T/out" ] || [ -s "$T/err" ]; then
		fail "contains printed something"
	fi
	expect 1 contains nope
	err_empty
	expect 1 touch nope -e 10
	err_line touch
	expect 0 touch k -e 1h
	expect 0 get -m k
	out_has '^ttl 3[56]'
	expect 0 touch k
	expect 0 get -m k
	out_has '^expire_time none$'
	expect 0 delete k
	expect 1 delete k
	err_line delete
	expect 1 contains k
	# an expired key may be added again
	expect 0 set e old -e 0
	expect 0 add e new
	expect 0 get e
	out_is new
}

test_incr_decr() {
	expect 0 incr n
	out_is $'1\n'
	expect 0 incr n 5
	out_is $'6\n'
	expect 0 decr n 10
	out_is $'-4\n'
	expect 0 incr n -6
	out_is $'-10\n'
	expect 0 incr m --default 100
	out_is $'101\n'
	expect 0 decr m2 --default=5 2
	out_is $'3\n'
	expect 1 incr missing --no-default
	err_line incr
	expect 0 get n
	out_is -10
	expect 0 -t float set fl 1.5
	expect 0 incr fl 2
	out_is $'3.5\n'
	expect 0 set txt abc
	expect 4 incr txt
	err_line incr
	expect 0 -t int set big 9223372036854775807
	expect 4 incr big
	expect 0 get big
	out_is 9223372036854775807
	py 'c = diskcache.Cache(sys.argv[1])
assert c["n"] == -10 and c["m"] == 101 and c["fl"] == 3.5' "$DCACHE_DIR" ||
		fail "python disagrees"
}

test_pop() {
	expect 0 set k value
	expect 0 pop k
	out_is value
	expect 1 get k
	expect 1 pop k
	err_line pop
	head -c 100000 /dev/urandom >"$T/big"
	"$DCACHE" -t bytes set big <"$T/big" || fail "set big"
	expect 0 pop big
	cmp -s "$T/out" "$T/big" || fail "popped file-backed value differs"
	expect 0 check
	expect 0 len
	out_is $'0\n'
}

test_queue_push_pull_peek() {
	expect 0 push a
	out_is $'500000000000000\n'
	expect 0 push b
	out_is $'500000000000001\n'
	echo c | "$DCACHE" push >/dev/null || fail "push from stdin"
	expect 0 push --front z
	out_is $'499999999999999\n'
	expect 0 peek
	out_is z
	expect 0 peek --back
	out_is $'c\n'
	expect 0 pull
	out_is z
	expect 0 pull -m
	out_has '^key 500000000000000$'
	out_has '^key_type int$'
	expect 0 pull --back -M
	out_is $'c\n'
	err_has '^key 500000000000002$'
	expect 0 push -p jobs first
	out_is $'jobs-500000000000000\n'
	expect 0 push --prefix jobs second --tag t
	py 'c = diskcache.Cache(sys.argv[1])
assert c.pull(prefix="jobs") == ("jobs-500000000000000", "first")
c.push("from python")' "$DCACHE_DIR" || fail "python queue"
	expect 0 pull -p jobs
	out_is second
	expect 1 pull -p jobs
	err_has 'empty'
	expect 0 pull
	out_is b
	expect 0 pull
	out_is 'from python'
	expect 1 pull
	expect 1 peek
	expect 0 push -e 0 dead
	expect 1 peek
}

test_peekitem() {
	expect 1 peekitem
	expect 0 set first 1
	expect 0 set second 2
	expect 0 peekitem
	out_is 2
	expect 0 peekitem --first -m
	out_has '^key first$'
	expect 0 len
	out_is $'2\n'
}

test_list() {
	expect 0 set b 1
	expect 0 set a 2
	expect 0 -k int set 10 3
	expect 0 set $'new\nline' 4
	expect 0 -k bytes set $'raw\x01' 5
	expect 0 set x:1 6
	expect 0 set x:2 7
	expect 0 set dead 8 -e 0
	expect 0 list
	out_is $'b\na\n10\nnew\\nline\nraw\\x01\nx:1\nx:2\ndead\n'
	expect 0 list --reverse
	out_is $'dead\nx:2\nx:1\nraw\\x01\nnew\\nline\n10\na\nb\n'
	expect 0 list --sorted
	out_is $'10\na\nb\ndead\nnew\\nline\nx:1\nx:2\nraw\\x01\n'
	expect 0 list --sorted --reverse --prefix x:
	out_is $'x:2\nx:1\n'
	expect 0 list --alive -p d
	out_is ''
	expect 0 list -p d
	out_is $'dead\n'
	expect 0 list -z -p new
	printf 'new\nline\0' | cmp -s - "$T/out" || fail "-z output differs"
	expect 0 list -l -p x:1
	out_is $'str\t1\tnone\tx:1\n'
	expect 0 list -s
	[ "$(wc -l <"$T/out")" -eq 8 ] || fail "expected 8 keys"
}

test_stats() {
	expect 0 stats
	out_has '^hits 0$'
	out_has '^statistics 0$'
	expect 0 stats --enable
	out_has '^statistics 1$'
	expect 0 set k v
	expect 0 get k
	expect 0 get k
	expect 1 get missing
	# -m neither counts nor touches
	expect 0 get -m k
	expect 0 stats
	out_is $'hits 2\nmisses 1\nstatistics 1\ncount 1\nvolume '"$(
		"$DCACHE" volume)"$'\n'
	py 'c = diskcache.Cache(sys.argv[1])
assert c.stats() == (2, 1), c.stats()' "$DCACHE_DIR" ||
		fail "python sees other stats"
	expect 0 stats --reset --disable
	out_has '^hits 2$'
	out_has '^statistics 0$'
	expect 0 stats
	out_has '^hits 0$'
	out_has '^misses 0$'
	out_has '^statistics 0$'
}

test_len_volume_expire_cull_clear() {
	expect 0 len
	out_is $'0\n'
	expect 0 volume
	v0=$(cat "$T/out")
	[ "$v0" -gt 0 ] || fail "volume $v0"
	for i in 1 2 3; do
		"$DCACHE" set "k$i" v || fail "set"
	done
	# long enough that the second set's write-time cull cannot take the
	# first (sanitizer builds start slowly)
	"$DCACHE" set old1 v -e 1 || fail "set old1"
	"$DCACHE" set old2 v -e 1 || fail "set old2"
	sleep 1.2
	expect 0 len
	out_is $'5\n'
	expect 0 expire
	out_is $'2\n'
	expect 0 len
	out_is $'3\n'
	expect 0 cull
	out_is $'0\n'
	expect 0 clear
	out_is $'3\n'
	expect 0 len
	out_is $'0\n'
	# cull down to a tiny size_limit
	for i in 1 2 3 4 5; do
		head -c 40000 /dev/zero | "$DCACHE" -t bytes set "f$i" ||
			fail "set"
	done
	expect 0 settings size_limit 0
	expect 0 cull
	out_is $'5\n'
}

test_check_and_fix() {
	head -c 50000 /dev/zero | "$DCACHE" -t bytes set big || fail "set"
	expect 0 check
	out_is ''
	mkdir -p "$DCACHE_DIR/zz/yy"
	echo stray >"$DCACHE_DIR/zz/yy/stray.val"
	expect 1 check
	out_has '^unknown-file: '
	err_line check
	expect 0 check --fix
	out_has '^unknown-file: '
	[ ! -e "$DCACHE_DIR/zz" ] || fail "stray file or its directories kept"
	expect 0 check
	out_is ''
	expect 0 get big
	[ "$(wc -c <"$T/out")" -eq 50000 ] || fail "big value lost"
}

test_settings() {
	expect 0 settings
	out_has '^eviction_policy=least-recently-stored$'
	out_has '^statistics=0$'
	out_has '^cull_limit=10$'
	out_has '^disk_min_file_size=32768$'
	out_has '^size_limit=1073741824$'
	expect 0 settings cull_limit
	out_is $'10\n'
	expect 0 settings cull_limit 5
	out_is ''
	expect 0 settings eviction_policy least-recently-used
	py 'c = diskcache.Cache(sys.argv[1])
assert c.cull_limit == 5, c.cull_limit
assert c.eviction_policy == "least-recently-used"' "$DCACHE_DIR" ||
		fail "python sees other settings"
	expect 1 settings no_such_setting
	err_line settings
	expect 2 settings cull_limit abc
	expect 2 settings eviction_policy bogus
	expect 0 settings eviction_policy
	out_is $'least-recently-used\n'
	expect 2 settings a b c
}

test_fanout_shards() {
	expect 0 --shards 4 set k v
	for s in 000 001 002 003; do
		[ -f "$DCACHE_DIR/$s/cache.db" ] || fail "no shard $s"
	done
	[ ! -e "$DCACHE_DIR/004" ] || fail "too many shards"
	for i in 1 2 3 4 5 6 7 8; do
		"$DCACHE" --shards 4 -k int set "$i" "v$i" || fail "set $i"
	done
	py 'c = diskcache.FanoutCache(sys.argv[1], shards=4)
assert c["k"] == "v"
assert all(c[i] == "v%d" % i for i in range(1, 9))
c["py"] = "from python"' "$DCACHE_DIR" || fail "python fanout"
	# detected without --shards
	expect 0 get py
	out_is 'from python'
	expect 0 len
	out_is $'10\n'
	expect 0 list
	[ "$(wc -l <"$T/out")" -eq 10 ] || fail "list: not 10 keys"
	expect 4 --shards 2 get k
	err_line get
	# Python's FanoutCache has no queue API
	expect 2 push x
	err_line push
	expect 2 pull
	# large stdin values go through mkstemp/set_file in a shard
	head -c 200000 /dev/urandom >"$T/big"
	"$DCACHE" -t bytes set big <"$T/big" || fail "set big"
	expect 0 get big
	cmp -s "$T/out" "$T/big" || fail "big value differs"
	py 'c = diskcache.FanoutCache(sys.argv[1], shards=4)
assert c["big"] == open(sys.argv[2], "rb").read()' "$DCACHE_DIR" "$T/big" ||
		fail "python disagrees"
}

test_default_directory() {
	unset DCACHE_DIR
	export XDG_CACHE_HOME=$T/xdg HOME=$T/home
	expect 0 set k xdg
	[ -f "$T/xdg/dcache/cache.db" ] || fail "not in \$XDG_CACHE_HOME/dcache"
	unset XDG_CACHE_HOME
	expect 0 set k home
	[ -f "$T/home/.cache/dcache/cache.db" ] || fail "not in ~/.cache/dcache"
	export DCACHE_DIR=$T/env
	expect 0 set k env
	[ -f "$T/env/cache.db" ] || fail "not in \$DCACHE_DIR"
	expect 0 -d "$T/opt" set k opt
	[ -f "$T/opt/cache.db" ] || fail "not in -d DIR"
	expect 0 get k --dir="$T/home/.cache/dcache"
	out_is home
	unset DCACHE_DIR HOME
	expect 2 get k
	err_has 'DCACHE_DIR'
}

# on_tty ARGS...: runs ARGS (dcache) on a pseudo-terminal of its own, as
# session leader with it as controlling terminal; prints what the
# terminal received, with the tty's CRLF turned back into LF, and exits
# with ARGS' status.
#
# It does not read until the end-of-file a terminal gives when its last
# user closes it (EIO on Linux): that ties what is read to how the kernel
# tears the terminal down as the program exits.  This side keeps the
# terminal open instead, waits for the program to end (a pidfd in the
# same select() as the terminal, which is read all along, so that a
# large output cannot fill it), and then writes an end marker to the
# terminal itself.  A terminal keeps the order of what is written to it,
# and the program has ended before the marker is written, so all that it
# wrote has been read once the marker has.
on_tty() {
	"$PY" - "$@" <<'EOF'
import fcntl, os, select, sys, termios
master, slave = os.openpty()
pid = os.fork()
if pid == 0:
    try:
        os.setsid()
        fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
        for fd in 0, 1, 2:
            os.dup2(slave, fd)
        os.execv(sys.argv[1], sys.argv[1:])
    except OSError as e:
        os.write(2, b"on_tty: %s\n" % str(e).encode())
    os._exit(127)
end = b"[on_tty: end %s]" % os.urandom(8).hex().encode()
pidfd = os.pidfd_open(pid)
watch = [master, pidfd]
out = bytearray()
status = None
while end not in out:
    ready = select.select(watch, [], [], 60)[0]
    if not ready:
        sys.exit("on_tty: nothing for 60 s; so far %r" % bytes(out))
    if master in ready:
        out += os.read(master, 65536)
    if pidfd in ready:
        status = os.waitpid(pid, 0)[1]
        watch.remove(pidfd)
        os.write(slave, end)
at = out.index(end)
if at + len(end) != len(out):
    sys.exit("on_tty: output after the end marker: %r" % bytes(out))
sys.stdout.buffer.write(bytes(out[:at]).replace(b"\r\n", b"\n"))
sys.exit(os.waitstatus_to_exitcode(status))
EOF
}

test_terminal_output() {
	expect 0 set t 'hello'
	expect 0 -t bytes set b $'a\x1b[31m\xff\tz'
	on_tty "$DCACHE" get t >"$T/out" || fail "tty get"
	out_is $'hello\n'
	on_tty "$DCACHE" get b >"$T/out" || fail "tty get b"
	out_is $'a\\x1b[31m\\xff\tz\n'
	on_tty "$DCACHE" get -r b >"$T/out" || fail "tty get -r"
	out_is $'a\x1b[31m\xff\tz'
	expect 0 set nl $'two\nlines\n'
	on_tty "$DCACHE" get nl >"$T/out" || fail "tty get nl"
	out_is $'two\nlines\n'
	# a file-backed value streamed in 64 KiB reads: 6-byte units put a
	# UTF-8 sequence across the first read boundary (65536 = 6 * 10922 + 4)
	"$PY" -c 'import sys; sys.stdout.buffer.write("ab\x01€".encode() * 12000)' |
		"$DCACHE" -t bytes set big || fail "set big"
	on_tty "$DCACHE" get big >"$T/out" || fail "tty get big"
	"$PY" -c 'import sys; sys.stdout.write("ab\\x01€" * 12000 + "\n")' |
		cmp -s - "$T/out" || fail "tty rendering of a streamed value"
}

test_meta() {
	expect 0 set k v --tag t -e 1h
	expect 0 get -m k
	for f in key key_type size file_backed expire_time ttl tag tag_type \
		store_time access_time access_count; do
		out_has "^$f "
	done
	out_has '^key k$'
	out_has '^file_backed 0$'
	expect 0 get -M k
	out_is v
	err_has '^key k$'
	err_has '^tag t$'
	expect 0 -k int set 5 five
	expect 0 -k int get -m 5
	out_has '^key 5$'
	out_has '^key_type int$'
}

test_write_error_is_exit_4() {
	[ -w /dev/full ] || {
		echo "  skipped: no /dev/full"
		return 0
	}
	expect 0 set k v
	"$DCACHE" get k >/dev/full 2>"$T/err"
	rc=$?
	[ "$rc" -eq 4 ] || fail "exit $rc, expected 4"
	err_has 'write error'
}

test_corrupt_database_is_exit_4() {
	mkdir -p "$DCACHE_DIR"
	head -c 8192 /dev/urandom >"$DCACHE_DIR/cache.db"
	expect 4 get k
	err_line get
}

# Opening a cache writes its settings, which waits up to 60 s for a
# locked database in DiskCache and in libdcache alike.  So dcache opens
# first and waits for its value on a FIFO; then Python takes the write
# lock for HOLD seconds; then the value arrives.  Sets $rc.
set_while_locked() {
	local hold=$1 dpid pid w
	shift
	rm -f "$T/fifo" "$T/locked"
	mkfifo "$T/fifo" || fail "mkfifo"
	"$DCACHE" "$@" <"$T/fifo" >"$T/out" 2>"$T/err" &
	dpid=$!
	exec 3>"$T/fifo"
	for _ in $(seq 100); do
		w=$(cat "/proc/$dpid/wchan" 2>/dev/null)
		case $w in *pipe_read | *pipe_wait) break ;; esac
		sleep 0.1
	done
	case $w in
	*pipe_read | *pipe_wait) ;;
	*)
		exec 3>&-
		wait "$dpid"
		fail "dcache never waited on its stdin"
		;;
	esac
	"$PY" -c 'import sys, time, diskcache
c = diskcache.Cache(sys.argv[1])
with c.transact():
    c["lock"] = 1
    open(sys.argv[2], "w").close()
    time.sleep(float(sys.argv[3]))' "$DCACHE_DIR" "$T/locked" "$hold" 3>&- &
	pid=$!
	for _ in $(seq 100); do
		[ -e "$T/locked" ] && break
		sleep 0.1
	done
	printf w >&3
	exec 3>&-
	wait "$dpid"
	rc=$?
	kill "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	[ -e "$T/locked" ] || fail "python never took the lock"
}

test_locked_database_is_exit_3() {
	expect 0 set k v
	set_while_locked 20 --timeout 0.2 set k
	[ "$rc" -eq 3 ] || fail "exit $rc, expected 3"
	err_line set
	expect 0 get k
	out_is v
	# --retry waits for the lock instead (held for 1 s here)
	set_while_locked 1 --retry --timeout 0.1 set k
	[ "$rc" -eq 0 ] || fail "--retry: exit $rc, expected 0"
	expect 0 get k
	out_is w
}

# ---------------------------------------------------------------------------
# deque, index, lock

# dq ARGS...: dcache deque ARGS with stdin from /dev/null.
dq() {
	expect "$1" deque "${@:2}" </dev/null
}

# lines: stdout's lines joined by spaces, for short comparisons.
lines() {
	tr '\n' ' ' <"$T/out"
}

lines_are() {
	[ "$(lines)" = "$1" ] || fail "stdout is '$(lines)', expected '$1'"
}

test_deque_append_pop_peek() {
	dq 0 append a b c
	err_empty
	[ ! -s "$T/out" ] || fail "append printed something"
	dq 0 appendleft y z
	dq 0 list
	lines_are 'z y a b c '
	dq 0 len
	out_is $'5\n'
	dq 0 peek
	out_is c
	dq 0 peekleft
	out_is z
	dq 0 pop
	out_is c
	dq 0 popleft
	out_is z
	dq 0 pop -M
	out_is b
	err_has '^key 500000000000001$'
	dq 0 popleft -m
	out_has '^key 499999999999999$'
	out_has '^type str$'
	dq 0 list
	lines_are 'a '
	dq 0 pop
	for c in pop popleft peek peekleft; do
		dq 1 "$c"
		err_line "deque $c"
		err_has 'empty'
		[ ! -s "$T/out" ] || fail "$c of an empty deque printed"
		dq 1 -q "$c"
		err_empty
	done
	dq 0 len
	out_is $'0\n'
	# stdin: the whole of it is one value, exactly
	printf 'two\nlines\n' | "$DCACHE" deque append || fail "append stdin"
	printf 'mid' | "$DCACHE" deque append x - z || fail "append x - z"
	dq 0 list
	out_is $'two\\nlines\\n\nx\nmid\nz\n'
	dq 0 popleft
	out_is $'two\nlines\n'
}

test_deque_python_interop() {
	dq 0 append text
	dq 0 -t int append 7 -8
	dq 0 -t float append 2.5
	dq 0 -t bytes append $'\x01raw'
	"$PY" -c 'import pickle,sys; sys.stdout.buffer.write(pickle.dumps((1, "a")))' |
		"$DCACHE" -t pickle deque append || fail "append pickle"
	head -c 200000 /dev/urandom >"$T/big"
	"$DCACHE" -t bytes deque append <"$T/big" || fail "append big"
	py 'd = diskcache.Deque(directory=sys.argv[1])
want = ["text", 7, -8, 2.5, b"\x01raw", (1, "a"), open(sys.argv[2], "rb").read()]
got = list(d)
assert got == want, got[:6]
assert [type(x) for x in got[:4]] == [str, int, int, float]
d.append("from python")
d.appendleft(42)
d.append(b"\xff")' "$DCACHE_DIR" "$T/big" || fail "python disagrees"
	dq 0 popleft
	out_is 42
	dq 0 pop
	printf '\xff' | cmp -s - "$T/out" || fail "bytes from python differ"
	dq 0 pop
	out_is 'from python'
	dq 0 pop
	cmp -s "$T/out" "$T/big" || fail "large value differs"
	dq 0 pop -m
	out_has '^type pickle$'
	dq 0 len
	out_is $'5\n'
	expect 0 check
}

test_deque_concurrent_consumers() {
	# two dcache consumers and a Python one drain one deque: every item
	# is taken exactly once
	dq 0 -t int append $(seq 1 60)
	local i pids=""
	for i in 1 2; do
		(
			while v=$("$DCACHE" -q deque popleft); do
				echo "$v"
			done >"$T/got$i"
		) &
		pids="$pids $!"
	done
	py 'd = diskcache.Deque(directory=sys.argv[1])
with open(sys.argv[2], "w") as f:
    while True:
        try:
            f.write("%d\n" % d.popleft())
        except IndexError:
            break' "$DCACHE_DIR" "$T/got3" &
	pids="$pids $!"
	for i in $pids; do
		wait "$i" || fail "a consumer failed"
	done
	sort -n "$T/got1" "$T/got2" "$T/got3" >"$T/all"
	seq 1 60 | cmp -s - "$T/all" || fail "items lost or duplicated"
}

test_deque_index_operations() {
	dq 0 append a b c d e
	dq 0 get 0
	out_is a
	dq 0 get -1
	out_is e
	dq 0 get 2 -m
	out_has '^key 500000000000002$'
	dq 1 get 5
	err_line 'deque get'
	err_has 'out of range'
	dq 1 get -6
	dq 0 set 1 B
	dq 0 set -1 E
	dq 1 set 9 x
	echo -n fromstdin | "$DCACHE" deque set 2 - || fail "set from stdin"
	dq 0 list
	lines_are 'a B fromstdin d E '
	dq 0 del 0
	dq 0 del -2
	dq 1 del 3
	dq 0 list
	lines_are 'B fromstdin E '
	py 'd = diskcache.Deque(directory=sys.argv[1])
assert list(d) == ["B", "fromstdin", "E"], list(d)
assert d[1] == "fromstdin"' "$DCACHE_DIR" || fail "python disagrees"
}

test_deque_remove_count_rotate_reverse_clear() {
	dq 0 append a b a c a
	dq 0 -t int append 1
	dq 0 count a
	out_is $'3\n'
	dq 0 count zz
	out_is $'0\n'
	# typed equality: the text "1" is not the int 1
	dq 0 count 1
	out_is $'0\n'
	dq 0 -t int count 1
	out_is $'1\n'
	dq 0 remove a
	dq 0 list
	lines_are 'b a c a 1 '
	dq 1 remove zz
	err_line 'deque remove'
	dq 0 -t int remove 1
	dq 0 rotate
	dq 0 list
	lines_are 'a b a c '
	dq 0 rotate -3
	dq 0 list
	lines_are 'c a b a '
	dq 0 rotate 6
	dq 0 list
	lines_are 'b a c a '
	dq 0 reverse
	dq 0 list
	lines_are 'a c a b '
	py 'd = diskcache.Deque(directory=sys.argv[1])
assert list(d) == ["a", "c", "a", "b"], list(d)
d.rotate(1)
d.reverse()' "$DCACHE_DIR" || fail "python disagrees"
	dq 0 list
	lines_are 'a c a b '
	dq 0 clear
	[ ! -s "$T/out" ] || fail "clear printed something"
	dq 0 len
	out_is $'0\n'
	dq 0 rotate 5
	dq 0 reverse
}

test_deque_maxlen() {
	dq 0 append a b c d
	dq 0 append --maxlen 3 e
	dq 0 list
	lines_are 'c d e '
	dq 0 append --maxlen=2 f g h
	dq 0 list
	lines_are 'g h '
	dq 0 appendleft --maxlen 2 x
	dq 0 list
	lines_are 'x g '
	dq 0 append --maxlen 0 y
	dq 0 len
	out_is $'0\n'
}

test_deque_list_formats() {
	dq 0 append $'new\nline' plain
	dq 0 -t bytes append $'\x01\xff'
	dq 0 -t float append 0.1
	dq 0 list
	out_is $'new\\nline\nplain\n\\x01\\xff\n0.1\n'
	dq 0 list --reverse
	out_is $'0.1\n\\x01\\xff\nplain\nnew\\nline\n'
	dq 0 list -z
	printf 'new\nline\0plain\0\x01\xff\0000.1\0' | cmp -s - "$T/out" ||
		fail "-z output differs"
}

# refused ARGS... with stdin from /dev/null unless given.
refused_in() {
	refused "$@" </dev/null
}

test_collections_bad_input_creates_nothing() {
	refused_in deque
	err_has 'missing deque command'
	refused_in deque bogus
	err_line deque
	err_has "unknown command 'bogus'"
	refused_in index
	refused_in index frob
	refused_in deque get
	err_line 'deque get'
	err_has 'missing operand'
	refused_in deque get x
	err_has 'INDEX is not an integer'
	refused_in deque get 1.5
	refused_in deque set x v
	refused_in deque del ''
	refused_in deque rotate 1x
	refused_in deque pop extra
	err_has 'too many operands'
	refused_in deque len --prefix p
	err_has 'does not apply'
	refused_in -t int deque append 1 x
	refused_in deque append - -
	refused_in deque append $'\xff'
	refused_in deque append --maxlen -1 x
	refused_in deque append --maxlen x x
	refused_in deque --sub ../x len
	refused_in deque --sub '' len
	refused_in deque --sub a//b len
	refused_in --shards 2 deque len
	refused_in -t int deque count 1.5
	refused_in index get
	refused_in -k int index get x
	refused_in index set $'\xff' v
	refused_in index pull --front --back
	refused_in index keys --maxlen 3
	refused_in index popitem --last
	# a bad value on stdin is refused before anything is opened too
	printf 'x\xfe' >"$T/bad"
	refused deque append <"$T/bad"
	refused index set k <"$T/bad"
	echo 12x >"$T/bad"
	refused -t int deque append - <"$T/bad"
	refused_in lock
	refused_in lock k extra
	refused_in lock k --
	err_has "missing COMMAND after '--'"
	refused_in lock -e 0 k
	refused_in lock -e -1 k
	refused_in lock -e 5x k
	refused_in lock -n -w 1 k
	err_has 'exclude'
	refused_in lock -w x k
	refused_in lock -w -1 k
	refused_in lock -E 256 k
	refused_in lock --tag $'\xff' k
	refused_in -k int lock k
	refused_in unlock
	refused_in unlock a b
	refused_in unlock -e 5 k
}

test_index_get_set_del_pop() {
	expect 0 index set a 1
	err_empty
	expect 0 -t int index set b 2
	expect 0 -k int index set 7 seven
	printf 'raw\n' | "$DCACHE" -t bytes index set c || fail "set stdin"
	expect 0 index get a
	out_is 1
	expect 0 index get b -m
	out_has '^type int$'
	expect 0 -k int index get 7
	out_is seven
	expect 1 index get nope
	err_line 'index get'
	expect 0 index contains a
	err_empty
	expect 1 index contains nope
	err_empty
	expect 0 index set a one
	expect 0 index keys
	lines_are 'a b 7 c '
	expect 0 index values
	out_is $'one\n2\nseven\nraw\\n\n'
	expect 0 index items
	out_is $'a\tone\nb\t2\n7\tseven\nc\traw\\n\n'
	expect 0 index keys --reverse
	lines_are 'c 7 b a '
	expect 0 index items -z --reverse
	printf 'c\0raw\n\0007\0seven\0b\0002\0a\0one\0' | cmp -s - "$T/out" ||
		fail "items -z differs"
	py 'i = diskcache.Index(sys.argv[1])
assert list(i.items()) == [("a", "one"), ("b", 2), (7, "seven"),
                           ("c", b"raw\n")], list(i.items())
i["py"] = [1, 2]
i[b"k"] = 2.5' "$DCACHE_DIR" || fail "python disagrees"
	expect 0 -k bytes index get k
	out_is 2.5
	expect 0 index pop py -m
	out_has '^type pickle$'
	expect 1 index pop py
	expect 0 index del a
	expect 1 index del a
	err_line 'index del'
	expect 0 index len
	out_is $'4\n'
	py 'i = diskcache.Index(sys.argv[1])
assert list(i) == ["b", 7, "c", b"k"], list(i)' "$DCACHE_DIR" ||
		fail "python disagrees after pop"
}

test_index_popitem_setdefault_clear() {
	expect 1 index popitem
	err_has 'empty'
	expect 1 index peekitem
	expect 0 index set first 1
	expect 0 index set second 2
	expect 0 index set third 3
	expect 0 index peekitem
	out_is 3
	expect 0 index peekitem --first -m
	out_has '^key first$'
	expect 0 index popitem -M
	out_is 3
	err_has '^key third$'
	expect 0 index popitem --first -M
	out_is 1
	err_has '^key first$'
	expect 0 index setdefault d dflt
	out_is dflt
	expect 0 index setdefault d other
	out_is dflt
	echo -n fromstdin | "$DCACHE" index setdefault e >"$T/out" ||
		fail "setdefault stdin"
	out_is fromstdin
	py 'i = diskcache.Index(sys.argv[1])
assert list(i.items()) == [("second", "2"), ("d", "dflt"), ("e", "fromstdin")]
assert i.popitem() == ("e", "fromstdin")' "$DCACHE_DIR" ||
		fail "python disagrees"
	expect 0 index clear
	expect 0 index len
	out_is $'0\n'
}

test_index_push_pull_peek() {
	expect 0 index push a </dev/null
	out_is $'500000000000000\n'
	expect 0 index push --front z </dev/null
	out_is $'499999999999999\n'
	expect 0 index push -p jobs j1 </dev/null
	out_is $'jobs-500000000000000\n'
	echo -n j2 | "$DCACHE" index push -p jobs >"$T/out" || fail "push stdin"
	out_is $'jobs-500000000000001\n'
	expect 0 index peek
	out_is z
	expect 0 index peek --back
	out_is a
	expect 0 index pull -p jobs --back -M
	out_is j2
	err_has '^key jobs-500000000000001$'
	py 'i = diskcache.Index(sys.argv[1])
assert i.pull(prefix="jobs") == ("jobs-500000000000000", "j1")
assert i.pull() == (499999999999999, "z")
i.push("py")' "$DCACHE_DIR" || fail "python disagrees"
	expect 1 index pull -p jobs
	err_has 'empty'
	expect 0 index pull
	out_is a
	expect 0 index pull
	out_is py
	expect 1 index pull
}

test_fanout_sub_collections() {
	dq 0 --sub jobs append a b
	# a new directory becomes a FanoutCache of 8 shards, as Python's
	[ -f "$DCACHE_DIR/007/cache.db" ] || fail "no FanoutCache of 8 shards"
	[ -f "$DCACHE_DIR/deque/jobs/cache.db" ] || fail "no deque/jobs"
	dq 0 list --sub jobs
	lines_are 'a b '
	expect 0 index --sub web/pages set k v
	[ -f "$DCACHE_DIR/index/web/pages/cache.db" ] || fail "no index/web/pages"
	py 'f = diskcache.FanoutCache(sys.argv[1])
assert list(f.deque("jobs")) == ["a", "b"], list(f.deque("jobs"))
assert dict(f.index("web/pages")) == {"k": "v"}
f.deque("jobs").append("py")
f.index("other")["x"] = 1' "$DCACHE_DIR" || fail "python disagrees"
	dq 0 pop --sub jobs
	out_is py
	expect 0 index --sub other get x
	out_is 1
	# the FanoutCache itself is not a deque
	dq 2 list
	err_line 'deque list'
	err_has 'use --sub'
	expect 2 index keys
	# an existing FanoutCache keeps its layout
	expect 0 -d "$T/f4" --shards 4 set k v
	expect 0 -d "$T/f4" deque --sub q append x </dev/null
	[ ! -e "$T/f4/004" ] || fail "shards added to a FanoutCache of 4"
	expect 0 -d "$T/f4" deque --sub q len
	out_is $'1\n'
	# --shards applies to the parent of --sub
	expect 4 -d "$T/f4" --shards 2 deque --sub q len
}

test_lock_and_unlock() {
	expect 0 lock k
	err_empty
	[ ! -s "$T/out" ] || fail "lock printed something"
	expect 1 lock --nowait k
	err_line lock
	err_has 'held'
	expect 1 lock -q -n k
	err_empty
	expect 1 lock -w 0.3 k
	expect 7 lock -n -E 7 k
	py 'c = diskcache.Cache(sys.argv[1])
assert diskcache.Lock(c, "k").locked()
assert not diskcache.Lock(c, "other").locked()' "$DCACHE_DIR" ||
		fail "python does not see the lock"
	expect 0 contains k
	expect 0 unlock k
	err_empty
	expect 1 unlock k
	err_line unlock
	expect 0 lock -n k
	expect 0 unlock k
	# typed keys and tags, as Python's Lock(cache, 7, tag="t")
	expect 0 -k int lock --tag t 7
	expect 0 -k int get -m 7
	out_has '^tag t$'
	out_has '^type pickle$'
	py 'c = diskcache.Cache(sys.argv[1])
assert c.get(7, default=1, tag=True) == (None, "t")
diskcache.Lock(c, 7).release()' "$DCACHE_DIR" || fail "python disagrees"
	expect 1 -k int unlock 7
	# an expiring lock frees itself
	expect 0 lock -e 2 old
	expect 1 lock -n old
	sleep 2.2
	expect 0 lock -n old
	# a FanoutCache works too
	expect 0 -d "$T/f" --shards 3 lock k
	expect 1 -d "$T/f" lock -n k
	py 'f = diskcache.FanoutCache(sys.argv[1], shards=3)
assert diskcache.Lock(f, "k").locked()' "$T/f" || fail "python fanout lock"
	expect 0 -d "$T/f" unlock k
}

# wait_for FILE: until FILE exists (at most 30 s).
wait_for() {
	local i
	for i in $(seq 300); do
		[ -e "$1" ] && return 0
		sleep 0.1
	done
	fail "timed out waiting for $1"
}

test_lock_contention_between_dcache_processes() {
	# A holds the lock until told to stop; B waits for it meanwhile
	"$DCACHE" lock k -- sh -c 'echo A-in >>"$1"; touch "$1.a"
		while [ ! -e "$1.stop" ]; do sleep 0.05; done
		echo A-out >>"$1"' sh "$T/log" 2>"$T/a.err" &
	local a=$!
	wait_for "$T/log.a"
	expect 1 lock -n k
	"$DCACHE" lock k -- sh -c 'echo B-in >>"$1"; echo B-out >>"$1"' \
		sh "$T/log" 2>"$T/b.err" &
	local b=$!
	sleep 0.3
	touch "$T/log.stop"
	wait "$a" || fail "A: exit $?"
	wait "$b" || fail "B: exit $?"
	[ "$(tr '\n' ' ' <"$T/log")" = 'A-in A-out B-in B-out ' ] ||
		fail "not mutually exclusive: $(cat "$T/log")"
	expect 1 contains k
	# many at once: each critical section runs alone
	local i pids=""
	: >"$T/log2"
	for i in 1 2 3 4 5 6; do
		"$DCACHE" lock k -- sh -c 'echo in >>"$1"; sleep 0.02
			echo out >>"$1"' sh "$T/log2" &
		pids="$pids $!"
	done
	for i in $pids; do
		wait "$i" || fail "a locker failed"
	done
	[ "$(tr '\n' ' ' <"$T/log2")" = "$(printf 'in out %.0s' 1 2 3 4 5 6)" ] ||
		fail "overlapping sections: $(tr '\n' ' ' <"$T/log2")"
}

test_lock_contention_with_python() {
	# Python holds Lock(cache, "k") until told to stop
	py 'import os, time
c = diskcache.Cache(sys.argv[1])
lock = diskcache.Lock(c, "k")
lock.acquire()
open(sys.argv[2] + ".held", "w").close()
while not os.path.exists(sys.argv[2] + ".stop"):
    time.sleep(0.02)
with open(sys.argv[2], "a") as f:
    f.write("py-out\n")
lock.release()' "$DCACHE_DIR" "$T/log" &
	local p=$!
	wait_for "$T/log.held"
	expect 1 lock -n k
	expect 1 lock -w 0.2 k
	"$DCACHE" lock k -- sh -c 'echo dc-in >>"$1"' sh "$T/log" &
	local d=$!
	sleep 0.3
	[ ! -s "$T/log" ] || fail "dcache ran while python held the lock"
	touch "$T/log.stop"
	wait "$p" || fail "python failed"
	wait "$d" || fail "dcache lock failed"
	[ "$(tr '\n' ' ' <"$T/log")" = 'py-out dc-in ' ] ||
		fail "wrong order: $(cat "$T/log")"
	# and the other way round: Python waits for dcache's lock
	expect 0 lock k
	py 'c = diskcache.Cache(sys.argv[1])
lock = diskcache.Lock(c, "k")
lock.acquire()
with open(sys.argv[2], "a") as f:
    f.write("py-got-it\n")
lock.release()' "$DCACHE_DIR" "$T/log" &
	p=$!
	sleep 0.3
	grep -q py-got-it "$T/log" && fail "python took a lock dcache held"
	expect 0 unlock k
	wait "$p" || fail "python failed"
	grep -q py-got-it "$T/log" || fail "python never got the lock"
}

test_lock_command() {
	expect 3 lock k -- sh -c 'echo ran; exit 3'
	out_is $'ran\n'
	expect 1 contains k
	expect 0 lock k -- "$DCACHE" contains k
	expect 1 contains k
	# the command's own options are not dcache's
	expect 0 lock k -- ls -d /
	# a key that looks like an option
	expect 0 lock -- -k -- true
	expect 127 lock k -- /nonexistent/command
	err_has 'No such file'
	expect 1 contains k
	# held elsewhere: the command does not run
	expect 0 lock k
	expect 1 lock -n k -- touch "$T/ran"
	[ ! -e "$T/ran" ] || fail "command ran without the lock"
	expect 9 lock -n -E 9 k -- true
	expect 0 unlock k
	# killed by a signal: 128+N, lock released
	expect 143 lock k -- sh -c 'kill -TERM $$'
	expect 1 contains k
	# the lock expired while the command ran: a warning
	expect 0 lock -e 0.3 k -- sleep 1
	err_has 'expired'
	expect 1 contains k
	# started with SIGCHLD ignored (the kernel would reap the command
	# by itself): the status still comes back, and the command inherits
	# the ignored SIGCHLD as it would without dcache
	"$PY" - "$DCACHE" lock k -- "$PY" -c 'import signal, sys
sys.exit(9 if signal.getsignal(signal.SIGCHLD) == signal.SIG_IGN else 8)' \
		>"$T/out" 2>"$T/err" <<'EOF'
import signal, subprocess, sys
ign = lambda: signal.signal(signal.SIGCHLD, signal.SIG_IGN)
sys.exit(subprocess.call(sys.argv[1:], preexec_fn=ign))
EOF
	rc=$?
	[ "$rc" -eq 9 ] || fail "SIGCHLD ignored: exit $rc, expected 9"
	expect 1 contains k
}

# signal_lock SIG READY ARGS...: start dcache ARGS, wait until the file
# READY exists (READY "-": until dcache catches SIG), send it SIG (a
# name; -NAME: to its process group, as a terminal does) and print how
# it ended as Python reports it: -N if it died of signal N, else its
# exit status.  dcache gets SIGINT and SIGQUIT at their defaults, even
# when this script runs in the background.
signal_lock() {
	"$PY" - "$DCACHE" "$@" <<'EOF'
import os, signal, subprocess, sys, time
dcache, sig, ready = sys.argv[1:4]
signum = getattr(signal, "SIG" + sig.lstrip("-"))
def child():
    for s in (signal.SIGINT, signal.SIGQUIT):
        signal.signal(s, signal.SIG_DFL)
def is_ready(pid):
    if ready != "-":
        return os.path.exists(ready)
    with open("/proc/%d/status" % pid) as f:
        cgt = [l.split()[1] for l in f if l.startswith("SigCgt:")][0]
    return int(cgt, 16) >> (signum - 1) & 1
p = subprocess.Popen([dcache] + sys.argv[4:], preexec_fn=child,
                     process_group=0)
deadline = time.monotonic() + 30
while not is_ready(p.pid):
    if p.poll() is not None or time.monotonic() > deadline:
        p.kill()
        sys.exit("dcache ended, or timed out, before it was ready")
    time.sleep(0.02)
if sig.startswith("-"):
    os.killpg(p.pid, signum)
else:
    p.send_signal(signum)
print(p.wait())
EOF
}

# A COMMAND that catches SIGTERM, SIGHUP and SIGINT:
# sh trap.sh READY HOW: creates READY, then on the signal writes
# READY.log and ends as HOW says: exit N, or die of signal HOW.
write_trap_script() {
	cat >"$T/trap.sh" <<'EOF'
caught() {
	kill "$child"
	echo caught >"$1.log"
	case $2 in
	[0-9]*) exit "$2" ;;
	*) trap - "$2"; kill -s "$2" $$ ;;
	esac
}
trap 'caught "$1" "$2"' TERM HUP INT
sleep 30 &
child=$!
touch "$1"
wait
EOF
}

test_lock_command_terminated() {
	local rc pid
	write_trap_script
	# SIGTERM to dcache reaches the command; the lock is released and,
	# as the command died of it, dcache dies of the same signal
	rc=$(signal_lock TERM "$T/pid" lock k -- sh -c 'echo $$ >"$1.tmp"
		mv "$1.tmp" "$1"; exec sleep 30' sh "$T/pid")
	[ "$rc" = -15 ] || fail "dcache: $rc, expected death by SIGTERM"
	pid=$(cat "$T/pid")
	if kill -0 "$pid" 2>/dev/null; then
		kill "$pid"
		fail "the command survived"
	fi
	expect 1 contains k
	# the command catches it and exits 0: so does dcache, having
	# released the lock
	rc=$(signal_lock TERM "$T/r1" lock k -- sh "$T/trap.sh" "$T/r1" 0)
	[ "$rc" = 0 ] || fail "command caught SIGTERM, exit 0: dcache $rc"
	[ -e "$T/r1.log" ] || fail "SIGTERM never reached the command"
	expect 1 contains k
	# SIGHUP likewise, and the command's own status comes back
	rc=$(signal_lock HUP "$T/r2" lock k -- sh "$T/trap.sh" "$T/r2" 5)
	[ "$rc" = 5 ] || fail "command caught SIGHUP, exit 5: dcache $rc"
	[ -e "$T/r2.log" ] || fail "SIGHUP never reached the command"
	expect 1 contains k
	# caught, then it dies of that signal after all: dcache too
	rc=$(signal_lock TERM "$T/r3" lock k -- sh "$T/trap.sh" "$T/r3" TERM)
	[ "$rc" = -15 ] || fail "command re-raised SIGTERM: dcache $rc"
	expect 1 contains k
	# ... or of another one, which dcache was not sent: its status
	rc=$(signal_lock TERM "$T/r4" lock k -- sh "$T/trap.sh" "$T/r4" KILL)
	[ "$rc" = 137 ] || fail "command died of SIGKILL: dcache $rc"
	expect 1 contains k
	# SIGINT from a terminal (to the whole group): the same rules
	rc=$(signal_lock -INT "$T/r5" lock k -- sh "$T/trap.sh" "$T/r5" 0)
	[ "$rc" = 0 ] || fail "command caught SIGINT, exit 0: dcache $rc"
	[ -e "$T/r5.log" ] || fail "SIGINT never reached the command"
	expect 1 contains k
	rc=$(signal_lock -INT "$T/r6" lock k -- sh -c 'touch "$1"
		exec sleep 30' sh "$T/r6")
	[ "$rc" = -2 ] || fail "command died of SIGINT: dcache $rc"
	expect 1 contains k
	# SIGTERM while waiting: nothing is taken, the holder keeps it, and
	# dcache dies of it
	expect 0 lock k
	rc=$(signal_lock TERM - lock k -- touch "$T/ran")
	[ "$rc" = -15 ] || fail "waiting dcache: $rc, expected death by SIGTERM"
	[ ! -e "$T/ran" ] || fail "command ran"
	expect 0 contains k
}

# ---------------------------------------------------------------------------
# Runner

tests=$(declare -F | awk '$3 ~ /^test_/ { print $3 }')
[ $# -gt 0 ] && tests="$*"

pass=0
failed=0
log=$(mktemp) || exit 1
trap 'rm -f "$log"' EXIT
for t in $tests; do
	if (
		T=$(mktemp -d "${TMPDIR:-/tmp}/dcache-cli.XXXXXX") || exit 1
		trap 'rm -rf "$T"' EXIT
		cd "$T" || exit 1
		export DCACHE_DIR=$T/cache
		"$t"
	) >"$log" 2>&1; then
		echo "ok   $t"
		pass=$((pass + 1))
	else
		echo "FAIL $t"
		cat "$log"
		failed=$((failed + 1))
	fi
done
echo "$pass passed, $failed failed"
[ "$failed" -eq 0 ]
