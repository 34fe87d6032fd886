#!/bin/sh
# The cgroup v2 suite that runs inside the test VM (busybox sh, started by /init as root on a
# pure cgroup v2 host with every controller delegated from the root). Each test creates
# containers with pelagos-runtime from busybox bundles whose config.json sets linux.resources
# and a cgroupsPath under /pelagos-vm, and proves the limit by its effect on processes in the
# container as well as by the interface files. Prints "PASS name" or "FAIL name: reason" per
# test and writes "N passed, M failed" to /run/vm-result for /init.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin

RT=pelagos-runtime
CG=/sys/fs/cgroup
PARENT=pelagos-vm
WORK=/tmp/vm-suite
ROOTFS_TEMPLATE=/opt/busybox-rootfs
STATE_ROOT=/run/pelagos

PASSED=0
FAILED=0
REASON=
IDS=

mkdir -p "$WORK"

# ---- helpers -------------------------------------------------------------------------------

# Centiseconds since boot.
now_cs() { awk '{ printf "%d\n", $1 * 100 }' /proc/uptime; }

# Record why the current test fails and return non-zero (use as `... || bad "why" || return 1`
# or `bad "why"; return 1`).
bad() {
	[ -n "$REASON" ] || REASON="$*"
	return 1
}

# Read an interface file of a container's cgroup ("" when missing).
cgread() { cat "$CG/$PARENT/$1/$2" 2>/dev/null; }

# The value of KEY in a flat-keyed file ("key value" lines).
keyed() { awk -v k="$2" '$1 == k { print $2 }' "$1" 2>/dev/null; }

# status ID: the runtime's status word, or "" when the container does not exist.
status() { $RT state "$1" 2>/dev/null | sed -n 's/.*"status": *"\([a-z]*\)".*/\1/p'; }

# wait_until SECONDS DESCRIPTION COMMAND...: poll every 0.1 s.
wait_until() {
	_secs=$1 _what=$2
	shift 2
	_end=$(($(now_cs) + _secs * 100))
	while ! "$@" 2>/dev/null; do
		if [ "$(now_cs)" -ge "$_end" ]; then
			bad "timed out after ${_secs}s waiting for $_what"
			return 1
		fi
		sleep 0.1
	done
}

file_has() { grep -q -- "$2" "$1"; }
status_is() { [ "$(status "$1")" = "$2" ]; }
not_populated() { [ "$(keyed "$CG/$PARENT/$1/cgroup.events" populated)" = 0 ]; }

# mkbundle ID RESOURCES_JSON [CAPS] [EXTRA_LINUX_JSON]: a busybox bundle in $WORK/ID whose
# process runs /t.sh, read from stdin. RESOURCES_JSON becomes linux.resources; EXTRA_LINUX_JSON
# (with a trailing comma) is spliced into linux.
mkbundle() {
	_id=$1 _res=$2
	_caps=${3:-'"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"'}
	_extra=${4:-}
	_b=$WORK/$_id
	rm -rf "$_b"
	mkdir -p "$_b"
	cp -a "$ROOTFS_TEMPLATE" "$_b/rootfs"
	cat >"$_b/rootfs/t.sh"
	IDS="$IDS $_id"
	cat >"$_b/config.json" <<EOF
{
  "ociVersion": "1.2.0",
  "root": {"path": "rootfs", "readonly": false},
  "hostname": "$_id",
  "process": {
    "terminal": false,
    "user": {"uid": 0, "gid": 0},
    "args": ["sh", "/t.sh"],
    "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"],
    "cwd": "/",
    "capabilities": {
      "bounding": [$_caps], "effective": [$_caps],
      "permitted": [$_caps], "ambient": [$_caps]
    },
    "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
    "noNewPrivileges": true
  },
  "mounts": [
    {"destination": "/proc", "type": "proc", "source": "proc"},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
    {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
    {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
    {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
    {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
    {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
  ],
  "linux": {
    "cgroupsPath": "/$PARENT/$_id",
    "resources": $_res,
    $_extra
    "namespaces": [
      {"type": "pid"}, {"type": "network"}, {"type": "ipc"},
      {"type": "uts"}, {"type": "mount"}, {"type": "cgroup"}
    ],
    "maskedPaths": ["/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware"],
    "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
  }
}
EOF
}

# create ID: `create` with the container's stdout/stderr in $WORK/ID/out and err.
create() {
	if ! $RT create --bundle "$WORK/$1" "$1" >"$WORK/$1/out" 2>"$WORK/$1/err" </dev/null; then
		bad "create $1 failed: $(cat "$WORK/$1/err")"
		return 1
	fi
}

# run_bg ID: create and start.
run_bg() {
	create "$1" || return 1
	if ! $RT start "$1" 2>"$WORK/$1/start.err" </dev/null; then
		bad "start $1 failed: $(cat "$WORK/$1/start.err")"
		return 1
	fi
}

# signal_fifo ID NAME: unblock `read x </NAME` inside the container (bounded).
signal_fifo() {
	timeout 20 sh -c "echo go > '$WORK/$1/rootfs/$2'" ||
		bad "container $1 never opened /$2 (it died?): $(cat "$WORK/$1/err")"
}

# The number N of the last "forked N" line in FILE (0 if none).
last_forked() { awk '/^forked / { n = $2 } END { print n + 0 }' "$1"; }

# The fork-bomb-ish loop used by the pids tests: forks background sleeps until fork fails.
FORKLOOP='n=0
while [ $n -lt 40 ]; do
	sleep 1000 &
	n=$((n + 1))
	echo "forked $n"
done
echo "forkloop finished without a fork failure"'

# Force-delete the test's containers, newest first (as a stack unwinds, so a parent cgroup the
# first container created is empty when that container goes), then make sure nothing is left
# under $CG/$PARENT: what is, fails the test and is removed so later tests start clean.
cleanup() {
	_rev=
	for _id in $IDS; do _rev="$_id $_rev"; done
	for _id in $_rev; do
		_o=$($RT delete --force "$_id" 2>&1) || bad "cleanup: delete --force $_id failed: $_o"
		rm -rf "${WORK:?}/$_id"
	done
	IDS=
	if [ -e "$CG/$PARENT" ]; then
		bad "cgroup directories left behind after deleting every container: $(find "$CG/$PARENT" -type d | tr '\n' ' ')"
		find "$CG/$PARENT" -depth -type d -exec rmdir {} \; 2>/dev/null
	fi
	if [ -n "$(ls -A "$STATE_ROOT" 2>/dev/null)" ]; then
		bad "container state left behind: $(ls -A "$STATE_ROOT" | tr '\n' ' ')"
		rm -rf "${STATE_ROOT:?}"/*
	fi
}

run_test() {
	_name=$1
	shift
	REASON=
	_t0=$(now_cs)
	"$@" && [ -z "$REASON" ]
	_ok=$?
	_t1=$(now_cs)
	if [ "$_ok" != 0 ]; then
		for _id in $IDS; do
			for _f in out err start.err; do
				[ -s "$WORK/$_id/$_f" ] && sed "s/^/  [$_id $_f] /" "$WORK/$_id/$_f" | head -n 20
			done
		done
	fi
	cleanup
	if [ -z "$REASON" ] && [ "$_ok" = 0 ]; then
		echo "PASS $_name ($(((_t1 - _t0) / 100)).$(((_t1 - _t0) % 100 / 10))s)"
		PASSED=$((PASSED + 1))
	else
		echo "FAIL $_name: ${REASON:-the test returned non-zero}"
		FAILED=$((FAILED + 1))
	fi
}

# ---- tests ---------------------------------------------------------------------------------

# memory.limit 32 MiB: a process that buffers 64 MiB (tail keeps its whole newline-free input)
# is OOM-killed inside the container, the container itself survives, memory.events counts it,
# and `events --stats` reports it.
t_memory() {
	mkbundle mem '{"memory": {"limit": 33554432}}' <<'EOF'
echo started
head -c 64m /dev/zero | tail >/dev/null
echo "tail-exit=$?"
exec sleep 1000
EOF
	run_bg mem || return 1
	[ "$(cgread mem memory.max)" = 33554432 ] || bad "memory.max is '$(cgread mem memory.max)', want 33554432" || return 1
	wait_until 120 "tail to finish" file_has "$WORK/mem/out" "tail-exit=" || return 1
	_exit=$(sed -n 's/^tail-exit=//p' "$WORK/mem/out")
	[ "$_exit" = 137 ] || bad "tail exited with $_exit, want 137 (SIGKILL by the OOM killer)" || return 1
	_oom=$(keyed "$CG/$PARENT/mem/memory.events" oom_kill)
	[ "${_oom:-0}" -ge 1 ] || bad "memory.events oom_kill is '$_oom', want >= 1" || return 1
	_peak=$(cgread mem memory.peak)
	[ "${_peak:-0}" -le 33554432 ] || bad "memory.peak $_peak exceeds the limit" || return 1
	[ "${_peak:-0}" -ge 16777216 ] || bad "memory.peak $_peak: the allocation never came near the limit" || return 1
	status_is mem running || bad "container status is '$(status mem)' after the OOM kill, want running" || return 1
	_stats=$($RT events --stats mem 2>&1) || bad "events --stats failed: $_stats" || return 1
	echo "  events --stats: $(echo "$_stats" | cut -c1-300)..."
	echo "$_stats" | grep -q '"type":"stats"' || bad "events --stats printed no stats record: $_stats" || return 1
	echo "$_stats" | grep -q '"limit":33554432' || bad "events --stats does not report the memory limit 33554432" || return 1
	echo "$_stats" | grep -q '"current":[1-9]' || bad "events --stats does not report memory.current" || return 1
	echo "$_stats" | grep -q '"oom_kill":[1-9]' || bad "events --stats does not report oom_kill >= 1" || return 1
}

# pids.limit 16: a fork loop stops at the limit with EAGAIN.
t_pids() {
	mkbundle pids '{"pids": {"limit": 16}}' <<EOF
cat >/forkloop.sh <<'LOOP'
$FORKLOOP
LOOP
sh /forkloop.sh >/pids.out 2>&1
echo "loop-exit=\$?" >>/pids.out
exec sleep 1000
EOF
	run_bg pids || return 1
	[ "$(cgread pids pids.max)" = 16 ] || bad "pids.max is '$(cgread pids pids.max)', want 16" || return 1
	_out=$WORK/pids/rootfs/pids.out
	wait_until 60 "the fork loop to end" file_has "$_out" "loop-exit=" || return 1
	_n=$(last_forked "$_out")
	echo "  fork loop: $_n forks succeeded; pids.current=$(cgread pids pids.current); $(grep -i fork "$_out" | grep -v '^forked' | head -n1)"
	grep -q "can't fork" "$_out" || bad "the fork loop never failed to fork: $(tail -n 2 "$_out")" || return 1
	grep -q "Resource temporarily unavailable" "$_out" || bad "fork failed, but not with EAGAIN: $(grep "can't fork" "$_out")" || return 1
	# init sh + loop sh + 14 sleeps = 16
	[ "$_n" -le 14 ] || bad "$_n forks succeeded, the limit allows at most 14" || return 1
	[ "$_n" -ge 12 ] || bad "only $_n forks succeeded, the limit allows 14" || return 1
	_cur=$(cgread pids pids.current)
	[ "${_cur:-99}" -le 16 ] || bad "pids.current $_cur exceeds 16" || return 1
	_ev=$(keyed "$CG/$PARENT/pids/pids.events" max)
	[ "${_ev:-0}" -ge 1 ] || bad "pids.events max is '$_ev', want >= 1" || return 1
}

# cpu quota 20000/100000: a busy loop gets about 20% of one CPU and is throttled;
# shares 1024 become cpu.weight 39.
t_cpu() {
	mkbundle cpu '{"cpu": {"shares": 1024, "quota": 20000, "period": 100000}}' <<'EOF'
while :; do :; done
EOF
	run_bg cpu || return 1
	_t0=$(now_cs)
	sleep 2
	_stat=$(cat "$CG/$PARENT/cpu/cpu.stat")
	_t1=$(now_cs)
	_usage=$(echo "$_stat" | awk '$1 == "usage_usec" { print $2 }')
	_thr=$(echo "$_stat" | awk '$1 == "nr_throttled" { print $2 }')
	_win=$(((_t1 - _t0) * 10000))
	echo "  cpu: usage_usec=$_usage over a ${_win}us window, nr_throttled=$_thr, cpu.max='$(cgread cpu cpu.max)', cpu.weight=$(cgread cpu cpu.weight)"
	[ "$(cgread cpu cpu.max)" = "20000 100000" ] || bad "cpu.max is '$(cgread cpu cpu.max)', want '20000 100000'" || return 1
	[ "$(cgread cpu cpu.weight)" = 39 ] || bad "cpu.weight is '$(cgread cpu cpu.weight)', want 39 (from shares 1024)" || return 1
	[ "${_usage:-0}" -ge 100000 ] || bad "usage_usec $_usage: the busy loop did not run" || return 1
	[ "$_usage" -lt 700000 ] || bad "usage_usec $_usage >= 700000: the 20% quota was not enforced" || return 1
	[ "$_usage" -le $((_win * 3 / 10 + 50000)) ] || bad "usage_usec $_usage is more than 30% of the ${_win}us window" || return 1
	[ "${_thr:-0}" -gt 0 ] || bad "nr_throttled is '$_thr', want > 0" || return 1
}

# devices: deny-all plus the runtime's defaults. mknod is allowed (default "c *:* m"), but a
# node that is neither a default device nor in linux.devices (1:11, kmsg) cannot be opened;
# a second container that allows c 1:11 w can write to it.
DEVSCRIPT='mknod /dev/kmsgx c 1 11 && echo mknod-ok
if echo pelagos-vm-devices-test >/dev/kmsgx; then echo write-ok; else echo write-failed; fi
mknod /dev/zerox c 1 5 && echo "zero-read=$(head -c 3 /dev/zerox | wc -c)"
echo "null-read=$(head -c1 /dev/null | wc -c)"
echo done'
CAPS_MKNOD='"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_MKNOD"'

t_devices() {
	# (here-documents, not pipes: mkbundle must run in this shell to record the id)
	mkbundle devdeny '{"devices": [{"allow": false, "access": "rwm"}]}' "$CAPS_MKNOD" <<EOF
$DEVSCRIPT
EOF
	mkbundle devallow '{"devices": [{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": 1, "minor": 11, "access": "w"}]}' "$CAPS_MKNOD" <<EOF
$DEVSCRIPT
EOF
	run_bg devdeny || return 1
	run_bg devallow || return 1
	wait_until 30 "devdeny to finish" file_has "$WORK/devdeny/out" "^done" || return 1
	wait_until 30 "devallow to finish" file_has "$WORK/devallow/out" "^done" || return 1
	_d=$WORK/devdeny
	echo "  deny: $(tr '\n' ' ' <"$_d/out")| $(tr '\n' ' ' <"$_d/err")"
	echo "  allow: $(tr '\n' ' ' <"$WORK/devallow/out")"
	grep -q mknod-ok "$_d/out" || bad "mknod c 1 11 failed in the container: $(cat "$_d/err")" || return 1
	grep -q write-failed "$_d/out" || bad "writing to c 1:11 was not denied" || return 1
	grep -q "Operation not permitted" "$_d/err" || bad "the denied open did not fail with EPERM: $(cat "$_d/err")" || return 1
	grep -q "zero-read=3" "$_d/out" || bad "the default rule for /dev/zero (c 1:5) does not work: $(cat "$_d/out" "$_d/err")" || return 1
	grep -q "null-read=0" "$_d/out" || bad "/dev/null is not usable: $(cat "$_d/err")" || return 1
	grep -q write-ok "$WORK/devallow/out" || bad "writing to c 1:11 failed although a later rule allows it: $(cat "$WORK/devallow/err")" || return 1
}

# update of a running container: memory.limit 32M -> 64M lets a 48 MiB allocation succeed,
# pids 16 -> 8 stops a fork loop earlier, and --resources - changes cpu.max.
t_update() {
	mkbundle upd '{"memory": {"limit": 33554432}, "pids": {"limit": 16}}' <<EOF
cat >/forkloop.sh <<'LOOP'
$FORKLOOP
LOOP
read x </fifo1
head -c 48m /dev/zero | tail >/dev/null
echo "mem-exit=\$?"
read x </fifo2
sh /forkloop.sh >/pids.out 2>&1
echo "loop-exit=\$?" >>/pids.out
exec sleep 1000
EOF
	mkfifo "$WORK/upd/rootfs/fifo1" "$WORK/upd/rootfs/fifo2"
	run_bg upd || return 1
	[ "$(cgread upd memory.max)" = 33554432 ] || bad "memory.max is '$(cgread upd memory.max)' before update, want 33554432" || return 1
	_o=$($RT update --memory 64m upd 2>&1) || bad "update --memory 64m failed: $_o" || return 1
	[ "$(cgread upd memory.max)" = 67108864 ] || bad "memory.max is '$(cgread upd memory.max)' after update --memory 64m, want 67108864" || return 1
	signal_fifo upd fifo1 || return 1
	wait_until 120 "the 48 MiB allocation" file_has "$WORK/upd/out" "mem-exit=" || return 1
	_exit=$(sed -n 's/^mem-exit=//p' "$WORK/upd/out")
	[ "$_exit" = 0 ] || bad "the 48 MiB allocation exited with $_exit under the updated 64 MiB limit, want 0" || return 1
	_oom=$(keyed "$CG/$PARENT/upd/memory.events" oom_kill)
	[ "${_oom:-0}" = 0 ] || bad "memory.events oom_kill is $_oom, want 0" || return 1

	_o=$($RT update --pids-limit 8 upd 2>&1) || bad "update --pids-limit 8 failed: $_o" || return 1
	[ "$(cgread upd pids.max)" = 8 ] || bad "pids.max is '$(cgread upd pids.max)' after update --pids-limit 8, want 8" || return 1
	signal_fifo upd fifo2 || return 1
	_out=$WORK/upd/rootfs/pids.out
	wait_until 60 "the fork loop to end" file_has "$_out" "loop-exit=" || return 1
	_n=$(last_forked "$_out")
	echo "  after update: 48 MiB allocation exit=$_exit, fork loop made $_n forks under pids.max 8"
	grep -q "can't fork" "$_out" || bad "the fork loop never failed to fork: $(tail -n 2 "$_out")" || return 1
	# init sh + loop sh + 6 sleeps = 8
	[ "$_n" -le 6 ] || bad "$_n forks succeeded after update --pids-limit 8, at most 6 are possible" || return 1
	[ "$_n" -ge 4 ] || bad "only $_n forks succeeded under pids.max 8" || return 1

	_o=$(echo '{"cpu": {"quota": 30000, "period": 100000}}' | $RT update --resources - upd 2>&1) ||
		bad "update --resources - failed: $_o" || return 1
	[ "$(cgread upd cpu.max)" = "30000 100000" ] || bad "cpu.max is '$(cgread upd cpu.max)' after update --resources -, want '30000 100000'" || return 1
	[ "$(cgread upd memory.max)" = 67108864 ] || bad "updating cpu changed memory.max to '$(cgread upd memory.max)'" || return 1
	[ "$(cgread upd pids.max)" = 8 ] || bad "updating cpu changed pids.max to '$(cgread upd pids.max)'" || return 1
}

# pause/resume: a heartbeat loop stops while cgroup.freeze holds it and goes on afterwards.
t_pause() {
	mkbundle pause '{"pids": {"limit": 32}}' <<'EOF'
while :; do echo x >>/count; sleep 0.05; done
EOF
	run_bg pause || return 1
	_cnt=$WORK/pause/rootfs/count
	wait_until 30 "the heartbeat" test -s "$_cnt" || return 1
	_o=$($RT pause pause 2>&1) || bad "pause failed: $_o" || return 1
	status_is pause paused || bad "status is '$(status pause)' after pause, want paused" || return 1
	[ "$(cgread pause cgroup.freeze)" = 1 ] || bad "cgroup.freeze is '$(cgread pause cgroup.freeze)', want 1" || return 1
	[ "$(keyed "$CG/$PARENT/pause/cgroup.events" frozen)" = 1 ] || bad "cgroup.events does not say frozen 1" || return 1
	_s1=$(wc -c <"$_cnt")
	sleep 1
	_s2=$(wc -c <"$_cnt")
	[ "$_s1" = "$_s2" ] || bad "the heartbeat went on while paused ($_s1 -> $_s2 bytes)" || return 1
	_o=$($RT resume pause 2>&1) || bad "resume failed: $_o" || return 1
	status_is pause running || bad "status is '$(status pause)' after resume, want running" || return 1
	[ "$(cgread pause cgroup.freeze)" = 0 ] || bad "cgroup.freeze is '$(cgread pause cgroup.freeze)' after resume, want 0" || return 1
	sleep 1
	_s3=$(wc -c <"$_cnt")
	echo "  heartbeat bytes: paused $_s1 -> $_s2, resumed -> $_s3"
	[ "$_s3" -gt "$_s2" ] || bad "the heartbeat did not go on after resume ($_s2 -> $_s3 bytes)" || return 1
}

# kill --all KILL ends every process of the cgroup; delete removes the leaf and the parent it
# created.
t_kill_delete() {
	mkbundle kill '{"pids": {"limit": 32}}' <<'EOF'
sleep 1000 &
sleep 1000 &
echo ready
wait
EOF
	run_bg kill || return 1
	wait_until 30 "the container to start its children" file_has "$WORK/kill/out" ready || return 1
	_procs=$(wc -l <"$CG/$PARENT/kill/cgroup.procs")
	[ "$_procs" = 3 ] || bad "cgroup.procs lists $_procs processes, want 3" || return 1
	_o=$($RT kill --all kill KILL 2>&1) || bad "kill --all failed: $_o" || return 1
	wait_until 10 "the cgroup to become empty" not_populated kill || return 1
	wait_until 10 "status stopped" status_is kill stopped || return 1
	[ -z "$(cat "$CG/$PARENT/kill/cgroup.procs")" ] || bad "cgroup.procs not empty after kill --all" || return 1
	[ -d "$CG/$PARENT/kill" ] || bad "the cgroup vanished before delete" || return 1
	_o=$($RT delete kill 2>&1) || bad "delete failed: $_o" || return 1
	[ ! -e "$CG/$PARENT/kill" ] || bad "cgroup $CG/$PARENT/kill still exists after delete" || return 1
	[ ! -e "$CG/$PARENT" ] || bad "parent cgroup $CG/$PARENT (made by create) still exists after delete" || return 1
	[ ! -e "$STATE_ROOT/kill" ] || bad "state directory left after delete" || return 1
	if $RT state kill >/dev/null 2>&1; then bad "state still succeeds after delete"; return 1; fi
}

# cgroup namespace: the container sees its own cgroup as the root of a cgroup2 mount, with
# its controllers and limits, and nothing of the host's tree.
t_cgroupns() {
	mkbundle cgns '{"memory": {"limit": 33554432}, "pids": {"limit": 16}}' <<'EOF'
echo "self=$(grep '^0::' /proc/self/cgroup)"
echo "fstype=$(awk '$2 == "/sys/fs/cgroup" { print $3 }' /proc/mounts)"
echo "controllers=$(cat /sys/fs/cgroup/cgroup.controllers)"
echo "memmax=$(cat /sys/fs/cgroup/memory.max)"
echo "pidsmax=$(cat /sys/fs/cgroup/pids.max)"
echo "procs=$(tr '\n' ' ' </sys/fs/cgroup/cgroup.procs)"
echo "entries=$(ls /sys/fs/cgroup | tr '\n' ' ')"
echo done
exec sleep 1000
EOF
	run_bg cgns || return 1
	_f=$WORK/cgns/out
	wait_until 30 "the container's report" file_has "$_f" "^done" || return 1
	sed 's/^/  /' "$_f" | grep -v '^  entries=' | grep -v '^  done'
	_get() { sed -n "s/^$1=//p" "$_f"; }
	[ "$(_get self)" = "0::/" ] || bad "/proc/self/cgroup shows '$(_get self)', want '0::/'" || return 1
	[ "$(_get fstype)" = cgroup2 ] || bad "/sys/fs/cgroup is '$(_get fstype)', want cgroup2" || return 1
	_want=$(cgread cgns cgroup.controllers)
	[ "$(_get controllers)" = "$_want" ] || bad "cgroup.controllers inside is '$(_get controllers)', the host shows '$_want'" || return 1
	for c in cpu memory pids; do
		echo " $(_get controllers) " | grep -q " $c " || bad "controller $c missing inside: '$(_get controllers)'" || return 1
	done
	[ "$(_get memmax)" = 33554432 ] || bad "memory.max inside is '$(_get memmax)'" || return 1
	[ "$(_get pidsmax)" = 16 ] || bad "pids.max inside is '$(_get pidsmax)'" || return 1
	echo " $(_get procs) " | grep -q " 1 " || bad "cgroup.procs inside does not list pid 1: '$(_get procs)'" || return 1
	echo " $(_get entries) " | grep -q " $PARENT " && { bad "the host's /$PARENT is visible inside"; return 1; }
	echo " $(_get entries) " | grep -q " memory.max " || bad "memory.max is not at the root of the container's cgroup2 mount" || return 1
}

# Two containers under one parent cgroup that the first create made: the parent goes when the
# last container is deleted, whichever order they are deleted in.
t_shared_parent() {
	for _order in "sp-b sp-a" "sp-a sp-b"; do
		for _id in sp-a sp-b; do
			mkbundle $_id '{"pids": {"limit": 32}}' <<'EOF'
exec sleep 1000
EOF
			run_bg $_id || return 1
		done
		[ -d "$CG/$PARENT/sp-a" ] && [ -d "$CG/$PARENT/sp-b" ] || bad "the two cgroups were not created" || return 1
		for _id in $_order; do
			_o=$($RT delete --force $_id 2>&1) || bad "delete --force $_id failed: $_o" || return 1
			[ ! -e "$CG/$PARENT/$_id" ] || bad "cgroup $CG/$PARENT/$_id still exists after delete" || return 1
		done
		IDS=
		echo "  created sp-a then sp-b, deleted $_order: $CG/$PARENT $([ -e "$CG/$PARENT" ] && echo remains || echo is gone)"
		[ ! -e "$CG/$PARENT" ] || bad "parent cgroup $CG/$PARENT, made by the create of sp-a, remains after deleting $_order" || return 1
	done
}

# invalid_case NAME RESOURCES_JSON EXPECTED_TEXT: create fails with one clear line that
# contains EXPECTED_TEXT and leaves no state, cgroup or process behind.
invalid_case() {
	_id=bad-$1
	mkbundle "$_id" "$2" <<'EOF'
echo should-not-run
EOF
	if $RT create --bundle "$WORK/$_id" "$_id" >"$WORK/$_id/out" 2>"$WORK/$_id/err" </dev/null; then
		bad "$1: create succeeded"
		return 1
	fi
	_err=$(cat "$WORK/$_id/err")
	echo "  $1: $_err"
	grep -qF -- "$3" "$WORK/$_id/err" || bad "$1: the error does not say '$3': $_err" || return 1
	[ "$(grep -c . "$WORK/$_id/err")" = 1 ] || bad "$1: want one error line, got: $_err" || return 1
	[ ! -e "$CG/$PARENT/$_id" ] || bad "$1: cgroup $CG/$PARENT/$_id left behind" || return 1
	[ ! -e "$CG/$PARENT" ] || bad "$1: parent cgroup $CG/$PARENT left behind" || return 1
	[ ! -e "$STATE_ROOT/$_id" ] || bad "$1: state directory left behind" || return 1
	if $RT state "$_id" >/dev/null 2>&1; then bad "$1: state succeeds after the failed create"; return 1; fi
	# "[b]ad-..." matches the id but not this grep's own command line.
	_left=$(grep -l "[${_id%"${_id#?}"}]${_id#?}" /proc/[0-9]*/cmdline 2>/dev/null)
	[ -z "$_left" ] || bad "$1: processes left behind: $(for f in $_left; do tr '\0' ' ' <"$f"; echo; done)" || return 1
	grep -q should-not-run "$WORK/$_id/out" && { bad "$1: the container process ran"; return 1; }
	return 0
}

t_invalid() {
	invalid_case negative-memory '{"memory": {"limit": -5}}' \
		'invalid linux.resources.memory.limit: -5 is negative' || return 1
	invalid_case quota-without-period '{"cpu": {"quota": 20000}}' \
		'invalid linux.resources.cpu.quota: a quota (20000) needs linux.resources.cpu.period' || return 1
	invalid_case unknown-unified-key '{"unified": {"foo.bar": "1"}}' \
		'"foo" is not a cgroup v2 controller' || return 1
	# Valid in form, refused by the kernel only when written: the cgroup exists by then.
	invalid_case kernel-rejected-value '{"unified": {"memory.max": "lots"}}' \
		'memory.max (for linux.resources.unified["memory.max"])' || return 1
}

# Nothing the suite made is left: no cgroup directory, no container state.
t_no_leftovers() {
	_now=$(find "$CG" -mindepth 1 -type d | sort)
	[ "$_now" = "$BASELINE" ] || bad "cgroup directories left behind: $(echo "$_now" | grep -vxF "$BASELINE" | tr '\n' ' ')" || return 1
	[ -z "$(ls -A "$STATE_ROOT" 2>/dev/null)" ] || bad "container state left in $STATE_ROOT: $(ls -A "$STATE_ROOT" | tr '\n' ' ')" || return 1
	[ -z "$($RT list -q 2>/dev/null)" ] || bad "pelagos-runtime list still shows: $($RT list -q | tr '\n' ' ')" || return 1
}

# ---- main ----------------------------------------------------------------------------------

BASELINE=$(find "$CG" -mindepth 1 -type d | sort)
echo "SUITE: pelagos cgroup v2 suite, cgroup2 root $CG offers: $(cat $CG/cgroup.controllers)"

run_test memory t_memory
run_test pids t_pids
run_test cpu t_cpu
run_test devices t_devices
run_test update t_update
run_test pause-resume t_pause
run_test kill-all-delete t_kill_delete
run_test shared-parent t_shared_parent
run_test cgroup-namespace t_cgroupns
run_test invalid-values t_invalid
run_test no-leftovers t_no_leftovers

echo "$PASSED passed, $FAILED failed" >/run/vm-result
[ "$FAILED" = 0 ]
