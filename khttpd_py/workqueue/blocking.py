"""The scheduler hooks: tell the pool when a work item blocks and when it runs again.

In the kernel, ``schedule()`` calls ``wq_worker_sleeping()`` whenever a kworker
blocks, and the kworker calls ``wq_worker_running()`` as it returns from
``schedule()`` (since Linux 5.2, commit 6d25be5782e4; not at wake-up); work functions do nothing
special.  Python cannot see a thread block, so blocking calls are
wrapped explicitly::

    with blocking():
        data = sock.recv(4096)

On a kworker thread, entering runs ``pool.wq_worker_sleeping(worker)`` (the
worker leaves ``nr_running``; if work is waiting and nothing else runs, an
idle worker is woken: concurrency management) and leaving runs
``pool.wq_worker_running(worker)``.  On any other thread both are no-ops, so
the same code serves the thread-per-connection mode.  Nesting is allowed;
only the outermost level calls the hooks.

A call that *does not* go through ``blocking()`` looks CPU-bound to the pool,
even if it waits: that is how a forgotten hook stalls a bound pool.
"""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType

from khttpd_py.workqueue.policy import WORKER_NOT_RUNNING
from khttpd_py.workqueue.worker import current


class _Blocking:
    """The reusable context manager behind :func:`blocking` (state is per thread)."""

    __slots__ = ()

    def __enter__(self) -> None:
        worker = current.worker
        if worker is None:
            return
        depth = current.depth
        current.depth = depth + 1
        if depth or worker.flags & WORKER_NOT_RUNNING:
            return  # the kernel's lock-free early return: nothing to account
        with current.system.lock:
            worker.pool.wq_worker_sleeping(worker)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        worker = current.worker
        if worker is None:
            return
        depth = current.depth - 1
        current.depth = depth
        if depth or not worker.sleeping:
            return  # wq_worker_running's lock-free check: it never left nr_running
        with current.system.lock:
            worker.pool.wq_worker_running(worker)


_BLOCKING = _Blocking()


def blocking() -> _Blocking:
    """Context manager around a blocking call: the sleeping/running hooks of a kworker."""
    return _BLOCKING


def in_worker() -> bool:
    """True when the calling thread is a kworker (or rescuer) of some system."""
    return current.worker is not None


def wq_sleep(seconds: float) -> None:
    """``msleep``: sleep, letting the pool start another item meanwhile."""
    with _BLOCKING:
        time.sleep(seconds)


def wq_wait(event: threading.Event, timeout: float | None = None) -> bool:
    """Wait for ``event`` as a blocking call (``wait_for_completion``)."""
    with _BLOCKING:
        return event.wait(timeout)


def wq_recv(sock: socket.socket, size: int) -> bytes:
    """``kernel_recvmsg``: receive up to ``size`` bytes as a blocking call."""
    with _BLOCKING:
        return sock.recv(size)


def wq_accept(sock: socket.socket) -> tuple[socket.socket, object]:
    """``kernel_accept``: accept a connection as a blocking call."""
    with _BLOCKING:
        return sock.accept()


def wq_sendall(sock: socket.socket, data: bytes) -> None:
    """``kernel_sendmsg``: send all of ``data`` as a blocking call."""
    with _BLOCKING:
        sock.sendall(data)
