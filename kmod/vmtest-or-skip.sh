#!/bin/sh
# kmod/vmtest-or-skip.sh: the kernel-module part of the top-level `make test`.
#
# Runs the user-space unit test of the HTTP parser, then the QEMU test
# (kmod/vmtest.sh, which builds khttpd.ko, htstress and the guest tools
# first) and prints its KTAP lines.  When a tool it needs is
# missing it prints "# SKIP kmod VM test: <reason>" and exits 0; a failing
# build or test exits non-zero.
HERE=$(cd "$(dirname "$0")" && pwd)

skip() {
	echo "# SKIP kmod VM test: $*"
	exit 0
}

# The parser's user-space unit test needs only a C compiler: run it first.
if command -v "${CC:-cc}" >/dev/null 2>&1; then
	mkdir -p "$HERE/.cache"
	if make -s -C "$HERE" parser-test >"$HERE/.cache/parser-test.log" 2>&1; then
		echo "# kmod parser test: $(tail -n 1 "$HERE/.cache/parser-test.log" | sed -e 's/^# //')"
		rm -f "$HERE/.cache/parser-test.log"
	else
		cat "$HERE/.cache/parser-test.log"
		rm -f "$HERE/.cache/parser-test.log"
		echo "kmod: parser unit test failed" >&2
		exit 1
	fi
fi

if [ -z "${KDIR:-}" ]; then
	KDIR=$(find /usr/src -maxdepth 1 -name 'linux-headers-*-amd64' 2>/dev/null | sort | head -n 1)
fi
if [ -z "$KDIR" ] || [ ! -f "$KDIR/Makefile" ]; then
	skip "no kernel headers (apt-get install linux-headers-amd64)"
fi
command -v qemu-system-x86_64 >/dev/null 2>&1 ||
	skip "qemu-system-x86_64 not installed (apt-get install qemu-system-x86)"
command -v cpio >/dev/null 2>&1 || skip "cpio not installed (apt-get install cpio)"
if ! command -v apt-get >/dev/null 2>&1 || ! command -v dpkg-deb >/dev/null 2>&1; then
	skip "apt-get/dpkg-deb not available to fetch the matching kernel image"
fi
if [ ! -x /bin/busybox ] || LC_ALL=C ldd /bin/busybox 2>&1 | grep -q '=>'; then
	skip "no static busybox (apt-get install busybox-static)"
fi
command -v "${CC:-cc}" >/dev/null 2>&1 || skip "no C compiler (apt-get install build-essential)"

KDIR=$KDIR "$HERE/vmtest.sh"
rc=$?
case $rc in
0) exit 0 ;;
4) exit 0 ;;	# vmtest.sh printed its "# SKIP kmod VM test: ..." line
*) exit 1 ;;
esac
