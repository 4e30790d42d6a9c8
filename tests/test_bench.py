"""bench: a tiny real run's report is complete and consistent; tampering is caught; no orphans.

No assertion here depends on speed: the machine is shared and noisy.
"""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from khttpd_py import bench
from khttpd_py.bench import BenchConfig, LoadSpec, check_report

TINY_SERVERS = ("thread", "asyncio")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    out = tmp_path_factory.mktemp("bench")
    cfg = BenchConfig(servers=list(TINY_SERVERS),
                      load=LoadSpec(requests=150, concurrency=10, engine="python",
                                    run_seconds=20),
                      rounds=2, warmup=1, max_seconds=120, out=out, progress=False,
                      command=["test"])
    return bench.run_bench(cfg), out


def test_tiny_run_writes_json_and_plot(tiny: tuple[dict, Path]) -> None:
    report, out = tiny
    assert json.loads((out / "bench.json").read_text()) == report
    assert (out / "bench.png").stat().st_size > 1000


def test_tiny_run_is_consistent(tiny: tuple[dict, Path]) -> None:
    report, _ = tiny
    assert check_report(report, required=TINY_SERVERS) == []


def test_tiny_run_schema(tiny: tuple[dict, Path]) -> None:
    report, _ = tiny
    assert report["schema"] == bench.SCHEMA
    assert {"cpus", "python", "kernel", "loadavg_before", "loadavg_after"} <= set(
        report["machine"])
    assert report["load"]["http"] == "1.0" and report["load"]["engine"] == "python"
    assert report["baseline"] == "thread" and report["complete"]
    first, second = report["order"]
    assert first == second[::-1] and sorted(first) == ["asyncio", "thread"]  # alternating
    for entry in report["servers"].values():
        assert len(entry["warmup"]) == 1 and len(entry["runs"]) == 2
        assert entry["threads_peak"] >= entry["threads_idle"] >= 1
        assert entry["rss_peak_kib"] > 1000
        assert all(r["good"] == 150 for r in entry["runs"])
    assert report["servers"]["thread"]["ratio"] == pytest.approx(1.0)


def test_tiny_run_measures_server_cpu(tiny: tuple[dict, Path]) -> None:
    """Each run records the server's CPU; thread mode's 150 threads per run cost some."""
    thread = tiny[0]["servers"]["thread"]
    for entry in tiny[0]["servers"].values():
        assert all(r["server_cpu_seconds"] >= 0 for r in entry["runs"] + entry["warmup"])
    assert sum(r["server_cpu_seconds"] for r in thread["runs"]) > 0
    assert thread["cpu_us_per_request"] > 0
    assert "CPU/req" in bench.format_table(tiny[0])


def test_proc_cpu_seconds_counts_this_process() -> None:
    before = bench.proc_cpu_seconds(os.getpid())
    end = time.thread_time() + 0.1
    while time.thread_time() < end:
        pass
    assert bench.proc_cpu_seconds(os.getpid()) - before >= 0.05
    assert bench.proc_cpu_seconds(2**22 + 1) is None  # above pid_max: no such process


def test_reports_without_cpu_figures_still_pass(tiny: tuple[dict, Path]) -> None:
    """JSON written before the CPU column existed is graded as before."""
    def strip(report: dict) -> None:
        for entry in report["servers"].values():
            entry.pop("cpu_us_per_request")
            for run in entry["runs"] + entry["warmup"]:
                run.pop("server_cpu_seconds")
    assert _tamper(tiny[0], strip) == []


def test_table_names_every_server(tiny: tuple[dict, Path]) -> None:
    table = bench.format_table(tiny[0])
    for entry in tiny[0]["servers"].values():
        assert entry["label"] in table


def _tamper(report: dict, edit) -> list[str]:
    bad = copy.deepcopy(report)
    edit(bad)
    return check_report(bad, required=TINY_SERVERS)


@pytest.mark.parametrize(
    ("edit", "complaint"),
    [
        (lambda r: r["servers"]["asyncio"].update(median=r["servers"]["asyncio"]["median"] * 2),
         "median"),
        (lambda r: r["servers"]["asyncio"].update(ratio=9.0), "ratio"),
        (lambda r: r["servers"]["thread"]["runs"][0].update(good_per_sec=1e6), "good / seconds"),
        (lambda r: r["servers"]["thread"]["runs"][0].update(good=10**6), "add up"),
        (lambda r: r["servers"].pop("asyncio"), "missing"),
        (lambda r: r["servers"]["thread"]["runs"].pop(), "rounds"),
        (lambda r: r["order"].append(["thread", "thread"]), "rounds"),
        (lambda r: r.update(schema="v0"), "schema"),
        (lambda r: r["servers"]["thread"].update(
            cpu_us_per_request=r["servers"]["thread"]["cpu_us_per_request"] + 1000),
         "cpu_us_per_request"),
        (lambda r: r["servers"]["thread"]["runs"][1].update(server_cpu_seconds=-1.0),
         "server_cpu_seconds"),
    ],
)
def test_tampered_reports_are_caught(tiny: tuple[dict, Path], edit, complaint: str) -> None:
    problems = _tamper(tiny[0], edit)
    assert problems and any(complaint in p for p in problems), problems


@pytest.mark.parametrize("junk", [None, [], "text", {"schema": bench.SCHEMA},
                                  {"schema": bench.SCHEMA, "load": {}, "servers": {}}])
def test_junk_never_raises(junk: object) -> None:
    assert check_report(junk)


def test_rotation_puts_each_server_in_each_position() -> None:
    names = ["a", "b", "c"]
    firsts = {bench.rotation(names, r)[0] for r in range(3)}
    assert firsts == set(names)


def test_parse_kernel_output() -> None:
    text = ("boot noise\n# round 1 kthread: 250.000 requests/sec (good 2000/2000)\n"
            "# round 1 cmwq: 500.000 requests/sec (good 1999/2000)\n"
            "# round 1 cmwq/kthread: 2.000\n"
            "# round 2 cmwq: 400.000 requests/sec (good 2000/2000)\n")
    rows = bench.parse_kernel_output(text)
    assert set(rows) == {"kernel-cmwq", "kernel-kthread"}
    cmwq = rows["kernel-cmwq"]
    assert cmwq["kind"] == "kernel-tcg" and [r["round"] for r in cmwq["runs"]] == [0, 1]
    first = cmwq["runs"][0]
    assert first["seconds"] == pytest.approx(4.0)
    assert first["good_per_sec"] == pytest.approx(1999 / 4.0)
    assert first["socket_errors"] == 1
    assert bench._check_run("kernel", first, 2000) == []
    assert first["server_cpu_seconds"] is None  # no "# cpu round" line for it


def test_parse_kernel_output_takes_the_guests_cpu_figures() -> None:
    """The guest's CPU outside htstress becomes the kernel rows' server CPU."""
    text = ("# round 1 kthread: 250.000 requests/sec (good 2000/2000)\n"
            "# cpu round 1 kthread: busy 90% of 2 CPU(s), 1.72 ms CPU/request "
            "(htstress 0.91, other 0.82), 8.0 context switches/request, 1.00 forks/request\n"
            "# cpu warm-up 1 cmwq: busy 99% of 2 CPU(s), 0.99 ms CPU/request "
            "(htstress 0.64, other 0.34), 4.9 context switches/request, 0.00 forks/request\n"
            "# round 1 cmwq: 500.000 requests/sec (good 2000/2000)\n"
            "# cpu round 1 cmwq: busy 99% of 2 CPU(s), 1.15 ms CPU/request "
            "(htstress 0.73, other 0.42), 4.9 context switches/request, 0.00 forks/request\n")
    rows = bench.parse_kernel_output(text)
    assert rows["kernel-kthread"]["runs"][0]["server_cpu_seconds"] == pytest.approx(1.64)
    assert rows["kernel-cmwq"]["runs"][0]["server_cpu_seconds"] == pytest.approx(0.84)
    bench.summarize(rows)
    assert rows["kernel-cmwq"]["cpu_us_per_request"] == pytest.approx(420)
    assert rows["kernel-kthread"]["cpu_us_per_request"] == pytest.approx(820)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_servers_are_stopped_on_error() -> None:
    pids = []
    with pytest.raises(RuntimeError, match="boom"), bench.running(
            [bench.SERVERS["asyncio"], bench.SERVERS["threading"]]) as procs:
        pids = [p.proc.pid for p in procs]
        assert all(_alive(pid) for pid in pids)
        raise RuntimeError("boom")
    assert pids and not any(_alive(pid) for pid in pids)


def _children(pid: int) -> list[int]:
    kids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                kids.append(int(entry.name))
    return kids


@pytest.mark.parametrize(("sig", "status"), [(signal.SIGINT, 130), (signal.SIGKILL, -9)])
def test_no_server_outlives_the_bench(tmp_path: Path, sig: int, status: int) -> None:
    """Ctrl-C stops the servers; even kill -9 of the bench does (PR_SET_PDEATHSIG)."""
    cmd = [sys.executable, "-m", "khttpd_py", "bench", "--servers", "asyncio,thread",
           "-n", "1000000", "-c", "10", "--engine", "python", "--run-seconds", "30",
           "--no-progress", "--out", str(tmp_path)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            cwd=Path(__file__).resolve().parent.parent)
    try:
        deadline = time.monotonic() + 30
        kids: list[int] = []
        while len(kids) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
            kids = _children(proc.pid)
        assert len(kids) >= 2, "the bench did not start its servers"
        time.sleep(1.0)  # servers up, load running
        os.kill(proc.pid, sig)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == status, err
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in kids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in kids), "a server outlived the bench"


def test_cli_rejects_bad_arguments(capsys) -> None:
    assert bench.main(["--servers", "thread,nginx", "--no-progress", "--out", "/nonexistent"]) == 2
    assert "unknown server(s) nginx; choose from thread, cmwq" in capsys.readouterr().err
    assert bench.main(["--servers", ","]) == 2
    assert "choose from thread" in capsys.readouterr().err
    assert bench.main(["--rounds", "0"]) == 2
    assert bench.main(["--frobnicate"]) == 2


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--warmup", "-3"], "--warmup: must be at least 0"),
        (["--run-seconds", "-1"], "--run-seconds: must be more than 0"),
        (["--run-seconds", "nan"], "--run-seconds: must be more than 0"),
        (["--max-seconds", "inf"], "--max-seconds: must be more than 0"),
        (["-n", "0"], "--requests: must be at least 1"),
        (["--servers", "thread,cmwq,thread"], "listed twice: thread"),
    ],
)
def test_cli_bad_numbers_and_names_exit_2_before_any_server(argv, message, capsys) -> None:
    assert bench.main([*argv, "--no-progress", "--out", "/nonexistent/bench"]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize("kind", ["a file", "under a file"])
def test_cli_unusable_out_exits_2_before_any_server(tmp_path, kind: str, capsys) -> None:
    blocker = tmp_path / "taken"
    blocker.write_text("not a directory")
    out = blocker if kind == "a file" else blocker / "results"
    assert bench.main(["--quick", "--no-progress", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"--out {out}" in err and "Traceback" not in err
    assert blocker.read_text() == "not a directory"


def test_quick_is_small_and_bounded() -> None:
    args = bench.build_parser().parse_args(["--quick"])
    cfg = bench.config_from_args(args, ["--quick"])
    assert cfg.rounds == 3 and cfg.warmup == 1 and cfg.load.requests <= 3000
    assert cfg.max_seconds <= 60 and cfg.command[-1] == "--quick"


def test_kernel_rows_keep_the_report_consistent(tiny: tuple[dict, Path]) -> None:
    report = copy.deepcopy(tiny[0])
    text = "".join(f"# round {r} {m}: {rps} requests/sec (good 500/500)\n"
                   for r, m, rps in [(1, "kthread", 100.0), (1, "cmwq", 250.0),
                                     (2, "cmwq", 200.0), (2, "kthread", 80.0)])
    report["servers"].update(bench.parse_kernel_output(text))
    bench.summarize(report["servers"])
    assert check_report(report, required=TINY_SERVERS) == []
    cmwq = report["servers"]["kernel-cmwq"]
    assert cmwq["ratio_to"] == "kernel-kthread" and cmwq["ratio"] == pytest.approx(225 / 90)
    assert "QEMU" in bench.format_table(report)


def test_the_event_mode_can_be_benched_side_by_side(tmp_path: Path) -> None:
    """``--servers thread,cmwq-event``: the third mode runs under the same load and report."""
    cfg = BenchConfig(servers=["thread", "cmwq-event"],
                      load=bench.LoadSpec(requests=200, concurrency=10, run_seconds=20),
                      rounds=1, warmup=0, max_seconds=60, out=tmp_path, progress=False)
    report = bench.run_bench(cfg)
    assert check_report(report, required=("thread", "cmwq-event")) == []
    event = report["servers"]["cmwq-event"]
    assert event["runs"] and all(run["good"] == 200 for run in event["runs"]), event["runs"]
