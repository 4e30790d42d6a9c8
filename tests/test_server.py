"""The server over real sockets on 127.0.0.1, in both modes, and its command line.

Every test in the first part runs once per mode (the ``mode`` fixture): the
wire bytes and the connection handling must be the same whether a connection
gets its own thread or a work item.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from wire_bytes import NOT_IMPLEMENTED_CLOSE, OK_CLOSE, OK_KEEPALIVE

from khttpd_py.kthread import kthread_run, kthread_should_stop, kthread_stop
from khttpd_py.server import KHttpd, format_wq_flags, main, parse_wq_flags
from khttpd_py.workqueue import WQ_CPU_INTENSIVE, WQ_HIGHPRI, WQ_UNBOUND, WorkqueueSystem

GET_10 = b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n"
GET_11 = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"
ROOT = Path(__file__).resolve().parent.parent


def exchange(port: int, request: bytes) -> bytes:
    """Send ``request`` on a new connection; return everything until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def reset(sock: socket.socket) -> None:
    """Close with SO_LINGER 0, so the kernel sends RST instead of FIN."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


# -- fixtures and client helpers --------------------------------------------------------


@pytest.fixture
def server(make_server: Callable[..., KHttpd]) -> KHttpd:
    """One server with default settings in the current mode."""
    return make_server()


def connect(port: int, timeout: float = 5.0) -> socket.socket:
    """A client socket to 127.0.0.1:port whose reads fail instead of hanging."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    return sock


def read_response(sock: socket.socket, head_only: bool = False) -> bytes:
    """Read one response, framed by its Content-Length; return its exact bytes."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError(f"connection closed after {data!r}")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if head_only:
        length = 0
    while len(rest) < length:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("connection closed inside the body")
        rest += chunk
    if len(rest) > length:
        raise AssertionError(f"{len(rest) - length} stray bytes after the body: {rest[length:]!r}")
    return head + b"\r\n\r\n" + rest


def read_exactly(sock: socket.socket, size: int) -> bytes:
    """Exactly ``size`` bytes (several pipelined responses, say), or ConnectionError."""
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError(f"connection closed after {len(data)} of {size} bytes")
        data += chunk
    return data


def read_until_close(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def is_closed(sock: socket.socket, wait: float = 2.0) -> bool:
    """True if the server closed the connection (EOF or reset) within ``wait`` seconds."""
    sock.settimeout(wait)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` passes; return its last value."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return predicate()
        time.sleep(0.005)
    return True


def open_fds() -> int:
    """How many file descriptors this process holds now."""
    return len(os.listdir("/proc/self/fd"))


def thread_names() -> list[str]:
    """Names of the threads alive now, sorted, for leak reports."""
    return sorted(t.name for t in threading.enumerate())



# -- wire bytes ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_bytes", "expected"),
    [
        (GET_10, OK_CLOSE),
        (b"GET /some/where?x=1 HTTP/1.0\r\n\r\n", OK_CLOSE),
        (b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", OK_CLOSE),
        (b"HEAD / HTTP/1.0\r\n\r\n", OK_CLOSE[: -len(b"Hello World!")]),
        (b"POST / HTTP/1.0\r\nContent-Length: 5\r\n\r\nhello", NOT_IMPLEMENTED_CLOSE),
        (b"DELETE /x HTTP/1.0\r\n\r\n", NOT_IMPLEMENTED_CLOSE),
    ],
    ids=["get", "get-path", "get-1.1-close", "head", "post", "delete"],
)
def test_exact_bytes_then_close(server: KHttpd, request_bytes: bytes, expected: bytes) -> None:
    assert exchange(server.port, request_bytes) == expected


def test_request_trickling_in_byte_by_byte(server: KHttpd) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        for byte in GET_10:
            sock.send(bytes([byte]))
            time.sleep(0.001)
        assert sock.recv(4096) == OK_CLOSE


# -- keep-alive ----------------------------------------------------------------------------


def test_http11_stays_open_until_connection_close(server: KHttpd) -> None:
    with connect(server.port) as sock:
        for _ in range(3):
            sock.sendall(GET_11)
            assert read_response(sock) == OK_KEEPALIVE
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        assert read_response(sock) == NOT_IMPLEMENTED_CLOSE.replace(
            b"Connection: Close", b"Connection: Keep-Alive"
        )
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert read_response(sock) == OK_CLOSE
        assert is_closed(sock)


def test_http10_closes_unless_it_asks_for_keep_alive(server: KHttpd) -> None:
    with connect(server.port) as sock:
        sock.sendall(GET_10)
        assert read_response(sock) == OK_CLOSE
        assert is_closed(sock)
    with connect(server.port) as sock:
        for _ in range(2):
            sock.sendall(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            assert read_response(sock) == OK_KEEPALIVE
        assert not is_closed(sock, wait=0.2)


def test_head_on_a_kept_alive_connection(server: KHttpd) -> None:
    """A HEAD answer announces 12 bytes it does not send; the next answer must follow at once."""
    with connect(server.port) as sock:
        sock.sendall(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n")
        head = read_response(sock, head_only=True)
        assert head == OK_KEEPALIVE[: -len(b"Hello World!")]
        sock.sendall(GET_11)
        assert read_response(sock) == OK_KEEPALIVE


def test_pipelined_requests_answered_in_order(server: KHttpd) -> None:
    with connect(server.port) as sock:
        sock.sendall(
            b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\n"
            b"DELETE /2 HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        assert read_until_close(sock) == (
            OK_KEEPALIVE
            + NOT_IMPLEMENTED_CLOSE.replace(b"Connection: Close", b"Connection: Keep-Alive")
            + OK_CLOSE
        )


def test_many_pipelined_requests_across_recv_buffers(server: KHttpd) -> None:
    """More requests than fit one 4096-byte recv: every one answered, in order, none lost."""
    count = 300
    with connect(server.port) as sock:
        last = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        sock.sendall(GET_11 * (count - 1) + last)
        data = read_until_close(sock)
    assert data == OK_KEEPALIVE * (count - 1) + OK_CLOSE


# -- bad input -------------------------------------------------------------------------------


def test_malformed_request_gets_400_and_close(server: KHttpd) -> None:
    reply = exchange(server.port, b"HELLO THERE\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert reply.endswith(b"Connection: Close\r\n\r\n400 Bad Request")


def test_garbage_after_a_good_request_gets_400_after_the_200(server: KHttpd) -> None:
    reply = exchange(server.port, GET_11 + b"\x00\x01\x02 not http\r\n\r\n")
    assert reply.startswith(OK_KEEPALIVE)
    assert reply[len(OK_KEEPALIVE) :].startswith(b"HTTP/1.1 400 Bad Request\r\n")


def test_oversized_url_gets_414_and_close(server: KHttpd) -> None:
    request = b"GET /" + b"u" * 9000 + b" HTTP/1.1\r\n\r\n"
    assert exchange(server.port, request).startswith(b"HTTP/1.1 414 URI Too Long\r\n")


def test_oversized_headers_get_431_and_close(server: KHttpd) -> None:
    request = b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-Fill: " + b"f" * 200 + b"\r\n"
    with connect(server.port) as sock:
        sock.sendall(request)
        for _ in range(100):  # up to 20 KiB of headers, sent as they would trickle in
            try:
                sock.sendall(b"X-More: " + b"m" * 200 + b"\r\n")
            except OSError:
                break  # the server already answered and closed: that is the point
        reply = b""
        with contextlib.suppress(ConnectionResetError):  # the RST for the unread headers
            while chunk := sock.recv(4096):
                reply += chunk
    assert reply.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")
    assert b"Connection: Close\r\n" in reply


def test_long_url_within_limits_is_served(server: KHttpd) -> None:
    """Upstream copies the URL into 128 bytes without a bound; here 4 KiB is just a URL."""
    request = b"GET /" + b"p" * 4000 + b" HTTP/1.0\r\n\r\n"
    assert exchange(server.port, request) == OK_CLOSE


def test_client_resets_do_not_disturb_the_server(server: KHttpd) -> None:
    for partial in (b"", b"GET / HT", GET_11):
        for _ in range(10):
            sock = connect(server.port)
            if partial:
                sock.sendall(partial)
            reset(sock)
    # A reset while the server is writing: a long pipeline the client never reads.
    sock = connect(server.port)
    sock.sendall(GET_11 * 2000)
    reset(sock)
    assert wait_for(lambda: server.live == 0), f"{server.live} connections left"
    assert exchange(server.port, GET_10) == OK_CLOSE


# -- concurrency -----------------------------------------------------------------------------


def open_concurrent(port: int, count: int) -> list[socket.socket]:
    """Open ``count`` connections and send a keep-alive request on each, without waiting."""
    socks = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        sock.sendall(GET_11)
        socks.append(sock)
    return socks


def test_500_concurrent_connections(
    make_server: Callable[..., KHttpd], nofile_limit: int
) -> None:
    """500 clients connected at once, each answered while all of them stay open.

    The backlog is raised so the burst of connects is not slowed by SYN
    retries, and max_active to the kernel's ceiling (512): each work item holds
    its connection for as long as it is open, so max_active caps how many
    connections a cmwq server serves at once.
    """
    assert nofile_limit >= 1100
    server = make_server(backlog=512, max_active=512)
    socks = open_concurrent(server.port, 500)
    try:
        for sock in socks:
            assert read_response(sock) == OK_KEEPALIVE
        assert server.live == 500 and server.max_live == 500
    finally:
        for sock in socks:
            sock.close()
    assert wait_for(lambda: server.live == 0)
    assert wait_for(lambda: server.requests_served == 500)
    assert server.accepted == 500


def test_one_request_per_connection_burst(make_server: Callable[..., KHttpd]) -> None:
    """htstress's pattern (HTTP/1.0, one request per connection) from 4 client threads."""
    server = make_server(backlog=512)
    replies: list[bytes] = []
    lock = threading.Lock()

    def client() -> None:
        for _ in range(100):
            reply = exchange(server.port, GET_10)
            with lock:
                replies.append(reply)

    threads = [threading.Thread(target=client) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert replies == [OK_CLOSE] * 400


@pytest.mark.parametrize("mode", ["cmwq"])
def test_max_active_caps_concurrent_connections(
    make_server: Callable[..., KHttpd]
) -> None:
    """With max_active 2 the third keep-alive connection waits until one of the first two ends.

    Each khttpd work item blocks for its connection's whole life, so in cmwq
    mode max_active is a cap on connections served at once (FACTS.md).
    """
    server = make_server(max_active=2)
    first, second, third = open_concurrent(server.port, 3)
    try:
        assert read_response(first) == OK_KEEPALIVE
        assert read_response(second) == OK_KEEPALIVE
        third.settimeout(0.3)
        with pytest.raises(TimeoutError):
            third.recv(1)
        first.close()
        third.settimeout(5)
        assert read_response(third) == OK_KEEPALIVE
    finally:
        for sock in (first, second, third):
            sock.close()


def test_recv_timeout_drops_idle_connections(
    make_server: Callable[..., KHttpd]
) -> None:
    server = make_server(recv_timeout=0.2)
    with connect(server.port) as sock:
        sock.sendall(GET_11)
        assert read_response(sock) == OK_KEEPALIVE
        started = time.monotonic()
        assert is_closed(sock, wait=3.0)
        assert time.monotonic() - started < 2.0
    assert wait_for(lambda: server.live == 0)


# -- stop() is rmmod ---------------------------------------------------------------------


def test_stop_with_idle_and_busy_clients(
    make_server: Callable[..., KHttpd]
) -> None:
    """rmmod under load: returns within 2 s, leaves no thread and no file descriptor.

    Idle clients are connected and silent (their workers sleep in recv);
    keep-alive clients sit between requests; busy clients hammer the server
    with new connections while it stops.
    """
    threads_before = thread_names()
    fds_before = open_fds()
    server = make_server()
    idle = [connect(server.port) for _ in range(50)]
    kept = open_concurrent(server.port, 20)
    for sock in kept:
        read_response(sock)
    stop_clients = threading.Event()
    answered = [0]

    def hammer() -> None:
        while not stop_clients.is_set():
            try:
                exchange(server.port, GET_10)
                answered[0] += 1
            except OSError:
                time.sleep(0.001)  # refused once the listen socket is down

    clients = [threading.Thread(target=hammer) for _ in range(4)]
    for client in clients:
        client.start()
    assert wait_for(lambda: answered[0] >= 20)

    started = time.monotonic()
    server.stop()
    elapsed = time.monotonic() - started

    stop_clients.set()
    for client in clients:
        client.join(10)
    assert elapsed < 2.0
    for sock in idle + kept:
        assert is_closed(sock, wait=1.0)
        sock.close()
    assert server.live == 0
    assert thread_names() == threads_before
    assert open_fds() == fds_before
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", server.port), timeout=1).close()


def fill_until_server_stops_reading(sock: socket.socket, limit: int = 64 << 20) -> int:
    """Pipeline requests without reading answers until the server stops reading ours.

    The server reads whenever it is not blocked sending, so once our sends have
    made no progress for half a second its worker sits in ``send``.  Returns
    the bytes sent.
    """
    sock.setblocking(False)
    batch = GET_11 * 200
    sent = 0
    stalled_since: float | None = None
    while sent < limit:
        try:
            sent += sock.send(batch)
            stalled_since = None
        except BlockingIOError:
            now = time.monotonic()
            stalled_since = stalled_since or now
            if now - stalled_since > 0.5:
                return sent
            time.sleep(0.02)
    raise AssertionError(f"the server read {sent} bytes without ever blocking")


def test_stop_while_a_client_will_not_read(server: KHttpd) -> None:
    """A worker blocked in send (the client reads nothing) is woken by stop() too."""
    sock = connect(server.port)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    fill_until_server_stops_reading(sock)
    assert server.live == 1
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 2.0
    assert server.live == 0
    sock.close()


def test_stop_is_idempotent_and_the_context_manager_stops(mode: str) -> None:
    threads_before = thread_names()
    with KHttpd(host="127.0.0.1", port=0, mode=mode) as server:
        assert exchange(server.port, GET_10) == OK_CLOSE
    server.stop()
    assert server.requests_served == 1 and server.accepted == 1
    assert thread_names() == threads_before


def test_counters(server: KHttpd) -> None:
    for _ in range(3):
        exchange(server.port, GET_10)
    with connect(server.port) as sock:
        sock.sendall(GET_11 * 4)
        assert read_exactly(sock, 4 * len(OK_KEEPALIVE)) == OK_KEEPALIVE * 4
        assert server.live == 1
    assert wait_for(lambda: server.live == 0)
    assert server.accepted == 4
    assert server.requests_served == 7
    assert server.max_live >= 1


@pytest.mark.parametrize("mode", ["cmwq"])
def test_cmwq_mode_exposes_its_workqueue(
    make_server: Callable[..., KHttpd]
) -> None:
    """One work item per connection, visible in the workqueue's wq_monitor counters."""
    server = make_server(max_active=7)
    for _ in range(5):
        exchange(server.port, GET_10)
    assert server.wq is not None and server.wq.name == "khttpd"
    assert server.wq.max_active == 7
    assert wait_for(lambda: server.wq.stats().completed == 5)
    assert server.wq.stats().started == 5


def test_thread_mode_has_no_workqueue(make_server: Callable[..., KHttpd]) -> None:
    assert make_server(mode="thread").wq is None


def test_start_on_a_busy_port_fails_and_cleans_up(server: KHttpd, mode: str) -> None:
    threads_before = thread_names()
    fds_before = open_fds()
    with pytest.raises(OSError):
        KHttpd(host="127.0.0.1", port=server.port, mode=mode).start()
    assert thread_names() == threads_before
    assert open_fds() == fds_before


@pytest.mark.parametrize("mode", ["cmwq"])
def test_a_shared_workqueue_system_outlives_the_server(
    make_server: Callable[..., KHttpd],
) -> None:
    """Kernel-like: rmmod destroys the module's workqueue, the kworkers stay the system's."""
    with WorkqueueSystem(nr_cpus=2, idle_timeout=60) as system:
        server = make_server(system=system, wq_flags=0)
        assert exchange(server.port, GET_10) == OK_CLOSE
        server.stop()
        assert server.wq is not None and server.wq.destroyed
        assert system.workqueues() == []
        assert system.thread_count() > 0  # bound per-CPU pools keep their kworkers


# -- kthread primitives (thread mode) ------------------------------------------------------


def test_kthread_stop_waits_for_the_loop_and_returns_its_value() -> None:
    rounds = []

    def loop(step: int) -> int:
        while not kthread_should_stop():
            rounds.append(step)
            time.sleep(0.001)
        return len(rounds)

    task = kthread_run(loop, 1, "test-kthread")
    assert task.name == "test-kthread" and task.daemon
    while not rounds:
        time.sleep(0.001)
    result = kthread_stop(task, timeout=5)
    assert result == len(rounds) > 0
    assert not task.is_alive()
    assert not kthread_should_stop()  # the test's own thread was never asked to stop


def test_kthread_stop_gives_up_on_a_thread_that_ignores_the_flag() -> None:
    release = threading.Event()
    task = kthread_run(lambda _: release.wait(10), None, "stubborn")
    with pytest.raises(TimeoutError):
        kthread_stop(task, timeout=0.05)
    release.set()
    task.join(5)


# -- flags and command line ------------------------------------------------------------------


def test_wq_flags_parse_like_the_module_parameter() -> None:
    assert parse_wq_flags("unbound") == WQ_UNBOUND
    assert parse_wq_flags("bound") == 0
    assert parse_wq_flags("bound,highpri") == WQ_HIGHPRI
    assert parse_wq_flags("unbound, cpu_intensive") == WQ_UNBOUND | WQ_CPU_INTENSIVE
    assert format_wq_flags(WQ_UNBOUND | WQ_HIGHPRI) == "unbound,highpri"
    for bad in ("", "fast", "bound,unbound"):
        with pytest.raises(Exception, match="wq flags"):
            parse_wq_flags(bad)


@pytest.mark.parametrize(
    "argv",
    [
        ["--mode", "fork"],
        ["--port", "70000"],
        ["--max-active", "-1"],
        ["--max-active", "513"],
        ["--wq-flags", "turbo"],
        ["--backlog", "many"],
        ["--mode", "thread", "--stats-port", "0"],
        ["--no-such-flag"],
    ],
)
def test_bad_arguments_exit_2_with_a_message(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "khttpd-py serve" in err
    assert "Traceback" not in err


def run_cli(*args: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "khttpd_py", "serve", *args],
        capture_output=True, text=True, timeout=timeout, cwd=ROOT,
    )


def test_cli_busy_port_exits_1_with_a_message() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("--host", "127.0.0.1", "--port", str(port))
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "in use" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_bad_flag_exits_2() -> None:
    result = run_cli("--mode", "fork")
    assert result.returncode == 2
    assert "invalid choice" in result.stderr and "Traceback" not in result.stderr


def start_cli(*args: str) -> tuple[subprocess.Popen[str], int]:
    """Start ``khttpd-py serve`` on a free port; return the process and its port."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "khttpd_py", "serve", "--host", "127.0.0.1", "--port", "0",
         *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )
    assert proc.stdout is not None
    banner = proc.stdout.readline()
    if "serving http://127.0.0.1:" not in banner:
        proc.kill()
        raise AssertionError(banner + proc.communicate()[1])
    return proc, int(banner.split("http://127.0.0.1:")[1].split("/")[0])


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_cli_serves_then_stops_cleanly_on_signal(mode: str, sig: signal.Signals) -> None:
    proc, port = start_cli("--mode", mode)
    try:
        assert exchange(port, GET_10) == OK_CLOSE
        idle = socket.create_connection(("127.0.0.1", port), timeout=5)
        idle.sendall(GET_11)  # answered, so surely accepted; then it stays open, idle
        assert idle.recv(4096) == OK_KEEPALIVE
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=10)
        idle.close()
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 0, err
    assert "stopped" in out and "2 connections, 2 requests" in out
    assert "Traceback" not in err


def test_cli_ctrl_c_stops_thread_mode_under_load() -> None:
    """Ctrl-C stops the server even when the kernel hands SIGINT to a worker thread.

    Under load the thread server has dozens of threads, and Linux delivers a
    process signal to any of them; the main thread must still notice it.
    """
    for attempt in range(3):
        proc, port = start_cli("--mode", "thread")
        load = subprocess.Popen(  # the C htstress if built, else the Python engine
            [sys.executable, "-m", "khttpd_py", "htstress", "-n", "0", "--duration", "4",
             "-c", "50", f"http://127.0.0.1:{port}/"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT,
        )
        try:
            time.sleep(1.0)
            proc.send_signal(signal.SIGINT)
            try:
                _, err = proc.communicate(timeout=5)
            except subprocess.TimeoutExpired:
                raise AssertionError(f"attempt {attempt}: still running 5 s after Ctrl-C") from None
        finally:
            load.kill()
            load.wait()
            proc.kill()
            proc.wait()
        assert proc.returncode == 0, err
        assert "Traceback" not in err


def test_cli_recv_timeout_drops_idle_clients() -> None:
    """``--recv-timeout`` ends a silent connection, so idle clients cannot hold every worker."""
    proc, port = start_cli("--recv-timeout", "0.3")
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as idle:
            assert is_closed(idle, wait=3.0)
        assert exchange(port, GET_10) == OK_CLOSE
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=10)
    assert proc.returncode == 0


@pytest.mark.parametrize("value", ["nan", "-1", "inf", "soon"])
def test_cli_bad_recv_timeout_exits_2(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--recv-timeout", value]) == 2
    err = capsys.readouterr().err
    assert "--recv-timeout" in err and "Traceback" not in err


def test_cli_stats_port_serves_the_workqueue_stats() -> None:
    proc, port = start_cli("--stats-port", "0")
    try:
        assert proc.stdout is not None
        stats_line = proc.stdout.readline()
        stats_port = int(stats_line.split("http://127.0.0.1:")[1].split("/")[0])
        exchange(port, GET_10)
        reply = exchange(stats_port, b"GET /stats HTTP/1.0\r\n\r\n")
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=10)
    finally:
        proc.kill()
        proc.wait()
    assert reply.startswith(b"HTTP/1.0 200")
    assert b'"name": "khttpd"' in reply
