"""The benchmark lab: the same load against every server, alternating, with medians.

``python -m khttpd_py bench`` starts each server under test in its own process
on its own ephemeral 127.0.0.1 port, waits until each answers, then drives the
same htstress load (HTTP/1.0, one request per connection, 100 concurrent by
default) against each, **round by round, alternating servers** and rotating
their order so that a noisy neighbour on a shared machine hurts every server
alike rather than the one that happened to run at that moment.  A warm-up
round is run first and thrown away.  It reports, per server, the median of the
measured rounds and its ratio to thread mode, the peak number of threads of
the server process and its peak RSS, as a table, a JSON file and a PNG plot.

Every run is bounded (``--run-seconds``) and so is the whole bench
(``--max-seconds``: rounds stop early, and the report says so).  Servers are
stopped on the way out whatever happens: normal end, error, Ctrl-C, SIGTERM;
they also get ``PR_SET_PDEATHSIG`` so even a ``kill -9`` of the bench leaves
no orphans.

Servers (``--servers`` picks a subset; ``thread`` is the baseline):

=================  ============================================================
``thread``         khttpd_py, one thread per connection (upstream khttpd)
``cmwq``           khttpd_py, a work item per connection on an unbound workqueue
``cmwq-bound``     khttpd_py, the same on a bound (per-CPU, concurrency-managed) one
``threading``      ``http.server.ThreadingHTTPServer`` (``khttpd_py.peers``)
``asyncio``        an ``asyncio.Protocol`` server (``khttpd_py.peers``)
``sequential``     only when asked: one connection at a time, no concurrency, the
                   cost floor of a request in CPython (``khttpd_py.peers``)
``handoff``        only when asked: the same, but the accept loop hands each
                   connection to one worker thread (``khttpd_py.peers``)
``kernel-*``       ``--kernel``: the C module's two modes inside QEMU (TCG-emulated)
=================  ============================================================

JSON schema (``bench.json``, ``"schema": "khttpd-book/bench/1"``)::

    {
      "schema": "khttpd-book/bench/1",
      "created": "2025-01-01T12:00:00+00:00",       # UTC, ISO 8601
      "command": ["python", "-m", "khttpd_py", "bench", "--quick"],
      "machine": {"cpus": 2, "cpu_model": str, "kernel": str, "platform": str,
                  "python": "3.11.2", "loadavg_before": [1m, 5m, 15m],
                  "loadavg_after": [1m, 5m, 15m]},
      "load": {"engine": "python" | "c", "requests": int, "concurrency": int,
               "threads": int, "keep_alive": bool, "http": "1.0" | "1.1",
               "rounds": int, "warmup_rounds": int, "warmup_requests": int,
               "run_seconds": float},
      "metric": "good_per_sec",                       # good requests / seconds
      "baseline": "thread",
      "order": [["thread", "cmwq", ...], ...],        # server order of each measured round
      "complete": bool,                               # false if --max-seconds cut rounds
      "elapsed_seconds": float,
      "servers": {
        NAME: {
          "label": str, "kind": "python" | "kernel-tcg", "command": [str, ...],
          "warmup": [RUN, ...],
          "runs": [RUN, ...],                         # measured rounds, in order
          "median": float,                            # median of runs[*].good_per_sec
          "ratio_to": str,                            # baseline; kernel rows: "kernel-kthread"
          "ratio": float | null,                      # median / servers[ratio_to].median
          "threads_idle": int, "threads_peak": int,   # /proc/PID/status Threads:, sampled
          "rss_peak_kib": int,                        # VmHWM at the end
          "cpu_us_per_request": float | null          # median of the runs' server CPU / good
        }
      }
    }

    RUN = {"round": int, "requests": int, "good": int, "bad": int,
           "socket_errors": int, "seconds": float, "requests_per_sec": float,
           "good_per_sec": float, "engine": str, "keep_alive": bool,
           "stopped_by_duration": bool, "interrupted": bool, "threads_peak": int,
           "listen_drops": int,   # system-wide TcpExt ListenDrops during the run
           "server_cpu_seconds": float | null}   # the server's user+system CPU during the run

Invariants the exercise's grader checks (``exercises/05-benchmark``):
``median`` is the median of the runs' ``good_per_sec``, ``ratio`` is
``median / servers[ratio_to].median``, ``good_per_sec == good / seconds``, and
``good + bad <= requests <= good + bad + socket_errors`` (the C tool leaves
socket errors out of ``requests``, the Python one counts them in), and a
``cpu_us_per_request`` that is not null is the median of the runs'
``server_cpu_seconds * 1e6 / good`` (reports written before it existed have
neither field and still pass).

Threads are sampled every 20 ms, so a short-lived spike can be missed; the
figure is a lower bound of the true peak.  For the kernel rows threads and RSS
are not measured (null).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from khttpd_py import htstress
from khttpd_py.argtypes import int_in, seconds_in
from khttpd_py.signals import sigterm_as_interrupt

SCHEMA = "khttpd-book/bench/1"
BASELINE = "thread"
PY = sys.executable


@dataclass(frozen=True)
class ServerSpec:
    """How to start one server under test."""

    name: str
    label: str
    argv: tuple[str, ...]
    kind: str = "python"


def _khttpd(mode: str, *extra: str) -> tuple[str, ...]:
    return (PY, "-m", "khttpd_py", "serve", "--mode", mode, "--host", "127.0.0.1",
            "--port", "0", *extra)


SERVERS: dict[str, ServerSpec] = {
    spec.name: spec
    for spec in (
        ServerSpec("thread", "khttpd_py thread/conn", _khttpd("thread")),
        ServerSpec("cmwq", "khttpd_py cmwq unbound", _khttpd("cmwq")),
        ServerSpec("cmwq-bound", "khttpd_py cmwq bound", _khttpd("cmwq", "--wq-flags", "bound")),
        # opt-in until the event mode is tuned (issue 19): a work item per ready request
        ServerSpec("cmwq-event", "khttpd_py cmwq-event unbound", _khttpd("cmwq-event")),
        ServerSpec("threading", "ThreadingHTTPServer",
                   (PY, "-m", "khttpd_py.peers", "threading", "--port", "0")),
        ServerSpec("asyncio", "asyncio Protocol",
                   (PY, "-m", "khttpd_py.peers", "asyncio", "--port", "0")),
        ServerSpec("sequential", "sequential (floor)",
                   (PY, "-m", "khttpd_py.peers", "sequential", "--port", "0")),
        ServerSpec("handoff", "handoff to 1 thread",
                   (PY, "-m", "khttpd_py.peers", "handoff", "--port", "0")),
    )
}
"""Every local server the bench knows, baseline first."""

DEFAULT_SERVERS = ("thread", "cmwq", "cmwq-bound", "threading", "asyncio")
"""What the bench runs unless ``--servers`` says otherwise (the floor is opt-in)."""


# --------------------------------------------------------------------------- /proc


def proc_status(pid: int) -> dict[str, int]:
    """``Threads``, ``VmRSS`` and ``VmHWM`` (KiB) of a process; empty if it is gone."""
    wanted = {"Threads", "VmRSS", "VmHWM"}
    out: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key in wanted:
                    out[key] = int(value.split()[0])
    except (OSError, ValueError):
        return {}
    return out


def proc_cpu_seconds(pid: int) -> float | None:
    """User plus system CPU time of a process and all its threads (``/proc/PID/stat``).

    Requests per second depend on everything sharing the machine, the load
    generator first; CPU seconds per request are what the server itself pays.
    The counters tick at ``SC_CLK_TCK`` (100 Hz), so a run needs a second or
    more of server CPU for a figure within a few percent.  None if it is gone.
    """
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def cpu_us_per_request(runs: list[dict]) -> float | None:
    """Median over the runs of the server's CPU per good request, in microseconds."""
    costs = [run["server_cpu_seconds"] * 1e6 / run["good"] for run in runs
             if _num(run.get("server_cpu_seconds")) and run.get("good")]
    return statistics.median(costs) if costs else None


def listen_drops() -> int:
    """The system-wide TcpExt ``ListenDrops`` counter (0 if unreadable).

    A SYN that finds a full accept queue is dropped and the client retries it
    only after a second, so a run with drops measures timeouts, not the server.
    The counter is for the whole machine (other users' servers count too).
    """
    try:
        lines = Path("/proc/net/netstat").read_text().splitlines()
    except OSError:
        return 0
    for head, values in zip(lines[::2], lines[1::2], strict=False):
        if head.startswith("TcpExt:"):
            table = dict(zip(head.split()[1:], values.split()[1:], strict=False))
            return int(table.get("ListenDrops", 0))
    return 0


# --------------------------------------------------------------------------- servers


class ServerProcess:
    """One server under test: start it, find its port, sample it, stop it for sure."""

    def __init__(self, spec: ServerSpec, log_dir: Path | None = None) -> None:
        self.spec = spec
        self.proc: subprocess.Popen[str] | None = None
        self.port = 0
        self.threads_idle = 0
        self.threads_peak = 0
        self.window_peak = 0
        self.rss_peak_kib = 0
        self.output: list[str] = []
        self._port_seen = threading.Event()
        self._sampling = threading.Event()
        self._log = (log_dir / f"{spec.name}.log") if log_dir else None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self, timeout: float = 20.0) -> None:
        """Start the process and return once it answers a GET (or raise RuntimeError)."""
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            htstress.die_with_parent(self.spec.argv), stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, start_new_session=True, env=env,
            cwd=Path(__file__).resolve().parent.parent,
        )
        threading.Thread(target=self._drain, daemon=True).start()
        if not self._port_seen.wait(timeout):
            raise RuntimeError(f"{self.spec.name}: no 'serving http://...' line: "
                               f"{self._tail()}")
        wait_until_ready(self.url, timeout, self.proc)
        self.threads_idle = proc_status(self.proc.pid).get("Threads", 0)
        self._sampling.set()
        threading.Thread(target=self._sample, daemon=True).start()

    def _drain(self) -> None:
        """Read the server's output: find its port, keep a tail for error messages."""
        assert self.proc and self.proc.stdout
        for line in self.proc.stdout:
            self.output = (self.output + [line.rstrip()])[-20:]
            m = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
            if m and not self.port:
                self.port = int(m.group(1))
                self._port_seen.set()
        if self._log:
            self._log.write_text("\n".join(self.output) + "\n")

    def _tail(self) -> str:
        return " | ".join(self.output[-5:]) or "(no output)"

    def _sample(self) -> None:
        """Every 20 ms: record peak threads (overall and in the current run) and VmHWM."""
        assert self.proc
        while self._sampling.is_set():
            status = proc_status(self.proc.pid)
            if not status:
                break
            threads = status.get("Threads", 0)
            self.threads_peak = max(self.threads_peak, threads)
            self.window_peak = max(self.window_peak, threads)
            self.rss_peak_kib = max(self.rss_peak_kib, status.get("VmHWM", 0))
            time.sleep(0.02)

    def reset_window(self) -> None:
        self.window_peak = proc_status(self.proc.pid).get("Threads", 0) if self.proc else 0

    def stop(self) -> None:
        """SIGINT (the server's Ctrl-C), then SIGTERM, then SIGKILL of its whole group.

        The group is only signalled while its leader (the server) is alive, so a
        reused PID can never turn this into a signal to someone else's processes.
        """
        if self.proc is None:
            return
        final = proc_status(self.proc.pid)
        self.rss_peak_kib = max(self.rss_peak_kib, final.get("VmHWM", 0))
        self._sampling.clear()
        for sig, grace in ((signal.SIGINT, 5.0), (signal.SIGTERM, 2.0), (signal.SIGKILL, 2.0)):
            if self.proc.poll() is not None:
                break
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(grace)


def wait_until_ready(url: str, timeout: float, proc: subprocess.Popen | None = None) -> None:
    """Poll with a real GET until a 200 comes back; fail early if the process died."""
    host, port, _ = htstress.parse_url(url)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with status {proc.returncode} before answering")
        try:
            with socket.create_connection((host, port), timeout=1.0) as sock:
                sock.sendall(b"GET / HTTP/1.0\r\nHost: bench\r\n\r\n")
                if sock.recv(64).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer within {timeout:g} s")


@contextlib.contextmanager
def running(specs: list[ServerSpec], log_dir: Path | None = None) -> Iterator[list[ServerProcess]]:
    """Start every server; stop every one on the way out, whatever the way out is."""
    procs: list[ServerProcess] = []
    try:
        for spec in specs:
            server = ServerProcess(spec, log_dir)
            procs.append(server)
            server.start()
        yield procs
    finally:
        for server in procs:
            server.stop()


# --------------------------------------------------------------------------- rounds


@dataclass
class LoadSpec:
    """The load every server gets."""

    requests: int = 10000
    concurrency: int = 100
    threads: int = 1
    keep_alive: bool = False
    engine: str = "auto"
    run_seconds: float = 30.0


def run_once(server: ServerProcess, load: LoadSpec, round_no: int,
             requests: int | None = None) -> dict:
    """One htstress run against one server, as a RUN record of the schema."""
    server.reset_window()
    drops = listen_drops()
    pid = server.proc.pid if server.proc else 0
    cpu_before = proc_cpu_seconds(pid)
    result = htstress.run_htstress(server.url, requests or load.requests, load.concurrency,
                                   load.threads, load.run_seconds, load.keep_alive, load.engine)
    time.sleep(0.03)  # let the sampler see the last threads before they exit
    cpu_after = proc_cpu_seconds(pid)
    cpu = None
    if cpu_before is not None and cpu_after is not None:
        cpu = round(cpu_after - cpu_before, 3)
    run = result.to_dict()
    del run["requests_per_sec"]
    run = {"round": round_no, **run, "requests_per_sec": result.requests_per_sec,
           "good_per_sec": result.good_per_sec, "threads_peak": server.window_peak,
           "listen_drops": listen_drops() - drops, "server_cpu_seconds": cpu}
    return run


def rotation(names: list[str], round_no: int) -> list[str]:
    """Round r runs the servers starting at index r: each server takes every position."""
    k = round_no % len(names) if names else 0
    return names[k:] + names[:k]


class Progress:
    """A one-line progress bar on stderr (a plain line per step when not a terminal)."""

    def __init__(self, total: int, enabled: bool = True, stream=None) -> None:
        self.total, self.done, self.enabled = total, 0, enabled
        self.stream = stream or sys.stderr
        self.started = time.monotonic()
        self.tty = self.stream.isatty()

    def step(self, text: str) -> None:
        self.done += 1
        if not self.enabled:
            return
        width = 30
        filled = width * self.done // max(self.total, 1)
        bar = "#" * filled + "." * (width - filled)
        line = (f"[{bar}] {self.done}/{self.total} {text} "
                f"({time.monotonic() - self.started:.0f} s)")
        if self.tty:
            self.stream.write("\r" + line.ljust(90)[:110])
            if self.done >= self.total:
                self.stream.write("\n")
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.tty and self.done < self.total:
            self.stream.write("\n")


def drive(servers: list[ServerProcess], load: LoadSpec, rounds: int, warmup: int,
          max_seconds: float, progress: Progress, warmup_requests: int | None = None,
          ) -> tuple[dict[str, dict], list[list[str]], bool]:
    """Warm-up rounds, then measured rounds in rotating order; stop early at ``max_seconds``."""
    by_name = {s.spec.name: s for s in servers}
    names = list(by_name)
    warm: dict[str, list[dict]] = {n: [] for n in names}
    runs: dict[str, list[dict]] = {n: [] for n in names}
    order: list[list[str]] = []
    deadline = time.monotonic() + max_seconds
    complete = True
    for r in range(warmup + rounds):
        if time.monotonic() > deadline:
            complete = False
            break
        measured = r >= warmup
        this_order = rotation(names, r)
        for name in this_order:
            if measured:
                run = run_once(by_name[name], load, r - warmup)
            else:
                run = run_once(by_name[name], load, r, warmup_requests)
            (runs if measured else warm)[name].append(run)
            progress.step(f"{'round ' + str(r - warmup + 1) if measured else 'warm-up'} {name}")
        if measured:
            order.append(this_order)
    return {n: {"warmup": warm[n], "runs": runs[n]} for n in names}, order, complete


# --------------------------------------------------------------------------- report


KERNEL_BASELINE = "kernel-kthread"


def summarize(results: dict[str, dict], baseline: str = BASELINE) -> None:
    """Add ``median``, ``ratio`` and ``ratio_to`` to each server's entry.

    Python rows are compared with ``baseline`` (thread mode); kernel rows,
    measured on an emulated CPU, only with the kernel's own kthread mode.
    ``ratio`` is None when its baseline is missing or has a zero median.
    """
    for entry in results.values():
        rates = [run["good_per_sec"] for run in entry["runs"]]
        entry["median"] = statistics.median(rates) if rates else 0.0
        entry["cpu_us_per_request"] = cpu_us_per_request(entry["runs"])
    for entry in results.values():
        entry["ratio_to"] = KERNEL_BASELINE if entry.get("kind") == "kernel-tcg" else baseline
        base = results.get(entry["ratio_to"], {}).get("median") or 0.0
        entry["ratio"] = entry["median"] / base if base else None


def machine_info() -> dict:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {"cpus": os.cpu_count(), "cpu_model": model, "kernel": platform.release(),
            "platform": platform.platform(), "python": platform.python_version(),
            "loadavg_before": list(os.getloadavg())}


def format_table(report: dict) -> str:
    """The human-readable table: one row per server, baseline first."""
    head = (f"{'server':<24} {'median req/s':>12} {'ratio':>6} {'min..max req/s':>17} "
            f"{'CPU/req':>8} {'threads':>7} {'peak RSS':>9} {'errors':>6}")
    lines = [head, "-" * len(head)]
    drops = 0
    for e in report["servers"].values():
        rates = [r["good_per_sec"] for r in e["runs"]] or [0.0]
        errors = sum(r["socket_errors"] + r["bad"] for r in e["runs"])
        drops += sum(r.get("listen_drops") or 0 for r in e["runs"])
        ratio = f"{e['ratio']:.2f}x" if e.get("ratio") is not None else "-"
        threads = "-" if e.get("threads_peak") is None else str(e["threads_peak"])
        rss = "-" if e.get("rss_peak_kib") is None else f"{e['rss_peak_kib'] / 1024:.1f}M"
        cost = e.get("cpu_us_per_request")
        cpu = "-" if cost is None else f"{cost:.0f}us"
        lines.append(f"{e['label']:<24} {e['median']:>12.0f} {ratio:>6} "
                     f"{min(rates):>8.0f}..{max(rates):<8.0f} {cpu:>8} {threads:>7} {rss:>9} "
                     f"{errors:>6}")
    load = report["load"]
    lines.append(f"load: {load['requests']} requests x {load['rounds']} rounds per server, "
                 f"{load['concurrency'] * load['threads']} concurrent, HTTP/{load['http']}, "
                 f"engine {load['engine']}; medians of good req/s; ratio vs {report['baseline']}; "
                 "CPU/req: the server's CPU time per good request (median of the rounds)")
    if any(e["kind"] == "kernel-tcg" for e in report["servers"].values()):
        lines.append("kernel rows ran inside QEMU with TCG (an emulated CPU, no KVM): their "
                     "ratio is vs kernel kthread mode, their CPU/req is all guest CPU but "
                     "htstress's; never compare them with the Python rows")
    if drops:
        lines.append(f"NOTE: {drops} SYNs were dropped by full accept queues during the runs "
                     "(system-wide TcpExt ListenDrops); each costs its client a 1 s retry")
    if not report["complete"]:
        lines.append("NOTE: --max-seconds cut the run short; fewer rounds than asked")
    return "\n".join(lines)


def plot(report: dict, path: Path) -> Path | None:
    """Bars = medians, dots = each round; then CPU per request and peak threads.

    The two right panels show the Python servers only: the kernel rows' CPU
    is an emulated guest's and would dwarf theirs, and their threads are not
    measured.  None without matplotlib.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    entries = list(report["servers"].values())
    labels = [name + ("\n(QEMU TCG)" if e.get("kind") == "kernel-tcg" else "")
              for name, e in report["servers"].items()]
    fig, (ax1, ax3, ax2) = plt.subplots(1, 3, figsize=(14, 4),
                                        gridspec_kw={"width_ratios": [3, 2, 2]})
    xs = range(len(entries))
    kernel = [e.get("kind") == "kernel-tcg" for e in entries]
    ax1.bar(xs, [e["median"] for e in entries], label="median",
            color=["#d0d0d0" if k else "#8fb3d9" for k in kernel],
            hatch=None if not any(kernel) else "")
    for x, is_kernel in zip(xs, kernel, strict=True):
        if is_kernel:  # emulated CPU: mark the bar so nobody compares it with the others
            ax1.bar([x], [entries[x]["median"]], color="none", hatch="//", edgecolor="#888888")
    for x, e in zip(xs, entries, strict=True):
        rates = [r["good_per_sec"] for r in e["runs"]]
        ax1.plot([x] * len(rates), rates, "k.", alpha=0.6)
        if e.get("ratio") is not None:
            ax1.annotate(f"{e['ratio']:.2f}x", (x, max(rates + [e["median"]])), ha="center",
                         va="bottom", xytext=(0, 3), textcoords="offset points")
    ax1.set_xticks(list(xs), labels, fontsize=8, rotation=30, ha="right")
    ax1.set_ylim(0, ax1.get_ylim()[1] * 1.1)  # room for the ratio labels
    ax1.set_ylabel("good requests / s (dots: rounds)")
    ax1.set_title(f"{report['load']['requests']} requests, "
                  f"{report['load']['concurrency'] * report['load']['threads']} concurrent, "
                  f"HTTP/{report['load']['http']}")
    for ax, key, color, ylabel in (
        (ax3, "cpu_us_per_request", "#a3c98f", "server CPU per good request (us)"),
        (ax2, "threads_peak", "#d9a38f", "peak threads in the server process"),
    ):
        rows = [(label, e[key]) for label, e, k in zip(labels, entries, kernel, strict=True)
                if not k and e.get(key) is not None]
        ax.bar(range(len(rows)), [value for _, value in rows], color=color)
        ax.set_xticks(list(range(len(rows))), [label for label, _ in rows], fontsize=8,
                      rotation=30, ha="right")
        ax.set_ylabel(ylabel)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


# --------------------------------------------------------------------------- checks

LOCAL_SERVERS = DEFAULT_SERVERS
_RUN_INTS = ("round", "requests", "good", "bad", "socket_errors")


def _close(a: float, b: float, rel: float = 1e-6) -> bool:
    return abs(a - b) <= rel * max(abs(a), abs(b), 1e-9)


def _num(x: object) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def _check_run(where: str, run: object, limit: int) -> list[str]:
    """Problems of one RUN record: types, counts that add up, a rate that matches its counts."""
    if not isinstance(run, dict):
        return [f"{where}: not an object"]
    missing = [k for k in (*_RUN_INTS, "seconds", "good_per_sec") if k not in run]
    if missing:
        return [f"{where}: missing {missing}"]
    if not all(isinstance(run[k], int) and run[k] >= 0 for k in _RUN_INTS):
        return [f"{where}: {', '.join(_RUN_INTS)} must be integers >= 0"]
    if not (_num(run["seconds"]) and run["seconds"] > 0 and _num(run["good_per_sec"])):
        return [f"{where}: seconds must be > 0 and good_per_sec a number"]
    problems = []
    good, bad, err, total = run["good"], run["bad"], run["socket_errors"], run["requests"]
    if not good + bad <= total <= good + bad + err:
        problems.append(f"{where}: counts do not add up: good {good} + bad {bad} "
                        f"(+ socket errors {err}) vs requests {total}")
    if limit and total > limit:
        problems.append(f"{where}: {total} requests, more than the load's {limit}")
    if not _close(run["good_per_sec"], good / run["seconds"]):
        problems.append(f"{where}: good_per_sec {run['good_per_sec']} != good / seconds "
                        f"{good / run['seconds']:.3f}")
    cpu = run.get("server_cpu_seconds")
    if cpu is not None and not (_num(cpu) and cpu >= 0):
        problems.append(f"{where}: server_cpu_seconds must be a number >= 0 or null")
    return problems


def _check_server(name: str, entry: object, rounds: int, limit: int) -> list[str]:
    if not isinstance(entry, dict) or not isinstance(entry.get("runs"), list):
        return [f"servers.{name}: no runs list"]
    runs = entry["runs"]
    problems = []
    if len(runs) != rounds:
        problems.append(f"servers.{name}: {len(runs)} runs, the report has {rounds} rounds")
    for i, run in enumerate(runs):
        problems += _check_run(f"servers.{name}.runs[{i}]", run, limit)
    if problems or not runs:
        return problems or [f"servers.{name}: no runs"]
    median = statistics.median(r["good_per_sec"] for r in runs)
    if not _num(entry.get("median")) or not _close(entry["median"], median):
        problems.append(f"servers.{name}.median {entry.get('median')} is not the median of "
                        f"its runs ({median:.3f})")
    if entry.get("cpu_us_per_request") is not None:
        cost = cpu_us_per_request(runs)
        if cost is None or not _num(entry["cpu_us_per_request"]) \
                or not _close(entry["cpu_us_per_request"], cost):
            problems.append(f"servers.{name}.cpu_us_per_request {entry['cpu_us_per_request']} "
                            f"is not the median of its runs' server CPU per good request")
    if entry.get("kind", "python") == "python":
        for key in ("threads_peak", "rss_peak_kib"):
            if not isinstance(entry.get(key), int) or entry[key] < 1:
                problems.append(f"servers.{name}.{key} must be a positive integer")
    return problems


def check_report(report: object, required: tuple[str, ...] = LOCAL_SERVERS,
                 min_rounds: int = 1) -> list[str]:
    """Every inconsistency in a bench report (empty list = consistent); never raises.

    It checks structure and internal consistency only, never absolute speed:
    the servers asked for are present, each run's counts add up and its rate
    matches its counts, each median is the median of its runs, each ratio is
    its median over the baseline's, and the round order alternates servers.
    The exercise grader and the tests use it on reports a student may have
    edited by hand.
    """
    if not isinstance(report, dict):
        return ["the report is not a JSON object"]
    problems = []
    if report.get("schema") != SCHEMA:
        problems.append(f"schema is {report.get('schema')!r}, expected {SCHEMA!r}")
    load, servers = report.get("load"), report.get("servers")
    if not isinstance(load, dict) or not isinstance(servers, dict):
        return problems + ["'load' and 'servers' must be objects"]
    rounds, limit = load.get("rounds"), load.get("requests")
    if not isinstance(rounds, int) or not isinstance(limit, int) or rounds < min_rounds:
        return problems + [f"load.rounds must be an integer >= {min_rounds} and "
                           "load.requests an integer"]
    order = report.get("order")
    if not isinstance(order, list):
        return problems + ["'order' must be a list of rounds"]
    measured = len(order)
    if report.get("complete", True) and measured != rounds:
        problems.append(f"{measured} rounds in 'order', load.rounds says {rounds}")
    problems += [f"server {n!r} is missing" for n in required if n not in servers]
    local = sorted(n for n, e in servers.items()
                   if isinstance(e, dict) and e.get("kind", "python") == "python")
    for i, names in enumerate(order):
        if not isinstance(names, list) or sorted(names) != local:
            problems.append(f"order[{i}] is not one run of each local server")
    for name, entry in servers.items():
        if name in local:
            problems += _check_server(name, entry, measured, limit)
        else:  # kernel rows: the VM sets its own rounds and request count
            problems += _check_server(name, entry, len((entry or {}).get("runs") or []), 0)
    if problems:
        return problems
    return _check_ratios(report)


def _check_ratios(report: dict) -> list[str]:
    servers = report["servers"]
    if report.get("baseline") not in servers:
        return [f"baseline {report.get('baseline')!r} is not among the servers"]
    problems = []
    for name, entry in servers.items():
        ratio_to = entry.get("ratio_to", report["baseline"])
        if ratio_to not in servers:
            problems.append(f"servers.{name}.ratio_to {ratio_to!r} is not among the servers")
            continue
        base = servers[ratio_to]["median"]
        want = entry["median"] / base if base else None
        got = entry.get("ratio")
        if want is None:
            if got is not None:
                problems.append(f"servers.{name}.ratio should be null (baseline median is 0)")
        elif not _num(got) or not _close(got, want):
            problems.append(f"servers.{name}.ratio {got} != median / baseline median "
                            f"({want:.6f})")
    return problems


# --------------------------------------------------------------------------- API


@dataclass
class BenchConfig:
    """Everything one bench run needs; the CLI and notebooks both build one."""

    servers: list[str] = field(default_factory=lambda: list(DEFAULT_SERVERS))
    load: LoadSpec = field(default_factory=LoadSpec)
    rounds: int = 5
    warmup: int = 1
    max_seconds: float = 600.0
    out: Path | None = Path("bench-results")
    progress: bool = True
    kernel: bool = False
    warmup_requests: int | None = None
    """Requests per warm-up run (None: as many as a measured run)."""
    command: list[str] = field(default_factory=lambda: list(sys.argv))


def run_bench(cfg: BenchConfig) -> dict:
    """Run the whole bench and return the report (also written to ``cfg.out`` if set)."""
    unknown = [n for n in cfg.servers if n not in SERVERS]
    if unknown:
        raise ValueError(f"unknown server(s) {unknown}; choose from {list(SERVERS)}")
    specs = [SERVERS[n] for n in cfg.servers]
    started = time.monotonic()
    machine = machine_info()
    engine, _ = htstress.choose_engine(cfg.load.engine, cfg.load.keep_alive)
    if cfg.out:
        cfg.out.mkdir(parents=True, exist_ok=True)
    progress = Progress(len(specs) * (cfg.rounds + cfg.warmup), cfg.progress)
    try:
        with running(specs, cfg.out) as procs:
            results, order, complete = drive(procs, cfg.load, cfg.rounds, cfg.warmup,
                                             cfg.max_seconds, progress, cfg.warmup_requests)
            for server in procs:
                server.stop()  # reads the final VmHWM; stopping twice is harmless
                results[server.spec.name].update(
                    label=server.spec.label, kind=server.spec.kind,
                    command=list(server.spec.argv), threads_idle=server.threads_idle,
                    threads_peak=server.threads_peak, rss_peak_kib=server.rss_peak_kib)
    finally:
        progress.close()
    if cfg.kernel:
        results.update(kernel_rows(cfg))
    summarize(results)
    machine["loadavg_after"] = list(os.getloadavg())
    report = {
        "schema": SCHEMA,
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": cfg.command,
        "machine": machine,
        "load": {"engine": engine, "requests": cfg.load.requests,
                 "concurrency": cfg.load.concurrency, "threads": cfg.load.threads,
                 "keep_alive": cfg.load.keep_alive,
                 "http": "1.1" if cfg.load.keep_alive else "1.0", "rounds": cfg.rounds,
                 "warmup_rounds": cfg.warmup,
                 "warmup_requests": cfg.warmup_requests or cfg.load.requests,
                 "run_seconds": cfg.load.run_seconds},
        "metric": "good_per_sec",
        "baseline": BASELINE,
        "order": order,
        "complete": complete,
        "elapsed_seconds": round(time.monotonic() - started, 3),
        "servers": results,
    }
    if cfg.out:
        (cfg.out / "bench.json").write_text(json.dumps(report, indent=1) + "\n")
        plot(report, cfg.out / "bench.png")
    return report


# --------------------------------------------------------------------------- kernel (VM)

VMTEST = Path(__file__).resolve().parent.parent / "kmod" / "vmtest.sh"


def kernel_available() -> tuple[bool, str]:
    """Whether ``--kernel`` can run here, and why not if it cannot."""
    from shutil import which

    if not VMTEST.is_file():
        return False, f"{VMTEST} does not exist yet"
    if which("qemu-system-x86_64") is None:
        return False, "qemu-system-x86_64 is not installed"
    return True, ""


_VM_ROUND = re.compile(
    r"^#\s*round\s+(\d+)\s+(\w+):\s+([0-9.]+)\s+requests/sec\s+\(good\s+(\d+)/(\d+)\)",
    re.MULTILINE)
_VM_CPU = re.compile(
    r"^#\s*cpu\s+round\s+(\d+)\s+(\w+):.*\(htstress\s+[0-9.]+,\s+other\s+([0-9.]+)\)",
    re.MULTILINE)


def kernel_rows(cfg: BenchConfig) -> dict[str, dict]:
    """Run the module's two modes in QEMU via ``kmod/vmtest.sh`` and return schema rows.

    ``VMTEST_ONLY=bench`` makes the guest load the module in each mode in turn,
    alternating the order round by round as the Python rows do, and print one
    ``# round R MODE: RPS requests/sec (good G/N)`` line per run.  Rows carry
    ``kind: kernel-tcg`` because the guest CPU is emulated (no KVM here): only
    the kernel rows' ratio to *each other* means anything.
    """
    ok, why = kernel_available()
    if not ok:
        print(f"bench --kernel: skipped: {why}", file=sys.stderr)
        return {}
    # KVM is unusable on the project's machines (kmod-vm-notes); TCG unless the user says.
    env = dict(os.environ, VMTEST_ACCEL=os.environ.get("VMTEST_ACCEL", "tcg"),
               VMTEST_ONLY="bench", VMTEST_ROUNDS=str(cfg.rounds),
               VMTEST_REQUESTS=str(min(cfg.load.requests, 2000)),
               VMTEST_CONC=str(max(1, cfg.load.concurrency // 2)), VMTEST_THREADS="2")
    print("bench --kernel: booting the module in QEMU (TCG, about a minute)...", file=sys.stderr)
    try:
        proc = subprocess.run(["bash", str(VMTEST)], capture_output=True, text=True,
                              timeout=max(300.0, cfg.max_seconds), env=env)
    except subprocess.TimeoutExpired:
        print("bench --kernel: the VM did not finish in time", file=sys.stderr)
        return {}
    rows = parse_kernel_output(proc.stdout)
    if not rows:
        tail = " | ".join(proc.stdout.strip().splitlines()[-3:])
        print(f"bench --kernel: no figures from vmtest.sh (exit {proc.returncode}): {tail}",
              file=sys.stderr)
    return rows


def parse_kernel_output(text: str) -> dict[str, dict]:
    """Turn the VM's ``# round R MODE: RPS requests/sec (good G/N)`` lines into kernel rows.

    The guest's htstress makes exactly N attempts and its requests/sec is
    attempts / seconds, so seconds = N / RPS.  The summary line does not split
    failures into bad requests and socket errors; they are all counted as
    socket errors (the VM test fails a round that has any).  The guest has no
    server process to measure, so a run's ``server_cpu_seconds`` is all the
    CPU the guest spent outside htstress (the ``other`` ms per attempt of its
    ``# cpu round`` line, times N): the module's threads and kworkers and the
    kernel's TCP work for them.
    """
    other_ms = {(int(m[1]), m[2]): float(m[3]) for m in _VM_CPU.finditer(text)}
    rows: dict[str, dict] = {}
    for m in _VM_ROUND.finditer(text):
        round_no, mode, rps, good, total = (int(m[1]), m[2], float(m[3]), int(m[4]), int(m[5]))
        if rps <= 0:
            continue
        seconds = total / rps
        other = other_ms.get((round_no, mode))
        row = rows.setdefault(f"kernel-{mode}", {
            "label": f"kernel {mode} (QEMU TCG)", "kind": "kernel-tcg",
            "command": ["kmod/vmtest.sh", "VMTEST_ONLY=bench"], "warmup": [], "runs": [],
            "threads_idle": None, "threads_peak": None, "rss_peak_kib": None})
        row["runs"].append({
            "round": round_no - 1, "requests": total, "good": good, "bad": 0,
            "socket_errors": total - good, "seconds": seconds, "requests_per_sec": rps,
            "good_per_sec": good / seconds, "engine": "c", "keep_alive": False,
            "stopped_by_duration": False, "interrupted": False, "threads_peak": None,
            "server_cpu_seconds": None if other is None else round(other * total / 1000, 3)})
    return rows


# --------------------------------------------------------------------------- CLI


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="khttpd-py bench",
        description="Benchmark khttpd_py's thread and cmwq modes against stdlib peers: "
        "same load, alternating rounds, medians, ratios vs thread mode.")
    p.add_argument("--quick", action="store_true",
                   help="3 rounds of 3000 requests after 1 warm-up: under a minute")
    p.add_argument("--servers", type=_server_names, default=DEFAULT_SERVERS,
                   help=f"comma-separated subset of {','.join(SERVERS)} "
                   f"(default: {','.join(DEFAULT_SERVERS)})")
    p.add_argument("-n", "--requests", type=int_in(1), default=10000, help="requests per run")
    p.add_argument("-c", "--concurrency", type=int_in(1), default=100,
                   help="concurrent connections per htstress thread (default 100)")
    p.add_argument("-t", "--threads", type=int_in(1), default=1,
                   help="htstress threads (default 1)")
    p.add_argument("--rounds", type=int_in(1), default=5, help="measured rounds (default 5)")
    p.add_argument("--warmup", type=int_in(0), default=1, help="warm-up rounds (default 1)")
    p.add_argument("-k", "--keep-alive", action="store_true",
                   help="HTTP/1.1 keep-alive load instead of one request per connection")
    p.add_argument("--engine", choices=("auto", "c", "python"), default="auto",
                   help="htstress engine (auto: kmod/htstress if built)")
    seconds = seconds_in(0, 1e6, low_open=True)
    p.add_argument("--run-seconds", type=seconds, default=30.0, help="bound on each run")
    p.add_argument("--max-seconds", type=seconds, default=600.0,
                   help="bound on the whole bench; later rounds are skipped (default 600)")
    p.add_argument("--out", type=Path, default=Path("bench-results"),
                   help="directory for bench.json, bench.png and server logs")
    p.add_argument("--kernel", action="store_true",
                   help="also run the C module's two modes in QEMU (TCG-emulated)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def _server_names(text: str) -> list[str]:
    """An argparse type: ``thread,cmwq``-style names, each one of ``SERVERS``, once."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in SERVERS]
    if not names or unknown:
        raise argparse.ArgumentTypeError(
            f"unknown server(s) {', '.join(unknown) or repr(text)}; "
            f"choose from {', '.join(SERVERS)}")
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:  # the report has one row per name: a second server would be lost
        raise argparse.ArgumentTypeError(f"server(s) listed twice: {', '.join(twice)}")
    return names


def _prepare_out(out: Path) -> str | None:
    """Create ``--out`` before any server starts; the reason it cannot be used, or None."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return f"--out {out}: {exc.strerror or exc}"
    if not os.access(out, os.W_OK | os.X_OK):
        return f"--out {out}: not writable"
    return None


def config_from_args(args: argparse.Namespace, argv: list[str]) -> BenchConfig:
    servers = list(args.servers)
    load = LoadSpec(args.requests, args.concurrency, args.threads, args.keep_alive,
                    args.engine, args.run_seconds)
    cfg = BenchConfig(servers=servers, load=load, rounds=args.rounds, warmup=args.warmup,
                      max_seconds=args.max_seconds, out=args.out, progress=not args.no_progress,
                      kernel=args.kernel, command=["python", "-m", "khttpd_py", "bench", *argv])
    if args.quick:
        cfg.rounds, cfg.warmup, cfg.load.requests = 3, 1, 3000
        cfg.max_seconds = min(cfg.max_seconds, 50.0)
        cfg.load.run_seconds = min(cfg.load.run_seconds, 10.0)
    return cfg


def main(argv: list[str] | None = None) -> int:
    """CLI: 0 on success, 1 if a server failed, 2 on bad arguments, 130 on Ctrl-C."""
    argv = sys.argv[1:] if argv is None else argv
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 2
    cfg = config_from_args(args, argv)
    why = _prepare_out(cfg.out) if cfg.out else None
    if why:
        print(f"khttpd-py bench: error: {why}", file=sys.stderr)
        return 2
    if cfg.kernel:
        ok, why = kernel_available()
        if not ok:
            print(f"bench: --kernel is not available here: {why}; running Python servers only",
                  file=sys.stderr)
    try:
        with sigterm_as_interrupt():  # a killed bench still stops its servers
            report = run_bench(cfg)
    except htstress.UsageError as exc:  # e.g. --engine c with no kmod/htstress built
        print(f"khttpd-py bench: error: {exc}", file=sys.stderr)
        return 2
    except (ValueError, RuntimeError) as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nbench: interrupted; every server was stopped", file=sys.stderr)
        return 130
    print(format_table(report))
    if cfg.out:
        print(f"wrote {cfg.out / 'bench.json'} and {cfg.out / 'bench.png'}")
    return 0
