"""The kernel's trace replayed through the simulator, and how well they agree.

:func:`scenario_from_trace` turns each of the module's work items in a cmwq
trace into a :class:`khttpd_py.sim.WorkSpec`: queued when the kernel queued it
(relative to the first), on the CPU that queued it, with the phases its
kworker actually went through -- *burn* for each stretch on a CPU between
``execute_start`` and ``execute_end``, *sleep* from a switch-out in state S
or D (blocked in ``recv``) to the ``sched_wakeup`` that ended it.  Time a
woken or preempted kworker spent waiting for a CPU is left out: it is the
scheduler's, which the simulator models itself.

:func:`compare_with_sim` runs that scenario (model ``cmwq``, the trace's CPU
count, the module's wq_flags and max_active) and sets the simulator's
prediction beside what the kernel did:

* ``workers``: distinct kworkers that ran the module's items (the kernel's
  pools already hold idle kworkers from earlier work, the simulator's start
  with one each, so kworkers *created* -- ``kernel["kworkers_created"]``,
  ``sim["kworkers_created"]`` -- are reported but not scored);
* ``peak``: most of the module's items between start and end at once
  (``peak_per_pool`` gives it per pool: ``unbound4``, ``cpu0``...);
* ``order``: the fraction of pairs of items that started in the same order;
* ``latency``: the fraction of items whose queue-to-start latency the
  simulator predicts within ``tolerance_us`` (default 1 ms).  The simulator
  takes no time to wake a worker, so its latency is 0 unless an item waits
  for max_active or a CPU; the kernel's, under TCG, is tens of µs and more.
  ``kernel["latency"]``/``sim["latency"]`` hold both distributions.

Each becomes a score in [0, 1] (``min/max`` for the two counts) and
``agreement`` is their mean.  Caveat: the measured sleeps are replayed as
fixed durations; in the kernel a sleep ends when the client's bytes arrive,
so under ``max_active=1`` an item that started late finds its request
already there -- that is measured, not predicted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from khttpd_py.ktrace.model import ModeTrace, Service, distribution, kworker_pool
from khttpd_py.sim import Scenario, SimResult, Simulator, WorkSpec, WqSpec, parse_wq_flags
from khttpd_py.sim.spec import BURN, SLEEP, Phase

DEFAULT_TOLERANCE_US = 1000
"""How close a predicted queue-to-start latency must be to count as agreeing."""


def item_phases(trace: ModeTrace, svc: Service) -> tuple[Phase, ...]:
    """Burn and sleep phases of one work item, in µs, from its kworker's on-CPU intervals."""
    if svc.started_us is None or svc.ended_us is None or svc.worker_pid is None:
        raise ValueError(f"{svc.connection}: not started and ended in the trace")
    start, end = svc.started_us, svc.ended_us
    wakeups = trace.wakeups.get(svc.worker_pid, [])
    phases: list[Phase] = []

    def add(kind: str, dur: int) -> None:
        if dur <= 0:
            return
        if phases and phases[-1][0] == kind:
            phases[-1] = (kind, phases[-1][1] + dur)
        else:
            phases.append((kind, dur))

    t = start
    state = "R"
    for a, b, _cpu, out_state in trace.oncpu.get(svc.worker_pid, []):
        if b <= start or a >= end:
            continue
        lo, hi = max(a, start), min(b, end)
        if lo > t and state[:1] in ("S", "D"):
            woke = next((w for w in wakeups if t < w <= lo), lo)
            add(SLEEP, woke - t)
        add(BURN, hi - lo)
        t, state = hi, out_state
    if t < end:  # still on a CPU at execute_end, switched out later
        add(BURN, end - t)
    return tuple(phases) or ((BURN, max(end - start, 1)),)


def scenario_from_trace(trace: ModeTrace, cpus: int, wq_flags: str = "unbound",
                        max_active: int = 0) -> Scenario:
    """A simulator scenario holding the trace's module work items (see the module doc)."""
    if trace.kind != "cmwq":
        raise ValueError("the simulator models workqueues: compare a cmwq trace, not kthread")
    done = [s for s in trace.services
            if s.queued_us is not None and s.started_us is not None and s.ended_us is not None]
    if not done:
        raise ValueError("the trace holds no complete work item of the module")
    base = min(s.queued_us or 0 for s in done)
    works = []
    for s in done:
        # a bound item's pool is its pwq's CPU; an unbound one runs where it can
        cpu = s.pwq_cpu if s.pwq_cpu is not None and s.pwq_cpu >= 0 else s.queue_cpu
        cpu = cpu if cpu is not None and 0 <= cpu < cpus else 0
        works.append(WorkSpec(s.connection.replace("#", "_"), item_phases(trace, s), "khttpd",
                              cpu, (s.queued_us or 0) - base))
    return Scenario(name="trace", model="cmwq", cpus=cpus,
                    wqs=[WqSpec("khttpd", parse_wq_flags(wq_flags), max_active)],
                    works=works).validate()


def _pair_order_agreement(a: list[str], b: list[str]) -> float:
    """Fraction of pairs ordered alike in two orderings of the same items (1.0 if < 2)."""
    pos_b = {name: i for i, name in enumerate(b)}
    common = [x for x in a if x in pos_b]
    n = len(common)
    if n < 2:
        return 1.0
    same = total = 0
    for i in range(n):
        for j in range(i + 1, n):
            total += 1
            same += pos_b[common[i]] < pos_b[common[j]]
    return same / total


def _ratio(x: int, y: int) -> float:
    return 1.0 if x == y else min(x, y) / max(x, y)


def _sim_peaks(result: SimResult) -> dict[str, int]:
    """Peak items between start and finish at once, per pool (named as the kernel's) and "all"."""
    pool_of: dict[str, str] = {}
    edges: list[tuple[float, int, str]] = []
    for e in result.events:
        if e.event == "start":
            pool_of[e.work] = kworker_pool(e.worker) or e.worker
            edges.append((float(e.t), 1, pool_of[e.work]))
        elif e.event == "finish" and e.work in pool_of:
            edges.append((float(e.t), -1, pool_of[e.work]))
    peaks: dict[str, int] = {}
    for pool in sorted(set(pool_of.values())) + ["all"]:
        level = peak = 0
        for _, step, p in sorted(edges, key=lambda e: (e[0], e[1])):
            if pool in ("all", p):
                level += step
                peak = max(peak, level)
        peaks[pool] = peak
    return peaks


@dataclass
class Comparison:
    """The kernel against the simulator for one trace; ``agreement`` in [0, 1]."""

    kernel: dict[str, Any]
    sim: dict[str, Any]
    scores: dict[str, float]
    per_item: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def agreement(self) -> float:
        """The mean of the four scores."""
        return round(sum(self.scores.values()) / len(self.scores), 3)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON and notebooks."""
        return {"agreement": self.agreement, "scores": self.scores, "kernel": self.kernel,
                "sim": self.sim, "per_item": self.per_item, "warnings": self.warnings}

    def text(self) -> str:
        """A small table: figure, kernel, simulator, score."""
        rows = [("workers used", self.kernel["workers"], self.sim["workers"],
                 self.scores["workers"]),
                ("peak running", self.kernel["peak"], self.sim["peak"], self.scores["peak"]),
                ("median latency ms", self.kernel["latency_median_ms"],
                 self.sim["latency_median_ms"], self.scores["latency"]),
                ("start order", "", "", self.scores["order"])]
        lines = [f"{'figure':<18} {'kernel':>8} {'sim':>8} {'score':>6}"]
        lines += [f"{n:<18} {k!s:>8} {s!s:>8} {sc:>6.3f}" for n, k, s, sc in rows]
        lines.append(f"agreement {self.agreement:.3f}")
        return "\n".join(lines)


def _median_ms(values: list[int]) -> float | None:
    if not values:
        return None
    v = sorted(values)
    return round(v[len(v) // 2] / 1000, 3)


def compare_with_sim(trace: ModeTrace, cpus: int, wq_flags: str = "unbound",
                     max_active: int = 0,
                     tolerance_us: int = DEFAULT_TOLERANCE_US) -> Comparison:
    """Replay ``trace`` through the simulator and score the agreement (see the module doc)."""
    scenario = scenario_from_trace(trace, cpus, wq_flags, max_active)
    result = Simulator(scenario).run()
    names = {w.name: w for w in scenario.works}
    done = [s for s in trace.services
            if s.queued_us is not None and s.started_us is not None and s.ended_us is not None]
    by_name = {s.connection.replace("#", "_"): s for s in done}
    base = min(s.queued_us or 0 for s in done)
    per_item = []
    k_lat: list[int] = []
    s_lat: list[int] = []
    close = 0
    for name, spec in names.items():
        svc = by_name[name]
        k = svc.latency_us or 0
        starts = result.times(name, "start")
        if not starts:
            continue
        s = round(float(starts[0]) * 1000) - spec.at
        k_lat.append(k)
        s_lat.append(s)
        close += abs(k - s) <= tolerance_us
        per_item.append({"connection": svc.connection, "queued_ms": round(
            ((svc.queued_us or 0) - base) / 1000, 3),
            "kernel_latency_ms": round(k / 1000, 3), "sim_latency_ms": round(s / 1000, 3),
            "kernel_worker": svc.worker_comm, "sim_worker": result.worker_of(name),
            "phases": [[kind, round(d / 1000, 3)] for kind, d in spec.phases]})
    k_order = [c.replace("#", "_") for c in trace.start_order() if c.replace("#", "_") in names]
    s_order = [w for w in result.order("start") if w in names]
    k_workers = len({s.worker_pid for s in done})
    s_workers = len({e.worker for e in result.events if e.event == "start"})
    k_peaks = trace.peak_running(done)
    s_peaks = _sim_peaks(result)
    k_peak, s_peak = k_peaks["all"], s_peaks["all"]
    pools = {s.pool for s in done}
    k_created = len([t for t in trace.created("kworker") if kworker_pool(t.comm) in pools])
    scores = {
        "workers": round(_ratio(k_workers, s_workers), 3),
        "peak": round(_ratio(k_peak, s_peak), 3),
        "order": round(_pair_order_agreement(k_order, s_order), 3),
        "latency": round(close / len(per_item), 3) if per_item else 0.0,
    }
    kernel = {"workers": k_workers, "peak": k_peak, "peak_per_pool": k_peaks,
              "start_order": k_order, "latency_median_ms": _median_ms(k_lat),
              "latency": distribution(k_lat), "kworkers_created": k_created,
              "items": len(done)}
    sim = {"workers": s_workers, "peak": s_peak, "peak_per_pool": s_peaks,
           "start_order": s_order, "latency_median_ms": _median_ms(s_lat),
           "latency": distribution(s_lat), "kworkers_created": result.stats["threads_created"],
           "items": len(result.order("start"))}
    return Comparison(kernel, sim, scores, per_item, list(result.warnings))
