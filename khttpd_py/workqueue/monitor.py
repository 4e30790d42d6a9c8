"""``python -m khttpd_py wq-monitor``: wq_monitor.py for a running Python khttpd.

The kernel tool reads workqueue counters out of kernel memory with drgn.  Our
workqueues live in another process, so the transport is HTTP: the server runs
``start_stats_server`` (``khttpd_py serve --stats-port 8082``), which answers
``GET /stats`` on 127.0.0.1 with JSON, and this command polls it every
``-i SECS`` seconds and prints the tool's table (or, with ``-j``, one JSON
record per workqueue per line, the tool's ``-j`` keys).

Options follow the tool: ``REGEX...`` filters workqueue names, ``-i 0``
prints once and exits; ``--count N`` stops after N reports.  A refused
connection means no server is publishing stats there: a message, exit 1.
"""

from __future__ import annotations

import argparse
import http.client
import json
import re
import sys
import time
from collections.abc import Sequence
from typing import Any

from khttpd_py.argtypes import int_in, seconds_in
from khttpd_py.workqueue.stats import WqStats, table_header
from khttpd_py.workqueue.stats_server import DEFAULT_STATS_PORT

DESCRIPTION = """\
Monitor the workqueues of a running khttpd_py server (like tools/workqueue/wq_monitor.py).

  total    work items executed
  infl     work items in flight (started, not completed)
  CPUtime  CPU seconds of kworkers busy with the workqueue's items
  CPUitsv  kworkers that hogged a CPU past wq_cpu_intensive_thresh_us (not modelled: 0)
  CMW/RPR  concurrency-management wakeups (per-CPU) / repatriations (unbound)
  mayday   rescuer requests while worker creation failed (WQ_MEM_RECLAIM only)
  rescued  items the rescuer executed (WQ_MEM_RECLAIM only)
"""


MAX_INTERVAL = 86400.0
"""The longest -i accepted: a day.  ``time.sleep`` raises OverflowError from about
9.2e9 s (nanoseconds in a 64-bit time_t), and no one polls workqueue counters
less than daily, so a larger value is a typo, reported as a usage error."""


class MonitorError(Exception):
    """The stats endpoint could not be read; the message is for the user."""


def fetch(host: str, port: int, timeout: float = 5.0) -> dict[str, Any]:
    """GET the stats document from ``host:port`` (no proxies: it is a local socket)."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", "/stats")
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise MonitorError(f"stats endpoint {host}:{port} answered HTTP {response.status}")
    except ConnectionRefusedError as exc:
        raise MonitorError(
            f"cannot connect to {host}:{port}: connection refused. Is a server running with "
            f"its stats endpoint there?  Start one with: python -m khttpd_py serve "
            f"--stats-port {port}"
        ) from exc
    except (OSError, http.client.HTTPException) as exc:
        raise MonitorError(f"cannot read stats from {host}:{port}: {exc}") from exc
    finally:
        conn.close()
    try:
        doc = json.loads(body)
        doc["workqueues"]
    except (ValueError, KeyError, TypeError) as exc:
        raise MonitorError(f"{host}:{port} did not answer with workqueue stats") from exc
    return doc  # type: ignore[no-any-return]


def report(doc: dict[str, Any], as_json: bool,
           patterns: Sequence[re.Pattern[str]] = ()) -> str:
    """One report: the table (header first) or JSON lines of the workqueues whose
    name any of ``patterns`` matches (all of them when there is none)."""
    records = [r for r in doc["workqueues"]
               if not patterns or any(p.search(r["name"]) for p in patterns)]
    if as_json:
        return "\n".join(json.dumps(r) for r in records)
    rows = [WqStats.from_dict(r).row() for r in records]
    return "\n".join(["", table_header(), *rows])


def compile_patterns(parser: argparse.ArgumentParser,
                     texts: Sequence[str]) -> list[re.Pattern[str]]:
    """Compile every REGEX before the first request, one at a time, so a bad one
    is a usage error that names it (``re.error`` would otherwise be a traceback,
    and joining them with ``|`` first could hide an unbalanced parenthesis)."""
    patterns = []
    for text in texts:
        try:
            patterns.append(re.compile(text))
        except re.error as exc:
            parser.error(f"argument REGEX: bad regular expression {text!r}: {exc}")
    return patterns


def build_parser() -> argparse.ArgumentParser:
    """The tool's options, plus where to find the stats endpoint."""
    parser = argparse.ArgumentParser(
        prog="khttpd-py wq-monitor",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("workqueue", metavar="REGEX", nargs="*",
                        help="workqueue name patterns (all if none)")
    parser.add_argument("--host", default="127.0.0.1", help="stats endpoint host (127.0.0.1)")
    parser.add_argument("--port", type=int_in(1, 65535), default=DEFAULT_STATS_PORT,
                        help=f"stats endpoint port ({DEFAULT_STATS_PORT})")
    parser.add_argument("-i", "--interval", metavar="SECS", type=seconds_in(0, MAX_INTERVAL),
                        default=1.0,
                        help="monitoring interval (0 to print once and exit)")
    parser.add_argument("-j", "--json", action="store_true", help="output JSON lines")
    parser.add_argument("--count", metavar="N", type=int_in(0), default=0,
                        help="stop after N reports (0: until Ctrl-C)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Poll the stats endpoint and print reports; the exit status (2: usage error)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    patterns = compile_patterns(parser, args.workqueue)
    done = 0
    try:
        while True:
            try:
                doc = fetch(args.host, args.port)
            except MonitorError as exc:
                print(f"wq-monitor: {exc}", file=sys.stderr)
                return 1
            text = report(doc, args.json, patterns)
            if text:
                print(text, flush=True)
            done += 1
            if args.interval == 0 or (args.count and done >= args.count):
                return 0
            time.sleep(args.interval)
    except KeyboardInterrupt:  # Ctrl-C ends monitoring, like the tool's SIGINT handler
        return 0


if __name__ == "__main__":
    sys.exit(main())
