#!/bin/bash
# kmod/vmtest.sh: test khttpd.ko inside QEMU, never on this machine.
#
# Boots Debian's own kernel (the linux-image package matching the installed
# headers, downloaded, never installed) with an initramfs holding busybox,
# the module, htstress and khttpc; the guest runs vmtest/init.sh and writes
# KTAP to its second serial port.  KVM is tried only when it really works,
# TCG otherwise.
#
# Exit: 0 pass, 1 fail, 4 skip (no qemu, no headers, no kernel package).
# Settings (environment): KDIR, VMTEST_ACCEL=kvm|tcg, VMTEST_TIMEOUT (s),
#   VMTEST_ROUNDS, VMTEST_WARMUP, VMTEST_REQUESTS, VMTEST_CONC, VMTEST_THREADS,
#   VMTEST_SMP, VMTEST_CMWQ_FLAGS (wq_flags of the paired cmwq runs), VMTEST_KARGS (extra kernel command-line arguments),
#   VMTEST_ONLY=bench (only the paired throughput rounds and the dmesg check),
#   VMTEST_CPU (QEMU -cpu model under TCG, default max),
#   VMTEST_SLUB_DEBUG (the guest's slub_debug=, default FZPU,khttpd_*: the
#   module's two caches only; empty for none),
#   VMTEST_FAULT=<name> (build a broken module: see fault-check.sh).
#   Hook for trace.sh (make trace): VMTEST_GUEST=trace, VMTEST_SERIAL3 (below).
set -u

HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=$HERE/.cache
RUNS=$CACHE/vmtest
WORK=$RUNS/run-$(date +%Y%m%d-%H%M%S)-$$	# one directory per run: runs may overlap
TIMEOUT=${VMTEST_TIMEOUT:-280}
ROUNDS=${VMTEST_ROUNDS:-5}
WARMUP=${VMTEST_WARMUP:-1}
# the paired rounds' load: upstream khttpd's `make check` (htstress -c 1 -t 4),
# with fewer requests than its 100000 (TCG figures are about 100 times lower)
REQUESTS=${VMTEST_REQUESTS:-3000}
CONC=${VMTEST_CONC:-1}
THREADS=${VMTEST_THREADS:-4}
SMP=${VMTEST_SMP:-2}
ONLY=${VMTEST_ONLY:-all}
CPU=${VMTEST_CPU:-max}
# Sanity checks, red zones, poisoning and alloc/free call traces on the
# module's caches (khttpd_conn, khttpd_buf) and no other: a leak at rmmod
# then names the caller that allocated each object, a use-after-free reads
# 0x6b, and the rest of the kernel runs at full speed.
SLUB_DEBUG=${VMTEST_SLUB_DEBUG-FZPU,khttpd_*}
START=$(date +%s)

skip() {
	echo "# SKIP kmod VM test: $*"
	exit 4
}

die() {
	echo "vmtest: FAIL: $*" >&2
	exit 1
}

# ------------------------------------------- hook for trace.sh (make trace)
# VMTEST_GUEST=test|trace picks the guest's /init: vmtest/init.sh (the VM
# test, default) or vmtest/trace-init.sh (ftrace capture).  VMTEST_SERIAL3=FILE
# gives the guest a third serial port, /dev/ttyS2, written to FILE on the host.
case "${VMTEST_GUEST:-test}" in
test) GUEST_INIT=$HERE/vmtest/init.sh ;;
trace) GUEST_INIT=$HERE/vmtest/trace-init.sh ;;
*) die "VMTEST_GUEST=${VMTEST_GUEST}: expected test or trace" ;;
esac
EXTRA_SERIAL=()
if [ -n "${VMTEST_SERIAL3:-}" ]; then
	EXTRA_SERIAL=(-serial "file:$VMTEST_SERIAL3")
fi

elapsed() {
	echo $(($(date +%s) - START))
}

# ------------------------------------------------------------ prerequisites

if [ -z "${KDIR:-}" ]; then
	KDIR=$(find /usr/src -maxdepth 1 -name 'linux-headers-*-amd64' 2>/dev/null | sort | head -n 1)
fi
if [ -z "$KDIR" ] || [ ! -f "$KDIR/Makefile" ]; then
	skip "no kernel headers in /usr/src (apt-get install linux-headers-amd64)"
fi
KVER=$(sed -n 's/^#define UTS_RELEASE "\(.*\)"$/\1/p' \
	"$KDIR/include/generated/utsrelease.h" 2>/dev/null)
[ -n "$KVER" ] || skip "cannot tell the kernel release of $KDIR"

command -v qemu-system-x86_64 >/dev/null ||
	skip "qemu-system-x86_64 not installed (apt-get install qemu-system-x86)"
for tool in cpio dpkg-deb dpkg-query apt-get timeout make "${CC:-cc}"; do
	command -v "$tool" >/dev/null || skip "$tool not installed (apt-get install build-essential cpio)"
done
BUSYBOX=${BUSYBOX:-/bin/busybox}
if [ ! -x "$BUSYBOX" ] || LC_ALL=C ldd "$BUSYBOX" 2>&1 | grep -q '=>'; then
	skip "no static busybox at $BUSYBOX (apt-get install busybox-static)"
fi

PKG=linux-image-$KVER
PKGVER=$(dpkg-query -W -f='${Version}' "linux-headers-$KVER" 2>/dev/null) ||
	skip "headers $KDIR do not come from a Debian package"

mkdir -p "$CACHE" "$WORK"
# keep the five newest run directories
# shellcheck disable=SC2012
ls -1dt "$RUNS"/run-* 2>/dev/null | tail -n +6 | xargs -r rm -rf

# Downloads, extraction and the build are shared: one run at a time there.
# The wait covers the holder's download (up to 600 s) and its build.
exec 9>"$CACHE/prepare.lock"
if command -v flock >/dev/null && ! flock -w 900 9; then
	skip "another vmtest run has held $CACHE/prepare.lock for 15 minutes"
fi

# ----------------------------------------------- the matching kernel image

deb=$(ls "$CACHE/${PKG}_${PKGVER//:/%3a}_amd64.deb" 2>/dev/null)
if [ -z "$deb" ]; then
	echo "# downloading $PKG=$PKGVER (not installed; cached in kmod/.cache)"
	(cd "$CACHE" && timeout 600 apt-get -q download "$PKG=$PKGVER" \
		>"$WORK/apt.log" 2>&1)
	deb=$(ls "$CACHE/${PKG}_${PKGVER//:/%3a}_amd64.deb" 2>/dev/null)
	[ -n "$deb" ] || {
		sed -e 's/^/# /' "$WORK/apt.log"
		skip "cannot download $PKG=$PKGVER with apt-get download"
	}
fi

# vmlinuz is a bzImage holding a compressed ELF vmlinux; booting that ELF
# through PVH skips the decompressor, which is slow under TCG.
VMLINUZ=$CACHE/vmlinuz-$KVER
VMLINUX=$CACHE/vmlinux-$KVER
if [ ! -s "$VMLINUZ" ]; then
	if ! dpkg-deb --fsys-tarfile "$deb" | tar -xO "./boot/vmlinuz-$KVER" \
		>"$VMLINUZ.tmp.$$"; then
		rm -f "$VMLINUZ.tmp.$$"
		die "no /boot/vmlinuz-$KVER in $deb"
	fi
	mv "$VMLINUZ.tmp.$$" "$VMLINUZ"
fi
extract_elf() {
	local magic cmd off
	for pair in '\xfd7zXZ\x00:xz -dc --single-stream' \
		    '\x28\xb5\x2f\xfd:zstd -dcq' '\x1f\x8b\x08:gzip -dcq'; do
		magic=${pair%%:*}
		cmd=${pair#*:}
		command -v "${cmd%% *}" >/dev/null || continue
		for off in $(LC_ALL=C grep -obUaP "$magic" "$VMLINUZ" | cut -d: -f1 | head -n 5); do
			tail -c +$((off + 1)) "$VMLINUZ" | $cmd >"$VMLINUX.tmp.$$" 2>/dev/null
			if [ "$(head -c 4 "$VMLINUX.tmp.$$" | od -An -tx1 | tr -d ' ')" = 7f454c46 ]; then
				mv "$VMLINUX.tmp.$$" "$VMLINUX"
				return 0
			fi
		done
	done
	rm -f "$VMLINUX.tmp.$$"
	return 1
}
if [ -s "$VMLINUX" ] || extract_elf; then
	KERNEL=$VMLINUX
else
	echo "# could not extract an ELF vmlinux; booting the bzImage"
	KERNEL=$VMLINUZ
fi

# -------------------------------------------------- module and initramfs

if ! make -C "$HERE" KDIR="$KDIR" FAULT="${VMTEST_FAULT:-}" all guest >"$WORK/build.log" 2>&1; then
	cat "$WORK/build.log"
	die "build failed"
fi
vermagic=$(grep -a -o -m1 'vermagic=[^[:cntrl:]]*' "$HERE/khttpd.ko" | head -n 1 | cut -d= -f2-)
case "$vermagic" in
"$KVER "*) ;;
*) die "khttpd.ko has vermagic '$vermagic', the guest runs $KVER" ;;
esac

ROOT=$WORK/root
rm -rf "$ROOT"
mkdir -p "$ROOT/bin"
cp "$BUSYBOX" "$ROOT/bin/busybox"
cp "$HERE/.cache/guest/htstress" "$HERE/.cache/guest/khttpc" "$ROOT/bin/"
cp "$HERE/khttpd.ko" "$ROOT/khttpd.ko"
cp "$GUEST_INIT" "$ROOT/init"
cp "$HERE/vmtest/guest-lib.sh" "$ROOT/guest-lib.sh"	# sourced by both /init scripts
chmod 755 "$ROOT/init"
(cd "$ROOT" && find . | LC_ALL=C sort | cpio -o -H newc --quiet) \
	>"$WORK/initramfs.cpio" || die "cpio failed"
exec 9>&-	# our copies are in the initramfs: release the prepare lock

exec 8>"$CACHE/run.lock"
if command -v flock >/dev/null && ! flock -n 8; then
	echo "# note: another vmtest run is using this machine; both runs' figures suffer"
fi

# ------------------------------------------------------------------- boot

CONSOLE_LOG=$WORK/console.log
KTAP_LOG=$WORK/ktap.log
APPEND="console=ttyS0 panic=-1 loglevel=5 quiet ${SLUB_DEBUG:+slub_debug=$SLUB_DEBUG} ${VMTEST_KARGS:-} vt_rounds=$ROUNDS vt_warmup=$WARMUP vt_requests=$REQUESTS vt_conc=$CONC vt_threads=$THREADS vt_only=$ONLY vt_cmwq_flags=${VMTEST_CMWQ_FLAGS:-unbound} vt_budget=$((TIMEOUT * 2 / 3))"

# run_qemu ACCEL LIMIT PROBE: 0 finished, 3 the accelerator never booted
run_qemu() {
	local accel=$1 limit=$2 probe=$3 pid qpid waited=0
	local -a opts=(-accel "tcg,thread=multi" -cpu "$CPU")
	[ "$accel" = kvm ] && opts=(-accel kvm -cpu host)
	: >"$CONSOLE_LOG"
	: >"$KTAP_LOG"
	rm -f "$WORK/qemu.pid"
	# The subshell keeps bash's "Aborted" job notice out of our output: the
	# "exit" after timeout stops bash from exec'ing it, so the subshell itself
	# reports a killed QEMU, into qemu.log, and exits normally.
	(timeout -k 5 "$limit" qemu-system-x86_64 "${opts[@]}" -smp "$SMP" -m 1024 \
		-nographic -no-reboot -nic none -monitor none -pidfile "$WORK/qemu.pid" \
		-kernel "$KERNEL" -initrd "$WORK/initramfs.cpio" -append "$APPEND" \
		-serial "file:$CONSOLE_LOG" -serial "file:$KTAP_LOG" "${EXTRA_SERIAL[@]}"
	 exit $?) \
		>"$WORK/qemu.log" 2>&1 </dev/null &
	pid=$!
	while kill -0 "$pid" 2>/dev/null; do
		if [ "$probe" = 1 ] && [ "$waited" -ge 40 ] &&
		   ! grep -q '^KTAP version' "$KTAP_LOG"; then
			# $pid is the subshell; timeout runs in a process group
			# of its own, so stop QEMU itself: a guest left running
			# would write into the logs of the TCG run that follows
			qpid=$(cat "$WORK/qemu.pid" 2>/dev/null)
			[ -n "$qpid" ] && kill "$qpid" 2>/dev/null
			kill "$pid" 2>/dev/null
			wait "$pid" 2>/dev/null
			return 3
		fi
		sleep 0.5
		waited=$((waited + 1))
	done
	wait "$pid"
	QEMU_RC=$?
	if [ "$probe" = 1 ] && ! grep -q '^KTAP version' "$KTAP_LOG"; then
		return 3	# e.g. qemu aborted at once under this KVM
	fi
	return 0
}

ACCEL=${VMTEST_ACCEL:-}
KVM_MARK=$CACHE/kvm-unusable
if [ -z "$ACCEL" ]; then
	ACCEL=tcg
	if [ -w /dev/kvm ] && [ ! -e "$KVM_MARK" ]; then
		ACCEL=kvm
	fi
fi
echo "# booting $KVER ($(basename "$KERNEL")) with $ACCEL, $SMP vCPU(s), limit ${TIMEOUT}s"
if [ "$ACCEL" = kvm ] && [ -z "${VMTEST_ACCEL:-}" ]; then
	run_qemu kvm "$TIMEOUT" 1
	if [ $? -eq 3 ]; then
		# QEMU's own last words, not the subshell's "Aborted" notice after them
		why=$(grep '^qemu-system' "$WORK/qemu.log" | tail -n 1)
		echo "# KVM did not boot the guest (${why:-qemu: $(tail -n 1 "$WORK/qemu.log")}); using TCG, remembered in $KVM_MARK"
		echo "qemu $(qemu-system-x86_64 --version | head -n 1)" >"$KVM_MARK"
		ACCEL=tcg
		run_qemu tcg "$TIMEOUT" 0
	fi
else
	run_qemu "$ACCEL" "$TIMEOUT" 0
fi

# ----------------------------------------------------------------- verdict

tr -d '\r' <"$KTAP_LOG" | tr -cd '\11\12\40-\176' >"$KTAP_LOG.txt"
cat "$KTAP_LOG.txt"
plan=$(grep -m1 -E '^1\.\.[0-9]+$' "$KTAP_LOG.txt" | cut -d. -f3)
passed=$(grep -cE '^ok [0-9]+ ' "$KTAP_LOG.txt")
failed=$(grep -cE '^not ok [0-9]+ ' "$KTAP_LOG.txt")
skipped=$(grep -cE '^ok [0-9]+ .*# SKIP' "$KTAP_LOG.txt")
ended=$(grep -c '^# khttpd-vmtest: end' "$KTAP_LOG.txt")

verdict=pass
reason=
if [ -z "$plan" ] || [ "$plan" -eq 0 ]; then
	verdict=fail
	reason="no KTAP plan: the guest did not run the tests"
elif [ "$failed" -gt 0 ]; then
	verdict=fail
	reason="$failed test(s) failed"
elif [ $((passed + failed)) -ne "$plan" ] || [ "$ended" -eq 0 ]; then
	verdict=fail
	reason="$((passed + failed)) of $plan tests reported (guest hung, crashed or timed out${QEMU_RC:+, qemu exit ${QEMU_RC}})"
fi

echo "# vmtest: $ACCEL, $(elapsed) s, $passed passed ($skipped skipped), $failed failed, plan $plan"
grep -E '^# (round|paired)' "$KTAP_LOG.txt" | tail -n 1 | sed -e 's/^# /# vmtest: /'
if [ "$verdict" = fail ]; then
	echo "# vmtest: FAIL: $reason"
	echo "# --- guest console (kernel log) tail ---"
	tail -n 40 "$CONSOLE_LOG" | tr -d '\r' | tr -cd '\11\12\40-\176' |
		sed -e 's/^/# /'
	echo
	echo "# logs: $WORK"
	ln -sfn "$(basename "$WORK")" "$RUNS/last"
	exit 1
fi
ln -sfn "$(basename "$WORK")" "$RUNS/last"
echo "# vmtest: PASS (logs: $WORK)"
exit 0
