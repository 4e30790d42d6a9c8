"""khttpd_py.oncpu: the non-sleeping socket calls behave like the socket module's.

Each case runs twice: through libc with the GIL kept, and through the
fallback (``_libc`` None) that a platform without ctypes access to libc uses.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest

from khttpd_py import oncpu

T = TypeVar("T")


@pytest.fixture(params=["libc", "fallback"])
def impl(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "libc":
        if not oncpu.AVAILABLE:
            pytest.skip("libc is not reachable through ctypes here")
    else:
        monkeypatch.setattr(oncpu, "_libc", None)
    return str(request.param)


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    sock = socket.create_server(("127.0.0.1", 0))
    sock.setblocking(False)
    yield sock
    sock.close()


def _soon(call: Callable[[], T], timeout: float = 2.0) -> T:
    """Call until the answer is not None (the kernel's side may lag a moment)."""
    deadline = time.monotonic() + timeout
    while (answer := call()) is None:
        assert time.monotonic() < deadline, f"{call} still None after {timeout} s"
    return answer


@pytest.fixture
def pair(listener: socket.socket) -> Iterator[tuple[socket.socket, socket.socket]]:
    """A connected TCP pair on loopback: (client, server side)."""
    client = socket.create_connection(listener.getsockname(), timeout=2)
    deadline = time.monotonic() + 2
    while True:
        try:
            server, _ = listener.accept()
            break
        except BlockingIOError:
            assert time.monotonic() < deadline, "connection never reached the accept queue"
            time.sleep(0.01)
    server.setblocking(True)
    yield client, server
    client.close()
    server.close()


def test_accept_nowait_empty_queue_returns_none(impl: str, listener: socket.socket) -> None:
    assert oncpu.accept_nowait(listener) is None


def test_accept_nowait_returns_blocking_connected_socket(
    impl: str, listener: socket.socket
) -> None:
    client = socket.create_connection(listener.getsockname(), timeout=2)
    try:
        conn = _soon(lambda: oncpu.accept_nowait(listener))
        with conn:
            assert conn.getblocking(), "accepted sockets must block, like kernel_accept's"
            assert conn.getpeername() == client.getsockname()
            client.sendall(b"ping")
            assert conn.recv(4) == b"ping"
    finally:
        client.close()


def test_accept_nowait_after_shutdown_raises(impl: str, listener: socket.socket) -> None:
    listener.shutdown(socket.SHUT_RDWR)
    with pytest.raises(OSError):
        oncpu.accept_nowait(listener)


def test_recv_nowait_none_then_data_then_eof(
    impl: str, pair: tuple[socket.socket, socket.socket]
) -> None:
    client, server = pair
    rbuf = oncpu.RecvBuffer(4096)
    assert oncpu.recv_nowait(server, rbuf) is None
    client.sendall(b"GET / HTTP/1.0\r\n\r\n")
    assert _soon(lambda: oncpu.recv_nowait(server, rbuf)) == b"GET / HTTP/1.0\r\n\r\n"
    client.shutdown(socket.SHUT_WR)
    assert _soon(lambda: oncpu.recv_nowait(server, rbuf)) == b""


def test_recv_nowait_reports_reset(impl: str, pair: tuple[socket.socket, socket.socket]) -> None:
    client, server = pair
    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    client.close()  # linger 0: an RST instead of a FIN
    rbuf = oncpu.RecvBuffer(64)
    deadline = time.monotonic() + 2
    with pytest.raises(ConnectionResetError):
        while time.monotonic() < deadline:
            oncpu.recv_nowait(server, rbuf)
            time.sleep(0.01)


def test_recv_nowait_respects_buffer_size(
    impl: str, pair: tuple[socket.socket, socket.socket]
) -> None:
    client, server = pair
    client.sendall(b"x" * 100)
    rbuf = oncpu.RecvBuffer(10)
    got = b""
    deadline = time.monotonic() + 2
    while len(got) < 100 and time.monotonic() < deadline:
        chunk = oncpu.recv_nowait(server, rbuf)
        if chunk:
            assert len(chunk) <= 10
            got += chunk
    assert got == b"x" * 100


def test_send_nowait_sends_and_stops_when_full(
    impl: str, pair: tuple[socket.socket, socket.socket]
) -> None:
    client, server = pair
    assert oncpu.send_nowait(server, b"hello") == 5
    assert client.recv(5) == b"hello"
    server.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    chunk = b"y" * 65536
    total = 0
    for _ in range(200):  # nobody reads: the buffers fill and send_nowait returns 0
        sent = oncpu.send_nowait(server, chunk)
        if sent == 0:
            break
        total += sent
    else:
        pytest.fail("send_nowait never reported a full send buffer")
    assert total > 0


def test_send_nowait_to_closed_peer_raises_not_signals(
    impl: str, pair: tuple[socket.socket, socket.socket]
) -> None:
    client, server = pair
    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    client.close()
    deadline = time.monotonic() + 2
    with pytest.raises((ConnectionResetError, BrokenPipeError)):
        while time.monotonic() < deadline:
            oncpu.send_nowait(server, b"z" * 1024)
            time.sleep(0.01)


def test_close_sends_fin_and_frees_the_object(
    impl: str, pair: tuple[socket.socket, socket.socket]
) -> None:
    client, server = pair
    oncpu.close(server)
    assert server.fileno() == -1
    assert client.recv(10) == b""


def test_shutdown_wakes_a_blocked_recv(
    impl: str, pair: tuple[socket.socket, socket.socket]
) -> None:
    _client, server = pair
    result: list[bytes] = []
    reader = threading.Thread(target=lambda: result.append(server.recv(10)))
    reader.start()
    time.sleep(0.1)
    oncpu.shutdown(server)
    reader.join(2)
    assert not reader.is_alive()
    assert result == [b""]


def test_shutdown_of_a_closed_socket_is_harmless(
    impl: str, pair: tuple[socket.socket, socket.socket]
) -> None:
    _client, server = pair
    server.close()
    oncpu.shutdown(server)  # no exception: stop() may race with a worker's close

