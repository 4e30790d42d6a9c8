"""The book's live explorers: ipywidgets controls that re-run the model on every change.

One function per explorer, so a chapter cell (in JupyterLab), the online book's *Run live*
button (in the reader's browser, JupyterLite's REPL) and a reader's own console all show
the same thing by calling it:

* :func:`pid_budget_explorer` (chapter 2): the legacy workqueues' thread count against the
  PID space, recomputed by :func:`khttpd_py.sim.pid_budget`;
* :func:`sim_explorer` (chapter 3): the CMWQ simulator on items typed in its spec grammar,
  with the text timeline and the Gantt chart.

Widgets need a kernel: on the static page they are frozen, which is why the live path exists.
"""

from __future__ import annotations

from khttpd_py.sim import pid_budget, simulate

CPU_CHOICES = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096]
"""The CPU counts of chapter 2's slider (powers of two, up to the 4096 of the docs' example)."""

FLAGS = ["bound", "cpu_intensive", "unbound", "highpri"]
"""The workqueue flags chapter 3 lets the reader choose."""

DOC_ITEMS = "w0=burn5,sleep10,burn5; w1=burn5,sleep10; w2=burn5,sleep10"
"""The kernel documentation's three work items, in the simulator's spec grammar."""


def pid_budget_explorer(cpus: int = 64, mt: int = 100, st: int = 20):
    """Sliders for CPUs, MT and ST workqueues; prints the thread count and whether it fits."""
    import ipywidgets as widgets

    cpus_w = widgets.SelectionSlider(options=CPU_CHOICES, value=cpus, description="CPUs")
    mt_w = widgets.IntSlider(value=mt, min=0, max=1000, step=10, description="MT wqs")
    st_w = widgets.IntSlider(value=st, min=0, max=200, step=5, description="ST wqs")

    def show_budget(cpus: int, mt: int, st: int) -> None:
        budget = pid_budget(cpus, mt, st)
        print(budget.problem_text())
        print(budget.answer_text())

    out = widgets.interactive_output(show_budget, {"cpus": cpus_w, "mt": mt_w, "st": st_w})
    return widgets.VBox([cpus_w, mt_w, st_w, out])


def sim_explorer(spec: str = DOC_ITEMS, flags: str = "bound", max_active: int = 0,
                 cpus: int = 1):
    """A text box of work items (``;``-separated specs) and the workqueue's settings.

    Every change runs :func:`khttpd_py.sim.simulate` and shows its timeline and chart; an
    item the grammar rejects prints the simulator's message instead.
    """
    import ipywidgets as widgets
    from IPython.display import display

    from khttpd_py.booktools import gantt_figure, show_plotly

    spec_w = widgets.Text(value=spec, description="items", layout={"width": "95%"})
    flags_w = widgets.Dropdown(options=FLAGS, value=flags, description="flags")
    max_w = widgets.IntSlider(value=max_active, min=0, max=8, description="max_active")
    cpus_w = widgets.IntSlider(value=cpus, min=1, max=4, description="CPUs")

    def run(spec: str, flags: str, max_active: int, cpus: int) -> None:
        items = [s.strip() for s in spec.split(";") if s.strip()]
        try:
            result = simulate(items, flags=flags, max_active=max_active, cpus=cpus)
        except ValueError as exc:
            print("invalid:", exc)
            return
        print(result.timeline_text())
        display(show_plotly(gantt_figure(result, f"done at {result.stats['makespan_ms']} ms")))

    out = widgets.interactive_output(run, {"spec": spec_w, "flags": flags_w,
                                           "max_active": max_w, "cpus": cpus_w})
    return widgets.VBox([spec_w, flags_w, max_w, cpus_w, out])
