"""Shared fixtures: servers on ephemeral ports in both modes, and a small HTTP client.

The client is deliberately raw (plain sockets, Content-Length framing) so the
tests see the exact bytes the server sends, stray or missing ones included.
"""

from __future__ import annotations

import os
import resource
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from khttpd_py.server import KHttpd


@pytest.fixture(params=["thread", "cmwq"])
def mode(request: pytest.FixtureRequest) -> str:
    """Each server test runs once per worker mode; the wire bytes must not differ."""
    return request.param


@pytest.fixture
def make_server(mode: str) -> Iterator[Callable[..., KHttpd]]:
    """Start servers on 127.0.0.1 and an ephemeral port; stop whatever is left at teardown."""
    servers: list[KHttpd] = []

    def start(**kwargs: object) -> KHttpd:
        kwargs.setdefault("host", "127.0.0.1")
        kwargs.setdefault("port", 0)
        kwargs.setdefault("mode", mode)
        server = KHttpd(**kwargs).start()  # type: ignore[arg-type]
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


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


@pytest.fixture
def nofile_limit() -> Iterator[int]:
    """Raise the soft RLIMIT_NOFILE towards the hard limit for the test, restore it after."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 4096 if hard == resource.RLIM_INFINITY else min(hard, 4096)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    try:
        yield resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.fixture
def helpers() -> object:
    """The client helpers above, for test modules (conftest is not importable by name)."""

    class Helpers:
        connect = staticmethod(connect)
        read_response = staticmethod(read_response)
        read_exactly = staticmethod(read_exactly)
        read_until_close = staticmethod(read_until_close)
        is_closed = staticmethod(is_closed)
        wait_for = staticmethod(wait_for)
        open_fds = staticmethod(open_fds)
        thread_names = staticmethod(thread_names)

    return Helpers
