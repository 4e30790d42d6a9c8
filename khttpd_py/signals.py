"""SIGTERM handled as Ctrl-C by the commands that must report or clean up on the way out.

``timeout``, ``kill`` and CI runners stop a program with SIGTERM, which by
default kills Python at once: htstress would lose the counts of the run so
far, and the bench would leave its servers running.  Raising
``KeyboardInterrupt`` instead sends SIGTERM down the path Ctrl-C already takes.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises ``KeyboardInterrupt``; the old handler comes back after.

    Only the main thread may set handlers, so elsewhere (a notebook's worker
    thread, say) the block runs unchanged.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        # None: the old handler was not set from Python; the default is the honest restore
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


__all__ = ["sigterm_as_interrupt"]
