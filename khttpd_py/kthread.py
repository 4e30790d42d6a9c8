"""Kernel threads on Python threads: ``kthread_run``, ``kthread_should_stop``, ``kthread_stop``.

A kernel thread is never killed from outside.  ``kthread_stop`` only raises a
flag and wakes the thread; the thread's loop polls ``kthread_should_stop()``
and returns by itself, and ``kthread_stop`` waits for that and hands back the
return value.  Python threads cannot be killed either, so the same cooperative
contract carries over unchanged, which is why khttpd's thread mode can be
written here line for line.

What the flag cannot do is interrupt a blocking call: a daemon asleep in
``accept`` or a worker asleep in ``recv`` checks nothing until it wakes.  The
kernel module sends ``SIGTERM`` first (``send_sig`` before ``kthread_stop``) so
the sleep ends with ``-EINTR``; the Python server shuts the socket down for the
same effect before calling :func:`kthread_stop`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


class KThread(threading.Thread):
    """A ``task_struct`` for a kthread: a daemon thread with a stop flag and a result.

    Daemon, because a kernel thread never keeps a process alive on its own: if
    the owner forgets ``kthread_stop``, the interpreter may still exit.
    """

    def __init__(self, threadfn: Callable[[Any], Any], data: Any, name: str) -> None:
        super().__init__(name=name, daemon=True)
        self.threadfn = threadfn
        self.data = data
        self.result: Any = None
        self.should_stop = False

    def run(self) -> None:
        """Call ``threadfn(data)`` and keep its return value for ``kthread_stop``."""
        self.result = self.threadfn(self.data)


def kthread_run(threadfn: Callable[[Any], Any], data: Any, name: str) -> KThread:
    """Create and start a kthread running ``threadfn(data)``; return its handle.

    The kernel returns ``ERR_PTR(-ENOMEM)`` when it cannot make a thread; here
    ``threading`` raises ``RuntimeError``, which callers treat the same way
    (khttpd closes the connection it could not serve).
    """
    task = KThread(threadfn, data, name)
    task.start()
    return task


def kthread_should_stop() -> bool:
    """True once ``kthread_stop`` was called on the calling thread.

    Outside a kthread there is nobody to ask it to stop, so the answer is
    False, as for any task the kernel never marked.
    """
    current = threading.current_thread()
    return isinstance(current, KThread) and current.should_stop


def kthread_stop(task: KThread, timeout: float | None = None) -> Any:
    """Ask ``task`` to stop, wait for it to return, and give back its return value.

    ``timeout`` has no kernel counterpart (``kthread_stop`` waits forever); it
    lets a test fail instead of hang.  If the thread is still running when the
    timeout expires, ``TimeoutError`` is raised.
    """
    task.should_stop = True
    task.join(timeout)
    if task.is_alive():
        raise TimeoutError(f"kthread {task.name!r} did not stop")
    return task.result
