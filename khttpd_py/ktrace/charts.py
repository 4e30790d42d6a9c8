"""The recorded traces as a figure: which thread served which connection, and when.

One row per thread that served a connection (a kworker in the cmwq modes, a
``khttpd-conn`` thread in kthread mode), one bar per connection from the moment
its function started to the moment it returned, coloured by the load's phase.
A drop-down picks the mode; every mode's traces are in the figure and the menu
toggles them, so the page needs no Python to switch.  Plain dicts rather than
``plotly.graph_objects`` until the end, as in :mod:`khttpd_py.booktools`.
"""

from __future__ import annotations

from typing import Any

from khttpd_py.ktrace.model import ModeTrace, Service
from khttpd_py.ktrace.recording import Recording

PHASE_COLORS = {
    "seq": "#1f77b4",
    "burst": "#ff7f0e",
    "hold": "#d62728",
    "htstress": "#2ca02c",
}
"""The load's phases (``metadata.json``: sequential, concurrent, keep-alive holders, htstress)."""
OTHER_COLOR = "#7f7f7f"


def _row(svc: Service) -> str:
    return f"{svc.worker_comm or '?'} (pid {svc.worker_pid})"


def _rows(trace: ModeTrace) -> list[str]:
    """Thread rows in the order each thread first served a connection."""
    order: dict[str, int] = {}
    for svc in sorted(trace.services, key=lambda s: s.started_us or 0):
        order.setdefault(_row(svc), len(order))
    return list(order)


def mode_traces(trace: ModeTrace, mode: str, visible: bool) -> list[dict[str, Any]]:
    """Bar traces (one per phase) of one mode's connections, times in ms after the mode began."""
    out = []
    served = [s for s in trace.services if s.started_us is not None and s.ended_us is not None]
    phases = sorted({s.phase for s in served}, key=lambda p: list(PHASE_COLORS).index(p)
                    if p in PHASE_COLORS else len(PHASE_COLORS))
    for phase in phases:
        items = [s for s in served if s.phase == phase]
        t0 = trace.t0_us
        out.append({
            "type": "bar",
            "orientation": "h",
            "name": phase or "other",
            "legendgroup": phase,
            "visible": visible,
            "y": [_row(s) for s in items],
            "base": [(s.started_us - t0) / 1000 for s in items],
            "x": [max((s.ended_us - s.started_us) / 1000, 0.05) for s in items],
            # no outline: most bars are a few ms wide, and an outline would hide their colour
            "marker": {"color": PHASE_COLORS.get(phase, OTHER_COLOR), "line": {"width": 0}},
            "customdata": [[s.connection, (s.latency_us or 0) / 1000, s.start_cpu,
                            (s.started_us - t0) / 1000, (s.ended_us - t0) / 1000]
                           for s in items],
            "hovertemplate": (
                "%{customdata[0]} on %{y}<br>ran %{customdata[3]:.3f}-%{customdata[4]:.3f} ms, "
                "CPU %{customdata[2]}<br>queued (or forked) %{customdata[1]:.3f} ms before it "
                "started<extra>" + mode + "</extra>"
            ),
        })
    return out


def _span_ms(trace: ModeTrace) -> list[float]:
    """The x range that holds the mode's connections, with a small margin (ms after t0)."""
    served = [s for s in trace.services if s.started_us is not None and s.ended_us is not None]
    if not served:
        return [0.0, 1.0]
    lo = min(s.started_us for s in served) - trace.t0_us  # type: ignore[operator]
    hi = max(s.ended_us for s in served) - trace.t0_us  # type: ignore[operator]
    margin = max((hi - lo) * 0.03, 1000)
    return [round((lo - margin) / 1000, 3), round((hi + margin) / 1000, 3)]


def service_timeline(rec: Recording, modes: list[str] | None = None):
    """The figure: per mode, each served connection on the thread that served it.

    Returns a ``plotly.graph_objects.Figure`` with a drop-down over ``modes``
    (default: every mode of the recording), the first one shown.
    """
    import plotly.graph_objects as go

    modes = modes or rec.modes()
    data: list[dict[str, Any]] = []
    spans: list[tuple[int, int]] = []
    rows: dict[str, list[str]] = {}
    for i, mode in enumerate(modes):
        trace = rec.mode(mode)
        traces = mode_traces(trace, mode, visible=i == 0)
        spans.append((len(data), len(data) + len(traces)))
        data.extend(traces)
        rows[mode] = _rows(trace)
    tallest = max(len(r) for r in rows.values())
    height = max(360, 140 + 16 * tallest)

    def layout_for(mode: str) -> dict[str, Any]:
        return {
            "title.text": f"{mode}: {len(rec.mode(mode).services)} connections, "
                          f"{len(rows[mode])} threads served them",
            "yaxis.categoryarray": list(reversed(rows[mode])),
            "xaxis.range": _span_ms(rec.mode(mode)),
        }

    buttons = []
    for mode, (lo, hi) in zip(modes, spans, strict=True):
        visible = [lo <= j < hi for j in range(len(data))]
        buttons.append({"label": mode, "method": "update",
                        "args": [{"visible": visible}, layout_for(mode)]})
    first = layout_for(modes[0])
    layout = {
        "title": {"text": first["title.text"]},
        "barmode": "overlay",
        "height": height,
        "xaxis": {"title": {"text": "ms after the mode's trace began, just before insmod "
                                    "(guest clock, TCG)"},
                  "range": first["xaxis.range"]},
        "yaxis": {"title": {"text": "thread"}, "categoryorder": "array",
                  "categoryarray": first["yaxis.categoryarray"], "automargin": True},
        "legend": {"title": {"text": "load phase"}, "orientation": "h",
                   "y": -0.12, "yanchor": "top"},
        "updatemenus": [{"buttons": buttons, "direction": "down", "x": 1.0, "xanchor": "right",
                         "y": 1.12, "yanchor": "bottom", "showactive": True}],
        "margin": {"l": 60, "r": 20, "t": 80, "b": 90},
    }
    return go.Figure(data=data, layout=layout)
