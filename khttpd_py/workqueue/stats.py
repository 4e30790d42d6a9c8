"""Per-workqueue statistics and the ``tools/workqueue/wq_monitor.py`` table.

Both are Linux 6.5+ features: the ``PWQ_STAT_*`` counters and the tool came
with 6.5, so Debian 12's 6.1, the kernel this project otherwise follows, has
neither.  The model keeps them because they show what the rules decide.

Each pwq counts the eight ``PWQ_STAT_*`` events (``policy.PwqStats``); a
workqueue's figures are their sum over its pwqs, as in wq_monitor.  The table
has the tool's columns and widths::

                                total  infl  CPUtime CPUitsv CMW/RPR  mayday rescued
    khttpd                        812     3      0.4       -       0       -       -

``CPUitsv`` and ``CMW`` exist only for per-CPU workqueues, ``RPR`` only for
unbound ones (so an unbound row shows RPR in the CMW/RPR column), ``mayday``
and ``rescued`` only for ``WQ_MEM_RECLAIM`` workqueues; "-" elsewhere.  The
name column is the last 24 characters, padded on the right exactly as the
tool's f-string does.

``CPUitsv`` is ``PWQ_STAT_CPU_INTENSIVE``: how often ``wq_worker_tick()``
caught a concurrency-managed worker running one item past
``wq_cpu_intensive_thresh_us`` (10 ms) and made it CPU_INTENSIVE, a 6.5
mechanism.  It is *not* the number of items of WQ_CPU_INTENSIVE workqueues
(their workers are outside concurrency management, so the kernel shows 0 for
them).  That detection is not modelled, so the column is always 0 here.

CPU time is the kworkers' thread CPU clock, charged
to the pwq they work for about once a tick (``worker.CPU_TICK``), as the
kernel charges scheduler ticks.

The dict form (``WqStats.dict``) has the tool's ``-j`` keys; ``cpu_time`` is
in microseconds there, like the kernel's raw counter.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from khttpd_py.workqueue.policy import PwqStats
from khttpd_py.workqueue.work import Workqueue

COLUMNS = ("total", "infl", "CPUtime", "CPUitsv", "CMW/RPR", "mayday", "rescued")
"""wq_monitor's columns, in order."""


@dataclass
class WqStats:
    """One workqueue's summed counters at one instant."""

    name: str
    unbound: bool
    mem_reclaim: bool
    stats: PwqStats

    @classmethod
    def of(cls, wq: Workqueue) -> WqStats:
        """Snapshot ``wq`` (takes its system's lock)."""
        return cls(wq.name, wq.unbound, wq.mem_reclaim, wq.stats())

    @property
    def infl(self) -> int:
        """Items started and not completed (never negative)."""
        return max(self.stats.started - self.stats.completed, 0)

    def dict(self, now: float | None = None) -> dict[str, Any]:
        """The tool's ``-j`` record (cpu_time in microseconds)."""
        s = self.stats
        return {
            "timestamp": time.time() if now is None else now,
            "name": self.name,
            "unbound": self.unbound,
            "mem_reclaim": self.mem_reclaim,
            "started": s.started,
            "completed": s.completed,
            "cpu_time": round(s.cpu_time * 1e6),
            "cpu_intensive": s.cpu_intensive,
            "cm_wakeup": s.cm_wakeup,
            "repatriated": s.repatriated,
            "mayday": s.mayday,
            "rescued": s.rescued,
        }

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> WqStats:
        """Rebuild from :meth:`dict` (what the stats endpoint sends)."""
        stats = PwqStats(
            started=int(record["started"]),
            completed=int(record["completed"]),
            cpu_time=float(record["cpu_time"]) / 1e6,
            cpu_intensive=int(record["cpu_intensive"]),
            cm_wakeup=int(record["cm_wakeup"]),
            repatriated=int(record["repatriated"]),
            mayday=int(record["mayday"]),
            rescued=int(record["rescued"]),
        )
        return cls(str(record["name"]), bool(record["unbound"]), bool(record["mem_reclaim"]), stats)

    def row(self) -> str:
        """The tool's ``table_row_str()`` (without its trailing blank)."""
        s = self.stats
        cpu_intensive = cmw_rpr = mayday = rescued = "-"
        if self.unbound:
            cmw_rpr = str(s.repatriated)
        else:
            cpu_intensive = str(s.cpu_intensive)
            cmw_rpr = str(s.cm_wakeup)
        if self.mem_reclaim:
            mayday = str(s.mayday)
            rescued = str(s.rescued)
        return (
            f"{self.name[-24:]:24} {s.started:8} {self.infl:5} {s.cpu_time:8.1f} "
            f"{cpu_intensive:>7} {cmw_rpr:>7} {mayday:>7} {rescued:>7}"
        )


def table_header() -> str:
    """The tool's ``table_header_str()``."""
    return (
        f'{"":>24} {"total":>8} {"infl":>5} {"CPUtime":>8} '
        f'{"CPUitsv":>7} {"CMW/RPR":>7} {"mayday":>7} {"rescued":>7}'
    )


def format_table(rows: Iterable[WqStats]) -> str:
    """Header plus one row per workqueue, as one report of wq_monitor prints it."""
    return "\n".join([table_header(), *(row.row() for row in rows)])


def collect(wqs: Iterable[Workqueue]) -> list[WqStats]:
    """Snapshot each workqueue."""
    return [WqStats.of(wq) for wq in wqs]
