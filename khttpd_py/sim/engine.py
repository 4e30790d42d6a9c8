"""Simulated time driving the shared concurrency-management rules of ``policy.py``.

The simulator owns only what a clock owns: *when* things happen.  *What* the
workqueue decides -- which worker wakes, whether a worker keeps going, when an
inactive item is activated, when a new kworker is created -- is decided by
``khttpd_py.workqueue.policy``, the same code the threaded workqueue runs.
Each simulated kworker is ``pool.worker_thread(worker)``, a generator; this
module performs the actions it yields (RUN, CREATE, IDLE, COOLDOWN, DIE).

Scheduling model (chosen so the kernel documentation's scenarios A-D come out
exactly, including the order of simultaneous events):

* Discrete events ordered by (time, class, sequence).  Classes, in order:
  0 a CPU burn phase completes, 1 a sleep phase ends (wake-up), 2 an item is
  queued, 3 a worker continues its loop (woken by ``kick_pool``, its item
  finished, just created, or its creation cool-down ended), 4 the idle-worker
  reaping timer, 5 a pool's mayday timer.  Within a class, first scheduled
  runs first.
* Each CPU burns at most one item at a time, without preemption; waiting burns
  form a FIFO run queue, highpri (nice -20) ones ahead of normal ones.  That
  is strict priority, a simplification: CFS (6.1) shares the CPU by weight,
  88761 for nice -20 against 1024 for nice 0 (about 87:1), so a normal
  kworker still gets about 1% of a CPU that highpri ones keep busy, and a
  waking highpri kworker may preempt a running normal one.  Bound
  items burn on their pool's CPU; unbound items (and legacy ST threads) burn on
  their queueing CPU if idle, else the lowest-numbered idle CPU, else wait in a
  shared FIFO that every CPU serves.
* Worker loop steps, worker creation and queueing take no time.  A work item's
  "start" is reported when its worker begins it; "sleep" when a sleep phase
  begins (``wq_worker_sleeping``); "wake" when it ends; "finish" when its last
  phase ends.  A finish right after a sleep needs no CPU (the doc's "wakes up
  and finishes").
* A woken worker counts in nr_running again only when it runs: since Linux 5.2
  (commit 6d25be5782e4) ``wq_worker_running`` is called as the task returns
  from ``schedule()``, not at wake-up.  So a wake followed by a burn calls it
  when that burn gets the CPU, possibly after waiting in the run queue; a
  wake followed by a finish or another sleep, which needs no CPU here, calls
  it at the wake.
* Burns are not preempted.  Between items, though, ``process_one_work()``
  ends in ``cond_resched()``, and after a burn of milliseconds with another
  task runnable the scheduler has long set need_resched: so a kworker whose
  item finishes yields its CPU to any burn waiting for it, and its next
  item's burn queues behind (FIFO within a priority).  Only when nothing
  waits does it keep the CPU through its loop.  (The loop's decision itself
  is taken at the finish, before the yield; in the kernel it comes after
  ``cond_resched()`` returns, so a "start" may be reported earlier than the
  kernel would take the item.)
* Boot: every cmwq pool starts with one idle kworker, as the kernel's are;
  a legacy workqueue starts with its dedicated thread(s), a WQ_MEM_RECLAIM one
  with its rescuer.  Unbound workqueues live on one NUMA node: their max_active
  is system-wide, in one pwq (Linux 6.1 keeps one pwq per node; see
  ``workqueue.work.Workqueue``).
* ``max_threads`` makes worker creation fail, as when PIDs run out: managers
  cool down ``CREATE_COOLDOWN`` (1 s) between attempts.  The mayday timer a
  manager arms before creating fires ``MAYDAY_INITIAL_TIMEOUT`` (10 ms) later
  and then every ``MAYDAY_INTERVAL`` (100 ms) until the manager is done; each
  time the pool still needs a worker it sends maydays to rescuers.  If every
  cooling manager has retried in vain with nothing else left to happen, the run
  stops with a warning instead of retrying forever.
"""

from __future__ import annotations

import gc
import heapq
from collections import deque
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

from khttpd_py.sim.result import Event, Segment, SimResult
from khttpd_py.sim.spec import BURN, US_PER_MS, Scenario, SpecError, WorkSpec, WqSpec, ms_value
from khttpd_py.workqueue import policy

# Event classes, in the order simultaneous events are handled.
BURN_DONE = 0
WAKE = 1
QUEUE = 2
CONTINUE = 3
REAP = 4
MAYDAY_TIMER = 5

# States of a simulated kworker task.
IDLE = 0      # parked at policy's IDLE yield: wake_worker() makes it continue
READY = 1     # a CONTINUE event is scheduled
BUSY = 2      # running a work item (burning, waiting for a CPU or sleeping)
COOLING = 3   # manager waiting out CREATE_COOLDOWN after a failed creation
DEAD = 4

COOLED = object()
"""Value of a CONTINUE event that ends a manager's cool-down (sent as None)."""

HIGHPRI_PRIO = 0
"""Run-queue rank of highpri-pool burns: always ahead of normal ones (strict priority,
where CFS would weigh nice -20 against nice 0 about 87:1; see the module docstring)."""
NORMAL_PRIO = 1

DEFAULT_IDLE_TIMEOUT_MS = policy.IDLE_WORKER_TIMEOUT * 1000
"""The kernel keeps idle kworkers 300 s before reaping; the pools here count in ms."""


class SimWork(policy.WorkItem):
    """A work item in flight: its spec plus where it is in its phases."""

    def __init__(self, spec: WorkSpec) -> None:
        super().__init__()
        self.spec = spec
        self.name = spec.name
        self.phases = spec.phases
        self.index = 0
        self.task: Task | None = None
        self.worker_name = ""
        self.bound_cpu: int | None = None
        self.prio = NORMAL_PRIO
        self.last_cpu: int | None = None
        self.queued_at = 0
        self.phase_began = 0
        self.burned = 0


class Task:
    """The simulator's side of one kworker (``policy.Worker.task`` points here).

    A pool worker's generator is its pool's ``worker_thread``.  A rescuer
    (``rescues`` set) has none until a mayday arrives; then it runs the rescued
    pool's ``rescue()`` generator, one mayday after another.
    """

    __slots__ = ("worker", "pool", "gen", "name", "state", "info", "rescues", "cpu")

    def __init__(
        self,
        worker: policy.Worker,
        info: PoolInfo | None,
        name: str,
        rescues: SimWq | None = None,
    ) -> None:
        self.worker = worker
        self.pool = worker.pool
        self.gen: Generator[policy.Action, Any, None] | None = (
            None if rescues is not None else self.pool.worker_thread(worker)
        )
        self.name = name
        self.state = READY if rescues is None else IDLE
        self.info = info
        self.rescues = rescues
        self.cpu: Cpu | None = None  # the CPU it keeps while running its loop (see Cpu)


class Cpu:
    """One CPU: what it burns now, its run queue of waiting burns, its busy time.

    ``holder`` is the kworker that just finished an item here and is running
    its loop on this CPU: the CPU is not free until it sleeps, idles or exits.
    """

    __slots__ = ("id", "current", "holder", "runq", "busy", "in_idle_heap")

    def __init__(self, cpu_id: int) -> None:
        self.id = cpu_id
        self.current: SimWork | None = None
        self.holder: Task | None = None
        self.runq: list[tuple[int, int, SimWork]] = []
        self.busy = 0
        self.in_idle_heap = True


@dataclass
class PoolInfo:
    """Simulator bookkeeping for one policy pool."""

    pool: policy.WorkerPool
    prio: int
    legacy_name: str | None = None  # thread name of a legacy workqueue's worker
    reap_armed: bool = False


@dataclass
class SimWq:
    """A workqueue during the run (policy's ``WqInfo``) and its pwqs per CPU."""

    name: str
    flags: int
    max_active: int
    pwqs: dict[int | None, policy.PoolWorkqueue] = field(default_factory=dict)
    legacy_pools: dict[int | None, policy.WorkerPool] = field(default_factory=dict)
    rescuer: Task | None = None
    maydays: deque[policy.PoolWorkqueue] = field(default_factory=deque)


class Simulator:
    """One run of a :class:`Scenario`.

    Implements ``policy.PoolDriver``: ``now()``, ``wake_worker()`` and the mayday timer.
    """

    def __init__(
        self,
        scenario: Scenario,
        *,
        max_threads: int | None = None,
        idle_timeout_ms: float = DEFAULT_IDLE_TIMEOUT_MS,
    ) -> None:
        self.scenario = scenario.validate()
        self.model = scenario.model
        self.max_threads = max_threads
        self.idle_timeout_ms = idle_timeout_ms
        self.warnings: list[str] = []
        self.clock = 0  # microseconds
        self.seq = 0
        self.heap: list[tuple[int, int, int, Any, Any]] = []
        # Heap events other than cool-down ends and mayday timers: what can still make
        # progress on its own.
        self.live = 0
        self.cooling: set[Task] = set()  # managers waiting out CREATE_COOLDOWN
        self.stuck: set[Task] = set()  # ... of which retried in vain with nothing else going on
        self.stalled_at: int | None = None
        self.cpus = [Cpu(i) for i in range(scenario.cpus)]
        self.idle_cpus = list(range(scenario.cpus))  # a heap, with stale entries
        self.shared_runq: list[tuple[int, int, SimWork]] = []
        self.pools: list[PoolInfo] = []
        self.cpu_pools: list[tuple[policy.WorkerPool, policy.WorkerPool]] = []
        self.unbound_pools: dict[bool, policy.WorkerPool] = {}
        # Raw records in microseconds; converted to ms once, when the result is built.
        self.events: list[tuple[int, str, str, str, int | None]] = []
        self.segments: list[tuple[str, str, str, int, int, int | None]] = []
        self.threads_alive = 0
        self.threads_at_boot = 0
        self.threads_created = 0
        self.peak_threads = 0
        self.failed_creates = 0
        self.reaped = 0
        self.in_flight = 0
        self.peak_in_flight = 0
        self.finished = 0
        self.makespan = 0
        self.works = [SimWork(spec) for spec in scenario.works]
        self.wqs: dict[str, SimWq] = {}
        self._boot()
        if max_threads is not None and self.threads_at_boot > max_threads:
            raise SpecError(
                f"{self.model} needs {self.threads_at_boot} worker threads at boot, "
                f"more than --max-threads {max_threads}"
            )

    # --- policy.PoolDriver ----------------------------------------------------------------
    def now(self) -> float:
        """Simulated time in milliseconds (what ``policy`` stores in ``last_active``)."""
        return self.clock / US_PER_MS

    def wake_worker(self, worker: policy.Worker) -> None:
        """``wake_up_process``: an idle kworker continues its loop; others are unaffected."""
        task: Task = worker.task
        if task.state == IDLE:
            task.state = READY
            self._push(self.clock, CONTINUE, task, None)

    def mod_mayday_timer(self, pool: policy.WorkerPool, seconds: float) -> None:
        """Arm ``pool``'s mayday timer; the event's sequence number is the handle, so an
        event whose handle is no longer ``pool.mayday_timer`` was deleted or replaced."""
        self._push(self.clock + round(seconds * 1000 * US_PER_MS), MAYDAY_TIMER, pool, None)
        pool.mayday_timer = self.seq

    def del_mayday_timer(self, pool: policy.WorkerPool) -> None:
        """Disarm ``pool``'s mayday timer (its pending event is then ignored)."""
        pool.mayday_timer = None

    # --- set-up -------------------------------------------------------------------------------
    def _push(self, t: int, cls: int, obj: Any, value: Any) -> None:
        self.seq += 1
        if value is not COOLED and cls != MAYDAY_TIMER:
            self.live += 1
        heapq.heappush(self.heap, (t, cls, self.seq, obj, value))

    def _new_pool(
        self, cpu: int | None, highpri: bool, legacy: bool = False, legacy_name: str | None = None
    ) -> policy.WorkerPool:
        pool = policy.WorkerPool(
            driver=self,
            cpu=cpu,
            highpri=highpri,
            id=len(self.pools),
            legacy=legacy,
            idle_timeout=self.idle_timeout_ms,
        )
        if not legacy:
            pool.on_mayday = self._on_mayday
        info = PoolInfo(pool, HIGHPRI_PRIO if highpri else NORMAL_PRIO, legacy_name)
        self.pools.append(info)
        self._boot_worker(info)
        return pool

    def _boot_worker(self, info: PoolInfo) -> None:
        """The worker a pool has from the start; it runs its loop once and parks idle."""
        task = self._spawn(info, boot=True)
        self._step(task, None)

    def _boot(self) -> None:
        """Create the pools and workqueues of the chosen model, as at boot/``alloc_workqueue``."""
        ncpu = len(self.cpus)
        if self.model == "cmwq":
            # Pool ids follow the kernel: 2 per CPU first (normal, highpri), unbound after.
            for cpu in range(ncpu):
                normal = self._new_pool(cpu, False)
                highpri = self._new_pool(cpu, True)
                self.cpu_pools.append((normal, highpri))
        for spec in self.scenario.wqs:
            self.wqs[spec.name] = self._alloc_workqueue(spec)

    def _alloc_workqueue(self, spec: WqSpec) -> SimWq:
        max_active, warning = policy.clamp_max_active(
            spec.max_active, spec.name, flags=spec.flags, nr_cpus=len(self.cpus)
        )
        if warning:
            self.warnings.append(warning)
        if spec.ordered and self.model == "cmwq":
            if spec.max_active not in (0, 1):
                self.warnings.append(
                    f"workqueue {spec.name}: an ordered workqueue runs one item at a time; "
                    f"max_active {spec.max_active} ignored"
                )
            max_active = 1
        wq = SimWq(spec.name, spec.flags, max_active)
        highpri = bool(spec.flags & policy.WQ_HIGHPRI)
        if self.model == "cmwq":
            if spec.flags & policy.WQ_UNBOUND and highpri not in self.unbound_pools:
                self.unbound_pools[highpri] = self._new_pool(None, highpri)
            if spec.flags & policy.WQ_MEM_RECLAIM:
                self._new_rescuer(wq)
        elif self.model == "legacy-mt":
            for cpu in range(len(self.cpus)):
                wq.legacy_pools[cpu] = self._new_pool(cpu, False, True, f"{spec.name}/{cpu}")
        else:
            wq.legacy_pools[None] = self._new_pool(None, False, True, spec.name)
        return wq

    def _spawn(self, info: PoolInfo, boot: bool = False) -> Task:
        """``create_worker()``: attach a new kworker to the pool and make it runnable.

        Boot workers are counted apart from those managers create during the run.
        """
        worker = info.pool.attach_worker()
        name = info.legacy_name or worker.name
        task = Task(worker, info, name)
        worker.task = task
        self.threads_alive += 1
        if boot:
            self.threads_at_boot += 1
        else:
            self.threads_created += 1
        self.peak_threads = max(self.peak_threads, self.threads_alive)
        return task

    # --- rescuers (WQ_MEM_RECLAIM) ----------------------------------------------------------
    def _new_rescuer(self, wq: SimWq) -> None:
        """``alloc_workqueue`` with WQ_MEM_RECLAIM starts the wq's rescuer thread."""
        worker = policy.Worker(self.cpu_pools[0][0], 0)  # re-attached to each pool it rescues
        worker.rescue_wq = wq
        task = Task(worker, None, worker.name, rescues=wq)
        worker.task = task
        wq.rescuer = task
        self.threads_alive += 1
        self.threads_at_boot += 1
        self.peak_threads = max(self.peak_threads, self.threads_alive)

    def _on_mayday(self, pwq: policy.PoolWorkqueue) -> None:
        """``send_mayday``: queue the pwq on its wq's rescuer and wake the rescuer."""
        wq = pwq.wq
        assert isinstance(wq, SimWq)
        if wq.rescuer is None:
            return
        wq.maydays.append(pwq)
        if wq.rescuer.state == IDLE:
            wq.rescuer.state = READY
            self._push(self.clock, CONTINUE, wq.rescuer, None)

    def _step_rescuer(self, task: Task, value: Any) -> None:
        """``rescuer_thread``: run each mayday'd pwq's items through the pool's ``rescue()``."""
        wq = task.rescues
        assert wq is not None
        while True:
            if task.gen is not None:
                try:
                    action = task.gen.send(value)
                except StopIteration:
                    task.gen = None
                else:
                    if action[0] != policy.RUN:
                        raise RuntimeError(f"rescue() yielded {action!r}")
                    task.state = BUSY
                    self._begin(task, action[1])
                    return
            value = None
            if not wq.maydays:
                task.state = IDLE
                self._release_cpu(task)
                return
            pwq = wq.maydays.popleft()
            task.worker.pool = task.pool = pwq.pool  # the rescuer attaches to that pool
            task.gen = pwq.pool.rescue(task.worker, pwq)

    # --- routing (__queue_work) ---------------------------------------------------------------
    def _route(self, wq: SimWq, work: SimWork) -> tuple[policy.WorkerPool, policy.PoolWorkqueue]:
        """Pick the pool and pwq for an item queued from CPU ``work.spec.cpu``."""
        cpu: int | None = work.spec.cpu
        if self.model == "cmwq":
            highpri = bool(wq.flags & policy.WQ_HIGHPRI)
            if wq.flags & policy.WQ_UNBOUND:
                pool, cpu = self.unbound_pools[highpri], None
            else:
                assert cpu is not None
                pool = self.cpu_pools[cpu][1 if highpri else 0]
        elif self.model == "legacy-mt":
            pool = wq.legacy_pools[cpu]
        else:
            pool, cpu = wq.legacy_pools[None], None
        pwq = wq.pwqs.get(cpu)
        if pwq is None:
            pwq = wq.pwqs[cpu] = policy.PoolWorkqueue(wq, pool, wq.max_active)
        return pool, pwq

    # --- the event loop --------------------------------------------------------------------
    def run(self) -> SimResult:
        """Simulate until every item finished; return the timeline and counters.

        The cyclic garbage collector is paused meanwhile: a run allocates
        millions of small acyclic objects, and repeated full collections over
        them made large runs several times slower (nothing here needs it).
        """
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            return self._run()
        finally:
            if was_enabled:
                gc.enable()

    def _run(self) -> SimResult:
        for work in self.works:
            self._push(work.spec.at, QUEUE, work, None)
        handlers: dict[int, Callable[[Any, Any], None]] = {
            BURN_DONE: self._on_burn_done,
            WAKE: self._on_wake,
            QUEUE: self._on_queue,
            CONTINUE: self._on_continue,
            REAP: self._on_reap,
            MAYDAY_TIMER: self._on_mayday_timer,
        }
        heap = self.heap
        total = len(self.works)
        pop = heapq.heappop
        cooling, stuck = self.cooling, self.stuck
        while heap:
            t, cls, seq, obj, value = pop(heap)
            cooled = value is COOLED
            if cls == MAYDAY_TIMER:
                # Not "live": a timer re-arms itself for as long as a manager cools down.
                # What it sends (a rescuer's wake-up) is live and ends a stall watch.
                if obj.mayday_timer != seq or self.finished == total:
                    continue  # deleted or replaced; or every item is done
            elif cooled:
                if self.finished == total:
                    continue  # every item is done: the manager's retry changes nothing
                cooling.discard(obj)
                value = None
            else:
                self.live -= 1
                if stuck:
                    stuck.clear()  # something else happened: retries may fare differently
            if cls == REAP and self.finished == total:
                continue  # the run is over; idle workers outliving it are not reaped
            self.clock = t
            handlers[cls](obj, value)
            if cooled and self.live == 0:
                # Nothing but cool-downs left.  Once every cooling manager has retried
                # and failed with nothing else happening in between, no item can finish
                # and no worker can die, so every further retry fails the same way:
                # stop instead of looping forever.
                if obj in cooling:
                    stuck.add(obj)
                if cooling and cooling <= stuck:
                    self.stalled_at = t
                    break
        if self.finished < total:
            if self.stalled_at is None:
                self.stalled_at = self.clock
            self._report_stall()
        return self._result()

    def _report_stall(self) -> None:
        waiting = [w.name for w in self.works if w.task is None]
        shown = ", ".join(waiting[:8]) + (" ..." if len(waiting) > 8 else "")
        self.warnings.append(
            f"stalled at {ms_value(self.clock)} ms: a pool needs a new worker but all "
            f"{self.threads_alive} allowed threads (--max-threads) are idle elsewhere or "
            f"stuck managing; never started: {shown} (the kernel's way out is the rescuer "
            "of a WQ_MEM_RECLAIM workqueue: try the mem_reclaim flag)"
        )

    def _on_queue(self, work: SimWork, _value: Any) -> None:
        wq = self.wqs[work.spec.wq]
        pool, pwq = self._route(wq, work)
        info = self.pools[pool.id]
        work.prio = info.prio
        work.bound_cpu = pool.cpu  # None for unbound pools and legacy ST threads
        work.queued_at = self.clock
        pool.insert_work(work, pwq)

    def _on_continue(self, task: Task, value: Any) -> None:
        if task.rescues is not None:
            self._step_rescuer(task, value)
        else:
            self._step(task, value)

    def _step(self, task: Task, value: Any) -> None:
        """Resume a kworker's loop and carry out what it yields until it has to wait."""
        gen = task.gen
        assert gen is not None
        while True:
            try:
                action = gen.send(value)
            except StopIteration:
                task.state = DEAD
                self._release_cpu(task)
                return
            kind = action[0]
            if kind == policy.RUN:
                task.state = BUSY
                self._begin(task, action[1])
                return
            info = task.info
            assert info is not None
            if kind == policy.CREATE:
                value = self._create(info)
                continue
            # Every other action puts the kworker to sleep: its CPU goes to the next burn.
            self._release_cpu(task)
            if kind == policy.IDLE:
                task.state = IDLE
                self._arm_reap(info)
                return
            if kind == policy.COOLDOWN:
                task.state = COOLING
                self.cooling.add(task)
                self._push(
                    self.clock + round(action[1] * 1000 * US_PER_MS), CONTINUE, task, COOLED
                )
                return
            if kind == policy.DIE:
                task.state = DEAD
                self.threads_alive -= 1
                return
            raise RuntimeError(f"policy yielded an unknown action {action!r}")

    def _can_create(self) -> bool:
        return self.max_threads is None or self.threads_alive < self.max_threads

    def _create(self, info: PoolInfo) -> policy.Worker | None:
        """The manager asks for a kworker; fails only past ``max_threads`` (PIDs run out)."""
        if not self._can_create():
            self.failed_creates += 1
            return None
        task = self._spawn(info)
        self._push(self.clock, CONTINUE, task, None)
        return task.worker

    # --- a work item's phases --------------------------------------------------------------
    def _emit(self, work: SimWork, event: str) -> None:
        task = work.task
        assert task is not None
        cpu = work.bound_cpu if work.bound_cpu is not None else work.last_cpu
        self.events.append((self.clock, work.name, event, task.name, cpu))

    def _begin(self, task: Task, work: SimWork) -> None:
        """``process_one_work`` called the function: report the start, run phase 0."""
        work.task = task
        work.worker_name = task.name
        self.in_flight += 1
        if self.in_flight > self.peak_in_flight:
            self.peak_in_flight = self.in_flight
        if self.clock > work.queued_at:
            self.segments.append((work.name, "", "queued", work.queued_at, self.clock, None))
        self._emit(work, "start")
        self._advance(work)

    def _advance(self, work: SimWork) -> None:
        """Enter the item's current phase (or finish it)."""
        task = work.task
        assert task is not None
        work.phase_began = self.clock
        if work.index == len(work.phases):
            self._emit(work, "finish")
            self.finished += 1
            self.in_flight -= 1
            self.makespan = self.clock
            self._push(self.clock, CONTINUE, task, work.burned / US_PER_MS)
            return
        kind, duration = work.phases[work.index]
        if kind == BURN:
            self._request_cpu(work)
        else:
            self._emit(work, "sleep")
            task.pool.wq_worker_sleeping(task.worker)
            self._release_cpu(task)
            self._push(self.clock + duration, WAKE, work, None)

    def _on_wake(self, work: SimWork, _value: Any) -> None:
        """A sleep phase ends: the worker is runnable.  It counts in nr_running again
        (``wq_worker_running``) once it runs: at its next burn's start (``_burn``), or
        now if what follows needs no CPU here (a finish or another sleep)."""
        task = work.task
        assert task is not None
        self.segments.append(
            (work.name, work.worker_name, "sleep", work.phase_began, self.clock, None)
        )
        work.index += 1
        if work.index == len(work.phases) or work.phases[work.index][0] != BURN:
            task.pool.wq_worker_running(task.worker)
        self._emit(work, "wake")
        self._advance(work)

    # --- CPUs ------------------------------------------------------------------------------------
    def _request_cpu(self, work: SimWork) -> None:
        task = work.task
        assert task is not None
        held = task.cpu
        if held is not None:
            if ((work.bound_cpu is None or work.bound_cpu == held.id)
                    and not self._higher_prio_waits(held, work.prio)):
                # Its kworker is still on this CPU (it just finished an item there): no
                # preemption, so it goes on burning, ahead of the run queue.
                task.cpu = held.holder = None
                self._burn(held, work)
                return
            # A rescuer moving to another CPU's pool, or cond_resched() yielding.
            self._release_cpu(task)
        self.seq += 1
        entry = (work.prio, self.seq, work)
        if work.bound_cpu is not None:
            cpu = self.cpus[work.bound_cpu]
            if cpu.current is None and cpu.holder is None:
                self._burn(cpu, work)
            else:
                heapq.heappush(cpu.runq, entry)
            return
        idle = self._idle_cpu(work.last_cpu if work.last_cpu is not None else work.spec.cpu)
        if idle is None:
            heapq.heappush(self.shared_runq, entry)
        else:
            self._burn(idle, work)

    def _idle_cpu(self, preferred: int) -> Cpu | None:
        """The preferred CPU if idle, else the lowest-numbered idle one, else None."""
        if preferred < len(self.cpus):
            cpu = self.cpus[preferred]
            if cpu.current is None and cpu.holder is None:
                return cpu
        idle = self.idle_cpus
        while idle:
            cpu = self.cpus[heapq.heappop(idle)]
            cpu.in_idle_heap = False
            if cpu.current is None and cpu.holder is None:
                return cpu
        return None

    def _release_cpu(self, task: Task) -> None:
        """The kworker stops running (sleeps, idles, exits): its CPU takes the next burn."""
        cpu = task.cpu
        if cpu is None:
            return
        task.cpu = cpu.holder = None
        if cpu.current is None:
            self._dispatch(cpu)

    def _burn(self, cpu: Cpu, work: SimWork) -> None:
        task = work.task
        if task is not None and task.worker.sleeping:
            # Back from schedule() at last: the worker counts in nr_running again.
            task.pool.wq_worker_running(task.worker)
        cpu.current = work
        if self.clock > work.phase_began:
            self.segments.append(
                (work.name, work.worker_name, "wait", work.phase_began, self.clock, None)
            )
        work.phase_began = self.clock
        work.last_cpu = cpu.id
        self._push(self.clock + work.phases[work.index][1], BURN_DONE, cpu, None)

    def _on_burn_done(self, cpu: Cpu, _value: Any) -> None:
        work = cpu.current
        assert work is not None
        cpu.current = None
        burned = self.clock - work.phase_began
        cpu.busy += burned
        work.burned += burned
        self.segments.append(
            (work.name, work.worker_name, "burn", work.phase_began, self.clock, cpu.id)
        )
        work.index += 1
        self._advance(work)
        if (work.index == len(work.phases) and cpu.current is None
                and not self._burn_waits(cpu)):
            # Finished, nothing else wants the CPU: its kworker goes on with its loop here.
            task = work.task
            assert task is not None
            task.cpu, cpu.holder = cpu, task
        if cpu.current is None and cpu.holder is None:
            self._dispatch(cpu)

    def _burn_waits(self, cpu: Cpu) -> bool:
        """Some burn waits for ``cpu``: cond_resched() after a finished item yields to it."""
        return bool(cpu.runq or self.shared_runq)

    def _higher_prio_waits(self, cpu: Cpu, prio: int) -> bool:
        """A burn that outranks ``prio`` waits for ``cpu`` (cond_resched() would yield)."""
        own, shared = cpu.runq, self.shared_runq
        return bool(own and own[0][0] < prio) or bool(shared and shared[0][0] < prio)

    def _dispatch(self, cpu: Cpu) -> None:
        """A CPU fell idle: run the earliest waiting burn, its own queue or the shared one."""
        own, shared = cpu.runq, self.shared_runq
        if own and (not shared or own[0] < shared[0]):
            self._burn(cpu, heapq.heappop(own)[2])
        elif shared:
            self._burn(cpu, heapq.heappop(shared)[2])
        elif not cpu.in_idle_heap:
            cpu.in_idle_heap = True
            heapq.heappush(self.idle_cpus, cpu.id)

    def _on_mayday_timer(self, pool: policy.WorkerPool, _value: Any) -> None:
        """``pool_mayday_timeout()``: maydays if the pool still needs a worker; re-arm."""
        pool.mayday_timer = None
        pool.pool_mayday_timeout()

    # --- idle reaping ------------------------------------------------------------------------
    def _arm_reap(self, info: PoolInfo) -> None:
        if info.reap_armed or info.pool.legacy:
            return
        when = info.pool.next_reap_time()
        if when is not None:
            info.reap_armed = True
            self._push(max(self.clock, round(when * US_PER_MS)), REAP, info, None)

    def _on_reap(self, info: PoolInfo, _value: Any) -> None:
        info.reap_armed = False
        self.reaped += len(info.pool.reap_idle_workers())
        self._arm_reap(info)

    # --- results -------------------------------------------------------------------------------
    def _result(self) -> SimResult:
        # ms_value inlined: these lists can hold a million entries.
        events = [
            Event(t // US_PER_MS if t % US_PER_MS == 0 else t / US_PER_MS, w, e, k, c)
            for t, w, e, k, c in self.events
        ]
        segments = [
            Segment(w, k, kind, a // US_PER_MS if a % US_PER_MS == 0 else a / US_PER_MS,
                    b // US_PER_MS if b % US_PER_MS == 0 else b / US_PER_MS, c)
            for w, k, kind, a, b, c in self.segments
        ]
        per_wq: dict[str, dict[str, Any]] = {}
        cm_wakeups = maydays = rescued = 0
        for wq in self.wqs.values():
            total = policy.PwqStats()
            for pwq in wq.pwqs.values():
                total.add(pwq.stats)
            cm_wakeups += total.cm_wakeup
            maydays += total.mayday
            rescued += total.rescued
            per_wq[wq.name] = {
                "flags": policy.flag_names(wq.flags),
                "max_active": wq.max_active,
                "total": total.started,
                "infl": max(total.started - total.completed, 0),
                "cpu_time_ms": round(total.cpu_time, 3),
                "cpu_intensive": total.cpu_intensive,
                "cmw": total.cm_wakeup,
                "mayday": total.mayday,
                "rescued": total.rescued,
            }
        pools = [
            {
                "name": info.legacy_name or info.pool.name,
                "workers_created": info.pool.workers_created,
                "peak_workers": info.pool.peak_workers,
                "workers_end": info.pool.nr_workers,
            }
            for info in self.pools
        ]
        stats = {
            "model": self.model,
            "cpus": len(self.cpus),
            "items": len(self.works),
            "finished": self.finished,
            "makespan_ms": ms_value(self.makespan),
            "threads_at_boot": self.threads_at_boot,
            "threads_created": self.threads_created,
            "threads_end": self.threads_alive,
            "peak_threads": self.peak_threads,
            "peak_in_flight": self.peak_in_flight,
            "cm_wakeups": cm_wakeups,
            "cpu_busy_ms": [ms_value(cpu.busy) for cpu in self.cpus],
            "reaped": self.reaped,
            "failed_creates": self.failed_creates,
            "maydays": maydays,
            "rescued": rescued,
            "stalled_at_ms": None if self.stalled_at is None else ms_value(self.stalled_at),
            "per_wq": per_wq,
            "pools": pools,
        }
        return SimResult(self.scenario, events, segments, stats, list(self.warnings))
