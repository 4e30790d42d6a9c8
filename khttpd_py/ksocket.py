"""The socket calls of ``main.c`` and ``http_server.c``, shared by every mode.

Kept apart from ``server.py`` so the event mode (``event.py``) and the peers
use the very same calls, and so each timeout lives in one place:

* ``SO_RCVTIMEO`` (:func:`set_recv_timeout`): an idle connection is dropped;
  each byte received restarts it, so alone it cannot stop slowloris.
* a header deadline (the ``deadline`` of :func:`http_server_recv`): the total
  time from a request head's first byte to its end, however it trickles in.
* ``SO_SNDTIMEO`` (:func:`set_send_timeout`): a client that stops reading
  makes a blocked ``send`` fail with ``EAGAIN``, so it cannot hold a worker.
"""

from __future__ import annotations

import select
import socket
import struct
import time

from khttpd_py import oncpu
from khttpd_py.http import RESPONSE_503
from khttpd_py.workqueue import blocking

LISTEN_RCVBUF = 1024 * 1024
"""``SO_RCVBUF`` of the listen socket (accepted sockets inherit it), as in ``main.c``."""


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


def http_server_recv(
    sock: socket.socket, rbuf: oncpu.RecvBuffer, deadline: float | None = None
) -> bytes:
    """Receive up to ``rbuf.size`` bytes, sleeping in ``blocking()`` only if nothing is there.

    In the kernel, ``wq_worker_sleeping`` runs only when the worker really goes
    to sleep, so a ``recv`` that finds data already queued costs the pool
    nothing.  The same here: try without waiting first (keeping the GIL, as
    the kworker keeps its CPU); only if that would block, wait inside
    ``blocking()`` so the workqueue can start another worker.  In thread mode
    ``blocking()`` is a no-op.  An expired ``SO_RCVTIMEO`` raises
    ``BlockingIOError`` (``-EAGAIN``), which ends the connection like any
    other error.

    ``deadline`` (a ``time.monotonic()`` value) bounds the wait for a request
    head that has begun: the wait is a ``poll`` for what is left of it, and
    ``TimeoutError`` ends the connection when it is up, however many single
    bytes a slowloris client trickles in meanwhile.
    """
    data = oncpu.recv_nowait(sock, rbuf)
    if data is not None:
        return data
    if deadline is None:
        with blocking():
            return sock.recv(rbuf.size)
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("request head deadline passed")
        waiter = select.poll()
        waiter.register(sock, select.POLLIN)
        with blocking():
            ready = waiter.poll(max(1, int(left * 1000)))
        if ready:
            data = oncpu.recv_nowait(sock, rbuf)
            if data is not None:
                return data


def http_server_send(sock: socket.socket, data: bytes) -> None:
    """Send all of ``data``, sleeping in ``blocking()`` only if the send buffer is full."""
    sent = oncpu.send_nowait(sock, data)
    if sent < len(data):
        with blocking():
            sock.sendall(memoryview(data)[sent:])


def set_recv_timeout(sock: socket.socket, seconds: float) -> None:
    """Set ``SO_RCVTIMEO`` (the kernel's ``sk_rcvtimeo``) so an idle ``recv`` gives up.

    The socket stays in blocking mode, so the common path costs no extra
    ``poll``; the kernel itself returns ``EAGAIN`` when the time is up.
    """
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, _timeval(seconds))



def set_send_timeout(sock: socket.socket, seconds: float) -> None:
    """Set ``SO_SNDTIMEO`` (``sk_sndtimeo``): a ``send`` stuck this long fails with ``EAGAIN``.

    A client that pipelines requests and never reads fills the socket's send
    buffer; without this the worker would sleep in ``send`` for ever.
    """
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, _timeval(seconds))


def _timeval(seconds: float) -> bytes:
    whole = int(seconds)
    micro = int((seconds - whole) * 1_000_000)
    return struct.pack("@ll", whole, micro)  # struct timeval: two C longs on Linux


def send_503(sock: socket.socket) -> None:
    """Try to send the 503 answer without waiting (a fresh socket's buffer takes it)."""
    try:
        oncpu.send_nowait(sock, RESPONSE_503.data)
    except OSError:
        pass  # the client is gone already
