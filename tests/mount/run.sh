#!/usr/bin/env bash
# run.sh - dcachefs as users mount it: fstab, mount -t, the helper, systemd
# SPDX-License-Identifier: MIT
#
# Installs into a mktemp -d DESTDIR and drives the installed files:
#  - an fstab line in a temporary file (mount -T FILE MOUNTPOINT) and
#    mount -t fuse.dcachefs, first through Debian's /sbin/mount.fuse3
#    (which runs "dcachefs" from PATH), then through our own
#    /sbin/mount.fuse.dcachefs.  mount(8) looks for helpers only in
#    /sbin, /sbin/fs.d and /sbin/fs (not PATH), so for the second way the
#    test runs in a private mount namespace (unshare -m) where an overlay
#    adds the DESTDIR's sbin to /usr/sbin; nothing outside it changes;
#  - systemd-analyze verify of every unit;
#  - the sd_notify protocol (READY=1, STOPPING=1) with a Python listener
#    on a temporary NOTIFY_SOCKET, running the unit's own ExecStart line;
#  - SIGHUP reopening -o log=FILE, SIGTERM/SIGINT unmounting cleanly,
#    logs in the background, and a stale mount explained at start.
# A trap unmounts everything under the temporary directory and kills only
# dcachefs processes whose command line names it.
#
#   BUILD=build tests/mount/run.sh [TEST...]
set -u

top=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$top/$BUILD ;; esac
PY=/usr/bin/python3
MAKE=${MAKE:-make}

if [ ! -e /dev/fuse ]; then
	echo "SKIP: /dev/fuse is missing: the mount tests did NOT run"
	exit 0
fi
if [ "$(id -u)" != 0 ]; then
	echo "SKIP: mount(8) tests need root: they did NOT run"
	exit 0
fi

work=$(mktemp -d /tmp/dcachefs-mount.XXXXXX)
D=$work/dest
BIN=$D/usr/local/bin
passed=0
failed=0

is_mounted() {
	awk -v m="$1" '$2 == m { found = 1 } END { exit !found }' /proc/mounts
}

# PIDs of the daemons this script started: their arguments name $work.
our_pids() {
	local p
	for p in /proc/[0-9]*; do
		tr '\0' ' ' 2>/dev/null <"$p/cmdline" | grep -q "$work/" &&
			basename "$p"
	done
}

cleanup() {
	local m p
	for m in $(awk -v w="$work/" 'index($2, w) == 1 { print $2 }' \
		/proc/mounts); do
		umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
	done
	for p in $(our_pids); do
		[ "$p" != $$ ] && kill "$p" 2>/dev/null
	done
	wait 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if ! "$MAKE" -s --no-print-directory -C "$top" BUILD="$BUILD" install \
	DESTDIR="$D" >"$work/install.log" 2>&1; then
	cat "$work/install.log"
	echo "0 passed, 1 failed"
	exit 1
fi

# ---------------------------------------------------------------------
# Assertions and helpers (a failing assertion ends the test's subshell)
# ---------------------------------------------------------------------

die() {
	echo "  FAIL: $*"
	exit 1
}

eq() {
	[ "$1" == "$2" ] || die "$3: expected [$2], got [$1]"
}

# wait_for COMMAND...: up to 10 s for COMMAND to succeed.
wait_for() {
	local i
	for i in $(seq 100); do
		"$@" && return 0
		sleep 0.1
	done
	return 1
}

not_mounted() {
	! is_mounted "$1"
}

no_daemon() {
	[ -z "$(our_pids | grep -vx "$$")" ]
}

# py CODE: Python with diskcache imported and c the cache $C.
py() {
	"$PY" -c "import diskcache, sys
c = diskcache.Cache(sys.argv[1])
$1" "$C"
}

# use_mount: the mount at $M reads and writes, shared with Python.
use_mount() {
	is_mounted "$M" || die "$M is not mounted"
	eq "$(awk -v m="$M" '$2 == m { print $3 }' /proc/mounts)" \
		fuse.dcachefs "type in /proc/mounts"
	py "c['greeting'] = 'hello'"
	eq "$(cat "$M/greeting")" hello "a key written by Python"
	printf 'from the mount' >"$M/written" || die "write"
	eq "$(py "print(c['written'].decode())")" "from the mount" \
		"Python reads a value written through the mount"
}

# unmount: umount(8), then the daemon must be gone.
unmount() {
	umount "$M" || die "umount $M"
	wait_for no_daemon || die "the daemon did not exit after umount"
}

fstab_line() {
	printf '%s %s fuse.dcachefs %s 0 0\n' "$C" "$M" "$1" >"$T/fstab"
}

OPTS=allow_other,size_limit=2G,nofail,_netdev,noauto,x-systemd.automount
OPTS=$OPTS,x-systemd.mount-timeout=30,comment=test,defaults,noatime

# ---------------------------------------------------------------------
# Tests: t_NAME runs in a subshell with T (scratch dir), C (cache dir)
# and M (mount point) set.
# ---------------------------------------------------------------------

# ns_run MODE FUNCTION: run FUNCTION in a private mount namespace that
# looks like a real installation: the DESTDIR's bin overlaid on
# /usr/local/bin and, for MODE "helper", its sbin on /usr/sbin (/sbin).
# Needed because mount(8) looks for helpers only in /sbin, /sbin/fs.d and
# /sbin/fs, and runs them with no PATH at all: the helper and
# mount.fuse3's /bin/sh find dcachefs only in the standard directories.
ns_run() {
	local rc
	NSMODE=$1
	shift
	export T C M D BIN PY OPTS work NSMODE
	export -f "$@" is_mounted die eq wait_for py use_mount no_daemon \
		our_pids unmount
	unshare -m --propagation private bash -c '
		mount -t overlay overlay \
			-o lowerdir="$D/usr/local/bin:/usr/local/bin" \
			/usr/local/bin || exit 97
		if [ "$0" = helper ]; then
			mount -t overlay overlay \
				-o lowerdir="$D/sbin:/usr/sbin" /usr/sbin || exit 97
			[ -x /sbin/mount.fuse.dcachefs ] || exit 98
		elif [ -e /sbin/mount.fuse.dcachefs ]; then
			echo "note: /sbin/mount.fuse.dcachefs exists on this" \
				"machine, so mount(8) used it, not mount.fuse3"
		fi
		trap "umount \"\$M\" 2>/dev/null" EXIT
		"$@"' "$NSMODE" "$@"
	rc=$?
	[ "$rc" = 97 ] &&
		echo "SKIP: no overlayfs in a private mount namespace here"
	[ "$rc" = 0 ] || [ "$rc" = 97 ]
}

fstab_mount() {
	local out
	fstab_line "$OPTS"
	out=$(mount -v -T "$T/fstab" "$M" 2>&1) || die "mount -T fstab: $out"
	if [ "$NSMODE" = helper ]; then
		# the helper says what it ran (-v), with mount(8)'s options gone
		eq "$out" "mount.fuse.dcachefs: /usr/local/bin/dcachefs -o \
rw,noatime,allow_other,size_limit=2G $C $M" "the helper's command"
	fi
	use_mount
	eq "$(cat "$M/.ctl/settings/size_limit")" 2147483648 \
		"size_limit=2G from fstab"
	unmount
}

mount_t() {
	mount -t fuse.dcachefs "$C" "$M" -o "$OPTS" ||
		die "mount -t fuse.dcachefs"
	use_mount
	awk -v m="$M" '$2 == m { print $4 }' /proc/mounts | grep -q noatime ||
		die "noatime did not reach the kernel"
	unmount
}

# Without our helper, Debian's /sbin/mount.fuse3 mounts fuse.TYPE by
# running TYPE; it drops nofail, _netdev, noauto, users and the like,
# dcachefs drops the rest.
t_fstab_via_mount_fuse3() {
	ns_run fuse3 fstab_mount fstab_line
}

t_mount_t_via_mount_fuse3() {
	ns_run fuse3 mount_t
}

t_fstab_via_helper() {
	ns_run helper fstab_mount fstab_line
}

t_mount_t_via_helper() {
	ns_run helper mount_t
}

t_helper_options() {
	local h=$D/sbin/mount.fuse.dcachefs out
	out=$(PATH=$BIN:$PATH "$h" "$C" "$M" -fnsv -o "$OPTS,ro" 2>&1) ||
		die "helper -f failed: $out"
	case $out in
	*"-o allow_other,size_limit=2G,noatime,ro $C $M") ;;
	*) die "helper command: $out" ;;
	esac
	is_mounted "$M" && die "-f (fake) mounted"
	"$h" "$C" 2>/dev/null && die "a missing mount point was accepted"
	return 0
}

t_dcachefs_ignores_mount_options() {
	"$BIN/dcachefs" -o "$OPTS,nosuid,nodev,noexec,relatime,users,user" \
		"$C" "$M" || die "dcachefs refused mount(8)'s options"
	use_mount
	unmount
}

t_systemd_verify() {
	local u out
	command -v systemd-analyze >/dev/null ||
		die "systemd-analyze missing (make deps installs systemd)"
	eq "$(systemd-escape --path /mnt/cache)" mnt-cache "instance name"
	mkdir -p "$T/units"
	# The installed unit, its ExecStart pointed into the DESTDIR (verify
	# wants the binary to exist), as the instance for /mnt/cache.
	sed "s|=/usr/local/bin/|=$BIN/|" \
		"$D/usr/local/lib/systemd/system/dcachefs@.service" \
		>"$T/units/dcachefs@mnt-cache.service"
	cp "$D"/usr/local/share/doc/dcachefs/examples/mnt-cache.* "$T/units/"
	for u in "$T"/units/*; do
		out=$(systemd-analyze verify --man=no "$u" 2>&1) ||
			die "systemd-analyze verify $(basename "$u"): $out"
		[ -z "$out" ] || die "verify $(basename "$u") warns: $out"
	done
	# and a broken unit must fail, or this test proves nothing
	mkdir -p "$T/bad"
	printf '[Mount]\nWhat=/x\nWhere=/elsewhere\n' >"$T/bad/mnt-cache.mount"
	systemd-analyze verify --man=no "$T/bad/mnt-cache.mount" >/dev/null 2>&1 &&
		die "verify accepted a mount unit for the wrong path"
	return 0
}

# listener SOCKET OUT: a NOTIFY_SOCKET receiver; each datagram is a line
# of OUT, stamped with whether $M was mounted when it arrived.
start_listener() {
	"$PY" -c "
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(30)
out = open(sys.argv[2], 'a')
def mounted():
    return any(l.split()[1] == sys.argv[3] for l in open('/proc/mounts'))
while True:
    m = s.recv(4096).decode()
    out.write('%s mounted=%d\n' % (m.replace('\n', ' '), mounted()))
    out.flush()
    if 'STOPPING=1' in m:
        break
" "$1" "$2" "$M" &
	LPID=$!
	wait_for test -S "$1" || die "listener did not start"
}

t_notify_from_unit_execstart() {
	local line cmd dpid rc
	start_listener "$T/notify" "$T/got"
	# The unit's ExecStart with what systemd would substitute.
	line=$(sed -n 's/^ExecStart=//p' \
		"$D/usr/local/lib/systemd/system/dcachefs@.service")
	eq "$line" '/usr/local/bin/dcachefs -f $DCACHEFS_OPTIONS ${CACHEDIR} %f' \
		"ExecStart"
	cmd=${line//\/usr\/local\/bin\//$BIN/}
	cmd=${cmd//\$\{CACHEDIR\}/$C}
	cmd=${cmd//%f/$M}
	cmd=${cmd//\$DCACHEFS_OPTIONS/-o allow_other,size_limit=1G}
	# shellcheck disable=SC2086
	NOTIFY_SOCKET=$T/notify $cmd 2>"$T/daemon.err" &
	dpid=$!
	wait_for grep -q READY=1 "$T/got" || die "no READY=1"
	grep -q 'READY=1 mounted=1' "$T/got" ||
		die "READY=1 before the mount was live: $(cat "$T/got")"
	use_mount
	# written and closed just before the stop: must not be lost
	head -c 100000 /dev/urandom >"$T/big"
	cp "$T/big" "$M/big" || die "cp"
	kill -TERM "$dpid"
	wait "$dpid"
	rc=$?
	eq "$rc" 0 "exit status after SIGTERM"
	wait "$LPID"
	grep -q STOPPING=1 "$T/got" || die "no STOPPING=1: $(cat "$T/got")"
	is_mounted "$M" && die "still mounted after SIGTERM"
	py "sys.stdout.buffer.write(c['big'])" | cmp -s - "$T/big" ||
		die "the value written before SIGTERM was lost"
	grep -q "mounted $C on $M" "$T/daemon.err" ||
		die "foreground log is not on stderr: $(cat "$T/daemon.err")"
}

t_sigint_unmounts() {
	local dpid
	# A script's background jobs start with SIGINT ignored, and libfuse
	# leaves ignored signals alone (as nohup wants): restore it.
	"$PY" -c 'import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_DFL)
os.execv(sys.argv[1], sys.argv[1:])' "$BIN/dcachefs" -f "$C" "$M" \
		2>"$T/daemon.err" &
	dpid=$!
	wait_for is_mounted "$M" || die "not mounted"
	kill -INT "$dpid"
	wait "$dpid"
	eq "$?" 0 "exit status after SIGINT"
	is_mounted "$M" && die "still mounted after SIGINT"
	return 0
}

t_sighup_reopens_log() {
	local dpid
	"$BIN/dcachefs" -f -o log="$T/log" "$C" "$M" 2>"$T/daemon.err" &
	dpid=$!
	wait_for is_mounted "$M" || die "not mounted"
	wait_for grep -q "mounted $C on $M" "$T/log" ||
		die "no start line in the log file"
	grep -Eq '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z dcachefs: mounted' \
		"$T/log" || die "log line format: $(cat "$T/log")"
	mv "$T/log" "$T/log.1" # what logrotate does
	kill -HUP "$dpid"
	wait_for test -s "$T/log" || die "SIGHUP did not reopen the log"
	grep -q "log file reopened" "$T/log" || die "$(cat "$T/log")"
	is_mounted "$M" || die "SIGHUP unmounted"
	echo v >"$M/k" || die "the mount does not work after SIGHUP"
	kill -TERM "$dpid"
	wait "$dpid"
	eq "$?" 0 "exit status"
	grep -q "unmounting $M" "$T/log" || die "stop line not in the new log"
	grep -q unmounting "$T/log.1" && die "stop line in the rotated log"
	return 0
}

t_background_logs_to_file() {
	"$BIN/dcachefs" -o log=rel.log "$C" "$M" || die "background mount"
	# a relative log= is taken from the cwd, before the daemon's chdir /
	wait_for grep -q "mounted $C on $M" "$T/rel.log" ||
		die "background log: $(cat "$T/rel.log" 2>&1)"
	unmount
	wait_for grep -q "unmounting $M" "$T/rel.log" || die "no stop line"
}

# In the background the daemon logs to syslog, which glibc reaches through
# /dev/log.  The test runs it in a private mount namespace whose /dev is a
# tmpfs holding just the devices the daemon uses and, as /dev/log, the
# socket of a Python listener that keeps every datagram.
t_background_logs_to_syslog() {
	cat >"$T/listener.py" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("/dev/log")
open(sys.argv[1], "w").close()
with open(sys.argv[2], "ab", buffering=0) as out:
    while True:
        out.write(s.recv(65536) + b"\n")
PY
	cat >"$T/ns.sh" <<'SH'
mkdir "$T/realdev" && mount --bind /dev "$T/realdev" || exit 97
mount -t tmpfs -o mode=755 tmpfs /dev || exit 97
for n in null zero urandom random fuse; do
	touch "/dev/$n" && mount --bind "$T/realdev/$n" "/dev/$n" || exit 97
done
"$PY" "$T/listener.py" "$T/listening" "$T/syslog" &
lpid=$!
rc=0
wait_for test -e "$T/listening" || rc=1
[ $rc = 0 ] && { "$BIN/dcachefs" "$C" "$M" 2>"$T/daemon.err" || rc=2; }
[ $rc = 0 ] && { wait_for grep -q "mounted $C on $M" "$T/syslog" || rc=3; }
[ $rc = 0 ] && { umount "$M" || rc=4; }
[ $rc = 0 ] && { wait_for grep -q "unmounting $M" "$T/syslog" || rc=5; }
umount "$M" 2>/dev/null
kill "$lpid"
exit $rc
SH
	export T C M BIN PY
	export -f wait_for
	unshare -m --propagation private bash "$T/ns.sh"
	case $? in
	0) ;;
	97)
		echo "SKIP: no private /dev in a mount namespace here"
		return 0
		;;
	*) die "syslog test step $? failed; received: $(cat "$T/syslog" 2>&1)" ;;
	esac
	# <facility*8+severity>: LOG_DAEMON is facility 3, so 24..31
	grep -Eq "^<(2[4-9]|3[01])>.*dcachefs\[[0-9]+\]: mounted $C on $M" \
		"$T/syslog" || die "not a daemon-facility line: $(cat "$T/syslog")"
	wait_for no_daemon || die "the daemon did not exit"
	is_mounted "$M" && die "still mounted"
	return 0
}

t_stale_mount_explained() {
	local dpid out
	"$BIN/dcachefs" -f "$C" "$M" 2>/dev/null &
	dpid=$!
	wait_for is_mounted "$M" || die "not mounted"
	kill -KILL "$dpid"
	wait "$dpid" 2>/dev/null
	is_mounted "$M" || die "SIGKILL should leave a stale mount"
	out=$("$BIN/dcachefs" "$C" "$M" 2>&1) && die "mounted over a stale mount"
	case $out in
	*"stale mount"*"fusermount3 -u $M"*) ;;
	*) die "message: $out" ;;
	esac
	fusermount3 -u "$M" || die "the suggested command failed"
	"$BIN/dcachefs" "$C" "$M" || die "mount after clearing"
	use_mount
	unmount
}

run_test() {
	local name=$1 dir
	if [ -n "$only" ] && ! grep -qw "$name" <<<"$only"; then
		return
	fi
	dir=$work/$name
	mkdir -p "$dir/cache" "$dir/mnt"
	if (
		cd "$dir" || exit 1
		T=$dir C=$dir/cache M=$dir/mnt
		set -o pipefail
		"t_$name"
	) >"$dir/out" 2>&1; then
		passed=$((passed + 1))
		echo "ok   $name"
		grep -h 'SKIP\|note:' "$dir/out" | sed 's/^ */     /'
	else
		failed=$((failed + 1))
		echo "FAIL $name"
		sed 's/^/     /' "$dir/out"
		[ -s "$dir/daemon.err" ] && sed 's/^/     daemon: /' "$dir/daemon.err"
	fi
	# whatever the test left behind
	for m in $(awk -v w="$dir/" 'index($2, w) == 1 { print $2 }' /proc/mounts); do
		umount "$m" 2>/dev/null || umount -l "$m"
	done
}

only="${*:-}"
run_test fstab_via_mount_fuse3
run_test mount_t_via_mount_fuse3
run_test fstab_via_helper
run_test mount_t_via_helper
run_test helper_options
run_test dcachefs_ignores_mount_options
run_test systemd_verify
run_test notify_from_unit_execstart
run_test sigint_unmounts
run_test sighup_reopens_log
run_test background_logs_to_file
run_test background_logs_to_syslog
run_test stale_mount_explained

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
