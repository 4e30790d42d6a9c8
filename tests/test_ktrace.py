"""khttpd_py.ktrace: on small hand-written ftrace lines, then on the recorded traces
in book/data/ktrace (no QEMU needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from khttpd_py.ktrace import (
    LOAD,
    MODES,
    ModeTrace,
    Recording,
    TraceFormatError,
    compare_with_sim,
    distribution,
    kworker_pool,
    load_recorded,
    parse_line,
    parse_trace,
    scenario_from_trace,
    summarize,
)
from khttpd_py.ktrace.model import MODULE_FUNCTION


def line(comm: str, pid: int, cpu: int, ts: float, event: str, body: str) -> str:
    return f"{comm:>16}-{pid:<7} [{cpu:03d}] ..... {ts:12.6f}: {event}: {body}"


def mark(ts: float, text: str) -> str:
    return line("sh", 90, 0, ts, "tracing_mark_write", f"khttpd-trace: {text}")


def queue(ts: float, work: str, cpu: int = 0) -> str:
    return line("khttpd", 80, cpu, ts, "workqueue_queue_work",
                f"work struct={work} function=http_conn_work [khttpd] workqueue=khttpd "
                f"req_cpu=8192 cpu=4294967295")


def start(ts: float, work: str, comm: str, pid: int, cpu: int = 0) -> str:
    return line(comm, pid, cpu, ts, "workqueue_execute_start",
                f"work struct {work}: function http_conn_work [khttpd]")


def end(ts: float, work: str, comm: str, pid: int, cpu: int = 0) -> str:
    return line(comm, pid, cpu, ts, "workqueue_execute_end",
                f"work struct {work}: function http_conn_work [khttpd]")


def switch(ts: float, cpu: int, prev: tuple[str, int], state: str,
           nxt: tuple[str, int]) -> str:
    return line(prev[0], prev[1], cpu, ts, "sched_switch",
                f"prev_comm={prev[0]} prev_pid={prev[1]} prev_prio=120 prev_state={state} ==> "
                f"next_comm={nxt[0]} next_pid={nxt[1]} next_prio=120")


def wakeup(ts: float, cpu: int, comm: str, pid: int) -> str:
    return line("swapper/0", 0, cpu, ts, "sched_wakeup",
                f"comm={comm} pid={pid} prio=120 target_cpu={cpu:03d}")


IDLE = ("swapper/0", 0)
KW1 = ("kworker/u4:1", 31)
KW2 = ("kworker/u4:2", 32)


def two_items(overlap: bool) -> list[str]:
    """Two connections; the second starts while the first sleeps (overlap) or after it."""
    second_start = 1.0015 if overlap else 1.0040
    lines = [
        mark(1.0, "mode unbound begin"),
        mark(1.0001, "phase burst n=2"),
        queue(1.0010, "0000aaaa"),
        queue(1.0011, "0000bbbb"),
        switch(1.0012, 0, IDLE, "R", KW1),
        start(1.0013, "0000aaaa", *KW1),
        switch(1.0014, 0, KW1, "S", IDLE),       # blocks in recv
        switch(second_start - 0.0001, 1, IDLE, "R", KW2),
        start(second_start, "0000bbbb", *KW2, cpu=1),
        wakeup(1.0030, 0, *KW1),
        switch(1.0031, 0, IDLE, "R", KW1),
        end(1.0033, "0000aaaa", *KW1),
        switch(1.0034, 0, KW1, "I", IDLE),
        end(second_start + 0.0005, "0000bbbb", *KW2, cpu=1),
        switch(second_start + 0.0006, 1, KW2, "I", IDLE),
    ]
    return sorted(lines, key=lambda s: float(s.split(": ")[0].split()[-1]))


def test_parse_queue_work_fields() -> None:
    ev = parse_line(queue(12.5, "00000000deadbeef", cpu=1), 7)
    assert ev is not None
    assert (ev.event, ev.cpu, ev.pid, ev.comm, ev.lineno) == ("workqueue_queue_work", 1, 80,
                                                              "khttpd", 7)
    assert ev.fields["function"] == "http_conn_work"
    assert ev.fields["module"] == "khttpd"
    assert ev.fields["workqueue"] == "khttpd"
    assert ev.fields["req_cpu"] == 8192
    assert ev.fields["cpu"] == -1          # 4294967295: an unbound pwq's pool has no CPU
    assert ev.us == 12_500_000


def test_parse_comm_with_dash_and_space_and_comments() -> None:
    ev = parse_line("   khttpd-conn-1234  [000] d..3.   5.000001: sched_process_exit: "
                    "comm=khttpd-conn pid=1234 prio=120")
    assert ev is not None and ev.comm == "khttpd-conn" and ev.pid == 1234
    assert ev.fields == {"comm": "khttpd-conn", "pid": 1234, "prio": 120}
    assert parse_line("# tracer: nop") is None
    assert parse_line("   ") is None


def test_bad_lines_are_errors_that_name_the_line() -> None:
    with pytest.raises(TraceFormatError, match="line 3"):
        parse_line("garbage", 3)
    with pytest.raises(TraceFormatError, match="workqueue_activate_work"):
        parse_line(line("k", 1, 0, 1.0, "workqueue_activate_work", "nonsense here"), 1)
    with pytest.raises(TraceFormatError, match="overflowed"):
        parse_trace(["CPU:1 [LOST 12 EVENTS]"])


def test_kworker_pool_names() -> None:
    assert kworker_pool("kworker/1:2") == "cpu1"
    assert kworker_pool("kworker/0:1H") == "cpu0H"
    assert kworker_pool("kworker/u4:3") == "unbound4"
    assert kworker_pool("khttpd-conn") is None


def test_work_items_become_connections_with_latency() -> None:
    t = ModeTrace(parse_trace(two_items(overlap=True)))
    assert t.kind == "cmwq"
    assert [s.connection for s in t.services] == ["burst#1", "burst#2"]
    first, second = t.services
    assert first.worker_comm == "kworker/u4:1" and second.worker_comm == "kworker/u4:2"
    assert first.latency_us == 300 and second.latency_us == 400
    assert t.peak_running() == {"unbound4": 2, "all": 2}
    assert t.start_order() == ["burst#1", "burst#2"]
    s = summarize(t)
    assert s["connections"] == s["connections_finished"] == 2
    assert s["latency"]["n"] == 2 and s["latency"]["max_ms"] == 0.4


def test_sequential_items_never_overlap() -> None:
    t = ModeTrace(parse_trace(two_items(overlap=False)))
    assert t.peak_running()["all"] == 1


def test_phases_from_sched_switch() -> None:
    t = ModeTrace(parse_trace(two_items(overlap=True)))
    sc = scenario_from_trace(t, cpus=2)
    first = sc.works[0]
    # on CPU 1.0013-1.0014, asleep until the wake-up at 1.0030, on CPU 1.0031-1.0033
    assert first.phases == (("burn", 100), ("sleep", 1600), ("burn", 200))
    assert first.at == 0 and sc.works[1].at == 100


def test_compare_gives_a_score_between_0_and_1() -> None:
    t = ModeTrace(parse_trace(two_items(overlap=True)))
    cmp = compare_with_sim(t, cpus=2)
    assert 0.0 <= cmp.agreement <= 1.0
    assert set(cmp.scores) == {"workers", "peak", "order", "latency"}
    assert cmp.kernel["peak"] == 2
    assert "agreement" in cmp.text()


def test_kthread_threads_are_connections() -> None:
    lines = [
        mark(2.0, "mode kthread begin"),
        mark(2.0001, "phase seq n=1"),
        mark(2.0002, "conn seq.1"),
        line("kthreadd", 2, 0, 2.0010, "task_newtask",
             "pid=500 comm=kthreadd clone_flags=800711 oom_score_adj=0"),
        line("khttpd", 80, 0, 2.0011, "task_rename",
             "pid=500 oldcomm=kthreadd newcomm=khttpd-conn oom_score_adj=0"),
        switch(2.0015, 1, IDLE, "R", ("khttpd-conn", 500)),
        line("khttpd-conn", 500, 1, 2.0020, "sched_process_exit",
             "comm=khttpd-conn pid=500 prio=120"),
    ]
    t = ModeTrace(parse_trace(lines))
    assert t.kind == "kthread"
    (svc,) = t.services
    assert svc.connection == "seq.1" and svc.latency_us == 500 and svc.ended_us == 2_002_000
    assert len(t.created("conn")) == 1
    with pytest.raises(ValueError, match="kthread"):
        scenario_from_trace(t, cpus=2)


def test_kworkers_over_time_counts_creations_and_exits() -> None:
    lines = [
        mark(1.0, "mode bound begin"),
        line("kthreadd", 2, 0, 1.1, "task_newtask",
             "pid=77 comm=kthreadd clone_flags=800711 oom_score_adj=0"),
        line("kthreadd", 77, 0, 1.1001, "task_rename",
             "pid=77 oldcomm=kthreadd newcomm=kworker/0:3 oom_score_adj=0"),
        line("kworker/0:2", 20, 0, 1.5, "sched_process_exit", "comm=kworker/0:2 pid=20 prio=120"),
    ]
    t = ModeTrace(parse_trace(lines), initial_tasks={20: "kworker/0:2", 21: "kworker/1:0"})
    assert t.kworkers_over_time() == [(0.0, 2), (100.1, 3), (500.0, 2)]


def test_distribution_histogram() -> None:
    d = distribution([5, 50, 500, 5000, 50_000, 500_000])
    assert d["n"] == 6
    assert list(d["histogram"].values()) == [1, 1, 1, 1, 1, 1]
    assert distribution([]) == {"n": 0}


# --- the recorded traces (book/data/ktrace, made by make -C kmod trace) --------------------

@pytest.fixture(scope="module")
def rec() -> Recording:
    return load_recorded()


@pytest.fixture(scope="module")
def traces(rec: Recording) -> dict[str, ModeTrace]:
    return {m: rec.mode(m) for m in rec.modes()}


def test_recording_says_where_it_comes_from(rec: Recording) -> None:
    meta = rec.metadata
    assert meta["guest_kernel"].startswith("6.1.")
    assert meta["command"] == "make -C kmod trace OUT=book/data/ktrace"
    assert meta["date"][:4].isdigit() and meta["load"] == LOAD
    assert rec.modes() == ["kthread", "unbound", "bound", "max1"]
    assert rec.guest_cpus == 2
    for mode in rec.modes():
        assert rec.result(mode)["lost_events"] == "0"
        assert rec.result(mode)["clients_ok"] == "20/20"
        assert rec.result(mode)["htstress_good"] == "24/24"


def test_every_mode_served_the_whole_load(traces: dict[str, ModeTrace]) -> None:
    for mode, t in traces.items():
        assert len(t.services) == LOAD["connections"], mode
        assert all(s.started_us is not None and s.ended_us is not None for s in t.services), mode
        assert t.start_order()[:8] == [f"seq.{i}" for i in range(1, 9)], mode


def test_kthread_mode_forks_one_thread_per_connection(traces: dict[str, ModeTrace]) -> None:
    t = traces["kthread"]
    assert t.kind == "kthread"
    conns = t.created("conn")
    assert len(conns) == LOAD["connections"]
    assert len({c.pid for c in conns}) == len(conns)
    assert all(c.exited_us is not None for c in conns)       # each thread ends with its connection
    assert MODULE_FUNCTION not in t.functions()                # no work item of the module


def test_cmwq_modes_run_the_module_work_function_on_kworkers(
        traces: dict[str, ModeTrace]) -> None:
    for mode in ("unbound", "bound", "max1"):
        t = traces[mode]
        assert t.kind == "cmwq"
        assert t.functions()[MODULE_FUNCTION] == LOAD["connections"]
        assert t.created("conn") == []
        assert all(s.workqueue == "khttpd" and s.worker_comm.startswith("kworker/")
                   for s in t.services)


def test_unbound_items_run_in_the_unbound_pool_bound_ones_on_their_cpu(
        traces: dict[str, ModeTrace]) -> None:
    assert all(s.pool.startswith("unbound") and s.pwq_cpu == -1
               for s in traces["unbound"].services)
    bound = traces["bound"].services
    assert all(s.pool == f"cpu{s.pwq_cpu}" and s.start_cpu == s.pwq_cpu for s in bound)


def test_max_active_1_never_runs_two_items_at_once(traces: dict[str, ModeTrace]) -> None:
    t = traces["max1"]
    assert t.peak_running()["all"] == 1
    assert len({s.worker_pid for s in t.services}) == 1
    assert t.start_order() == [s.connection for s in t.services]   # FIFO
    # the four keep-alive clients hold their item ~600 ms each: the last waits > 1 s
    holds = [s.latency_us or 0 for s in t.services if s.phase == "hold"]
    assert max(holds) > 1_000_000
    # without the cap the four holders run at once and nobody waits that long
    assert traces["unbound"].peak_running()["all"] >= 4
    assert max(traces["unbound"].latencies_us()) < 100_000


def test_module_workqueue_is_not_in_sysfs(rec: Recording) -> None:
    for mode in ("unbound", "bound", "max1"):
        dump = rec.sysfs(mode)
        assert "# khttpd: absent (the module's workqueue is not WQ_SYSFS)" in dump
        assert "/sys/devices/virtual/workqueue/cpumask" in dump


def test_summary_json_matches_the_parser(rec: Recording, traces: dict[str, ModeTrace]) -> None:
    doc = rec.summary_json()
    assert doc["format"] == "khttpd-ktrace-summary/1"
    for mode, t in traces.items():
        entry = doc["modes"][mode]
        fresh = summarize(t)
        fresh["kworkers_alive"]["series_ms"] = [list(p) for p in
                                                fresh["kworkers_alive"]["series_ms"]]
        assert entry["summary"] == fresh, mode
        assert len(entry["connections"]) == LOAD["connections"]
        served = {e["connection"] for e in entry["events"] if "connection" in e}
        assert served == {c["connection"] for c in entry["connections"]}


def test_simulator_replay_agrees_with_the_kernel(rec: Recording,
                                                  traces: dict[str, ModeTrace]) -> None:
    for mode in ("unbound", "bound", "max1"):
        p = MODES[mode]
        cmp = compare_with_sim(traces[mode], rec.guest_cpus, p["wq_flags"], p["max_active"])
        assert cmp.scores["peak"] == 1.0, mode
        assert cmp.scores["order"] >= 0.95, mode
        assert cmp.agreement >= 0.8, mode
        assert len(cmp.per_item) == LOAD["connections"]
        # per pool too: bound mode's two CPU pools, unbound's one pool
        assert cmp.kernel["peak_per_pool"] == cmp.sim["peak_per_pool"], mode
    one = compare_with_sim(traces["max1"], rec.guest_cpus, "unbound", 1)
    assert one.sim["peak"] == 1 and one.sim["workers"] == 1


def test_command_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from khttpd_py.__main__ import main as khttpd_main

    assert khttpd_main(["ktrace", "compare", "--mode", "max1"]) == 0
    assert "peak running              1        1  1.000" in capsys.readouterr().out
    assert khttpd_main(["ktrace", "show", str(tmp_path)]) == 1
    assert "not a make -C kmod trace directory" in capsys.readouterr().err
