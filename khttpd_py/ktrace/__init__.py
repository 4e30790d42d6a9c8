"""Kernel traces of khttpd.ko: ftrace text -> typed events -> what each mode did.

``make -C kmod trace OUT=dir`` boots the VM test's guest, traces the workqueue
and scheduler tracepoints while a fixed load of 44 connections runs against
each mode (kthread; cmwq unbound; cmwq bound; cmwq max_active=1) and writes
the raw traces plus ``summary.json`` and ``metadata.json`` into ``dir``.  A
recorded set lives in ``book/data/ktrace/`` so the book never boots QEMU::

    from khttpd_py.ktrace import load_recorded, summarize, compare_with_sim
    rec = load_recorded()                 # book/data/ktrace
    t = rec.mode("max1")                  # a ModeTrace
    t.peak_running()                      # {"unbound4": 1, "all": 1}
    [s.to_dict(t.t0_us) for s in t.services]   # one per connection
    summarize(t)["latency"]               # queue-to-start distribution
    compare_with_sim(t, rec.guest_cpus, "unbound", 1).agreement

Modules: :mod:`.events` (lines -> :class:`TraceEvent`), :mod:`.model`
(events -> connections, threads, pools), :mod:`.recording` (a ``make trace``
directory, summary.json), :mod:`.compare` (the trace replayed through
:mod:`khttpd_py.sim`).  The command line is ``python -m khttpd_py.ktrace``.
"""

from __future__ import annotations

from pathlib import Path

from khttpd_py.ktrace.compare import Comparison, compare_with_sim, scenario_from_trace
from khttpd_py.ktrace.events import TraceEvent, TraceFormatError, parse_line, parse_trace
from khttpd_py.ktrace.model import ModeTrace, Service, ThreadLife, distribution, kworker_pool
from khttpd_py.ktrace.recording import (
    LOAD,
    MODES,
    Recording,
    summarize,
    summary_document,
    write_summary,
)

RECORDED = Path(__file__).resolve().parents[2] / "book" / "data" / "ktrace"
"""The recorded traces committed with the book."""

__all__ = [
    "LOAD",
    "MODES",
    "RECORDED",
    "Comparison",
    "ModeTrace",
    "Recording",
    "Service",
    "ThreadLife",
    "TraceEvent",
    "TraceFormatError",
    "compare_with_sim",
    "distribution",
    "kworker_pool",
    "load_recorded",
    "parse_line",
    "parse_trace",
    "scenario_from_trace",
    "summarize",
    "summary_document",
    "write_summary",
]


def load_recorded(root: Path | str | None = None) -> Recording:
    """The recorded traces (``book/data/ktrace`` unless ``root`` names another directory)."""
    path = RECORDED if root is None else Path(root)
    if not (path / "guest.txt").exists():
        raise FileNotFoundError(f"{path}: not a make -C kmod trace directory (no guest.txt)")
    return Recording(path)
