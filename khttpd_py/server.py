"""The khttpd daemon in Python: ``main.c`` plus the I/O half of ``http_server.c``.

:class:`KHttpd` is the module.  ``start()`` is ``insmod``: open the listen
socket, allocate the workqueue (cmwq mode) and ``kthread_run`` the accept
daemon.  ``stop()`` is ``rmmod``: stop the daemon, wake and finish every live
connection, destroy the workqueue; nothing it started survives it.

Both modes share one worker body, :meth:`KHttpd.http_server_worker`; only the
way a connection gets a thread differs:

``thread``
    upstream khttpd: the daemon ``kthread_run``\\ s one thread per connection.
``cmwq``
    the seed's commit: the daemon wraps the connection in a :class:`KHttp`
    work item and ``queue_work``\\ s it on ``alloc_workqueue("khttpd",
    WQ_UNBOUND, 0)``; the workqueue's pool decides which worker runs it.

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
import struct
import sys
import threading
import time
from collections.abc import Iterator
from types import TracebackType

from khttpd_py import DEFAULT_BACKLOG, DEFAULT_PORT, oncpu
from khttpd_py.argtypes import int_in, seconds_in
from khttpd_py.http import RECV_BUFFER_SIZE, HttpConnection
from khttpd_py.kthread import KThread, kthread_run, kthread_should_stop, kthread_stop
from khttpd_py.workqueue import (
    WQ_CPU_INTENSIVE,
    WQ_HIGHPRI,
    WQ_MAX_ACTIVE,
    WQ_UNBOUND,
    StatsServer,
    Workqueue,
    WorkqueueSystem,
    WorkStruct,
    blocking,
    destroy_workqueue,
    flush_work,
    queue_work,
    start_stats_server,
)

MODES = ("thread", "cmwq")
"""Worker modes: upstream's kthread per connection, or the seed's work item per connection."""

WQ_FLAG_NAMES: dict[str, int] = {
    "unbound": WQ_UNBOUND,
    "bound": 0,
    "highpri": WQ_HIGHPRI,
    "cpu_intensive": WQ_CPU_INTENSIVE,
}
"""Names accepted by ``--wq-flags``, as by the kernel module's ``wq_flags`` parameter."""

LISTEN_RCVBUF = 1024 * 1024
"""``SO_RCVBUF`` of the listen socket (accepted sockets inherit it), as in ``main.c``."""

STOP_TIMEOUT = 10.0
"""How long ``stop()`` waits for any one thread before declaring it stuck (a bug)."""


# -- socket helpers: the kernel_* calls of main.c and http_server.c ---------------


def open_listen_socket(host: str, port: int, backlog: int) -> socket.socket:
    """Create, configure, bind and listen, like ``main.c``'s ``open_listen_socket``.

    ``SO_REUSEADDR`` so a restart does not wait out TIME_WAIT; ``TCP_NODELAY``
    (inherited by accepted sockets) so the small responses leave at once;
    ``TCP_CORK`` off; a 1 MiB receive buffer.  On failure the socket is closed
    and the ``OSError`` (``EADDRINUSE`` for a busy port) propagates.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 0)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, LISTEN_RCVBUF)
        sock.bind((host, port))
        sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    return sock


def kernel_accept(listen: socket.socket, waiter: select.poll) -> socket.socket:
    """``kernel_accept``: return the next connection, sleeping only while there is none.

    ``listen`` is non-blocking and ``waiter`` polls it for input.  A waiting
    connection is taken without giving up the GIL (see ``oncpu``), the way a
    kernel accept that finds one never calls ``schedule()``; only an empty
    accept queue sleeps, in ``poll``.  Once ``stop()`` has shut the listen
    socket down, ``poll`` returns and ``accept4`` fails with ``EINVAL``.
    """
    while True:
        sock = oncpu.accept_nowait(listen)
        if sock is not None:
            return sock
        waiter.poll()


def kernel_sock_shutdown(sock: socket.socket) -> None:
    """``kernel_sock_shutdown(sock, SHUT_RDWR)``: wake anyone blocked on ``sock``.

    A ``recv`` blocked on the socket returns 0 and a ``send`` fails, in
    whichever thread they sleep.  Errors (the peer is gone already) are moot.
    """
    oncpu.shutdown(sock)


def sock_release(sock: socket.socket) -> None:
    """Close a finished connection: ``sock_release``.

    Upstream's worker calls ``kernel_sock_shutdown(SHUT_RDWR)`` first, but
    ``close`` alone sends the same FIN (and the same RST if unread input is
    left), so only ``stop()`` shuts sockets down, to wake a blocked ``recv``.
    Skipping the redundant call saved about 12% of the cmwq server's CPU per
    request under htstress load (``perf stat``, 93 against 106 us).
    """
    oncpu.close(sock)


def http_server_recv(sock: socket.socket, rbuf: oncpu.RecvBuffer) -> bytes:
    """Receive up to ``rbuf.size`` bytes, sleeping in ``blocking()`` only if nothing is there.

    In the kernel, ``wq_worker_sleeping`` runs only when the worker really goes
    to sleep, so a ``recv`` that finds data already queued costs the pool
    nothing.  The same here: try without waiting first (keeping the GIL, as
    the kworker keeps its CPU); only if that would block, wait inside
    ``blocking()`` so the workqueue can start another worker.  In thread mode
    ``blocking()`` is a no-op.  An expired ``SO_RCVTIMEO`` raises
    ``BlockingIOError`` (``-EAGAIN``), which ends the connection like any
    other error.
    """
    data = oncpu.recv_nowait(sock, rbuf)
    if data is not None:
        return data
    with blocking():
        return sock.recv(rbuf.size)


def http_server_send(sock: socket.socket, data: bytes) -> None:
    """Send all of ``data``, sleeping in ``blocking()`` only if the send buffer is full."""
    sent = oncpu.send_nowait(sock, data)
    if sent < len(data):
        with blocking():
            sock.sendall(memoryview(data)[sent:])


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
    ``live`` (connections being served now) and ``max_live`` (its peak).  In
    cmwq mode ``wq`` is the workqueue, for monitors that read its statistics
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
            if self.mode == "cmwq":
                self._alloc_workqueue()
            self._daemon = kthread_run(self.http_server_daemon, None, "khttpd")
        except BaseException:
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
        kthread_stop(self._daemon, STOP_TIMEOUT)
        self._listen.close()
        self._free_workqueue()

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

        An ``accept`` error while stopping ends the loop (upstream:
        ``signal_pending``); any other error is reported and the loop goes on,
        pausing briefly when out of file descriptors so it does not spin.
        """
        assert self._listen is not None
        listen = self._listen
        listen.setblocking(False)  # accept is tried first; only poll sleeps
        waiter = select.poll()
        waiter.register(listen, select.POLLIN)
        start_worker = self._start_kthread if self.mode == "thread" else self._queue_khttp
        while not kthread_should_stop():
            try:
                sock = kernel_accept(listen, waiter)
            except OSError as exc:
                if self.is_stopped:
                    break
                self._accept_error(exc)
                continue
            self.accepted += 1
            if self.recv_timeout is not None:
                set_recv_timeout(sock, self.recv_timeout)
            start_worker(sock)
        self.is_stopped = True
        self.free_work()
        return 0

    def _accept_error(self, exc: OSError) -> None:
        """Report an ``accept`` failure (at most once a second) and back off if resource-bound."""
        now = time.monotonic()
        if now - self._last_accept_report >= 1.0:
            self._last_accept_report = now
            print(f"khttpd: accept() error: {exc}", file=sys.stderr)
        if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
            time.sleep(0.01)

    def _start_kthread(self, sock: socket.socket) -> None:
        """Thread mode: one kthread per connection, and unlike upstream, kept track of.

        The handle stays on ``_tasks`` (touched only by the daemon) until the
        thread has really ended, so ``free_work`` can join every one of them,
        including a thread that has left the connection list but not yet
        returned.
        """
        conn = KThreadConn(sock)
        self._add_conn(conn)
        try:
            task = kthread_run(self.http_server_worker, conn, "khttpd")
        except RuntimeError:  # can't start a thread: upstream's IS_ERR(worker)
            self._del_conn(conn, 0)
            sock_release(sock)
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
            sock_release(sock)

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
        socket down), on any socket error (reset, receive timeout), when a
        response closes the connection, or when the server stops (the seed's
        ``daemon.is_stopped``; upstream's thread mode polls
        ``kthread_should_stop()`` instead, which ``stop()`` also sets).  Then take
        the entry off the list and only then shut down and close the socket.
        Pipelined responses produced by one chunk go out in one ``send``.
        """
        sock = conn.sock
        http = HttpConnection()
        rbuf = oncpu.RecvBuffer(RECV_BUFFER_SIZE)
        try:
            while not self.is_stopped:
                data = http_server_recv(sock, rbuf)
                if not data:
                    break
                responses = http.feed(data)
                if len(responses) == 1:
                    http_server_send(sock, responses[0].data)
                elif responses:
                    http_server_send(sock, b"".join(r.data for r in responses))
                if http.should_close:
                    break
        except OSError:
            pass  # reset by the peer, receive timeout, or shut down by stop()
        finally:
            self._del_conn(conn, http.requests)
            sock_release(sock)


def set_recv_timeout(sock: socket.socket, seconds: float) -> None:
    """Set ``SO_RCVTIMEO`` (the kernel's ``sk_rcvtimeo``) so an idle ``recv`` gives up.

    The socket stays in blocking mode, so the common path costs no extra
    ``poll``; the kernel itself returns ``EAGAIN`` when the time is up.
    """
    whole = int(seconds)
    micro = int((seconds - whole) * 1_000_000)
    timeval = struct.pack("@ll", whole, micro)  # struct timeval: two C longs on Linux
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeval)


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


#: ``serve``'s idle limit, as the module's ``HTTP_CONN_TIMEOUT_SEC`` (kmod/http_server.h).
DEFAULT_RECV_TIMEOUT = 10.0


def build_parser() -> argparse.ArgumentParser:
    """The ``serve`` options; names and defaults follow the kernel module's parameters."""
    parser = argparse.ArgumentParser(
        prog="khttpd-py serve",
        description="Run the Python khttpd: GET answers 'Hello World!'. Ctrl-C stops it.",
    )
    parser.add_argument("--mode", choices=MODES, default="cmwq",
                        help="thread: a thread per connection; cmwq: a work item per "
                        "connection on a workqueue (default: cmwq)")
    parser.add_argument("--host", default="0.0.0.0", help="address to bind (default: 0.0.0.0)")
    parser.add_argument("--port", type=int_in(0, 65535), default=DEFAULT_PORT,
                        help=f"TCP port, 0 for any free one (default: {DEFAULT_PORT})")
    parser.add_argument("--backlog", type=int_in(0, 65535), default=DEFAULT_BACKLOG,
                        help=f"listen backlog (default: {DEFAULT_BACKLOG})")
    parser.add_argument("--max-active", type=int_in(0, WQ_MAX_ACTIVE), default=0,
                        help="cmwq: workqueue max_active, 0 for the default; it caps "
                        "concurrent connections (default: 0)")
    parser.add_argument("--wq-flags", type=parse_wq_flags, default=WQ_UNBOUND,
                        metavar="FLAGS", help="cmwq: comma-separated unbound|bound, highpri, "
                        "cpu_intensive (default: unbound)")
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
    if args.stats_port is not None and args.mode != "cmwq":
        print("khttpd-py serve: --stats-port needs --mode cmwq (thread mode has no workqueue)",
              file=sys.stderr)
        return 2
    server = KHttpd(host=args.host, port=args.port, backlog=args.backlog, mode=args.mode,
                    wq_flags=args.wq_flags, max_active=args.max_active,
                    recv_timeout=args.recv_timeout or None)
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
