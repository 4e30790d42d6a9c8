# kmod/vmtest/guest-lib.sh: helpers both guest /init scripts source (busybox ash).
#
# vmtest.sh copies it into the initramfs as /guest-lib.sh next to the /init
# it chose (vmtest/init.sh for the VM test, vmtest/trace-init.sh for `make
# trace`), so the two guests build the same expected bytes and wait the same way.
# shellcheck shell=dash

resp() {	# status body content-length connection
	printf '%s' "HTTP/1.1 $1\\r\\nServer: khttpd\\r\\nContent-Type: text/plain\\r\\nContent-Length: $3\\r\\nConnection: $4\\r\\n\\r\\n$2"
}
# shellcheck disable=SC2034 # used by the scripts that source this file
R200C=$(resp "200 OK" "Hello World!" 12 Close)
# shellcheck disable=SC2034
R200K=$(resp "200 OK" "Hello World!" 12 Keep-Alive)

loaded() {
	grep -q '^khttpd ' /proc/modules
}

# wait_pid PID SECONDS: wait for a background job, bounded; 124 when it is
# still running after SECONDS (the caller decides whether to kill it)
wait_pid() {
	_i=0
	while kill -0 "$1" 2>/dev/null; do
		if [ "$_i" -ge $(($2 * 10)) ]; then
			return 124
		fi
		sleep 0.1
		_i=$((_i + 1))
	done
	wait "$1"
}
