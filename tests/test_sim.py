"""The workqueue simulator: the kernel documentation's scenarios, the models, the CLI.

Ground truth is Documentation/core-api/workqueue.rst's "Example Execution
Scenarios" (quoted in /work/shared/FACTS.md): one CPU, FIFO, no overhead;
w0 = burn 5, sleep 10, burn 5 ms; w1, w2 = burn 5, sleep 10 ms; bound wq q0.
Tests marked DERIVED check consequences the doc does not state.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from khttpd_py.sim import (
    Simulator,
    SpecError,
    WorkSpec,
    WqSpec,
    build_scenario,
    max_mt_workqueues,
    pid_budget,
    simulate,
)
from khttpd_py.sim.cli import main
from khttpd_py.sim.spec import parse_phases, parse_wq_flags
from khttpd_py.workqueue import policy

ROOT = Path(__file__).resolve().parents[1]

# --- the doc's timelines, event by event and in order ------------------------------------
DOC_EVENTS = {
    "doc-a": [
        (0, "w0", "start"), (5, "w0", "sleep"), (15, "w0", "wake"), (20, "w0", "finish"),
        (20, "w1", "start"), (25, "w1", "sleep"), (35, "w1", "wake"), (35, "w1", "finish"),
        (35, "w2", "start"), (40, "w2", "sleep"), (50, "w2", "wake"), (50, "w2", "finish"),
    ],
    "doc-b": [
        (0, "w0", "start"), (5, "w0", "sleep"), (5, "w1", "start"), (10, "w1", "sleep"),
        (10, "w2", "start"), (15, "w2", "sleep"), (15, "w0", "wake"), (20, "w0", "finish"),
        (20, "w1", "wake"), (20, "w1", "finish"), (25, "w2", "wake"), (25, "w2", "finish"),
    ],
    "doc-c": [
        (0, "w0", "start"), (5, "w0", "sleep"), (5, "w1", "start"), (10, "w1", "sleep"),
        (15, "w0", "wake"), (20, "w0", "finish"), (20, "w1", "wake"), (20, "w1", "finish"),
        (20, "w2", "start"), (25, "w2", "sleep"), (35, "w2", "wake"), (35, "w2", "finish"),
    ],
    "doc-d": [
        (0, "w0", "start"), (5, "w0", "sleep"), (5, "w1", "start"), (5, "w2", "start"),
        (10, "w1", "sleep"), (15, "w2", "sleep"), (15, "w0", "wake"), (20, "w0", "finish"),
        (20, "w1", "wake"), (20, "w1", "finish"), (25, "w2", "wake"), (25, "w2", "finish"),
    ],
}

# workqueue.rst's own sentences (reference/cmwq-notes.md section 4, verbatim).
DOC_TEXT = {
    "doc-a": "0 w0 starts and burns CPU | 5 w0 sleeps | 15 w0 wakes up and burns CPU | "
    "20 w0 finishes | 20 w1 starts and burns CPU | 25 w1 sleeps | 35 w1 wakes up and finishes | "
    "35 w2 starts and burns CPU | 40 w2 sleeps | 50 w2 wakes up and finishes",
    "doc-b": "0 w0 starts and burns CPU | 5 w0 sleeps | 5 w1 starts and burns CPU | "
    "10 w1 sleeps | 10 w2 starts and burns CPU | 15 w2 sleeps | 15 w0 wakes up and burns CPU | "
    "20 w0 finishes | 20 w1 wakes up and finishes | 25 w2 wakes up and finishes",
    "doc-c": "0 w0 starts and burns CPU | 5 w0 sleeps | 5 w1 starts and burns CPU | "
    "10 w1 sleeps | 15 w0 wakes up and burns CPU | 20 w0 finishes | 20 w1 wakes up and finishes"
    " | 20 w2 starts and burns CPU | 25 w2 sleeps | 35 w2 wakes up and finishes",
    "doc-d": "0 w0 starts and burns CPU | 5 w0 sleeps | 5 w1 and w2 start and burn CPU | "
    "10 w1 sleeps | 15 w2 sleeps | 15 w0 wakes up and burns CPU | 20 w0 finishes | "
    "20 w1 wakes up and finishes | 25 w2 wakes up and finishes",
}

DOC_WORKS = ["w0=burn5,sleep10,burn5", "w1=burn5,sleep10", "w2=burn5,sleep10"]


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def cli_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    code, out, err = run_cli(capsys, *argv, "--json")
    assert code == 0, err
    return json.loads(out)


def triples(events: list[dict]) -> list[tuple]:
    return [(e["t"], e["work"], e["event"]) for e in events]


@pytest.mark.parametrize("name", sorted(DOC_EVENTS))
def test_doc_scenarios_exact_from_cli_json(capsys: pytest.CaptureFixture[str], name: str) -> None:
    data = cli_json(capsys, "--scenario", name)
    assert triples(data["events"]) == DOC_EVENTS[name]
    for event in data["events"]:
        assert set(event) == {"t", "work", "event", "worker", "cpu"}
        assert event["cpu"] == 0


@pytest.mark.parametrize("name", sorted(DOC_TEXT))
def test_doc_scenarios_in_the_docs_own_words(name: str) -> None:
    assert simulate(name).doc_text() == DOC_TEXT[name]


def test_doc_scenario_through_python_m_subprocess() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "khttpd_py", "sim", "--scenario", "doc-c", "--json"],
        capture_output=True, text=True, cwd=ROOT, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert triples(json.loads(proc.stdout)["events"]) == DOC_EVENTS["doc-c"]


def test_doc_workers_and_counters() -> None:
    """Who ran what: a new kworker per concurrent item, one spare kept idle."""
    b = simulate("doc-b")
    assert [b.worker_of(w) for w in ("w0", "w1", "w2")] == [
        "kworker/0:0", "kworker/0:1", "kworker/0:2"]
    assert b.stats["cm_wakeups"] == 2  # w0's and w1's sleeps each woke an idle worker
    assert b.stats["threads_created"] == 3
    c = simulate("doc-c")
    assert c.stats["cm_wakeups"] == 1  # when w1 sleeps, w2 is inactive: nobody to wake
    assert c.stats["peak_in_flight"] == 2
    d = simulate("doc-d")
    # PWQ_STAT_CPU_INTENSIVE counts threshold violations of concurrency-managed workers
    # (6.5+, not modelled); WQ_CPU_INTENSIVE workers never count, so q1 shows 0, not 2.
    assert d.stats["per_wq"]["q1"]["total"] == 2
    assert d.stats["per_wq"]["q1"]["cpu_intensive"] == 0
    a = simulate("doc-a")
    assert a.stats["threads_at_boot"] == 1 and a.stats["threads_created"] == 0
    assert {e.worker for e in a.events} == {"q0/0"}


def test_derived_cmwq_max_active_1_bound_behaves_like_doc_a() -> None:
    """DERIVED (not in the doc): max_active 1 leaves one context, as the original wq had."""
    r = simulate(DOC_WORKS, model="cmwq", max_active=1)
    assert [(e.t, e.work, e.event) for e in r.events] == DOC_EVENTS["doc-a"]
    assert r.doc_text() == DOC_TEXT["doc-a"]


@pytest.mark.parametrize("model", ["legacy-st", "legacy-mt"])
def test_derived_legacy_models_on_one_cpu_behave_like_doc_a(model: str) -> None:
    """DERIVED: one thread per wq (ST) or per CPU (MT, one CPU here) serialises w0..w2."""
    r = simulate(DOC_WORKS, model=model)
    assert [(e.t, e.work, e.event) for e in r.events] == DOC_EVENTS["doc-a"]


# --- models ---------------------------------------------------------------------------------
def test_legacy_mt_threads_are_cpus_times_wqs_while_cmwq_tracks_concurrency(
    capsys: pytest.CaptureFixture[str],
) -> None:
    work = ["--work", "w=burn1,sleep30:n=5", "--cpus", "4", "--wqs", "6"]
    legacy = cli_json(capsys, *work, "--model", "legacy-mt")["stats"]
    assert legacy["threads_at_boot"] == 4 * 6
    assert legacy["peak_threads"] == 4 * 6 and legacy["threads_created"] == 0
    st = cli_json(capsys, *work, "--model", "legacy-st")["stats"]
    assert st["peak_threads"] == 6
    cmwq = cli_json(capsys, *work, "--model", "cmwq")["stats"]
    # Boot: one idle kworker in each CPU's normal and highpri pool.  Then one new
    # kworker per item that had to run while the others slept: the concurrency needed.
    assert cmwq["threads_at_boot"] == 2 * 4
    assert cmwq["threads_created"] == cmwq["peak_in_flight"] == 5
    assert cmwq["peak_threads"] == 2 * 4 + 5
    # More workqueues cost cmwq nothing.
    more = cli_json(capsys, "--work", "w=burn1,sleep30:n=5", "--cpus", "4", "--wqs", "60")
    assert more["stats"]["peak_threads"] == cmwq["peak_threads"]


def test_blocking_items_serialise_on_legacy_st_and_overlap_on_cmwq() -> None:
    works = ["w=burn1,sleep20:n=4"]
    st = simulate(works, model="legacy-st")
    assert st.stats["makespan_ms"] == 4 * 21
    assert st.order("start") == ["w0", "w1", "w2", "w3"]
    cm = simulate(works, model="cmwq")
    assert [cm.start_time(f"w{i}") for i in range(4)] == [0, 1, 2, 3]
    assert cm.stats["makespan_ms"] == 3 + 21


def test_legacy_mt_runs_each_cpus_items_on_that_cpus_thread() -> None:
    r = simulate(["a=burn5@q0:cpu=0", "b=burn5@q0:cpu=1", "c=burn5@q0:cpu=1"],
                 model="legacy-mt", cpus=2)
    assert (r.worker_of("a"), r.worker_of("b"), r.worker_of("c")) == ("q0/0", "q0/1", "q0/1")
    assert (r.start_time("a"), r.start_time("b"), r.start_time("c")) == (0, 0, 5)
    st = simulate(["a=burn5@q0:cpu=0", "b=burn5@q0:cpu=1"], model="legacy-st", cpus=2)
    assert st.start_time("b") == 5  # one thread for the whole system


def test_unbound_items_all_start_at_once() -> None:
    works = ["w=burn5:n=4"]
    unbound = simulate(works, flags="unbound", cpus=1)
    assert [unbound.start_time(f"w{i}") for i in range(4)] == [0, 0, 0, 0]
    assert all(w.startswith("kworker/u") for w in (unbound.worker_of(f"w{i}") for i in range(4)))
    assert unbound.stats["makespan_ms"] == 20  # one CPU still burns them one at a time
    bound = simulate(works, flags="bound", cpus=1)
    assert [bound.start_time(f"w{i}") for i in range(4)] == [0, 5, 10, 15]
    spread = simulate(works, flags="unbound", cpus=4)
    assert spread.stats["makespan_ms"] == 5 and spread.stats["cpu_busy_ms"] == [5, 5, 5, 5]


def test_highpri_items_do_not_wait_for_normal_concurrency() -> None:
    works = ["w0=burn10@q0", "w1=burn10@q0", "h0=burn1@qh"]
    r = simulate(works, wqs=["q0", "qh:highpri"])
    assert r.start_time("h0") == 0  # its own pool: nr_running of cpu0's normal pool is not its
    assert r.worker_of("h0") == "kworker/0:0H"
    assert r.start_time("w1") == 10  # w0 runs and counts, so w1 waits for it
    assert r.finish_time("h0") == 11  # nice -20: first in the run queue when the CPU frees
    normal = simulate(works, wqs=["q0", "qh"])
    assert normal.start_time("h0") == 20


def test_a_woken_worker_counts_in_nr_running_only_once_it_runs() -> None:
    """Since 5.1 (commit 6d25be5782e4) wq_worker_running() runs as the woken kworker
    returns from schedule(), not at wake-up.  w0 wakes at 7 while a highpri item holds
    the CPU until 15: w0's worker is runnable but not running, so the normal pool's
    nr_running stays 0, and w2, queued at 10, gets a worker of its own at once
    (need_more_worker).  Counting w0's worker at its wake-up left w2 on the worklist
    until w0's worker took it at 20."""
    r = simulate(["w0=burn5,sleep2,burn5@q0", "h=burn10@h:at=5", "w2=burn1@q0:at=10"],
                 wqs=["q0", "h:highpri"])
    assert [(e.t, e.work, e.event) for e in r.events] == [
        (0, "w0", "start"), (5, "w0", "sleep"), (5, "h", "start"), (7, "w0", "wake"),
        (10, "w2", "start"), (15, "h", "finish"), (20, "w0", "finish"), (21, "w2", "finish"),
    ]
    assert r.worker_of("w2") != r.worker_of("w0")
    waits = [(s.start, s.end) for s in r.segments if s.work == "w0" and s.kind == "wait"]
    assert waits == [(7, 15)]  # runnable, not running: it waited for the CPU


def test_a_finished_item_yields_the_cpu_to_a_waiting_burn() -> None:
    """process_one_work() ends in cond_resched(): after w1's 10 ms burn, with w0 runnable
    since 7, need_resched is long set, so w0 gets the CPU at 15 and finishes at 20; w2
    runs after it.  (Keeping the CPU through the loop would have burnt w2 at 15 and
    pushed w0 to 21, which CFS does not do.)"""
    r = simulate(["w0=burn5,sleep2,burn5", "w1=burn10", "w2=burn1"])
    assert r.finish_time("w0") == 20 and r.finish_time("w2") == 21
    waits = [(s.start, s.end) for s in r.segments if s.work == "w0" and s.kind == "wait"]
    assert waits == [(7, 15)]


def test_cpu_intensive_start_is_still_regulated() -> None:
    """Invariant 6: CPU-intensive items leave nr_running, but start only when CM lets them."""
    r = simulate(["w0=burn10@q0", "c1=burn5@q1", "c2=burn5@q1"], wqs=["q0", "q1:cpu_intensive"])
    assert r.start_time("c1") == 10  # w0 counts in nr_running until it finishes
    assert r.start_time("c2") == 10  # c1 does not count: c2 is chained right away


def test_ordered_workqueue_serialises_in_queue_order() -> None:
    works = ["a=burn2,sleep5@log:cpu=1", "b=burn1@log:cpu=0", "c=sleep3@log:cpu=1",
             "d=burn1@log:cpu=0:at=1"]
    r = simulate(works, wqs=["log:ordered"], cpus=2)
    assert r.order("start") == ["a", "b", "c", "d"]
    assert r.order("finish") == ["a", "b", "c", "d"]
    assert r.stats["peak_in_flight"] == 1
    for prev, nxt in zip("abc", "bcd", strict=True):
        assert r.start_time(nxt) >= r.finish_time(prev)
    plain = simulate(works, wqs=["log:unbound"], cpus=2)
    assert plain.stats["peak_in_flight"] > 1


def test_max_active_0_is_default_and_out_of_range_is_clamped(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run_cli(capsys, "--work", "w0=burn1", "--max-active", "0", "--json")
    assert code == 0 and err == ""
    assert json.loads(out)["stats"]["per_wq"]["q0"]["max_active"] == policy.WQ_DFL_ACTIVE == 256
    code, out, err = run_cli(capsys, "--work", "w0=burn1", "--wq", "q0:bound:9999", "--json")
    assert code == 0
    assert json.loads(out)["stats"]["per_wq"]["q0"]["max_active"] == policy.WQ_MAX_ACTIVE
    assert "warning" in err and "9999" in err and "clamping" in err
    assert len(err.strip().splitlines()) == 1


def test_unbound_max_active_is_clamped_to_wq_unbound_max_active() -> None:
    """6.1's wq_clamp_max_active(): an unbound wq's limit is WQ_UNBOUND_MAX_ACTIVE =
    max(WQ_MAX_ACTIVE, 4 * num_possible_cpus()), a per-CPU wq's WQ_MAX_ACTIVE."""
    works = ["w0=burn1@u", "w1=burn1@b"]
    big = simulate(works, wqs=["u:unbound:700", "b:bound:700"], cpus=200)
    assert big.stats["per_wq"]["u"]["max_active"] == 700
    assert big.stats["per_wq"]["b"]["max_active"] == 512
    assert [w for w in big.warnings if "max_active" in w] == [
        "workqueue: max_active 700 requested for b is out of range, clamping between 1 and 512"]
    small = simulate(works, wqs=["u:unbound:700", "b:bound:700"], cpus=2)
    assert small.stats["per_wq"]["u"]["max_active"] == 512
    assert policy.clamp_max_active(700, "u", flags=policy.WQ_UNBOUND, nr_cpus=200) == (700, None)
    value, warning = policy.clamp_max_active(900, "u", flags=policy.WQ_UNBOUND, nr_cpus=200)
    assert value == 800 and warning is not None and "between 1 and 800" in warning
    assert policy.clamp_max_active(700, "u", flags=policy.WQ_UNBOUND, nr_cpus=128)[0] == 512
    assert policy.clamp_max_active(700, "b", nr_cpus=200)[0] == 512


@pytest.mark.parametrize(
    "argv",
    [
        ["--work", "w0=burn-5"],
        ["--work", "w0=burn5:at=-1"],
        ["--work", "w0=cook5"],
        ["--work", "w0=burn"],
        ["--wq", "q0:turbo"],
        ["--flags", "nonsense"],
        ["--wq", "q0:bound:abc"],
        ["--max-active", "abc"],
        ["--cpus", "0"],
        ["--cpus", "x"],
        ["--work", "w0=burn5:cpu=3"],
        ["--work", "w0=burn5", "--work", "w0=burn1"],
        ["--scenario", "nope"],
        ["--model", "legacy"],
        ["--scenario", "doc-a", "--work", "w0=burn1"],
        ["--model", "legacy-mt", "--cpus", "4", "--wqs", "8", "--max-threads", "16",
         "--work", "w0=burn1"],
        ["--flags", "bound,unbound"],
        ["--flags", "WQ_UNBOUND|bound"],
        ["--flags", "ordered,bound", "--scenario", "doc-a"],
        ["--wq", "q0:bound,unbound:2", "--work", "w0=burn1"],
        ["--work", "w=burn1:n=10001"],
        ["--work", "w=burn1:n=9999", "--work", "a=burn1", "--work", "b=burn1"],
        ["--scenario", "pid-budget", "--gantt", "pid.png"],
    ],
)
def test_invalid_specs_exit_2_with_one_line(
    capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    with_exit = None
    try:
        code, out, err = run_cli(capsys, *argv)
    except SystemExit as exc:  # argparse-level errors exit through SystemExit
        with_exit = exc.code
        out, err = capsys.readouterr()
        code = with_exit
    assert code == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("sim: error:") and "Traceback" not in err


def test_spec_error_from_the_python_api() -> None:
    with pytest.raises(SpecError, match="unknown phase"):
        simulate(["w0=burn5,nap3"])


def test_same_seed_same_bytes_and_different_seeds_different_problems(
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, first, _ = run_cli(capsys, "-s", "11", "-c")
    _, again, _ = run_cli(capsys, "-s", "11", "-c")
    assert first == again
    problems = set()
    for seed in range(1, 7):
        _, text, _ = run_cli(capsys, "-s", str(seed))
        problems.add(text.split("Problem", 1)[1].split("Predict", 1)[0].replace(str(seed), "S"))
    assert len(problems) == 6
    # Across processes and hash seeds too: the output never depends on set/dict hashing.
    outs = []
    for hashseed in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=hashseed)
        proc = subprocess.run(
            [sys.executable, "-m", "khttpd_py", "sim", "-s", "11", "-c"],
            capture_output=True, cwd=ROOT, env=env, timeout=60,
        )
        outs.append(proc.stdout)
    assert outs[0] == outs[1] == first.encode()


def test_random_problem_without_arguments_is_seed_0(capsys: pytest.CaptureFixture[str]) -> None:
    _, plain, _ = run_cli(capsys)
    _, seeded, _ = run_cli(capsys, "-s", "0")
    assert "-s 0" in plain
    assert plain.split("\n", 3)[3] == seeded.split("\n", 3)[3]


def test_cli_asks_without_c_and_answers_with_c(capsys: pytest.CaptureFixture[str]) -> None:
    _, question, _ = run_cli(capsys, "--scenario", "doc-c")
    assert "ARG model cmwq" in question
    assert "# reproduce: python -m khttpd_py sim --scenario doc-c" in question
    assert "At what time does w2 start" in question
    assert "How many kworkers exist at the end" in question
    assert "Timeline" not in question and "kworker/0:1" not in question
    _, answer, _ = run_cli(capsys, "--scenario", "doc-c", "-c")
    assert "Timeline" in answer and "w2 starts at 20 ms on kworker/0:1" in answer
    assert DOC_TEXT["doc-c"] in answer


def test_list_scenarios(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "--list-scenarios")
    assert code == 0
    names = [line.split()[0] for line in out.splitlines()]
    assert names == ["doc-a", "doc-b", "doc-c", "doc-d", "khttpd", "pid-budget"]


def test_khttpd_scenario_unbound_spreads_bound_piles_on_cpu0() -> None:
    unbound = simulate("khttpd")
    assert all(busy > 0 for busy in unbound.stats["cpu_busy_ms"])
    bound = simulate("khttpd", flags="bound")
    assert bound.stats["cpu_busy_ms"][1:] == [0, 0, 0]
    assert bound.stats["makespan_ms"] > 2 * unbound.stats["makespan_ms"]


# --- pid budget -----------------------------------------------------------------------------
def test_pid_budget_arithmetic() -> None:
    """threads = CPUs x MT + ST; PIDs 1..pid_max-1 are usable (pid_max is one past the max)."""
    b = pid_budget(64, 100)
    assert b.threads == 6400 and b.available == 32767 and b.fits
    assert b.max_mt_wqs == 32767 // 64 == 511  # not 512: PID 0 is never handed out
    assert max_mt_workqueues(4096) == 7
    assert not pid_budget(4096, 8).fits  # 32768 threads, 32767 PIDs
    assert pid_budget(64, 10, st_wqs=40).threads == 680
    assert max_mt_workqueues(64, st_wqs=63) == (32767 - 63) // 64
    assert max_mt_workqueues(64, reserved=1000, pid_max=65536) == (65535 - 1000) // 64
    # cmwq: 2 idle kworkers per CPU, 1 in the unbound pool, a rescuer per legacy-API workqueue
    assert pid_budget(8, 1).cmwq_kworkers == 16 + 1 + 1
    assert pid_budget(64, 100, st_wqs=20).cmwq_kworkers == 128 + 1 + 120
    assert pid_budget(4096, 0).cmwq_kworkers == 8193


def test_pid_budget_cli(capsys: pytest.CaptureFixture[str]) -> None:
    data = cli_json(capsys, "--scenario", "pid-budget", "--cpus", "64", "--wqs", "512")
    assert data["threads"] == 32768 and data["fits"] is False and data["max_mt_wqs"] == 511
    _, asked, _ = run_cli(capsys, "--scenario", "pid-budget", "--cpus", "4096", "--wqs", "8")
    assert "How many workqueue worker threads" in asked and "32768" in asked
    assert "NO" not in asked
    _, told, _ = run_cli(capsys, "--scenario", "pid-budget", "--cpus", "4096", "--wqs", "8", "-c")
    assert "4096 x 8 + 0 = 32768" in told and "NO" in told
    assert "minus 0 reserved" not in told  # nothing reserved, nothing to subtract
    _, told, _ = run_cli(capsys, "--scenario", "pid-budget", "--cpus", "64", "--wqs", "8",
                         "--reserved", "1000", "-c")
    assert "PIDs 1..32767 minus 1000 reserved" in told
    code, _, err = run_cli(capsys, "--scenario", "pid-budget", "--pid-max", "1")
    assert code == 2 and err.startswith("sim: error:")


# --- cross-check: the simulator adds no rules of its own -----------------------------------
class RecordingDriver:
    """A bare PoolDriver: records wake-ups and mayday timers, never advances time."""

    def __init__(self) -> None:
        self.woken: list[policy.Worker] = []
        self.timers: list[float | None] = []

    def now(self) -> float:
        return 0.0

    def wake_worker(self, worker: policy.Worker) -> None:
        self.woken.append(worker)

    def mod_mayday_timer(self, pool: policy.WorkerPool, seconds: float) -> None:
        self.timers.append(seconds)

    def del_mayday_timer(self, pool: policy.WorkerPool) -> None:
        self.timers.append(None)


class Item(policy.WorkItem):
    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name


class Wq:
    name = "q0"
    flags = 0


def test_policy_driven_by_hand_decides_what_the_simulator_reports() -> None:
    """Feed policy.py the event sequence of doc-b (three blocking items on one CPU) by hand,
    as a threaded driver would, and check its decisions are the simulator's: who starts
    what in which order, and the CMW counter.  The threaded workqueue must match these too.
    """
    drv = RecordingDriver()
    pool = policy.WorkerPool(driver=drv, cpu=0)
    pwq = policy.PoolWorkqueue(Wq(), pool, 256)
    gens: dict[str, object] = {}
    new: list[policy.Worker] = []

    def spawn() -> policy.Worker:
        worker = pool.attach_worker()
        gens[worker.name] = pool.worker_thread(worker)
        new.append(worker)  # its thread runs once the creator has moved on
        return worker

    def run_new() -> None:
        while new:
            gen = gens[new.pop(0).name]
            assert next(gen) == (policy.IDLE,)  # nothing for it to do yet: it parks

    def step(worker: policy.Worker, value: object = None) -> tuple:
        gen = gens[worker.name]
        action = gen.send(value)  # type: ignore[attr-defined]
        while action[0] == policy.CREATE:
            action = gen.send(spawn())  # type: ignore[attr-defined]
        run_new()
        return action

    k0 = spawn()  # the pool's boot worker
    run_new()
    items = [Item(n) for n in ("w0", "w1", "w2")]
    for item in items:
        assert pool.insert_work(item, pwq)
    assert drv.woken == [k0, k0, k0]  # each queueing kicks the first idle worker
    started: list[tuple[str, str]] = []
    action = step(k0)
    assert action[0] == policy.RUN
    started.append((action[1].name, k0.name))
    runner = k0
    for _ in range(2):  # the running item sleeps: CM wakes an idle worker to start the next
        woken = pool.wq_worker_sleeping(runner)
        assert woken is not None
        action = step(woken)
        assert action[0] == policy.RUN
        started.append((action[1].name, woken.name))
        runner = woken
    assert pool.wq_worker_sleeping(runner) is None  # worklist empty: nobody to wake
    cmw = pwq.stats.cm_wakeup

    sim = simulate("doc-b")
    assert started == [(w, sim.worker_of(w)) for w in sim.order("start")]
    assert cmw == sim.stats["cm_wakeups"] == 2
    assert pool.workers_created == 4 == sim.stats["pools"][0]["workers_created"]


# --- the machinery around the model -------------------------------------------------------
def test_worker_creation_failure_delays_work_by_the_cooldown() -> None:
    """--max-threads caps kworkers (PIDs running out): the manager cools down 1 s."""
    ok = simulate("doc-b", max_threads=100)
    starved = simulate("doc-b", max_threads=3)
    assert ok.start_time("w1") == 5
    assert starved.stats["failed_creates"] >= 1
    assert starved.start_time("w1") == 20  # w0's worker picks it up when w0 finishes
    assert starved.stats["peak_threads"] == 3
    assert starved.stats["finished"] == 3


def test_a_pool_that_can_never_get_a_worker_stalls_instead_of_looping() -> None:
    """cpu0's only kworker must create a spare before working; with no thread left it
    cools down and retries forever in the kernel too (without a rescuer).  The run stops."""
    r = simulate("doc-b", max_threads=2)
    assert r.stats["stalled_at_ms"] == 1000  # the first retry finds nothing changed
    assert r.stats["finished"] == 0 and r.events == []
    assert any("stalled" in w for w in r.warnings)
    with pytest.raises(ValueError, match="never had a 'start' event"):
        r.start_time("w0")


def test_mem_reclaim_rescuer_guarantees_progress() -> None:
    """WQ_MEM_RECLAIM: when no kworker can be created, the pool's mayday timer calls the
    wq's rescuer, which runs the items itself -- one at a time, outside concurrency
    management: timeline A, 10 ms (MAYDAY_INITIAL_TIMEOUT) late."""
    r = simulate("doc-b", flags="mem_reclaim", max_threads=3)  # 2 pools' workers + rescuer
    assert [(e.t, e.work, e.event) for e in r.events] == [
        (t + 10, w, e) for t, w, e in DOC_EVENTS["doc-a"]]
    assert {e.worker for e in r.events} == {"kworker/R-q0"}
    assert r.stats["maydays"] == 1 and r.stats["rescued"] == 3
    assert r.stats["stalled_at_ms"] is None and r.stats["threads_at_boot"] == 3
    plenty = simulate("doc-b", flags="mem_reclaim")
    assert plenty.doc_text() == DOC_TEXT["doc-b"] and plenty.stats["rescued"] == 0


def test_rescuer_takes_items_activated_while_it_worked_back_to_back() -> None:
    """max_active 2: w2 is activated when w0 retires on the rescuer.  As rescuer_thread()
    does, the rescuer puts the pwq back on its mayday list and runs w2 right after w1,
    instead of leaving it for the manager's next failed creation a second later."""
    r = simulate("doc-c", flags="mem_reclaim", max_threads=3)
    assert r.start_time("w0") == 10  # the first mayday
    assert r.start_time("w2") == 45 and r.worker_of("w2") == "kworker/R-q0"
    assert r.stats["rescued"] == 3 and r.stats["maydays"] == 1


def test_maydays_come_from_the_pools_timer_10_ms_then_every_100_ms() -> None:
    """maybe_create_worker() arms the mayday timer for MAYDAY_INITIAL_TIMEOUT (10 ms) before
    trying, and pool_mayday_timeout() re-arms it every MAYDAY_INTERVAL (100 ms): a failed
    creation does not call the rescuer at once, and work queued after the rescuer is done
    waits for the next tick of the timer (the manager cools down for 1 s meanwhile)."""
    r = simulate(["w=burn1,sleep5:n=2", "late=burn1:at=50"], flags="mem_reclaim",
                 max_threads=3)
    assert r.start_time("w0") == 10 and r.worker_of("w0") == "kworker/R-q0"
    assert r.start_time("w1") == 16
    assert r.start_time("late") == 110 and r.worker_of("late") == "kworker/R-q0"
    assert r.stats["maydays"] == 2 and r.stats["rescued"] == 3
    assert r.stats["failed_creates"] == 1  # no retry before the 1 s cool-down ends
    # A creation that succeeds deletes the timer before it fires: no mayday at all.
    plenty = simulate(["w=burn1,sleep5:n=2", "late=burn1:at=50"], flags="mem_reclaim")
    assert plenty.stats["maydays"] == 0 and plenty.start_time("w0") == 0


def test_idle_workers_are_reaped_after_300_s() -> None:
    """Invariant 11: keep two idle (and a quarter of busy) workers, reap the rest after 300 s."""
    sc = build_scenario(["w=burn1,sleep10:n=6", "late=burn1:at=400000"])
    r = Simulator(sc).run()
    assert r.stats["reaped"] == 6 + 1 - 2
    early = Simulator(build_scenario(["w=burn1,sleep10:n=6", "late=burn1:at=200000"])).run()
    assert early.stats["reaped"] == 0


def test_work_spec_grammar() -> None:
    sc = build_scenario(
        ["c=b1,s2.5,b1@k:cpu=rr:n=3:every=0.5", "burn 2ms@q9:at=4"], cpus=2, wqs=["k:unbound"]
    )
    names = [(w.name, w.wq, w.cpu, w.at) for w in sc.works]
    assert names == [("c0", "k", 0, 0), ("c1", "k", 1, 500), ("c2", "k", 0, 1000),
                     ("w3", "q9", 0, 4000)]
    assert sc.works[0].spec() == "c0=burn1,sleep2.5,burn1@k"
    assert [wq.spec() for wq in sc.wqs] == ["k:unbound:0", "q9:bound:0"]
    assert build_scenario(["w0=burn2,burn3,sleep0"]).works[0].phases == (("burn", 5000),)


def test_result_api_and_json_round_trip() -> None:
    r = simulate("doc-d")
    data = json.loads(r.to_json())
    assert [tuple(e.values())[:3] for e in data["events"]] == DOC_EVENTS["doc-d"]
    assert data["problem"]["wqs"] == ["q0:bound:0", "q1:cpu_intensive:0"]
    assert r.times("w2", "start") == [5]
    lines = r.timeline_text().splitlines()
    assert lines[0].split() == ["time", "work", "event", "worker", "cpu"]
    assert lines[1].split() == ["0", "w0", "start", "kworker/0:0", "0"]
    assert "CMW wake-ups" in r.stats_text()


def test_gantt_matplotlib_figure(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    from khttpd_py.sim import gantt

    for by in ("work", "worker", "cpu"):
        fig = gantt(simulate("doc-d"), by=by)
        assert type(fig).__name__ == "Figure" and fig.axes
    out = tmp_path / "c.png"
    code, _, err = run_cli(capsys, "--scenario", "doc-c", "--gantt", str(out), "--json")
    assert code == 0 and out.stat().st_size > 1000 and "wrote" in err


def test_contradictory_flags_and_too_many_items_say_why(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """serve rejects bound with unbound; sim used to run such a wq unbound, silently.
    A huge n= used to take minutes and gigabytes; the limit is named instead."""
    code, _, err = run_cli(capsys, "--flags", "bound,unbound", "--work", "w=burn1")
    assert code == 2 and "both bound and unbound" in err
    code, _, err = run_cli(capsys, "--work", "w=burn1:n=1000000")
    assert code == 2 and "1000000 work items" in err and "at most 10000" in err
    code, out, _ = run_cli(capsys, "--work", "w=burn1:n=10000", "--json")
    assert code == 0 and json.loads(out)["stats"]["items"] == 10000
    code, out, _ = run_cli(capsys, "--flags", "bound,highpri", "--work", "w=burn1", "--json")
    assert code == 0


def test_the_api_rejects_bound_with_unbound_too() -> None:
    """Not only the CLI: a notebook's simulate(flags=...) must not quietly run unbound."""
    from khttpd_py.workqueue import policy

    with pytest.raises(ValueError, match="both bound and unbound"):
        policy.parse_flags("bound,unbound")
    with pytest.raises(SpecError, match="both bound and ordered"):
        parse_wq_flags("ordered,bound")
    with pytest.raises(SpecError, match="unknown workqueue flag 'fast'"):
        parse_wq_flags("bound,fast")
    assert parse_wq_flags("bound,highpri") == policy.WQ_HIGHPRI


@pytest.mark.parametrize(
    ("name", "status", "message"),
    [
        ("missing/dir/g.png", 1, "cannot write the Gantt chart"),
        ("g.txt", 2, "must end in .png"),
        ("g", 2, "must end in .png"),  # matplotlib would have written g.png
        ("sub/", 2, "is a directory"),  # matplotlib would have written sub/.png
    ],
)
def test_gantt_file_problems_are_one_line_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, status: int, message: str,
) -> None:
    """No traceback, no "wrote" for a file that is not there, and no stray file."""
    pytest.importorskip("matplotlib")
    (tmp_path / "sub").mkdir()
    target = str(tmp_path / name) + ("/" if name.endswith("/") else "")
    code, out, err = run_cli(capsys, "-s", "1", "--gantt", target)
    assert code == status, err
    assert out == "" and "Traceback" not in err and "wrote" not in err
    assert len(err.strip().splitlines()) == 1 and err.startswith("sim: error:")
    assert message in err
    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*"))
    assert files == ["sub"]


def test_gantt_without_matplotlib_says_what_to_install(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib fails
    code, out, err = run_cli(capsys, "-s", "1", "--gantt", str(tmp_path / "g.png"))
    assert code == 1 and out == ""
    assert err == "sim: error: --gantt " + repr(str(tmp_path / "g.png")) + \
        " needs matplotlib: pip install 'khttpd_py[plot]'\n"


def test_gantt_plotly_figure() -> None:
    pytest.importorskip("plotly")
    from khttpd_py.sim import gantt_plotly

    fig = gantt_plotly(simulate("khttpd"))
    assert type(fig).__name__ == "Figure" and len(fig.data) >= 2


# --- invariants over many random problems ---------------------------------------------------
FUZZ_FLAGS = ["bound", "cpu_intensive", "highpri", "unbound", "ordered",
              "highpri,cpu_intensive", "unbound,highpri", "mem_reclaim"]


def fuzz_problem(seed: int) -> tuple[int, list[WqSpec], list[WorkSpec]]:
    rng = random.Random(seed)
    cpus = rng.randint(1, 4)
    wqs = [WqSpec(f"q{i}", parse_wq_flags(rng.choice(FUZZ_FLAGS)), rng.choice([0, 1, 2, 3]))
           for i in range(rng.randint(1, 4))]
    works = []
    for i in range(rng.randint(1, 20)):
        phases = ",".join(f"{'burn' if p % 2 == 0 else 'sleep'}{rng.choice([0.5, 1, 2, 7])}"
                          for p in range(rng.randint(1, 5)))
        works.append(WorkSpec(f"w{i}", parse_phases(phases), rng.choice(wqs).name,
                              rng.randrange(cpus), rng.choice([0, 0, rng.randint(1, 20)]) * 1000))
    works.sort(key=lambda w: w.at)
    return cpus, wqs, works


@pytest.mark.parametrize("model", ["cmwq", "legacy-mt", "legacy-st"])
def test_invariants_hold_on_random_problems(model: str) -> None:
    """A CPU burns one item at a time; a worker runs one item at a time; every item goes
    start, (sleep, wake)*, finish, not before it was queued; (cmwq) at most max_active
    items of a wq run per CPU (per system if unbound), and ordered wqs run in queue order."""
    for seed in range(120):
        cpus, wqs, works = fuzz_problem(seed)
        r = simulate(works, wqs=wqs, cpus=cpus, model=model)
        assert r.stats["finished"] == len(works), seed
        spans: dict[int | None, list[tuple]] = defaultdict(list)
        for s in r.segments:
            if s.kind == "burn":
                spans[s.cpu].append((s.start, s.end))
        for cpu_spans in spans.values():
            cpu_spans.sort()
            for (_, end), (start, _) in zip(cpu_spans, cpu_spans[1:], strict=False):
                assert end <= start, seed
        running: dict[str, str] = {}
        kinds: dict[str, list[str]] = defaultdict(list)
        active: dict[tuple, int] = defaultdict(int)
        spec = {w.name: w for w in works}
        wq_of = {q.name: q for q in wqs}
        for e in r.events:
            kinds[e.work].append(e.event)
            q = wq_of[spec[e.work].wq]
            key = (q.name, None if q.flags & policy.WQ_UNBOUND else spec[e.work].cpu)
            limit = 1 if q.ordered else policy.clamp_max_active(q.max_active, q.name)[0]
            if e.event == "start":
                assert e.worker not in running, seed
                assert e.t * 1000 >= spec[e.work].at, seed
                running[e.worker] = e.work
                active[key] += 1
                if model == "cmwq":
                    assert active[key] <= limit, (seed, key)
            elif e.event == "finish":
                assert running.pop(e.worker) == e.work
                active[key] -= 1
        for seq in kinds.values():
            middle = seq[1:-1]
            assert seq[0] == "start" and seq[-1] == "finish", seed
            assert middle == ["sleep", "wake"] * (len(middle) // 2), seed
        if model == "cmwq":
            for q in wqs:
                if q.ordered:
                    mine = [w.name for w in works if w.wq == q.name]
                    assert [n for n in r.order("start") if n in mine] == mine, seed

