"""The kworker thread: performs the actions that ``policy.WorkerPool.worker_thread`` yields.

``policy.py`` decides *what* a worker does; this module only knows *how* to do
it on a real thread:

========== ===============================================================
action     what the thread does (the system lock is held between actions)
========== ===============================================================
RUN        charge CPU time if due (see below), release the lock, call
           ``work.func(work)``, take the lock back, send 0.0
IDLE       wait on the worker's own gate (``Task``) until ``wake_worker``;
           while waiting, each idle timeout runs ``pool.reap_idle_workers()``
CREATE     start a new kworker thread (lock released meanwhile) and send
           the new ``Worker``, or None when the thread cannot be started
COOLDOWN   wait the cooldown after a failed creation (wakeable), firing the
           pool's mayday timer when it falls due meanwhile (see below)
DIE        leave the loop; the thread ends
========== ===============================================================

Why a gate per worker, with its flags kept under the *system* lock: a wakeup
is then a flag set and a gate opened under the lock the rules already hold,
and the sleeper checks the flag under that same lock before it blocks, so no
wakeup can slip between "I am idle" and "I sleep".  No polling and no sleeps
anywhere.

The rescuer (``WQ_MEM_RECLAIM``) is driven the same way by ``pool.rescue``.

The pool's mayday timer is a deadline in ``pool.mayday_timer`` (monotonic
seconds), armed and deleted by the manager (``policy.manage_workers``).  No
timer thread runs it: a mayday matters when threads cannot be created, which
is exactly when a timer thread could not start either.  The manager fires it
from its own cool-down wait instead, at ``MAYDAY_INITIAL_TIMEOUT`` and then
every ``MAYDAY_INTERVAL``.  Unlike the kernel's timer it cannot fire while
the manager is still inside ``Thread.start()``, so a creation that is merely
slow sends no mayday here.

CPU time (wq_monitor's ``CPUtime``) is charged the way the kernel does it,
not per item: ``wq_worker_tick()`` adds one tick to the ``current_pwq`` of the
kworker that the timer interrupt finds running.  Here a worker reads its own
thread CPU clock when it starts an item of another pwq, when it stops
working (idle, manage, exit), and when it starts an item a ``CPU_TICK`` or
more after its last reading; it charges the CPU used since the last reading
to the pwq it was working for.  Reading that clock is a system call (0.7 us here, against
60 ns for ``time.monotonic()``); timing every item with two such calls made
a bound workqueue's cost per empty item 12.4 us instead of 8.5 (CPU time,
medians of six alternating runs of 50 000 items on the 2-core machine).  As with
the kernel's ticks, a figure can lag (by a tick plus the item running now) and
includes the worker's own bookkeeping between items of the same pwq.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from khttpd_py.workqueue.policy import (
    COOLDOWN,
    CREATE,
    DIE,
    IDLE,
    RUN,
    WORKER_DIE,
    Action,
    PoolWorkqueue,
    Worker,
    WorkerPool,
)

if TYPE_CHECKING:
    from collections.abc import Generator

    from khttpd_py.workqueue.work import Workqueue, WorkStruct

log = logging.getLogger("khttpd_py.workqueue")

CPU_TICK = 0.004
"""Seconds (monotonic) after which a busy worker charges its CPU again: a tick at ``HZ=250``."""


class Task:
    """The driver's half of a kworker (``worker.task``): its thread and its wakeup.

    ``woken`` is the flag ``wake_up_process`` sets.  The sleeper clears it,
    then blocks on ``gate``, a lock used as a binary semaphore that the waker
    releases.  Both sides look at ``woken`` and ``waiting`` only under the
    system lock, so a wakeup is never lost and a stale release only causes a
    harmless extra turn of the sleeper's loop.  (A ``Condition`` would do the
    same but allocates a fresh lock for every wait; a kworker sleeps once per
    work item, so this is on the hot path.)
    """

    __slots__ = ("lock", "gate", "woken", "waiting", "thread", "stop",
                 "cpu_pwq", "cpu_mark", "cpu_due")

    def __init__(self, lock: threading.Lock) -> None:
        self.lock = lock
        self.gate = threading.Lock()
        self.gate.acquire()
        self.woken = False
        self.waiting = False
        self.thread: threading.Thread | None = None
        self.stop = False
        self.cpu_pwq: PoolWorkqueue | None = None  # the pwq being charged CPU time
        self.cpu_mark = 0.0  # thread CPU clock at the last charge
        self.cpu_due = 0.0  # monotonic time of the next charge while busy

    def charge_cpu(self, pwq: PoolWorkqueue | None) -> None:
        """Charge the CPU used since the last charge to ``cpu_pwq``; charge ``pwq`` next.

        Called on the task's own thread with the system lock held (the stats
        are read under it).  ``pwq`` None: the worker stops working for a pwq.
        """
        now = time.thread_time()
        if self.cpu_pwq is not None:
            self.cpu_pwq.stats.cpu_time += now - self.cpu_mark
        self.cpu_pwq = pwq
        self.cpu_mark = now
        self.cpu_due = time.monotonic() + CPU_TICK

    def leave_work(self) -> None:
        """The busy period ends (idle, manage, exit): the last charge, if working for a pwq."""
        if self.cpu_pwq is not None:
            self.charge_cpu(None)

    def wake(self) -> None:
        """``wake_up_process``; the system lock is held."""
        self.woken = True
        if self.waiting:
            self.waiting = False
            self.gate.release()

    def sleep(self, timeout: float | None = None) -> bool:
        """Sleep until :meth:`wake` or ``timeout``; the system lock is held on entry and
        on return (released meanwhile).  Returns ``woken``."""
        if self.woken:
            return True
        self.waiting = True
        self.lock.release()
        try:
            if timeout is None:
                self.gate.acquire()
            else:
                self.gate.acquire(timeout=timeout)
        finally:
            self.lock.acquire()
        self.waiting = False
        return self.woken


class _Current(threading.local):
    """Which worker (of which system) the calling thread is, for ``blocking()`` and
    for choosing the "local CPU" in ``queue_work``.  Unset in ordinary threads."""

    worker: Worker | None = None
    system: Any = None
    depth: int = 0


current = _Current()
"""Per-thread record of the running kworker; read by ``blocking`` and ``queue_work``."""


def thread_name(worker: Worker, legacy_name: str | None = None) -> str:
    """The thread's name: the kworker name, or the pre-2.6.36 name for legacy pools.

    Legacy MT threads were called ``<wq>/<cpu>`` and an ST thread ``<wq>``, which
    is how ``ps`` showed them before CMWQ; everything else is ``kworker/...``.
    """
    if legacy_name is not None:
        cpu = worker.pool.cpu
        return legacy_name if cpu is None else f"{legacy_name}/{cpu}"
    return worker.name


class WorkerDriver:
    """Mixin of ``WorkqueueSystem``: the ``PoolDriver`` for ``policy`` and the thread bodies.

    The attributes below are created by ``WorkqueueSystem.__init__``.
    """

    lock: threading.Lock
    idle_timeout: float
    create_cooldown: float | None
    fail_worker_creation: bool
    _threads: set[threading.Thread]
    _exiting: list[threading.Thread]
    _flush_cond: threading.Condition
    _flush_waiters: int
    _legacy_names: dict[int, str]

    # --- PoolDriver -------------------------------------------------------------------
    def wake_worker(self, worker: Worker) -> None:
        """``wake_up_process``: called by the rules with the lock held."""
        task: Task | None = worker.task
        if task is not None:
            task.wake()

    def now(self) -> float:
        """The clock the rules read (idle times): monotonic seconds."""
        return time.monotonic()

    def mod_mayday_timer(self, pool: WorkerPool, seconds: float) -> None:
        """Arm ``pool``'s mayday timer: a deadline the cooling manager watches."""
        pool.mayday_timer = time.monotonic() + seconds

    def del_mayday_timer(self, pool: WorkerPool) -> None:
        """Disarm ``pool``'s mayday timer."""
        pool.mayday_timer = None

    # --- worker creation ----------------------------------------------------------------
    def _spawn_worker(self, pool: WorkerPool) -> Worker | None:
        """``create_worker()``: start a kworker thread for ``pool``.  Lock held on entry
        and on return; released while the thread starts.

        The new thread first waits for its wakeup, which comes only after
        ``attach_worker`` below, so it never sees itself half-attached.
        Returns None when the thread cannot start (``RuntimeError`` from
        ``Thread.start`` or the ``fail_worker_creation`` switch for tests).
        """
        if pool.destroyed or self.fail_worker_creation:
            return None
        worker = Worker(pool, pool.next_worker_id)
        task = Task(self.lock)
        worker.task = task
        thread = threading.Thread(
            target=self._worker_main,
            args=(worker,),
            name=thread_name(worker, self._legacy_names.get(pool.id)),
            daemon=True,
        )
        task.thread = thread
        self.lock.release()
        try:
            thread.start()
            started = True
        except RuntimeError:  # "can't start new thread": out of threads or memory
            started = False
        finally:
            self.lock.acquire()
        if not started:
            return None
        self._threads.add(thread)
        if self._exiting:
            self._exiting = [t for t in self._exiting if t.is_alive()]
        if pool.destroyed:
            worker.flags |= WORKER_DIE
            self.wake_worker(worker)
            return None
        pool.attach_worker(worker)
        self.wake_worker(worker)
        return worker

    # --- the kworker thread -----------------------------------------------------------
    def _worker_main(self, worker: Worker) -> None:
        current.worker = worker
        current.system = self
        task: Task = worker.task
        with self.lock:
            try:
                while not task.sleep():  # wait for attach_worker + wake_up_process
                    pass
                if not worker.flags & WORKER_DIE:
                    self._drive(worker, worker.pool.worker_thread(worker))
            finally:
                self._threads.discard(threading.current_thread())
                self._exiting.append(threading.current_thread())

    def _drive(self, worker: Worker, gen: Generator[Action, Any, None]) -> None:
        """Perform the actions of one policy generator until it says DIE or ends."""
        send = gen.send
        task: Task = worker.task
        value: Any = None
        while True:
            try:
                action = send(value)
            except StopIteration:
                task.leave_work()
                return
            kind = action[0]
            if kind == RUN:
                value = self._run(worker, action[1], action[2])
                continue
            task.leave_work()
            if kind == IDLE:
                self._wait_idle(worker)
                value = None
            elif kind == CREATE:
                value = self._spawn_worker(worker.pool)
            elif kind == COOLDOWN:
                self._cooldown(worker, float(action[1]))
                value = None
            elif kind == DIE:
                gen.close()
                return
            else:  # pragma: no cover - a new action in policy.py needs a driver here
                raise RuntimeError(f"unknown worker action {action!r}")

    def _run(self, worker: Worker, work: WorkStruct, pwq: PoolWorkqueue) -> float:
        """Call the work function with the lock released; return 0.0 (see ``CPU_TICK``).

        The flush bookkeeping (which queueing this run satisfied, which flush
        colour retired) is done before the generator's ``process_one_work_end``;
        flushers only look once this thread releases the lock again, by which
        time the item is off ``busy_hash`` as well.
        """
        task: Task = worker.task
        if pwq is not task.cpu_pwq or time.monotonic() >= task.cpu_due:
            task.charge_cpu(pwq)
        seq = work._seq
        color = work._color
        lock = self.lock
        lock.release()
        try:
            work.func(work)  # type: ignore[misc]
        except BaseException:  # no caller to report to: log it, keep the pool sane
            log.exception("work function %r of %s raised", work.func, pwq.wq.name)
        finally:
            lock.acquire()
        if seq > work._done_seq:
            work._done_seq = seq
        wq: Workqueue = pwq.wq  # type: ignore[assignment]
        wq._retire(color)
        return 0.0

    def _retired(self) -> None:
        """Something a flusher may wait for has finished: wake the flushers."""
        if self._flush_waiters:
            self._flush_cond.notify_all()

    def _wait_idle(self, worker: Worker) -> None:
        """Sleep until woken; every idle timeout, run the pool's reaper.

        This is the pool's ``idle_timer`` spread over its idle workers: each
        one, idle for a full timeout, asks the rules to cull the longest-idle
        workers (``too_many_workers``); a culled worker is woken and its next
        step is DIE.  Legacy pools are never reaped, so they wait untimed.
        """
        task: Task = worker.task
        pool = worker.pool
        task.woken = False
        timeout: float | None = None
        if not pool.legacy and pool.idle_timeout != float("inf"):
            timeout = max(worker.last_active + pool.idle_timeout - self.now(), 0.0)
        while not task.woken:
            if task.sleep(timeout) or timeout is None:
                continue
            pool.reap_idle_workers()
            timeout = pool.idle_timeout

    def _cooldown(self, worker: Worker, seconds: float) -> None:
        """Wait after a failed creation; a wakeup (pool destroyed) cuts it short.

        Meanwhile this manager runs the pool's mayday timer: whenever its
        deadline passes, ``pool_mayday_timeout()`` sends the maydays and re-arms it.
        """
        pool = worker.pool
        if pool.destroyed or worker.flags & WORKER_DIE:
            return  # the creation failed because the pool is going away: nothing to wait for
        task: Task = worker.task
        task.woken = False
        if self.create_cooldown is not None:
            seconds = self.create_cooldown
        end = time.monotonic() + seconds
        while not task.woken:
            now = time.monotonic()
            due = pool.mayday_timer
            if due is not None and due <= now:
                pool.pool_mayday_timeout()
                continue
            if now >= end:
                return
            task.sleep((end if due is None else min(end, due)) - now)

    # --- the rescuer ------------------------------------------------------------------
    def _on_mayday(self, pwq: PoolWorkqueue) -> None:
        """``send_mayday()``: the pool could not create a worker; wake the wq's rescuer."""
        wq: Workqueue = pwq.wq  # type: ignore[assignment]
        rescuer = wq._rescuer
        if rescuer is None:
            return
        wq._maydays.append(pwq)
        self.wake_worker(rescuer)

    def _rescuer_main(self, rescuer: Worker, maydays: deque[PoolWorkqueue]) -> None:
        """``rescuer_thread()``: run mayday'd pwqs' items until the wq is destroyed."""
        current.worker = rescuer
        current.system = self
        task: Task = rescuer.task
        with self.lock:
            try:
                while True:
                    task.woken = False
                    while not maydays and not task.stop:
                        task.sleep()
                        task.woken = False
                    if not maydays:
                        return
                    pwq = maydays.popleft()
                    rescuer.pool = pwq.pool  # worker_attach_to_pool()
                    self._drive(rescuer, pwq.pool.rescue(rescuer, pwq))
            finally:
                self._threads.discard(threading.current_thread())
                self._exiting.append(threading.current_thread())
