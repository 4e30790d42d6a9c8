"""Shared by this exercise's tests: clients, counters of threads, fds and close() calls."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest

STOP_LIMIT = 1.5
"""Seconds stop() may take with idle clients (the solution needs a few ms)."""


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def connect(port: int, timeout: float = 3.0) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=timeout)


def echo(client: socket.socket, data: bytes) -> bytes:
    client.sendall(data)
    got = b""
    while len(got) < len(data):
        chunk = client.recv(4096)
        if not chunk:
            break
        got += chunk
    return got


def wait_until(predicate: Callable[[], bool], timeout: float = 2.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


@dataclass
class Closes:
    """Every socket accept() returned, and how often close() ran on each socket."""

    accepted: list[socket.socket] = field(default_factory=list)
    counts: dict[int, int] = field(default_factory=dict)
    keep: list[socket.socket] = field(default_factory=list)  # ids stay unique

    def closes(self, sock: socket.socket) -> int:
        return self.counts.get(id(sock), 0)


@pytest.fixture
def closes(monkeypatch: pytest.MonkeyPatch) -> Closes:
    record = Closes()
    real_close = socket.socket.close
    real_accept = socket.socket.accept

    def close(self: socket.socket) -> None:
        record.keep.append(self)
        record.counts[id(self)] = record.counts.get(id(self), 0) + 1
        real_close(self)

    def accept(self: socket.socket) -> tuple[socket.socket, Any]:
        sock, addr = real_accept(self)
        record.accepted.append(sock)
        record.keep.append(sock)
        return sock, addr

    monkeypatch.setattr(socket.socket, "close", close)
    monkeypatch.setattr(socket.socket, "accept", accept)
    return record


def stop_within(server: Any, limit: float, clients: list[socket.socket]) -> float | None:
    """Run server.stop() in a thread; its duration, or None if it overran ``limit``.

    On overrun the clients are closed so the student's stop() can finish (and the
    test process does not hang).
    """
    done = threading.Event()
    failure: list[BaseException] = []

    def run() -> None:
        try:
            server.stop()
        except BaseException as exc:  # reported to the test
            failure.append(exc)
        finally:
            done.set()

    started = time.monotonic()
    thread = threading.Thread(target=run, name="test-stop", daemon=True)
    thread.start()
    finished = done.wait(limit)
    took = time.monotonic() - started
    if not finished:
        for client in clients:
            client.close()
        done.wait(10)
        return None
    if failure:
        raise failure[0]
    return took


@contextmanager
def running(student: Any) -> Iterator[Any]:
    server = student.WorkqueueEchoServer().start()
    try:
        yield server
    finally:
        if not server.stopping.is_set():
            stop_within(server, 10, [])
