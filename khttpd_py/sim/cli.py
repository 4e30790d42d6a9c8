"""``python -m khttpd_py sim``: the simulator as an OSTEP-style homework generator.

Like the OSTEP simulators, a run prints the arguments that reproduce it and the
problem, then asks the reader to predict the outcome; ``-c`` prints the answers
(timeline and counters).  ``-s SEED`` without ``--work`` draws a small random
problem, so every student can get a different but reproducible one.  ``--json``
is for programs: the events and counters, nothing else on stdout.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import textwrap
from typing import NoReturn

from khttpd_py.sim import build_scenario
from khttpd_py.sim.engine import Simulator
from khttpd_py.sim.pidbudget import PID_MAX_DEFAULT, PidBudget
from khttpd_py.sim.result import SimResult
from khttpd_py.sim.scenarios import PID_BUDGET, list_scenarios
from khttpd_py.sim.spec import MAX_ITEMS, MODELS, Scenario, SpecError, fmt_ms
from khttpd_py.workqueue import policy

PROG = "python -m khttpd_py sim"
ITEMS_SHOWN = 40
"""A problem with more items lists only the first ones (the command reproduces all)."""
DOC_TEXT_EVENTS = 40
"""Small timelines are also printed in the kernel documentation's wording."""
GANTT_FORMATS = {".png": "matplotlib", ".svg": "matplotlib", ".pdf": "matplotlib",
                 ".html": "plotly"}
"""--gantt FILE suffixes and the library that draws them.  The suffix is required:
without one matplotlib silently appends ``.png`` to the name we report."""
INSTALL_HINT = {"matplotlib": "pip install 'khttpd_py[plot]'",
                "plotly": "pip install 'khttpd_py[book]'"}

EPILOG = f"""\
work items (--work, repeatable):
  [NAME=]PHASE{{,PHASE}}[@WQ][:cpu=N|rr][:at=MS][:n=COUNT][:every=MS]
  PHASE is 'burn MS' (use the CPU) or 'sleep MS' (block, e.g. waiting for a client);
  short forms b/s, e.g. burn5 or b5; times in ms, decimals allowed (1 us resolution).
  @WQ   the workqueue (default q0; created with --flags/--max-active if not given)
  cpu=  the CPU that queues the item (queue_work_on); rr spreads n copies round-robin
  at=   queue time (default 0); items queued at the same time go in command-line order
  n=    COUNT copies named NAME0..; every= spaces their queue times (at most {MAX_ITEMS:,}
        items in all)
  e.g.  --work w0=burn5,sleep10,burn5 --work w1=burn5,sleep10 --work w2=burn5,sleep10

workqueues (--wq, repeatable):  NAME[:FLAGS[:MAX_ACTIVE]]
  FLAGS: bound (none), unbound, highpri, cpu_intensive, ordered (= alloc_ordered_workqueue),
  mem_reclaim (the wq gets a rescuer thread: progress when --max-threads stops worker
  creation), freezable and sysfs (accepted, no effect here)
  MAX_ACTIVE: 0 = default ({policy.WQ_DFL_ACTIVE}); clamped to 1..{policy.WQ_MAX_ACTIVE} \
with a warning
  (unbound: 1..max({policy.WQ_MAX_ACTIVE}, 4 x CPUs), as in Linux 6.1)
  e.g.  --wq q0:bound:2 --wq q1:cpu_intensive

models:
""" + "\n".join(f"  {name:<10} {text}" for name, text in MODELS.items()) + f"""

timing rules (those of workqueue.rst's examples):
  a CPU burns one item at a time, first come first served, no preemption (highpri items
  queue ahead of normal ones); bound items burn on their pool's CPU, unbound ones on any
  idle CPU; queueing, waking and creating workers take no time; a cmwq pool starts with
  one idle kworker (each CPU has a normal and a highpri pool); simultaneous events go:
  burns ending, sleeps ending, items queued, workers continuing, in the order they arose.

examples:
  {PROG} --scenario doc-c            predict scenario C of workqueue.rst
  {PROG} --scenario doc-c -c         ... and see the answer
  {PROG} -s 7 -c                     a random problem and its answer
  {PROG} --scenario khttpd --flags bound -c --gantt bound.png
  {PROG} --scenario pid-budget --cpus 4096 --wqs 8 -c
"""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage dump) and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"sim: error: {message} (see --help)\n")


def make_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog=PROG,
        description="Deterministic simulator of legacy and concurrency-managed workqueues "
        "(the scenarios of the kernel's workqueue.rst and your own).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--scenario", metavar="NAME", help="a named problem (see --list-scenarios)")
    p.add_argument("--work", action="append", default=[], metavar="SPEC",
                   help="a work item (repeatable; grammar below)")
    p.add_argument("--wq", action="append", default=[], metavar="SPEC",
                   help="a workqueue NAME[:FLAGS[:MAX_ACTIVE]] (repeatable)")
    p.add_argument("--model", choices=list(MODELS), help="execution model (default cmwq)")
    p.add_argument("--cpus", type=int, metavar="N", help="number of CPUs (default 1)")
    p.add_argument("--wqs", type=int, metavar="N",
                   help="create workqueues q0..qN-1 (pid-budget: MT workqueues)")
    p.add_argument("--max-active", type=int, metavar="N",
                   help="max_active of workqueues not given by --wq (0 = default)")
    p.add_argument("--flags", metavar="F,F", help="flags of workqueues not given by --wq")
    p.add_argument("-s", "--seed", type=int, metavar="SEED",
                   help="random problem from this seed when no --work/--scenario (default 0)")
    p.add_argument("-c", "--compute", action="store_true", help="print the answers")
    p.add_argument("--json", action="store_true", help="print events and counters as JSON")
    p.add_argument("--list-scenarios", action="store_true", help="list named scenarios")
    p.add_argument("--gantt", metavar="FILE",
                   help="write a Gantt chart: .png/.svg/.pdf (matplotlib) or .html (plotly)")
    p.add_argument("--gantt-by", choices=["work", "worker", "cpu"], default="work",
                   help="Gantt rows (default work)")
    p.add_argument("--limit", type=int, metavar="N", help="print at most N timeline lines")
    p.add_argument("--max-threads", type=int, metavar="N",
                   help="worker threads that may exist at once (creation fails beyond)")
    p.add_argument("--st-wqs", type=int, default=0, metavar="N",
                   help="pid-budget: single-threaded workqueues (default 0)")
    p.add_argument("--pid-max", type=int, default=PID_MAX_DEFAULT, metavar="N",
                   help=f"pid-budget: /proc/sys/kernel/pid_max (default {PID_MAX_DEFAULT})")
    p.add_argument("--reserved", type=int, default=0, metavar="N",
                   help="pid-budget: PIDs taken by other tasks (default 0)")
    return p


def _reproduce(argv: list[str], extra: list[str]) -> str:
    """The command line that reproduces this problem (output options left out)."""
    keep: list[str] = []
    skip_next = False
    for arg in argv:
        if skip_next:
            skip_next = False
            continue
        if arg in ("-c", "--compute", "--json"):
            continue
        if arg in ("--gantt", "--gantt-by", "--limit"):
            skip_next = True
            continue
        if arg.startswith(("--gantt=", "--gantt-by=", "--limit=")):
            continue
        keep.append(arg)
    return shlex.join([*PROG.split(), *extra, *keep])


# --- pid budget ---------------------------------------------------------------------------
def _pid_budget(args: argparse.Namespace, argv: list[str]) -> int:
    import random

    rng = random.Random(args.seed) if args.seed is not None else None
    cpus = args.cpus
    if cpus is None:
        cpus = rng.choice([2, 4, 8, 16, 64, 256, 1024, 4096]) if rng else 64
    wqs = args.wqs
    if wqs is None:
        wqs = rng.randint(1, 300) if rng else 100
    budget = PidBudget(cpus, wqs, args.st_wqs, args.pid_max, args.reserved)
    if args.json:
        print(__import__("json").dumps(budget.to_dict()))
        return 0
    extra = [] if "--cpus" in argv or args.seed is not None else ["--cpus", str(cpus)]
    print(f"ARG scenario {PID_BUDGET}")
    for name, value in (("cpus", cpus), ("wqs (MT)", wqs), ("st-wqs", args.st_wqs),
                        ("pid-max", args.pid_max), ("reserved", args.reserved),
                        ("seed", args.seed)):
        if value is not None:
            print(f"ARG {name} {value}")
    print(f"# reproduce: {_reproduce(argv, extra)}\n")
    print(budget.problem_text())
    if args.compute:
        print("\nAnswers:")
        print(budget.answer_text())
    else:
        print("\nCompute the answers, then run again with -c to check them.")
    return 0


# --- simulation ------------------------------------------------------------------------------
def _build(args: argparse.Namespace) -> tuple[Scenario, list[str]]:
    """The scenario to run and arguments to add to the reproduce line."""
    extra: list[str] = []
    if args.scenario is not None:
        if args.work or args.wq or args.wqs is not None:
            raise SpecError("--scenario cannot be combined with --work, --wq or --wqs")
        scenario = build_scenario(
            args.scenario, model=args.model, cpus=args.cpus,
            flags=args.flags, max_active=args.max_active,
        )
    elif args.work or args.wq or args.wqs is not None:
        wqs: list[str] = list(args.wq)
        named = {w.split(":")[0] for w in wqs}
        for i in range(args.wqs or 0):
            if f"q{i}" not in named:
                wqs.append(f"q{i}")
        scenario = build_scenario(
            list(args.work), model=args.model, cpus=args.cpus, wqs=wqs,
            flags=args.flags, max_active=args.max_active, seed=args.seed,
        )
    else:
        seed = 0 if args.seed is None else args.seed
        if args.seed is None:
            extra = ["-s", "0"]
        scenario = build_scenario(
            None, model=args.model, cpus=args.cpus, flags=args.flags,
            max_active=args.max_active, seed=seed,
        )
    return scenario, extra


def _max_active_text(requested: int, model: str, ordered: bool, flags: int, cpus: int) -> str:
    value, _warning = policy.clamp_max_active(requested, "", flags=flags, nr_cpus=cpus)
    if ordered and model == "cmwq":
        return "1 (ordered)"
    if requested == 0:
        return f"0 (default {value})"
    if value != requested:
        return f"{requested} (clamped to {value})"
    return str(requested)


def problem_text(scenario: Scenario) -> str:
    """The problem statement: model, CPUs, workqueues and items."""
    cpus = f"{scenario.cpus} CPU{'s' if scenario.cpus > 1 else ''}"
    title = f"Problem {scenario.name}" + (f": {scenario.description}" if scenario.description
                                          else "")
    lines = textwrap.wrap(title, 92, subsequent_indent="  ")
    lines.append(f"Model: {scenario.model} ({MODELS[scenario.model]}), {cpus}")
    if scenario.model != "cmwq":
        lines.append("  (legacy models ignore workqueue flags; each thread runs one item at a "
                     "time, sleeps included)")
    lines.append("Workqueues:")
    wname = max(len(w.name) for w in scenario.wqs) if scenario.wqs else 2
    for wq in scenario.wqs:
        ma = _max_active_text(wq.max_active, scenario.model, wq.ordered, wq.flags,
                              scenario.cpus)
        lines.append(f"  {wq.name:<{wname}}  flags={wq.flags_text():<14} max_active={ma}")
    lines.append("Work items, queued in this order (ms; cpu = the CPU that queues it):")
    works = scenario.works
    iname = max([len(w.name) for w in works] + [2])
    qname = max([len(w.wq) for w in works] + [2])
    for w in works[:ITEMS_SHOWN]:
        lines.append(f"  {w.name:<{iname}}  {w.wq:<{qname}}  cpu {w.cpu:<2} "
                     f"at {fmt_ms(w.at):<5} {w.describe()}")
    if len(works) > ITEMS_SHOWN:
        lines.append(f"  ... and {len(works) - ITEMS_SHOWN} more")
    return "\n".join(lines)


def _questions(scenario: Scenario, result: SimResult) -> list[tuple[str, str]]:
    """(question, answer) pairs; the answers are printed with -c only."""
    s = result.stats
    threads = "kworkers" if scenario.model == "cmwq" else "worker threads"
    pairs: list[tuple[str, str]] = []
    stalled = s["stalled_at_ms"]
    if scenario.works:
        last = scenario.works[-1].name
        if result.times(last, "start"):
            told = f"{last} starts at {result.start_time(last)} ms on {result.worker_of(last)}"
        else:
            told = f"{last} never starts: the run stalls at {stalled} ms"
        pairs.append((f"At what time does {last} start, and which worker runs it?", told))
    pairs.append((
        "When does the last item finish (the makespan)?",
        f"{s['makespan_ms']} ms" if stalled is None
        else f"never: {s['items'] - s['finished']} items never finish (stalled at {stalled} ms)",
    ))
    pairs.append((
        f"How many {threads} exist at the end, and how many were created while the items ran?",
        f"{s['threads_end']} at the end: {s['threads_at_boot']} from boot + "
        f"{s['threads_created']} created"
        + (f" - {s['reaped']} reaped" if s["reaped"] else "")
        + f" (peak {s['peak_threads']})",
    ))
    if scenario.model == "cmwq":
        pairs.append((
            "How many concurrency-managed wake-ups (CMW) happen?",
            f"{s['cm_wakeups']}",
        ))
    return pairs


class OutputError(Exception):
    """A result could not be written (a missing directory, no plotting library):
    exit status 1, because the command line itself was fine."""


def _check_gantt_path(path: str) -> None:
    """Reject a --gantt FILE we could not write as named, before simulating.

    matplotlib would add ``.png`` to a name without a suffix (we then reported
    the wrong file), write a hidden ``.png`` into a directory given with a
    trailing slash, and raise ValueError for a suffix it does not know.
    """
    suffix = os.path.splitext(path)[1].lower()
    if path.endswith(("/", os.sep)) or os.path.isdir(path):
        raise SpecError(f"--gantt {path!r} is a directory; give a file name such as "
                        f"{os.path.join(path, 'gantt.png')!r}")
    if suffix not in GANTT_FORMATS:
        *most, last = GANTT_FORMATS
        raise SpecError(f"--gantt {path!r}: the file name must end in "
                        f"{', '.join(most)} or {last} (the chart's format)")


def _write_gantt(result: SimResult, path: str, by: str) -> None:
    """Write the chart in the format the suffix names; raise OutputError, not a
    traceback, when the library is missing or the file cannot be written."""
    suffix = os.path.splitext(path)[1].lower()
    library = GANTT_FORMATS[suffix]
    try:
        from khttpd_py.sim import charts

        if library == "plotly":
            charts.gantt_plotly(result, by=by).write_html(path, include_plotlyjs="cdn")
        else:
            import matplotlib

            if "matplotlib.pyplot" not in sys.modules:
                matplotlib.use("Agg")
            charts.gantt(result, by=by).savefig(path, dpi=120, format=suffix[1:])
    except ImportError:
        raise OutputError(f"--gantt {path!r} needs {library}: {INSTALL_HINT[library]}") \
            from None
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise OutputError(f"cannot write the Gantt chart {path!r}: {reason}") from None
    print(f"sim: wrote {path}", file=sys.stderr)


def _run(args: argparse.Namespace, argv: list[str]) -> int:
    scenario, extra = _build(args)
    result = Simulator(scenario, max_threads=args.max_threads).run()
    for warning in result.warnings:
        print(f"sim: warning: {warning}", file=sys.stderr)
    reproduce = _reproduce(argv, extra)
    scenario.args = shlex.split(reproduce)[len(PROG.split()):]
    if args.gantt:
        _write_gantt(result, args.gantt, args.gantt_by)
    if args.json:
        print(result.to_json())
        return 0
    print(f"ARG model {scenario.model}")
    print(f"ARG cpus {scenario.cpus}")
    if scenario.seed is not None:
        print(f"ARG seed {scenario.seed}")
    if args.scenario:
        print(f"ARG scenario {args.scenario}")
    print(f"# reproduce: {reproduce}\n")
    print(problem_text(scenario))
    questions = _questions(scenario, result)
    if not args.compute:
        print("\nPredict, assuming one CPU burns one item at a time in FIFO order and that")
        print("queueing, waking and creating workers take no time:")
        for i, (question, _) in enumerate(questions, 1):
            print(f"  {i}. {question}")
        print("Then run again with -c to check.")
        return 0
    print("\nTimeline:")
    print(result.timeline_text(limit=args.limit))
    if len(result.events) <= DOC_TEXT_EVENTS:
        print("\nIn workqueue.rst's words:")
        print("  " + result.doc_text())
    print("\nCounters:")
    print(result.stats_text())
    print("\nAnswers:")
    for i, (_, answer) in enumerate(questions, 1):
        print(f"  {i}. {answer}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m khttpd_py sim``; returns the exit status."""
    args_list = sys.argv[1:] if argv is None else list(argv)
    args = make_parser().parse_args(args_list)
    try:
        if args.list_scenarios:
            for name, description in list_scenarios():
                print(f"{name:<11} {description}")
            return 0
        for option in ("cpus", "wqs", "limit", "max_threads"):
            value = getattr(args, option)
            if value is not None and value < (1 if option == "cpus" else 0):
                raise SpecError(f"--{option.replace('_', '-')} must be >= "
                                f"{1 if option == 'cpus' else 0}, got {value}")
        if args.scenario == PID_BUDGET:
            if args.gantt:
                raise SpecError("--gantt: the pid-budget scenario is arithmetic, with no "
                                "timeline to chart")
            return _pid_budget(args, args_list)
        if args.gantt:
            _check_gantt_path(args.gantt)
        return _run(args, args_list)
    except SpecError as exc:
        print(f"sim: error: {exc}", file=sys.stderr)
        return 2
    except OutputError as exc:
        print(f"sim: error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # e.g. piped into head
        sys.stderr.close()
        return 0


__all__ = ["main", "make_parser", "problem_text"]
