"""Grading one exercise of one submission in a child process.

Two ways to run the child, with the same results and feedback:

* ``sandbox=True`` (class grading, and a student's ``make grade`` where
  bubblewrap works): the child runs in ``exercises/sandbox.py``'s bwrap
  sandbox, which sees only the Python installation, the grader's public
  code and this job's files; its own PID and network namespaces; an
  unprivileged uid of its own when the grader is root.  That module says
  what it does and does not protect.
* ``sandbox=False`` (``--no-sandbox``, or no bwrap): ``python -m pytest``
  over the *instructor's* test files copied into a fresh temporary
  directory, with only the student's ``exercise.ipynb`` copied next to them;
  cwd, HOME and TMPDIR inside it, secret-looking environment variables
  dropped.  Not a security boundary: the child runs as the grading user and
  can read or write that user's files and use the network.

Both: editing tests in a submission changes nothing (the tests come from the
grader's tree); resource limits apply to the child and everything it starts
(address space, file size, no core dumps; the sandbox adds a process count);
a wall-clock timeout kills the child's whole session, and afterwards every
process that still carries this run's token in its environment; and every
text the student's code controls is capped and checked against the hidden
tests before it reaches a result (``exercises/redact.py``), so no consumer
(text report, feedback, JSON, Classroom) can quote a hidden test's line.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from exercises import redact
from exercises.catalog import PACKAGE_DIR, Exercise
from exercises.notebook import NOTEBOOK_NAME, NotebookError
from exercises.notebook import read as read_notebook

DEFAULT_MEMORY_MB = 4096
MAX_FILE_BYTES = 64 * 1024 * 1024
MAX_NOTEBOOK_BYTES = 16 * 1024 * 1024
TOKEN_ENV = "KHTTPD_GRADE_TOKEN"
_SECRET_WORDS = ("TOKEN", "SECRET", "PASSWORD", "CREDENTIAL", "API_KEY", "PRIVATE")


@dataclass
class TestOutcome:
    """One test or notebook cell as the plugin reported it."""

    nodeid: str
    name: str
    kind: str  # public | hidden | nbval
    points: int
    outcome: str  # passed | failed | error | skipped
    message: str = ""
    timeout: float = 0.0
    """The time limit this test or cell ran out of (0: it did not)."""
    during: str = ""
    """What it was doing then, when known ("while importing your solution cells")."""

    @property
    def passed(self) -> bool:
        return self.outcome == "passed"


@dataclass
class ExerciseResult:
    """The grade of one exercise: score, why, and each test's outcome."""

    name: str
    title: str
    score: int
    total: int
    reachable: int
    status: str  # ok | timeout | crashed | missing | error | interrupted
    note: str = ""
    tests: list[TestOutcome] = field(default_factory=list)
    nbval_points: int = 0
    nbval_awarded: bool = False
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "score": self.score,
            "max": self.total,
            "reachable": self.reachable,
            "status": self.status,
            "note": self.note,
            "seconds": round(self.seconds, 2),
            "nbval": {"points": self.nbval_points, "awarded": self.nbval_awarded},
            "tests": [t.__dict__ for t in self.tests],
        }


def _child_env(home: Path, student: str, token: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not any(word in key.upper() for word in _SECRET_WORDS) and not key.startswith("PYTEST")
    }
    env.update(
        HOME=str(home),
        TMPDIR=str(home / ".tmp"),
        PYTHONDONTWRITEBYTECODE="1",
        # Only the plugins grading needs (nbval, ours): skipping the other
        # installed ones (anyio, ...) saves a third of a second per exercise.
        PYTEST_DISABLE_PLUGIN_AUTOLOAD="1",
        PYTHONPATH=os.pathsep.join([str(PACKAGE_DIR.parent)]),
        KHTTPD_STUDENT_ID=student,
        MPLBACKEND="Agg",
        JUPYTER_PLATFORM_DIRS="1",
        PYDEVD_DISABLE_FILE_VALIDATION="1",
        **{TOKEN_ENV: token},
    )
    # Matplotlib builds a font cache on first import (seconds); share one per user
    # rather than rebuilding it in every fresh HOME.
    shared = Path(tempfile.gettempdir()) / f"khttpd-grade-mpl-{os.getuid()}"
    env.setdefault("MPLCONFIGDIR", str(shared))
    return env


_LAUNCHER = """
import resource, sys
memory, fsize = int(sys.argv[1]), int(sys.argv[2])
if memory > 0:
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
sys.modules["rfc3987_syntax"] = None
import pytest
sys.exit(pytest.main(sys.argv[3:]))
"""
"""Sets the limits, then runs pytest in the same process.

A ``-c`` wrapper rather than ``preexec_fn``, which is unsafe when the grader
runs jobs from several threads.  ``rfc3987_syntax`` is blocked because
jsonschema (imported by nbformat, imported by nbval) would otherwise build
that package's IRI grammar at import: three seconds per exercise for a format
checker notebooks never use.
"""


def _limited(cmd: list[str], memory_mb: int) -> list[str]:
    """``cmd`` run under the limits; they are inherited by everything it starts."""
    memory = max(0, memory_mb) * 1024 * 1024
    return [sys.executable, "-c", _LAUNCHER, str(memory), str(MAX_FILE_BYTES), *cmd]


def kill_tagged(token: str) -> int:
    """SIGKILL every process whose environment carries ``token``; how many were found.

    Catches what escaped the session kill: the Jupyter kernel (own session), and
    anything the student's code daemonised.  Linux-only (/proc); elsewhere a no-op.
    """
    needle = f"{TOKEN_ENV}={token}".encode()
    killed = 0
    proc = Path("/proc")
    if not proc.is_dir():
        return 0
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0"):
            try:
                os.kill(int(entry.name), signal.SIGKILL)
                killed += 1
            except OSError:
                pass
    return killed


@dataclass
class Report:
    """The plugin's report read back: finished tests, and where a cut-off run stopped."""

    tests: list[TestOutcome] = field(default_factory=list)
    running: str | None = None
    """The test or cell that had started but not finished."""
    label: str = ""
    """How feedback names ``running`` (a cell by its first line)."""
    in_setup: bool = False
    """``running`` had not finished its setup (fixtures, the notebook's kernel)."""
    importing: bool = False
    """The solution cells were being imported and had not finished."""
    import_error: str = ""
    """Why the solution cells could not be imported (an ImportError, a raise), if so."""
    events: int = 0
    """Records read: 0 when the child never got as far as pytest."""
    ended: bool = False
    """pytest reached its end: every test ran."""


def _read_report(path: Path) -> Report:
    """Parse the plugin's JSON lines; a truncated last line (a killed run) is skipped."""
    report = Report()
    if not path.exists():
        return report
    with path.open(encoding="utf-8", errors="replace") as stream:
        for line in stream:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if not isinstance(record, dict):
                continue
            report.events += 1
            event = record.get("event")
            if event == "start":
                report.running, report.in_setup = record.get("nodeid"), True
                report.label = str(record.get("label") or "")
            elif event == "call":
                report.in_setup = False
            elif event in ("loading", "loaded"):
                report.importing = event == "loading"
                report.import_error = str(record.get("error") or "")
            elif event == "test" and len(report.tests) < MAX_TESTS:
                report.running, report.in_setup = None, False
                try:
                    report.tests.append(
                        TestOutcome(
                            nodeid=str(record["nodeid"])[:redact.MAX_NAME],
                            name=str(record["name"]),
                            kind=str(record["kind"]),
                            points=int(record["points"]),
                            outcome=str(record["outcome"]),
                            message=str(record.get("message", "")),
                            timeout=float(record.get("timeout", 0) or 0),
                            during=str(record.get("during", "")),
                        )
                    )
                except (KeyError, TypeError, ValueError):  # not the plugin's record
                    continue
            elif event == "end":
                report.ended = True
    return report


MAX_TESTS = 1000
"""Test records read from one report: the plugin writes one per test; more is a forgery."""


def _describe(report: Report) -> str:
    """" (in test_x, while importing your solution cells)": where a cut-off run was."""
    nodeid = report.running
    if not nodeid:
        return ""
    if nodeid.startswith(NOTEBOOK_NAME):
        where = report.label or f"notebook {nodeid.split('::', 1)[-1].lower()}"
        if report.in_setup:
            where += ", while starting the notebook's kernel"
        return f" (in {where})"
    where = nodeid.split("::", 1)[-1]
    if report.importing:
        where += ", while importing your solution cells"
    elif report.in_setup:
        where += ", while setting it up"
    return f" (in {where})"


def _timeout_note(tests: list[TestOutcome]) -> str:
    """The note for tests and cells stopped by their own time limit (the run went on)."""
    parts = []
    for kind, per in (("test", "per test"), ("cell", "per notebook cell")):
        hit = [t for t in tests if t.timeout and (t.kind == "nbval") == (kind == "cell")]
        if hit:
            names = "; ".join(
                t.name + (f", {t.during}" if t.during else "")
                for t in hit
            )
            parts.append(f"stopped after the {hit[0].timeout:g} s time limit {per} (in {names})")
    return "\n".join(parts)


_CAUSES = ("Fatal Python error", "MemoryError", "can't start new thread", "Segmentation fault")


def _cause(log: Path) -> str:
    """The first line of the log that says why a process died, if any (never test code)."""
    try:
        with log.open("rb") as stream:
            head = stream.read(200_000).decode("utf-8", "replace")
    except OSError:
        return ""
    for line in head.splitlines():
        for cause in _CAUSES:
            if cause in line:
                return ": " + line[line.index(cause):][:200]
    return ""


def _errors(log: Path) -> str:
    """pytest's own error lines ("E   ...") from the end of the log, for a run that could not start.

    Not the whole tail: its banners and site-packages paths mean nothing to a
    student.  Falls back to the tail when there are no such lines.
    """
    tail = _tail(log, 40)
    found = [line[1:].strip() for line in tail.splitlines() if line.startswith("E ")]
    return ":\n" + "\n".join(found[:5] or tail.splitlines()[-5:]) if tail else ""


def _tail(path: Path, lines: int = 15) -> str:
    try:
        with path.open("rb") as stream:
            stream.seek(max(0, path.stat().st_size - 4000))
            text = stream.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-lines:])


INTERRUPTED_NOTE = "not graded: the run was interrupted"
PARTIAL = "; the tests that finished before it are scored, the rest score 0"
TEST_SHARE = 4
"""Each test, and each notebook cell, may take 1/TEST_SHARE of the exercise's limit."""
MIN_TEST_SECONDS = 2.0


def share_of(limit: float) -> float:
    """The time limit of one test or notebook cell under an exercise limit of ``limit`` s.

    Well under the whole: a test or cell that hangs is stopped at this limit
    and loses its own points while the rest of the run goes on; the whole-run
    limit only catches what cannot be interrupted.  Never below
    MIN_TEST_SECONDS (importing the solution cells counts against the first
    test), never above the whole.
    """
    return min(limit, max(MIN_TEST_SECONDS, limit / TEST_SHARE))


_POLL = 0.2
"""Seconds between checks of the stop event while a child runs."""


def _wait(proc: subprocess.Popen[bytes], limit: float, stop: threading.Event | None) -> str:
    """Wait for ``proc``: "done", "timeout" after ``limit`` s, or "stopped" once ``stop`` is set.

    The child runs in a session of its own, so a Ctrl-C at the terminal never
    reaches it; polling the event is how an interrupted class run stops it
    within a fraction of a second instead of letting it run to its limit.
    """
    deadline = time.monotonic() + limit
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return "timeout"
        try:
            proc.wait(timeout=remaining if stop is None else min(remaining, _POLL))
            return "done"
        except subprocess.TimeoutExpired:
            if stop is not None and stop.is_set():
                return "stopped"


def linked_notebook(notebook: Path, within: Path | None) -> str:
    """Why ``notebook`` is not the student's own file, or "" when it is.

    A notebook that is a symbolic link, or lies under a linked directory of the
    submission (``within``), could point at anything the grader can read, the
    instructor's solutions included; grading it would credit someone else's
    work.  The message names the path relative to the submission.
    """
    shown = notebook
    if within is not None:
        try:
            shown = notebook.relative_to(within)
        except ValueError:
            return f"symlinked notebook {notebook}: not graded (outside the submission)"
    if notebook.is_symlink():
        return f"symlinked notebook {shown}: not graded (submit the file, not a link to one)"
    if within is not None and notebook.resolve() != within.resolve() / shown:
        return (f"symlinked notebook {shown}: not graded (a directory on its path is a "
                "symbolic link out of the submission)")
    return ""


def grade_exercise(
    exercise: Exercise,
    notebook: Path,
    student: str,
    timeout: float | None = None,
    memory_mb: int = DEFAULT_MEMORY_MB,
    stop: threading.Event | None = None,
    within: Path | None = None,
    sandbox: bool = False,
) -> ExerciseResult:
    """Grade ``notebook`` against ``exercise``'s pristine tests in a sandboxed child.

    Setting ``stop`` (from another thread) kills the child and returns a result
    with status "interrupted" and no score.  ``within`` is the submission's
    directory: a notebook that is, or lies under, a symbolic link is refused.
    ``sandbox``: run the child in the bwrap sandbox (``exercises/sandbox.py``);
    the caller checks ``sandbox.available()`` first.
    """
    started = time.monotonic()
    limit = exercise.timeout if timeout is None else timeout
    share = share_of(limit)
    result = ExerciseResult(
        name=exercise.name,
        title=exercise.title,
        score=0,
        total=exercise.total,
        reachable=exercise.reachable,
        status="ok",
        nbval_points=exercise.nbval,
    )
    if stop is not None and stop.is_set():
        result.status, result.note = "interrupted", INTERRUPTED_NOTE
        return result
    linked = linked_notebook(notebook, within)
    if linked:
        result.status, result.note = "error", linked
        return result
    if not notebook.is_file():
        result.status, result.note = "missing", f"{NOTEBOOK_NAME} is missing from the submission"
        return result
    if notebook.stat().st_size > MAX_NOTEBOOK_BYTES:
        result.status = "error"
        result.note = f"{NOTEBOOK_NAME} is larger than {MAX_NOTEBOOK_BYTES // 2**20} MiB"
        return result

    try:
        read_notebook(notebook)
    except NotebookError as exc:
        # Without the grader's path to it: feedback goes to the student.
        reason = str(exc).removeprefix(f"{notebook}: ")
        result.status, result.note = "error", f"{NOTEBOOK_NAME} cannot be read: {reason}"
        return result

    control = Path(tempfile.mkdtemp(prefix="khttpd-grade-ctl-"))
    token = uuid.uuid4().hex
    report = control / "report.jsonl"
    log = control / "log.txt"
    run = _run_sandboxed if sandbox else _run_direct
    try:
        with log.open("wb") as out, run(exercise, notebook, student, token, memory_mb, share,
                                        control, out) as proc:
            waited = _wait(proc, limit, stop)
            if waited != "done":
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except OSError:
                    pass
            returncode = proc.wait()
        kill_tagged(token)
        got = _read_report(report)
        result.tests = got.tests
        signum = _signal_of(returncode, sandbox)
        if waited == "stopped":
            result.status, result.note, result.tests = "interrupted", INTERRUPTED_NOTE, []
        elif waited == "timeout":
            result.status = "timeout"
            result.note = f"stopped after the {limit:g} s time limit{_describe(got)}" + (
                "" if got.ended else PARTIAL
            )
            result.score = _score(exercise, got.tests, result, complete=got.ended)
        elif sandbox and not got.events and _sandbox_error(log):
            result.status = "error"
            result.note = f"the grading sandbox could not start: {_sandbox_error(log)}"
        elif signum or not got.ended:
            result.status = "crashed"
            how = f"signal {_signal_name(signum)}" if signum else f"exit status {returncode}"
            if signum == signal.SIGXFSZ:
                how += ": output larger than the file-size limit"
            result.note = (f"the grading process died ({how}){_describe(got)}{_cause(log)}"
                           + PARTIAL)
            result.score = _score(exercise, got.tests, result, complete=False)
        elif returncode not in (0, 1):
            result.status = "error"
            result.note = f"the tests could not run (pytest exit status {returncode}){_errors(log)}"
        else:
            result.score = _score(exercise, got.tests, result, complete=True)
            note = _timeout_note(got.tests)
            if note:
                result.status, result.note = "timeout", note
            elif got.import_error and not any(t.passed for t in got.tests):
                result.note = got.import_error
    finally:
        kill_tagged(token)
        if os.environ.get("KHTTPD_GRADE_KEEP"):
            print(f"kept {control}", file=sys.stderr)
        else:
            shutil.rmtree(control, ignore_errors=True)
        _make_safe(result, redact.for_exercise(exercise))
        result.seconds = time.monotonic() - started
    return result


def _make_safe(result: ExerciseResult, redactor: redact.Redactor) -> None:
    """Cap every text the student's code controls and withhold lines quoting hidden tests.

    Done here, once, so every consumer of the result is safe.  The plugin
    already caps messages, but it runs beside the student's code, which can
    write its own records.
    """
    result.note = redactor.text(result.note)
    for test in result.tests:
        test.name = redactor.text(test.name, redact.MAX_NAME, 1)
        test.message = redactor.text(test.message, own_first_line=test.kind == "hidden")
        test.during = redactor.text(test.during, redact.MAX_NAME, 1)


def _signal_of(returncode: int, sandbox: bool) -> int:
    """The signal that killed the child, or 0.

    bwrap reports a child killed by signal N as exit status 128 + N.
    """
    if returncode < 0:
        return -returncode
    if sandbox and 128 < returncode <= 128 + 64:
        return returncode - 128
    return 0


def _signal_name(signum: int) -> str:
    """``SIGSEGV`` rather than 11: students look names up, not numbers."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return str(signum)


def _sandbox_error(log: Path) -> str:
    """bwrap's own error line ("bwrap: ...") from the start of the log, if it printed one."""
    for line in _tail(log, 5).splitlines():
        if line.startswith("bwrap: "):
            return line[:200]
    return ""


def _pytest_args(
    exercise: Exercise, share: float, ini: str, rootdir: str, report: list[str]
) -> list[str]:
    """pytest's arguments for one exercise, the same in and out of the sandbox."""
    return [
        "--noconftest", "-p", "nbval.plugin", "-p", "exercises.plugin",
        "-p", "no:cacheprovider", "-c", ini, "--rootdir", rootdir,
        "--import-mode=importlib",
        "-q", "--tb=line", "--no-header", *report,
        "-p", "pytest_timeout", "--grade-test-timeout", f"{share:g}",
        "--nbval-lax", "--nbval-current-env", "--nbval-cell-timeout", f"{share:g}",
        *exercise.test_files, NOTEBOOK_NAME,
    ]


_IGNORED = ("__pycache__", ".ipynb_checkpoints", ".pytest_cache")


@contextmanager
def _run_direct(
    exercise: Exercise, notebook: Path, student: str, token: str, memory_mb: int,
    share: float, control: Path, out: Any,
) -> Iterator[subprocess.Popen[bytes]]:
    """The child without a sandbox: pytest over a temporary copy, as the grading user."""
    home = Path(tempfile.mkdtemp(prefix="khttpd-grade-"))
    try:
        workdir = home / exercise.name
        shutil.copytree(exercise.path, workdir,
                        ignore=shutil.ignore_patterns(NOTEBOOK_NAME, *_IGNORED))
        shutil.copyfile(notebook, workdir / NOTEBOOK_NAME)
        (home / ".tmp").mkdir()
        ini = control / "pytest.ini"
        ini.write_text("[pytest]\n", encoding="utf-8")
        report = ["--grade-report", str(control / "report.jsonl")]
        proc = subprocess.Popen(
            _limited(_pytest_args(exercise, share, str(ini), str(workdir), report), memory_mb),
            cwd=workdir,
            env=_child_env(home, student, token),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            yield proc
        finally:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except OSError:
                    pass
            proc.wait()
    finally:
        shutil.rmtree(home, ignore_errors=True)


def exercise_files(exercise: Exercise, notebook: Path) -> dict[str, bytes]:
    """The job's files: the instructor's exercise folder, with the student's notebook in it."""
    files: dict[str, bytes] = {}
    for path in sorted(exercise.path.rglob("*")):
        relative = path.relative_to(exercise.path)
        if not path.is_file() or path.name == NOTEBOOK_NAME or any(
            part in _IGNORED for part in relative.parts
        ):
            continue
        files[relative.as_posix()] = path.read_bytes()
    files[NOTEBOOK_NAME] = notebook.read_bytes()
    return files


@contextmanager
def _run_sandboxed(
    exercise: Exercise, notebook: Path, student: str, token: str, memory_mb: int,
    share: float, control: Path, out: Any,
) -> Iterator[subprocess.Popen[bytes]]:
    """The child in the bwrap sandbox; files in by a pipe, the report out by a descriptor."""
    from exercises import sandbox

    folder = f"{sandbox.HOME}/{exercise.name}"
    hidden = [name for name in exercise.test_files if name.startswith("test_hidden")]
    fd = os.open(control / "report.jsonl", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        report = ["--grade-report-fd", str(fd), *(f"--grade-forget={name}" for name in hidden)]
        job = sandbox.Job(
            folder=exercise.name,
            files=exercise_files(exercise, notebook),
            command=["pytest", *_pytest_args(exercise, share, f"{sandbox.HOME}/pytest.ini",
                                             folder, report)],
            env={"KHTTPD_STUDENT_ID": student, TOKEN_ENV: token},
            memory_mb=memory_mb,
            file_bytes=MAX_FILE_BYTES,
            extra_home={"pytest.ini": b"[pytest]\n"},
        )
        with job.start(stdout=out, report=fd) as proc:
            os.close(fd)
            fd = -1
            yield proc
    finally:
        if fd >= 0:
            os.close(fd)


def _score(
    exercise: Exercise, tests: list[TestOutcome], result: ExerciseResult, complete: bool
) -> int:
    """Points of passed tests, plus nbval's only if the notebook ran *and* every
    public test passed (so a starter notebook that merely runs scores nothing).

    A run cut off by its time limit or a crash (``complete`` false) keeps the
    points of the tests that finished, as lab0-c does; the tests it never
    reached score nothing and the notebook's points are not awarded.
    """
    public = [t for t in tests if t.kind == "public"]
    cells = [t for t in tests if t.kind == "nbval"]
    public_ok = complete and bool(public) and all(t.passed for t in public)
    result.nbval_awarded = bool(cells) and all(t.passed for t in cells) and public_ok
    score = sum(t.points for t in tests if t.kind != "nbval" and t.passed)
    if result.nbval_awarded:
        score += exercise.nbval
    return min(score, exercise.reachable)
