"""A tiny HTTP endpoint that serves workqueue statistics as JSON, for ``wq-monitor``.

The kernel's wq_monitor reads kernel memory with drgn; a Python server's
memory is in another process, so the server publishes its counters instead.
``start_stats_server(system, "127.0.0.1", 8082)`` starts a daemon thread
answering ``GET /stats`` (any path, in fact) with::

    {"timestamp": 1712345678.9, "nr_threads": 7,
     "workqueues": [{"name": "khttpd", "unbound": true, "mem_reclaim": false,
                     "started": 812, "completed": 809, "cpu_time": 412345, ...}]}

Each record is ``WqStats.dict()``, i.e. the tool's ``-j`` keys (``cpu_time``
in microseconds).  The endpoint binds to loopback by default: it is a
debugging aid, not a public interface.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from khttpd_py.workqueue.stats import WqStats
from khttpd_py.workqueue.system import WorkqueueSystem
from khttpd_py.workqueue.work import Workqueue

DEFAULT_STATS_PORT = 8082
"""The port ``wq-monitor`` polls by default."""

Source = WorkqueueSystem | Iterable[Workqueue] | Callable[[], Iterable[Workqueue]] | None


def snapshot(source: Source) -> dict[str, Any]:
    """The JSON document for ``source``: a system (all its workqueues), a list of
    workqueues, a callable returning one, or None for the default system."""
    if source is None:
        from khttpd_py.workqueue.api import default_system

        source = default_system()
    threads: int | None = None
    if isinstance(source, WorkqueueSystem):
        wqs: Iterable[Workqueue] = source.workqueues()
        threads = source.thread_count()
    elif callable(source):
        wqs = source()
    else:
        wqs = source
    live = [wq for wq in wqs if not wq.destroyed]
    if threads is None:
        systems = {id(wq.system): wq.system for wq in live}
        threads = sum(system.thread_count() for system in systems.values())
    now = time.time()
    return {
        "timestamp": now,
        "nr_threads": threads,
        "workqueues": [WqStats.of(wq).dict(now) for wq in live],
    }


class StatsServer:
    """Handle of a running stats endpoint: ``.host``, ``.port``, ``.url``, ``.stop()``."""

    def __init__(self, source: Source, host: str, port: int) -> None:
        get = self._snapshot_fn(source)

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server hook name
                body = json.dumps(get()).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass  # a monitor polling every second must not flood the server's output

        self._httpd = ThreadingHTTPServer((host, port), Handler)
        self._httpd.daemon_threads = True
        self.host: str = self._httpd.server_address[0]  # type: ignore[assignment]
        self.port: int = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
            name="wq-stats", daemon=True,
        )
        self._thread.start()
        self._stopped = False

    @staticmethod
    def _snapshot_fn(source: Source) -> Callable[[], dict[str, Any]]:
        if source is not None and not isinstance(source, WorkqueueSystem) and not callable(source):
            fixed = list(source)
            return lambda: snapshot(fixed)
        return lambda: snapshot(source)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/stats"

    def stop(self) -> None:
        """Stop serving, close the socket and join the thread.  Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

    def __enter__(self) -> StatsServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_stats_server(
    source: Source = None, host: str = "127.0.0.1", port: int = DEFAULT_STATS_PORT
) -> StatsServer:
    """Serve ``source``'s workqueue statistics on ``http://host:port/stats``.

    ``port`` 0 picks a free port (read it back from ``.port``).  Raises
    ``OSError`` if the address is in use.
    """
    return StatsServer(source, host, port)


serve_stats = start_stats_server
"""Alias: the name the design notes use."""
