"""wq_monitor for khttpd_py: the table, the JSON stats endpoint and the CLI."""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

from khttpd_py.workqueue import (
    WQ_MEM_RECLAIM,
    WQ_UNBOUND,
    PwqStats,
    WorkqueueSystem,
    WorkStruct,
    WqStats,
    blocking,
    destroy_workqueue,
    flush_workqueue,
    format_table,
    queue_work,
    start_stats_server,
    table_header,
)
from khttpd_py.workqueue.monitor import main

HEADER = (
    "                            total  infl  CPUtime CPUitsv CMW/RPR  mayday rescued"
)


def test_header_is_the_tools() -> None:
    assert table_header() == HEADER
    assert table_header().split() == [
        "total", "infl", "CPUtime", "CPUitsv", "CMW/RPR", "mayday", "rescued"
    ]


def test_rows_show_dashes_where_the_tool_does() -> None:
    stats = PwqStats(started=812, completed=809, cpu_time=1.26, cpu_intensive=4,
                     cm_wakeup=17, repatriated=2, mayday=3, rescued=5)
    percpu = WqStats("events", unbound=False, mem_reclaim=False, stats=stats)
    unbound = WqStats("khttpd", unbound=True, mem_reclaim=False, stats=stats)
    reclaim = WqStats("kblockd", unbound=False, mem_reclaim=True, stats=stats)
    assert percpu.row() == (
        "events                        812     3      1.3       4      17       -       -"
    )
    # unbound: no CPUitsv, and the CMW/RPR column shows RPR
    assert unbound.row() == (
        "khttpd                        812     3      1.3       -       2       -       -"
    )
    assert reclaim.row() == (
        "kblockd                       812     3      1.3       4      17       3       5"
    )
    # every column lines up under its header
    for row in (percpu.row(), unbound.row(), reclaim.row()):
        assert len(row) == len(HEADER)


def test_long_names_keep_their_last_24_characters_and_infl_is_never_negative() -> None:
    odd = WqStats("a-very-long-workqueue-name-indeed", False, False,
                  PwqStats(started=1, completed=2))
    assert odd.row().startswith("long-workqueue-name-indeed"[-24:] + " ")
    assert odd.infl == 0


def test_dict_round_trip_uses_the_tools_keys() -> None:
    stats = WqStats("x", True, True, PwqStats(started=3, completed=2, cpu_time=0.5, mayday=1))
    record = stats.dict(now=12.5)
    assert list(record) == ["timestamp", "name", "unbound", "mem_reclaim", "started",
                            "completed", "cpu_time", "cpu_intensive", "cm_wakeup",
                            "repatriated", "mayday", "rescued"]
    assert record["cpu_time"] == 500_000  # microseconds, like the kernel counter
    assert WqStats.from_dict(record).row() == stats.row()


@pytest.fixture
def busy_system() -> Iterator[WorkqueueSystem]:
    """A system with three workqueues that have done some work, one still in flight."""
    system = WorkqueueSystem(nr_cpus=1, idle_timeout=0.2)
    events = system.alloc_workqueue("events", 0, 0)
    khttpd = system.alloc_workqueue("khttpd", WQ_UNBOUND, 0)
    system.alloc_workqueue("reclaim", WQ_MEM_RECLAIM, 0)
    gate = threading.Event()
    for _ in range(3):
        queue_work(events, WorkStruct(lambda w: None))
    flush_workqueue(events)
    started = threading.Event()

    def hold(work: WorkStruct) -> None:
        started.set()
        with blocking():
            gate.wait(5)

    queue_work(khttpd, WorkStruct(hold))
    assert started.wait(5)
    yield system
    gate.set()
    assert system.shutdown(5)


@pytest.fixture
def endpoint(busy_system: WorkqueueSystem) -> Iterator[int]:
    server = start_stats_server(busy_system, "127.0.0.1", 0)
    yield server.port
    server.stop()


def get(port: int) -> dict:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", "/stats")
        response = conn.getresponse()
        assert response.status == 200
        assert response.getheader("Content-Type") == "application/json"
        return json.loads(response.read())
    finally:
        conn.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_stats_endpoint_serves_every_workqueue(endpoint: int) -> None:
    doc = get(endpoint)
    by_name = {r["name"]: r for r in doc["workqueues"]}
    assert list(by_name) == ["events", "khttpd", "reclaim"]
    assert by_name["events"]["started"] == by_name["events"]["completed"] == 3
    assert by_name["khttpd"]["started"] == 1 and by_name["khttpd"]["completed"] == 0
    assert by_name["khttpd"]["unbound"] and by_name["reclaim"]["mem_reclaim"]
    assert doc["nr_threads"] >= 3  # kworkers plus the rescuer


def test_stats_server_stop_closes_the_port(busy_system: WorkqueueSystem) -> None:
    server = start_stats_server(busy_system, "127.0.0.1", 0)
    port = server.port
    assert get(port)["workqueues"]
    server.stop()
    server.stop()  # idempotent
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_stats_server_for_a_list_of_workqueues(busy_system: WorkqueueSystem) -> None:
    wqs = busy_system.workqueues()
    with start_stats_server([wqs[0], wqs[2]], port=0) as server:
        assert [r["name"] for r in get(server.port)["workqueues"]] == ["events", "reclaim"]
        destroy_workqueue(wqs[2])
        assert [r["name"] for r in get(server.port)["workqueues"]] == ["events"]


def test_cli_prints_the_table_once(endpoint: int, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--port", str(endpoint), "-i", "0"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "" and lines[1] == HEADER
    rows = {line.split()[0]: line.split()[1:] for line in lines[2:]}
    assert rows["events"] == ["3", "0", "0.0", "0", "0", "-", "-"]
    assert rows["khttpd"] == ["1", "1", "0.0", "-", "0", "-", "-"]
    assert rows["reclaim"] == ["0", "0", "0.0", "0", "0", "0", "0"]


def test_cli_count_json_and_filter(endpoint: int, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--port", str(endpoint), "-i", "0.01", "--count", "2", "khttp"]) == 0
    out = capsys.readouterr().out
    assert out.count(HEADER) == 2
    assert "khttpd" in out and "events" not in out
    assert main(["--port", str(endpoint), "-i", "0", "-j"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["name"] for r in records] == ["events", "khttpd", "reclaim"]
    assert records[1]["started"] == 1


def test_cli_connection_refused(capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    assert main(["--port", str(port), "-i", "0"]) == 1
    err = capsys.readouterr().err
    assert "connection refused" in err and f"127.0.0.1:{port}" in err
    assert "--stats-port" in err


def test_cli_rejects_a_non_stats_answer(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()

        def answer() -> None:
            conn, _ = listener.accept()
            with conn:
                conn.recv(4096)
                conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhello")

        thread = threading.Thread(target=answer)
        thread.start()
        assert main(["--port", str(listener.getsockname()[1]), "-i", "0"]) == 1
        thread.join(5)
    assert "did not answer with workqueue stats" in capsys.readouterr().err


def test_format_table_of_a_live_system(busy_system: WorkqueueSystem) -> None:
    table = format_table(WqStats.of(wq) for wq in busy_system.workqueues())
    assert table.splitlines()[0] == HEADER and len(table.splitlines()) == 4


def test_python_m_khttpd_py_wq_monitor(endpoint: int) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "khttpd_py", "wq-monitor", "--port", str(endpoint), "-i", "0"],
        capture_output=True, text=True, timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    assert HEADER in proc.stdout and "khttpd" in proc.stdout
    refused = subprocess.run(
        [sys.executable, "-m", "khttpd_py", "wq-monitor", "--port", str(free_port())],
        capture_output=True, text=True, timeout=30,
    )
    assert refused.returncode == 1 and "connection refused" in refused.stderr


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["("], "bad regular expression '('"),
        (["khttp", "a("], "bad regular expression 'a('"),
        (["-i", "nan", "--count", "2"], "--interval: must be between 0 and 86400 seconds,"
         " not 'nan'"),
        (["-i", "inf", "--count", "2"], "--interval: must be between 0 and 86400 seconds,"
         " not 'inf'"),
        (["-i", "1e300", "--count", "2"], "--interval: must be between 0 and 86400 seconds,"
         " not '1e300'"),
        (["-i", "-1"], "--interval: must be between 0 and 86400 seconds,"
         " not '-1'"),
        (["--count", "-1"], "argument --count: must be at least 0, not -1"),
        (["--port", "70000"], "argument --port: 70000 is outside 1..65535"),
        (["--port", "0"], "argument --port: 0 is outside 1..65535"),
    ],
)
def test_cli_bad_input_is_a_usage_error(
    endpoint: int, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Bad options and patterns stop before the first request with argparse's one-line
    error and exit 2, where they used to be tracebacks (re.error, ValueError or
    OverflowError from time.sleep) or a "connection refused" advising a port serve
    rejects.  A live endpoint is there so that nothing else could end the run."""
    with_port = [] if "--port" in argv else ["--port", str(endpoint)]
    with pytest.raises(SystemExit) as exit_info:
        main([*with_port, *argv])
    assert exit_info.value.code == 2
    out, err = capsys.readouterr()
    assert out == "" and "Traceback" not in err
    assert err.splitlines()[-1].startswith("khttpd-py wq-monitor: error: ")
    assert message in err.splitlines()[-1]


def test_cli_several_patterns_each_filter(
    endpoint: int, capsys: pytest.CaptureFixture[str]
) -> None:
    """REGEX... keeps a workqueue any one of the patterns matches, as the tool does."""
    assert main(["--port", str(endpoint), "-i", "0", "khttp", "^rec"]) == 0
    names = [line.split()[0] for line in capsys.readouterr().out.splitlines()[2:]]
    assert names == ["khttpd", "reclaim"]
