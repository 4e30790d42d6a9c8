"""Named problems (the kernel documentation's four scenarios, khttpd) and seeded random ones.

The doc scenarios are the ground truth the simulator is tested against
(Documentation/core-api/workqueue.rst, "Example Execution Scenarios"): one CPU,
w0 = burn 5, sleep 10, burn 5 ms; w1, w2 = burn 5, sleep 10 ms; all queued at 0
on bound workqueue q0 in the order w0, w1, w2.

Random problems come from a private ``random.Random(seed)`` so that an exercise
can hand every student a different problem that the grader can regenerate.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import replace

from khttpd_py.sim.spec import (
    US_PER_MS,
    Scenario,
    SpecError,
    WorkSpec,
    WqSpec,
    parse_phases,
    parse_wq_flags,
)

PID_BUDGET = "pid-budget"
"""Not a simulation: the legacy thread/PID arithmetic (see ``pidbudget``)."""


def _doc_works(wq_of_w1_w2: str = "q0") -> list[WorkSpec]:
    w0 = parse_phases("burn5,sleep10,burn5")
    w12 = parse_phases("burn5,sleep10")
    return [
        WorkSpec("w0", w0, "q0"),
        WorkSpec("w1", w12, wq_of_w1_w2),
        WorkSpec("w2", w12, wq_of_w1_w2),
    ]


def doc_a() -> Scenario:
    return Scenario(
        name="doc-a",
        model="legacy-mt",
        cpus=1,
        wqs=[WqSpec("q0")],
        works=_doc_works(),
        description=(
            "workqueue.rst scenario A, the original workqueue: the wq's single thread on "
            "the CPU runs w0, w1, w2 one after the other, sleeps included"
        ),
    )


def doc_b() -> Scenario:
    return Scenario(
        name="doc-b",
        model="cmwq",
        cpus=1,
        wqs=[WqSpec("q0", 0, 0)],
        works=_doc_works(),
        description=(
            "workqueue.rst scenario B, cmwq with max_active >= 3 (here 0, the default): "
            "when a running item sleeps, an idle kworker starts the next one"
        ),
    )


def doc_c() -> Scenario:
    return Scenario(
        name="doc-c",
        model="cmwq",
        cpus=1,
        wqs=[WqSpec("q0", 0, 2)],
        works=_doc_works(),
        description=(
            "workqueue.rst scenario C, cmwq with max_active == 2: w2 waits inactive "
            "until one of w0, w1 retires"
        ),
    )


def doc_d() -> Scenario:
    return Scenario(
        name="doc-d",
        model="cmwq",
        cpus=1,
        wqs=[WqSpec("q0"), WqSpec("q1", parse_wq_flags("cpu_intensive"), 0)],
        works=_doc_works("q1"),
        description=(
            "workqueue.rst scenario D, w1 and w2 on q1 with WQ_CPU_INTENSIVE: they do not "
            "count for concurrency, so w2 starts right after w1 does"
        ),
    )


KHTTPD_CONNECTIONS = 16
KHTTPD_SPACING_US = 500


def khttpd() -> Scenario:
    """Connections as work items, queued by the accept daemon from CPU 0.

    Each connection burns a little (parse, respond) and sleeps waiting for the
    client's next request, three requests per connection.  With WQ_UNBOUND (the
    seed's commit) the burns spread over every CPU; a bound workqueue puts them
    all on the queueing CPU's pool, so one CPU does all the work.
    """
    phases = parse_phases("burn2,sleep10,burn2,sleep10,burn2")
    works = [
        WorkSpec(f"c{i}", phases, "khttpd", 0, i * KHTTPD_SPACING_US)
        for i in range(KHTTPD_CONNECTIONS)
    ]
    return Scenario(
        name="khttpd",
        model="cmwq",
        cpus=4,
        wqs=[WqSpec("khttpd", parse_wq_flags("unbound"), 0)],
        works=works,
        description=(
            f"the accept daemon on CPU 0 queues one work item per connection "
            f"({KHTTPD_CONNECTIONS} connections, one every {KHTTPD_SPACING_US / US_PER_MS} ms); "
            "each burns 2 ms per request and sleeps 10 ms waiting for the client's next one. "
            "The workqueue is WQ_UNBOUND as in the seed's commit; rerun with --flags bound "
            "to see every connection crowd onto CPU 0"
        ),
    )


SCENARIOS: dict[str, Callable[[], Scenario]] = {
    "doc-a": doc_a,
    "doc-b": doc_b,
    "doc-c": doc_c,
    "doc-d": doc_d,
    "khttpd": khttpd,
}
"""Simulation scenarios by name; each call returns a fresh Scenario."""


def list_scenarios() -> list[tuple[str, str]]:
    """(name, description) of every named scenario, pid-budget included."""
    rows = [(name, make().description) for name, make in SCENARIOS.items()]
    rows.append(
        (
            PID_BUDGET,
            "legacy thread arithmetic: CPUs x MT workqueues + ST workqueues against pid_max "
            "(--cpus, --wqs, --st-wqs, --pid-max, --reserved)",
        )
    )
    return rows


def get_scenario(name: str) -> Scenario:
    """A fresh copy of the named scenario; SpecError names the valid ones otherwise."""
    make = SCENARIOS.get(name)
    if make is None:
        valid = ", ".join([*SCENARIOS, PID_BUDGET])
        raise SpecError(f"unknown scenario {name!r} (valid: {valid})")
    scenario = make()
    scenario.args = ["--scenario", name]
    return scenario


# --- random problems ------------------------------------------------------------------------
RANDOM_FLAGS = ["bound", "bound", "cpu_intensive", "highpri", "unbound", "ordered"]
RANDOM_MAX_ACTIVE = [0, 0, 1, 2, 3]


def random_scenario(seed: int, cpus: int | None = None, model: str = "cmwq") -> Scenario:
    """A small problem drawn from ``random.Random(seed)``: same seed, same problem.

    One to three workqueues with flags and max_active, three to five items of one
    to three phases, mostly queued at 0, on one or two CPUs unless ``cpus`` is given.
    Every draw is made in a fixed order, so a seed keeps its problem even if the
    caller changes ``cpus`` or ``model`` (only the CPU choices adapt).
    """
    rng = random.Random(seed)
    drawn_cpus = rng.choice([1, 1, 2])
    ncpus = cpus if cpus is not None else drawn_cpus
    nwqs = rng.randint(1, 3)
    wqs = []
    for i in range(nwqs):
        flags = parse_wq_flags(rng.choice(RANDOM_FLAGS) if i else "bound")
        wqs.append(WqSpec(f"q{i}", flags, rng.choice(RANDOM_MAX_ACTIVE)))
    works = []
    for i in range(rng.randint(3, 5)):
        nphases = rng.choice([1, 2, 2, 3])
        text = []
        for p in range(nphases):
            if p % 2 == 0:
                text.append(f"burn{rng.randint(1, 6)}")
            else:
                text.append(f"sleep{rng.randint(2, 15)}")
        at = rng.choice([0, 0, 0, rng.randint(1, 10)])
        wq = rng.choice(wqs).name
        cpu = rng.randrange(2) % ncpus
        works.append(WorkSpec(f"w{i}", parse_phases(",".join(text)), wq, cpu, at * US_PER_MS))
    works.sort(key=lambda w: w.at)  # stable: equal times keep their drawn order
    works = [replace(w, name=f"w{i}") for i, w in enumerate(works)]  # names in queue order
    return Scenario(
        name=f"random-{seed}",
        model=model,
        cpus=ncpus,
        wqs=wqs,
        works=works,
        description=f"a random problem from seed {seed}",
        seed=seed,
        args=["-s", str(seed)],
    )
