"""``struct work_struct`` and ``struct workqueue_struct`` as Python objects.

A work item is a ``WorkStruct`` whose ``func`` is called as ``func(work)``.  As
in C, user code carries its data by *embedding*: subclass ``WorkStruct`` and
the function receives the subclass instance (the ``container_of`` step is the
identity here)::

    class KHttp(WorkStruct):
        def __init__(self, sock):
            super().__init__(http_server_worker)
            self.sock = sock

A ``Workqueue`` is the user-facing domain of the kernel: a name, flags,
``max_active``, its pool_workqueues (one per CPU when bound, one for the
whole system when unbound), flushing, and the rescuer for ``WQ_MEM_RECLAIM``.
It owns no threads of its own (except the rescuer and, for the legacy kinds,
its private pools): execution belongs to the shared worker pools.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from khttpd_py.workqueue.policy import (
    WQ_MEM_RECLAIM,
    WQ_UNBOUND,
    PoolWorkqueue,
    PwqStats,
    Worker,
    WorkItem,
)

if TYPE_CHECKING:
    from khttpd_py.workqueue.system import WorkqueueSystem

WorkFunc = Callable[[Any], object]
"""``work_func_t``: called with the work item (or the subclass embedding it)."""


class WorkStruct(WorkItem):
    """``struct work_struct``: a function to run later, and its PENDING state.

    Beyond what the rules need (``pending``, ``pwq``, ``last_pool`` from
    ``policy.WorkItem``), three counters serve flushing: ``_seq`` counts
    successful queueings, ``_done_seq`` is the last queueing a finished run
    covered, and ``_color`` is the flush colour of the pending instance.
    """

    def __init__(self, func: WorkFunc | None = None) -> None:
        super().__init__()
        self.func = func
        self._seq = 0
        self._done_seq = 0
        self._color = 0

    def __repr__(self) -> str:
        name = getattr(self.func, "__qualname__", repr(self.func))
        state = " pending" if self.pending else ""
        return f"<{type(self).__name__} {name}{state}>"


def init_work(work: WorkStruct, func: WorkFunc) -> WorkStruct:
    """``INIT_WORK``: (re)initialise ``work`` to call ``func``.

    Re-initialising forgets the pool the item last ran on, so, as the kernel
    documents, the non-reentrancy guarantee does not span a re-init.  Never
    re-initialise an item that is pending or running.
    """
    WorkStruct.__init__(work, func)
    return work


class Workqueue:
    """``struct workqueue_struct``: what ``alloc_workqueue`` returns.

    ``cpu_pwqs[cpu]`` are the per-CPU pwqs of a bound workqueue (each with the
    full ``max_active``: the limit is per CPU); ``dfl_pwq`` is the single pwq
    of an unbound, ordered or legacy single-thread workqueue.

    What the model does with an unbound workqueue: one pwq for the whole
    machine, so at most ``max_active`` of its items are active at once, all
    CPUs together.  That is Linux 6.1 on a machine with one NUMA node, and
    what the kernel does where it differs:

    * 6.1 (Debian 12) keeps one pwq per NUMA node (``numa_pwq_tbl``), each
      with the full ``max_active``: with N nodes up to N x max_active items
      are active.  The limit itself is clamped to
      ``max(512, 4 * num_possible_cpus())`` (``policy.wq_unbound_max_active``).
    * 6.6 to 6.8 give unbound workqueues per-CPU pwqs (commit 636b927eba5b),
      which multiplies the effective limit by the number of CPUs.
    * 6.9+ enforce ``max_active`` system-wide again (commit 5797b1c18919),
      split between nodes in proportion to their online CPUs.

    Flushing uses colours like the kernel: each queueing takes the current
    ``work_color`` and counts in ``_in_flight[color]`` until its run ends (or
    it is cancelled); ``flush_workqueue`` advances the colour and waits for
    the older colours to drain, so new queueing cannot livelock it.
    """

    def __init__(
        self,
        system: WorkqueueSystem,
        name: str,
        flags: int,
        max_active: int,
        legacy: str | None = None,
    ) -> None:
        self.system = system
        self.name = name
        self.flags = flags
        self.max_active = max_active
        self.legacy = legacy
        """None for a CMWQ workqueue, ``"MT"`` or ``"ST"`` for the pre-2.6.36 kinds."""
        self.cpu_pwqs: list[PoolWorkqueue] = []
        self.dfl_pwq: PoolWorkqueue | None = None
        self.work_color = 0
        self._in_flight: dict[int, int] = {}
        self.draining = 0
        self.destroyed = False
        self.frozen = False
        self._rescuer: Worker | None = None
        self._maydays: deque[PoolWorkqueue] = deque()

    def __repr__(self) -> str:
        kind = self.legacy or ("unbound" if self.flags & WQ_UNBOUND else "percpu")
        return f"<Workqueue {self.name} {kind} max_active={self.max_active}>"

    @property
    def unbound(self) -> bool:
        return bool(self.flags & WQ_UNBOUND)

    @property
    def mem_reclaim(self) -> bool:
        return bool(self.flags & WQ_MEM_RECLAIM)

    @property
    def pwqs(self) -> list[PoolWorkqueue]:
        """Every pool_workqueue of this workqueue (``wq->pwqs``)."""
        return [self.dfl_pwq] if self.dfl_pwq is not None else list(self.cpu_pwqs)

    @property
    def rescuer(self) -> Worker | None:
        """The rescuer worker (``WQ_MEM_RECLAIM`` only)."""
        return self._rescuer

    def nr_in_flight(self) -> int:
        """Items queued and not yet finished or cancelled (call with the lock held)."""
        return sum(self._in_flight.values())

    def _queued(self, work: WorkStruct) -> None:
        """Flush bookkeeping of a successful queueing (lock held)."""
        work._seq += 1
        color = self.work_color
        work._color = color
        self._in_flight[color] = self._in_flight.get(color, 0) + 1

    def _retire(self, color: int) -> None:
        """One instance of ``color`` finished or was cancelled (lock held)."""
        left = self._in_flight[color] - 1
        if left:
            self._in_flight[color] = left
        else:
            del self._in_flight[color]
        self.system._retired()

    def stats(self) -> PwqStats:
        """The eight counters summed over this workqueue's pwqs, as wq_monitor does."""
        total = PwqStats()
        with self.system.lock:
            for pwq in self.pwqs:
                total.add(pwq.stats)
        return total
