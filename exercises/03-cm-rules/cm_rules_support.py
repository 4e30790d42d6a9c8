"""Shared by this exercise's tests: plug a student's predicates into WorkerPool.

The tests run in a fresh process per grading run, so patching the class is
safe; ``monkeypatch`` still undoes it after each test.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from khttpd_py.workqueue.policy import WorkerPool

RULES = ("need_more_worker", "may_start_working", "keep_working")

# Documentation/core-api/workqueue.rst, "Example Execution Scenarios", in the
# simulator's words (SimResult.doc_text joins simultaneous events).
DOC = {
    "doc-b": "0 w0 starts and burns CPU | 5 w0 sleeps | 5 w1 starts and burns CPU | "
    "10 w1 sleeps | 10 w2 starts and burns CPU | 15 w2 sleeps | 15 w0 wakes up and burns CPU | "
    "20 w0 finishes | 20 w1 wakes up and finishes | 25 w2 wakes up and finishes",
    "doc-c": "0 w0 starts and burns CPU | 5 w0 sleeps | 5 w1 starts and burns CPU | "
    "10 w1 sleeps | 15 w0 wakes up and burns CPU | 20 w0 finishes | "
    "20 w1 wakes up and finishes | 20 w2 starts and burns CPU | 25 w2 sleeps | "
    "35 w2 wakes up and finishes",
    "doc-d": "0 w0 starts and burns CPU | 5 w0 sleeps | 5 w1 and w2 start and burn CPU | "
    "10 w1 sleeps | 15 w2 sleeps | 15 w0 wakes up and burns CPU | 20 w0 finishes | "
    "20 w1 wakes up and finishes | 25 w2 wakes up and finishes",
}


def plug(student: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every non-legacy WorkerPool decide with the student's functions."""
    for name in RULES:
        mine = getattr(student, name)
        original = getattr(WorkerPool, name)

        def method(self: WorkerPool, _mine: Any = mine, _original: Any = original) -> bool:
            return _original(self) if self.legacy else bool(_mine(self))

        monkeypatch.setattr(WorkerPool, name, method)


def fake_pool(pending: int, nr_running: int, nr_idle: int) -> SimpleNamespace:
    """Just the fields the predicates read."""
    return SimpleNamespace(
        worklist=[object()] * pending, nr_running=nr_running, nr_idle=nr_idle
    )


GRID = [(p, r, i) for p in (0, 1, 3) for r in (0, 1, 2) for i in (0, 1, 2)]
