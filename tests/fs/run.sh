#!/usr/bin/env bash
# run.sh - mount dcachefs for real and drive it with ordinary tools
# SPDX-License-Identifier: MIT
#
# Each test gets a fresh cache directory and its own mount (under one
# mktemp -d), runs in a subshell, and is unmounted afterwards; a trap
# unmounts everything and kills only the daemons this script started,
# even on failure.  Values are checked through Python DiskCache
# (/usr/bin/python3), which does not share any code with dcachefs.
#
#   BUILD=build tests/fs/run.sh [TEST...]
set -u

top=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$top/$BUILD ;; esac
DCACHEFS=$BUILD/dcachefs
PY=/usr/bin/python3

if [ ! -e /dev/fuse ]; then
	echo "SKIP: /dev/fuse is missing: the dcachefs tests did NOT run"
	exit 0
fi
if [ ! -x "$DCACHEFS" ]; then
	echo "FAIL: $DCACHEFS not built"
	exit 1
fi

work=$(mktemp -d /tmp/dcachefs-test.XXXXXX)
DLOG=$work/daemon.log
daemons=()
mounts=()
passed=0
failed=0

is_mounted() {
	awk -v m="$1" '$2 == m { found = 1 } END { exit !found }' /proc/mounts
}

cleanup() {
	local m p
	# Also mounts made inside a test's subshell.
	for m in "${mounts[@]}" $(awk -v w="$work/" \
		'index($2, w) == 1 { print $2 }' /proc/mounts); do
		if is_mounted "$m"; then
			fusermount3 -u "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
		fi
	done
	for p in "${daemons[@]}"; do
		kill "$p" 2>/dev/null
	done
	wait 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# mount_fs CACHEDIR MOUNTPOINT [dcachefs options...]: start a foreground
# daemon in the background; sets DPID.  Fails if the mount is not live
# within 10 s.
mount_fs() {
	local c=$1 m=$2 i
	shift 2
	mkdir -p "$m"
	"$DCACHEFS" -f "$@" "$c" "$m" 2>>"$DLOG" &
	DPID=$!
	daemons+=("$DPID")
	mounts+=("$m")
	for i in $(seq 100); do
		is_mounted "$m" && return 0
		kill -0 "$DPID" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

# unmount_fs MOUNTPOINT PID: unmount and wait for the daemon to exit.
unmount_fs() {
	if is_mounted "$1"; then
		fusermount3 -u "$1" 2>/dev/null || umount -l "$1" 2>/dev/null
	fi
	wait "$2"
}

# ---------------------------------------------------------------------
# Assertions (a failing one ends the test's subshell)
# ---------------------------------------------------------------------

die() {
	echo "  FAIL: $*"
	exit 1
}

ok() {
	"$@" || die "command failed: $*"
}

eq() {
	[ "$1" == "$2" ] || die "$3: expected [$2], got [$1]"
}

# py CODE [ARGS...]: run Python with diskcache imported, C the cache.
py() {
	local code=$1
	shift
	"$PY" -c "import diskcache, os, sys, errno
c = diskcache.Cache(sys.argv[1])
$code" "$C" "$@"
}

# pyrepr KEY-EXPR: repr() of the value Python reads for a key.
pyrepr() {
	py "print(repr(c.get($1, 'MISSING')))"
}

# errno_of PYTHON-STATEMENT: the errno name the statement fails with, or
# OK.  The statement may use the mount point as m.
errno_of() {
	"$PY" -c "import os, errno, sys
m = sys.argv[1]
def wr(path, data):
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
def rename_noreplace(a, b):
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.renameat2(-100, a.encode(), -100, b.encode(), 1) != 0:
        raise OSError(ctypes.get_errno(), 'renameat2')
try:
    $1
    print('OK')
except OSError as e:
    print(errno.errorcode.get(e.errno, e.errno))" "$M"
}

# ---------------------------------------------------------------------
# Tests: t_NAME runs in a subshell with C (cache dir), M (mount point),
# DPID (daemon) set and the cwd a scratch directory.
# ---------------------------------------------------------------------

t_cat_values() {
	py "c['hello'] = 'world'; c['n'] = 42; c['f'] = 2.5; c['neg'] = -7
c['b'] = b'\\x00\\x01bin'; c['t'] = (1, 'x'); c['u'] = 'h\\u00e9'
c['big'] = 'y' * 40000; c['dir/k'] = 'inner'"
	eq "$(cat "$M/hello")" world "text"
	eq "$(cat "$M/n")" 42 "int"
	eq "$(cat "$M/f")" 2.5 "float"
	eq "$(cat "$M/neg")" -7 "negative int"
	eq "$(od -An -tx1 "$M/b" | tr -d ' \n')" 000162696e "bytes"
	eq "$(cat "$M/u")" "hé" "utf-8 text"
	eq "$(cat "$M/dir/k")" inner "key below a directory"
	eq "$(stat -c %s "$M/hello" "$M/n" "$M/f" "$M/b" "$M/u" "$M/big" |
		tr '\n' ' ')" "5 2 3 5 3 40000 " "exact st_size"
	eq "$(head -c 3 "$M/big")" yyy "file-backed text"
	eq "$(py "import pickle
sys.stdout.buffer.write(pickle.dumps((1, 'x'), protocol=5))" | od -An -tx1)" \
		"$(od -An -tx1 <"$M/t")" "pickle read as raw bytes"
	eq "$(stat -c %Y "$M/hello")" "$(py "print(int(c._sql(
    'SELECT store_time FROM Cache WHERE key = ?', ('hello',)).fetchone()[0]))")" \
		"st_mtime is the store time"
	[ ! -e "$M/missing" ] || die "a missing key exists"
}

t_keys_dir() {
	py "c[7] = 'seven'; c[-3] = 'minus'; c[2.5] = 'float'; c[b'raw/key'] = 'bk'
c['a//b'] = 'badpath'; c['sp ace'] = 'ok'; c['a'] = 'shadowed'; c['a/b'] = 'x'
c['.ctl'] = 'reserved'; c[''] = 'empty'; c[(1, 2)] = 'pickled'"
	eq "$(cat "$M/.keys/int/7")" seven ".keys/int/7"
	eq "$(cat "$M/.keys/int/-3")" minus ".keys/int/-3"
	eq "$(cat "$M/.keys/float/2.5")" float ".keys/float/2.5"
	eq "$(cat "$M/.keys/bytes/raw%2Fkey")" bk "bytes key, escaped"
	eq "$(cat "$M/.keys/str/a%2F%2Fb")" badpath "invalid path key"
	eq "$(cat "$M/sp ace")" ok "a key with a space is a path"
	eq "$(cat "$M/.keys/str/a")" shadowed "key shadowed by a directory"
	[ -d "$M/a" ] || die "a is not a directory"
	eq "$(cat "$M/.keys/str/%2Ectl")" reserved "reserved name"
	eq "$(cat "$M/.keys/str/%")" empty "the empty key"
	eq "$(ls "$M/.keys")" "$(printf 'bytes\nfloat\nint\npickle\nstr')" \
		"type folders"
	eq "$(ls "$M/.keys/int" | tr '\n' ' ')" "-3 7 " "int listing"
	eq "$(ls "$M/.keys/str" | tr '\n' ' ')" "% %2Ectl a a%2F%2Fb " \
		"str lists only keys that are not plain paths"
	eq "$(ls "$M/.keys/pickle" | wc -l)" 1 "pickle listing"
	eq "$(cat "$M/.keys/pickle/"*)" pickled "pickled key"
	eq "$(errno_of "open(m + '/.keys/int/07')")" ENOENT \
		"non-canonical int name"
	eq "$(errno_of "open(m + '/.keys/str/%41')")" ENOENT \
		"non-canonical escape"
	# every key is listed exactly once in the whole tree
	eq "$(find "$M" "$M/.keys" -type f | wc -l)" 11 "find sees every key"
}

t_ls_find() {
	py "
for k in ['x/1', 'x/2', 'x/y/3', 'x/y/z/4', 'x-1', 'top']:
    c[k] = k"
	eq "$(ls "$M" | tr '\n' ' ')" "top x x-1 " "ls of the root"
	eq "$(ls "$M/x" | tr '\n' ' ')" "1 2 y " "ls of a directory"
	eq "$(cd "$M" && find . | sort | tr '\n' ' ')" \
		". ./top ./x ./x-1 ./x/1 ./x/2 ./x/y ./x/y/3 ./x/y/z ./x/y/z/4 " \
		"find"
	ls -l "$M/x" >ls.out || die "ls -l"
	grep -q '^-rw-r--r-- 1 .* 3 .* 1$' ls.out || die "ls -l line: $(cat ls.out)"
	grep -q '^d.* y$' ls.out || die "ls -l dir line"
}

t_cp_in() {
	head -c 1000 /dev/urandom >small
	head -c 3000000 /dev/urandom >large
	ok cp small "$M/small"
	ok cp large "$M/large"
	ok cmp small "$M/small"
	ok cmp large "$M/large"
	eq "$(py "sys.stdout.buffer.write(c['large'])" | sha256sum)" \
		"$(sha256sum <large)" "python reads the large value"
	eq "$(py "print(type(c['small']).__name__)")" bytes \
		"written values are bytes"
	# (libdcache's empty cache.db-tmp/ is a known core issue: fs-needs.md)
	eq "$(py "print([str(w.message) for w in c.check()
       if not str(w.message).endswith('/cache.db-tmp')])")" "[]" \
		"python check() is clean"
	# the large value is file-backed, the small one inline
	eq "$(py "print(c._sql('SELECT filename IS NOT NULL FROM Cache WHERE key = ?', ('large',)).fetchone()[0])")" 1 "large is a value file"
	ls "$C"/*/ >/dev/null 2>&1 || die "no value file directory"
}

t_cp_a() {
	mkdir -p src/d/e
	echo one >src/a
	echo two >src/d/b
	head -c 70000 /dev/urandom >src/d/e/c
	cp -a src "$M/" 2>cp.err || die "cp -a failed: $(cat cp.err)"
	[ ! -s cp.err ] || die "cp -a complained: $(cat cp.err)"
	ok diff -r src "$M/src"
	eq "$(py "print(repr(c['src/d/b']))")" "b'two\\n'" "python sees the copy"
}

t_tar_diff() {
	mkdir -p tree/a/b tree/c
	for i in 1 2 3; do echo "file $i" >"tree/a/f$i"; done
	head -c 50000 /dev/urandom >tree/a/b/bin
	: >tree/c/empty
	tar -cf t.tar tree
	tar -xf t.tar -C "$M" 2>tar.err || die "tar -x: $(cat tar.err)"
	[ ! -s tar.err ] || die "tar complained: $(cat tar.err)"
	ok diff -r tree "$M/tree"
	eq "$(py "print(repr(c['tree/c/empty']))")" "b''" "empty file"
}

t_mv_rm() {
	py "c['old'] = 'value'; c['d/k1'] = 'one'; c['d/k2'] = 'two'
c.set('tagged', 'v', expire=3600, tag='t1')"
	ok mv "$M/old" "$M/new"
	[ ! -e "$M/old" ] || die "old still there"
	eq "$(cat "$M/new")" value "moved content"
	eq "$(pyrepr "'new'")" "'value'" "python sees the moved key, type kept"
	eq "$(pyrepr "'old'")" "'MISSING'" "python: old key gone"
	ok mv "$M/tagged" "$M/d/tagged"
	eq "$(py "v, e, t = c.get('d/tagged', expire_time=True, tag=True)
print(v, t, e is not None)")" "v t1 True" "rename keeps tag and expiry"
	ok mv "$M/d" "$M/e"
	eq "$(ls "$M/e" | tr '\n' ' ')" "k1 k2 tagged " "moved directory"
	eq "$(pyrepr "'e/k2'")" "'two'" "python sees moved directory keys"
	echo replaced >x
	ok cp x "$M/over"
	ok mv "$M/over" "$M/new"
	eq "$(cat "$M/new")" replaced "rename replaces the target"
	ok rm "$M/new"
	eq "$(pyrepr "'new'")" "'MISSING'" "rm deletes the key"
	ok rm -r "$M/e"
	[ ! -e "$M/e" ] || die "rm -r left the directory"
	eq "$(py "print(len(c))")" 0 "cache is empty"
	# a value file is renamed with its key, never copied: same file,
	# same store time
	py "c.set('bigv', b'z' * 100000, tag='keep')"
	row="SELECT filename, store_time, tag FROM Cache WHERE key = ?"
	before=$(py "print(c._sql('$row', ('bigv',)).fetchone())")
	ino=$(stat -c %i "$C/$(py "print(c._sql('$row', ('bigv',)).fetchone()[0])")")
	ok mv "$M/bigv" "$M/bigv2"
	eq "$(py "print(c._sql('$row', ('bigv2',)).fetchone())")" "$before" \
		"mv keeps the value file, store time and tag"
	eq "$(stat -c %i "$C/$(py "print(c._sql('$row', ('bigv2',)).fetchone()[0])")")" \
		"$ino" "the very same value file"
	eq "$(head -c 3 "$M/bigv2")" zzz "moved value file reads"
	# RENAME_NOREPLACE onto a live key
	echo a >"$M/na"
	echo b >"$M/nb"
	eq "$(errno_of "rename_noreplace(m + '/na', m + '/nb')")" EEXIST \
		"RENAME_NOREPLACE onto a live key"
	eq "$(cat "$M/nb")" b "target untouched"
	# renaming a key to its other name is a no-op
	py "c['same'] = 'v'"
	ok mv "$M/.keys/str/same" "$M/same"
	eq "$(pyrepr "'same'")" "'v'" "rename onto the same key"
}

t_dd_truncate() {
	head -c 200000 /dev/urandom >ref
	ok cp ref "$M/f"
	# overwrite in the middle, like the reference
	head -c 5000 /dev/urandom >patch.bin
	ok dd if=patch.bin of=ref bs=1000 seek=7 conv=notrunc status=none
	ok dd if=patch.bin of="$M/f" bs=1000 seek=7 conv=notrunc status=none
	ok cmp ref "$M/f"
	# sparse write past the end
	ok dd if=patch.bin of=ref bs=1000 seek=300 conv=notrunc status=none
	ok dd if=patch.bin of="$M/f" bs=1000 seek=300 conv=notrunc status=none
	ok cmp ref "$M/f"
	ok truncate -s 10 ref
	ok truncate -s 10 "$M/f"
	ok cmp ref "$M/f"
	eq "$(stat -c %s "$M/f")" 10 "truncated size"
	ok truncate -s 100000 ref
	ok truncate -s 100000 "$M/f"
	ok cmp ref "$M/f"
	ok truncate -s 0 "$M/f"
	eq "$(stat -c %s "$M/f")" 0 "truncate to 0"
	eq "$(pyrepr "'f'")" "b''" "python sees the empty value"
	# appends, small and across the spool limit
	printf abc >"$M/g"
	printf def >>"$M/g"
	eq "$(cat "$M/g")" abcdef "append"
	head -c 40000 /dev/zero | tr '\0' z >>"$M/g"
	eq "$(stat -c %s "$M/g")" 40006 "append across the spool limit"
	eq "$(head -c 8 "$M/g")" abcdefzz "content after a large append"
	# O_TRUNC through the shell
	echo short >"$M/g"
	eq "$(cat "$M/g")" short "O_TRUNC"
	dd if=/dev/zero of="$M/h" bs=64k count=20 status=none || die "dd"
	eq "$(stat -c %s "$M/h")" 1310720 "dd size"
}

t_sed_i() {
	printf 'alpha\nbeta\n' >"$M/conf"
	ok sed -i 's/beta/gamma/' "$M/conf"
	eq "$(cat "$M/conf")" "$(printf 'alpha\ngamma')" "sed -i"
	eq "$(ls "$M")" conf "no temporary file left"
}

t_rsync() {
	if ! command -v rsync >/dev/null; then
		echo "SKIP: rsync is not installed (make test-deps)"
		return 0
	fi
	mkdir -p src/a/b
	echo one >src/x
	head -c 70000 /dev/urandom >src/a/big
	echo two >src/a/b/y
	rsync -a src/ "$M/dst/" 2>err || die "rsync -a: $(cat err)"
	[ ! -s err ] || die "rsync -a complained: $(cat err)"
	ok diff -r src "$M/dst"
	# an update (temporary file, then rename over the key) and a delete
	echo changed >src/x
	rm src/a/b/y
	rsync -a --delete src/ "$M/dst/" 2>err || die "rsync update: $(cat err)"
	ok diff -r src "$M/dst"
	eq "$(pyrepr "'dst/x'")" "b'changed\\n'" "python sees the update"
	eq "$(pyrepr "'dst/a/b/y'")" "'MISSING'" "rsync --delete"
	eq "$(ls -a "$M/dst")" "$(printf '.\n..\na\nx')" "no temporary file left"
	# -X: dcachefs's own attributes are no obstacle
	rsync -aX src/ "$M/dstx/" 2>err || die "rsync -aX: $(cat err)"
	[ ! -s err ] || die "rsync -aX complained: $(cat err)"
	ok diff -r src "$M/dstx"
	echo again >>src/x
	rsync -aX src/ "$M/dstx/" 2>err || die "rsync -aX update: $(cat err)"
	[ ! -s err ] || die "rsync -aX update complained: $(cat err)"
	ok cmp src/x "$M/dstx/x"
	eq "$(getfattr --absolute-names --only-values -n user.dcache.key \
		"$M/dstx/x")" dstx/x "attributes still there"
}

t_xattr() {
	py "c.set('k', 'v', expire=100, tag='web'); c['plain'] = 12"
	eq "$(getfattr --absolute-names --only-values -n user.dcache.type "$M/k")" str "type"
	eq "$(getfattr --absolute-names --only-values -n user.dcache.tag "$M/k")" web "tag"
	eq "$(getfattr --absolute-names --only-values -n user.dcache.key "$M/k")" k "key"
	eq "$(getfattr --absolute-names --only-values -n user.dcache.type "$M/plain")" int "int"
	getfattr --absolute-names -d -m - "$M/k" >attrs || die "getfattr -d"
	for a in expire_time expire tag store_time access_time access_count \
		key type; do
		grep -q "^user.dcache.$a=" attrs || die "listxattr lacks $a"
	done
	[ "$(getfattr --absolute-names -d -m - "$M/plain" | grep -c expire)" = 0 ] ||
		die "no expiry listed for a key without one"
	left=$(getfattr --absolute-names --only-values -n user.dcache.expire "$M/k")
	"$PY" -c "import sys; assert 90 < float(sys.argv[1]) <= 100" "$left" ||
		die "expire left: $left"
	ok setfattr -n user.dcache.expire -v 1h "$M/k"
	eq "$(py "import time; print(round(c.get('k', expire_time=True)[1] - time.time()))")" \
		3600 "touch through user.dcache.expire"
	ok setfattr -n user.dcache.expire_time -v 4102444800 "$M/k"
	eq "$(py "print(round(c.get('k', expire_time=True)[1], 3))")" \
		4102444800.0 "absolute expire_time"
	ok setfattr -x user.dcache.expire_time "$M/k"
	eq "$(py "print(c.get('k', expire_time=True)[1])")" None \
		"removing expire_time clears the expiry"
	st="SELECT store_time FROM Cache WHERE key = 'k'"
	stored=$(py "print(repr(c._sql(\"$st\").fetchone()[0]))")
	ok setfattr -n user.dcache.tag -v api "$M/k"
	eq "$(py "print(c.get('k', tag=True))")" "('v', 'api')" "tag set"
	ok setfattr -x user.dcache.tag "$M/k"
	eq "$(py "print(c.get('k', tag=True))")" "('v', None)" "tag removed"
	eq "$(py "print(repr(c._sql(\"$st\").fetchone()[0]))")" "$stored" \
		"tag and expiry changes do not rewrite the value"
	ok setfattr -n user.dcache.type -v int "$M/plain"
	printf '17\n' >"$M/num"
	ok setfattr -n user.dcache.type -v int "$M/num"
	eq "$(pyrepr "'num'")" 17 "convert bytes to int"
	ok setfattr -n user.dcache.type -v str "$M/k"
	eq "$(errno_of "os.setxattr(m + '/k', 'user.dcache.expire', b'soon')")" \
		EINVAL "malformed expire"
	eq "$(errno_of "os.setxattr(m + '/k', 'user.dcache.type', b'list')")" \
		EINVAL "unknown type"
	eq "$(errno_of "os.setxattr(m + '/k', 'user.dcache.type', b'int')")" \
		EINVAL "text that is no int"
	eq "$(errno_of "os.getxattr(m + '/k', 'user.dcache.nosuch')")" \
		ENODATA "unknown name"
	eq "$(errno_of "os.getxattr(m + '/k', 'security.capability')")" \
		ENODATA "security.capability"
	eq "$(errno_of "os.setxattr(m + '/k', 'user.mime', b'x')")" \
		ENOTSUP "foreign namespace (EOPNOTSUPP)"
	eq "$(errno_of "os.setxattr(m + '/k', 'user.dcache.store_time', b'1')")" \
		EPERM "read-only attribute"
	eq "$(pyrepr "'k'")" "'v'" "value untouched by bad writes"
}

t_errnos() {
	py "c['k'] = 'v'; c['d/x'] = 'y'"
	long=$(printf 'n%.0s' $(seq 300))
	eq "$(errno_of "open(m + '/$long', 'w')")" ENAMETOOLONG "long name"
	eq "$(errno_of "open(m + '/.ctl/stats', 'w')")" EACCES \
		"write to read-only control file"
	eq "$(errno_of "os.unlink(m + '/.ctl/stats')")" EPERM "rm of .ctl"
	eq "$(errno_of "os.rmdir(m + '/.ctl')")" EPERM "rmdir .ctl"
	eq "$(errno_of "os.rmdir(m + '/d')")" ENOTEMPTY "rmdir non-empty"
	eq "$(errno_of "os.open(m + '/k', os.O_CREAT | os.O_EXCL | os.O_WRONLY)")" \
		EEXIST "O_EXCL on an existing key"
	eq "$(errno_of "os.close(os.open(m + '/new', os.O_CREAT | os.O_EXCL | os.O_WRONLY))")" \
		OK "O_EXCL on a new key"
	eq "$(pyrepr "'new'")" "b''" "created empty"
	eq "$(errno_of "os.mkdir(m + '/k')")" EEXIST "mkdir over a key"
	eq "$(errno_of "open(m + '/.keys/int/abc', 'w')")" EINVAL \
		"create a name that is no key"
	ok mkdir "$M/empty"
	[ -d "$M/empty" ] || die "mkdir"
	ok mkdir -p "$M/empty/sub/deeper"
	eq "$(ls "$M/empty")" sub "nested mkdir"
	ok rmdir "$M/empty/sub/deeper" "$M/empty/sub" "$M/empty"
	[ ! -e "$M/empty" ] || die "rmdir"
	eq "$(errno_of "os.rename(m + '/k', m + '/d')")" EISDIR \
		"rename a file over a directory"
}

t_ctl() {
	py "c.set('a', 1, tag='t'); c.set('b', 2, tag='t'); c['c'] = 3
c.set('old', 'x', expire=0.5)"
	grep -q '^count 4$' "$M/.ctl/stats" || die "stats count: $(cat "$M/.ctl/stats")"
	grep -q '^size_limit 1073741824$' "$M/.ctl/stats" || die "stats size_limit"
	grep -q '^eviction_policy least-recently-stored$' "$M/.ctl/stats" ||
		die "stats eviction_policy"
	eq "$(cat "$M/.ctl/settings/cull_limit")" 10 "read a setting"
	echo 20 >"$M/.ctl/settings/cull_limit" || die "write a setting"
	eq "$(cat "$M/.ctl/settings/cull_limit")" 20 "setting changed"
	eq "$(py "print(c.reset('cull_limit'))")" 20 "python sees the setting"
	echo 512M >"$M/.ctl/settings/size_limit" || die "human size"
	eq "$(py "print(c.reset('size_limit'))")" 536870912 "size_limit=512M"
	eq "$(errno_of "wr(m + '/.ctl/settings/cull_limit', b'lots')")" \
		EINVAL "nonsense setting"
	eq "$(errno_of "wr(m + '/.ctl/settings/eviction_policy', b'random')")" \
		EINVAL "unknown policy"
	eq "$(cat "$M/.ctl/settings/cull_limit")" 20 "untouched by nonsense"
	[ ! -s "$M/.ctl/cull" ] || die "action file has a result before use"
	echo "a 5" >"$M/.ctl/incr" || die "incr"
	eq "$(cat "$M/.ctl/incr")" 6 "incr result"
	echo "c" >"$M/.ctl/decr" || die "decr"
	eq "$(pyrepr "'c'")" 2 "decr by one"
	echo "fresh 3" >"$M/.ctl/incr" || die "incr of a missing key"
	eq "$(pyrepr "'fresh'")" 3 "incr of a missing key starts at 0"
	eq "$(errno_of "wr(m + '/.ctl/clear', b'yes')")" EINVAL \
		"clear is guarded"
	eq "$(py "print(len(c))")" 5 "nothing cleared"
	echo t >"$M/.ctl/evict" || die "evict"
	eq "$(cat "$M/.ctl/evict")" "removed 2" "evict result"
	sleep 0.6
	echo >"$M/.ctl/expire" || die "expire"
	eq "$(cat "$M/.ctl/expire")" "removed 1" "expire result"
	echo >"$M/.ctl/cull" || die "cull"
	echo >"$M/.ctl/check" || die "check"
	eq "$(cat "$M/.ctl/check")" "warnings 0" "check result"
	echo clear >"$M/.ctl/clear" || die "clear"
	eq "$(py "print(len(c))")" 0 "cleared"
	eq "$(errno_of "wr(m + '/.ctl/cull', b'now please')")" \
		EINVAL "nonsense action"
}

t_df() {
	out=$(df -B1 --output=size "$M" | tail -1 | tr -d ' ')
	eq "$out" 104857600 "df total is size_limit"
	eq "$(stat -f -c %l "$M")" 255 "name length limit"
}

t_expiry() {
	echo soon >"$M/k"
	eq "$(py "print(c.get('k', expire_time=True)[1] is not None)")" True \
		"default_expire applies"
	sleep 2.2
	[ ! -e "$M/k" ] || die "expired key still visible"
	eq "$(errno_of "open(m + '/k')")" ENOENT "expired is ENOENT"
}

t_reader_keeps_value() {
	head -c 100000 /dev/urandom >v1
	head -c 100000 /dev/urandom >v2
	ok cp v1 "$M/k"
	# a reader opens, the key is replaced, the reader keeps its bytes
	"$PY" - "$M/k" v1 v2 <<'EOF' || die "reader saw the new value"
import sys, shutil
with open(sys.argv[1], 'rb') as r:
    first = r.read(10)
    shutil.copyfile(sys.argv[3], sys.argv[1])
    rest = r.read()
assert first + rest == open(sys.argv[2], 'rb').read()
EOF
	ok cmp v2 "$M/k"
}

# A reader that opened a large value keeps reading exactly those bytes
# while the key is replaced by a shorter and by a longer value, through
# the mount and by Python, and the kernel meets the new value (which a
# fresh cat reads) under a new inode.  Long entry and attribute timeouts:
# only invalidations make the new value visible.
t_replace_under_reader() {
	local how len key pid
	head -c 1048576 /dev/urandom >old
	for how in mount python; do
		for len in 1 2000000; do
			key=$how-$len
			head -c "$len" /dev/urandom >"new-$key"
			ok cp old "$M/$key"
			mkfifo "go-$key"
			"$PY" - "$M/$key" old "go-$key" "ready-$key" <<'EOF2' &
import os, sys
with open(sys.argv[1], 'rb') as r:
    first = r.read(65536)
    open(sys.argv[4], 'w').close()
    with open(sys.argv[3]) as go:
        go.read()
    rest = r.read()
    size = os.fstat(r.fileno()).st_size
old = open(sys.argv[2], 'rb').read()
if first + rest != old or size != len(old):
    sys.exit('reader got %d bytes (st_size %d), not the old %d'
             % (len(first + rest), size, len(old)))
EOF2
			pid=$!
			within 10 test -e "ready-$key" || die "$key: reader not ready"
			if [ "$how" = mount ]; then
				cp "new-$key" "$M/$key" || die "$key: cp"
			else
				py "c[sys.argv[2]] = open(sys.argv[3], 'rb').read()" \
					"$key" "new-$key"
			fi
			sleep 2.5 # past the coherence bound
			ok cmp "new-$key" "$M/$key"
			eq "$(stat -c %s "$M/$key")" "$len" "$key: new size"
			echo go >"go-$key"
			wait "$pid" || die "$key: the reader lost its value"
			ok cmp "new-$key" "$M/$key"
		done
	done
	# a short value written through the mount by the shell (O_TRUNC)
	ok cp old "$M/sh"
	exec 3<"$M/sh"
	head -c 100 <&3 >/dev/null
	printf x >"$M/sh" || die "printf"
	eq "$(cat "$M/sh")" x "the new short value"
	eq "$(cat <&3 | wc -c)" $((1048576 - 100)) "the reader's rest"
	exec 3<&-
	# truncate(2) by name, without an open file
	ok cp old "$M/tr"
	exec 3<"$M/tr"
	head -c 100 <&3 >/dev/null
	"$PY" -c "import os, sys; os.truncate(sys.argv[1], 10)" "$M/tr" ||
		die "truncate(2)"
	eq "$(stat -c %s "$M/tr")" 10 "truncated by name"
	eq "$(cat <&3 | wc -c)" $((1048576 - 100)) "the reader's rest (truncate)"
	exec 3<&-
}

# within SECONDS CMD...: CMD succeeds within SECONDS (polled every 50 ms).
within() {
	local limit=$1 t0 now
	shift
	t0=$(date +%s%N)
	while :; do
		"$@" 2>/dev/null && return 0
		now=$(date +%s%N)
		[ $(((now - t0) / 1000000)) -lt $((${limit%.*} * 1000)) ] ||
			return 1
		sleep 0.05
	done
}

content_is() { [ "$(cat "$1")" == "$2" ]; }
size_is() { [ "$(stat -c %s "$1")" == "$2" ]; }
absent() { [ ! -e "$1" ]; }

# Mounted with -o coherence=1 and hour-long entry/attr timeouts: what
# others change must show within the bound (1 s, plus one scan; 3 s
# allowed) because it is invalidated, not because a timeout ran out.
t_coherence() {
	local i
	py "c['k'] = 'aaaa'; c['big'] = 'x' * 100000; c['d/one'] = '1'
c['shadow'] = 'file'; c.set('ttl', 'v', expire=3600)"
	eq "$(cat "$M/k")" aaaa "first read"
	eq "$(head -c 3 "$M/big")" xxx "first read of a value file"
	eq "$(cat "$M/.keys/str/k")" aaaa "first read of the .keys name"
	eq "$(cat "$M/shadow")" file "a file"
	ls "$M/d" >/dev/null
	[ ! -e "$M/later" ] || die "later exists"
	# replaced with the same size: cached pages must go
	py "c['k'] = 'bbbb'"
	within 3 content_is "$M/k" bbbb || die "outside replace (same size)"
	within 3 content_is "$M/.keys/str/k" bbbb || die "replace, .keys name"
	py "c['k'] = 'a longer value'"
	within 3 size_is "$M/k" 14 || die "outside replace (new size)"
	eq "$(cat "$M/k")" "a longer value" "new size, new content"
	py "c['big'] = 'y' * 100000"
	within 3 content_is "$M/big" "$(printf 'y%.0s' $(seq 100000))" ||
		die "value file replaced"
	# a new key where a negative entry was cached
	py "c['later'] = 'here'"
	within 3 content_is "$M/later" here || die "outside new key"
	py "del c['later']"
	within 3 absent "$M/later" || die "outside delete"
	# a file that becomes a directory, a directory that goes
	py "c['shadow/x'] = 'inside'"
	within 3 test -d "$M/shadow" || die "file turned directory"
	eq "$(cat "$M/shadow/x")" inside "key below the new directory"
	py "del c['d/one']"
	within 3 absent "$M/d" || die "directory vanished"
	# a shorter expiry set from outside
	py "c.touch('ttl', 1)"
	sleep 1
	within 3 absent "$M/ttl" || die "expiry shortened outside"
	# many unchanged reads stay right while other keys change
	py "c['hot'] = 'stable'"
	within 3 content_is "$M/hot" stable || die "hot key"
	for i in $(seq 50); do
		[ "$(cat "$M/hot")" = stable ] || die "hot key read $i"
		[ $((i % 10)) != 0 ] || py "c['churn'] = $i"
	done
	# changes through the mount by another name, seen at once
	echo via-mount >"$M/.keys/str/hot"
	eq "$(cat "$M/hot")" via-mount "write by the .keys name, plain name"
	py "c.set('t1', 'a', tag='grp'); c.set('t2', 'b', tag='grp')"
	within 3 content_is "$M/t1" a || die "t1"
	eq "$(cat "$M/t2")" b "t2"
	echo grp >"$M/.ctl/evict"
	[ ! -e "$M/t1" ] || die ".ctl/evict: still visible"
	[ ! -e "$M/t2" ] || die ".ctl/evict: t2 still visible"
	printf '17\n' >"$M/num"
	eq "$(stat -c %s "$M/num")" 3 "written"
	ok setfattr -n user.dcache.type -v int "$M/num"
	eq "$(stat -c %s "$M/num")" 2 "size after a type change"
	eq "$(cat "$M/num")" 17 "content after a type change"
	ok setfattr -n user.dcache.expire -v 1 "$M/num"
	sleep 1.1
	[ ! -e "$M/num" ] || die "expiry set by xattr"
	echo clear >"$M/.ctl/clear"
	[ ! -e "$M/hot" ] || die ".ctl/clear: still visible"
	eq "$(ls "$M")" "" ".ctl/clear: empty listing"
}

# The same with many known inodes, which the thread checks in one pass
# over the cache rather than one lookup each.
t_coherence_many() {
	py "
for i in range(300):
    c['many/k%03d' % i] = 'v%d' % i
c['gone/a'] = 'x'"
	ls -l "$M/many" >/dev/null || die "ls -l"
	eq "$(cat "$M/many/k001" "$M/gone/a")" v1x "first reads"
	py "c['many/k001'] = 'changed'; del c['many/k002']
c['many/k003/sub'] = 'below'; del c['gone/a']; c['many/k999'] = 'new'"
	within 3 content_is "$M/many/k001" changed || die "replaced"
	within 3 absent "$M/many/k002" || die "deleted"
	within 3 test -d "$M/many/k003" || die "file turned directory"
	within 3 absent "$M/gone" || die "directory vanished"
	eq "$(cat "$M/many/k999")" new "new key"
	eq "$(cat "$M/many/k299")" v299 "unchanged key"
	grep -q '^coherence_one_pass_scans [1-9]' "$M/.ctl/stats" ||
		die "no one-pass scan: $(grep coherence "$M/.ctl/stats")"
	[ "$(awk '$1 == "known_inodes" { print $2 }' "$M/.ctl/stats")" -ge 300 ] ||
		die "known_inodes: $(grep known_inodes "$M/.ctl/stats")"
}

t_strict() {
	py "c['k'] = 'aaaa'"
	eq "$(cat "$M/k")" aaaa "first read"
	[ ! -e "$M/new" ] || die "new exists"
	py "c['k'] = 'bbbb'; c['new'] = 'x'"
	eq "$(cat "$M/k")" bbbb "strict: visible at once"
	eq "$(cat "$M/new")" x "strict: new key visible at once"
	py "del c['new']; c['k'] = 'longer'"
	[ ! -e "$M/new" ] || die "strict: delete visible at once"
	eq "$(stat -c %s "$M/k")" 6 "strict: new size at once"
	grep -q '^coherence' "$M/.ctl/stats" && die "a coherence thread runs"
	return 0
}

t_parallel() {
	local i j
	head -c 50000 /dev/urandom >big
	for i in 1 2 3 4; do
		(
			for j in $(seq 25); do
				echo "$i-$j" >"$M/p$i-$j" || exit 1
				cp big "$M/b$i-$j" || exit 1
				cat "$M/p$i-$j" >/dev/null || exit 1
			done
		) &
	done
	for i in 1 2 3 4; do
		wait %$i || die "writer $i failed"
	done
	eq "$(ls "$M" | wc -l)" 200 "all files"
	eq "$(py "print(sum(1 for k in c if c[k] == ('%s\n' % k[1:]).encode()))")" \
		100 "small values intact"
	for i in 1 4; do
		ok cmp big "$M/b$i-25"
	done
}

# Several processes read and write one key at once: two write through the
# mount (a temporary file renamed over the key, as editors and rsync do),
# one is Python setting the key directly, two read through the mount.
# Every read must be one whole value, never a mix or a short one.
t_concurrent() {
	local pids=() p i
	py "c['shared'] = b'P' * 60000"
	for p in A B; do
		head -c 60000 /dev/zero | tr '\0' "$p" >"val$p"
	done
	for p in A B; do
		(
			for i in $(seq 15); do
				cp "val$p" "$M/.tmp$p" || exit 1
				mv "$M/.tmp$p" "$M/shared" || exit 1
			done
		) &
		pids+=($!)
	done
	py "import time
for i in range(30):
    c['shared'] = (b'P' if i % 2 else b'Q') * 60000
    time.sleep(0.01)" &
	pids+=($!)
	for i in 1 2; do
		"$PY" - "$M/shared" <<'EOF2' &
import errno, sys
# An open racing a replace may get ESTALE twice (the kernel retries once,
# docs/fs.md): the program retries; what it reads must never be torn.
stale = 0
for n in range(150):
    while True:
        try:
            f = open(sys.argv[1], 'rb')
            break
        except OSError as e:
            if e.errno != errno.ESTALE or stale >= 50:
                raise
            stale += 1
    with f:
        data = f.read()
    if len(data) != 60000 or data != data[:1] * 60000 or data[:1] not in b'ABPQ':
        sys.exit('read %d: %d bytes, %r...' % (n, len(data), data[:8]))
EOF2
		pids+=($!)
	done
	for p in "${pids[@]}"; do
		wait "$p" || die "a reader or writer failed"
	done
	# afterwards the mount and Python agree (within the coherence bound)
	final=$(py "print(c['shared'][:1].decode())")
	within 3 content_is "$M/shared" "$(head -c 60000 /dev/zero | tr '\0' "$final")" ||
		die "mount and Python disagree at the end"
	eq "$(ls -a "$M" | tr '\n' ' ')" ". .. shared " "no temporary file left"
}

t_fanout() {
	# -o size_limit is the total, as FanoutCache(size_limit=) takes it
	eq "$(df -B1 --output=size "$M" | tail -1 | tr -d ' ')" 104857600 \
		"df of a FanoutCache"
	ok cp /etc/hostname "$M/h"
	printf 'x' >"$M/d/y" 2>/dev/null && die "created in a missing dir"
	ok mkdir "$M/d"
	printf 'x' >"$M/d/y" || die "write into a new dir"
	eq "$("$PY" -c "import diskcache, sys
c = diskcache.FanoutCache(sys.argv[1], shards=4)
print(repr(c['d/y']), len(c))" "$C")" "b'x' 2" "python FanoutCache reads"
	[ -d "$C/003" ] || die "no shard directories"
	# renames between shards move the value file along
	head -c 100000 /dev/urandom >bigf
	ok cp bigf "$M/r0"
	for i in 1 2 3 4 5 6; do
		ok mv "$M/r$((i - 1))" "$M/r$i"
		ok cmp bigf "$M/r$i"
	done
	[ ! -e "$M/r0" ] || die "renamed key still there"
	eq "$("$PY" -c "import diskcache, sys
c = diskcache.FanoutCache(sys.argv[1], shards=4)
print(len(c[sys.argv[2]]), 'r0' in c, c.check())" "$C" r6)" "100000 False []" \
		"python reads the renamed key; check() is clean"
}

t_readonly() {
	eq "$(cat "$M/k")" v "read on a read-only mount"
	eq "$(errno_of "open(m + '/k', 'w')")" EROFS "write"
	eq "$(errno_of "os.unlink(m + '/k')")" EROFS "unlink"
	eq "$(errno_of "os.setxattr(m + '/k', 'user.dcache.tag', b'x')")" EROFS \
		"setxattr"
}

t_sigterm() {
	echo data >"$M/k"
	# a file still open for writing: what was written is kept
	exec 3>"$M/open"
	echo partial >&3
	head -c 100000 /dev/zero | tr '\0' L >big
	exec 4>"$M/openbig"
	cat big >&4
	kill -TERM "$DPID"
	for i in $(seq 50); do
		kill -0 "$DPID" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$DPID" 2>/dev/null && die "daemon still running"
	# (run_test checks the exit status: 0)
	is_mounted "$M" && die "still mounted after SIGTERM"
	eq "$(pyrepr "'k'")" "b'data\\n'" "data survived"
	exec 3>&- 4>&-
	eq "$(pyrepr "'open'")" "b'partial\\n'" "a file open at SIGTERM"
	eq "$(py "sys.stdout.buffer.write(c['openbig'])" | cmp - big && echo same)" \
		same "a large file open at SIGTERM"
	grep -q "closed 2 file(s) left open" "$DLOG" || die "not logged"
}

# Runs without a prepared mount: the daemon's own start-up paths.
t_startup() {
	local m2=$PWD/m2 out rc
	mkdir -p "$m2"
	# background mode: exit 0 only once the mount is live
	"$DCACHEFS" "$C" "$m2" 2>err || die "background start: $(cat err)"
	is_mounted "$m2" || die "exit 0 but not mounted"
	eq "$(ls -a "$m2" | tr '\n' ' ')" ". .. " "empty cache"
	fusermount3 -u "$m2" || die "unmount"
	# missing mount point: non-zero with one line
	out=$("$DCACHEFS" "$C" "$PWD/nowhere" 2>&1)
	rc=$?
	[ "$rc" != 0 ] || die "missing mount point accepted"
	eq "$(echo "$out" | wc -l)" 1 "one-line reason: $out"
	echo "$out" | grep -q nowhere || die "reason names the path: $out"
	# a mount point that is busy (already mounted)
	mount_fs "$C" "$m2" || die "mount"
	out=$("$DCACHEFS" "$C" "$m2" 2>&1) && die "busy mount point accepted"
	echo "$out" | grep -q busy || die "busy: $out"
	# a stale mount (the daemon died)
	kill -KILL "$DPID"
	while kill -0 "$DPID" 2>/dev/null; do sleep 0.05; done
	out=$("$DCACHEFS" "$C" "$m2" 2>&1) && die "stale mount accepted"
	echo "$out" | grep -q stale || die "stale: $out"
	fusermount3 -u "$m2" 2>/dev/null || umount -l "$m2"
	# a bad option value
	out=$("$DCACHEFS" -o size_limit=lots "$C" "$m2" 2>&1) &&
		die "bad option accepted"
	echo "$out" | grep -q size_limit || die "bad option: $out"
	# cache directory problems, seen by an unprivileged user (root
	# ignores modes)
	if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
		chmod 711 "$work" "$work/startup" "$PWD"
		mkdir -p pub/m pub/locked pub/ro
		chmod 777 pub/m
		chmod 555 pub/locked pub/ro
		out=$(setpriv --reuid=65534 --regid=65534 --clear-groups \
			"$DCACHEFS" "$PWD/pub/locked/c" "$PWD/pub/m" 2>&1) &&
			die "uncreatable cache directory accepted"
		echo "$out" | grep -q 'cannot create cache directory' ||
			die "uncreatable: $out"
		out=$(setpriv --reuid=65534 --regid=65534 --clear-groups \
			"$DCACHEFS" "$PWD/pub/ro" "$PWD/pub/m" 2>&1) &&
			die "unwritable cache directory accepted"
		echo "$out" | grep -q 'not writable' || die "unwritable: $out"
		eq "$(echo "$out" | wc -l)" 1 "one-line reason"
	else
		echo "SKIP: unwritable cache directory (needs root and setpriv)"
	fi
	"$DCACHEFS" -V | grep -q '^dcachefs ' || die "-V"
	"$DCACHEFS" -V | grep -q SQLite || die "-V names SQLite"
	"$DCACHEFS" -h | grep -q default_expire || die "-h"
}

# ---------------------------------------------------------------------

# run_test NAME [dcachefs options...]
run_test() {
	local name=$1 dir rc drc
	shift
	if [ -n "$only" ] && ! grep -qw -- "$name" <<<"$only"; then
		return
	fi
	dir=$work/$name
	mkdir -p "$dir/scratch"
	DLOG=$dir/daemon.log
	C=$dir/cache
	M=$dir/mnt
	if [ "$name" = startup ]; then
		(cd "$dir/scratch" && "t_$name") >"$dir/log" 2>&1
		rc=$?
	elif ! mount_fs "$C" "$M" "$@"; then
		echo "  FAIL: mount failed" >"$dir/log"
		rc=1
	else
		(cd "$dir/scratch" && "t_$name") >"$dir/log" 2>&1
		rc=$?
		unmount_fs "$M" "$DPID"
		drc=$?
		if [ "$drc" != 0 ]; then
			echo "  FAIL: dcachefs exited with status $drc" >>"$dir/log"
			rc=1
		fi
	fi
	if [ "$rc" = 0 ]; then
		passed=$((passed + 1))
		echo "ok   $name"
	else
		failed=$((failed + 1))
		echo "FAIL $name"
		sed 's/^/     /' "$dir/log"
		if [ -s "$DLOG" ]; then
			echo "     daemon messages:"
			sed 's/^/       /' "$DLOG" | head -60
		fi
	fi
}

only="${*:-}"
run_test cat_values
run_test keys_dir
run_test ls_find
run_test cp_in
run_test cp_a
run_test tar_diff
run_test mv_rm
run_test dd_truncate
run_test sed_i
run_test rsync
run_test xattr
run_test errnos
run_test ctl
run_test df -o size_limit=100M
run_test expiry -o default_expire=1 -o entry_timeout=0.2 -o attr_timeout=0.2 -o negative_timeout=0
run_test reader_keeps_value
run_test replace_under_reader -o coherence=1,entry_timeout=1h,attr_timeout=1h
run_test coherence -o coherence=1,entry_timeout=1h,attr_timeout=1h
run_test coherence_many -o coherence=1,entry_timeout=1h,attr_timeout=1h
run_test strict -o strict
run_test parallel
run_test concurrent
run_test fanout -o shards=4,size_limit=100M
if [ -z "$only" ] || grep -qw readonly <<<"$only"; then
	"$PY" -c "import diskcache, sys; diskcache.Cache(sys.argv[1])['k'] = 'v'" \
		"$work/readonly/cache"
fi
run_test readonly -o ro
run_test sigterm
run_test startup

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
