"""What a simulation produced, in the forms its readers need.

The book wants a timeline it can print next to the kernel documentation's, the
exercises want numbers they can assert on, and the CLI wants text and JSON.
All of them read one :class:`SimResult`, so the three can never disagree.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from khttpd_py.sim.spec import BURN, Scenario


class Event(NamedTuple):
    """One line of the timeline.

    ``cpu`` is the CPU of a bound worker's pool; for unbound (and legacy ST)
    workers it is the CPU the item last burned on, or None before its first burn.
    """

    t: int | float
    work: str
    event: str
    worker: str
    cpu: int | None

    def to_dict(self) -> dict[str, Any]:
        return {"t": self.t, "work": self.work, "event": self.event,
                "worker": self.worker, "cpu": self.cpu}


class Segment(NamedTuple):
    """A span of one item's life, for Gantt charts.

    ``kind`` is ``queued`` (waiting for a worker), ``wait`` (runnable, waiting for
    a CPU), ``burn`` or ``sleep``.  ``worker`` is empty while queued; ``cpu`` is
    set for burns.
    """

    work: str
    worker: str
    kind: str
    start: int | float
    end: int | float
    cpu: int | None


EVENT_KINDS = ("start", "sleep", "wake", "finish")
"""The four events a timeline line can report."""


@dataclass
class SimResult:
    """Timeline, Gantt segments and counters of one simulated run."""

    scenario: Scenario
    events: list[Event]
    segments: list[Segment]
    stats: dict[str, Any]
    warnings: list[str] = field(default_factory=list)

    # --- lookups for notebooks and exercises ----------------------------------------------
    def times(self, work: str, event: str) -> list[int | float]:
        """Every time ``work`` had ``event`` (``result.times("w2", "start") == [20]``)."""
        return [e.t for e in self.events if e.work == work and e.event == event]

    def start_time(self, work: str) -> int | float:
        """When ``work`` started (its first ``start`` event); ValueError if it never did."""
        return self._one(work, "start")[0]

    def finish_time(self, work: str) -> int | float:
        """When ``work`` finished; ValueError if it never did (a stalled run)."""
        return self._one(work, "finish")[-1]

    def worker_of(self, work: str) -> str:
        """The worker thread that ran ``work``; ValueError if it never started."""
        self._one(work, "start")
        return next(e.worker for e in self.events if e.work == work and e.event == "start")

    def _one(self, work: str, event: str) -> list[int | float]:
        found = self.times(work, event)
        if not found:
            if work not in {w.name for w in self.scenario.works}:
                raise ValueError(f"no work item named {work!r}")
            raise ValueError(f"{work} never had a {event!r} event (see result.warnings)")
        return found

    def order(self, event: str = "start") -> list[str]:
        """Work items in the order they had ``event`` (start order by default)."""
        return [e.work for e in self.events if e.event == event]

    # --- serialisation ---------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain data: events, stats, warnings and the problem that produced them."""
        sc = self.scenario
        return {
            "events": [e.to_dict() for e in self.events],
            "stats": self.stats,
            "warnings": list(self.warnings),
            "problem": {
                "name": sc.name,
                "model": sc.model,
                "cpus": sc.cpus,
                "seed": sc.seed,
                "wqs": [wq.spec() for wq in sc.wqs],
                "works": [w.spec() for w in sc.works],
                "args": list(sc.args),
            },
        }

    def to_json(self, indent: int | None = None) -> str:
        """JSON text of :meth:`to_dict`; key order is fixed, so equal runs give equal bytes."""
        return json.dumps(self.to_dict(), indent=indent)

    # --- text ---------------------------------------------------------------------------------
    def timeline_text(self, limit: int | None = None) -> str:
        """One event a line: time (ms), work item, event, worker, CPU."""
        events = self.events if limit is None else self.events[:limit]
        wname = max([len("worker"), *(len(e.worker) for e in events)])
        iname = max([len("work"), *(len(e.work) for e in events)])
        tname = max([len("time"), *(len(str(e.t)) for e in events)])
        lines = [f"{'time':>{tname}}  {'work':<{iname}}  {'event':<6}  {'worker':<{wname}}  cpu"]
        for e in events:
            cpu = "-" if e.cpu is None else str(e.cpu)
            lines.append(
                f"{e.t!s:>{tname}}  {e.work:<{iname}}  {e.event:<6}  {e.worker:<{wname}}  {cpu}"
            )
        if limit is not None and len(self.events) > limit:
            lines.append(f"... {len(self.events) - limit} more events")
        return "\n".join(lines)

    def stats_text(self) -> str:
        """The counters, one a line."""
        s = self.stats
        busy = ", ".join(f"cpu{i} {v}" for i, v in enumerate(s["cpu_busy_ms"]))
        lines = [
            f"makespan (last finish)       {s['makespan_ms']} ms",
            f"work items finished          {s['finished']} of {s['items']}",
            f"worker threads at boot       {s['threads_at_boot']}",
            f"worker threads created       {s['threads_created']} (during the run)",
            f"worker threads at the end    {s['threads_end']}",
            f"peak worker threads          {s['peak_threads']}",
            f"peak items in flight         {s['peak_in_flight']}",
            f"CMW wake-ups                 {s['cm_wakeups']}",
            f"CPU busy time (ms)           {busy}",
        ]
        if s["reaped"]:
            lines.append(f"idle workers reaped          {s['reaped']}")
        if s["failed_creates"]:
            lines.append(f"failed worker creations      {s['failed_creates']}")
        if s["maydays"] or s["rescued"]:
            lines.append(f"maydays / items rescued      {s['maydays']} / {s['rescued']}")
        if s["stalled_at_ms"] is not None:
            lines.append(f"stalled at                   {s['stalled_at_ms']} ms")
        return "\n".join(lines)

    def doc_text(self) -> str:
        """The timeline in the kernel documentation's own words.

        ``0 w0 starts and burns CPU | 5 w0 sleeps | ...``: a wake followed by the
        same item's finish reads "wakes up and finishes", and simultaneous items
        doing the same thing are joined ("5 w1 and w2 start and burn CPU"), so the
        result can be compared with Documentation/core-api/workqueue.rst verbatim.
        """
        phases = {w.name: w.phases for w in self.scenario.works}
        phrases: list[tuple[int | float, list[str], tuple[str, str]]] = []
        events = self.events
        i = 0
        while i < len(events):
            e = events[i]
            nxt = events[i + 1] if i + 1 < len(events) else None
            same_next = nxt is not None and nxt.work == e.work and nxt.t == e.t
            verb: tuple[str, str]
            if e.event == "start":
                first = phases[e.work][0][0] if phases[e.work] else None
                if same_next and nxt is not None and nxt.event == "finish":
                    verb, i = ("starts and finishes", "start and finish"), i + 1
                elif first == BURN:
                    verb = ("starts and burns CPU", "start and burn CPU")
                else:
                    verb = ("starts", "start")
            elif e.event == "wake":
                if same_next and nxt is not None and nxt.event == "finish":
                    verb, i = ("wakes up and finishes", "wake up and finish"), i + 1
                else:
                    verb = ("wakes up and burns CPU", "wake up and burn CPU")
            elif e.event == "sleep":
                verb = ("sleeps", "sleep")
            else:
                verb = ("finishes", "finish")
            if phrases and phrases[-1][0] == e.t and phrases[-1][2] == verb:
                phrases[-1][1].append(e.work)
            else:
                phrases.append((e.t, [e.work], verb))
            i += 1
        parts = []
        for t, works, (singular, plural) in phrases:
            if len(works) == 1:
                parts.append(f"{t} {works[0]} {singular}")
            else:
                who = ", ".join(works[:-1]) + " and " + works[-1]
                parts.append(f"{t} {who} {plural}")
        return " | ".join(parts)
