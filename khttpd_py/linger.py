"""Lingering close: let the client read the last answer before the connection goes.

Closing a TCP socket whose receive queue still holds data, or that receives
data after ``close``, makes the kernel send RST instead of FIN (RFC 1122
4.2.2.13), and a client that gets the RST before reading may lose the
response already in its receive buffer (``ECONNRESET``).  That is exactly
what happens after a 414 or 431: the server stops reading mid-request and
closes.  RFC 9112 section 9.6 therefore asks for a *lingering close*: shut
down the sending side (the FIN follows the response), keep reading and
dropping what the client still sends, and close only when it closes too, or
after a bounded time and amount.

One :class:`Lingerer` thread per server does the draining for every mode, so
no worker thread or work item waits for a slow client: a worker hands the
socket over with :meth:`Lingerer.linger` and is free at once (the event mode
and the daemon's 503s need that: they must not block at all).  Like nginx's
``lingering_close on``, the server lingers only when the client may still be
sending: after an error answer, or when input was left unread.
"""

from __future__ import annotations

import collections
import heapq
import itertools
import selectors
import socket
import threading
import time

from khttpd_py import oncpu
from khttpd_py.kthread import KThread, kthread_run, kthread_stop

LINGER_TIME = 2.0
"""Longest a lingering socket is drained (nginx: ``lingering_time``, 30 s)."""

LINGER_BYTES = 1 << 20
"""Most bytes drained from one lingering socket before it is closed anyway."""

MAX_LINGERING = 4096
"""Sockets lingering at once; beyond that a socket is closed at once (a bound on fds)."""


class _Lingering:
    __slots__ = ("sock", "deadline", "drained")

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self.sock = sock
        self.deadline = deadline
        self.drained = 0


class Lingerer:
    """The thread that drains and closes lingering sockets (``start``/``linger``/``stop``)."""

    def __init__(self, linger_time: float = LINGER_TIME) -> None:
        self.linger_time = linger_time
        self._lock = threading.Lock()
        self._incoming: collections.deque[socket.socket] = collections.deque()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._stopping = False
        self._task: KThread | None = None
        self.count = 0  # sockets handed over since start, for tests and stats

    def start(self) -> Lingerer:
        self._task = kthread_run(self._run, None, "khttpd-linger")
        return self

    def linger(self, sock: socket.socket) -> None:
        """Shut ``sock``'s sending side down now, then drain and close it in the background."""
        oncpu.shutdown(sock, socket.SHUT_WR)
        with self._lock:
            if self._stopping or len(self._incoming) >= MAX_LINGERING:
                oncpu.close(sock)
                return
            self._incoming.append(sock)
            self.count += 1
        try:
            self._wake_w.send(b"\0")
        except BlockingIOError:
            pass  # a wake-up is already pending

    def stop(self, timeout: float | None = None) -> None:
        """Close every lingering socket and join the thread."""
        with self._lock:
            self._stopping = True
        try:
            self._wake_w.send(b"\0")
        except BlockingIOError:
            pass
        if self._task is not None:
            kthread_stop(self._task, timeout)
            self._task = None
        self._wake_r.close()
        self._wake_w.close()

    def _run(self, _data: object) -> None:
        sel = selectors.DefaultSelector()
        sel.register(self._wake_r, selectors.EVENT_READ, None)
        timers: list[tuple[float, int, _Lingering]] = []
        live: dict[int, _Lingering] = {}
        rbuf = oncpu.RecvBuffer(65536)
        seq = itertools.count()
        try:
            while True:
                timeout = max(0.0, timers[0][0] - time.monotonic()) if timers else None
                for key, _mask in sel.select(timeout):
                    entry = key.data
                    if entry is None:
                        if self._admit(sel, timers, live, seq):
                            return
                        continue
                    if self._drain(entry, rbuf):
                        self._finish(sel, live, entry)
                now = time.monotonic()
                while timers and timers[0][0] <= now:
                    _deadline, _seq, entry = heapq.heappop(timers)
                    if live.get(id(entry)) is entry:
                        self._finish(sel, live, entry)
        finally:
            for entry in list(live.values()):
                self._finish(sel, live, entry)
            with self._lock:
                leftover = list(self._incoming)
                self._incoming.clear()
            for sock in leftover:
                oncpu.close(sock)
            sel.close()

    def _admit(self, sel: selectors.BaseSelector, timers: list[tuple[float, int, _Lingering]],
               live: dict[int, _Lingering], seq: itertools.count[int]) -> bool:
        """Take the handed-over sockets in; True when the thread should stop."""
        try:
            while self._wake_r.recv(4096):
                pass
        except BlockingIOError:
            pass
        with self._lock:
            stopping = self._stopping
            new = list(self._incoming)
            self._incoming.clear()
        deadline = time.monotonic() + self.linger_time
        for sock in new:
            entry = _Lingering(sock, deadline)
            live[id(entry)] = entry
            sel.register(sock, selectors.EVENT_READ, entry)
            heapq.heappush(timers, (deadline, next(seq), entry))
        return stopping

    @staticmethod
    def _drain(entry: _Lingering, rbuf: oncpu.RecvBuffer) -> bool:
        """Read and drop what is there; True once the client closed or sent too much."""
        try:
            while True:
                data = oncpu.recv_nowait(entry.sock, rbuf)
                if data is None:
                    return False
                if not data:
                    return True
                entry.drained += len(data)
                if entry.drained > LINGER_BYTES:
                    return True
        except OSError:
            return True

    @staticmethod
    def _finish(sel: selectors.BaseSelector, live: dict[int, _Lingering],
                entry: _Lingering) -> None:
        del live[id(entry)]
        sel.unregister(entry.sock)
        oncpu.close(entry.sock)
