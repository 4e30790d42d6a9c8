"""Gantt charts of a simulated run: a static one for the printed book, an interactive one online.

A timeline says *when*; a Gantt chart shows at a glance *how much overlapped*,
which is the whole point of concurrency management.  Rows are work items (the
default), worker threads, or CPUs; bars are burning (solid), sleeping (hatched),
runnable but waiting for a CPU (outlined) and queued without a worker (grey).

matplotlib is imported here only, so the simulator itself never needs it.  The
Agg backend is selected unless pyplot is already in use or ``MPLBACKEND`` is set
(Jupyter sets it to its inline backend), so charts render headless in CI and
inline in notebooks.  Figures are closed in pyplot before being returned: the
caller owns them, and a notebook shows a returned figure once, not twice.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

from khttpd_py.sim.result import Segment, SimResult

KINDS = ("queued", "wait", "burn", "sleep")
KIND_LABELS = {
    "queued": "queued, no worker yet",
    "wait": "runnable, waiting for a CPU",
    "burn": "burning CPU",
    "sleep": "sleeping",
}
LABEL_LIMIT = 120
"""Above this many bars, work names are not written inside them (unreadable anyway)."""

PALETTE = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
]


def _rows(result: SimResult, by: str) -> tuple[list[str], list[tuple[str, Segment]]]:
    """Row labels in display order and (row, segment) pairs."""
    if by not in ("work", "worker", "cpu"):
        raise ValueError(f"by must be 'work', 'worker' or 'cpu', not {by!r}")
    pairs: list[tuple[str, Segment]] = []
    order: dict[str, int] = {}
    if by == "work":
        for w in result.scenario.works:
            order.setdefault(w.name, len(order))
        pairs = [(s.work, s) for s in result.segments]
    elif by == "worker":
        for e in result.events:
            if e.event == "start":
                order.setdefault(e.worker, len(order))
        pairs = [(s.worker, s) for s in result.segments if s.worker and s.kind != "queued"]
    else:
        for cpu in range(result.scenario.cpus):
            order[f"cpu{cpu}"] = cpu
        pairs = [(f"cpu{s.cpu}", s) for s in result.segments if s.kind == "burn"]
    return list(order), pairs


def _pyplot() -> Any:
    import matplotlib

    if "matplotlib.pyplot" not in sys.modules and not os.environ.get("MPLBACKEND"):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _colors(result: SimResult) -> dict[str, str]:
    return {w.name: PALETTE[i % len(PALETTE)] for i, w in enumerate(result.scenario.works)}


def gantt(
    result: SimResult,
    by: str = "work",
    ax: Any = None,
    title: str | None = None,
    kinds: Sequence[str] = KINDS,
) -> Any:
    """A matplotlib ``Figure``: one row per work item, worker or CPU (``by``).

    Pass ``ax`` to draw into an existing axes (the figure of ``ax`` is returned).
    """
    from matplotlib.patches import Patch

    plt = _pyplot()

    labels, pairs = _rows(result, by)
    index = {label: i for i, label in enumerate(labels)}
    colors = _colors(result)
    if ax is None:
        fig, ax = plt.subplots(
            figsize=(9, 0.45 * max(len(labels), 2) + 1.6), layout="constrained"
        )
        plt.close(fig)
    else:
        fig = ax.figure
    grouped: dict[tuple[str, str, str], list[tuple[float, float]]] = {}
    for row, seg in pairs:
        if seg.kind in kinds and row in index:
            grouped.setdefault((row, seg.kind, seg.work), []).append(
                (float(seg.start), float(seg.end) - float(seg.start))
            )
    style: dict[str, dict[str, Any]] = {
        "burn": {"alpha": 1.0},
        "sleep": {"alpha": 0.35, "hatch": "///"},
        "wait": {"facecolor": "none", "linestyle": "--"},
        "queued": {"alpha": 0.25},
    }
    for (row, kind, work), spans in grouped.items():
        y = index[row]
        color = "#999999" if kind == "queued" else colors.get(work, "#333333")
        kw = dict(style[kind])
        if kw.get("facecolor") == "none":
            kw["edgecolor"] = color
        else:
            kw["facecolor"] = color
            kw["edgecolor"] = color if kind != "sleep" else "#444444"
        ax.broken_barh(spans, (y - 0.35, 0.7), **kw)
    if len(pairs) <= LABEL_LIMIT:
        for row, seg in pairs:
            if seg.kind == "burn" and row in index and by != "work":
                mid = (float(seg.start) + float(seg.end)) / 2
                ax.text(mid, index[row], seg.work, ha="center", va="center", fontsize=8,
                        color="white")
    ax.set_yticks(range(len(labels)))
    ax.set_yticklabels(labels)
    ax.invert_yaxis()
    ax.set_xlabel("time (ms)")
    end = float(result.stats["makespan_ms"]) or 1.0
    ax.set_xlim(0, end * 1.02)
    ax.grid(axis="x", alpha=0.3)
    sc = result.scenario
    ax.set_title(title or f"{sc.name}: {sc.model}, {sc.cpus} CPU{'s' if sc.cpus > 1 else ''}")
    legend = [Patch(facecolor="#555555", label=KIND_LABELS["burn"]),
              Patch(facecolor="#555555", alpha=0.35, hatch="///", label=KIND_LABELS["sleep"]),
              Patch(fill=False, linestyle="--", label=KIND_LABELS["wait"]),
              Patch(facecolor="#999999", alpha=0.25, label=KIND_LABELS["queued"])]
    present = {kind for (_, kind, _) in grouped}
    shown = [p for p, k in zip(legend, ("burn", "sleep", "wait", "queued"), strict=True)
             if k in present]
    ax.legend(handles=shown, loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=4,
              fontsize=8, frameon=False)
    return fig


def gantt_plotly(result: SimResult, by: str = "work", title: str | None = None) -> Any:
    """An interactive plotly ``Figure`` (hover shows work, worker, CPU, times).

    Raises ImportError with an install hint when plotly is missing.
    """
    try:
        import plotly.graph_objects as go
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("gantt_plotly needs plotly: pip install 'khttpd_py[book]'") from exc
    labels, pairs = _rows(result, by)
    colors = _colors(result)
    fig = go.Figure()
    for kind in KINDS:
        rows = [(row, s) for row, s in pairs if s.kind == kind]
        if not rows:
            continue
        marker: dict[str, Any] = {
            "color": ["#999999" if kind == "queued" else colors.get(s.work, "#333")
                      for _, s in rows],
        }
        if kind == "sleep":
            marker["pattern"] = {"shape": "/"}
            marker["opacity"] = 0.45
        elif kind in ("wait", "queued"):
            marker["opacity"] = 0.3
        fig.add_trace(
            go.Bar(
                name=KIND_LABELS[kind],
                orientation="h",
                y=[row for row, _ in rows],
                x=[float(s.end) - float(s.start) for _, s in rows],
                base=[float(s.start) for _, s in rows],
                marker=marker,
                customdata=[[s.work, s.worker or "-", "-" if s.cpu is None else s.cpu,
                             s.start, s.end] for _, s in rows],
                hovertemplate=(
                    "%{customdata[0]} " + kind + "<br>worker %{customdata[1]}"
                    "<br>cpu %{customdata[2]}<br>%{customdata[3]} - %{customdata[4]} ms"
                    "<extra></extra>"
                ),
            )
        )
    sc = result.scenario
    fig.update_layout(
        barmode="overlay",
        title=title or f"{sc.name}: {sc.model}, {sc.cpus} CPU{'s' if sc.cpus > 1 else ''}",
        xaxis_title="time (ms)",
        yaxis={"categoryorder": "array", "categoryarray": labels[::-1]},
        height=160 + 28 * max(len(labels), 2),
        legend={"orientation": "h"},
    )
    return fig
