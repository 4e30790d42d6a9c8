"""khttpd_py: a pure-Python khttpd and a concurrency-managed workqueue.

The package mirrors the course's in-kernel web server so a reader can hold the
Python next to the C: ``http`` is the parser and response bytes, ``server`` is
``main.c`` + ``http_server.c``, ``kthread`` is ``kthread_run``/``kthread_stop``,
``workqueue`` is ``kernel/workqueue.c`` on real threads and ``sim`` is the same
rules on a simulated clock.
"""

__version__ = "0.1.0"

DEFAULT_PORT = 8081
"""khttpd's ``port`` module parameter default."""

DEFAULT_BACKLOG = 100
"""khttpd's ``backlog`` module parameter default."""
