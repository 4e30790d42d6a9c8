"""Typed events to what happened: connections served, threads, kworker pools.

:class:`ModeTrace` reads the events of one mode's trace (``make -C kmod
trace`` records kthread, cmwq unbound, cmwq bound and cmwq max_active=1) and
rebuilds:

* :class:`Service` -- one per connection the module served.  In cmwq mode a
  work item of the module's work function: queued (``workqueue_queue_work``),
  activated, started and ended (``workqueue_execute_start``/``_end``) on a
  kworker.  In kthread mode a ``khttpd-conn`` thread: forked by kthreadd
  (``task_newtask``), first on a CPU (``sched_switch``), exited
  (``sched_process_exit``).
* :class:`ThreadLife` -- every kworker or khttpd thread created or ended
  during the trace.
* on-CPU intervals of every traced task (from ``sched_switch``), which
  :mod:`khttpd_py.ktrace.compare` turns into burn and sleep phases.

Connections are named from the load's ``trace_marker`` lines: a sequential
connection gets its own marker (``conn seq.3``), a concurrent one the phase's
name and its rank in queue order within the phase (``burst#2``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from khttpd_py.ktrace.events import TraceEvent, marker

MODULE_FUNCTION = "http_conn_work"
"""The module's work function: one work item per connection (kmod/http_server.c)."""
CONN_COMM = "khttpd-conn"
"""The comm of kthread mode's per-connection threads (``kthread_run(..., "khttpd-conn")``)."""
DAEMON_COMM = "khttpd"

_KWORKER_RE = re.compile(r"^kworker/(?:(?P<unbound>u)(?P<pool>\d+)|(?P<cpu>\d+)):\d+(?P<hi>H?)$")


def kworker_pool(comm: str) -> str | None:
    """The worker pool a kworker belongs to, from its name (fixed at creation).

    ``kworker/1:2`` -> ``"cpu1"`` (CPU 1's normal pool), ``kworker/1:0H`` ->
    ``"cpu1H"`` (its highpri pool), ``kworker/u4:3`` -> ``"unbound4"`` (unbound
    pool id 4); None for a task that is not a kworker (or a rescuer, which
    carries its workqueue's name).
    """
    m = _KWORKER_RE.match(comm)
    if m is None:
        return None
    if m["unbound"]:
        return f"unbound{m['pool']}"
    return f"cpu{m['cpu']}{m['hi']}"


@dataclass
class Service:
    """One connection served: a work item (cmwq) or a khttpd-conn thread (kthread).

    Times are trace microseconds (None when the trace does not show it);
    ``worker_pid``/``worker_comm`` is the kworker that ran the item, or the
    connection's own thread.
    """

    key: str
    kind: str
    queued_us: int | None = None
    activated_us: int | None = None
    started_us: int | None = None
    ended_us: int | None = None
    worker_pid: int | None = None
    worker_comm: str = ""
    start_cpu: int | None = None
    queue_cpu: int | None = None
    req_cpu: int | None = None
    pwq_cpu: int | None = None
    """The pool's CPU from ``workqueue_queue_work`` (-1: an unbound pool)."""
    workqueue: str = ""
    function: str = ""
    phase: str = ""
    connection: str = ""

    @property
    def latency_us(self) -> int | None:
        """Queue (or fork) to start, in microseconds."""
        if self.queued_us is None or self.started_us is None:
            return None
        return self.started_us - self.queued_us

    @property
    def pool(self) -> str:
        """The worker pool that ran it (``kthread`` for a connection thread)."""
        if self.kind == "kthread":
            return "kthread"
        return kworker_pool(self.worker_comm) or self.worker_comm or "?"

    def to_dict(self, t0: int = 0) -> dict[str, Any]:
        """Plain data, times in ms after ``t0`` (µs)."""
        def rel(us: int | None) -> float | None:
            return None if us is None else round((us - t0) / 1000, 3)
        lat = self.latency_us
        return {
            "connection": self.connection, "phase": self.phase, "kind": self.kind,
            "key": self.key, "function": self.function, "workqueue": self.workqueue,
            "queued_ms": rel(self.queued_us), "activated_ms": rel(self.activated_us),
            "started_ms": rel(self.started_us), "ended_ms": rel(self.ended_us),
            "latency_ms": None if lat is None else round(lat / 1000, 3),
            "worker_pid": self.worker_pid, "worker_comm": self.worker_comm,
            "pool": self.pool, "queue_cpu": self.queue_cpu, "req_cpu": self.req_cpu,
            "pwq_cpu": self.pwq_cpu,
            "start_cpu": self.start_cpu,
        }


@dataclass
class ThreadLife:
    """A kernel thread the trace saw being created (kthreadd fork) or ending."""

    pid: int
    comm: str = ""
    created_us: int | None = None
    named_us: int | None = None
    exited_us: int | None = None

    @property
    def kind(self) -> str:
        """``kworker``, ``conn`` (kthread mode's per-connection thread), ``daemon`` or ``other``."""
        if self.comm.startswith("kworker/"):
            return "kworker"
        if self.comm == CONN_COMM:
            return "conn"
        if self.comm == DAEMON_COMM:
            return "daemon"
        return "other"


@dataclass
class ModeTrace:
    """The events of one mode's trace and what they add up to.

    ``initial_tasks`` maps pid -> comm of the kernel threads alive when tracing
    started (``tasks-before.txt`` of a recording); it lets kworkers be counted
    over time, since a trace only shows the ones created or ended in it.
    """

    events: list[TraceEvent]
    initial_tasks: dict[int, str] = field(default_factory=dict)
    function: str = MODULE_FUNCTION

    def __post_init__(self) -> None:
        self.t0_us = self._begin_us()
        self.threads: dict[int, ThreadLife] = {}
        self.services: list[Service] = []
        self.work_runs: list[Service] = []
        self.oncpu: dict[int, list[tuple[int, int, int, str]]] = {}
        self.wakeups: dict[int, list[int]] = {}
        self.owner: dict[int, Service] = {}
        """Index in :attr:`events` of a workqueue event -> the work item it belongs to."""
        self._build()

    # --- construction ------------------------------------------------------------------
    def _begin_us(self) -> int:
        for ev in self.events:
            text = marker(ev)
            if text is not None and text.startswith("mode ") and text.endswith(" begin"):
                return ev.us
        return self.events[0].us if self.events else 0

    def _thread(self, pid: int) -> ThreadLife:
        if pid not in self.threads:
            self.threads[pid] = ThreadLife(pid)
        return self.threads[pid]

    def _build(self) -> None:
        pending: dict[str, list[Service]] = {}
        running: dict[tuple[str, int], Service] = {}
        on: dict[int, tuple[int, int, str]] = {}  # pid -> (since, cpu, comm)
        conns: dict[int, Service] = {}
        for i, ev in enumerate(self.events):
            name = ev.event
            if name == "workqueue_queue_work":
                svc = Service(key=str(ev.get("work")), kind="work", queued_us=ev.us,
                              queue_cpu=ev.cpu, req_cpu=ev.get("req_cpu"), pwq_cpu=ev.get("cpu"),
                              workqueue=str(ev.get("workqueue", "")),
                              function=str(ev.get("function", "")))
                pending.setdefault(svc.key, []).append(svc)
                self.work_runs.append(svc)
                self.owner[i] = svc
            elif name == "workqueue_activate_work":
                for svc in reversed(pending.get(str(ev.get("work")), [])):
                    if svc.activated_us is None:
                        svc.activated_us = ev.us
                        self.owner[i] = svc
                        break
            elif name == "workqueue_execute_start":
                key = str(ev.get("work"))
                queue = pending.get(key)
                if queue:
                    svc = queue.pop(0)
                else:  # queued before tracing began
                    svc = Service(key=key, kind="work", function=str(ev.get("function", "")))
                    self.work_runs.append(svc)
                svc.started_us = ev.us
                svc.worker_pid = ev.pid
                svc.worker_comm = ev.comm
                svc.start_cpu = ev.cpu
                if not svc.function:
                    svc.function = str(ev.get("function", ""))
                running[(key, ev.pid)] = svc
                self.owner[i] = svc
            elif name == "workqueue_execute_end":
                # keyed by worker too: a freed item's memory may be queued and
                # started again elsewhere before its own execute_end
                svc = running.pop((str(ev.get("work")), ev.pid), None)
                if svc is not None:
                    svc.ended_us = ev.us
                    self.owner[i] = svc
            elif name == "task_newtask":
                life = self._thread(int(ev.get("pid")))
                life.created_us = ev.us
                life.comm = str(ev.get("comm"))
            elif name == "task_rename":
                life = self._thread(int(ev.get("pid")))
                life.comm = str(ev.get("newcomm"))
                life.named_us = ev.us
                if life.comm == CONN_COMM:
                    conns[life.pid] = Service(
                        key=str(life.pid), kind="kthread", queued_us=life.created_us or ev.us,
                        worker_pid=life.pid, worker_comm=CONN_COMM, queue_cpu=ev.cpu)
            elif name == "sched_process_exit":
                pid = int(ev.get("pid"))
                life = self._thread(pid)
                life.exited_us = ev.us
                if not life.comm:
                    life.comm = str(ev.get("comm"))
                if pid in conns:
                    conns[pid].ended_us = ev.us
            elif name == "sched_switch":
                prev, nxt = int(ev.get("prev_pid")), int(ev.get("next_pid"))
                if prev in on:
                    since, cpu, comm = on.pop(prev)
                    self.oncpu.setdefault(prev, []).append((since, ev.us, cpu, str(
                        ev.get("prev_state"))))
                if nxt:
                    on[nxt] = (ev.us, ev.cpu, str(ev.get("next_comm")))
                    svc = conns.get(nxt)
                    if svc is not None and svc.started_us is None:
                        svc.started_us = ev.us
                        svc.start_cpu = ev.cpu
            elif name in ("sched_wakeup", "sched_wakeup_new"):
                pid = int(ev.get("pid"))
                self.wakeups.setdefault(pid, []).append(ev.us)
                svc = conns.get(pid)
                if svc is not None and svc.started_us is None and pid in on:
                    # woken by kthread_run() before it had switched out after
                    # kthread()'s complete(): it goes on with no sched_switch
                    svc.started_us = ev.us
                    svc.start_cpu = on[pid][1]
            if name != "task_rename" and ev.pid in conns and conns[ev.pid].started_us is None:
                # the thread is current, so it has started (a trace whose
                # sched_switch filter missed its switch-in)
                conns[ev.pid].started_us = ev.us
                conns[ev.pid].start_cpu = ev.cpu
        self.services = [s for s in self.work_runs if s.function == self.function]
        self.services.extend(conns.values())
        self.services.sort(key=lambda s: (s.queued_us is None, s.queued_us or 0))
        self._name_connections()

    def _name_connections(self) -> None:
        marks: list[tuple[int, str]] = []
        for ev in self.events:
            text = marker(ev)
            if text is not None and (text.startswith("phase ") or text.startswith("conn ")):
                marks.append((ev.us, text))
        phase, conn, rank, i = "", "", 0, 0
        for svc in self.services:
            when = svc.queued_us if svc.queued_us is not None else svc.started_us or 0
            while i < len(marks) and marks[i][0] <= when:
                text = marks[i][1]
                if text.startswith("phase "):
                    phase, conn, rank = text.split()[1], "", 0
                else:
                    conn = text.split()[1]
                i += 1
            rank += 1
            svc.phase = phase
            if conn:
                svc.connection, conn = conn, ""
            else:
                svc.connection = f"{phase or 'conn'}#{rank}"

    # --- events as data ------------------------------------------------------------------
    def event_rows(self, scope: str = "all") -> list[dict[str, Any]]:
        """The events as dicts, with ``t_ms`` (after the mode began) and ``connection``.

        ``connection`` is set on the workqueue events of the module's work items
        and on the events of a kthread-mode connection thread.  ``scope`` is
        ``"all"`` or ``"module"``: only markers, thread creations/renames/exits,
        the module's work items' events and scheduler events of the tasks that
        served connections (their kworkers, khttpd threads).
        """
        if scope not in ("all", "module"):
            raise ValueError(f"scope {scope!r}: expected 'all' or 'module'")
        conn_of_pid = {s.worker_pid: s.connection for s in self.services if s.kind == "kthread"}
        pids = {s.worker_pid for s in self.services if s.worker_pid is not None}
        pids |= {t.pid for t in self.threads.values() if t.kind in ("conn", "daemon")}
        lifecycle = ("task_newtask", "task_rename", "sched_process_exit", "tracing_mark_write")
        rows = []
        for i, ev in enumerate(self.events):
            svc = self.owner.get(i)
            mine = svc is not None and svc.function == self.function
            if scope == "module" and not (mine or ev.event in lifecycle or (
                    ev.event.startswith("sched_") and {ev.pid, ev.get("pid"), ev.get("prev_pid"),
                                                       ev.get("next_pid")} & pids)):
                continue
            row = {"t_ms": round((ev.us - self.t0_us) / 1000, 3), **ev.to_dict()}
            if mine and svc is not None:
                row["connection"] = svc.connection
                row.setdefault("workqueue", svc.workqueue)
            elif ev.pid in conn_of_pid:
                row["connection"] = conn_of_pid[ev.pid]
            rows.append(row)
        return rows

    # --- questions a reader asks ----------------------------------------------------------
    @property
    def kind(self) -> str:
        """``kthread`` when the module served connections with threads, else ``cmwq``."""
        return "kthread" if any(s.kind == "kthread" for s in self.services) else "cmwq"

    def created(self, kind: str | None = None) -> list[ThreadLife]:
        """Threads kthreadd forked during the trace (of one :attr:`ThreadLife.kind`)."""
        return [t for t in self.threads.values()
                if t.created_us is not None and (kind is None or t.kind == kind)]

    def kworkers_over_time(self) -> list[tuple[float, int]]:
        """(ms after the mode began, kworkers alive) at the start and at every change."""
        alive = {pid for pid, comm in self.initial_tasks.items() if comm.startswith("kworker/")}
        changes: list[tuple[int, int, int]] = []
        for t in self.threads.values():
            if t.kind != "kworker":
                continue
            if t.named_us is not None and t.pid not in alive:
                changes.append((t.named_us, +1, t.pid))
            if t.exited_us is not None:
                changes.append((t.exited_us, -1, t.pid))
        count = len(alive)
        series = [(0.0, count)]
        for us, delta, pid in sorted(changes):
            if delta > 0:
                alive.add(pid)
            else:
                alive.discard(pid)
            if len(alive) != count:
                count = len(alive)
                series.append((round((us - self.t0_us) / 1000, 3), count))
        return series

    def peak_running(self, services: Iterable[Service] | None = None) -> dict[str, int]:
        """Peak number of the module's items between start and end at once, per pool.

        "Running" is the workqueue's view: started and not ended, sleeping in
        ``recv`` included.  The key ``"all"`` counts every pool together.
        """
        chosen = list(self.services if services is None else services)
        peaks: dict[str, int] = {}
        for pool in sorted({s.pool for s in chosen}) + ["all"]:
            edges: list[tuple[int, int]] = []
            for s in chosen:
                if s.started_us is None or (pool != "all" and s.pool != pool):
                    continue
                end = s.ended_us if s.ended_us is not None else 2**62
                edges += [(s.started_us, 1), (end, -1)]
            level = peak = 0
            for _, step in sorted(edges, key=lambda e: (e[0], e[1])):
                level += step
                peak = max(peak, level)
            peaks[pool] = peak
        return peaks

    def peak_on_cpu(self) -> int:
        """Peak number of tasks serving the module's connections on a CPU at the same time."""
        edges: list[tuple[int, int]] = []
        for s in self.services:
            if s.worker_pid is None or s.started_us is None:
                continue
            end = s.ended_us if s.ended_us is not None else 2**62
            for a, b, _cpu, _state in self.oncpu.get(s.worker_pid, []):
                lo, hi = max(a, s.started_us), min(b, end)
                if lo < hi:
                    edges += [(lo, 1), (hi, -1)]
        level = peak = 0
        for _, step in sorted(edges):
            level += step
            peak = max(peak, level)
        return peak

    def start_order(self) -> list[str]:
        """Connections in the order their service started."""
        started = [s for s in self.services if s.started_us is not None]
        return [s.connection for s in sorted(started, key=lambda s: s.started_us or 0)]

    def latencies_us(self) -> list[int]:
        """Queue-to-start (cmwq) or fork-to-first-run (kthread) latencies, in µs, sorted."""
        return sorted(x for s in self.services if (x := s.latency_us) is not None)

    def functions(self) -> dict[str, int]:
        """How many work items of each function ran during the trace (all workqueues)."""
        counts: dict[str, int] = {}
        for s in self.work_runs:
            if s.started_us is not None:
                counts[s.function] = counts.get(s.function, 0) + 1
        return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def distribution(values_us: list[int]) -> dict[str, Any]:
    """min/median/p90/max/mean in ms and a histogram by decade (µs bounds)."""
    if not values_us:
        return {"n": 0}
    v = sorted(values_us)

    def q(p: float) -> float:
        return round(v[min(len(v) - 1, int(p * (len(v) - 1) + 0.5))] / 1000, 3)

    bounds = [10, 100, 1_000, 10_000, 100_000]
    labels = ["<10us", "10-100us", "100us-1ms", "1-10ms", "10-100ms", ">=100ms"]
    hist = dict.fromkeys(labels, 0)
    for x in v:
        idx = next((i for i, b in enumerate(bounds) if x < b), len(bounds))
        hist[labels[idx]] += 1
    return {"n": len(v), "min_ms": q(0), "median_ms": q(0.5), "p90_ms": q(0.9),
            "max_ms": q(1), "mean_ms": round(sum(v) / len(v) / 1000, 3), "histogram": hist}
