"""The concurrency-management rules of ``kernel/workqueue.c``, written once.

Two clocks drive this module: ``khttpd_py.workqueue`` runs it on real threads
and ``khttpd_py.sim`` runs it on simulated milliseconds.  Neither copies a rule;
both call the functions here, so a timeline from the simulator is a faithful
picture of what the threaded workqueue decides.

Everything here follows the kernel's convention that *the caller holds the pool
lock*: no function in this module blocks, sleeps or reads a clock.  Where the
kernel would sleep, wake a task or create a kthread, the code calls back into
the driver (``PoolDriver``) or *yields an action* from :meth:`WorkerPool.worker_thread`,
a generator that is ``worker_thread()`` of ``workqueue.c`` with the sleeping
points turned into ``yield``.

Names follow the kernel so a reader can hold the two side by side:
``worker_pool``, ``pool_workqueue`` (pwq), ``nr_running``, ``max_active``,
``need_more_worker``, ``may_start_working``, ``keep_working``,
``wq_worker_sleeping``, ``wq_worker_running``, ``kick_pool``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

# --- workqueue flags (include/linux/workqueue.h) ------------------------------------
WQ_UNBOUND = 1 << 1
"""Not bound to a CPU: no concurrency management, items start as soon as possible."""
WQ_FREEZABLE = 1 << 2
"""Takes part in system freeze: no new item starts while frozen."""
WQ_MEM_RECLAIM = 1 << 3
"""Guaranteed forward progress: the workqueue gets its own rescuer thread."""
WQ_HIGHPRI = 1 << 4
"""Uses the per-CPU highpri pool (nice -20) instead of the normal one."""
WQ_CPU_INTENSIVE = 1 << 5
"""Its running items do not count in nr_running (their *start* is still regulated)."""
WQ_SYSFS = 1 << 6
"""Visible in sysfs; accepted and ignored here."""
WQ_ORDERED = 1 << 17
"""The kernel's ``__WQ_ORDERED``: at most one item at a time, in queue order."""

FLAG_NAMES: dict[str, int] = {
    "unbound": WQ_UNBOUND,
    "freezable": WQ_FREEZABLE,
    "mem_reclaim": WQ_MEM_RECLAIM,
    "highpri": WQ_HIGHPRI,
    "cpu_intensive": WQ_CPU_INTENSIVE,
    "sysfs": WQ_SYSFS,
}
"""Flag names as written on command lines (``--flags unbound,highpri``)."""

WQ_MAX_ACTIVE = 512
"""Upper clamp for a per-CPU wq's max_active (Linux <= 6.12, as in Debian 12's 6.1;
2048 since 6.13)."""
WQ_DFL_ACTIVE = WQ_MAX_ACTIVE // 2
"""What max_active 0 means: 256 here (1024 since Linux 6.13)."""
WQ_MAX_UNBOUND_PER_CPU = 4
"""6.1's ``WQ_UNBOUND_MAX_ACTIVE`` allows 4 active items per possible CPU (see below)."""


def wq_unbound_max_active(nr_cpus: int) -> int:
    """``WQ_UNBOUND_MAX_ACTIVE`` of Linux 6.1: ``max(WQ_MAX_ACTIVE, 4 * num_possible_cpus())``.

    An unbound workqueue is not per CPU, so 6.1 scales its limit with the
    machine; the two differ only above 128 CPUs.  (From 6.9 on the limit is
    ``WQ_MAX_ACTIVE`` again, with max_active shared system-wide.)
    """
    return max(WQ_MAX_ACTIVE, nr_cpus * WQ_MAX_UNBOUND_PER_CPU)


def parse_flags(spec: str | Iterable[str]) -> int:
    """Turn ``"unbound,highpri"`` (or a list of names) into a flags word.

    ``bound`` and the empty string mean no flag.  An unknown name raises
    ``ValueError`` whose message lists the valid names, for CLIs to print;
    so does ``bound`` with ``unbound``, which would otherwise quietly mean
    unbound.
    """
    names = spec.split(",") if isinstance(spec, str) else list(spec)
    flags = 0
    said_bound = False
    for raw in names:
        name = raw.strip().lower().replace("-", "_")
        if name.startswith("wq_"):
            name = name[3:]
        said_bound = said_bound or name == "bound"
        if name in ("", "bound", "none"):
            continue
        if name not in FLAG_NAMES:
            valid = ", ".join(["bound", *FLAG_NAMES])
            raise ValueError(f"unknown workqueue flag {raw.strip()!r} (valid: {valid})")
        flags |= FLAG_NAMES[name]
    if said_bound and flags & WQ_UNBOUND:
        raise ValueError("a workqueue cannot be both bound and unbound")
    return flags


def flag_names(flags: int) -> str:
    """The inverse of :func:`parse_flags`, for printing (``"bound"`` when none)."""
    names = [name for name, bit in FLAG_NAMES.items() if flags & bit]
    if flags & WQ_ORDERED:
        names.append("ordered")
    return ",".join(names) or "bound"


def clamp_max_active(
    max_active: int, name: str, *, flags: int = 0, nr_cpus: int = 1
) -> tuple[int, str | None]:
    """``alloc_workqueue()``'s ``max_active ?: WQ_DFL_ACTIVE``, then ``wq_clamp_max_active()``.

    0 means the default; out-of-range values are clamped to 1 and the limit,
    which in 6.1 is ``WQ_MAX_ACTIVE`` for a per-CPU workqueue and
    ``WQ_UNBOUND_MAX_ACTIVE`` (:func:`wq_unbound_max_active` of ``nr_cpus``,
    the possible CPUs) for a ``WQ_UNBOUND`` one.  Returns the value to use and
    the warning the kernel would ``pr_warn`` (or None), so each caller decides
    where warnings go.
    """
    if max_active == 0:
        return WQ_DFL_ACTIVE, None
    lim = wq_unbound_max_active(nr_cpus) if flags & WQ_UNBOUND else WQ_MAX_ACTIVE
    if max_active < 1 or max_active > lim:
        clamped = min(max(max_active, 1), lim)
        return clamped, (
            f"workqueue: max_active {max_active} requested for {name} is out of range, "
            f"clamping between 1 and {lim}"
        )
    return max_active, None


# --- worker flags (kernel/workqueue_internal.h) -------------------------------------
WORKER_DIE = 1 << 1
WORKER_IDLE = 1 << 2
WORKER_PREP = 1 << 3
WORKER_CPU_INTENSIVE = 1 << 6
WORKER_UNBOUND = 1 << 7
WORKER_NOT_RUNNING = WORKER_PREP | WORKER_CPU_INTENSIVE | WORKER_UNBOUND
"""A worker with any of these bits does not count in ``nr_running``."""

IDLE_WORKER_TIMEOUT = 300.0
"""Seconds an idle worker is kept before it may be reaped ("keep idle ones for 5 mins")."""
MAX_IDLE_WORKERS_RATIO = 4
"""1/4 of busy workers may stay idle (``too_many_workers``)."""
CREATE_COOLDOWN = 1.0
"""Seconds the manager waits after a failed worker creation (``HZ``)."""
MAYDAY_INITIAL_TIMEOUT = 0.010
"""Seconds a manager may try to create a worker before the pool calls for help: the
kernel's ``HZ / 100`` jiffies, "call for help after 10ms (min two ticks)".  (With
Debian's HZ=250 that rounds down to 2 jiffies, 8 ms.)"""
MAYDAY_INTERVAL = 0.100
"""Seconds between further maydays while creation still makes no progress (``HZ / 10``)."""


@dataclass
class PwqStats:
    """The eight per-pwq counters of ``enum pool_workqueue_stats``.

    The counters (and ``tools/workqueue/wq_monitor.py``, which reads them) came
    with Linux 6.5; Debian 12's 6.1 has neither.  They are kept here because
    they name what the rules do.  ``cpu_intensive`` is ``PWQ_STAT_CPU_INTENSIVE``,
    which counts violations of ``wq_cpu_intensive_thresh_us`` (10 ms by default):
    ``wq_worker_tick()`` finds a *concurrency-managed* worker that has hogged
    its CPU that long in one go, marks it CPU_INTENSIVE and counts one.  Workers
    of a WQ_CPU_INTENSIVE workqueue are NOT_RUNNING, so the tick returns early
    for them and such a workqueue counts 0.  That automatic detection is a 6.5
    behaviour with no 6.1 counterpart, and neither clock here has a tick
    interrupting a running item, so it is not modelled: ``cpu_intensive`` stays 0.
    """

    started: int = 0
    completed: int = 0
    cpu_time: float = 0.0
    cpu_intensive: int = 0
    cm_wakeup: int = 0
    repatriated: int = 0
    mayday: int = 0
    rescued: int = 0

    def add(self, other: PwqStats) -> None:
        """Sum another pwq's counters into this one (wq_monitor sums over pwqs)."""
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


class WorkItem:
    """What the rules need to know of a ``work_struct``: the PENDING bit and the pwq.

    ``WorkStruct`` (threads) and the simulator's work both derive from it.
    """

    def __init__(self) -> None:
        self.pending = False
        self.pwq: PoolWorkqueue | None = None
        self.last_pool: WorkerPool | None = None


class WqInfo(Protocol):
    """The parts of a workqueue the rules read."""

    name: str
    flags: int


class PoolWorkqueue:
    """``struct pool_workqueue``: one workqueue on one pool; enforces max_active.

    Items beyond ``max_active`` wait in ``inactive_works`` and are activated in
    FIFO order as active ones retire.
    """

    def __init__(self, wq: WqInfo, pool: WorkerPool, max_active: int) -> None:
        self.wq = wq
        self.pool = pool
        self.max_active = max_active
        self.nr_active = 0
        self.inactive_works: deque[WorkItem] = deque()
        self.stats = PwqStats()
        self.mayday_queued = False

    def __repr__(self) -> str:
        return f"<pwq {self.wq.name} on {self.pool.name} active={self.nr_active}>"


class Worker:
    """``struct worker``: one kworker.  ``task`` is the driver's handle (a thread, or
    the simulator's process)."""

    def __init__(self, pool: WorkerPool, worker_id: int) -> None:
        self.pool = pool
        self.id = worker_id
        self.flags = WORKER_PREP
        self.current_work: WorkItem | None = None
        self.current_pwq: PoolWorkqueue | None = None
        self.scheduled: deque[tuple[WorkItem, PoolWorkqueue]] = deque()
        self.sleeping = False
        self.last_active = 0.0
        self.rescue_wq: WqInfo | None = None
        self.task: Any = None

    @property
    def name(self) -> str:
        """The kernel's thread name: ``kworker/<cpu>:<id>[H]`` or ``kworker/u<pool>:<id>``."""
        if self.rescue_wq is not None:
            return f"kworker/R-{self.rescue_wq.name}"[:15]
        pool = self.pool
        if pool.cpu is None:
            return f"kworker/u{pool.id}:{self.id}"
        return f"kworker/{pool.cpu}:{self.id}{'H' if pool.highpri else ''}"

    def __repr__(self) -> str:
        return f"<{self.name}>"


class PoolDriver(Protocol):
    """What a clock must provide to the rules: waking a worker, reading time, and
    the pool's mayday timer."""

    def wake_worker(self, worker: Worker) -> None:
        """``wake_up_process(worker->task)``: make a sleeping (idle) worker run its loop."""

    def now(self) -> float:
        """The driver's clock, in seconds (threads) or milliseconds (simulator)."""

    def mod_mayday_timer(self, pool: WorkerPool, seconds: float) -> None:
        """``mod_timer(&pool->mayday_timer, ...)``: (re)arm the timer to call
        ``pool.pool_mayday_timeout()`` after ``seconds``, replacing any armed one.
        The driver keeps its handle in ``pool.mayday_timer``."""

    def del_mayday_timer(self, pool: WorkerPool) -> None:
        """``del_timer_sync(&pool->mayday_timer)``: the timer will not fire."""


# Actions yielded by WorkerPool.worker_thread; the driver performs them.
RUN = "run"          # ("run", work, pwq): call work's function, then send(CPU time to charge)
CREATE = "create"    # ("create",): manager creates a worker; send(new worker or None)
IDLE = "idle"        # ("idle",): sleep until woken; then send(None)
COOLDOWN = "cooldown"  # ("cooldown", seconds): creation failed; wait, then send(None)
DIE = "die"          # ("die",): the worker was reaped or its pool destroyed; exit

Action = tuple[Any, ...]


@dataclass
class WorkerPool:
    """``struct worker_pool``: a worklist, its workers and the concurrency level.

    ``cpu`` is the CPU of a bound pool, None for an unbound pool.  ``legacy``
    pools model the pre-2.6.36 workqueues: exactly one dedicated worker that
    takes items one at a time and keeps its CPU context while an item sleeps
    (no concurrency management, no manager).
    """

    driver: PoolDriver
    cpu: int | None
    highpri: bool = False
    id: int = 0
    legacy: bool = False
    idle_timeout: float = IDLE_WORKER_TIMEOUT
    worklist: deque[tuple[WorkItem, PoolWorkqueue]] = field(default_factory=deque)
    workers: list[Worker] = field(default_factory=list)
    idle_list: list[Worker] = field(default_factory=list)  # head = most recently idle
    nr_running: int = 0
    busy_hash: dict[int, Worker] = field(default_factory=dict)
    manager_active: bool = False
    next_worker_id: int = 0
    workers_created: int = 0
    peak_workers: int = 0
    destroyed: bool = False
    on_mayday: Callable[[PoolWorkqueue], None] | None = None
    rescuers: list[Worker] = field(default_factory=list)  # rescuers attached right now
    mayday_timer: Any = None  # the driver's handle of the armed mayday timer, or None

    @property
    def name(self) -> str:
        if self.cpu is None:
            return f"unbound pool {self.id}"
        return f"cpu{self.cpu}{' highpri' if self.highpri else ''} pool"

    @property
    def nr_workers(self) -> int:
        return len(self.workers)

    @property
    def nr_idle(self) -> int:
        return len(self.idle_list)

    # --- the predicates --------------------------------------------------------------
    def need_more_worker(self) -> bool:
        """Work is waiting and nothing counted is running: wake someone."""
        if self.legacy:
            return bool(self.worklist)
        return bool(self.worklist) and self.nr_running == 0

    def may_start_working(self) -> bool:
        """An idle worker exists, so this one may work and still leave a spare."""
        return self.legacy or self.nr_idle > 0

    def keep_working(self) -> bool:
        """After an item: go on only while at most one counted worker (me) runs."""
        if self.legacy:
            return bool(self.worklist)
        return bool(self.worklist) and self.nr_running <= 1

    def need_to_create_worker(self) -> bool:
        return self.need_more_worker() and not self.may_start_working()

    def too_many_workers(self) -> bool:
        """More than two idle and idle beyond a quarter of busy: reap one.

        A worker busy managing counts as idle, as in the kernel: it is about to
        add a worker, not to run work.
        """
        nr_idle = self.nr_idle + int(self.manager_active)
        nr_busy = self.nr_workers - nr_idle
        return nr_idle > 2 and (nr_idle - 2) * MAX_IDLE_WORKERS_RATIO >= nr_busy

    # --- nr_running accounting (worker_set_flags / worker_clr_flags) ----------------
    def worker_set_flags(self, worker: Worker, flags: int) -> None:
        if (flags & WORKER_NOT_RUNNING) and not (worker.flags & WORKER_NOT_RUNNING):
            if not worker.sleeping:
                self.nr_running -= 1
        worker.flags |= flags

    def worker_clr_flags(self, worker: Worker, flags: int) -> None:
        old = worker.flags
        worker.flags &= ~flags
        if (old & WORKER_NOT_RUNNING) and not (worker.flags & WORKER_NOT_RUNNING):
            if not worker.sleeping:
                self.nr_running += 1

    def counts_in_nr_running(self, worker: Worker) -> bool:
        return not (worker.flags & WORKER_NOT_RUNNING) and not worker.sleeping

    # --- idle management -----------------------------------------------------------
    def worker_enter_idle(self, worker: Worker) -> None:
        worker.flags |= WORKER_IDLE
        worker.last_active = self.driver.now()
        self.idle_list.insert(0, worker)

    def worker_leave_idle(self, worker: Worker) -> None:
        if worker.flags & WORKER_IDLE:
            worker.flags &= ~WORKER_IDLE
            self.idle_list.remove(worker)

    def first_idle_worker(self) -> Worker | None:
        return self.idle_list[0] if self.idle_list else None

    def kick_pool(self) -> Worker | None:
        """Wake the first idle worker if work needs a worker; return whom we woke."""
        if not self.need_more_worker():
            return None
        worker = self.first_idle_worker()
        if worker is None:
            return None
        self.driver.wake_worker(worker)
        return worker

    def attach_worker(self, worker: Worker | None = None) -> Worker:
        """``create_worker()``'s bookkeeping: a new worker starts in PREP, idle.

        Unbound workers carry WORKER_UNBOUND so they never count in nr_running.
        The driver starts the task afterwards; the task's first step is
        :meth:`worker_thread`, which begins as if just woken.
        """
        if worker is None:
            worker = Worker(self, self.next_worker_id)
        self.next_worker_id = max(self.next_worker_id, worker.id) + 1
        if self.cpu is None:
            worker.flags |= WORKER_UNBOUND
        self.workers.append(worker)
        self.workers_created += 1
        self.peak_workers = max(self.peak_workers, len(self.workers))
        self.worker_enter_idle(worker)
        return worker

    def detach_worker(self, worker: Worker) -> None:
        self.worker_leave_idle(worker)
        if worker in self.workers:
            self.workers.remove(worker)
        worker.flags |= WORKER_DIE

    def reap_idle_workers(self) -> list[Worker]:
        """``idle_worker_timeout()``: cull the oldest idle workers past the timeout.

        Returns the workers marked to die; the driver wakes them so they exit.
        """
        now = self.driver.now()
        culled: list[Worker] = []
        while self.too_many_workers():
            oldest = self.idle_list[-1]
            if now - oldest.last_active < self.idle_timeout:
                break
            self.detach_worker(oldest)
            culled.append(oldest)
        for worker in culled:
            self.driver.wake_worker(worker)
        return culled

    def next_reap_time(self) -> float | None:
        """When the oldest idle worker becomes reapable (None if none would be)."""
        if not self.too_many_workers():
            return None
        return self.idle_list[-1].last_active + self.idle_timeout

    # --- scheduler hooks -------------------------------------------------------------
    def wq_worker_sleeping(self, worker: Worker) -> Worker | None:
        """A busy worker is about to block: it leaves nr_running, and if work is
        waiting with nothing running, the first idle worker is woken (CMW)."""
        # As in the kernel, NOT_RUNNING workers (unbound, CPU-intensive, rescuer)
        # return before anything is touched: they never counted in nr_running.
        if worker.flags & WORKER_NOT_RUNNING:
            return None
        if worker.sleeping or worker.pool is not self:
            return None
        worker.sleeping = True
        self.nr_running -= 1
        if self.legacy:
            return None
        woken = self.kick_pool()
        if woken is not None and worker.current_pwq is not None:
            worker.current_pwq.stats.cm_wakeup += 1
        return woken

    def wq_worker_running(self, worker: Worker) -> None:
        """The blocked worker runs again: it counts in nr_running once more."""
        if not worker.sleeping:
            return
        worker.sleeping = False
        if not (worker.flags & WORKER_NOT_RUNNING):
            self.nr_running += 1

    # --- queueing ---------------------------------------------------------------------
    def find_worker_executing_work(self, work: WorkItem) -> Worker | None:
        return self.busy_hash.get(id(work))

    def insert_work(self, work: WorkItem, pwq: PoolWorkqueue) -> bool:
        """``__queue_work()`` once the pwq is chosen: PENDING, max_active, kick.

        Returns False (and changes nothing) when the item is already pending.
        """
        if work.pending:
            return False
        work.pending = True
        work.pwq = pwq
        if pwq.nr_active < pwq.max_active and not pwq.inactive_works:
            pwq.nr_active += 1
            self.worklist.append((work, pwq))
            self.kick_pool()
        else:
            pwq.inactive_works.append(work)
        return True

    def pwq_activate_first_inactive(self, pwq: PoolWorkqueue) -> None:
        """An active item retired: let the oldest inactive one in (FIFO)."""
        if pwq.inactive_works and pwq.nr_active < pwq.max_active:
            work = pwq.inactive_works.popleft()
            pwq.nr_active += 1
            self.worklist.append((work, pwq))

    def pwq_dec_nr_active(self, pwq: PoolWorkqueue) -> None:
        pwq.nr_active -= 1
        self.pwq_activate_first_inactive(pwq)

    def try_to_grab_pending(self, work: WorkItem) -> bool:
        """Take a pending item off its queue (for ``cancel_work``); True if it was pending."""
        if not work.pending:
            return False
        pwq = work.pwq
        assert pwq is not None
        for i, item in enumerate(pwq.inactive_works):
            if item is work:
                del pwq.inactive_works[i]
                work.pending = False
                return True
        # Active items wait on the worklist or, punted, on the scheduled list of a
        # worker, or of a rescuer while it works for this pool.
        workers = (*self.workers, *self.rescuers)
        for queue in (self.worklist, *(worker.scheduled for worker in workers)):
            for i, (item, item_pwq) in enumerate(queue):
                if item is work:
                    del queue[i]
                    work.pending = False
                    self.pwq_dec_nr_active(item_pwq)
                    return True
        return False

    # --- execution ----------------------------------------------------------------------
    def process_one_work_begin(self, worker: Worker, work: WorkItem, pwq: PoolWorkqueue) -> None:
        """Everything ``process_one_work()`` does before calling the function."""
        self.busy_hash[id(work)] = worker
        worker.current_work = work
        worker.current_pwq = pwq
        work.last_pool = self
        work.pending = False  # cleared before the function runs: requeue = one more run
        pwq.stats.started += 1
        if pwq.wq.flags & WQ_CPU_INTENSIVE and not self.legacy:
            # Not counted in stats.cpu_intensive: the kernel counts only workers that
            # wq_worker_tick() catches over the threshold (see PwqStats).
            self.worker_set_flags(worker, WORKER_CPU_INTENSIVE)
        # Chain execution for NOT_RUNNING workers (unbound, CPU-intensive).
        if not self.legacy and self.need_more_worker():
            self.kick_pool()

    def process_one_work_end(
        self, worker: Worker, work: WorkItem, pwq: PoolWorkqueue, cpu_time: float
    ) -> None:
        """Everything after the function returns: stats, CPU_INTENSIVE off, retire."""
        self.worker_clr_flags(worker, WORKER_CPU_INTENSIVE)
        self.busy_hash.pop(id(work), None)
        worker.current_work = None
        worker.current_pwq = None
        pwq.stats.completed += 1
        pwq.stats.cpu_time += cpu_time
        self.pwq_dec_nr_active(pwq)

    def assign_work(self, worker: Worker, work: WorkItem, pwq: PoolWorkqueue) -> bool:
        """Give ``work`` to ``worker`` unless another worker is executing it already.

        Non-reentrancy: such an item is punted to that worker's ``scheduled`` list,
        so one work item never runs on two workers at once.
        """
        owner = self.find_worker_executing_work(work)
        if owner is not None and owner is not worker:
            owner.scheduled.append((work, pwq))
            return False
        worker.scheduled.append((work, pwq))
        return True

    def worker_thread(self, worker: Worker) -> Generator[Action, Any, None]:
        """``worker_thread()``: the kworker main loop with its sleeps as yields.

        The generator starts as if just woken up.  The driver performs each
        yielded action (holding no lock while it runs a function, waits idle or
        creates a thread) and resumes the generator with the lock held again.
        """
        while True:
            if worker.flags & WORKER_DIE:
                yield (DIE,)
                return
            self.worker_leave_idle(worker)
            while self.need_more_worker() and not self.destroyed:
                if not self.may_start_working():
                    created = yield from self.manage_workers()
                    if created:
                        continue  # recheck: someone may have taken the work meanwhile
                    if not self.need_more_worker():
                        break
                # Leave PREP: from here this worker counts in nr_running.
                self.worker_clr_flags(worker, WORKER_PREP)
                while True:
                    work, pwq = self.worklist.popleft()
                    if self.assign_work(worker, work, pwq):
                        yield from self.process_scheduled_works(worker)
                    if not self.keep_working():
                        break
                self.worker_set_flags(worker, WORKER_PREP)
                break
            if worker.flags & WORKER_DIE:
                yield (DIE,)
                return
            self.worker_enter_idle(worker)
            yield (IDLE,)

    def process_scheduled_works(self, worker: Worker) -> Generator[Action, Any, None]:
        while worker.scheduled:
            work, pwq = worker.scheduled.popleft()
            self.process_one_work_begin(worker, work, pwq)
            cpu_time = yield (RUN, work, pwq)
            self.process_one_work_end(worker, work, pwq, float(cpu_time or 0.0))

    def manage_workers(self) -> Generator[Action, Any, bool]:
        """``manage_workers()`` + ``maybe_create_worker()``: at most one manager per pool
        creates a worker.

        Returns True if this worker acted as manager (the caller rechecks).  As
        in the kernel, the manager arms the pool's mayday timer for
        ``MAYDAY_INITIAL_TIMEOUT`` before it tries, whether creation then fails or
        is merely slow, and deletes it when done; a failed creation is retried
        after ``CREATE_COOLDOWN``.  The timer (``pool_mayday_timeout``) is what
        sends maydays, never the failure itself.
        """
        if self.manager_active:
            return False
        self.manager_active = True
        try:
            while self.need_to_create_worker() and not self.destroyed:  # restart:
                # "if we don't make progress in MAYDAY_INITIAL_TIMEOUT, call for help"
                self.driver.mod_mayday_timer(self, MAYDAY_INITIAL_TIMEOUT)
                try:
                    while True:
                        new_worker = yield (CREATE,)
                        if new_worker is not None or not self.need_to_create_worker():
                            break
                        yield (COOLDOWN, CREATE_COOLDOWN)
                        if not self.need_to_create_worker() or self.destroyed:
                            break
                finally:
                    self.driver.del_mayday_timer(self)
        finally:
            self.manager_active = False
        return True

    def pool_mayday_timeout(self) -> list[PoolWorkqueue]:
        """``pool_mayday_timeout()``: the mayday timer fired while a manager was creating.

        If the pool still needs a worker, every MEM_RECLAIM pwq with work on the
        worklist gets a mayday (once each), then the timer is re-armed for
        ``MAYDAY_INTERVAL``.  Returns the pwqs sent a mayday.
        """
        sent = self.send_maydays() if self.need_to_create_worker() else []
        self.driver.mod_mayday_timer(self, MAYDAY_INTERVAL)
        return sent

    def send_maydays(self) -> list[PoolWorkqueue]:
        """``send_mayday()`` for each work on the worklist: queue each MEM_RECLAIM pwq
        with waiting work on its rescuer (once: not while it is still queued)."""
        sent: list[PoolWorkqueue] = []
        for _work, pwq in self.worklist:
            if pwq.wq.flags & WQ_MEM_RECLAIM and not pwq.mayday_queued:
                pwq.mayday_queued = True
                pwq.stats.mayday += 1
                sent.append(pwq)
                if self.on_mayday is not None:
                    self.on_mayday(pwq)
        return sent

    def rescue(self, rescuer: Worker, pwq: PoolWorkqueue) -> Generator[Action, Any, None]:
        """``rescuer_thread()`` for one mayday'd pwq: run its items on the rescuer.

        The rescuer never leaves PREP, so it never counts in nr_running.
        """
        pwq.mayday_queued = False
        mine = [(w, p) for (w, p) in self.worklist if p is pwq]
        for item in mine:
            self.worklist.remove(item)
        # worker_attach_to_pool(): while attached, cancel_work finds what was punted
        # onto the rescuer's scheduled list (try_to_grab_pending).
        self.rescuers.append(rescuer)
        try:
            for work, item_pwq in mine:
                owner = self.find_worker_executing_work(work)
                if owner is not None:
                    owner.scheduled.append((work, item_pwq))
                    continue
                item_pwq.stats.rescued += 1
                # Through rescuer.scheduled, as the kernel does: while the rescuer
                # runs an item it is in busy_hash, so a kworker that pops a requeue
                # of that item punts it onto rescuer.scheduled (assign_work); only
                # process_scheduled_works runs such punted items.
                rescuer.scheduled.append((work, item_pwq))
                yield from self.process_scheduled_works(rescuer)
        finally:
            self.rescuers.remove(rescuer)
        # As rescuer_thread() does: items activated meanwhile (as these retired) or
        # chained would otherwise wait for the next failed creation; if the pool still
        # cannot get a worker, put the pwq back on the mayday list.
        if mine and pwq.nr_active and self.need_to_create_worker() and not pwq.mayday_queued:
            pwq.mayday_queued = True
            if self.on_mayday is not None:
                self.on_mayday(pwq)
        self.kick_pool()
