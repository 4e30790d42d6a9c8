"""A deterministic simulator of legacy and concurrency-managed workqueues.

It replays ``Documentation/core-api/workqueue.rst``'s example scenarios and any
problem you write, under three execution models -- ``legacy-st``, ``legacy-mt``
and ``cmwq`` -- with the concurrency-management rules taken from
``khttpd_py.workqueue.policy`` (the code the threaded workqueue runs), driven by
simulated milliseconds instead of threads.

For notebooks and exercises::

    from khttpd_py.sim import simulate, gantt
    r = simulate("doc-c")                      # a named scenario
    r = simulate(["w0=burn5,sleep10,burn5", "w1=burn5,sleep10", "w2=burn5,sleep10"],
                 model="cmwq", max_active=2)   # your own items
    print(r.timeline_text()); r.stats["cm_wakeups"]; r.start_time("w2"); gantt(r)

The command line is ``python -m khttpd_py sim --help``.
"""

from __future__ import annotations

from collections.abc import Sequence

from khttpd_py.sim.engine import Simulator
from khttpd_py.sim.pidbudget import PidBudget, max_mt_workqueues, pid_budget
from khttpd_py.sim.result import Event, Segment, SimResult
from khttpd_py.sim.scenarios import SCENARIOS, get_scenario, list_scenarios, random_scenario
from khttpd_py.sim.spec import (
    MODELS,
    Scenario,
    SpecError,
    WorkSpec,
    WqSpec,
    parse_work,
    parse_wq_flags,
)

__all__ = [
    "MODELS",
    "SCENARIOS",
    "Event",
    "PidBudget",
    "Scenario",
    "Segment",
    "SimResult",
    "Simulator",
    "SpecError",
    "WorkSpec",
    "WqSpec",
    "build_scenario",
    "gantt",
    "gantt_plotly",
    "get_scenario",
    "list_scenarios",
    "max_mt_workqueues",
    "pid_budget",
    "random_scenario",
    "simulate",
]


def build_scenario(
    scenario: Scenario | str | Sequence[str | WorkSpec] | None = None,
    *,
    model: str | None = None,
    cpus: int | None = None,
    wqs: Sequence[str | WqSpec] | int | None = None,
    flags: str | int | None = None,
    max_active: int | None = None,
    seed: int | None = None,
) -> Scenario:
    """Turn what a caller has in hand into a validated :class:`Scenario`.

    * a Scenario or a scenario name (``"doc-c"``): ``model``, ``cpus``, ``flags``
      and ``max_active``, when given, override the scenario's (flags and
      max_active for every one of its workqueues);
    * a list of work specs (``"w0=burn5,sleep10@q0"`` or :class:`WorkSpec`):
      ``wqs`` lists workqueues (``"q1:cpu_intensive:2"``) or, as an int N,
      creates q0..qN-1; ``flags``/``max_active`` are the defaults for workqueues
      not spelled out, including those only named by an item;
    * nothing: a random problem from ``seed`` (0 if None).
    """
    flag_bits = None if flags is None else parse_wq_flags(flags)
    if isinstance(scenario, Scenario | str):
        base = get_scenario(scenario) if isinstance(scenario, str) else scenario
        return base.with_overrides(model, cpus, flag_bits, max_active).validate()
    if scenario is None and wqs is None:
        result = random_scenario(0 if seed is None else seed, cpus, model or "cmwq")
        return result.with_overrides(None, None, flag_bits, max_active).validate()
    ncpus = 1 if cpus is None else cpus
    dflt_flags = flag_bits or 0
    dflt_max = 0 if max_active is None else max_active
    wq_specs: list[WqSpec] = []
    if isinstance(wqs, int):
        wq_specs = [WqSpec(f"q{i}", dflt_flags, dflt_max) for i in range(wqs)]
    elif wqs is not None:
        for wq in wqs:
            if not isinstance(wq, WqSpec):
                wq = WqSpec.parse(wq, dflt_flags, dflt_max)
            wq_specs.append(wq)
    works: list[WorkSpec] = []
    for item in scenario or []:
        if isinstance(item, WorkSpec):
            works.append(item)
        else:
            works.extend(parse_work(item, len(works), ncpus))
    known = {wq.name for wq in wq_specs}
    for work in works:
        if work.wq not in known:
            wq_specs.append(WqSpec(work.wq, dflt_flags, dflt_max))
            known.add(work.wq)
    return Scenario(
        name="custom", model=model or "cmwq", cpus=ncpus, wqs=wq_specs, works=works, seed=seed
    ).validate()


def simulate(
    scenario: Scenario | str | Sequence[str | WorkSpec] | None = None,
    *,
    model: str | None = None,
    cpus: int | None = None,
    wqs: Sequence[str | WqSpec] | int | None = None,
    flags: str | int | None = None,
    max_active: int | None = None,
    seed: int | None = None,
    max_threads: int | None = None,
) -> SimResult:
    """Run one simulation and return its :class:`SimResult`.

    Arguments are those of :func:`build_scenario`; ``max_threads`` caps the
    number of worker threads (creation fails beyond it, as when PIDs run out).
    Raises :class:`SpecError` for an invalid problem.
    """
    built = build_scenario(
        scenario, model=model, cpus=cpus, wqs=wqs, flags=flags, max_active=max_active, seed=seed
    )
    return Simulator(built, max_threads=max_threads).run()


def gantt(result: SimResult, **kwargs: object) -> object:
    """A matplotlib Figure of ``result`` (see :func:`khttpd_py.sim.charts.gantt`).

    Imported on first use so that simulating never pays for matplotlib.
    """
    from khttpd_py.sim import charts

    return charts.gantt(result, **kwargs)  # type: ignore[arg-type]


def gantt_plotly(result: SimResult, **kwargs: object) -> object:
    """A plotly Figure of ``result`` (see :func:`khttpd_py.sim.charts.gantt_plotly`)."""
    from khttpd_py.sim import charts

    return charts.gantt_plotly(result, **kwargs)  # type: ignore[arg-type]
