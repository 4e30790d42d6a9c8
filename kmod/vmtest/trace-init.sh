#!/bin/busybox sh
# /init of the khttpd trace guest (busybox ash), booted by `make -C kmod trace`
# (kmod/trace.sh -> vmtest.sh with VMTEST_GUEST=trace).
#
# For each mode it enables workqueue and scheduler tracepoints in tracefs,
# loads khttpd.ko, runs a fixed small load, unloads it and keeps the raw trace,
# the ring buffer's statistics, a copy of /sys/devices/virtual/workqueue/ and
# the kernel threads alive before and after.  At the end everything goes, as a
# base64 tar.gz between "begin"/"end" lines, to the third serial port
# (/dev/ttyS2); KTAP (one test per mode) goes to the second (/dev/ttyS1), so
# vmtest.sh's verdict works unchanged.
#
# Settings from the kernel command line:
#   kt_modes=M[,M...]  modes to trace, in order (default kthread,unbound,bound,max1):
#                      kthread, unbound (cmwq wq_flags=unbound), bound
#                      (cmwq wq_flags=bound), max1 (cmwq unbound max_active=1)
#   kt_buf_kb=N        ring buffer per CPU in KiB (default 8192)
# shellcheck shell=dash

/bin/busybox mkdir -p /proc /sys /dev /tmp /sbin /usr/bin /usr/sbin
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
ip link set lo up

exec >/dev/ttyS1 2>&1

MODES=$(echo "${kt_modes:-kthread,unbound,bound,max1}" | tr , ' ')
BUF_KB=${kt_buf_kb:-8192}
URL=http://127.0.0.1:8081/
MODULE=/khttpd.ko
TR=/sys/kernel/tracing
OUT=/tmp/out
DATA=/dev/ttyS2
# the module's threads and the kworkers that run its work items
THREADS='kworker*'
CONNS='khttpd*'

# resp, R200C, R200K, loaded, wait_pid
# shellcheck source=guest-lib.sh
. /guest-lib.sh

T=0
FAILED=0

ok() {
	T=$((T + 1))
	echo "ok $T - $1"
}

not_ok() {
	T=$((T + 1))
	FAILED=$((FAILED + 1))
	echo "not ok $T - $1"
}

# wait_killed PID SECONDS: wait_pid, and a job still running after SECONDS is killed
wait_killed() {
	wait_pid "$1" "$2" && return 0
	_rc=$?
	[ "$_rc" -eq 124 ] && kill -KILL "$1" 2>/dev/null
	return "$_rc"
}

mark() {
	echo "khttpd-trace: $*" >"$TR/trace_marker"
}

# a filter and enable for one event; fails loudly when the kernel refuses
event() {	# SUBSYSTEM/EVENT [FILTER]
	_ed=$TR/events/$1
	[ -d "$_ed" ] || { echo "# no tracepoint $1 in this kernel"; return 1; }
	if [ -n "${2:-}" ]; then
		echo "$2" >"$_ed/filter" || { echo "# filter refused for $1: $2"; return 1; }
	fi
	echo 1 >"$_ed/enable" || { echo "# cannot enable $1"; return 1; }
}

setup_trace() {
	echo 0 >"$TR/tracing_on"
	echo nop >"$TR/current_tracer"
	echo >"$TR/set_event"
	for _f in "$TR"/events/*/*/filter; do
		echo 0 >"$_f" 2>/dev/null
	done
	# one clock for all CPUs: events of different CPUs can be ordered
	echo global >"$TR/trace_clock"
	echo "$BUF_KB" >"$TR/buffer_size_kb"
	echo 4096 >"$TR/saved_cmdlines_size"
	echo >"$TR/trace"
	event workqueue/workqueue_queue_work &&
	event workqueue/workqueue_activate_work &&
	event workqueue/workqueue_execute_start &&
	event workqueue/workqueue_execute_end &&
	event task/task_newtask 'comm == "kthreadd"' &&
	event task/task_rename "newcomm ~ \"$THREADS\" || newcomm ~ \"$CONNS\"" &&
	event sched/sched_process_exit "comm ~ \"$THREADS\" || comm ~ \"$CONNS\"" &&
	event sched/sched_wakeup "comm ~ \"$THREADS\" || comm ~ \"$CONNS\" || comm == \"kthreadd\"" &&
	event sched/sched_wakeup_new "comm ~ \"$THREADS\" || comm ~ \"$CONNS\" || comm == \"kthreadd\"" &&
	# kthreadd too: a new kthread runs as "kthreadd" until it is named
	event sched/sched_switch "prev_comm ~ \"$THREADS\" || next_comm ~ \"$THREADS\" || prev_comm ~ \"$CONNS\" || next_comm ~ \"$CONNS\" || prev_comm == \"kthreadd\" || next_comm == \"kthreadd\""
}

# tasks: the kernel threads that matter here, "pid comm" a line
tasks() {
	for _p in /proc/[0-9]*; do
		_c=$(cat "$_p/comm" 2>/dev/null) || continue
		case "$_c" in
		kworker*|khttpd*|kthreadd) echo "${_p#/proc/} $_c" ;;
		esac
	done | sort -n
}

# sysfs_wq: every attribute under /sys/devices/virtual/workqueue (WQ_SYSFS
# workqueues only), bounded to 4 KiB a file
sysfs_wq() {
	_root=/sys/devices/virtual/workqueue
	echo "# ls $_root"
	ls "$_root"
	if [ -d "$_root/khttpd" ]; then
		echo "# khttpd: present"
	else
		echo "# khttpd: absent (the module's workqueue is not WQ_SYSFS)"
	fi
	find "$_root" -maxdepth 2 -type f | sort | while read -r _f; do
		echo "== $_f"
		head -c 4096 "$_f" 2>&1
	done
}

insmod_mode() {
	case "$1" in
	kthread) insmod "$MODULE" mode=kthread ;;
	unbound) insmod "$MODULE" mode=cmwq wq_flags=unbound ;;
	bound) insmod "$MODULE" mode=cmwq wq_flags=bound ;;
	max1) insmod "$MODULE" mode=cmwq wq_flags=unbound max_active=1 ;;
	*) echo "# unknown mode $1"; return 1 ;;
	esac
}

# one client, counted in /tmp/clients.MODE
client() {
	if khttpc -T 15 "$@" >/dev/null 2>&1; then
		echo ok >>"/tmp/clients.$MODE"
	else
		echo fail >>"/tmp/clients.$MODE"
	fi
}

# The fixed load: 44 connections in four phases.  Markers in the trace name
# each phase; sequential connections get one marker each.
load() {
	: >"/tmp/clients.$MODE"
	mark "phase seq n=8 sequential HTTP/1.0 GET, closed"
	for _i in 1 2 3 4 5 6 7 8; do
		mark "conn seq.$_i"
		client 'send:GET / HTTP/1.0\r\n\r\n' "expect:$R200C" eof
	done
	mark "phase burst n=8 concurrent HTTP/1.0 GET, closed"
	_pids=
	for _i in 1 2 3 4 5 6 7 8; do
		client 'send:GET / HTTP/1.0\r\n\r\n' "expect:$R200C" eof &
		_pids="$_pids $!"
	done
	for _p in $_pids; do wait_killed "$_p" 40; done
	mark "phase hold n=4 concurrent keep-alive, 2 requests 600 ms apart"
	_pids=
	for _i in 1 2 3 4; do
		client 'send:GET / HTTP/1.1\r\nHost: x\r\n\r\n' "expect:$R200K" open open \
			'send:GET /2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' \
			"expect:$R200C" eof &
		_pids="$_pids $!"
	done
	for _p in $_pids; do wait_killed "$_p" 40; done
	mark "phase htstress n=24 htstress -n 24 -c 4 -t 1"
	timeout 60 htstress -n 24 -c 4 -t 1 "$URL" >/tmp/ht.out 2>&1
	_good=$(awk 'index($0, "good requests:") == 1 { print $3; exit }' /tmp/ht.out)
	mark "phase end"
}

trace_mode() {
	MODE=$1
	_d=$OUT/$MODE
	mkdir -p "$_d"
	tasks >"$_d/tasks-before.txt"
	setup_trace || return 1
	echo 1 >"$TR/tracing_on"
	mark "mode $MODE begin"
	insmod_mode "$MODE" || { echo 0 >"$TR/tracing_on"; return 1; }
	# the trace is read after rmmod, when %ps can no longer name the
	# module's functions: keep their addresses for the host's parser
	grep '\[khttpd\]' /proc/kallsyms >"$_d/kallsyms.txt"
	sleep 0.5
	load
	sysfs_wq >"$_d/sysfs-workqueue.txt"
	tasks >"$_d/tasks-loaded.txt"
	rmmod khttpd &
	wait_killed $! 30 || echo "# rmmod did not finish in 30 s"
	sleep 0.5
	mark "mode $MODE end"
	echo 0 >"$TR/tracing_on"
	tasks >"$_d/tasks-after.txt"
	cat "$TR/trace" >"$_d/trace.txt"
	for _c in "$TR"/per_cpu/cpu*; do
		echo "== ${_c##*/}"
		cat "$_c/stats"
	done >"$_d/buffer-stats.txt"
	dmesg | grep khttpd >"$_d/dmesg.txt"
	_lost=$(awk '/^(overrun|dropped events):/ { n += $NF } END { print n + 0 }' "$_d/buffer-stats.txt")
	_cl=$(grep -c ok "/tmp/clients.$MODE")
	_lines=$(grep -vc '^#' "$_d/trace.txt")
	{
		echo "mode=$MODE"
		echo "clients_ok=$_cl/20"
		echo "htstress_good=${_good:-0}/24"
		echo "lost_events=$_lost"
		echo "trace_lines=$_lines"
	} >"$_d/result.txt"
	echo "# $MODE: clients $_cl/20, htstress good ${_good:-0}/24, $_lines events, $_lost lost"
	[ "$_cl" = 20 ] && [ "${_good:-0}" = 24 ] && [ "$_lost" = 0 ] && ! loaded
}

N=0
for _m in $MODES; do N=$((N + 1)); done
echo "KTAP version 1"
echo "1..$((N + 1))"
echo "# khttpd trace: kernel $(uname -r), $(nproc) CPU(s)"
mkdir -p "$OUT"
if ! mount -t tracefs nodev "$TR" 2>/dev/null && [ ! -e "$TR/trace" ]; then
	echo "# cannot mount tracefs on $TR"
fi
{
	echo "uname_r=$(uname -r)"
	echo "uname_v=$(uname -v)"
	echo "nproc=$(nproc)"
	echo "cmdline=$(cat /proc/cmdline)"
	echo "modes=$MODES"
	echo "buffer_size_kb=$BUF_KB"
	echo "trace_clock=global"
} >"$OUT/guest.txt"
for _e in workqueue/workqueue_queue_work workqueue/workqueue_activate_work \
	  workqueue/workqueue_execute_start workqueue/workqueue_execute_end \
	  task/task_newtask task/task_rename sched/sched_process_exit \
	  sched/sched_wakeup sched/sched_wakeup_new sched/sched_switch; do
	echo "== $_e"
	cat "$TR/events/$_e/format" 2>&1
done >"$OUT/formats.txt"
dmesg -c >/dev/null

for MODE in $MODES; do
	if [ -e "$TR/trace" ] && trace_mode "$MODE" >"/tmp/mode.out" 2>&1; then
		ok "$MODE: trace captured"
	else
		not_ok "$MODE: trace captured"
	fi
	sed -e '/^# /!s/^/# /' /tmp/mode.out
	if loaded; then
		rmmod khttpd 2>/dev/null
	fi
done

if dmesg | grep -E 'BUG|WARNING|Oops|Call Trace|general protection'; then
	not_ok "dmesg clean"
else
	ok "dmesg clean"
fi

# the results, to the host through the third serial port
if [ -c "$DATA" ]; then
	stty -F "$DATA" raw -echo 2>/dev/null
	(cd "$OUT" && tar cf - .) | gzip -9 >/tmp/out.tar.gz
	_sum=$(sha256sum /tmp/out.tar.gz | cut -d' ' -f1)
	_size=$(wc -c </tmp/out.tar.gz)
	{
		echo "begin khttpd-trace $_size $_sum"
		base64 /tmp/out.tar.gz
		echo "end khttpd-trace"
	} >"$DATA"
	echo "# sent $_size bytes (sha256 $_sum) to $DATA"
else
	echo "# no $DATA: results not sent"
fi

echo "# khttpd trace: $((T - FAILED))/$T passed"
echo "# khttpd-vmtest: end"
sync
poweroff -f
