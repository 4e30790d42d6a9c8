"""``WorkqueueSystem``: the pools, the one lock, and the kernel-named operations.

One system is one simulated machine: ``nr_cpus`` "CPUs", each with a normal and
a highpri per-CPU pool; unbound pools shared by attributes; every workqueue
allocated on it.  A module-level default system is created lazily for the
plain ``alloc_workqueue``/``queue_work`` API; tests and notebooks create their
own (``WorkqueueSystem(nr_cpus=1, idle_timeout=0.2)``) and ``shutdown()`` it.

Locking: one ``threading.Lock`` for the whole system (the kernel has a lock
per pool; one lock is simpler and the GIL serialises Python anyway).  It is
held around every call into ``policy`` and released while a work function
runs, while a worker is idle and while a thread is being created.

Pools come to life when a workqueue first needs them, each with one initial
worker (the kernel creates every per-CPU pool at boot; creating them on
demand keeps a 64-CPU host from paying for 128 threads it never uses).

"Local CPU": Python threads have no CPU.  A kworker of a bound pool is on its
pool's CPU, so work it queues stays there.  Any other thread gets a CPU the
first time it queues on this system, round-robin over the CPUs, and keeps it
(like a task that stays where it was first scheduled); so a single accept
thread queues all its items to one CPU, as a kernel daemon that does not
migrate would.
"""

from __future__ import annotations

import os
import threading
import time
import warnings
from collections.abc import Iterable
from typing import Any

from khttpd_py.workqueue.policy import (
    IDLE_WORKER_TIMEOUT,
    WQ_FREEZABLE,
    WQ_HIGHPRI,
    WQ_MEM_RECLAIM,
    WQ_ORDERED,
    WQ_UNBOUND,
    PoolWorkqueue,
    Worker,
    WorkerPool,
    clamp_max_active,
)
from khttpd_py.workqueue.work import Workqueue, WorkStruct
from khttpd_py.workqueue.worker import Task, WorkerDriver, current

LEGACY_MAX_ACTIVE = 1 << 30
"""Legacy workqueues had no max_active: their one thread per CPU was the limit."""


class WorkqueueSystem(WorkerDriver):
    """A set of worker pools shared by the workqueues allocated on it.

    ``nr_cpus`` defaults to ``os.cpu_count()``; ``idle_timeout`` is how long an
    idle worker is kept (300 s like the kernel; tests use a fraction of a
    second); ``create_cooldown`` overrides the manager's 1 s wait after a
    failed worker creation.  Set ``fail_worker_creation`` to make every
    thread creation fail, to watch maydays and the rescuer.
    """

    def __init__(
        self,
        nr_cpus: int | None = None,
        idle_timeout: float = IDLE_WORKER_TIMEOUT,
        *,
        create_cooldown: float | None = None,
    ) -> None:
        if nr_cpus is None:
            nr_cpus = os.cpu_count() or 1
        if nr_cpus < 1:
            raise ValueError(f"nr_cpus must be >= 1, not {nr_cpus}")
        if idle_timeout <= 0:
            raise ValueError(f"idle_timeout must be > 0, not {idle_timeout}")
        self.nr_cpus = nr_cpus
        self.idle_timeout = idle_timeout
        self.create_cooldown = create_cooldown
        self.fail_worker_creation = False
        self.lock = threading.Lock()
        self._flush_cond = threading.Condition(self.lock)
        self._flush_waiters = 0
        # id() of items inside cancel_work_sync: the kernel keeps their PENDING bit
        # set and marks them canceling, so a queue_work meanwhile returns false
        self._canceling: dict[int, int] = {}
        self._cpu_pools: dict[tuple[int, bool], WorkerPool] = {}
        self._unbound_pools: dict[tuple[bool, frozenset[int]], WorkerPool] = {}
        self._pools: list[WorkerPool] = []
        self._pool_refs: dict[int, int] = {}
        self._next_pool_id = 2 * nr_cpus  # per-CPU pools are 2*cpu (+1 for highpri)
        self._legacy_names: dict[int, str] = {}
        self._workqueues: list[Workqueue] = []
        self._threads: set[threading.Thread] = set()
        self._exiting: list[threading.Thread] = []
        self._spawning: set[int] = set()
        self._local = threading.local()
        self._next_cpu = 0
        self._closed = False

    def __repr__(self) -> str:
        return f"<WorkqueueSystem cpus={self.nr_cpus} wqs={len(self._workqueues)}>"

    def __enter__(self) -> WorkqueueSystem:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    # --- pools ---------------------------------------------------------------------
    def _new_pool(self, cpu: int | None, highpri: bool, pool_id: int, legacy: bool) -> WorkerPool:
        pool = WorkerPool(
            driver=self,
            cpu=cpu,
            highpri=highpri,
            id=pool_id,
            legacy=legacy,
            idle_timeout=self.idle_timeout,
            on_mayday=self._on_mayday,
        )
        self._pools.append(pool)
        self._pool_refs[id(pool)] = 0
        return pool

    def _get_cpu_pool(self, cpu: int, highpri: bool) -> WorkerPool:
        """``per_cpu(cpu_worker_pools, cpu)[highpri]``, created on first use."""
        pool = self._cpu_pools.get((cpu, highpri))
        if pool is None:
            pool = self._new_pool(cpu, highpri, 2 * cpu + int(highpri), legacy=False)
            self._cpu_pools[(cpu, highpri)] = pool
        return pool

    def _get_unbound_pool(self, highpri: bool, cpumask: frozenset[int]) -> WorkerPool:
        """``get_unbound_pool()``: workqueues with identical attributes share a pool."""
        key = (highpri, cpumask)
        pool = self._unbound_pools.get(key)
        if pool is None:
            pool = self._new_pool(None, highpri, self._next_pool_id, legacy=False)
            self._next_pool_id += 1
            self._unbound_pools[key] = pool
        return pool

    def _new_legacy_pool(self, cpu: int | None, wq_name: str) -> WorkerPool:
        pool = self._new_pool(cpu, False, self._next_pool_id, legacy=True)
        self._next_pool_id += 1
        self._legacy_names[pool.id] = wq_name
        return pool

    def _put_pool(self, pool: WorkerPool, doomed: list[threading.Thread]) -> None:
        """Drop a pwq's reference; unbound and legacy pools die with their last user."""
        if pool.destroyed:
            return
        refs = self._pool_refs[id(pool)] - 1
        self._pool_refs[id(pool)] = refs
        if refs == 0 and (pool.cpu is None or pool.legacy):
            self._destroy_pool(pool, doomed)

    def _destroy_pool(self, pool: WorkerPool, doomed: list[threading.Thread]) -> None:
        """Mark the pool destroyed and tell every worker to die (lock held)."""
        pool.destroyed = True
        for worker in list(pool.workers):
            pool.detach_worker(worker)
            self.wake_worker(worker)
            task: Task = worker.task
            if task.thread is not None:
                doomed.append(task.thread)
        self._pools = [p for p in self._pools if p is not pool]  # identity: pools are dataclasses
        for key in [k for k, p in self._cpu_pools.items() if p is pool]:
            del self._cpu_pools[key]
        for ukey in [k for k, p in self._unbound_pools.items() if p is pool]:
            del self._unbound_pools[ukey]
        self._legacy_names.pop(pool.id, None)
        self._pool_refs.pop(id(pool), None)

    # --- alloc / destroy -------------------------------------------------------------
    def alloc_workqueue(
        self,
        fmt: str,
        flags: int = 0,
        max_active: int = 0,
        *args: object,
        cpumask: Iterable[int] | None = None,
    ) -> Workqueue | None:
        """``alloc_workqueue(fmt, flags, max_active, args...)``.

        ``max_active`` 0 means the default (256); out-of-range values are
        clamped with a ``RuntimeWarning`` (the kernel's pr_warn).  ``cpumask``
        is the unbound pool attribute (all CPUs by default).  Returns None,
        as the kernel returns NULL, when a needed thread cannot be created.
        """
        name = fmt % args if args else fmt
        max_active, warning = clamp_max_active(max_active, name, flags=flags,
                                               nr_cpus=self.nr_cpus)
        if warning is not None:
            warnings.warn(warning, RuntimeWarning, stacklevel=2)
        mask = frozenset(range(self.nr_cpus)) if cpumask is None else frozenset(cpumask)
        if not mask or not mask <= frozenset(range(self.nr_cpus)):
            raise ValueError(f"cpumask {sorted(mask)} is not a non-empty subset of the CPUs")
        return self._alloc(Workqueue(self, name, flags, max_active), mask)

    def alloc_ordered_workqueue(self, fmt: str, flags: int = 0, *args: object) -> Workqueue | None:
        """``alloc_ordered_workqueue``: unbound, one item at a time, in queue order."""
        name = fmt % args if args else fmt
        wq = Workqueue(self, name, flags | WQ_UNBOUND | WQ_ORDERED, 1)
        return self._alloc(wq, frozenset(range(self.nr_cpus)))

    def create_workqueue(self, name: str) -> Workqueue | None:
        """Legacy MT workqueue: a private pool with one dedicated thread per CPU."""
        return self._alloc(Workqueue(self, name, 0, LEGACY_MAX_ACTIVE, legacy="MT"), None)

    def create_singlethread_workqueue(self, name: str) -> Workqueue | None:
        """Legacy ST workqueue: one dedicated thread for the whole system."""
        return self._alloc(Workqueue(self, name, 0, LEGACY_MAX_ACTIVE, legacy="ST"), None)

    def _alloc(self, wq: Workqueue, mask: frozenset[int] | None) -> Workqueue | None:
        highpri = bool(wq.flags & WQ_HIGHPRI)
        with self.lock:
            if self._closed:
                raise RuntimeError("this WorkqueueSystem has been shut down")
            if wq.legacy == "MT":
                for cpu in range(self.nr_cpus):
                    pool = self._new_legacy_pool(cpu, wq.name)
                    wq.cpu_pwqs.append(PoolWorkqueue(wq, pool, wq.max_active))
            elif wq.legacy == "ST":
                wq.dfl_pwq = PoolWorkqueue(wq, self._new_legacy_pool(None, wq.name), wq.max_active)
            elif wq.flags & WQ_UNBOUND:
                assert mask is not None
                pool = self._get_unbound_pool(highpri, mask)
                wq.dfl_pwq = PoolWorkqueue(wq, pool, wq.max_active)
            else:
                for cpu in range(self.nr_cpus):
                    pool = self._get_cpu_pool(cpu, highpri)
                    wq.cpu_pwqs.append(PoolWorkqueue(wq, pool, wq.max_active))
            need: list[WorkerPool] = []
            for pwq in wq.pwqs:
                self._pool_refs[id(pwq.pool)] += 1
                if not pwq.pool.workers and id(pwq.pool) not in self._spawning:
                    self._spawning.add(id(pwq.pool))
                    need.append(pwq.pool)
            self._workqueues.append(wq)
            ok = True
            for pool in need:  # every pool starts with one worker (create_worker at init)
                ok = self._spawn_worker(pool) is not None and ok
                self._spawning.discard(id(pool))
            if ok and wq.flags & WQ_MEM_RECLAIM:
                ok = self._start_rescuer(wq)
        if not ok:
            self.destroy_workqueue(wq)
            return None
        return wq

    def _start_rescuer(self, wq: Workqueue) -> bool:
        """One rescuer per ``WQ_MEM_RECLAIM`` workqueue, created with it (lock held)."""
        if self.fail_worker_creation:
            return False
        rescuer = Worker(wq.pwqs[0].pool, 0)
        rescuer.rescue_wq = wq
        task = Task(self.lock)
        rescuer.task = task
        thread = threading.Thread(
            target=self._rescuer_main, args=(rescuer, wq._maydays), name=rescuer.name, daemon=True
        )
        task.thread = thread
        self.lock.release()
        try:
            thread.start()
            started = True
        except RuntimeError:
            started = False
        finally:
            self.lock.acquire()
        if started:
            self._threads.add(thread)
            wq._rescuer = rescuer
        return started

    def destroy_workqueue(self, wq: Workqueue) -> None:
        """``destroy_workqueue``: run everything pending first, then free the workqueue.

        During the drain only chained queueing (from the workqueue's own
        items) is accepted.  Afterwards the rescuer stops, and unbound or
        legacy pools that no other workqueue uses lose their workers; the
        shared per-CPU pools stay.  Returns once those threads have exited.
        """
        if wq.destroyed:
            return
        self.drain_workqueue(wq)
        self._release_workqueue(wq, None)

    def _release_workqueue(self, wq: Workqueue, deadline: float | None) -> bool:
        """Unlink a drained ``wq``, stop its rescuer and the pools only it used; join
        those threads (until ``deadline``).  True if they all exited."""
        doomed: list[threading.Thread] = []
        with self.lock:
            if wq.destroyed:
                return True
            wq.destroyed = True
            if wq in self._workqueues:
                self._workqueues.remove(wq)
            for pwq in wq.pwqs:
                self._put_pool(pwq.pool, doomed)
            rescuer = wq._rescuer
            if rescuer is not None:
                task: Task = rescuer.task
                task.stop = True
                self.wake_worker(rescuer)
                if task.thread is not None:
                    doomed.append(task.thread)
        return self._join(doomed, deadline)

    @staticmethod
    def _join(threads: list[threading.Thread], deadline: float | None) -> bool:
        me = threading.current_thread()
        for thread in threads:
            if thread is me or thread.ident is None:
                continue
            thread.join(None if deadline is None else max(deadline - time.monotonic(), 0.0))
        return not any(t.is_alive() for t in threads if t is not me)

    def shutdown(self, timeout: float | None = None) -> bool:
        """Destroy every workqueue (draining it), stop every worker, join every thread.

        Returns True when no thread of this system is left alive.  An item
        that never returns keeps its worker (and the drain) waiting, exactly
        as it would keep ``rmmod`` waiting; ``timeout`` bounds the whole
        shutdown: past it, the workers are told to exit as soon as they run
        out of work (the items already queued still run) and the result is False.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self.lock:
            self._closed = True
            wqs = list(self._workqueues)
        for wq in wqs:
            self._drain(wq, deadline)
            self._release_workqueue(wq, deadline)
        doomed: list[threading.Thread] = []
        with self.lock:
            for pool in list(self._pools):
                self._destroy_pool(pool, doomed)
            threads = list(self._threads) + list(self._exiting)
        clean = self._join(threads, deadline)
        with self.lock:
            self._exiting = [t for t in self._exiting if t.is_alive()]
        return clean

    # --- queueing --------------------------------------------------------------------
    def _local_cpu(self) -> int:
        """The CPU ``queue_work`` uses for the calling thread (see the module docstring)."""
        worker = current.worker
        if worker is not None and current.system is self and worker.pool.cpu is not None:
            return worker.pool.cpu
        cpu: int | None = getattr(self._local, "cpu", None)
        if cpu is None:
            cpu = self._next_cpu
            self._next_cpu = (cpu + 1) % self.nr_cpus
            self._local.cpu = cpu
        return cpu

    def _is_chained(self, wq: Workqueue) -> bool:
        """Is the caller an item of ``wq`` (re)queueing work while ``wq`` drains?"""
        worker = current.worker
        if worker is None or current.system is not self:
            return False
        pwq = worker.current_pwq
        return pwq is not None and pwq.wq is wq

    def queue_work_on(self, cpu: int | None, wq: Workqueue, work: WorkStruct) -> bool:
        """``queue_work_on``: False if ``work`` is already pending, else queue it.

        ``cpu`` None means the local CPU.  Unbound workqueues have one pwq and
        ignore ``cpu``.  Non-reentrancy: an item still running on another pool
        goes to the pwq running it, where ``assign_work`` hands it to that
        very worker.
        """
        refused = None
        with self.lock:
            if work.pending or id(work) in self._canceling:
                return False
            if wq.draining or wq.destroyed:
                if wq.destroyed or not self._is_chained(wq):
                    refused = f"workqueue: cannot queue {work!r} on wq {wq.name}"
            if refused is None:
                if cpu is not None and not 0 <= cpu < self.nr_cpus:
                    raise ValueError(f"cpu {cpu} out of range 0..{self.nr_cpus - 1}")
                pwq = wq.dfl_pwq
                if pwq is None:
                    pwq = wq.cpu_pwqs[self._local_cpu() if cpu is None else cpu]
                last_pool = work.last_pool
                if last_pool is not None and last_pool is not pwq.pool:
                    owner = last_pool.find_worker_executing_work(work)
                    if owner is not None and owner.current_pwq is not None:
                        if owner.current_pwq.wq is wq:
                            pwq = owner.current_pwq
                if work.func is None:
                    raise ValueError(f"{work!r} has no function: init_work() it first")
                pwq.pool.insert_work(work, pwq)
                wq._queued(work)
                return True
        warnings.warn(refused, RuntimeWarning, stacklevel=3)
        return False

    def queue_work(self, wq: Workqueue, work: WorkStruct) -> bool:
        """``queue_work``: queue on the local CPU (see the module docstring)."""
        return self.queue_work_on(None, wq, work)

    # --- flushing and cancelling -----------------------------------------------------
    @staticmethod
    def _executing(work: WorkStruct) -> bool:
        pool = work.last_pool
        return pool is not None and pool.find_worker_executing_work(work) is not None

    def _check_not_self(self, work: WorkStruct, what: str) -> None:
        """Waiting for the item this very worker runs would never end (lockdep's job)."""
        worker = current.worker
        if worker is not None and current.system is self and worker.current_work is work:
            raise RuntimeError(f"{what}() of the work item running in this worker would deadlock")

    def _check_not_own_wq(self, wq: Workqueue, what: str) -> None:
        """Waiting for a workqueue from one of its own items would wait for itself."""
        if self._is_chained(wq):
            raise RuntimeError(f"{what}({wq.name}) from one of its own items would deadlock")

    def _wait_flush(self, done: Any, deadline: float | None = None) -> bool:
        """Wait on the flush condition until ``done()`` holds (lock held).

        Returns False if ``deadline`` (a ``time.monotonic()`` value) passed first.
        """
        if done():
            return True
        self._flush_waiters += 1
        try:
            while not done():
                if deadline is None:
                    self._flush_cond.wait()
                    continue
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._flush_cond.wait(left)
            return True
        finally:
            self._flush_waiters -= 1

    def flush_work(self, work: WorkStruct) -> bool:
        """``flush_work``: wait for the last queueing of ``work`` to finish running.

        Returns False if it was neither pending nor running (nothing to wait
        for), True if it waited.  A requeue after the call is not waited for.
        """
        self._check_not_self(work, "flush_work")
        with self.lock:
            if not work.pending and not self._executing(work):
                return False
            target = work._seq
            self._wait_flush(
                lambda: work._done_seq >= target
                or (not work.pending and not self._executing(work))
            )
            return True

    def flush_workqueue(self, wq: Workqueue) -> None:
        """``flush_workqueue``: wait for every item queued before the call.

        Items queued afterwards (even by the items themselves) get a newer
        flush colour and are not waited for, so this cannot be livelocked.
        """
        self._check_not_own_wq(wq, "flush_workqueue")
        with self.lock:
            color = wq.work_color
            wq.work_color = color + 1
            in_flight = wq._in_flight
            self._wait_flush(lambda: not any(c <= color for c in in_flight))

    def drain_workqueue(self, wq: Workqueue) -> None:
        """``drain_workqueue``: wait until ``wq`` is empty; meanwhile only its own
        items may queue more (chained work), anything else is refused with a warning."""
        self._check_not_own_wq(wq, "drain_workqueue")
        self._drain(wq, None)

    def _drain(self, wq: Workqueue, deadline: float | None) -> bool:
        with self.lock:
            wq.draining += 1
            try:
                in_flight = wq._in_flight
                return self._wait_flush(lambda: not in_flight, deadline)
            finally:
                wq.draining -= 1

    def _grab(self, work: WorkStruct) -> bool:
        """Take a pending ``work`` off its queue (lock held); True if it was pending."""
        pwq = work.pwq
        if not work.pending or pwq is None:
            return False
        if not pwq.pool.try_to_grab_pending(work):
            return False
        wq: Workqueue = pwq.wq  # type: ignore[assignment]
        wq._retire(work._color)
        return True

    def cancel_work(self, work: WorkStruct) -> bool:
        """``cancel_work``: un-queue a pending ``work``; a running one keeps running."""
        with self.lock:
            return self._grab(work)

    def cancel_work_sync(self, work: WorkStruct) -> bool:
        """``cancel_work_sync``: un-queue ``work`` and wait until it is not running.

        Returns whether it was pending.  On return the item is neither pending
        nor running anywhere, even if it requeues itself: while the call waits,
        every ``queue_work`` of it returns False, as the kernel's
        ``mark_work_canceling`` makes it (the usual way to stop self-rearming
        work, such as a poller or an idle-connection timer).
        """
        self._check_not_self(work, "cancel_work_sync")
        key = id(work)
        with self.lock:
            was_pending = self._grab(work)
            self._canceling[key] = self._canceling.get(key, 0) + 1
            try:
                self._wait_flush(lambda: not self._executing(work))
            finally:
                self._canceling[key] -= 1
                if not self._canceling[key]:
                    del self._canceling[key]
            return was_pending

    # --- freezing (WQ_FREEZABLE) -----------------------------------------------------
    def freeze_workqueues(self) -> None:
        """``freeze_workqueues_begin``: freezable workqueues start nothing new.

        Their pwqs' ``max_active`` drops to 0, so new items wait inactive;
        items already active still finish (see ``freeze_busy``).
        """
        with self.lock:
            for wq in self._workqueues:
                if wq.flags & WQ_FREEZABLE and not wq.frozen:
                    wq.frozen = True
                    for pwq in wq.pwqs:
                        pwq.max_active = 0

    def freeze_busy(self) -> bool:
        """``freeze_workqueues_busy``: does a frozen workqueue still have active items?"""
        with self.lock:
            return any(pwq.nr_active for wq in self._workqueues if wq.frozen for pwq in wq.pwqs)

    def thaw_workqueues(self) -> None:
        """``thaw_workqueues``: restore ``max_active`` and activate waiting items FIFO."""
        with self.lock:
            for wq in self._workqueues:
                if not wq.frozen:
                    continue
                wq.frozen = False
                for pwq in wq.pwqs:
                    pwq.max_active = wq.max_active
                    while pwq.inactive_works and pwq.nr_active < pwq.max_active:
                        pwq.pool.pwq_activate_first_inactive(pwq)
                    pwq.pool.kick_pool()

    # --- introspection ---------------------------------------------------------------
    def workqueues(self) -> list[Workqueue]:
        """The live workqueues, in allocation order (the kernel's ``workqueues`` list)."""
        with self.lock:
            return list(self._workqueues)

    def pools(self) -> list[WorkerPool]:
        """The live worker pools (per-CPU first by CPU, then unbound and legacy)."""
        with self.lock:
            return sorted(self._pools, key=lambda p: p.id)

    def thread_count(self) -> int:
        """Threads this system holds now: every kworker plus every rescuer."""
        with self.lock:
            return len(self._threads)

    def threads(self) -> list[threading.Thread]:
        """The threads themselves (kworkers and rescuers), e.g. to list their names."""
        with self.lock:
            return sorted(self._threads, key=lambda t: t.name)

    def dump(self) -> str:
        """A ``wq_dump.py``-like text: pools, then which pool each workqueue uses."""
        lines = ["Worker Pools", "============"]
        with self.lock:
            for pool in sorted(self._pools, key=lambda p: p.id):
                where = f"cpu={pool.cpu:3}" if pool.cpu is not None else "cpus=all"
                nice = -20 if pool.highpri else 0
                kind = " legacy" if pool.legacy else ""
                lines.append(
                    f"pool[{pool.id:02}] ref={self._pool_refs[id(pool)]:3} nice={nice:3} "
                    f"idle/workers={pool.nr_idle:3}/{pool.nr_workers:3} {where}{kind}"
                )
            lines += ["", "Workqueue -> pool", "================="]
            for wq in self._workqueues:
                ids = " ".join(f"{pwq.pool.id}" for pwq in wq.pwqs)
                kind = wq.legacy or ("unbound" if wq.unbound else "percpu")
                if wq.flags & WQ_ORDERED:
                    kind = "ordered"
                lines.append(f"{wq.name[-24:]:24} {kind:8} {ids}")
        return "\n".join(lines)
