"""Socket calls that do not sleep keep the CPU: the GIL plays the CPU here.

In the kernel a kworker gives its CPU up only when it really sleeps:
``kernel_recvmsg`` on a socket with data queued copies the data and returns,
and ``schedule()`` (with ``wq_worker_sleeping``) never runs.  That is the
whole premise of concurrency management: a worker that does not sleep keeps
running, and no other worker is needed.

CPython breaks that premise.  Every ``socket`` method releases the GIL around
its system call, even a ``recv(MSG_DONTWAIT)`` that returns at once, and with
many threads waiting the GIL then moves to another thread: the equivalent of
a kworker being preempted at every system call.  Measured on the project's
2-core machine under htstress load, the cmwq server then spent most of its
CPU in futex waits and wake-ups for the GIL (``perf``: about 6 context
switches per request against 0.4 with the calls below).

So the calls that cannot sleep are made through ``ctypes.PyDLL``, which keeps
the GIL during the foreign call: ``recv``/``send`` with ``MSG_DONTWAIT``,
``accept4`` on a non-blocking listen socket, ``shutdown`` and ``close``.  Each
returns "would block" instead of sleeping; the caller then sleeps in an
ordinary GIL-releasing call (inside ``blocking()`` on a kworker).  Both server
modes use these helpers, so the thread/cmwq comparison stays like for like.

Where libc or ``accept4`` cannot be reached through ctypes (not Linux), every
helper falls back to the ``socket`` module's own (GIL-releasing) call with the
same results, only slower.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import socket

_WOULD_BLOCK = (errno.EAGAIN, errno.EWOULDBLOCK)
_SEND_FLAGS = socket.MSG_DONTWAIT | getattr(socket, "MSG_NOSIGNAL", 0)


def _load_libc() -> ctypes.PyDLL | None:
    """libc through ``PyDLL`` (the GIL is kept during calls), or None if unusable."""
    try:
        libc = ctypes.PyDLL(None, use_errno=True)
        for name in ("recv", "send", "accept4", "shutdown", "close"):
            getattr(libc, name)
    except (OSError, AttributeError):
        return None
    libc.recv.restype = ctypes.c_ssize_t
    libc.recv.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    libc.send.restype = ctypes.c_ssize_t
    libc.send.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_int]
    libc.accept4.restype = ctypes.c_int
    libc.accept4.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int]
    libc.shutdown.restype = ctypes.c_int
    libc.shutdown.argtypes = [ctypes.c_int, ctypes.c_int]
    libc.close.restype = ctypes.c_int
    libc.close.argtypes = [ctypes.c_int]
    return libc


_libc = _load_libc()
AVAILABLE = _libc is not None
"""True when the calls keep the GIL (Linux libc through ctypes)."""


def _retry_or_would_block(retry: tuple[int, ...] = (errno.EINTR,)) -> bool:
    """After a failed libc call: True to make it again, False if it would block.

    Any other errno is raised as its ``OSError`` subclass (``ConnectionResetError``
    ...).  Only that case builds an exception; "would block" is a plain result.
    """
    code = ctypes.get_errno()
    if code in _WOULD_BLOCK:
        return False
    if code in retry:
        return True
    raise OSError(code, os.strerror(code))


class RecvBuffer:
    """A receive buffer reused for every ``recv`` of one connection (``kmalloc``'d once)."""

    __slots__ = ("buf", "size")

    def __init__(self, size: int) -> None:
        self.size = size
        self.buf = ctypes.create_string_buffer(size)


def recv_nowait(sock: socket.socket, rbuf: RecvBuffer) -> bytes | None:
    """Receive what is queued, up to ``rbuf.size`` bytes; None if nothing is.

    Returns ``b""`` at end of stream; raises ``OSError`` (e.g.
    ``ConnectionResetError``) on a socket error.
    """
    if _libc is None:
        try:
            return sock.recv(rbuf.size, socket.MSG_DONTWAIT)
        except BlockingIOError:
            return None
    while True:
        n = _libc.recv(sock.fileno(), rbuf.buf, rbuf.size, socket.MSG_DONTWAIT)
        if n >= 0:
            return ctypes.string_at(rbuf.buf, n)
        if not _retry_or_would_block():
            return None


def send_nowait(sock: socket.socket, data: bytes) -> int:
    """Send as much of ``data`` as the send buffer takes now; return the count (maybe 0)."""
    if _libc is None:
        try:
            return sock.send(data, _SEND_FLAGS)
        except BlockingIOError:
            return 0
    while True:
        n = _libc.send(sock.fileno(), data, len(data), _SEND_FLAGS)
        if n >= 0:
            return int(n)
        if not _retry_or_would_block():
            return 0


def accept_nowait(listen: socket.socket) -> socket.socket | None:
    """Take the next established connection off a *non-blocking* listen socket.

    Returns None when the accept queue is empty.  The new socket is blocking
    (``accept4`` does not pass ``O_NONBLOCK`` on) and close-on-exec.  Raises
    ``OSError`` otherwise, e.g. ``EINVAL`` once the listen socket was shut down.
    """
    if _libc is None:
        try:
            fd, _addr = listen._accept()  # type: ignore[attr-defined]
        except BlockingIOError:
            return None
    else:
        while True:
            fd = _libc.accept4(listen.fileno(), None, None, socket.SOCK_CLOEXEC)
            if fd >= 0:
                break
            if not _retry_or_would_block((errno.EINTR, errno.ECONNABORTED)):
                return None
    return socket.socket(listen.family, socket.SOCK_STREAM, listen.proto, fileno=fd)


def shutdown(sock: socket.socket, how: int = socket.SHUT_RDWR) -> None:
    """``shutdown(2)``, ignoring errors: a peer that is gone already needs no FIN."""
    if _libc is None or sock.fileno() < 0:
        with contextlib.suppress(OSError):
            sock.shutdown(how)
        return
    _libc.shutdown(sock.fileno(), how)


def close(sock: socket.socket) -> None:
    """Close the socket: a TCP ``close`` without ``SO_LINGER`` never sleeps."""
    if _libc is None:
        sock.close()
        return
    fd = sock.detach()
    if fd >= 0:
        _libc.close(fd)
