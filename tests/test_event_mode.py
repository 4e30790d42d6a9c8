"""Issue 19: what one client may hold, in every mode, and what cmwq-event adds.

The cmwq-event mode must serve far more live connections than ``max_active``;
every mode must drop slowloris and never-reading clients, cap live
connections with a 503, follow RFC 9112's Host and Expect rules and close
lingeringly.  Timing bounds here are generous (loopback, a busy 2-core box):
they catch a hang, they do not measure speed.
"""

from __future__ import annotations

import resource
import socket
import threading
import time
from collections.abc import Callable

import pytest
from test_server import (
    GET_11,
    connect,
    exchange,
    is_closed,
    read_response,
    read_until_close,
    thread_names,
    wait_for,
)
from wire_bytes import BAD_REQUEST, NOT_IMPLEMENTED_CLOSE, OK_CLOSE, OK_KEEPALIVE

from khttpd_py.server import KHttpd, main

CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
SERVICE_UNAVAILABLE = (
    b"HTTP/1.1 503 Service Unavailable\r\nServer: khttpd\r\nContent-Type: text/plain\r\n"
    b"Content-Length: 23\r\nConnection: Close\r\n\r\n503 Service Unavailable"
)


def raise_nofile(wanted: int) -> tuple[int, int]:
    """Raise the soft fd limit to ``wanted``; skip (with the reason) if the hard limit is lower."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < wanted:
        pytest.skip(f"needs {wanted} file descriptors, the hard RLIMIT_NOFILE is {hard}")
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    return soft, hard


# -- cmwq-event: max_active caps running work, not connections ---------------------------


def test_event_mode_serves_1000_keep_alive_clients_with_max_active_4() -> None:
    soft, hard = raise_nofile(2600)
    socks: list[socket.socket] = []
    try:
        with KHttpd(host="127.0.0.1", port=0, mode="cmwq-event", max_active=4,
                    backlog=1024) as server:
            for _ in range(1000):
                sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
                sock.sendall(GET_11)
                socks.append(sock)
            answered = sum(read_response(sock) == OK_KEEPALIVE for sock in socks)
            assert answered == 1000
            assert server.live == 1000 and server.wq is not None
            assert server.wq.max_active == 4
            for sock in socks:  # and each connection keeps working
                sock.sendall(GET_11)
            assert all(read_response(sock) == OK_KEEPALIVE for sock in socks)
            assert wait_for(lambda: server.wq.stats().completed >= 2000, 30)
    finally:
        for sock in socks:
            sock.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_event_mode_one_work_item_per_ready_request() -> None:
    with KHttpd(host="127.0.0.1", port=0, mode="cmwq-event") as server, \
            connect(server.port) as sock:
        for _ in range(3):
            sock.sendall(GET_11)
            assert read_response(sock) == OK_KEEPALIVE
        assert server.wq is not None
        assert wait_for(lambda: server.wq.stats().completed >= 3)


# -- send timeout, header deadline --------------------------------------------------------


def pipeline_without_reading(sock: socket.socket, seconds: float) -> bool:
    """Pipeline requests and never read, up to ``seconds``; True if the server dropped us."""
    sock.setblocking(False)
    batch = GET_11 * 200
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            sock.send(batch)
        except BlockingIOError:
            time.sleep(0.02)
        except (ConnectionResetError, BrokenPipeError):
            return True
    return False


def test_a_never_reading_client_is_dropped_by_the_send_timeout(
    make_server: Callable[..., KHttpd]
) -> None:
    server = make_server(send_timeout=0.5, max_active=2)
    hog = connect(server.port)
    hog.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    dropped: list[bool] = []
    pusher = threading.Thread(target=lambda: dropped.append(pipeline_without_reading(hog, 15)))
    pusher.start()
    try:
        assert wait_for(lambda: server.live == 1)
        assert exchange(server.port, b"GET / HTTP/1.0\r\n\r\n") == OK_CLOSE  # others served
        pusher.join(20)
        assert dropped == [True], "the never-reading client was never dropped"
        assert wait_for(lambda: server.live == 0, 5)
    finally:
        pusher.join(20)
        hog.close()


def slowloris(port: int, count: int, stop: threading.Event) -> list[socket.socket]:
    """Open ``count`` connections that each send a request head one byte per 0.5 s."""
    socks = [connect(port, timeout=10) for _ in range(count)]
    head = b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"s" * 200

    def trickle() -> None:
        for byte in head:
            for sock in socks:
                try:
                    sock.send(bytes([byte]))
                except OSError:
                    pass
            if stop.wait(0.5):
                return

    threading.Thread(target=trickle, daemon=True).start()
    return socks


def test_slowloris_does_not_stop_a_probe_in_event_mode() -> None:
    stop = threading.Event()
    with KHttpd(host="127.0.0.1", port=0, mode="cmwq-event", max_active=4,
                header_timeout=30) as server:
        socks = slowloris(server.port, 50, stop)
        try:
            time.sleep(1.2)
            started = time.monotonic()
            assert exchange(server.port, b"GET / HTTP/1.0\r\n\r\n") == OK_CLOSE
            assert time.monotonic() - started < 5.0
        finally:
            stop.set()
            for sock in socks:
                sock.close()


def test_slowloris_clients_are_dropped_after_the_header_deadline(
    make_server: Callable[..., KHttpd]
) -> None:
    server = make_server(header_timeout=1.5, recv_timeout=30)
    stop = threading.Event()
    socks = slowloris(server.port, 10, stop)
    try:
        assert wait_for(lambda: server.live == 10, 5)
        # Each byte would restart an idle timeout; the header deadline is total.
        assert wait_for(lambda: server.live == 0, 10), f"{server.live} slowloris left"
        for sock in socks:
            assert is_closed(sock, wait=2.0)
    finally:
        stop.set()
        for sock in socks:
            sock.close()


# -- max_conns ----------------------------------------------------------------------------


def test_max_conns_answers_503_beyond_the_cap(make_server: Callable[..., KHttpd]) -> None:
    server = make_server(max_conns=2)
    kept = [connect(server.port) for _ in range(2)]
    try:
        for sock in kept:
            sock.sendall(GET_11)
            assert read_response(sock) == OK_KEEPALIVE
        assert exchange(server.port, GET_11) == SERVICE_UNAVAILABLE
        assert server.rejected == 1
    finally:
        for sock in kept:
            sock.close()
    assert wait_for(lambda: server.live == 0)
    assert exchange(server.port, b"GET / HTTP/1.0\r\n\r\n") == OK_CLOSE


def test_cli_max_conns_option() -> None:
    assert main(["--max-conns", "-3"]) == 2


# -- RFC 9112 / 9110 over the wire --------------------------------------------------------


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET / HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
        b"GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n",
    ],
    ids=["missing", "duplicate", "invalid", "duplicate-1.0"],
)
def test_host_rules_get_400(make_server: Callable[..., KHttpd], request_bytes: bytes) -> None:
    assert exchange(make_server().port, request_bytes) == BAD_REQUEST


def test_expect_100_continue_gets_100_then_the_answer(
    make_server: Callable[..., KHttpd]
) -> None:
    server = make_server()
    with connect(server.port) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                     b"Content-Length: 5\r\n\r\n")
        got = b""
        while len(got) < len(CONTINUE):
            got += sock.recv(len(CONTINUE) - len(got))
        assert got == CONTINUE  # before the body was sent
        sock.sendall(b"hello")
        assert read_response(sock) == OK_KEEPALIVE


def test_expect_100_continue_on_a_refused_method_gets_the_501_at_once(
    make_server: Callable[..., KHttpd]
) -> None:
    request = b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 9\r\n\r\n"
    assert exchange(make_server().port, request) == NOT_IMPLEMENTED_CLOSE


@pytest.mark.parametrize("method", [b"get", b"BREW"])
def test_unknown_method_gets_501(make_server: Callable[..., KHttpd], method: bytes) -> None:
    request = method + b" / HTTP/1.1\r\nHost: x\r\n\r\n"
    assert exchange(make_server().port, request) == NOT_IMPLEMENTED_CLOSE


def test_http09_is_closed_at_once(make_server: Callable[..., KHttpd]) -> None:
    with connect(make_server().port) as sock:
        sock.sendall(b"GET /\r\n")
        assert read_until_close(sock) == b""


# -- lingering close ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["414", "431"])
def test_error_answer_is_read_whole_without_a_reset(
    make_server: Callable[..., KHttpd], kind: str
) -> None:
    server = make_server()
    if kind == "414":
        request = b"GET /" + b"u" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    else:
        request = b"GET / HTTP/1.1\r\nHost: x\r\n"
        request += b"".join(b"X-%05d: %s\r\n" % (i, b"v" * 100) for i in range(200))
    with connect(server.port) as sock:
        sock.sendall(request)
        time.sleep(0.2)  # the server has answered and stopped reading the head
        sock.sendall(b"more data the server will never parse " * 100)
        reply = read_until_close(sock)  # ConnectionResetError here fails the test
    assert reply.startswith(b"HTTP/1.1 %s " % kind.encode())
    assert reply.endswith(b"Connection: Close\r\n\r\n" + reply.split(b"\r\n\r\n", 1)[1])
    assert server.lingerer.count >= 1


# -- stop() ---------------------------------------------------------------------------------


def test_stop_leaves_no_thread_behind(mode: str) -> None:
    before = thread_names()
    server = KHttpd(host="127.0.0.1", port=0, mode=mode).start()
    idle = [connect(server.port) for _ in range(5)]
    with connect(server.port) as sock:
        sock.sendall(GET_11)
        assert read_response(sock) == OK_KEEPALIVE
        server.stop()
        assert is_closed(sock)
    for sock in idle:
        assert is_closed(sock)
        sock.close()
    assert server.live == 0
    assert thread_names() == before


def test_ended_connections_do_not_keep_their_buffers_in_event_mode() -> None:
    """Deadlines of ended connections wait in the timer heap up to recv_timeout; they must not
    keep each connection's parser and receive buffer alive (a 20000-connection bench grew
    the server to 139 MB before this was fixed)."""
    import gc

    from khttpd_py import oncpu
    from khttpd_py.http import HttpConnection

    server = KHttpd(host="127.0.0.1", port=0, mode="cmwq-event", recv_timeout=30).start()
    try:
        for _ in range(200):
            with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
                sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
                got = b""
                while chunk := sock.recv(4096):
                    got += chunk
                assert got == OK_CLOSE
        time.sleep(0.2)  # the last work item returns after the client saw the close
        gc.collect()
        buffers = sum(isinstance(o, oncpu.RecvBuffer) for o in gc.get_objects())
        parsers = sum(isinstance(o, HttpConnection) for o in gc.get_objects())
        assert buffers < 20 and parsers < 20, (buffers, parsers)
    finally:
        server.stop()
