#!/bin/bash
# kmod/fault-check.sh: show that the VM test fails broken modules, not skips them.
#
# Builds khttpd.ko once per fault with the fault compiled in (make FAULT=...),
# runs vmtest.sh on each, and expects exit 1 (fail) every time:
#
#   bytes     the 200 response carries two bytes beyond its Content-Length
#             (upstream khttpd's defect)
#   leak      rmmod does not wait for live connections: they outlive the drain
#   oops      the tenth connection hits BUG() in its worker (an Oops)
#   alloc     a leaked allocation: the 400 path never frees its receive
#             buffer; only kmem_cache_destroy() at rmmod sees it (dmesg)
#   double    the seed's double sock_release: the worker releases its socket
#             and http_conn_close() releases it again (BUG in iput())
#   unlocked  workers unlink their connection without srv->lock; the drain's
#             walk (widened in this build) then follows a freed entry
#             (general protection fault on slub_debug's 0x6b poison)
#
# The normal module is rebuilt on the way out, whatever happens.  Output is
# TAP; exit 0 when every fault was caught, 1 when one was not, 4 when the VM
# test cannot run here (its own skip).  Each boot takes one to four minutes
# under TCG; the paired throughput rounds are cut to one to save time.
set -u

HERE=$(cd "$(dirname "$0")" && pwd)
FAULTS=(bytes leak oops alloc double unlocked)
LOGS=$HERE/.cache/fault-check
mkdir -p "$LOGS"

# shellcheck disable=SC2317  # called through the EXIT trap
restore() {
	make -C "$HERE" module >"$LOGS/restore.log" 2>&1 ||
		echo "# could not rebuild the normal module: see $LOGS/restore.log"
}
trap restore EXIT

echo "TAP version 13"
echo "1..${#FAULTS[@]}"
missed=0
n=0
for fault in "${FAULTS[@]}"; do
	n=$((n + 1))
	log=$LOGS/$fault.log
	VMTEST_FAULT=$fault VMTEST_ROUNDS=1 VMTEST_WARMUP=0 VMTEST_TIMEOUT=${VMTEST_TIMEOUT:-240} \
		"$HERE/vmtest.sh" >"$log" 2>&1
	rc=$?
	if [ "$rc" -eq 4 ]; then
		grep -m1 'SKIP' "$log"
		exit 4
	fi
	# what the VM test said first about it
	evidence=$(grep -m1 -E '^ *not ok|vmtest: FAIL' "$log" | sed -e 's/^ *//')
	if [ "$rc" -eq 1 ]; then
		echo "ok $n - fault '$fault' fails the VM test (exit 1): ${evidence:-see $log}"
	else
		echo "not ok $n - fault '$fault' was not caught: vmtest.sh exit $rc (log: $log)"
		missed=$((missed + 1))
	fi
	# the kernel's own words if it complained, else the bytes that differed
	said=$(grep -E 'BUG:|kernel BUG at|BUG khttpd|Oops|general protection|RIP: 0010|WARNING:|Allocated in|still has objects|left after drain|list_(add|del) corruption' "$log" |
		grep -v 'no BUG, WARNING' | sed -e 's/^[# ]*//' -e 's/^\[ *[0-9.]*\] //' -e 's/ age=.*//' | awk '!seen[$0]++' | head -n 3)
	[ -n "$said" ] || said=$(grep -m2 -E '^# (extra bytes|expected|got)' "$log")
	printf '%s\n' "$said" | sed -e 's/^[# ]*/#   /'
done
[ "$missed" -eq 0 ] && exit 0
exit 1
