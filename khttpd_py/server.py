"""The khttpd daemon in Python: ``main.c`` plus the I/O half of ``http_server.c``.

:class:`KHttpd` is the module.  ``start()`` is ``insmod``: open the listen
socket, allocate the workqueue (cmwq mode) and ``kthread_run`` the accept
daemon.  ``stop()`` is ``rmmod``: stop the daemon, wake and finish every live
connection, destroy the workqueue; nothing it started survives it.

The first two modes share one worker body, :meth:`KHttpd.http_server_worker`;
only the way a connection gets a thread differs:

``thread``
    upstream khttpd: the daemon ``kthread_run``\\ s one thread per connection.
``cmwq``
    the seed's commit: the daemon wraps the connection in a :class:`KHttp`
    work item and ``queue_work``\\ s it on ``alloc_workqueue("khttpd",
    WQ_UNBOUND, 0)``; the workqueue's pool decides which worker runs it.
``cmwq-event``
    not in the seed: connections wait in a poller, and each *ready request*
    is a short work item on the same kind of workqueue (``event.py``), the
    way nvmet-tcp's ``sk_data_ready`` callback queues its ``io_work``.  There
    max_active caps running work, not live connections.

Every mode bounds what one client can hold: ``recv_timeout`` (idle),
``header_timeout`` (total time for a request head: slowloris),
``send_timeout`` (a client that never reads), ``max_conns`` (503 beyond it);
closes after an error or unread input linger (``linger.py``); a worker that
cannot be started is reported (at most once a second) and answered 503.

Fixed here, and shown in the book (see also ``http.py``):

* Upstream never tracks its worker kthreads, so one can outlive ``rmmod``
  (an idle client's worker does: ``rmmod`` returns while it waits in
  ``recv``).  Here every connection, in both modes, is on a list until it
  ends, and ``stop()`` shuts each live socket down and waits for its worker.
* The seed's list has no lock and needs none: only its daemon thread touches
  it (adds in the accept loop, ``free_work`` after it).  Here workers take
  their own entries off the list when their connection ends, so one lock
  guards it.
* The seed releases each socket twice (worker and ``free_work``); here only
  the worker closes its socket, after taking its entry off the list, so
  ``stop()`` can never shut down a socket number that was already reused.
* The seed frees its list entries only at unload, so memory grows with every
  connection; here an entry leaves the list when its connection ends.
* The seed does not check ``alloc_workqueue``; here a failure unwinds
  ``start()`` and closes the listen socket.
* Upstream's ``recv`` has no timeout, so an idle client keeps its worker for
  as long as it stays connected; here ``stop()`` shuts live sockets down (a
  blocked ``recv`` returns 0), and ``recv_timeout`` sets ``SO_RCVTIMEO`` (the
  kernel's ``sk_rcvtimeo``) to drop idle connections on the way.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import select
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator
from types import TracebackType

from khttpd_py import DEFAULT_BACKLOG, DEFAULT_PORT, oncpu
from khttpd_py.argtypes import int_in, seconds_in
from khttpd_py.event import EventDaemon
from khttpd_py.http import RECV_BUFFER_SIZE, HttpConnection
from khttpd_py.ksocket import (
    LISTEN_RCVBUF,
    http_server_recv,
    http_server_send,
    kernel_accept,
    kernel_sock_shutdown,
    open_listen_socket,
    send_503,
    set_recv_timeout,
    set_send_timeout,
    sock_release,
)
from khttpd_py.kthread import KThread, kthread_run, kthread_should_stop, kthread_stop
from khttpd_py.linger import Lingerer
from khttpd_py.workqueue import (
    WQ_CPU_INTENSIVE,
    WQ_HIGHPRI,
    WQ_MAX_ACTIVE,
    WQ_UNBOUND,
    StatsServer,
    Workqueue,
    WorkqueueSystem,
    WorkStruct,
    destroy_workqueue,
    flush_work,
    queue_work,
    start_stats_server,
)

MODES = ("thread", "cmwq", "cmwq-event")
"""Worker modes: upstream's kthread per connection, the seed's work item per
connection, or a work item per ready request (``event.py``)."""

__all__ = [  # the socket helpers live in ksocket.py; peers import them from here
    "LISTEN_RCVBUF", "MODES", "KHttpd", "http_server_recv", "http_server_send",
    "kernel_accept", "kernel_sock_shutdown", "open_listen_socket", "set_recv_timeout",
    "set_send_timeout", "sock_release", "main",
]

DEFAULT_RECV_TIMEOUT = 10.0
"""``serve``'s idle limit, as the module's ``HTTP_CONN_TIMEOUT_SEC`` (kmod/http_server.h)."""

DEFAULT_SEND_TIMEOUT = 10.0
"""How long a send may make no progress before the client is dropped (every mode)."""

DEFAULT_HEADER_TIMEOUT = 10.0
"""Total time allowed for one request head from its first byte (Apache's
``RequestReadTimeout header=`` idea; nginx's ``client_header_timeout`` is 60 s)."""

ACCEPT_BATCH = 256
"""Most connections taken off the accept queue per wake-up before workers start."""

WQ_FLAG_NAMES: dict[str, int] = {
    "unbound": WQ_UNBOUND,
    "bound": 0,
    "highpri": WQ_HIGHPRI,
    "cpu_intensive": WQ_CPU_INTENSIVE,
}
"""Names accepted by ``--wq-flags``, as by the kernel module's ``wq_flags`` parameter."""

STOP_TIMEOUT = 10.0
"""How long ``stop()`` waits for any one thread before declaring it stuck (a bug)."""


# -- per-connection records ---------------------------------------------------------


class KThreadConn:
    """Thread mode's record of one live connection (upstream passes the bare socket).

    Upstream keeps no list of its connections, which is why it cannot wake or
    wait for its workers at ``rmmod``.
    """

    __slots__ = ("sock",)

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock


class KHttp(WorkStruct):
    """``struct khttp``: one connection as a work item (cmwq mode).

    The work item *is* the record, so the work function receives it and reads
    its socket directly, where C needs ``container_of(work, struct khttp,
    khttp_work)``.
    """

    def __init__(self, server: KHttpd, sock: socket.socket) -> None:
        super().__init__(KHttp.khttp_work)
        self.server = server
        self.sock = sock

    @staticmethod
    def khttp_work(work: KHttp) -> None:
        """The work function: serve the connection with the shared worker body."""
        work.server.http_server_worker(work)


Conn = KThreadConn | KHttp


# -- the server ---------------------------------------------------------------------


class KHttpd:
    """The khttpd module: ``start()`` is insmod, ``stop()`` is rmmod.

    Usable from a notebook or a test::

        with KHttpd(host="127.0.0.1", port=0, mode="cmwq") as server:
            urlopen(server.url)            # port 0: the kernel picked one
            server.requests_served, server.live

    Counters: ``accepted`` (connections accepted), ``requests_served``
    (requests answered, errors included, counted when each connection ends),
    ``live`` (connections being served now), ``max_live`` (its peak) and
    ``rejected`` (connections answered 503).  In the cmwq modes ``wq`` is the
    workqueue, for monitors that read its statistics
    (``server.wq.stats()``, or ``start_stats_server(server.system)``).

    Where the kworkers live.  In cmwq mode the server allocates its workqueue
    on ``system``, a ``WorkqueueSystem`` (one simulated machine: its pools and
    kworkers).  By default each server makes a private one and shuts it down
    in ``stop()``, so that ``stop()`` leaves no thread behind even with bound
    flags, whose per-CPU pools outlive any one workqueue.  The kernel differs
    there: kworkers belong to the kernel and stay after ``rmmod``; only the
    module's work is gone.  Pass a shared ``system`` to get that behaviour.
    """

    def __init__(
        self,
        host: str = "0.0.0.0",
        port: int = DEFAULT_PORT,
        backlog: int = DEFAULT_BACKLOG,
        mode: str = "cmwq",
        wq_flags: int = WQ_UNBOUND,
        max_active: int = 0,
        recv_timeout: float | None = None,
        system: WorkqueueSystem | None = None,
        send_timeout: float | None = DEFAULT_SEND_TIMEOUT,
        header_timeout: float | None = DEFAULT_HEADER_TIMEOUT,
        max_conns: int | None = None,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        self.host = host
        self.port = port
        self.backlog = backlog
        self.mode = mode
        self.wq_flags = wq_flags
        self.max_active = max_active
        self.recv_timeout = recv_timeout
        self.send_timeout = send_timeout
        self.header_timeout = header_timeout
        self.max_conns = max_conns
        self.rejected = 0
        self.lingerer = Lingerer()
        self._event: EventDaemon | None = None
        self._reported: dict[str, float] = {}
        self.system = system
        self._owns_system = False
        self.wq: Workqueue | None = None
        self.is_stopped = False
        self.accepted = 0
        self.requests_served = 0
        self.max_live = 0
        self._listen: socket.socket | None = None
        self._daemon: KThread | None = None
        self._lock = threading.Lock()
        self._conns: dict[int, Conn] = {}
        self._tasks: list[KThread] = []  # thread mode: workers that may still run
        self._tasks_reap_at = 64
        self._started = False
        self._finished = False
        self._last_accept_report = 0.0

    # -- properties -------------------------------------------------------------

    @property
    def live(self) -> int:
        """Connections accepted and not yet finished."""
        return len(self._conns)

    @property
    def url(self) -> str:
        """``http://host:port/`` of the running server (0.0.0.0 shown as 127.0.0.1)."""
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        return f"http://{host}:{self.port}/"

    def stats(self) -> dict[str, int]:
        """The counters as one dict, for a summary line or a notebook table."""
        return {
            "accepted": self.accepted,
            "requests_served": self.requests_served,
            "live": self.live,
            "max_live": self.max_live,
            "rejected": self.rejected,
        }

    # -- insmod / rmmod -------------------------------------------------------

    def start(self) -> KHttpd:
        """Open the listen socket, allocate the workqueue, run the daemon (``khttpd_init``).

        Each step that fails undoes the ones before it, the ``goto`` unwinding
        of ``khttpd_init``, and re-raises.  Returns ``self`` for chaining.
        """
        if self._started:
            raise RuntimeError("server already started")
        self._started = True
        self._listen = open_listen_socket(self.host, self.port, self.backlog)
        self.port = self._listen.getsockname()[1]
        try:
            if self.mode != "thread":
                self._alloc_workqueue()
            self.lingerer.start()
            if self.mode == "cmwq-event":
                assert self.wq is not None
                self._event = EventDaemon(self, self._listen, self.wq)
                self._daemon = kthread_run(self._event.run, None, "khttpd")
            else:
                self._daemon = kthread_run(self.http_server_daemon, None, "khttpd")
        except BaseException:
            if self._event is not None:
                self._event.close()
            self.lingerer.stop(STOP_TIMEOUT)
            self._free_workqueue()
            self._listen.close()
            self._finished = True
            raise
        return self

    def _alloc_workqueue(self) -> None:
        """``alloc_workqueue("khttpd", flags, max_active)``, checked (the seed did not)."""
        if self.system is None:
            self.system = WorkqueueSystem()
            self._owns_system = True
        self.wq = self.system.alloc_workqueue("khttpd", self.wq_flags, self.max_active)
        if self.wq is None:
            raise RuntimeError("alloc_workqueue failed: cannot create a kworker thread")

    def _free_workqueue(self) -> None:
        """``destroy_workqueue``, then shut down the private system and its kworkers."""
        if self.wq is not None:
            destroy_workqueue(self.wq)
        if self._owns_system and self.system is not None:
            self.system.shutdown(STOP_TIMEOUT)

    def stop(self) -> None:
        """Unload: stop accepting, end every connection, free everything (``khttpd_exit``).

        Order as in the module: raise the stop flag; shut the listen socket
        down, which wakes the daemon from ``accept`` the way ``send_sig``
        does; ``kthread_stop`` the daemon, which on its way out shuts every
        live socket down and waits for its worker (``free_work``); close the
        listen socket; destroy the workqueue (and the private system's
        kworkers).  Idempotent.
        """
        if not self._started or self._finished:
            return
        self._finished = True
        self.is_stopped = True
        assert self._listen is not None and self._daemon is not None
        kernel_sock_shutdown(self._listen)
        if self._event is not None:
            self._event.wake()
        kthread_stop(self._daemon, STOP_TIMEOUT)
        self._listen.close()
        self._free_workqueue()
        self.lingerer.stop(STOP_TIMEOUT)

    def __enter__(self) -> KHttpd:
        if not self._started:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- the daemon -------------------------------------------------------------

    def http_server_daemon(self, _param: object) -> int:
        """Accept connections until stopped, then finish the live ones (``http_server_daemon``).

        Each wake-up empties the accept queue first and only then starts the
        workers (up to :data:`ACCEPT_BATCH` at a time): starting a thread
        takes 100-300 us in Python, and accepting one connection per start
        let a burst of 200 connects overflow a backlog of 100.  An ``accept``
        error while stopping ends the loop (upstream: ``signal_pending``); any
        other error is reported and the loop goes on, pausing briefly when
        out of file descriptors so it does not spin.
        """
        assert self._listen is not None
        listen = self._listen
        listen.setblocking(False)  # accept is tried first; only poll sleeps
        waiter = select.poll()
        waiter.register(listen, select.POLLIN)
        start_worker = self._start_kthread if self.mode == "thread" else self._queue_khttp
        while not kthread_should_stop():
            try:
                batch = [kernel_accept(listen, waiter)]
                while len(batch) < ACCEPT_BATCH:
                    sock = oncpu.accept_nowait(listen)
                    if sock is None:
                        break
                    batch.append(sock)
            except OSError as exc:
                if self.is_stopped:
                    break
                self._accept_error(exc)
                continue
            for sock in batch:
                self.accepted += 1
                if self.admit(sock):
                    start_worker(sock)
        self.is_stopped = True
        self.free_work()
        return 0

    def admit(self, sock: socket.socket) -> bool:
        """Set a new connection's timeouts; False (after a 503) if ``max_conns`` are live.

        Every mode calls this for each accepted socket.  Beyond the cap the
        connection gets ``503`` with ``Connection: Close`` and a lingering
        close, so the client reads the answer instead of a reset.
        """
        if self.max_conns is not None and len(self._conns) >= self.max_conns:
            self.reject(sock, "max_conns reached")
            return False
        if self.recv_timeout is not None and self.mode != "cmwq-event":
            set_recv_timeout(sock, self.recv_timeout)
        if self.send_timeout is not None and self.mode != "cmwq-event":
            set_send_timeout(sock, self.send_timeout)
        return True

    def reject(self, sock: socket.socket, why: str) -> None:
        """Answer 503 without waiting and close lingeringly; report ``why`` (rate-limited)."""
        self.rejected += 1
        self.report(why, f"khttpd: {why}: answering 503")
        send_503(sock)
        self.lingerer.linger(sock)

    def report(self, key: str, message: str) -> None:
        """``pr_err_ratelimited``: print ``message`` at most once a second per ``key``."""
        now = time.monotonic()
        if now - self._reported.get(key, -1.0) >= 1.0:
            self._reported[key] = now
            print(message, file=sys.stderr)

    def _accept_error(self, exc: OSError) -> None:
        """Report an ``accept`` failure (at most once a second) and back off if resource-bound."""
        self.report("accept", f"khttpd: accept() error: {exc}")
        if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
            time.sleep(0.01)

    def _start_kthread(self, sock: socket.socket) -> None:
        """Thread mode: one kthread per connection, and unlike upstream, kept track of.

        The handle stays on ``_tasks`` (touched only by the daemon) until the
        thread has really ended, so ``free_work`` can join every one of them,
        including a thread that has left the connection list but not yet
        returned.  A thread that cannot start (upstream's ``IS_ERR(worker)``,
        which it ignored silently) is reported and its client answered 503.
        """
        conn = KThreadConn(sock)
        self._add_conn(conn)
        try:
            task = kthread_run(self.http_server_worker, conn, "khttpd")
        except RuntimeError as exc:
            self._del_conn(conn, 0)
            self.reject(sock, f"cannot start a worker thread ({exc})")
            return
        self._tasks.append(task)
        if len(self._tasks) >= self._tasks_reap_at:
            self._tasks = [t for t in self._tasks if t.is_alive()]
            self._tasks_reap_at = 2 * len(self._tasks) + 64  # amortised O(1) per connection

    def _queue_khttp(self, sock: socket.socket) -> None:
        """Cmwq mode: a ``KHttp`` work item per connection on the server's workqueue."""
        work = KHttp(self, sock)
        self._add_conn(work)
        assert self.wq is not None
        if not queue_work(self.wq, work):  # a new item is never pending; the seed checks anyway
            self._del_conn(work, 0)
            self.reject(sock, "queue_work refused a connection")

    # -- the list of live connections (the seed's daemon.worker list, locked) ----

    def _add_conn(self, conn: Conn) -> None:
        with self._lock:
            self._conns[id(conn)] = conn
            if len(self._conns) > self.max_live:
                self.max_live = len(self._conns)

    def _del_conn(self, conn: Conn, requests: int) -> None:
        with self._lock:
            del self._conns[id(conn)]
            self.requests_served += requests

    def free_work(self) -> None:
        """Wake every live connection and wait for its worker (the seed's ``free_work``).

        Shutting the sockets down under the lock is safe because a worker takes
        its entry off the list, under the same lock, before it closes its
        socket.  The workers themselves close the sockets and drop the entries.
        """
        with self._lock:
            conns = list(self._conns.values())
            for conn in conns:
                kernel_sock_shutdown(conn.sock)
        if self.mode == "thread":
            for task in self._tasks:
                kthread_stop(task, STOP_TIMEOUT)
            self._tasks.clear()
            return
        for conn in conns:
            flush_work(conn)

    # -- the worker body shared by both modes -----------------------------------

    def http_server_worker(self, conn: Conn) -> None:
        """Serve one connection: recv, parse, respond, until it ends (``http_server_worker``).

        Leave when ``recv`` returns nothing (peer closed, or ``stop()`` shut the
        socket down), on any socket error (reset, receive or send timeout,
        header deadline), when a response closes the connection, or when the
        server stops (the seed's ``daemon.is_stopped``; upstream's thread mode
        polls ``kthread_should_stop()`` instead, which ``stop()`` also sets).
        Then take the entry off the list and only then close the socket, or
        hand it to the lingerer after an error answer or unread input.
        Pipelined responses produced by one chunk go out in one ``send``.

        The header deadline starts at the chunk that begins a request head and
        holds until the head ends, so a client trickling one byte at a time
        cannot keep the worker past ``header_timeout``.
        """
        sock = conn.sock
        http = HttpConnection()
        rbuf = oncpu.RecvBuffer(RECV_BUFFER_SIZE)
        header_timeout = self.header_timeout
        deadline: float | None = None
        try:
            while not self.is_stopped:
                data = http_server_recv(sock, rbuf, deadline)
                if not data:
                    break
                responses = http.feed(data)
                if len(responses) == 1:
                    http_server_send(sock, responses[0].data)
                elif responses:
                    http_server_send(sock, b"".join(r.data for r in responses))
                if http.should_close:
                    break
                if header_timeout is not None and http.head_open:
                    if deadline is None or http.head_began:
                        deadline = time.monotonic() + header_timeout
                else:
                    deadline = None
        except OSError:
            http.linger = False  # reset, timed out or shut down: nothing to wait for
        finally:
            self._del_conn(conn, http.requests)
            if http.linger and not self.is_stopped:
                self.lingerer.linger(sock)
            else:
                sock_release(sock)


# -- command line ---------------------------------------------------------------------


def parse_wq_flags(text: str) -> int:
    """Turn ``unbound,highpri``-style text into WQ_* flags; reject unknown or clashing names."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in WQ_FLAG_NAMES]
    if not names or unknown:
        raise argparse.ArgumentTypeError(
            f"invalid wq flags {text!r}: use a comma-separated list of "
            f"{', '.join(WQ_FLAG_NAMES)}"
        )
    if "bound" in names and "unbound" in names:
        raise argparse.ArgumentTypeError("wq flags cannot be both bound and unbound")
    flags = 0
    for name in names:
        flags |= WQ_FLAG_NAMES[name]
    return flags


def format_wq_flags(flags: int) -> str:
    """The inverse of :func:`parse_wq_flags`, for the start-up line."""
    names = ["unbound" if flags & WQ_UNBOUND else "bound"]
    names += [name for name in ("highpri", "cpu_intensive") if flags & WQ_FLAG_NAMES[name]]
    return ",".join(names)



def build_parser() -> argparse.ArgumentParser:
    """The ``serve`` options; names and defaults follow the kernel module's parameters."""
    parser = argparse.ArgumentParser(
        prog="khttpd-py serve",
        description="Run the Python khttpd: GET answers 'Hello World!'. Ctrl-C stops it.",
    )
    parser.add_argument("--mode", choices=MODES, default="cmwq",
                        help="thread: a thread per connection; cmwq: a work item per "
                        "connection on a workqueue; cmwq-event: connections wait in a "
                        "poller, a work item per ready request (default: cmwq)")
    parser.add_argument("--host", default="0.0.0.0", help="address to bind (default: 0.0.0.0)")
    parser.add_argument("--port", type=int_in(0, 65535), default=DEFAULT_PORT,
                        help=f"TCP port, 0 for any free one (default: {DEFAULT_PORT})")
    parser.add_argument("--backlog", type=int_in(0, 65535), default=DEFAULT_BACKLOG,
                        help=f"listen backlog (default: {DEFAULT_BACKLOG})")
    parser.add_argument("--max-active", type=int_in(0, WQ_MAX_ACTIVE), default=0,
                        help="cmwq modes: workqueue max_active, 0 for the default; in cmwq "
                        "mode it caps concurrent connections, in cmwq-event running "
                        "work (default: 0)")
    parser.add_argument("--wq-flags", type=parse_wq_flags, default=WQ_UNBOUND,
                        metavar="FLAGS", help="cmwq: comma-separated unbound|bound, highpri, "
                        "cpu_intensive (default: unbound)")
    parser.add_argument("--max-conns", type=int_in(0, 1 << 20), default=0, metavar="N",
                        help="answer 503 to connections beyond N live ones, 0 for no cap "
                        "(default: 0)")
    parser.add_argument("--send-timeout", type=seconds_in(0, 86400),
                        default=DEFAULT_SEND_TIMEOUT, metavar="SECONDS",
                        help="drop a client whose receive window stays full this long, 0 for "
                        f"never (default: {DEFAULT_SEND_TIMEOUT:g})")
    parser.add_argument("--header-timeout", type=seconds_in(0, 86400),
                        default=DEFAULT_HEADER_TIMEOUT, metavar="SECONDS",
                        help="drop a client whose request head takes longer than this from "
                        f"its first byte, 0 for never (default: {DEFAULT_HEADER_TIMEOUT:g})")
    parser.add_argument("--stats-port", type=int_in(0, 65535), default=None, metavar="PORT",
                        help="cmwq: also serve workqueue statistics as JSON on "
                        "127.0.0.1:PORT for 'khttpd-py wq-monitor' (default: off)")
    parser.add_argument("--recv-timeout", type=seconds_in(0, 86400), default=DEFAULT_RECV_TIMEOUT,
                        metavar="SECONDS", help="drop a connection whose client sends nothing "
                        "for this long, 0 for never; without it idle clients can hold every "
                        f"worker (default: {DEFAULT_RECV_TIMEOUT:g}, as the kernel module)")
    return parser


@contextlib.contextmanager
def _stop_signals(event: threading.Event) -> Iterator[None]:
    """Let SIGINT and SIGTERM set ``event`` while the server runs; restore them after.

    The kernel may deliver the signal to any thread, and CPython runs the
    handler only when the main thread next wakes; a plain ``Event.wait()``
    there may never wake.  So the caller waits with a timeout (see ``main``).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        signal.signal(sig, lambda _signum, _frame: event.set())
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _cannot(what: str, host: str, port: int, exc: OSError) -> None:
    """One clear line on stderr instead of a traceback (busy port, unknown host, ...)."""
    reason = exc.strerror or str(exc)
    print(f"khttpd-py serve: cannot {what} {host}:{port}: {reason}", file=sys.stderr)


def _start_stats(server: KHttpd, port: int | None) -> StatsServer | None:
    """The ``--stats-port`` endpoint over the server's workqueue system, if asked for."""
    if port is None:
        return None
    return start_stats_server(server.system, "127.0.0.1", port)


def _print_banner(server: KHttpd, stats: StatsServer | None) -> None:
    """The start-up line; the bench finds the port in its ``serving http://...`` part."""
    detail = ""
    if server.wq is not None:
        detail = (f", wq_flags {format_wq_flags(server.wq_flags)}, "
                  f"max_active {server.wq.max_active}")
    print(f"khttpd: serving {server.url} (mode {server.mode}{detail}); Ctrl-C stops",
          flush=True)
    if stats is not None:
        print(f"khttpd: workqueue stats on {stats.url}", flush=True)


def main(argv: list[str] | None = None) -> int:
    """``python -m khttpd_py serve``: run until Ctrl-C or SIGTERM, then print a summary.

    Exit status: 0 after a clean stop, 1 if the server cannot start (busy
    port, bad address), 2 for bad arguments.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2), already printed
        return exc.code if isinstance(exc.code, int) else 2
    if args.stats_port is not None and args.mode == "thread":
        print("khttpd-py serve: --stats-port needs a cmwq mode (thread mode has no workqueue)",
              file=sys.stderr)
        return 2
    server = KHttpd(host=args.host, port=args.port, backlog=args.backlog, mode=args.mode,
                    wq_flags=args.wq_flags, max_active=args.max_active,
                    recv_timeout=args.recv_timeout or None,
                    send_timeout=args.send_timeout or None,
                    header_timeout=args.header_timeout or None,
                    max_conns=args.max_conns or None)
    stop = threading.Event()
    with _stop_signals(stop):
        try:
            server.start()
        except OSError as exc:
            _cannot("listen on", args.host, args.port, exc)
            return 1
        try:
            stats = _start_stats(server, args.stats_port)
        except OSError as exc:
            server.stop()
            _cannot("serve statistics on", "127.0.0.1", args.stats_port, exc)
            return 1
        _print_banner(server, stats)
        started = time.monotonic()
        while not stop.wait(0.25):  # wakes the main thread to run a pending handler
            pass
    # Default handlers again: a second Ctrl-C interrupts a stop that hangs.
    if stats is not None:
        stats.stop()
    server.stop()
    stats = server.stats()
    print(f"khttpd: stopped after {time.monotonic() - started:.1f} s: "
          f"{stats['accepted']} connections, {stats['requests_served']} requests", flush=True)
    return 0
