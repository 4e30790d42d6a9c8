#!/bin/busybox sh
# /init of the khttpd VM test guest (busybox ash).
#
# Results go to the second serial port (/dev/ttyS1) as KTAP; the kernel
# console stays on ttyS0.  The host reads both from files, because QEMU
# exits 0 on any power-off.  Settings come from the kernel command line
# (unknown name=value words become environment variables of init):
#   vt_rounds vt_warmup vt_requests vt_conc vt_threads
#   vt_cmwq_flags=F: wq_flags of the paired rounds' cmwq runs (default unbound)
#   vt_only=bench: only the paired throughput rounds and the dmesg check
#   vt_budget=S: start no paired round after S seconds of uptime once three
#                rounds are done (keeps a slow, contended run in its limit)
# shellcheck shell=dash

/bin/busybox mkdir -p /proc /sys /dev /tmp /sbin /usr/bin /usr/sbin
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t debugfs debugfs /sys/kernel/debug	# the module's khttpd/conns
ip link set lo up

exec >/dev/ttyS1 2>&1

ROUNDS=${vt_rounds:-5}
WARMUP=${vt_warmup:-1}
REQUESTS=${vt_requests:-3000}
CONC=${vt_conc:-1}
THREADS=${vt_threads:-4}
ONLY=${vt_only:-all}
BUDGET=${vt_budget:-0}
CMWQ_FLAGS=${vt_cmwq_flags:-unbound}
URL=http://127.0.0.1:8081/
CONN_TIMEOUT=10		# HTTP_CONN_TIMEOUT_SEC in http_server.h
MODULE=/khttpd.ko

# ---------------------------------------------------------------- helpers

T=0
FAILED=0
BAIL=

# resp, R200C, R200K, loaded, wait_pid
# shellcheck source=guest-lib.sh
. /guest-lib.sh
R501C=$(resp "501 Not Implemented" "501 Not Implemented" 19 Close)
R501K=$(resp "501 Not Implemented" "501 Not Implemented" 19 Keep-Alive)
R400C=$(resp "400 Bad Request" "400 Bad Request" 15 Close)
H200C=$(resp "200 OK" "" 12 Close)	# HEAD: the 200's head, no body
H200K=$(resp "200 OK" "" 12 Keep-Alive)

C() {
	khttpc -T 10 "$@"
}

uptime_s() {
	cut -d' ' -f1 /proc/uptime
}

# live_conns: the module's own count of connections on its live list
live_conns() {
	awk '$1 == "live" { print $2 }' /sys/kernel/debug/khttpd/conns 2>/dev/null
}

# wait_live N SECONDS: until the module counts exactly N live connections
wait_live() {
	_i=0
	while [ "$_i" -lt $(($2 * 10)) ]; do
		LIVE=$(live_conns)
		[ "$LIVE" = "$1" ] && return 0
		sleep 0.1
		_i=$((_i + 1))
	done
	echo "the module counts ${LIVE:-?} live connection(s) after $2 s, expected $1"
	return 1
}

# wait_file PATH SECONDS: until PATH exists
wait_file() {
	_i=0
	while [ ! -e "$1" ]; do
		[ "$_i" -ge $(($2 * 10)) ] && return 1
		sleep 0.1
		_i=$((_i + 1))
	done
}

# What the kernel prints when something went wrong: BUG/WARNING/Oops and
# their traces, slub_debug's and kmem_cache_destroy()'s reports of objects
# left in the module's caches at rmmod, and the module's own drain check.
# Counted after every test (a new line fails that test) and at the end.
KERNEL_BAD='BUG|WARNING|Oops|refcount|Call Trace|blocked for more than|general protection|left after drain|Objects remaining|still has objects'

complaints() {
	dmesg | grep -cE "$KERNEL_BAD"
}

# established N: wait (<= 10 s) until N server-side connections on :8081
established() {
	_i=0
	while [ "$_i" -lt 100 ]; do
		_n=$(awk '$2 ~ /:1F91$/ && $4 == "01"' /proc/net/tcp | wc -l)
		[ "$_n" -ge "$1" ] && return 0
		sleep 0.1
		_i=$((_i + 1))
	done
	echo "only $_n of $1 connections established"
	return 1
}

# rmmod_bounded SECONDS: 0 removed, 1 refused, 2 hung (bails out)
rmmod_bounded() {
	_t0=$(uptime_s)
	rmmod khttpd &
	_p=$!
	wait_pid "$_p" "$1"
	_rc=$?
	if [ "$_rc" -eq 124 ]; then
		echo "rmmod still running after $1 s; blocked tasks:"
		echo w >/proc/sysrq-trigger
		dmesg | tail -40
		BAIL="rmmod hung"
		return 2
	fi
	RMMOD_SECS=$(awk -v a="$_t0" -v b="$(uptime_s)" 'BEGIN { printf "%.2f", b - a }')
	if [ "$_rc" -ne 0 ]; then
		echo "rmmod failed with $_rc"
		return 1
	fi
	if loaded; then
		echo "khttpd still in /proc/modules after rmmod"
		return 1
	fi
	return 0
}

ensure_unloaded() {
	if loaded; then
		rmmod_bounded 30 >/dev/null
	fi
}

# field NAME FILE: a figure from htstress's result block
field() {
	awk -v k="$1" 'index($0, k) == 1 { sub(/^[^:]*:[ ]*/, ""); print $1; exit }' "$2"
}

# run DESCRIPTION COMMAND...: one KTAP test line
run() {
	_desc=$1
	shift
	T=$((T + 1))
	if [ -n "$BAIL" ]; then
		echo "not ok $T - $_desc # not run: $BAIL"
		FAILED=$((FAILED + 1))
		return
	fi
	_k0=$(complaints)
	"$@" >/tmp/test.out 2>&1
	_rc=$?
	if [ "$_rc" -eq 0 ] && [ "$(complaints)" -gt "$_k0" ]; then
		echo "the kernel complained during this test:" >>/tmp/test.out
		# the new complaints, with slub_debug's "Allocated in" caller
		# of each leaked object
		dmesg | grep -E "$KERNEL_BAD|Allocated in" |
			awk -v k="$_k0" '!/Allocated in/ { n++ } n > k' |
			head -n 10 >>/tmp/test.out
		_rc=1
	fi
	if [ "$_rc" -eq 0 ]; then
		echo "ok $T - $_desc"
		grep '^# ' /tmp/test.out
	elif [ "$_rc" -eq 77 ]; then
		echo "ok $T - $_desc # SKIP $(tail -n 1 /tmp/test.out)"
	else
		echo "not ok $T - $_desc"
		FAILED=$((FAILED + 1))
		sed -e '/^# /!s/^/# /' /tmp/test.out
		echo "# --- dmesg tail ---"
		dmesg | tail -n 25 | sed -e 's/^/# /'
	fi
}

# ---------------------------------------------------------- per-mode tests

t_insmod() {
	insmod "$MODULE" mode="$1" || return 1
	loaded || { echo "not in /proc/modules"; return 1; }
	_m=$(cat /sys/module/khttpd/parameters/mode)
	[ "$_m" = "$1" ] || { echo "mode parameter reads '$_m'"; return 1; }
	echo "# $(dmesg | grep 'khttpd: listening' | tail -n 1 | sed -e 's/^\[[^]]*\] //')"
	# the leak check at rmmod needs caches of the module's own: a cache
	# merged into another one (kmalloc-4k, say) hides objects left in it
	for _c in khttpd_conn khttpd_buf; do
		_d=/sys/kernel/slab/$_c
		if [ ! -d "$_d" ] || [ -L "$_d" ]; then
			echo "slab cache $_c missing or merged ($(readlink "$_d" 2>/dev/null)); boot with slub_debug=...,khttpd_*"
			return 1
		fi
		echo "# slab cache $_c: sanity_checks=$(cat $_d/sanity_checks) red_zone=$(cat $_d/red_zone) poison=$(cat $_d/poison) store_user=$(cat $_d/store_user)"
	done
	[ "$(live_conns)" = 0 ] || { echo "debugfs khttpd/conns reads '$(live_conns)' live"; return 1; }
}

t_get() {
	C 'send:GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "expect:$R200C" eof
}

t_post() {
	C 'send:POST /form HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nConnection: close\r\n\r\na=1' \
		"expect:$R501C" eof
}

t_head() {
	C 'send:HEAD / HTTP/1.1\r\nHost: x\r\n\r\n' "expect:$H200K" open \
		'send:HEAD /x HTTP/1.0\r\n\r\n' "expect:$H200C" eof
}

t_keepalive() {
	C 'send:GET / HTTP/1.1\r\nHost: x\r\n\r\n' "expect:$R200K" open \
		'send:GET /second HTTP/1.1\r\nHost: x\r\n\r\n' "expect:$R200K" open \
		'send:GET /last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' \
		"expect:$R200C" eof
}

t_keepalive10() {
	C 'send:GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n' "expect:$R200K" open \
		'send:DELETE /x HTTP/1.1\r\nHost: x\r\n\r\n' "expect:$R501K" open \
		shut eof
}

t_pipeline() {
	C 'send:GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' \
		"expect:$R200K$R200C" eof
}

t_longurl() {
	C -L 4096 'send:GET @L@ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' \
		"expect:$R200C" eof
}

t_garbage() {
	C 'send:\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\r\n\r\n' "expect:$R400C" eof &&
	C 'send:GET / HTTP/2.0\r\n\r\n' "expect:$R400C" eof &&
	C 'send:GET /\r\n\r\n' "expect:$R400C" eof &&
	C 'send:GET / HTTP/1.1\r\nBad Header: x\r\n\r\n' "expect:$R400C" eof &&
	C 'send:POST / HTTP/1.1\r\nContent-Length: 12x\r\n\r\n' "expect:$R400C" eof &&
	C 'send:GET / HTTP/1.1\r\n\r\n\x00\x01\x02' "expect:$R200K$R400C" eof
}

t_truncated() {
	C 'send:GET / HTTP/1.1\r\nHost: x' shut eof &&
	C 'send:POST / HTTP/1.1\r\nContent-Length: 100\r\n\r\nshort' shut eof &&
	C shut eof
}

# a silent client started right after insmod; the connection's 10 s
# receive timeout must close it while the other tests run
start_idle_watch() {
	khttpc -T 40 idle:30 >/tmp/watch.out 2>&1 &
	WATCH_PID=$!
}

t_rcvtimeo() {
	[ -n "${WATCH_PID:-}" ] || { echo "no idle client was started"; return 1; }
	wait_pid "$WATCH_PID" 30
	_rc=$?
	WATCH_PID=
	grep '^# ' /tmp/watch.out
	if [ "$_rc" -ne 0 ]; then
		echo "the idle client was not disconnected"
		cat /tmp/watch.out
		return 1
	fi
	_s=$(sed -n 's/^# idle: closed by the server after \([0-9.]*\) s$/\1/p' /tmp/watch.out)
	if [ -z "$_s" ] || awk -v s="$_s" 'BEGIN { exit !(s < 9 || s > 20) }'; then
		echo "expected a close after about 10 s, got: $(cat /tmp/watch.out)"
		return 1
	fi
}

t_htstress() {
	timeout 150 htstress "$@" -n "$REQUESTS" -c "$CONC" -t "$THREADS" "$URL" \
		>/tmp/ht.out 2>&1
	_rc=$?
	_good=$(field "good requests:" /tmp/ht.out)
	echo "# htstress ${*:+$* }-n $REQUESTS -c $CONC -t $THREADS: $(field 'requests/sec:' /tmp/ht.out) requests/sec, good $_good/$REQUESTS, $(field 'seconds:' /tmp/ht.out) s"
	if [ "$_rc" -ne 0 ] || [ "$_good" != "$REQUESTS" ]; then
		echo "htstress exit $_rc"
		cat /tmp/ht.out
		return 1
	fi
}

# Five idle clients, then rmmod.  The module's own count must say exactly
# five (thousands of connections were served before; each must have left the
# live list when it ended), and rmmod must end them, not their 10 s receive
# timeout.  The time each client waited for the close is measured by the
# client from its last exchange, so it includes the setup: a close after
# less than 9 s of silence cannot be the timeout, whatever the setup took
# (a drain that waited for the timeout shows 10 s or more), and a correct
# module fails only if setup plus rmmod exceed 9 s.
t_rmmod_idle() {
	rm -f /tmp/idle*.out /tmp/idle5.ready
	_ts=$(uptime_s)
	_pids=
	for _k in 1 2 3; do
		khttpc -T 60 idle:40 >/tmp/idle$_k.out 2>&1 &
		_pids="$_pids $!"
	done
	khttpc -T 60 'send:GET / HTTP/1.1\r\nHost: x' idle:40 >/tmp/idle4.out 2>&1 &
	_pids="$_pids $!"
	khttpc -T 60 'send:GET / HTTP/1.1\r\n\r\n' "expect:$R200K" \
		mark:/tmp/idle5.ready idle:40 >/tmp/idle5.out 2>&1 &
	_pids="$_pids $!"
	_bad=0
	wait_live 5 8 || _bad=1
	wait_file /tmp/idle5.ready 8 || { echo "the fifth client got no response"; _bad=1; }
	_te=$(uptime_s)
	rmmod_bounded 30 || return 1
	_line=$(dmesg | grep 'live connection' | tail -n 1 | sed -e 's/^\[[^]]*\] //')
	echo "# $_line"
	echo "# $(dmesg | grep 'unloaded after' | tail -n 1 | sed -e 's/^\[[^]]*\] //')"
	_live=$(echo "$_line" | sed -n 's/.*shutting down \([0-9]*\) live.*/\1/p')
	if [ "$_live" != 5 ]; then
		echo "expected the drain to shut down 5 live connections, dmesg says: $_line"
		_bad=1
	fi
	_max=0
	for _k in 1 2 3 4 5; do
		# shellcheck disable=SC2086 # split on purpose
		_p=$(echo $_pids | cut -d' ' -f$_k)
		if ! wait_pid "$_p" 15; then
			echo "idle client $_k did not see its connection closed"
			_bad=1
		fi
		# a reset (unread bytes at release) ends the wait as well as a FIN
		_s=$(sed -n 's/^# idle: [a-z ]* after \([0-9.]*\) s$/\1/p' /tmp/idle$_k.out)
		[ -n "$_s" ] || { echo "idle client $_k: no close seen"; _bad=1; continue; }
		_max=$(awk -v a="$_max" -v b="$_s" 'BEGIN { print (b > a ? b : a) }')
	done
	echo "# 5 idle clients counted after $(awk -v a="$_ts" -v b="$_te" 'BEGIN { printf "%.2f", b - a }') s, rmmod took $RMMOD_SECS s, each client closed after at most $_max s of silence (receive timeout ${CONN_TIMEOUT} s)"
	if awk -v s="$_max" 'BEGIN { exit !(s >= 9) }'; then
		echo "a client waited $_max s for its close: the receive timeout, not rmmod, may have closed it"
		_bad=1
	fi
	[ "$_bad" -eq 0 ] || cat /tmp/idle*.out
	return $_bad
}

t_rmmod_load() {
	insmod "$MODULE" mode="$1" || return 1
	# a fixed, heavier load than the benchmark's: 20 connections in flight
	timeout 150 htstress -n 100000000 -c 10 -t 2 "$URL" \
		>/tmp/load.out 2>&1 &
	_hp=$!
	sleep 3
	rmmod_bounded 30
	_rc=$?
	[ "$_rc" -eq 0 ] && echo "# rmmod under htstress load took $RMMOD_SECS s"
	kill -INT "$_hp" 2>/dev/null
	if ! wait_pid "$_hp" 20; then
		echo "htstress did not stop"
		kill -KILL "$_hp" 2>/dev/null
		_rc=1
	fi
	_good=$(field "good requests:" /tmp/load.out)
	echo "# htstress during rmmod: good ${_good:-?}, socket errors $(field 'socket errors:' /tmp/load.out)"
	if [ "${_good:-0}" -eq 0 ]; then
		echo "no load was served before rmmod"
		cat /tmp/load.out
		_rc=1
	fi
	return $_rc
}

# ------------------------------------------------------------ other tests

t_params() {
	for _f in bound,highpri cpu_intensive unbound,highpri; do
		insmod "$MODULE" mode=cmwq wq_flags=$_f max_active=4 || {
			echo "insmod wq_flags=$_f failed"
			return 1
		}
		C 'send:GET / HTTP/1.0\r\n\r\n' "expect:$R200C" eof || return 1
		timeout 60 htstress -n 200 -c 8 -t 1 "$URL" >/tmp/ht.out 2>&1
		_good=$(field "good requests:" /tmp/ht.out)
		echo "# wq_flags=$_f max_active=4: good $_good/200, $(field 'requests/sec:' /tmp/ht.out) requests/sec"
		rmmod_bounded 30 || return 1
		[ "$_good" = 200 ] || return 1
	done
}

t_max_active1() {
	insmod "$MODULE" mode=cmwq max_active=1 || return 1
	khttpc -T 30 'send:GET / HTTP/1.1\r\n\r\n' "expect:$R200K" idle:30 \
		>/tmp/hold.out 2>&1 &
	_hp=$!
	established 1 || return 1
	sleep 1
	_rc=0
	# the only active work item is busy with the first connection
	if khttpc -T 2 'send:GET / HTTP/1.0\r\n\r\n' "expect:$R200C" >/dev/null; then
		echo "a second connection was served while max_active=1 was in use"
		_rc=1
	else
		echo "# second connection waited while the first one held the only active work item"
	fi
	kill "$_hp"
	wait "$_hp" 2>/dev/null
	C 'send:GET / HTTP/1.0\r\n\r\n' "expect:$R200C" eof || _rc=1
	rmmod_bounded 30 || _rc=1
	return $_rc
}

t_bad_params() {
	# one insmod per word; '+' joins the parameters of one insmod
	for _p in mode=bogus wq_flags=bogus wq_flags= max_active=-1 \
		  max_active=100000 port=0 mode=kthread+wq_flags=bogus \
		  mode=kthread+max_active=-1 wq_flags=unbound,cpu_intensive \
		  wq_flags=cpu_intensive,unbound; do
		# shellcheck disable=SC2046 # split on purpose: one word per parameter
		if insmod "$MODULE" $(echo "$_p" | tr + ' ') 2>/dev/null; then
			echo "insmod $_p was accepted"
			rmmod_bounded 30
			return 1
		fi
		if loaded; then
			echo "module loaded after a refused insmod $_p"
			return 1
		fi
	done
	echo "# refused: mode=bogus wq_flags=bogus wq_flags= max_active=-1 max_active=100000" \
	     "port=0 mode=kthread+wq_flags=bogus mode=kthread+max_active=-1" \
	     "wq_flags=unbound,cpu_intensive wq_flags=cpu_intensive,unbound"
}

# stat_snap: busy and total jiffies of all CPUs, context switches, forks,
# and the CPU time of this shell's waited-for children (htstress)
stat_snap() {
	awk '$1 == "cpu" { t = 0; for (i = 2; i <= 9; i++) t += $i;
			   b = t - $5 - $6 }
	     $1 == "ctxt" { c = $2 } $1 == "processes" { p = $2 }
	     END { printf "%d %d %d %d ", b, t, c, p }' /proc/stat
	awk '{ print $16 + $17 }' /proc/$$/stat
}

# stat_delta LABEL BEFORE AFTER: where one run's time went, per request;
# writes "other-ms" (CPU not charged to htstress) to /tmp/other.last, which
# t_paired appends to /tmp/other.MODE
stat_delta() {
	echo "$2 $3" | awk -v l="$1" -v n="$REQUESTS" -v cpus="$(nproc)" '{
		b = $6 - $1; t = $7 - $2; h = $10 - $5
		printf "# cpu %s: busy %.0f%% of %d CPU(s), %.2f ms CPU/request (htstress %.2f, other %.2f), %.1f context switches/request, %.2f forks/request\n",
		       l, t ? 100 * b / t : 0, cpus, 10 * b / n, 10 * h / n, 10 * (b - h) / n, ($8 - $3) / n, ($9 - $4) / n
		printf "%.3f\n", 10 * (b - h) / n >"/tmp/other.last" }'
}

# paired_run LABEL MODE: insmod, one htstress run, rmmod; sets _rps, _good
paired_run() {
	if [ "$2" = cmwq ]; then
		insmod "$MODULE" mode=cmwq wq_flags="$CMWQ_FLAGS" || return 1
	else
		insmod "$MODULE" mode="$2" || return 1
	fi
	_s0=$(stat_snap)
	timeout 150 htstress -n "$REQUESTS" -c "$CONC" -t "$THREADS" \
		"$URL" >/tmp/ht.out 2>&1
	_s1=$(stat_snap)
	rmmod_bounded 30 || return 1
	_rps=$(field "requests/sec:" /tmp/ht.out)
	_good=$(field "good requests:" /tmp/ht.out)
	echo "# $1 $2: $_rps requests/sec (good $_good/$REQUESTS)"
	stat_delta "$1 $2" "$_s0" "$_s1"
	[ "$_good" = "$REQUESTS" ]
}

median() {
	sort -n "$1" | awk '{ v[NR] = $1 }
		END { if (NR % 2) print v[(NR + 1) / 2];
		      else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

t_paired() {
	: >/tmp/ratios
	: >/tmp/other.ratios
	for _m in kthread cmwq; do
		: >"/tmp/rps.$_m"
		: >"/tmp/other.$_m"
	done
	# warm-up: the first runs after boot grow the kworker pool and fill
	# slab caches; they are shown but not counted
	_w=1
	while [ "$_w" -le "$WARMUP" ]; do
		for _m in kthread cmwq; do
			paired_run "warm-up $_w" "$_m" || return 1
		done
		_w=$((_w + 1))
	done
	_r=1
	while [ "$_r" -le "$ROUNDS" ]; do
		if [ "$BUDGET" -gt 0 ] && [ "$_r" -gt 3 ] &&
		   awk -v u="$(uptime_s)" -v b="$BUDGET" 'BEGIN { exit !(u > b) }'; then
			echo "# time budget reached: $((_r - 1)) of $ROUNDS rounds run"
			break
		fi
		if [ $((_r % 2)) -eq 1 ]; then
			_order="kthread cmwq"
		else
			_order="cmwq kthread"
		fi
		for _m in $_order; do
			paired_run "round $_r" "$_m" || return 1
			echo "$_rps" >>"/tmp/rps.$_m"
			eval "_rps_$_m=\$_rps"
			cat /tmp/other.last >>"/tmp/other.$_m"
			eval "_other_$_m=\$(cat /tmp/other.last)"
		done
		# shellcheck disable=SC2154
		awk -v c="$_rps_cmwq" -v k="$_rps_kthread" \
			'BEGIN { printf "%.3f\n", c / k }' >>/tmp/ratios
		# shellcheck disable=SC2154
		awk -v c="$_other_cmwq" -v k="$_other_kthread" \
			'BEGIN { printf "%.3f\n", (c > 0 ? k / c : 0) }' >>/tmp/other.ratios
		echo "# round $_r cmwq/kthread: $(tail -n 1 /tmp/ratios)"
		_r=$((_r + 1))
	done
	echo "# cpu medians: other-than-htstress ms/request kthread=$(median /tmp/other.kthread) cmwq=$(median /tmp/other.cmwq) kthread/cmwq=$(median /tmp/other.ratios)"
	echo "# paired: rounds=$((_r - 1)) requests=$REQUESTS concurrency=$CONC threads=$THREADS cmwq_flags=$CMWQ_FLAGS kthread_median=$(median /tmp/rps.kthread) cmwq_median=$(median /tmp/rps.cmwq) ratio_median=$(median /tmp/ratios) ratios=$(paste -s -d, /tmp/ratios)"
}

t_dmesg() {
	if dmesg | grep -E "$KERNEL_BAD"; then
		return 1
	fi
	echo "# no BUG, WARNING, Oops, refcount or slab-leak lines in dmesg"
}

# ------------------------------------------------------------------ main

PER_MODE=16
GLOBAL=5
if [ "$ONLY" = bench ]; then
	PLAN=2
else
	PLAN=$((2 * PER_MODE + GLOBAL))
fi
echo "KTAP version 1"
echo "1..$PLAN"
echo "# khttpd VM test: kernel $(uname -r), $(nproc) CPU(s)"
echo "# cpu vulnerabilities: meltdown=$(cat /sys/devices/system/cpu/vulnerabilities/meltdown 2>/dev/null || echo ?); spectre_v2=$(cat /sys/devices/system/cpu/vulnerabilities/spectre_v2 2>/dev/null || echo ?)"
CS=/sys/devices/system/clocksource/clocksource0
echo "# clocksource: $(cat $CS/current_clocksource 2>/dev/null || echo ?) (available: $(cat $CS/available_clocksource 2>/dev/null || echo ?))"
dmesg -c >/dev/null

if [ "$ONLY" != bench ]; then
	for MODE in kthread cmwq; do
		run "$MODE: insmod mode=$MODE" t_insmod $MODE
		loaded && start_idle_watch
		run "$MODE: GET HTTP/1.0 -> exact 200 response, closed" t_get
		run "$MODE: POST -> exact 501 response, closed" t_post
		run "$MODE: HEAD -> the 200's headers without a body" t_head
		run "$MODE: HTTP/1.1 keep-alive, two requests on one connection" t_keepalive
		run "$MODE: HTTP/1.0 keep-alive on request, 501 keep-alive" t_keepalive10
		run "$MODE: two pipelined requests in one segment" t_pipeline
		run "$MODE: 4 KiB URL -> 200" t_longurl
		run "$MODE: malformed requests -> 400 and close" t_garbage
		run "$MODE: truncated requests -> closed without response" t_truncated
		run "$MODE: still serving after bad input" t_get
		run "$MODE: htstress HTTP/1.0" t_htstress
		run "$MODE: htstress -k keep-alive" t_htstress -k
		run "$MODE: an idle client is closed by the 10 s receive timeout" t_rcvtimeo
		run "$MODE: rmmod with idle clients connected" t_rmmod_idle
		run "$MODE: rmmod while htstress runs" t_rmmod_load $MODE
		ensure_unloaded
	done

	run "cmwq: wq_flags bound,highpri / cpu_intensive / unbound,highpri with max_active=4" t_params
	ensure_unloaded
	run "cmwq: max_active=1 serves one connection at a time" t_max_active1
	ensure_unloaded
	run "invalid parameters are refused" t_bad_params
	ensure_unloaded
fi
run "paired throughput, $ROUNDS rounds of $REQUESTS requests, modes alternating" t_paired
ensure_unloaded
run "dmesg clean" t_dmesg

if [ "$T" -ne "$PLAN" ]; then
	echo "# test count $T does not match the plan"
fi
[ -n "$BAIL" ] && echo "Bail out! $BAIL"
echo "# khttpd VM test: $((T - FAILED))/$T passed"
echo "# khttpd-vmtest: end"
sync
poweroff -f
