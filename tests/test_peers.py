"""The bench's peers answer with khttpd's exact bytes, each in its own process.

The threading peer's ``http.server`` handler and the asyncio peer each frame
the response differently internally; the sequential peer uses khttpd_py's own
parser and calls.  A peer that sent other bytes would make the bench compare
different work.
"""

from __future__ import annotations

import socket

import pytest
from wire_bytes import NOT_IMPLEMENTED_CLOSE, OK_CLOSE, OK_KEEPALIVE

from khttpd_py import bench, peers


def _exchange(port: int, request: bytes, timeout: float = 5.0) -> bytes:
    """Send ``request`` and read until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(4096):
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.parametrize("kind", peers.PEERS)
def test_peer_sends_khttpds_bytes(kind: str) -> None:
    with bench.running([bench.SERVERS[kind]]) as (server,):
        port = server.port
        assert _exchange(port, b"GET / HTTP/1.0\r\nHost: x\r\n\r\n") == OK_CLOSE
        assert _exchange(port, b"POST / HTTP/1.0\r\nHost: x\r\n\r\n") == NOT_IMPLEMENTED_CLOSE
        two = (b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
               b"GET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert _exchange(port, two) == OK_KEEPALIVE + OK_CLOSE


@pytest.mark.parametrize("kind", ["sequential", "handoff"])
def test_single_server_peer_drops_an_idle_client_and_serves_the_next(kind: str) -> None:
    """One silent client holds a one-at-a-time peer only until its idle timeout."""
    with bench.running([bench.SERVERS[kind]]) as (server,):
        idle = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        try:
            reply = _exchange(server.port, b"GET / HTTP/1.0\r\n\r\n",
                              timeout=peers.SEQUENTIAL_IDLE_TIMEOUT + 5)
        finally:
            idle.close()
        assert reply == OK_CLOSE


@pytest.mark.parametrize("kind", ["sequential", "handoff"])
def test_the_floor_peers_are_opt_in(kind: str) -> None:
    assert kind in bench.SERVERS
    assert kind not in bench.DEFAULT_SERVERS
    assert bench.BenchConfig().servers == list(bench.DEFAULT_SERVERS)
    assert kind not in bench.LOCAL_SERVERS  # reports need not include it
