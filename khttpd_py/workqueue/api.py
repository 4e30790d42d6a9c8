"""The kernel-named functions, on a lazily created default ``WorkqueueSystem``.

``alloc_workqueue`` and friends use the default system (``os.cpu_count()``
CPUs, 300 s idle timeout unless :func:`init_default_system` said otherwise);
the operations on a workqueue or a work item use the system that workqueue
or item belongs to, so they work for isolated systems too.
"""

from __future__ import annotations

import threading

from khttpd_py.workqueue.policy import IDLE_WORKER_TIMEOUT
from khttpd_py.workqueue.system import WorkqueueSystem
from khttpd_py.workqueue.work import Workqueue, WorkStruct

_default: WorkqueueSystem | None = None
_default_lock = threading.Lock()
_system_wq: Workqueue | None = None


def init_default_system(
    nr_cpus: int | None = None, idle_timeout: float = IDLE_WORKER_TIMEOUT
) -> WorkqueueSystem:
    """Create the default system with these settings (before it is first used).

    Raises ``RuntimeError`` if a default system is already running: shut it
    down first with :func:`shutdown_default_system`.
    """
    global _default
    with _default_lock:
        if _default is not None:
            raise RuntimeError("the default WorkqueueSystem already exists")
        _default = WorkqueueSystem(nr_cpus, idle_timeout)
        return _default


def default_system() -> WorkqueueSystem:
    """The default system, created on first use with ``os.cpu_count()`` CPUs."""
    global _default
    system = _default
    if system is None:
        with _default_lock:
            if _default is None:
                _default = WorkqueueSystem()
            system = _default
    return system


def shutdown_default_system(timeout: float | None = None) -> bool:
    """Shut the default system down (draining its workqueues); the next use makes a new one."""
    global _default, _system_wq
    with _default_lock:
        system, _default, _system_wq = _default, None, None
    return True if system is None else system.shutdown(timeout)


def alloc_workqueue(
    fmt: str, flags: int = 0, max_active: int = 0, *args: object
) -> Workqueue | None:
    """``alloc_workqueue(fmt, flags, max_active, ...)`` on the default system (None on failure)."""
    return default_system().alloc_workqueue(fmt, flags, max_active, *args)


def alloc_ordered_workqueue(fmt: str, flags: int = 0, *args: object) -> Workqueue | None:
    """``alloc_ordered_workqueue``: one item at a time, in queue order."""
    return default_system().alloc_ordered_workqueue(fmt, flags, *args)


def queue_work(wq: Workqueue, work: WorkStruct) -> bool:
    """``queue_work``: True if queued, False if ``work`` was already pending."""
    return wq.system.queue_work_on(None, wq, work)


def queue_work_on(cpu: int, wq: Workqueue, work: WorkStruct) -> bool:
    """``queue_work_on``: queue on ``cpu``'s pwq (bound workqueues)."""
    return wq.system.queue_work_on(cpu, wq, work)


def _system_of(work: WorkStruct) -> WorkqueueSystem | None:
    pwq = work.pwq
    return None if pwq is None else pwq.wq.system  # type: ignore[attr-defined,no-any-return]


def flush_work(work: WorkStruct) -> bool:
    """``flush_work``: wait for the last queueing of ``work``; False if idle."""
    system = _system_of(work)
    return False if system is None else system.flush_work(work)


def cancel_work(work: WorkStruct) -> bool:
    """``cancel_work``: un-queue a pending item; True if it was pending."""
    system = _system_of(work)
    return False if system is None else system.cancel_work(work)


def cancel_work_sync(work: WorkStruct) -> bool:
    """``cancel_work_sync``: un-queue and wait for a running instance; True if it was pending."""
    system = _system_of(work)
    return False if system is None else system.cancel_work_sync(work)


def flush_workqueue(wq: Workqueue) -> None:
    """``flush_workqueue``: wait for everything queued on ``wq`` before the call."""
    wq.system.flush_workqueue(wq)


def drain_workqueue(wq: Workqueue) -> None:
    """``drain_workqueue``: wait until ``wq`` is empty (only chained queueing meanwhile)."""
    wq.system.drain_workqueue(wq)


def destroy_workqueue(wq: Workqueue) -> None:
    """``destroy_workqueue``: run all pending work, then free ``wq`` and its threads."""
    wq.system.destroy_workqueue(wq)


def system_wq() -> Workqueue:
    """``system_wq`` ("events"): the default system's shared bound workqueue."""
    global _system_wq
    system = default_system()
    with _default_lock:
        if _system_wq is None or _system_wq.system is not system or _system_wq.destroyed:
            wq = system.alloc_workqueue("events", 0, 0)
            if wq is None:
                raise RuntimeError("cannot allocate system_wq")
            _system_wq = wq
        return _system_wq


def schedule_work(work: WorkStruct) -> bool:
    """``schedule_work``: ``queue_work(system_wq, work)``."""
    return queue_work(system_wq(), work)
