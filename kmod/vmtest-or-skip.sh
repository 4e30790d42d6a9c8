#!/bin/sh
# kmod/vmtest-or-skip.sh: the kernel-module part of the top-level `make test`.
#
# Builds khttpd.ko, htstress and the guest tools, then runs the QEMU test
# (kmod/vmtest.sh) and prints its KTAP lines.  When a tool it needs is
# missing it prints "# SKIP kmod VM test: <reason>" and exits 0; a failing
# build or test exits non-zero.
HERE=$(cd "$(dirname "$0")" && pwd)

skip() {
	echo "# SKIP kmod VM test: $*"
	exit 0
}

if [ -z "${KDIR:-}" ]; then
	KDIR=$(find /usr/src -maxdepth 1 -name 'linux-headers-*-amd64' 2>/dev/null | sort | head -n 1)
fi
[ -n "$KDIR" ] && [ -f "$KDIR/Makefile" ] ||
	skip "no kernel headers (apt-get install linux-headers-amd64)"
command -v qemu-system-x86_64 >/dev/null 2>&1 ||
	skip "qemu-system-x86_64 not installed (apt-get install qemu-system-x86)"
command -v cpio >/dev/null 2>&1 || skip "cpio not installed (apt-get install cpio)"
command -v apt-get >/dev/null 2>&1 && command -v dpkg-deb >/dev/null 2>&1 ||
	skip "apt-get/dpkg-deb not available to fetch the matching kernel image"
if [ ! -x /bin/busybox ] || LC_ALL=C ldd /bin/busybox 2>&1 | grep -q '=>'; then
	skip "no static busybox (apt-get install busybox-static)"
fi
command -v "${CC:-cc}" >/dev/null 2>&1 || skip "no C compiler (apt-get install build-essential)"

echo "# kmod: building khttpd.ko, htstress and the guest tools against $KDIR"
if ! make -C "$HERE" KDIR="$KDIR" all guest >"$HERE/.build.log" 2>&1; then
	cat "$HERE/.build.log"
	rm -f "$HERE/.build.log"
	echo "kmod: build failed" >&2
	exit 1
fi
rm -f "$HERE/.build.log"

KDIR=$KDIR "$HERE/vmtest.sh"
rc=$?
case $rc in
0) exit 0 ;;
4) exit 0 ;;	# vmtest.sh printed its "# SKIP kmod VM test: ..." line
*) exit 1 ;;
esac
