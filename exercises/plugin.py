"""The pytest plugin every exercise test runs under (``pytest -p exercises.plugin``).

It gives tests the ``student`` fixture (the module built from the notebook's
solution cells) and, with ``--grade-report PATH``, writes one JSON line per
finished test: its points, outcome and a message fit for feedback.  Lines are
flushed as tests finish, and a ``start`` line precedes each test (``call`` once
its setup is done, ``loading``/``loaded`` around the import of the solution
cells), so when the grader has to kill a hanging run it can still say *which*
test or cell hung, and whether it hung importing the student's code.

In the sandbox (``exercises/sandbox.py``) the report goes to an inherited
file descriptor instead (``--grade-report-fd N``), and ``--grade-forget
FILE`` deletes the hidden test files once they are collected, before any
student code runs.

With ``--grade-test-timeout S`` every test (not the notebook's cells, which
nbval times itself) gets a pytest-timeout limit of S seconds, so one hanging
test costs its own points rather than the whole exercise; the report marks
the test that ran out of time.

Hidden tests get only their name and the first line of the failure message in
the report: feedback must never quote their code.
"""

from __future__ import annotations

import json
import linecache
import re
import sys
import traceback
from pathlib import Path
from typing import IO, Any

import pytest

from exercises import notebook

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
MAX_MESSAGE = 1500
_loaded: dict[Path, Any] = {}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--grade-collect",
        default=None,
        help="with --collect-only: write each collected test's points as JSON to this file",
    )
    parser.addoption(
        "--grade-report",
        default=None,
        help="write one JSON line per test (points, outcome, message) to this file",
    )
    parser.addoption(
        "--grade-report-fd",
        type=int,
        default=None,
        help="like --grade-report, to this inherited file descriptor (the sandbox's report)",
    )
    parser.addoption(
        "--grade-forget",
        action="append",
        default=[],
        metavar="FILE",
        help="delete FILE once collection is done (hidden tests: no student code may read them)",
    )
    parser.addoption(
        "--grade-test-timeout",
        type=float,
        default=0.0,
        help="seconds each test may take (needs pytest-timeout: -p pytest_timeout); 0: no limit",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "points(n): points this test is worth in exercise grading")
    global _active_reporter
    path = config.getoption("--grade-report", default=None)
    fd = config.getoption("--grade-report-fd", default=None)
    if path:
        _active_reporter = _Reporter(open(path, "a", encoding="utf-8"))  # noqa: SIM115
    elif fd is not None:
        _active_reporter = _Reporter(open(fd, "a", encoding="utf-8"))  # noqa: SIM115


def pytest_unconfigure(config: pytest.Config) -> None:
    global _active_reporter
    reporter, _active_reporter = _active_reporter, None
    if reporter is not None:
        reporter.emit({"event": "end"})
        reporter.stream.close()


class _Reporter:
    """Accumulates the setup/call/teardown phases of each test into one record."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.records: dict[str, dict[str, Any]] = {}

    def emit(self, record: dict[str, Any]) -> None:
        self.stream.write(json.dumps(record) + "\n")
        self.stream.flush()




def _points(item: pytest.Item) -> int:
    marker = item.get_closest_marker("points")
    if marker is None or not marker.args:
        return 0
    return int(marker.args[0])


def _kind(item: pytest.Item) -> str:
    name = Path(str(item.path)).name
    if name.endswith(".ipynb"):
        return "nbval"
    return "hidden" if name.startswith("test_hidden") else "public"


_TIMEOUT_PREFIX = "Timeout (>"
"""How pytest-timeout's failure message begins (``Timeout (>2.0s) from pytest-timeout.``)."""
_NBVAL_TIMEOUT = "Timeout of "
"""How nbval's message for a cell that ran out of time begins."""
_IMPORTING = "while importing your solution cells"
_seen_timeouts: list[BaseException] = []
"""Timeouts already reported: a module-scoped fixture that timed out re-raises the
same exception object in every later test that needs it, and those tests did
not themselves run out of time."""


def _is_timeout(exc: BaseException | None) -> bool:
    """pytest-timeout stopped the test (it fails it with a plain ``pytest.fail``)."""
    return isinstance(exc, pytest.fail.Exception) and str(exc).startswith(_TIMEOUT_PREFIX)


def _item_timeout(item: pytest.Item) -> float:
    """The test's limit in seconds, from its timeout marker (ours or the test's own)."""
    marker = item.get_closest_marker("timeout")
    if marker is None:
        return 0.0
    value = marker.args[0] if marker.args else marker.kwargs.get("timeout", 0)
    try:
        return float(value or 0)
    except (TypeError, ValueError):
        return 0.0


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``--grade-test-timeout``: a time limit on every test that has none of its own.

    Notebook cells are left to nbval's ``--nbval-cell-timeout``: a SIGALRM
    while nbval waits for the kernel would leave the kernel busy with the
    endless cell and fail every later cell for it.  Also notes each item's
    label for the ``start`` records (logstart gets only the node id).
    """
    _labels.update({item.nodeid: _label(item) for item in items})
    seconds = config.getoption("--grade-test-timeout", default=0.0)
    if not seconds:
        return
    for item in items:
        if _kind(item) != "nbval" and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(seconds))


_labels: dict[str, str] = {}


def _label(item: pytest.Item) -> str:
    """How feedback names a test or notebook cell.

    A test by its name.  A notebook cell by its first line: nbval numbers
    "Cell N" among code cells from 0, which matches nothing Jupyter shows.
    """
    if _kind(item) != "nbval":
        return item.name
    cell = getattr(item, "cell", None)
    source = cell.get("source", "") if isinstance(cell, dict) else ""
    first = _first_line(source if isinstance(source, str) else "".join(source))
    if not first:
        return f"notebook code cell {item.name.split()[-1]} (counting code cells from 0)"
    if len(first) > 60:
        first = first[:57] + "..."
    return f"the notebook cell that begins {first!r}"


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""


def _message(item: pytest.Item, call: pytest.CallInfo[None], report: pytest.TestReport) -> str:
    """What feedback may say about a failure.

    Public tests: the exception as pytest shows it (assertion explanation
    included), trimmed.  Hidden tests: the exception type and the first line of
    its message only.  Notebook cells: the tail of nbval's report, which ends
    with the kernel's exception.
    """
    kind = _kind(item)
    if kind == "nbval":
        text = _ANSI.sub("", report.longreprtext)
        lines = [line for line in text.splitlines() if line.strip()]
        return "\n".join(lines[-12:])[-MAX_MESSAGE:]
    excinfo = call.excinfo
    if excinfo is None:
        return _first_line(report.longreprtext)
    if _is_timeout(excinfo.value):
        return _timeout_message(item, excinfo)
    if isinstance(excinfo.value, pytest.fail.Exception):
        return str(excinfo.value)[:MAX_MESSAGE]
    if kind == "hidden":
        first = _first_line(str(excinfo.value))
        return f"{excinfo.typename}: {first}" if first else excinfo.typename
    text = excinfo.exconly()
    if not isinstance(excinfo.value, AssertionError):
        text += _own_frame(excinfo, "raised at")
    return text[:MAX_MESSAGE]


def _own_frame(excinfo: pytest.ExceptionInfo[BaseException], verb: str) -> str:
    """Where in the student's code the exception came from, as a note line (or "")."""
    frames = traceback.extract_tb(excinfo.tb)
    own = [f for f in frames if f.filename.startswith("<") and "solution cells" in f.filename]
    if own and own[-1].lineno:
        return "\n  (" + _where(own[-1].filename, own[-1].lineno, verb) + ")"
    return ""


def _timeout_message(item: pytest.Item, excinfo: pytest.ExceptionInfo[BaseException]) -> str:
    """A test stopped by its time limit: which limit, during what, and where in the student's code.

    A timeout re-raised from a module-scoped fixture that ran out of time in an
    earlier test says so instead: this test did not hang, it had nothing to run on.
    """
    exc = excinfo.value
    if any(exc is seen for seen in _seen_timeouts):
        if getattr(exc, "khttpd_importing", False):
            return "not run: your solution cells did not finish importing (see the first test)"
        return "not run: what it needs ran past the time limit in an earlier test"
    seconds = _item_timeout(item)
    during = f" {_IMPORTING}" if getattr(exc, "khttpd_importing", False) else ""
    text = (f"stopped after the {seconds:g} s time limit for one test{during} "
            "(an endless loop, or a call that never returns?)")
    return (text + _own_frame(excinfo, "running"))[:MAX_MESSAGE]


def _where(filename: str, lineno: int, verb: str = "raised at") -> str:
    """Turn a line of the extracted module into "line N of the cell starting ..."."""
    lines = linecache.getlines(filename)
    for start in range(min(lineno, len(lines)) - 1, -1, -1):
        if lines[start].startswith(notebook.CELL_HEADER):
            first = next((s.strip() for s in lines[start + 1 :] if s.strip()), "")
            return f"{verb} line {lineno - start - 1} of the solution cell that begins {first!r}"
    return f"{verb} line {lineno} of your solution cells"


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> None:
    """Let a test file import helper modules that sit next to it.

    With ``--import-mode=importlib`` (needed because every exercise has its own
    ``test_public.py``) pytest does not put test directories on ``sys.path``.
    """
    del parent
    if file_path.suffix == ".py" and file_path.name.startswith("test_"):
        folder = str(file_path.parent)
        if folder not in sys.path:
            sys.path.insert(0, folder)


def pytest_collection_finish(session: pytest.Session) -> None:
    """``--grade-collect``: the points of every collected test, to check points.toml.

    ``--grade-forget``: delete the hidden test files now.  Their modules are
    imported (assertions rewritten), and nothing later reads the files: the
    solution cells are imported in the first test's setup and nbval starts
    the notebook's kernel in its first cell's, so neither ever sees them on
    disk.  A failure's report needs only the file's name and line number.
    """
    for name in session.config.getoption("--grade-forget", default=[]) or []:
        Path(session.config.rootpath, name).unlink(missing_ok=True)
    path = session.config.getoption("--grade-collect", default=None)
    if path:
        items = [
            {"nodeid": item.nodeid, "kind": _kind(item), "points": _points(item)}
            for item in session.items
        ]
        Path(path).write_text(json.dumps(items), encoding="utf-8")


NBVAL_SKIP_REASON = "not run: the notebook's points count only once every public test passes"
_PUBLIC_FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """With ``--grade-report``, skip the notebook's cells once a public test has failed.

    Its points could not be awarded anyway, and not starting a Jupyter kernel
    saves a second or two of CPU per unfinished exercise in a class run.
    Runs before the file's own setup, which is where nbval starts the kernel.
    """
    config = item.config
    if _active_reporter is None or _kind(item) != "nbval":
        return
    if config.stash.get(_PUBLIC_FAILED, False):
        pytest.skip(NBVAL_SKIP_REASON)


def pytest_runtest_logstart(nodeid: str, location: tuple[str, int | None, str]) -> None:
    """Record that a test starts, *before* its setup (which imports the solution cells).

    If the run is killed in a test's setup, the grader can still name the test.
    """
    del location
    reporter = _active_reporter
    if reporter is not None:
        reporter.emit({"event": "start", "nodeid": nodeid, "label": _labels.get(nodeid, "")})


_active_reporter: _Reporter | None = None
"""The reporter of this process's run, with ``--grade-report`` (one pytest run per
grading process; a module global because ``pytest_runtest_logstart`` gets no config)."""


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    reporter = _active_reporter
    if reporter is None:
        return
    record = reporter.records.setdefault(
        item.nodeid,
        {
            "event": "test",
            "nodeid": item.nodeid,
            "name": _labels.get(item.nodeid) or _label(item),
            "kind": _kind(item),
            "points": _points(item),
            "outcome": "passed",
            "message": "",
        },
    )
    if call.when == "setup" and report.passed:
        reporter.emit({"event": "call", "nodeid": item.nodeid})
    if report.failed and record["kind"] == "public":
        item.config.stash[_PUBLIC_FAILED] = True
    if report.failed and record["outcome"] == "passed":
        record["outcome"] = "error" if call.when != "call" else "failed"
        record["message"] = _message(item, call, report)
        _mark_timeout(item, call, report, record)
    elif report.skipped and record["outcome"] == "passed":
        record["outcome"] = "skipped"
        record["message"] = _first_line(str(report.longrepr))
    if call.when == "teardown":
        reporter.emit(record)


def _mark_timeout(
    item: pytest.Item, call: pytest.CallInfo[None], report: pytest.TestReport,
    record: dict[str, Any],
) -> None:
    """Mark the record of a test or cell that ran out of time: its limit, and during what.

    The grader turns these into the exercise's "stopped after ..." note.
    """
    if record["kind"] == "nbval":
        if _NBVAL_TIMEOUT in report.longreprtext:
            record["timeout"] = float(item.config.getoption("nbval_cell_timeout", 0) or 0)
        return
    exc = call.excinfo.value if call.excinfo is not None else None
    if exc is None or not _is_timeout(exc) or any(exc is seen for seen in _seen_timeouts):
        return
    _seen_timeouts.append(exc)
    record["timeout"] = _item_timeout(item)
    if getattr(exc, "khttpd_importing", False):
        record["during"] = _IMPORTING


@pytest.fixture(scope="module")
def student(request: pytest.FixtureRequest) -> Any:
    """The student's module: the solution cells of ``exercise.ipynb`` next to the test file.

    Built once per process and notebook.  A notebook whose solution cells
    raise on import fails every test with the reason, rather than a traceback
    into the plugin.
    """
    path = (Path(str(request.path)).parent / notebook.NOTEBOOK_NAME).resolve()
    if path not in _loaded:
        _loaded[path] = _load_student(path)
    value = _loaded[path]
    if isinstance(value, notebook.NotebookError):
        pytest.fail(str(value), pytrace=False)
    if isinstance(value, BaseException):  # the import ran out of time in an earlier test
        raise value
    return value


def _load_student(path: Path) -> Any:
    """The student's module, or the error to fail every test with.

    A time limit hit during the import is re-raised for this test (it is the one
    that ran out of time) and kept, so later tests fail at once with the same
    exception instead of each waiting out its own limit on the same loop.
    """
    reporter = _active_reporter
    if reporter is not None:
        reporter.emit({"event": "loading"})
    try:
        module_name = "student_" + path.parent.name.replace("-", "_")
        value: Any = notebook.load_module(path, module_name)
    except notebook.NotebookError as exc:
        value = exc
    except pytest.fail.Exception as exc:
        if not _is_timeout(exc):
            raise
        exc.khttpd_importing = True  # type: ignore[attr-defined]
        _loaded[path] = exc
        raise
    except ImportError as exc:  # a module the grading environment does not have
        value = notebook.NotebookError(import_problem(exc))
    except Exception as exc:  # the student's code failed while being imported
        lines = traceback.format_exception_only(type(exc), exc)
        value = notebook.NotebookError(
            "your solution cells raise when run as a module: " + "".join(lines).strip()
        )
    if reporter is not None:
        record: dict[str, Any] = {"event": "loaded"}
        if isinstance(value, notebook.NotebookError):
            record["error"] = str(value)[:MAX_MESSAGE]
        reporter.emit(record)
    return value


def import_problem(exc: ImportError) -> str:
    """What an ImportError raised by the solution cells means for the student.

    Usually a package installed where the student ran the notebook but not
    where grading runs (the grader's environment, or its sandbox, which sees
    neither the student's user site nor anything outside the course's venv).
    """
    kind = type(exc).__name__
    if isinstance(exc, ModuleNotFoundError) and exc.name:
        return (f"your solution cells import {exc.name!r}, which is not installed where "
                f"grading runs ({kind})")
    detail = _first_line(str(exc))
    where = f" from {exc.name!r}" if exc.name else ""
    return f"your solution cells fail to import{where} ({kind}: {detail})"
