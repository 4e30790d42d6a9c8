"""khttpd_py.workqueue: CMWQ on threads, checked against the kernel's invariants.

Each test builds its own ``WorkqueueSystem`` (usually one CPU, a 0.2 s idle
timeout) and shuts it down, so no thread outlives a test.  Work items are
sequenced with ``threading.Event``: an item that waits *inside* ``blocking()``
is sleeping to the pool; one that waits outside it is burning CPU as far as
concurrency management can tell.  The numbers in brackets refer to the
invariants at the end of /work/shared/reference/cmwq-notes.md.
"""

from __future__ import annotations

import logging
import threading
import time
import warnings
from collections.abc import Callable, Iterator

import pytest

import khttpd_py.workqueue as wqmod
from khttpd_py.workqueue import (
    WQ_CPU_INTENSIVE,
    WQ_DFL_ACTIVE,
    WQ_FREEZABLE,
    WQ_HIGHPRI,
    WQ_MAX_ACTIVE,
    WQ_MEM_RECLAIM,
    WQ_UNBOUND,
    Workqueue,
    WorkqueueSystem,
    WorkStruct,
    blocking,
    cancel_work_sync,
    destroy_workqueue,
    flush_work,
    flush_workqueue,
    init_work,
    legacy_thread_count,
    policy,
    queue_work,
    queue_work_on,
    wq_sleep,
    wq_wait,
)

TIMEOUT = 5.0


def wait_for(predicate: Callable[[], bool], timeout: float = TIMEOUT) -> bool:
    """Poll internal state that has no event of its own (pool sizes after reaping)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return predicate()
        time.sleep(0.002)
    return True


@pytest.fixture
def make_system() -> Iterator[Callable[..., WorkqueueSystem]]:
    systems: list[WorkqueueSystem] = []
    gates: list[threading.Event] = []

    def make(nr_cpus: int = 1, idle_timeout: float = 0.2, **kw: object) -> WorkqueueSystem:
        kw.setdefault("create_cooldown", 0.01)
        system = WorkqueueSystem(nr_cpus=nr_cpus, idle_timeout=idle_timeout, **kw)  # type: ignore[arg-type]
        systems.append(system)
        return system

    make.gates = gates  # type: ignore[attr-defined]
    yield make
    for gate in gates:
        gate.set()
    for system in systems:
        system.fail_worker_creation = False
        assert system.shutdown(timeout=TIMEOUT), "threads left after shutdown"


@pytest.fixture
def system(make_system: Callable[..., WorkqueueSystem]) -> WorkqueueSystem:
    """One CPU, 0.2 s idle timeout."""
    return make_system()


class Item(WorkStruct):
    """A work item scripted by events: ``cpu`` waits outside ``blocking()``
    (CPU-bound to the pool), ``io`` waits inside it (asleep to the pool)."""

    def __init__(self, name: object, log: list[object] | None = None, *,
                 cpu: bool = False, io: bool = False) -> None:
        super().__init__(Item.run)
        self.name = name
        self.log = log if log is not None else []
        self.started = threading.Event()
        self.done = threading.Event()
        self.cpu_gate = threading.Event()
        self.io_gate = threading.Event()
        if not cpu:
            self.cpu_gate.set()
        if not io:
            self.io_gate.set()
        self.runs = 0
        self.threads: list[str] = []

    def run(self) -> None:
        self.runs += 1
        self.threads.append(threading.current_thread().name)
        self.log.append(self.name)
        self.started.set()
        assert self.cpu_gate.wait(TIMEOUT)
        with blocking():
            assert self.io_gate.wait(TIMEOUT)
        self.done.set()

    def release(self) -> None:
        self.cpu_gate.set()
        self.io_gate.set()


def started(item: Item) -> bool:
    return item.started.wait(TIMEOUT)


def gated(make_system: Callable[..., WorkqueueSystem], *items: Item) -> None:
    """Make sure the fixture opens these items' gates even if the test fails."""
    for item in items:
        make_system.gates += [item.cpu_gate, item.io_gate]  # type: ignore[attr-defined]


# --- API surface --------------------------------------------------------------------
def test_kernel_names_importable_and_flags_are_policys() -> None:
    for name in ("alloc_workqueue", "alloc_ordered_workqueue", "WorkStruct", "init_work",
                 "queue_work", "queue_work_on", "flush_work", "flush_workqueue",
                 "cancel_work_sync", "destroy_workqueue", "create_workqueue",
                 "create_singlethread_workqueue", "blocking", "wq_sleep", "wq_recv",
                 "wq_accept", "wq_sendall", "WorkqueueSystem", "start_stats_server"):
        assert hasattr(wqmod, name), name
    assert wqmod.WQ_UNBOUND is policy.WQ_UNBOUND
    assert wqmod.WQ_HIGHPRI is policy.WQ_HIGHPRI
    assert wqmod.WQ_CPU_INTENSIVE is policy.WQ_CPU_INTENSIVE
    assert wqmod.WQ_MEM_RECLAIM is policy.WQ_MEM_RECLAIM
    assert wqmod.WQ_FREEZABLE is policy.WQ_FREEZABLE


def test_work_function_gets_the_embedding_object(system: WorkqueueSystem) -> None:
    class KHttp(WorkStruct):
        def __init__(self, sock: str) -> None:
            super().__init__(lambda work: seen.append(work.sock))
            self.sock = sock

    seen: list[str] = []
    wq = system.alloc_workqueue("khttpd", WQ_UNBOUND, 0)
    assert wq is not None
    work = KHttp("sock-1")
    assert queue_work(wq, work)
    assert flush_work(work)
    assert seen == ["sock-1"]
    init_work(work, lambda w: seen.append("again"))
    assert queue_work(wq, work) and flush_work(work)
    assert seen == ["sock-1", "again"]


def test_default_system_api() -> None:
    wqmod.init_default_system(nr_cpus=1, idle_timeout=0.2)
    try:
        wq = wqmod.alloc_workqueue("dflt%d", 0, 0, 7)
        assert wq is not None and wq.name == "dflt7"
        ran = threading.Event()
        assert queue_work(wq, WorkStruct(lambda w: ran.set()))
        assert ran.wait(TIMEOUT)
        sched_ran = threading.Event()
        sched = WorkStruct(lambda w: sched_ran.set())
        assert wqmod.schedule_work(sched)
        assert sched_ran.wait(TIMEOUT)
        assert wqmod.system_wq().name == "events"
        assert wqmod.default_system().nr_cpus == 1
        destroy_workqueue(wq)
    finally:
        assert wqmod.shutdown_default_system(TIMEOUT)


# --- concurrency management [4, 5, 6, 7, 8] ------------------------------------------
def test_bound_items_start_one_after_another_as_each_blocks(make_system) -> None:
    system = make_system(nr_cpus=1)
    wq = system.alloc_workqueue("bound", 0, 0)
    items = [Item(i, cpu=True, io=True) for i in range(3)]
    gated(make_system, *items)
    for item in items:
        assert queue_work(wq, item)
    # item 0 burns CPU: nr_running == 1, so 1 and 2 stay on the worklist
    assert started(items[0])
    assert items[1].pending and items[2].pending and not items[1].started.is_set()
    items[0].cpu_gate.set()  # item 0 sleeps -> wq_worker_sleeping wakes an idle worker
    assert started(items[1])
    assert items[2].pending and not items[2].started.is_set()
    items[1].cpu_gate.set()
    assert started(items[2])
    # all three are now asleep at once, on three different kworkers of CPU 0
    assert len({item.threads[0] for item in items}) == 3
    assert all(item.threads[0].startswith("kworker/0:") for item in items)
    for item in items:
        item.release()
    flush_workqueue(wq)
    stats = wq.stats()
    assert (stats.started, stats.completed) == (3, 3)
    assert stats.cm_wakeup == 2  # item 2 blocking found nothing left to wake for


def test_unbound_items_all_start_at_once(make_system) -> None:
    system = make_system(nr_cpus=1)
    wq = system.alloc_workqueue("unbound", WQ_UNBOUND, 0)
    items = [Item(i, cpu=True) for i in range(3)]  # CPU-bound, no blocking() at all
    gated(make_system, *items)
    for item in items:
        assert queue_work(wq, item)
    assert all(started(item) for item in items)  # no concurrency management: all run
    assert all(item.threads[0].startswith("kworker/u") for item in items)
    for item in items:
        item.release()
    flush_workqueue(wq)
    assert wq.stats().cm_wakeup == 0


def test_cpu_bound_item_keeps_next_bound_item_waiting(system: WorkqueueSystem) -> None:
    wq = system.alloc_workqueue("bound", 0, 0)
    hog, nxt = Item("hog", cpu=True), Item("next")
    for item in (hog, nxt):
        assert queue_work(wq, item)
    assert started(hog)
    time.sleep(0.05)  # give a wrongly woken worker every chance to take it
    assert nxt.pending and not nxt.started.is_set()
    pool = wq.cpu_pwqs[0].pool
    with system.lock:
        assert pool.nr_running == 1 and pool.nr_idle >= 1  # an idle worker exists, unused
    hog.release()  # hog now sleeps in blocking(): that wakes a worker for nxt (CMW)
    assert nxt.done.wait(TIMEOUT)


def test_cmw_counter_moves_only_for_bound_workqueues(make_system) -> None:
    system = make_system(nr_cpus=1)
    for flags, expect_cmw in ((0, True), (WQ_UNBOUND, False)):
        wq = system.alloc_workqueue(f"wq{flags}", flags, 0)
        items = [Item(i, io=True) for i in range(3)]
        gated(make_system, *items)
        for item in items:
            queue_work(wq, item)
        assert all(started(item) for item in items)
        for item in items:
            item.release()
        flush_workqueue(wq)
        stats = wq.stats()
        assert (stats.cm_wakeup > 0) is expect_cmw
        assert stats.repatriated == 0


def test_highpri_pool_is_separate_from_normal(system: WorkqueueSystem) -> None:
    normal = system.alloc_workqueue("normal", 0, 0)
    high = system.alloc_workqueue("high", WQ_HIGHPRI, 0)
    hog, behind, urgent = Item("hog", cpu=True), Item("behind"), Item("urgent")
    assert queue_work(normal, hog) and started(hog)
    assert queue_work(normal, behind)
    assert queue_work(high, urgent)
    assert urgent.done.wait(TIMEOUT)  # the normal pool's nr_running does not hold it
    assert behind.pending  # ... while the normal pool still does hold this one
    assert urgent.threads[0].endswith("H") and urgent.threads[0].startswith("kworker/0:")
    assert normal.cpu_pwqs[0].pool is not high.cpu_pwqs[0].pool
    hog.release()
    assert behind.done.wait(TIMEOUT)


def test_cpu_intensive_items_do_not_hold_back_others(system: WorkqueueSystem) -> None:
    intensive = system.alloc_workqueue("crunch", WQ_CPU_INTENSIVE, 0)
    normal = system.alloc_workqueue("normal", 0, 0)
    crunch, quick = Item("crunch", cpu=True), Item("quick")
    assert queue_work(intensive, crunch) and started(crunch)
    assert queue_work(normal, quick)
    assert quick.done.wait(TIMEOUT)  # crunch does not count in nr_running
    assert crunch.runs == 1 and not crunch.done.is_set()
    crunch.release()
    flush_workqueue(intensive)
    # CPUitsv counts wq_cpu_intensive_thresh_us violations of concurrency-managed
    # workers (6.5+, not modelled), not items of a WQ_CPU_INTENSIVE workqueue: the
    # kernel's wq_worker_tick() returns early for those NOT_RUNNING workers.
    assert intensive.stats().started == 1
    assert intensive.stats().cpu_intensive == 0
    assert normal.stats().cpu_intensive == 0


def test_cpu_intensive_start_is_still_regulated(system: WorkqueueSystem) -> None:
    intensive = system.alloc_workqueue("crunch", WQ_CPU_INTENSIVE, 0)
    normal = system.alloc_workqueue("normal", 0, 0)
    hog, crunch = Item("hog", cpu=True), Item("crunch")
    assert queue_work(normal, hog) and started(hog)
    assert queue_work(intensive, crunch)
    time.sleep(0.05)
    assert crunch.pending  # a runnable normal item delays its start [6]
    hog.release()
    assert crunch.done.wait(TIMEOUT)


# --- max_active [3, 10] -------------------------------------------------------------
def test_max_active_caps_active_items_and_activates_fifo(system: WorkqueueSystem) -> None:
    wq = system.alloc_workqueue("capped", 0, 2)
    log: list[object] = []
    items = [Item(i, log, io=True) for i in range(5)]  # all sleep: CM would let all run
    for item in items:
        assert queue_work(wq, item)
    assert started(items[0]) and started(items[1])
    pwq = wq.cpu_pwqs[0]
    with system.lock:
        assert pwq.nr_active == 2
        assert list(pwq.inactive_works) == items[2:]
    assert not any(item.started.is_set() for item in items[2:])
    for i in range(3):
        items[i].release()
        assert started(items[i + 2])
        with system.lock:
            assert pwq.nr_active <= 2
        assert not any(item.started.is_set() for item in items[i + 3:])
    for item in items:
        item.release()
    flush_workqueue(wq)
    assert log == [0, 1, 2, 3, 4]


def test_max_active_default_and_clamping(system: WorkqueueSystem) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        wq = system.alloc_workqueue("dfl", 0, 0)
    assert wq is not None and wq.max_active == WQ_DFL_ACTIVE == 256
    assert all(pwq.max_active == 256 for pwq in wq.pwqs)
    with pytest.warns(RuntimeWarning, match="clamping between 1 and 512"):
        low = system.alloc_workqueue("low", 0, -3)
    assert low is not None and low.max_active == 1
    with pytest.warns(RuntimeWarning, match="out of range"):
        high = system.alloc_workqueue("high", WQ_UNBOUND, 100_000)
    assert high is not None and high.max_active == WQ_MAX_ACTIVE


def test_bound_max_active_is_per_cpu_unbound_is_system_wide(make_system) -> None:
    system = make_system(nr_cpus=2)
    bound = system.alloc_workqueue("bound", 0, 1)
    unbound = system.alloc_workqueue("unbound", WQ_UNBOUND, 1)
    a, b = Item("a", io=True), Item("b", io=True)
    assert queue_work_on(0, bound, a) and queue_work_on(1, bound, b)
    assert started(a) and started(b)  # one active per CPU
    c, d = Item("c", io=True), Item("d", io=True)
    assert queue_work_on(0, unbound, c) and queue_work_on(1, unbound, d)
    assert started(c)
    assert d.pending and not d.started.is_set()  # one active in the whole system
    for item in (a, b, c, d):
        item.release()
    flush_workqueue(unbound)
    flush_workqueue(bound)
    assert d.done.is_set()


# --- PENDING and non-reentrancy [1, 2] -----------------------------------------------
def test_queue_work_on_pending_item_returns_false(system: WorkqueueSystem) -> None:
    wq = system.alloc_workqueue("bound", 0, 0)
    hog, item = Item("hog", cpu=True), Item("item")
    assert queue_work(wq, hog) and started(hog)
    assert queue_work(wq, item) is True
    assert queue_work(wq, item) is False
    assert queue_work_on(0, wq, item) is False
    hog.release()
    flush_workqueue(wq)
    assert item.runs == 1
    assert wq.stats().started == 2


def test_requeue_while_running_gives_one_more_run_on_the_same_worker(make_system) -> None:
    system = make_system(nr_cpus=2)
    wq = system.alloc_workqueue("bound", 0, 0)
    item = Item("x", io=True)
    gated(make_system, item)
    assert queue_work_on(0, wq, item) and started(item)
    assert not item.pending
    assert queue_work_on(1, wq, item) is True  # PENDING was cleared before it ran
    assert queue_work_on(1, wq, item) is False
    assert queue_work(wq, item) is False
    item.started.clear()
    item.release()
    assert flush_work(item)
    assert item.runs == 2
    # the second run was punted to the worker still running the first, on CPU 0
    assert item.threads[0] == item.threads[1] and item.threads[0].startswith("kworker/0:")
    assert wq.cpu_pwqs[0].stats.started == 2 and wq.cpu_pwqs[1].stats.started == 0


@pytest.mark.parametrize("flags", [0, WQ_UNBOUND])
def test_a_work_item_never_runs_on_two_workers_at_once(make_system, flags: int) -> None:
    system = make_system(nr_cpus=2)
    wq = system.alloc_workqueue("hammer", flags, 0)
    guard = threading.Lock()
    state = {"running": 0, "max": 0, "runs": 0}

    def fn(work: WorkStruct) -> None:
        with guard:
            state["running"] += 1
            state["max"] = max(state["max"], state["running"])
            state["runs"] += 1
        wq_sleep(0.0005)
        with guard:
            state["running"] -= 1

    work = WorkStruct(fn)
    queued = [0] * 4

    def hammer(slot: int) -> None:
        for i in range(150):
            if queue_work_on(i % 2, wq, work):
                queued[slot] += 1
            if i % 10 == 0:
                time.sleep(0.0005)

    threads = [threading.Thread(target=hammer, args=(k,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    flush_workqueue(wq)
    assert state["max"] == 1
    assert state["runs"] == sum(queued) >= 1  # every successful queueing gives one run


# --- flush and cancel [15, 16] -------------------------------------------------------
def test_flush_work(system: WorkqueueSystem) -> None:
    wq = system.alloc_workqueue("bound", 0, 0)
    never = WorkStruct(lambda w: None)
    assert flush_work(never) is False  # never queued
    item = Item("x", io=True)
    assert queue_work(wq, item) and started(item)
    result: list[bool] = []
    flusher = threading.Thread(target=lambda: result.append(flush_work(item)))
    flusher.start()
    flusher.join(0.05)
    assert flusher.is_alive()  # still waiting for the running instance
    item.release()
    flusher.join(TIMEOUT)
    assert result == [True] and item.done.is_set()
    assert flush_work(item) is False  # idle now


def test_flush_workqueue_waits_for_earlier_items_only(system: WorkqueueSystem) -> None:
    wq = system.alloc_workqueue("unbound", WQ_UNBOUND, 0)
    items = [Item(i, io=True) for i in range(3)]
    for item in items:
        queue_work(wq, item)
    assert all(started(item) for item in items)
    done = threading.Event()
    flusher = threading.Thread(target=lambda: (flush_workqueue(wq), done.set()))
    flusher.start()
    items[0].release()
    items[1].release()
    assert not done.wait(0.05)
    items[2].release()
    assert done.wait(TIMEOUT)
    flusher.join()
    assert all(item.done.is_set() for item in items)


def test_flush_workqueue_is_not_livelocked_by_requeueing(system: WorkqueueSystem) -> None:
    wq = system.alloc_workqueue("bound", 0, 0)
    keep_going = threading.Event()
    keep_going.set()
    runs = [0]

    def again(work: WorkStruct) -> None:
        runs[0] += 1
        wq_sleep(0.001)
        if keep_going.is_set():
            queue_work(wq, work)  # chained: always a newer flush colour

    work = WorkStruct(again)
    queue_work(wq, work)
    flush_workqueue(wq)  # returns although the item keeps requeueing itself
    assert runs[0] >= 1
    keep_going.clear()
    cancel_work_sync(work)
    assert not work.pending


def test_cancel_work_sync(system: WorkqueueSystem) -> None:
    wq = system.alloc_workqueue("bound", 0, 0)
    assert cancel_work_sync(WorkStruct(lambda w: None)) is False  # idle
    running, waiting = Item("running", cpu=True), Item("waiting")
    assert queue_work(wq, running) and started(running)
    assert queue_work(wq, waiting)
    assert cancel_work_sync(waiting) is True  # was pending: taken off the worklist
    assert not waiting.pending
    result: list[bool] = []
    canceller = threading.Thread(target=lambda: result.append(cancel_work_sync(running)))
    canceller.start()
    canceller.join(0.05)
    assert canceller.is_alive()  # waits for the running instance
    running.release()
    canceller.join(TIMEOUT)
    assert result == [False]
    flush_workqueue(wq)  # the cancelled item's flush colour was retired too
    assert waiting.runs == 0 and running.runs == 1


def test_cancel_work_sync_stops_an_item_that_requeues_itself(system: WorkqueueSystem) -> None:
    """The kernel-doc: "can be used even if the work re-queues itself".  The item
    requeues itself unconditionally (a poller); cancel_work_sync must still return,
    and afterwards the item is neither pending nor running and runs no more."""
    wq = system.alloc_workqueue("bound", 0, 0)
    runs = [0]
    requeued: list[bool] = []

    def poller(work: WorkStruct) -> None:
        runs[0] += 1
        wq_sleep(0.01)
        requeued.append(queue_work(wq, work))

    work = WorkStruct(poller)
    queue_work(wq, work)
    deadline = time.monotonic() + TIMEOUT
    while runs[0] < 3 and time.monotonic() < deadline:
        time.sleep(0.005)
    result: list[bool] = []
    canceller = threading.Thread(target=lambda: result.append(cancel_work_sync(work)))
    canceller.start()
    canceller.join(TIMEOUT)
    assert not canceller.is_alive(), f"cancel_work_sync did not return ({runs[0]} runs)"
    assert not work.pending and requeued[-1] is False  # the requeue during cancel refused
    after = runs[0]
    time.sleep(0.05)
    assert runs[0] == after
    assert queue_work(wq, work)  # once cancelled, it may be queued again
    while runs[0] == after and time.monotonic() < deadline:
        time.sleep(0.005)
    assert runs[0] > after
    cancel_work_sync(work)  # and cancelled again
    assert not work.pending


def test_unbound_max_active_clamps_to_wq_unbound_max_active(
    make_system: Callable[..., WorkqueueSystem],
) -> None:
    """6.1: an unbound wq's limit is max(512, 4 x possible CPUs), a per-CPU wq's 512."""
    big = make_system(nr_cpus=200)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        unbound = big.alloc_workqueue("u", WQ_UNBOUND, 10_000)
        bound = big.alloc_workqueue("b", 0, 10_000)
    assert unbound is not None and bound is not None
    assert unbound.max_active == 800 and bound.max_active == WQ_MAX_ACTIVE


def test_cancel_removes_an_inactive_item(system: WorkqueueSystem) -> None:
    wq = system.alloc_workqueue("one", 0, 1)
    first, second, third = Item(1, io=True), Item(2), Item(3)
    for item in (first, second, third):
        queue_work(wq, item)
    assert started(first)
    assert cancel_work_sync(second) is True
    first.release()
    assert third.done.wait(TIMEOUT)
    flush_workqueue(wq)
    assert second.runs == 0


def test_flush_and_cancel_of_itself_raise(system: WorkqueueSystem) -> None:
    wq = system.alloc_workqueue("bound", 0, 0)
    errors: list[str] = []

    def selfish(work: WorkStruct) -> None:
        for op, arg in ((flush_work, work), (cancel_work_sync, work),
                        (flush_workqueue, wq), (destroy_workqueue, wq)):
            try:
                op(arg)
            except RuntimeError as exc:
                errors.append(str(exc))

    work = WorkStruct(selfish)
    queue_work(wq, work)
    flush_workqueue(wq)
    assert len(errors) == 4 and all("deadlock" in e for e in errors)
    assert not wq.destroyed


# --- ordered [9] ----------------------------------------------------------------------
def test_ordered_workqueue_runs_one_at_a_time_in_order(make_system) -> None:
    system = make_system(nr_cpus=2)
    wq = system.alloc_ordered_workqueue("ordered")
    assert wq is not None and wq.max_active == 1 and wq.unbound
    log: list[int] = []
    guard = threading.Lock()
    state = {"running": 0, "max": 0}

    def make(i: int) -> WorkStruct:
        def fn(work: WorkStruct) -> None:
            with guard:
                state["running"] += 1
                state["max"] = max(state["max"], state["running"])
            wq_sleep(0.002)
            log.append(i)
            with guard:
                state["running"] -= 1

        return WorkStruct(fn)

    for i in range(8):
        assert queue_work_on(i % 2, wq, make(i))
    flush_workqueue(wq)
    assert log == list(range(8)) and state["max"] == 1


# --- workers: manager, reaping, rescuer [11, 12, 13, 14] ------------------------------
def test_worker_reuse_no_thread_per_item(system: WorkqueueSystem) -> None:
    wq = system.alloc_workqueue("unbound", WQ_UNBOUND, 0)
    pool = wq.dfl_pwq.pool
    for _ in range(50):
        work = WorkStruct(lambda w: None)
        queue_work(wq, work)
        flush_work(work)
    assert pool.workers_created <= 3  # the initial worker and its spare, reused


def test_idle_reaping_keeps_the_spare_idle_workers(make_system) -> None:
    system = make_system(nr_cpus=1, idle_timeout=0.2)
    wq = system.alloc_workqueue("burst", WQ_UNBOUND, 0)
    items = [Item(i, io=True) for i in range(6)]
    gated(make_system, *items)
    for item in items:
        queue_work(wq, item)
    assert all(started(item) for item in items)
    pool = wq.dfl_pwq.pool
    with system.lock:
        assert pool.nr_workers >= 7  # six busy, one spare: the manager kept one idle
    for item in items:
        item.release()
    flush_workqueue(wq)
    assert wait_for(lambda: pool.nr_workers == 2)
    with system.lock:
        assert pool.nr_idle == 2  # too_many_workers() wants more than two idle
    assert wait_for(lambda: system.thread_count() == 2)  # culled threads exit soon after
    time.sleep(0.3)  # a further timeout must not reap below the spares
    assert pool.nr_workers == 2
    item = Item("after")
    queue_work(wq, item)
    assert item.done.wait(TIMEOUT)


def test_rescuer_runs_mem_reclaim_items_when_creation_fails(system: WorkqueueSystem) -> None:
    wq = system.alloc_workqueue("reclaim", WQ_MEM_RECLAIM, 0)
    plain = system.alloc_workqueue("plain", 0, 0)
    assert wq.rescuer is not None and plain.rescuer is None
    assert system.thread_count() == 2  # the pool's first worker and the rescuer
    system.fail_worker_creation = True
    a, b = Item("a"), Item("b")
    starved = Item("starved")
    queue_work(wq, a)
    queue_work(wq, b)
    queue_work(plain, starved)
    assert a.done.wait(TIMEOUT) and b.done.wait(TIMEOUT)
    assert a.threads == ["kworker/R-recla"] and b.threads == ["kworker/R-recla"]
    stats = wq.stats()
    assert stats.mayday >= 1 and stats.rescued == 2
    assert not starved.started.is_set()  # no rescuer for a plain workqueue
    system.fail_worker_creation = False
    assert starved.done.wait(TIMEOUT)
    assert starved.threads[0].startswith("kworker/0:")
    assert plain.stats().mayday == 0


def test_rescuer_is_called_by_the_mayday_timer_not_at_once(system: WorkqueueSystem) -> None:
    """maybe_create_worker() calls for help only after MAYDAY_INITIAL_TIMEOUT (10 ms) without
    progress: a failed creation alone does not wake the rescuer."""
    wq = system.alloc_workqueue("reclaim", WQ_MEM_RECLAIM, 0)
    system.fail_worker_creation = True
    item = Item("x")
    queued = time.monotonic()
    queue_work(wq, item)
    assert started(item)
    waited = time.monotonic() - queued
    assert item.threads == ["kworker/R-recla"]
    assert waited >= 0.010, f"rescued after {waited * 1000:.1f} ms, not MAYDAY_INITIAL_TIMEOUT"
    assert wq.stats().mayday == 1
    system.fail_worker_creation = False


def _requeue_while_on_the_rescuer(system: WorkqueueSystem) -> tuple[Workqueue, Item]:
    """An item running on the rescuer (creation failed), then queued again.

    The requeue's kworker finds the item running on the rescuer and punts it
    onto the rescuer's scheduled list (non-reentrancy).
    """
    wq = system.alloc_workqueue("reclaim", WQ_MEM_RECLAIM, 0)
    system.fail_worker_creation = True
    item = Item("x", cpu=True)
    queue_work(wq, item)
    assert started(item) and item.threads == ["kworker/R-recla"]
    system.fail_worker_creation = False
    assert queue_work(wq, item)
    return wq, item


def test_item_requeued_while_on_the_rescuer_runs_again(system: WorkqueueSystem) -> None:
    _wq, item = _requeue_while_on_the_rescuer(system)
    time.sleep(0.05)
    item.release()
    done = threading.Thread(target=flush_work, args=(item,), daemon=True)
    done.start()
    done.join(TIMEOUT)
    assert not done.is_alive(), "the requeued item was lost"
    assert item.runs == 2


def test_cancel_removes_a_requeue_punted_onto_the_rescuer(system: WorkqueueSystem) -> None:
    wq, item = _requeue_while_on_the_rescuer(system)
    assert wait_for(lambda: len(wq.rescuer.scheduled) == 1)
    result: list[bool] = []
    canceller = threading.Thread(target=lambda: result.append(cancel_work_sync(item)))
    canceller.start()
    time.sleep(0.05)
    item.release()
    canceller.join(TIMEOUT)
    assert not canceller.is_alive()
    assert result == [True], "the pending requeue was not found on the rescuer's list"
    time.sleep(0.1)
    assert item.runs == 1, "a cancelled requeue ran anyway"


def test_alloc_returns_none_when_no_thread_can_be_created(make_system) -> None:
    system = make_system()
    system.fail_worker_creation = True
    assert system.alloc_workqueue("doomed", 0, 0) is None
    assert system.alloc_workqueue("doomed", WQ_UNBOUND, 0) is None
    assert system.workqueues() == [] and system.thread_count() == 0
    system.fail_worker_creation = False
    assert system.alloc_workqueue("fine", 0, 0) is not None


def test_exception_in_work_is_logged_and_worker_survives(
    system: WorkqueueSystem, caplog: pytest.LogCaptureFixture
) -> None:
    wq = system.alloc_workqueue("bound", 0, 0)

    def boom(work: WorkStruct) -> None:
        raise ValueError("boom")

    def leave(work: WorkStruct) -> None:
        raise SystemExit("leave")

    with caplog.at_level(logging.ERROR, logger="khttpd_py.workqueue"):
        queue_work(wq, WorkStruct(boom))
        queue_work(wq, WorkStruct(leave))
        flush_workqueue(wq)
    assert "boom" in caplog.text and "leave" in caplog.text
    ok = Item("ok")
    queue_work(wq, ok)
    assert ok.done.wait(TIMEOUT)
    assert wq.stats().completed == 3


# --- destroy [17] ---------------------------------------------------------------------
def test_destroy_workqueue_drains_then_refuses(system: WorkqueueSystem) -> None:
    wq = system.alloc_workqueue("bound", 0, 1)
    ran: list[int] = []

    def make(i: int) -> WorkStruct:
        return WorkStruct(lambda w: (wq_sleep(0.001), ran.append(i)))

    for i in range(5):
        queue_work(wq, make(i))
    destroy_workqueue(wq)
    assert ran == [0, 1, 2, 3, 4]
    assert wq.destroyed and wq not in system.workqueues()
    with pytest.warns(RuntimeWarning, match="cannot queue"):
        assert queue_work(wq, WorkStruct(lambda w: None)) is False


def test_drain_accepts_chained_work_only(system: WorkqueueSystem) -> None:
    wq = system.alloc_workqueue("bound", 0, 0)
    gate = threading.Event()
    runs = [0]

    def chain(work: WorkStruct) -> None:
        runs[0] += 1
        if runs[0] == 1:
            wq_wait(gate, TIMEOUT)
        if runs[0] < 4:
            assert queue_work(wq, work)  # chained: allowed while draining

    work = WorkStruct(chain)
    queue_work(wq, work)
    destroyer = threading.Thread(target=destroy_workqueue, args=(wq,))
    destroyer.start()
    assert wait_for(lambda: wq.draining > 0)
    with pytest.warns(RuntimeWarning, match="cannot queue"):
        assert queue_work(wq, WorkStruct(lambda w: None)) is False
    gate.set()
    destroyer.join(TIMEOUT)
    assert not destroyer.is_alive() and runs[0] == 4


# --- pools and CPUs ---------------------------------------------------------------------
def test_unbound_pools_are_shared_by_attributes(make_system) -> None:
    system = make_system(nr_cpus=2)
    a = system.alloc_workqueue("a", WQ_UNBOUND, 0)
    b = system.alloc_workqueue("b", WQ_UNBOUND, 0)
    h = system.alloc_workqueue("h", WQ_UNBOUND | WQ_HIGHPRI, 0)
    m = system.alloc_workqueue("m", WQ_UNBOUND, 0, cpumask=[1])
    p = system.alloc_workqueue("p", 0, 0)
    q = system.alloc_workqueue("q", 0, 0)
    assert a.dfl_pwq.pool is b.dfl_pwq.pool
    assert h.dfl_pwq.pool is not a.dfl_pwq.pool and m.dfl_pwq.pool is not a.dfl_pwq.pool
    assert [pwq.pool for pwq in p.pwqs] == [pwq.pool for pwq in q.pwqs]
    assert [pwq.pool.cpu for pwq in p.pwqs] == [0, 1]
    before = system.thread_count()
    destroy_workqueue(a)  # b still uses the pool
    assert system.thread_count() == before and not b.dfl_pwq.pool.destroyed
    destroy_workqueue(b)  # last user: the pool and its workers go
    assert b.dfl_pwq.pool.destroyed and system.thread_count() < before
    destroy_workqueue(p)  # per-CPU pools stay for q
    assert not q.pwqs[0].pool.destroyed
    assert "pool[00]" in system.dump() and "percpu" in system.dump()


def test_queue_work_from_a_worker_stays_on_its_cpu(make_system) -> None:
    system = make_system(nr_cpus=2)
    wq = system.alloc_workqueue("bound", 0, 0)
    child = Item("child")

    def parent(work: WorkStruct) -> None:
        queue_work(wq, child)

    for cpu in (1, 0):
        child.done.clear()
        child.threads.clear()
        queue_work_on(cpu, wq, WorkStruct(parent))
        assert child.done.wait(TIMEOUT)
        assert child.threads[0].startswith(f"kworker/{cpu}:")
    # an ordinary thread keeps the CPU it was first given
    first = [WorkStruct(lambda w: None) for _ in range(4)]
    for work in first:
        queue_work(wq, work)
    flush_workqueue(wq)
    started_per_cpu = [pwq.stats.started for pwq in wq.cpu_pwqs]
    assert sorted(started_per_cpu) == [2, 2 + 4]  # a parent and a child each, then all 4
    with pytest.raises(ValueError):
        queue_work_on(2, wq, WorkStruct(lambda w: None))


def test_blocking_is_a_noop_outside_workers_and_nests(system: WorkqueueSystem) -> None:
    with blocking():
        with blocking():
            pass
    assert not wqmod.in_worker()
    wq = system.alloc_workqueue("bound", 0, 0)
    pool = wq.cpu_pwqs[0].pool
    seen: list[int] = []

    def nested(work: WorkStruct) -> None:
        with blocking():
            with blocking():
                seen.append(pool.nr_running)
            seen.append(pool.nr_running)
        seen.append(pool.nr_running)

    queue_work(wq, WorkStruct(nested))
    flush_workqueue(wq)
    assert seen == [0, 0, 1]


def test_freezable_workqueue_starts_nothing_while_frozen(system: WorkqueueSystem) -> None:
    wq = system.alloc_workqueue("freezable", WQ_FREEZABLE, 0)
    other = system.alloc_workqueue("other", 0, 0)
    system.freeze_workqueues()
    frozen, free = Item("frozen"), Item("free")
    queue_work(wq, frozen)
    queue_work(other, free)
    assert free.done.wait(TIMEOUT)
    assert frozen.pending and not frozen.started.is_set() and not system.freeze_busy()
    system.thaw_workqueues()
    assert frozen.done.wait(TIMEOUT)


def test_cpu_time_is_counted(system: WorkqueueSystem) -> None:
    wq = system.alloc_workqueue("burn", 0, 0)

    def burn(work: WorkStruct) -> None:
        end = time.thread_time() + 0.02
        while time.thread_time() < end:
            pass

    queue_work(wq, WorkStruct(burn))
    flush_workqueue(wq)
    assert wq.stats().cpu_time >= 0.015


def _burn(seconds: float) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def test_cpu_time_goes_to_the_pwq_worked_for(make_system) -> None:
    """One worker alternating between two workqueues charges each its own CPU time,
    although it reads its CPU clock only when it changes pwq or a tick has passed."""
    system = make_system(nr_cpus=1)
    heavy = system.alloc_workqueue("heavy", 0, 0)
    light = system.alloc_workqueue("light", 0, 0)
    gate = threading.Event()
    items = []
    for _ in range(3):
        items.append((heavy, WorkStruct(lambda w: _burn(0.01))))
        items.append((light, WorkStruct(lambda w: None)))
    # hold the only CPU's pool busy so that all six wait on its worklist, in order
    queue_work(light, WorkStruct(lambda w: gate.wait(TIMEOUT)))
    for wq, work in items:
        queue_work(wq, work)
    gate.set()
    flush_workqueue(heavy)
    flush_workqueue(light)
    assert heavy.stats().cpu_time >= 0.025
    assert light.stats().cpu_time < 0.01


def test_cpu_time_of_a_long_busy_period_is_charged_before_it_ends(make_system) -> None:
    """Like the kernel's tick, a worker that never goes idle still charges its pwq."""
    system = make_system(nr_cpus=1)
    wq = system.alloc_workqueue("steady", 0, 0)
    stop = threading.Event()

    def chunk(work: WorkStruct) -> None:
        _burn(0.002)
        if not stop.is_set():
            queue_work(wq, work)  # requeue itself: the worker keeps working

    work = WorkStruct(chunk)
    queue_work(wq, work)
    deadline = time.monotonic() + TIMEOUT
    while wq.stats().cpu_time < 0.02 and time.monotonic() < deadline:
        time.sleep(0.005)
    charged_while_busy = wq.stats().cpu_time
    stop.set()
    flush_work(work)
    assert charged_while_busy >= 0.02


# --- legacy MT/ST ------------------------------------------------------------------------
def test_legacy_thread_arithmetic(make_system) -> None:
    system = make_system(nr_cpus=3)
    mts = [system.create_workqueue(f"mt{i}") for i in range(4)]
    assert system.thread_count() == 3 * 4 == legacy_thread_count(3, 4)
    st = system.create_singlethread_workqueue("st")
    assert system.thread_count() == legacy_thread_count(3, 4, 1) == 13
    names = {t.name for t in system.threads()}
    assert {"mt0/0", "mt0/1", "mt0/2", "st"} <= names
    destroy_workqueue(mts[0])
    assert system.thread_count() == 10
    destroy_workqueue(st)
    assert system.thread_count() == 9
    # the same workqueues under CMWQ share the per-CPU pools: a handful of threads
    cmwq = make_system(nr_cpus=3)
    for i in range(4):
        cmwq.alloc_workqueue(f"wq{i}", 0, 0)
    assert cmwq.thread_count() == 3


def test_legacy_mt_loses_concurrency_while_an_item_sleeps(make_system) -> None:
    system = make_system(nr_cpus=1)
    wq = system.create_workqueue("events")
    first, second = Item(1, io=True), Item(2)
    queue_work(wq, first)
    queue_work(wq, second)
    assert started(first)
    time.sleep(0.05)
    assert second.pending  # asleep in blocking(), yet the one thread is taken
    first.release()
    assert second.done.wait(TIMEOUT)
    assert first.threads == second.threads == ["events/0"]
    assert wq.stats().cm_wakeup == 0


def test_legacy_st_runs_everything_on_one_thread(make_system) -> None:
    system = make_system(nr_cpus=2)
    wq = system.create_singlethread_workqueue("kblockd")
    items = [Item(i) for i in range(4)]
    for i, item in enumerate(items):
        queue_work_on(i % 2, wq, item)
    flush_workqueue(wq)
    assert {item.threads[0] for item in items} == {"kblockd"}


# --- shutdown ------------------------------------------------------------------------------
def test_no_threads_left_after_shutdown() -> None:
    system = WorkqueueSystem(nr_cpus=2, idle_timeout=0.2)
    system.alloc_workqueue("b", 0, 0)
    system.alloc_workqueue("h", WQ_HIGHPRI, 0)
    system.alloc_workqueue("u", WQ_UNBOUND, 0)
    system.alloc_workqueue("r", WQ_MEM_RECLAIM, 0)
    system.create_workqueue("mt")
    system.create_singlethread_workqueue("st")
    busy = system.alloc_workqueue("busy", WQ_UNBOUND, 0)
    for _ in range(5):
        queue_work(busy, WorkStruct(lambda w: wq_sleep(0.01)))
    threads = system.threads()
    assert len(threads) >= 9  # 4 per-CPU, 1 unbound, 1 rescuer, 2 MT, 1 ST (+ busy ones)
    assert system.shutdown(TIMEOUT)
    assert not any(t.is_alive() for t in threads)
    assert system.thread_count() == 0 and system.workqueues() == []
    assert busy.stats().completed == 5  # shutdown drained the pending items
    alive = {t.name for t in threading.enumerate()}
    assert not any(name.startswith("kworker") for name in alive)
    with pytest.raises(RuntimeError):
        system.alloc_workqueue("late", 0, 0)


def test_shutdown_timeout_bounds_a_stuck_item() -> None:
    system = WorkqueueSystem(nr_cpus=1, idle_timeout=0.2)
    wq = system.alloc_workqueue("stuck", WQ_UNBOUND, 0)
    stuck = Item("stuck", io=True)
    queue_work(wq, stuck)
    assert started(stuck)
    begin = time.monotonic()
    assert system.shutdown(timeout=0.2) is False  # the item holds its worker
    assert time.monotonic() - begin < 2.0
    stuck.release()
    assert wait_for(lambda: system.thread_count() == 0)
    assert system.shutdown(timeout=TIMEOUT)
