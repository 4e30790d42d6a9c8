#!/bin/bash
# kmod/trace.sh OUTDIR: record ftrace traces of khttpd.ko inside QEMU.
#
# Boots the VM test's guest (vmtest.sh: same kernel, build and initramfs) with
# vmtest/trace-init.sh as /init.  The guest traces the workqueue and scheduler
# tracepoints while a fixed load of 44 connections runs against each mode
# (kthread; cmwq unbound; cmwq bound; cmwq unbound max_active=1) and sends the
# results back through a third serial port.  This script unpacks them into
# OUTDIR/<mode>/ and writes OUTDIR/summary.json and OUTDIR/metadata.json with
# the Python parser (khttpd_py.ktrace, standard library only).
#
# Exit: 0 done, 1 failure, 2 usage, 4 skip (no qemu, headers or kernel image:
# vmtest.sh's own skip).
# Settings: TRACE_MODES (default kthread,unbound,bound,max1), TRACE_BUF_KB
# (ring buffer per CPU, default 8192), TRACE_TIMEOUT (s, default 300), PYTHON;
# the vmtest.sh ones (VMTEST_ACCEL, VMTEST_SMP, VMTEST_KARGS...) pass through.
set -u

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)

usage() {
	echo "usage: $0 OUTDIR   (or: make -C kmod trace OUT=OUTDIR)" >&2
	exit 2
}

if [ $# -ne 1 ] || [ -z "$1" ]; then
	usage
fi
OUT=$1
MODES=${TRACE_MODES:-kthread,unbound,bound,max1}
BUF_KB=${TRACE_BUF_KB:-8192}
case "$MODES" in
*[!a-z0-9,]* | "") echo "trace: TRACE_MODES=$MODES: expected e.g. kthread,unbound" >&2; exit 2 ;;
esac
for m in ${MODES//,/ }; do
	case "$m" in
	kthread | unbound | bound | max1) ;;
	*) echo "trace: TRACE_MODES: unknown mode '$m' (kthread, unbound, bound, max1)" >&2; exit 2 ;;
	esac
done
case "$BUF_KB" in
*[!0-9]* | "") echo "trace: TRACE_BUF_KB=$BUF_KB: expected a number of KiB" >&2; exit 2 ;;
esac

if [ -z "${PYTHON:-}" ]; then
	if [ -x "$REPO/.venv/bin/python" ]; then
		PYTHON=$REPO/.venv/bin/python
	else
		PYTHON=python3
	fi
fi
command -v "$PYTHON" >/dev/null || {
	echo "trace: no Python ($PYTHON) to write the summary" >&2
	exit 1
}

mkdir -p "$OUT" || exit 1
OUT=$(cd "$OUT" && pwd)
SERIAL=$OUT/.serial3.log
LOG=$OUT/vmtest.log
: >"$SERIAL"

START=$(date -u +%Y-%m-%dT%H:%M:%SZ)
VMTEST_GUEST=trace VMTEST_SERIAL3=$SERIAL \
	VMTEST_TIMEOUT=${TRACE_TIMEOUT:-300} \
	VMTEST_KARGS="${VMTEST_KARGS:-} kt_modes=$MODES kt_buf_kb=$BUF_KB" \
	"$HERE/vmtest.sh" 2>&1 | tee "$LOG"
rc=${PIPESTATUS[0]}
if [ "$rc" -eq 4 ]; then
	rm -f "$SERIAL"
	exit 4
fi

# the guest's tar.gz, base64 between "begin khttpd-trace SIZE SHA256" and "end"
header=$(tr -d '\r' <"$SERIAL" | grep -m1 '^begin khttpd-trace ')
if [ -z "$header" ]; then
	echo "trace: FAIL: the guest sent no results on its third serial port (vmtest exit $rc)" >&2
	exit 1
fi
size=$(echo "$header" | cut -d' ' -f3)
sum=$(echo "$header" | cut -d' ' -f4)
tr -d '\r' <"$SERIAL" | sed -n '/^begin khttpd-trace /,/^end khttpd-trace$/p' |
	sed -e '1d' -e '$d' | base64 -d >"$OUT/.results.tar.gz" 2>/dev/null
got=$(sha256sum "$OUT/.results.tar.gz" | cut -d' ' -f1)
if [ "$got" != "$sum" ]; then
	echo "trace: FAIL: results damaged in transfer ($(wc -c <"$OUT/.results.tar.gz") of $size bytes, sha256 $got, expected $sum)" >&2
	exit 1
fi
tar -xzf "$OUT/.results.tar.gz" -C "$OUT" || exit 1
rm -f "$OUT/.results.tar.gz" "$SERIAL"

PYTHONPATH=$REPO${PYTHONPATH:+:$PYTHONPATH} "$PYTHON" -m khttpd_py.ktrace summarize "$OUT" \
	--started "$START" --command "${TRACE_COMMAND:-kmod/trace.sh $1}" \
	--qemu "$(qemu-system-x86_64 --version | head -n 1)" \
	--accel "$(sed -n 's/^# booting .* with \([a-z]*\),.*/\1/p' "$LOG" | head -n 1)" || exit 1
echo "# trace: results in $OUT (summary.json, metadata.json, one directory per mode)"
if [ "$rc" -ne 0 ]; then
	echo "trace: FAIL: the guest reported failures (vmtest exit $rc); the traces are kept" >&2
	exit 1
fi
exit 0
