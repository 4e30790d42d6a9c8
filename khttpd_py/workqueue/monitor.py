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
from typing import Any

from khttpd_py.workqueue.stats import WqStats, table_header
from khttpd_py.workqueue.stats_server import DEFAULT_STATS_PORT

DESCRIPTION = """\
Monitor the workqueues of a running khttpd_py server (like tools/workqueue/wq_monitor.py).

  total    work items executed
  infl     work items in flight (started, not completed)
  CPUtime  CPU seconds of kworkers busy with the workqueue's items
  CPUitsv  items started as CPU-intensive (per-CPU workqueues only)
  CMW/RPR  concurrency-management wakeups (per-CPU) / repatriations (unbound)
  mayday   rescuer requests while worker creation failed (WQ_MEM_RECLAIM only)
  rescued  items the rescuer executed (WQ_MEM_RECLAIM only)
"""


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


def report(doc: dict[str, Any], as_json: bool, pattern: re.Pattern[str] | None) -> str:
    """One report: the table (header first) or JSON lines, filtered by ``pattern``."""
    records = [r for r in doc["workqueues"] if pattern is None or pattern.search(r["name"])]
    if as_json:
        return "\n".join(json.dumps(r) for r in records)
    rows = [WqStats.from_dict(r).row() for r in records]
    return "\n".join(["", table_header(), *rows])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="khttpd-py wq-monitor",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("workqueue", metavar="REGEX", nargs="*",
                        help="workqueue name patterns (all if none)")
    parser.add_argument("--host", default="127.0.0.1", help="stats endpoint host (127.0.0.1)")
    parser.add_argument("--port", type=int, default=DEFAULT_STATS_PORT,
                        help=f"stats endpoint port ({DEFAULT_STATS_PORT})")
    parser.add_argument("-i", "--interval", metavar="SECS", type=float, default=1.0,
                        help="monitoring interval (0 to print once and exit)")
    parser.add_argument("-j", "--json", action="store_true", help="output JSON lines")
    parser.add_argument("--count", metavar="N", type=int, default=0,
                        help="stop after N reports (0: until Ctrl-C)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.interval < 0 or args.count < 0:
        print("wq-monitor: --interval and --count must not be negative", file=sys.stderr)
        return 2
    pattern = re.compile("|".join(args.workqueue)) if args.workqueue else None
    done = 0
    try:
        while True:
            try:
                doc = fetch(args.host, args.port)
            except MonitorError as exc:
                print(f"wq-monitor: {exc}", file=sys.stderr)
                return 1
            text = report(doc, args.json, pattern)
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
