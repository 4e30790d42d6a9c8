"""Run an exercise's public tests inside the reader's browser (the online book's live copy).

The grader (:mod:`exercises.runner`) runs pytest in a child process with limits; the
browser's Python (Pyodide) has no processes, so here pytest runs in the kernel itself,
with the same plugin (:mod:`exercises.plugin`): the same ``student`` fixture built from the
*saved* notebook's solution cells, the same points and the same feedback messages.  Only
the public tests exist in the browser copy; hidden tests and the nbval check are left to
``make grade``, so the figure printed here is what the public tests award, not a grade.

Outside the browser :func:`run_public_checks` does nothing but say so: the cell that calls
it stays in a downloaded notebook, and must neither run tests inside the grader's own
notebook check nor fail it.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import tempfile
from pathlib import Path

from exercises import catalog, notebook, plugin

NAME_WIDTH = 72
"""Test names longer than this (parametrized with long byte strings) are cut."""


def in_browser() -> bool:
    return sys.platform == "emscripten"


def run_public_checks(folder: Path | None = None, force: bool = False) -> None:
    """Run ``test_public.py`` of the exercise in ``folder`` (the cwd) and print the points.

    ``force`` runs the checks outside the browser too (this module's own tests use it).
    """
    if not (in_browser() or force):
        print("This cell runs the public checks in the online book's browser copy. "
              "Here, run `make grade` (or `make grade ARGS=\"--only NN\"`).")
        return
    public_checks(folder)


def public_checks(folder: Path | None = None) -> int:
    """The public tests' points for the saved notebook in ``folder``, printed per test."""
    import pytest

    folder = (folder or Path.cwd()).resolve()
    tests = folder / "test_public.py"
    if not tests.is_file() or not (folder / notebook.NOTEBOOK_NAME).is_file():
        print(f"No exercise here ({folder}): open the notebook from its exercise folder.")
        return 0
    ex = catalog.load_exercise(folder)
    plugin._loaded.clear()  # re-read the notebook: the student saved a new version
    # the student's module, and another exercise's test_public (same name) from an earlier run
    for name in [m for m in sys.modules if m.startswith("student_") or m == "test_public"]:
        del sys.modules[name]
    with tempfile.TemporaryDirectory(prefix="khttpd-checks-") as tmp:
        report = Path(tmp) / "report.jsonl"
        old = Path.cwd()
        os.chdir(folder)
        try:
            # pytest's own progress lines would repeat, less clearly, the summary below
            with contextlib.redirect_stdout(io.StringIO()):
                code = pytest.main([
                    str(tests), "-p", "exercises.plugin", "-p", "no:cacheprovider", "-q",
                    "--no-header", "--tb=no", "-p", "no:warnings", "--noconftest",
                    "--grade-report", str(report),
                ])
        finally:
            os.chdir(old)
        records = [json.loads(line) for line in report.read_text().splitlines() if line]
    results = [r for r in records if r.get("event") == "test"]
    return _print_summary(ex, results, int(code))


def _print_summary(ex: catalog.Exercise, results: list[dict], code: int) -> int:
    if not results:
        print(f"no public test ran (pytest exit {code}): is test_public.py intact?")
        return 0
    earned = possible = 0
    print()
    for r in results:
        points = int(r.get("points", 0))
        possible += points
        ok = r.get("outcome") == "passed"
        earned += points if ok else 0
        mark = "ok    " if ok else "FAILED"
        name = str(r.get("name") or r.get("nodeid"))
        name = name if len(name) <= NAME_WIDTH else name[: NAME_WIDTH - 3] + "..."
        print(f"{mark} {points if ok else 0:>2}/{points:<2} {name}")
        if not ok and r.get("message"):
            for line in str(r["message"]).splitlines()[:6]:
                print(f"          {line}")
    print(f"\npublic tests: {earned}/{possible} points of this exercise's {ex.total}"
          f" (hidden tests and the notebook check: graded by `make grade`)")
    return earned
