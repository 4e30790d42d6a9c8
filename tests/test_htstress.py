"""htstress: the output block, URLs, the Python engine against a server it can count, the CLI."""

from __future__ import annotations

import socket
import socketserver
import threading
from collections.abc import Iterator

import pytest

from khttpd_py import htstress
from khttpd_py.htstress import Result, UsageError, format_block, parse_block, parse_url

C_BLOCK = """[Press Ctrl-C to finish]
0 requests
1000 requests

requests:      100000
good requests: 99990 [99%]
bad requests:  10 [0%]
socker errors: 3 [0%]
seconds:       1.298
requests/sec:  77030.127

"""


# --------------------------------------------------------------------------- output block


def test_parse_c_block_with_upstream_typo_and_progress_lines() -> None:
    r = parse_block(C_BLOCK)
    assert (r.requests, r.good, r.bad, r.socket_errors) == (100000, 99990, 10, 3)
    assert r.seconds == pytest.approx(1.298)
    assert r.requests_per_sec == pytest.approx(77030.127)
    assert r.engine == "c"


def test_parse_python_block_round_trips() -> None:
    original = Result(250, 240, 7, 3, 0.5, 500.0, engine="python")
    parsed = parse_block(format_block(original), engine="python")
    assert parsed == original


def test_python_block_has_the_documented_lines() -> None:
    text = format_block(Result(3, 2, 1, 0, 1.0, 3.0))
    assert "good requests: 2 [66%]" in text  # truncated like the C tool's (int) cast
    assert "bad requests:  1 [33%]" in text
    assert "socket errors: 0 [0%]" in text
    assert "requests/sec:  3.000" in text


def test_parse_block_names_a_missing_line() -> None:
    with pytest.raises(ValueError, match="seconds"):
        parse_block(C_BLOCK.replace("seconds:", "elapsed:"))


# --------------------------------------------------------------------------- URLs


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://localhost:8081/", ("localhost", 8081, "/")),
        ("127.0.0.1", ("127.0.0.1", 80, "/")),
        ("127.0.0.1:9000", ("127.0.0.1", 9000, "/")),
        ("localhost/a/b?x=1", ("localhost", 80, "/a/b?x=1")),
        ("http://[::1]:8081/x", ("::1", 8081, "/x")),
    ],
)
def test_parse_url(url: str, expected: tuple[str, int, str]) -> None:
    assert parse_url(url) == expected


@pytest.mark.parametrize("url", ["https://127.0.0.1/", "127.0.0.1:http/", "127.0.0.1:0/",
                                 "127.0.0.1:70000", ":8081/", ""])
def test_bad_urls_are_usage_errors(url: str) -> None:
    with pytest.raises(UsageError):
        parse_url(url)


@pytest.mark.parametrize("url", ["http://", "http://[::1", "http:///x"])
def test_a_url_without_a_host_is_named_as_such(url: str) -> None:
    """Not "port must be 1-65535": the scheme is not a host."""
    with pytest.raises(UsageError, match=r"expected \[http://\]host"):
        parse_url(url)


def test_non_loopback_hosts_are_refused() -> None:
    with pytest.raises(UsageError, match="loopback"):
        htstress.resolve("http://10.1.2.3:80/")


def test_request_bytes_are_htstress_bytes() -> None:
    target = htstress.resolve("http://127.0.0.1:8081/index.html", host_header="example")
    assert target.request(False) == b"GET /index.html HTTP/1.0\r\nHost: example\r\n\r\n"
    assert target.request(True).startswith(b"GET /index.html HTTP/1.1\r\n")


# --------------------------------------------------------------------------- a server that counts

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\nConnection: %s\r\n\r\nHello World!"
ERR = b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: %s\r\n\r\n"


class CountingServer(socketserver.ThreadingTCPServer):
    """Answers /fail with 500, anything else with 200; counts requests it answered."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), CountingHandler)
        self.lock = threading.Lock()
        self.answered = 0
        self.connections = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class CountingHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        server: CountingServer = self.server  # type: ignore[assignment]
        with server.lock:
            server.connections += 1
        buf = b""
        while True:
            while b"\r\n\r\n" not in buf:
                chunk = self.request.recv(4096)
                if not chunk:
                    return
                buf += chunk
            head, _, buf = buf.partition(b"\r\n\r\n")
            keep = b"HTTP/1.1" in head.split(b"\r\n", 1)[0]
            body = (ERR if head.startswith(b"GET /fail") else OK) % (
                b"Keep-Alive" if keep else b"Close")
            with server.lock:
                server.answered += 1
            self.request.sendall(body)
            if not keep:
                return


@pytest.fixture
def server() -> Iterator[CountingServer]:
    srv = CountingServer()
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join()


def run(url: str, **kw) -> Result:
    kw.setdefault("duration", 20.0)
    return htstress.run_htstress(url, engine="python", **kw)


def test_counts_match_what_the_server_answered(server: CountingServer) -> None:
    r = run(server.url + "/", requests=300, concurrency=20)
    assert (r.requests, r.good, r.bad, r.socket_errors) == (300, 300, 0, 0)
    assert server.answered == 300 and server.connections == 300
    assert r.engine == "python" and not r.stopped_by_duration
    assert r.requests_per_sec == pytest.approx(300 / r.seconds)


def test_5xx_is_a_bad_request(server: CountingServer) -> None:
    r = run(server.url + "/fail", requests=40, concurrency=8)
    assert (r.good, r.bad) == (0, 40)


def test_threads_share_the_requests(server: CountingServer) -> None:
    r = run(server.url + "/", requests=101, concurrency=5, threads=2)
    assert (r.requests, r.good) == (101, 101)
    assert server.answered == 101


def test_keep_alive_reuses_connections(server: CountingServer) -> None:
    r = run(server.url + "/", requests=200, concurrency=4, keep_alive=True)
    assert (r.requests, r.good, r.socket_errors) == (200, 200, 0)
    assert server.answered == 200
    assert server.connections <= 8  # 4 connections, reopened at most once each
    assert r.keep_alive


def test_keep_alive_understands_an_http10_server_that_closes(http10_url: str) -> None:
    """An HTTP/1.0 server with no Connection header closes after each response:
    the next request must go on a new connection, not count as a socket error."""
    r = run(http10_url, requests=50, concurrency=3, keep_alive=True)
    assert (r.good, r.socket_errors) == (50, 0)


@pytest.mark.parametrize("engine", ["python", "c"])
def test_closed_port_counts_socket_errors(engine: str, closed_url: str) -> None:
    """Every attempt fails at once there; 3000 of them (more than Python's recursion
    limit) must end in one loop, each counted once."""
    if engine == "c" and htstress.c_tool() is None:
        pytest.skip("kmod/htstress is not built")
    r = htstress.run_htstress(closed_url, requests=3000, concurrency=3,
                              engine=engine, duration=20.0)
    assert (r.requests, r.good, r.bad, r.socket_errors) == (3000, 0, 0, 3000)
    assert not r.stopped_by_duration


@pytest.mark.parametrize("threads", [1, 2])
def test_duration_bounds_a_run_against_a_closed_port(threads: int, closed_url: str) -> None:
    """Every connect fails at once, so the event loop that watches the clock never
    runs; the deadline must still end the run, with every attempt counted."""
    r = run(closed_url, requests=0, concurrency=2, threads=threads,
            duration=0.5)
    assert r.stopped_by_duration
    assert r.good == 0 and r.socket_errors == r.requests > 0


def test_fewer_requests_than_threads_is_not_unlimited(server: CountingServer) -> None:
    r = run(server.url + "/", requests=2, concurrency=1, threads=3, duration=5.0)
    assert r.requests == 2 and server.answered == 2
    assert not r.stopped_by_duration


def test_duration_bounds_a_run_against_a_silent_server() -> None:
    with socket.socket() as listener:  # accepts (backlog) but never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        r = run(f"http://127.0.0.1:{listener.getsockname()[1]}/", requests=0, concurrency=4,
                duration=0.3)
    assert r.stopped_by_duration and r.requests == 0
    assert r.seconds == pytest.approx(0.3, abs=0.2)


def test_c_tool_is_used_when_built(server: CountingServer) -> None:
    if htstress.c_tool() is None:
        pytest.skip("kmod/htstress is not built")
    r = htstress.run_htstress(server.url + "/", requests=100, concurrency=10, engine="c",
                              duration=20)
    assert r.engine == "c" and r.good == 100


# --------------------------------------------------------------------------- CLI


def test_cli_prints_the_block_and_engine(server: CountingServer, capsys) -> None:
    rc = htstress.main(["-n", "20", "-c", "4", "--engine", "python", server.url + "/"])
    out, err = capsys.readouterr()
    assert rc == 0
    assert parse_block(out).good == 20
    assert "# engine: python" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["-n", "10", "ftp://127.0.0.1/"], "bad URL"),
        (["--bogus", "127.0.0.1"], "unrecognized arguments"),
        (["-n", "many", "127.0.0.1"], "invalid int"),
        (["-n", "10"], "missing URL"),
        (["-n", "1", "http://10.0.0.1/"], "loopback"),
    ],
)
def test_cli_errors_exit_2_with_a_message(argv: list[str], message: str, capsys) -> None:
    assert htstress.main(argv) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--duration", "nan", "127.0.0.1"], "--duration"),
        (["--duration", "inf", "127.0.0.1"], "--duration"),
        (["-n", "-5", "127.0.0.1"], "-n: must not be negative"),
        (["-c", "-1", "127.0.0.1"], "-c: must not be negative"),
    ],
)
def test_cli_bad_numbers_are_named(argv: list[str], message: str, capsys) -> None:
    assert htstress.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_cli_closed_port_exits_1_and_says_why(closed_url: str, capsys) -> None:
    rc = htstress.main(["-n", "5", "--engine", "python", closed_url])
    out, err = capsys.readouterr()
    assert rc == 1
    assert parse_block(out).socket_errors == 5  # the block is still printed
    assert "no request was answered" in err


def test_cli_more_connections_than_open_files_is_a_usage_error(capsys) -> None:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        pytest.skip("no hard limit on open files here")
    rc = htstress.main(["-n", "1", "-c", str(hard + 1), "--engine", "python", "127.0.0.1:9"])
    assert rc == 2
    assert "ulimit" in capsys.readouterr().err
    assert resource.getrlimit(resource.RLIMIT_NOFILE)[1] == hard


def test_cli_sigterm_prints_the_counts_so_far(server: CountingServer) -> None:
    """``timeout 3 khttpd-py htstress -n 0 ...`` must not lose the run's figures."""
    import signal
    import subprocess
    import sys
    import time

    proc = subprocess.Popen(
        [sys.executable, "-m", "khttpd_py", "htstress", "-n", "0", "-c", "2", "--engine",
         "python", server.url + "/"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    time.sleep(1.5)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=10)
    assert "Traceback" not in err
    result = parse_block(out)
    assert result.good > 0 and result.good <= server.answered


def test_cli_help_exits_0(capsys) -> None:
    assert htstress.main(["--help"]) == 0
    assert "-n N" in capsys.readouterr().out
