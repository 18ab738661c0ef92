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
		stats volume len expire evict cull clear check settings; do
		grep -q "^  $c " "$T/help" || fail "--help does not list $c"
		expect 0 help "$c"
		out_has "^Usage: dcache $c"
	done
	expect 0 get --help
	out_has '^Usage: dcache get'
	expect 2 help nosuch
	err_line help
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

# Runs dcache on a pseudo-terminal, prints what the terminal received
# with the tty's CRLF turned back into LF.
on_tty() {
	"$PY" - "$@" <<'EOF'
import os, pty, sys
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
out = b""
while True:
    try:
        d = os.read(fd, 65536)
    except OSError:
        break
    if not d:
        break
    out += d
_, st = os.waitpid(pid, 0)
sys.stdout.buffer.write(out.replace(b"\r\n", b"\n"))
sys.exit(os.waitstatus_to_exitcode(st))
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
