"""The ``cmwq-event`` mode: a work item per *ready request*, not per connection.

Why.  In the seed's cmwq mode a work item is a whole connection: it sleeps in
``recv`` between requests, so it holds one of the workqueue's ``max_active``
slots for the connection's whole life.  With the default 256, client 257
waits for someone to hang up, and 400 slowloris clients deny service outright
(FACTS.md: "max_active caps concurrent connections").

How the kernel does it.  A kernel service that must keep many idle sockets
does not park a kworker on each.  nvmet-tcp (``drivers/nvme/target/tcp.c``)
replaces the socket's ``sk_data_ready`` and ``sk_write_space`` callbacks;
when data arrives, the network stack calls ``nvmet_tcp_data_ready`` in
softirq context, which only does ``queue_work_on(..., nvmet_tcp_wq,
&queue->io_work)``.  ``nvmet_tcp_io_work`` then receives and sends with
``MSG_DONTWAIT`` within a budget, re-queues itself if the budget ran out
with work left, and otherwise returns: nothing sleeps in a work function,
so ``max_active`` bounds work *running*, and an idle connection costs a
``struct socket`` and no worker.

How this module does it.  Python has no socket callbacks, so one poller
thread (:class:`EventDaemon`, the mode's "khttpd" daemon) stands in for the
softirq: it waits on a ``selectors`` selector holding the listen socket and
every idle connection; a ready connection is taken out of the selector and
its :class:`KHttpEvent` work item queued with ``queue_work`` on the same kind
of workqueue cmwq mode uses (so ``wq.stats()``, ``wq-monitor`` and the
concurrency management all apply).  The work function
:meth:`EventDaemon.io_work` reads what is there without blocking, feeds the
parser, sends the answers to every complete request (pipelined ones too)
without blocking, and re-arms the connection in the selector: for reading,
or for writing if the client's window is full.  Taking the socket out of the
selector while its work is in flight plays the part of the kernel's PENDING
bit (``queue_work`` on a pending item returns false): the level-triggered
selector cannot report the same data twice.

Timeouts are deadlines on armed connections, checked by the poller: idle
(``recv_timeout``, restarted by each byte, like ``SO_RCVTIMEO``), header (from
a head's first byte to its end: slowloris) and send (no progress for
``send_timeout``: a client that never reads).  An expired connection is
closed; nothing runs for it on the workqueue.
"""

from __future__ import annotations

import heapq
import itertools
import selectors
import socket
import threading
import time
from typing import TYPE_CHECKING

from khttpd_py import oncpu
from khttpd_py.http import RECV_BUFFER_SIZE, HttpConnection
from khttpd_py.ksocket import sock_release
from khttpd_py.workqueue import Workqueue, WorkStruct, flush_workqueue, queue_work

if TYPE_CHECKING:
    from khttpd_py.server import KHttpd

IO_WORK_BUDGET = 16
"""``recv`` calls one ``io_work`` run makes before re-queueing itself (nvmet-tcp's budget).

Fairness: a client streaming pipelined requests gets one budget per turn,
then goes to the back of the worklist behind the other ready connections."""

POLL_TICK = 0.25
"""Longest the poller sleeps, so deadlines are checked even when nothing happens."""

ACCEPT_BATCH = 256
"""Connections accepted per readiness of the listen socket before the poller moves on."""

_LISTEN = object()
_WAKE = object()


_ENDED_HTTP = HttpConnection()
"""What an ended connection keeps instead of its own parser (shared, never fed)."""
_ENDED_RBUF = oncpu.RecvBuffer(1)


class KHttpEvent(WorkStruct):
    """One connection of the event mode; the work item is its ``io_work``.

    ``armed`` is True while the socket sits in the selector (no work queued
    or running for it); ``gen`` counts armings, so a deadline left in the
    heap from an earlier arming is recognised as stale.  ``out`` holds
    answers the socket would not take yet.
    """

    __slots__ = ("daemon", "sock", "http", "rbuf", "out", "armed", "gen", "finished",
                 "idle_deadline", "head_deadline", "send_deadline")

    def __init__(self, daemon: EventDaemon, sock: socket.socket) -> None:
        super().__init__(KHttpEvent.io_work)
        self.daemon = daemon
        self.sock = sock
        self.http = HttpConnection()
        self.rbuf = oncpu.RecvBuffer(RECV_BUFFER_SIZE)
        self.out = b""
        self.armed = False
        self.gen = 0
        self.finished = False
        self.idle_deadline: float | None = None
        self.head_deadline: float | None = None
        self.send_deadline: float | None = None

    def release(self) -> None:
        """Drop the parser, the receive buffer and unsent answers of an ended connection."""
        self.http = _ENDED_HTTP
        self.rbuf = _ENDED_RBUF
        self.out = b""

    @staticmethod
    def io_work(work: KHttpEvent) -> None:
        """The work function (``nvmet_tcp_io_work``): serve what is ready, then return."""
        work.daemon.io_work(work)


class EventDaemon:
    """The poller (``sk_data_ready`` stand-in) and the work function of ``cmwq-event``.

    ``run`` is the daemon thread's body; ``wake`` interrupts its sleep for
    ``stop()``.  All selector changes happen under ``_lock``; the poller's
    ``select`` itself runs without it, and re-arming from a kworker is an
    ``epoll_ctl`` the sleeping ``epoll_wait`` sees at once.
    """

    def __init__(self, server: KHttpd, listen: socket.socket, wq: Workqueue) -> None:
        self.server = server
        self.listen = listen
        self.wq = wq
        self._lock = threading.Lock()
        self._sel = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._timers: list[tuple[float, int, KHttpEvent, int]] = []
        self._seq = itertools.count()
        self._stopping = False
        listen.setblocking(False)
        self._sel.register(listen, selectors.EVENT_READ, _LISTEN)
        self._sel.register(self._wake_r, selectors.EVENT_READ, _WAKE)

    # -- the poller -------------------------------------------------------------

    def run(self, _data: object) -> int:
        """Wait for readiness and queue work until the server stops; then end every connection."""
        server = self.server
        try:
            while not server.is_stopped:
                for key, _mask in self._sel.select(self._next_timeout()):
                    data = key.data
                    if data is _LISTEN:
                        self._accept()
                    elif data is _WAKE:
                        self._drain_wake()
                    else:
                        self._ready(data)
                self._expire()
        finally:
            self._shutdown()
        return 0

    def wake(self) -> None:
        """Make the poller return from ``select`` (``stop()`` calls it)."""
        try:
            self._wake_w.send(b"\0")
        except OSError:
            pass  # a wake-up is pending already, or the poller is gone

    def close(self) -> None:
        """Free the selector and the wake-up pair (after ``run``, or if it never ran)."""
        self._sel.close()
        self._wake_r.close()
        self._wake_w.close()

    def _next_timeout(self) -> float:
        with self._lock:
            if not self._timers:
                return POLL_TICK
            return min(POLL_TICK, max(0.0, self._timers[0][0] - time.monotonic()))

    def _drain_wake(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except BlockingIOError:
            pass

    def _accept(self) -> None:
        """Empty the accept queue; arm each new connection for reading."""
        server = self.server
        for _ in range(ACCEPT_BATCH):
            try:
                sock = oncpu.accept_nowait(self.listen)
            except OSError as exc:
                if not server.is_stopped:
                    server._accept_error(exc)
                return
            if sock is None:
                return
            server.accepted += 1
            if not server.admit(sock):
                continue
            conn = KHttpEvent(self, sock)
            server._add_conn(conn)
            self.arm(conn, selectors.EVENT_READ, self._read_deadline(conn, time.monotonic()))

    def _ready(self, conn: KHttpEvent) -> None:
        """The ``sk_data_ready`` step: take the connection out and queue its work."""
        with self._lock:
            if not conn.armed:
                return
            self._sel.unregister(conn.sock)
            conn.armed = False
            conn.gen += 1
        if not queue_work(self.wq, conn):  # cannot be pending while it was armed
            self.server.report("queue_work", "khttpd: queue_work refused a ready connection")
            self.finish(conn, linger=False)

    def _expire(self) -> None:
        """Close every armed connection whose deadline has passed (idle, header or send)."""
        now = time.monotonic()
        expired = []
        with self._lock:
            timers = self._timers
            while timers and timers[0][0] <= now:
                _when, _seq, conn, gen = heapq.heappop(timers)
                if conn.armed and conn.gen == gen:
                    self._sel.unregister(conn.sock)
                    conn.armed = False
                    conn.gen += 1
                    expired.append(conn)
        for conn in expired:
            self.finish(conn, linger=False)

    def _shutdown(self) -> None:
        """rmmod: stop arming, let queued work finish, close what is left, free the selector."""
        with self._lock:
            self._stopping = True
        flush_workqueue(self.wq)  # io_work sees is_stopped and closes its connection
        with self._lock:
            armed = [key.data for key in self._sel.get_map().values()
                     if isinstance(key.data, KHttpEvent)]
            for conn in armed:
                self._sel.unregister(conn.sock)
                conn.armed = False
            self._timers.clear()
        for conn in armed:
            self.finish(conn, linger=False)
        self.close()

    # -- arming and finishing -----------------------------------------------------

    def arm(self, conn: KHttpEvent, events: int, deadline: float | None) -> None:
        """Put ``conn`` back in the selector, waiting for ``events`` until ``deadline``."""
        with self._lock:
            if not self._stopping:
                conn.armed = True
                self._sel.register(conn.sock, events, conn)
                if deadline is not None:
                    heapq.heappush(self._timers, (deadline, next(self._seq), conn, conn.gen))
                return
        self.finish(conn, linger=False)

    def finish(self, conn: KHttpEvent, linger: bool) -> None:
        """End a connection once: off the list, then close (or linger) its socket."""
        if conn.finished:
            return
        conn.finished = True
        server = self.server
        server._del_conn(conn, conn.http.requests)
        if linger and not server.is_stopped:
            server.lingerer.linger(conn.sock)
        else:
            sock_release(conn.sock)
        # Stale deadlines of earlier armings stay in the timer heap until they fall due
        # (up to recv_timeout); they must hold a small object, not the parser and the
        # receive buffer: at 20000 connections a second that was 120 MB.
        conn.release()

    def _read_deadline(self, conn: KHttpEvent, now: float) -> float | None:
        """When an armed-for-reading ``conn`` expires: idle, or its open head's deadline."""
        if self.server.recv_timeout is not None:
            conn.idle_deadline = now + self.server.recv_timeout
        if conn.head_deadline is None:
            return conn.idle_deadline
        if conn.idle_deadline is None:
            return conn.head_deadline
        return min(conn.idle_deadline, conn.head_deadline)

    # -- the work function ---------------------------------------------------------

    def io_work(self, conn: KHttpEvent) -> None:
        """Serve what ``conn`` has ready without blocking, then re-arm it and return.

        Order as in ``nvmet_tcp_io_work``: first finish sending what the
        client's window refused last time; then receive up to the budget,
        answering every complete request; then either wait in the selector
        (nothing left to read), wait for write space (answers pending), or
        re-queue itself (budget spent with data left).
        """
        if conn.finished:
            return  # ended while queued (an expired deadline): nothing left to serve
        if self.server.is_stopped:
            self.finish(conn, linger=False)
            return
        http = conn.http
        try:
            if conn.out and not self._flush(conn):
                return
            if http.should_close:
                self.finish(conn, linger=http.linger)
                return
            for _ in range(IO_WORK_BUDGET):
                data = oncpu.recv_nowait(conn.sock, conn.rbuf)
                if data is None:
                    break
                if not data:
                    self.finish(conn, linger=False)
                    return
                responses = http.feed(data)
                self._note_head(conn)
                if responses:
                    conn.out = (responses[0].data if len(responses) == 1
                                else b"".join(r.data for r in responses))
                    conn.send_deadline = None
                    if not self._flush(conn):
                        return
                if http.should_close:
                    self.finish(conn, linger=http.linger)
                    return
            else:
                queue_work(self.wq, conn)  # budget spent: back of the line, as nvmet-tcp
                return
        except OSError:
            self.finish(conn, linger=False)
            return
        self.arm(conn, selectors.EVENT_READ, self._read_deadline(conn, time.monotonic()))

    def _note_head(self, conn: KHttpEvent) -> None:
        """Start, keep or clear the header deadline after a chunk was parsed."""
        timeout = self.server.header_timeout
        if timeout is None or not conn.http.head_open:
            conn.head_deadline = None
        elif conn.head_deadline is None or conn.http.head_began:
            conn.head_deadline = time.monotonic() + timeout

    def _flush(self, conn: KHttpEvent) -> bool:
        """Send pending answers without blocking; True if all went, else armed for writing.

        The send deadline restarts whenever the client takes some bytes, as
        ``SO_SNDTIMEO`` does for a blocking send, and runs out after
        ``send_timeout`` without progress.
        """
        out = conn.out
        sent = oncpu.send_nowait(conn.sock, out)
        if sent == len(out):
            conn.out = b""
            conn.send_deadline = None
            return True
        conn.out = out[sent:]
        now = time.monotonic()
        if sent or conn.send_deadline is None:
            timeout = self.server.send_timeout
            conn.send_deadline = None if timeout is None else now + timeout
        self.arm(conn, selectors.EVENT_WRITE, conn.send_deadline)
        return False
