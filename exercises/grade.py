"""Grade exercises: one working copy (``make grade``) or a whole class.

    python -m exercises.grade [DIR] [--only NAME ...] [--json]
    python -m exercises.grade --class SUBMISSIONS --out gradebook.csv --feedback FEEDBACK_DIR
        [--roster classroom_roster.csv] [--deadline ISO8601 [--late-penalty PCT]]
        [--manual scores.csv] [--canvas canvas.csv] [--student ID | --resume]

DIR is a working copy (a directory holding ``exercises/``, or the
``exercises`` directory itself); the default is the tree this grader lives in.
Whatever DIR is, only its notebooks are read: the tests always come from the
grader's own tree (see ``exercises/runner.py`` for the sandbox).  What the
class mode's options do is described in ``exercises/classrun.py``.

Exit status: single mode 0 only at full marks (of what this tree can award),
1 otherwise; class mode 0 when the run completed; 2 for bad input.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from exercises import sandbox
from exercises.catalog import (
    COURSE_TOTAL,
    PACKAGE_DIR,
    ConfigError,
    Exercise,
    UsageError,
    check_points,
    discover,
)
from exercises.gradebook import ManualScore, number, one_line
from exercises.identity import main_recorded, record_id, recorded_ids
from exercises.notebook import NOTEBOOK_NAME
from exercises.runner import (
    DEFAULT_MEMORY_MB,
    INTERRUPTED_NOTE,
    ExerciseResult,
    grade_exercise,
)
from exercises.support import STUDENT_ID_ENV, repository_name, safe_name

MIN_MEMORY_MB = 1024
"""Below this the notebook's Jupyter kernel cannot start (measured: 512 MiB fails), so
every notebook would silently lose its points; 0 means no limit."""


LINKED_SUBMISSION = "a symbolic link, not a submission directory: not graded"


@dataclass
class SubmissionResult:
    """All exercises of one student, and what the gradebook records around them."""

    student: str
    """The problem key (see ``exercises/identity.py``)."""
    path: Path
    results: list[ExerciseResult] = field(default_factory=list)
    note: str = ""
    directory: str = ""
    """The submission directory's name, unique in a class (keys may repeat)."""
    lms_id: str = ""
    github_username: str = ""
    name: str = ""
    warnings: list[str] = field(default_factory=list)
    commit: str = ""
    commit_time: str = ""
    late: str = ""
    penalty_pct: float = 0.0
    manual: list[ManualScore] = field(default_factory=list)
    graded_at: str = ""

    @property
    def score(self) -> int:
        """The exercises' points (what the tests awarded, before manual points or penalty)."""
        return sum(r.score for r in self.results)

    @property
    def final(self) -> float:
        """The gradebook's total: exercises plus manual points, less the late penalty."""
        raw = self.score + sum(m.points for m in self.manual)
        return round(raw * (1 - self.penalty_pct / 100), 2)

    @property
    def total(self) -> int:
        return sum(r.total for r in self.results)

    @property
    def reachable(self) -> int:
        return sum(r.reachable for r in self.results)

    def to_json(self) -> dict[str, Any]:
        return {
            "student": self.student,
            "score": self.score,
            "max": self.total,
            "reachable": self.reachable,
            "note": self.note,
            "exercises": [r.to_json() for r in self.results],
            **({"total": self.final, "warnings": self.warnings, "commit": self.commit,
                "late": self.late, "manual": [m.__dict__ for m in self.manual]}
               if self.directory else {}),
        }


# --- finding submissions ---------------------------------------------------------------


def exercises_dir_of(path: Path) -> Path | None:
    """The ``exercises`` directory of a submission, or None if ``path`` is not one.

    A submission is a copy of the released tree: a directory with
    ``exercises/NN-name/exercise.ipynb`` for at least one exercise.  The
    ``exercises`` directory itself is accepted too.
    """
    for candidate in (path / "exercises", path):
        if candidate.is_dir() and any(candidate.glob(f"[0-9][0-9]-*/{NOTEBOOK_NAME}")):
            return candidate
    return None


def submission_root(ex_dir: Path) -> Path:
    """The working copy an ``exercises`` directory belongs to (itself if it is the top)."""
    return ex_dir.parent if ex_dir.name == "exercises" else ex_dir


def submission_id(path: Path) -> str:
    """The repository name of a working copy (its git remote's, else its directory's)."""
    return repository_name(submission_root(path.resolve()))


# --- grading -----------------------------------------------------------------------------


@dataclass
class Options:
    timeout: float | None
    memory_mb: int
    jobs: int
    sandbox: bool = False
    """Grade in the bubblewrap sandbox (``exercises/sandbox.py``)."""


class GradingInterrupted(KeyboardInterrupt):
    """Ctrl-C during grading, carrying what was finished before it.

    Exercises that were not graded have status "interrupted" in ``results``.
    """

    def __init__(self, results: list[SubmissionResult], done: int, total: int) -> None:
        super().__init__(f"{done} of {total} exercises graded")
        self.results = results
        self.done = done
        self.total = total


def _placeholder(ex: Exercise, status: str, note: str) -> ExerciseResult:
    """A zero for an exercise that was not run (interrupted, not a submission)."""
    return ExerciseResult(ex.name, ex.title, 0, ex.total, ex.reachable, status, note)


Pair = tuple[int, str]
"""(index of the submission in the run's list, exercise name): keys can repeat, indexes not."""


def grade_many(
    submissions: list[tuple[str, Path]],
    exercises: list[Exercise],
    options: Options,
    progress: Callable[[int, int, str], None] | None = None,
    finished: dict[Pair, ExerciseResult] | None = None,
) -> list[SubmissionResult]:
    """Grade every (submission, exercise) pair, ``options.jobs`` at a time.

    Each pair is its own child process (see runner), so the pool's threads only
    wait; with two jobs both cores stay busy.  Results keep the input order.
    Pairs in ``finished`` (a resumed run's) are taken as they are, not rerun.

    On Ctrl-C, queued jobs are cancelled and running children killed (they run
    in sessions of their own, so the terminal's SIGINT does not reach them);
    then GradingInterrupted carries the results finished so far.
    """
    by_pair: dict[Pair, ExerciseResult] = dict(finished or {})
    jobs = [(i, sid, path, ex) for i, (sid, path) in enumerate(submissions) for ex in exercises
            if (i, ex.name) not in by_pair]
    total = len(jobs) + len(by_pair)
    stop = threading.Event()
    if progress:
        progress(len(by_pair), total, "")
    pool = ThreadPoolExecutor(max_workers=max(1, options.jobs))
    futures: dict[Future[ExerciseResult], tuple[int, str, Exercise]] = {}
    try:
        futures = {
            pool.submit(
                grade_exercise,
                ex,
                path / ex.name / NOTEBOOK_NAME,
                sid,
                options.timeout,
                options.memory_mb,
                stop,
                path.parent if path.name == "exercises" else path,
                options.sandbox,
            ): (i, sid, ex)
            for i, sid, path, ex in jobs
        }
        for future in as_completed(futures):
            i, sid, ex = futures[future]
            by_pair[(i, ex.name)] = future.result()
            if progress:
                progress(len(by_pair), total, f"{sid} {ex.name}")
    except KeyboardInterrupt:
        stop.set()
        pool.shutdown(wait=False, cancel_futures=True)
        _collect_finished(futures, by_pair)
        raise GradingInterrupted(
            _assemble(submissions, exercises, by_pair), len(by_pair), total
        ) from None
    finally:
        pool.shutdown(wait=True)
    return _assemble(submissions, exercises, by_pair)


def _collect_finished(
    futures: dict[Future[ExerciseResult], tuple[int, str, Exercise]],
    by_pair: dict[Pair, ExerciseResult],
) -> None:
    """After a stop: add the jobs that did finish; wait (briefly) for the running ones.

    Running jobs notice the stop within a fraction of a second, kill their
    child and clean up; waiting for them means no child or temporary
    directory outlives the grader.
    """
    for future, (i, _sid, ex) in futures.items():
        if future.cancelled() or (i, ex.name) in by_pair:
            continue
        result = future.result()
        if result.status != "interrupted":
            by_pair[(i, ex.name)] = result


def _assemble(
    submissions: list[tuple[str, Path]],
    exercises: list[Exercise],
    by_pair: dict[Pair, ExerciseResult],
) -> list[SubmissionResult]:
    """One SubmissionResult per submission, in input order; missing pairs are "interrupted"."""
    results = []
    for i, (sid, path) in enumerate(submissions):
        res = SubmissionResult(sid, path)
        res.results = [
            by_pair.get((i, ex.name)) or _placeholder(ex, "interrupted", INTERRUPTED_NOTE)
            for ex in exercises
        ]
        results.append(res)
    return results


def text_progress(stream: TextIO) -> Callable[[int, int, str], None]:
    """A one-line progress bar on stderr: bar, count, elapsed time, last job."""
    started = time.monotonic()

    def show(done: int, total: int, label: str) -> None:
        width = 30
        filled = width * done // total if total else width
        elapsed = time.monotonic() - started
        line = f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {elapsed:5.0f}s {label}"
        stream.write(line[:100].ljust(100))
        if done == total:
            stream.write("\n")
        stream.flush()

    return show


# --- reports ------------------------------------------------------------------------------


def _indent(text: str, prefix: str = "      ") -> str:
    return "\n".join(prefix + line for line in text.splitlines())


def format_text(result: SubmissionResult, exercises: list[Exercise]) -> str:
    """The lab0-c shaped report: a ``---`` line per exercise, failures under it, TOTAL."""
    out: list[str] = []
    hidden_missing = sum(ex.hidden_points for ex in exercises)
    for res, ex in zip(result.results, exercises, strict=True):
        out.append(f"+++ {res.name}: {res.title}")
        if res.note:
            out.append(_indent(res.note, "    NOTE "))
        for test in res.tests:
            if test.passed or test.kind == "nbval":
                continue
            label = "hidden test" if test.kind == "hidden" else "test"
            out.append(f"    FAIL {label} {test.name} ({test.points} pt)")
            if test.message:
                out.append(_indent(test.message))
        cells = [t for t in res.tests if t.kind == "nbval"]
        failed_cells = [t for t in cells if t.outcome in ("failed", "error")]
        if failed_cells:
            out.append(f"    FAIL notebook does not run top to bottom ({res.nbval_points} pt)")
            first = failed_cells[0]
            out.append(_indent(f"{first.name} failed:\n{_indent(first.message, '  ')}"))
        elif cells and not res.nbval_awarded and res.nbval_points and res.status == "ok":
            out.append(
                f"    note: the notebook was not checked; its {res.nbval_points} pt count "
                "once every public test passes"
            )
        suffix = ""
        if ex.hidden_points:
            suffix = f"  (public tests; {ex.hidden_points} pt more in hidden tests)"
        out.append(f"---\t{res.name}\t{res.score}/{res.total}{suffix}")
    total_line = f"---\tTOTAL\t\t{result.score}/{result.total}"
    if hidden_missing:
        total_line += (
            f"  (public tests only: at most {result.reachable} here; your instructor's "
            f"hidden tests award the other {hidden_missing})"
        )
    out.append(total_line)
    return "\n".join(out)


def format_feedback(result: SubmissionResult) -> str:
    """Per-student Markdown: scores, and for each lost point the test and its message.

    Hidden tests appear by name with their message only (the plugin never
    records their code).  "All tests passed" only where tests did run: a zero
    for an exercise that was never run (not a submission) says so instead.
    """
    lines = [f"# Feedback for {result.student}", ""]
    if result.manual or result.penalty_pct:
        lines += [f"**Total: {number(result.final)}** (exercises {result.score}/{result.total}"
                  + (f", manual {number(sum(m.points for m in result.manual))}"
                     if result.manual else "")
                  + (f", less {result.penalty_pct:g}% late penalty" if result.penalty_pct else "")
                  + ")", ""]
    else:
        lines += [f"**Total: {result.score}/{result.total}**", ""]
    if result.note:
        lines += [f"> {result.note}", ""]
    lines += [f"> **Warning:** {warning}" for warning in result.warnings]
    lines += [""] if result.warnings else []
    if result.commit:
        lines += [f"Graded commit `{result.commit}` ({result.commit_time})"
                  + (f"; {result.late}" if result.late else "") + ".", ""]
    lines += ["| exercise | score |", "|---|---|"]
    lines += [f"| {r.name} | {r.score}/{r.total} |" for r in result.results]
    if result.manual:
        lines += ["", "## Graded by hand", "", "| item | points | comment |", "|---|---|---|"]
        lines += [f"| {m.item} | {number(m.points)} | {one_line(m.comment).replace('|', '/')} |"
                  for m in result.manual]
    for res in result.results:
        lines += ["", f"## {res.name}: {res.title} — {res.score}/{res.total}", ""]
        if res.note:
            lines += [f"**{res.status}:** {res.note}", ""]
        failed = [t for t in res.tests if not t.passed and t.kind != "nbval"]
        cells = [t for t in res.tests if t.kind == "nbval" and t.outcome in ("failed", "error")]
        if not res.tests and not res.note:
            lines.append("Not graded: no test ran.")
        elif res.status == "ok" and not failed and not cells and not res.note:
            lines.append("All tests passed.")
        for test in failed:
            kind = "hidden test" if test.kind == "hidden" else "public test"
            lines += [f"- **{test.name}** ({kind}, {test.points} pt): {test.outcome}"]
            if test.message:
                lines += ["", "  ```text", _indent(test.message, "  "), "  ```"]
        if cells:
            first = cells[0]
            lines += [
                f"- **the notebook does not run top to bottom** ({res.nbval_points} pt): "
                f"{first.name} failed",
                "",
                "  ```text",
                _indent(first.message, "  "),
                "  ```",
            ]
    return "\n".join(lines) + "\n"


def feedback_names(students: list[str]) -> list[str]:
    """A distinct feedback file name per row: ``safe_name(id).md``, suffixed on a clash.

    Ids differing only in characters ``safe_name`` replaces ("a b", "a_b"), or
    only in case (one file on a case-insensitive file system), or equal (two
    submissions of one student), would otherwise overwrite each other's
    feedback; the later one gets ``-2``, ``-3``...  Depends only on the rows'
    order, so a one-student regrade finds the same file again.
    """
    names: list[str] = []
    taken: set[str] = set()
    for student in students:
        base = safe_name(student)
        candidate, n = base, 1
        while candidate.lower() in taken:
            n += 1
            candidate = f"{base}-{n}"
        taken.add(candidate.lower())
        names.append(f"{candidate}.md")
    return names


def classroom_payload(result: SubmissionResult) -> dict[str, Any]:
    """The result in the shape GitHub Classroom's autograding reporter reads.

    One "test" per exercise (its score, pass only at full marks, the failing
    tests as message); ``max_score`` is what this tree can award, i.e. the
    public tests in a student's repository.
    """
    tests = []
    for res in result.results:
        failing = [t.name for t in res.tests if not t.passed and t.kind != "nbval"]
        message = res.note or ("failing: " + ", ".join(failing) if failing else "")
        tests.append({
            "name": f"{res.name}: {res.title}",
            "status": "pass" if res.score == res.reachable else "fail",
            "score": res.score,
            "max_score": res.reachable,
            "message": message[:1000],
            "line_no": 0,
            "execution_time": f"{res.seconds:.1f}s",
        })
    return {
        "version": 1,
        "status": "pass" if result.score == result.reachable else "fail",
        "max_score": result.reachable,
        "tests": tests,
    }


# --- command line ------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m exercises.grade",
        description="Grade khttpd-book exercises: a working copy, or a class of submissions.",
    )
    parser.add_argument("dir", nargs="?", type=Path,
                        help="working copy to grade (default: this tree)")
    parser.add_argument("--only", action="append", default=[], metavar="NAME",
                        help="grade only this exercise (repeatable; a prefix like 03 works)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--classroom-output", type=Path, metavar="FILE",
                        help="append result=<base64 JSON> for GitHub Classroom's reporter to FILE "
                        "(e.g. $GITHUB_OUTPUT)")
    parser.add_argument("--class", dest="class_dir", type=Path, metavar="SUBMISSIONS",
                        help="grade every submission directory in SUBMISSIONS")
    parser.add_argument("--out", type=Path, help="class mode: gradebook CSV to write")
    parser.add_argument("--feedback", type=Path, metavar="DIR",
                        help="class mode: write one Markdown feedback file per student here")
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds per exercise, overriding each points.toml (default 60)")
    parser.add_argument("--memory", type=int, default=DEFAULT_MEMORY_MB, metavar="MB",
                        help="address-space limit per grading process in MiB, at least "
                        f"{MIN_MEMORY_MB}; 0: none (default {DEFAULT_MEMORY_MB})")
    parser.add_argument("--jobs", "-j", type=int, default=min(2, os.cpu_count() or 1),
                        help="exercises graded at once (default: 2, or 1 on one core)")
    parser.add_argument("--no-sandbox", action="store_true",
                        help="grade without the bubblewrap sandbox (class mode needs it by "
                        "default; a working copy uses it when it works)")
    parser.add_argument("--student",
                        help=f"a working copy: its student id (default: ${STUDENT_ID_ENV}, the "
                        "id its notebooks record, else the repository's name); with --class: "
                        "regrade only this student (directory, id, roster identifier or login) "
                        "in the existing --out")
    class_only = parser.add_argument_group("class mode (see exercises/classrun.py)")
    class_only.add_argument("--roster", type=Path, metavar="CSV",
                            help="GitHub Classroom's classroom_roster.csv: match submissions to "
                            "students, list non-submitters")
    class_only.add_argument("--deadline", metavar="ISO8601",
                            help="git submissions: grade the last commit at or before this time "
                            "(with a timezone, e.g. 2025-03-01T23:59:00+01:00)")
    class_only.add_argument("--late-penalty", type=float, metavar="PCT",
                            help="with --deadline: grade HEAD and deduct PCT%% per started day "
                            "late (at most 100%%)")
    class_only.add_argument("--manual", type=Path, metavar="CSV",
                            help="hand-graded scores: columns student,item,points,comment[,max]")
    class_only.add_argument("--canvas", type=Path, metavar="FILE",
                            help="also write the totals as a Canvas gradebook-import CSV")
    class_only.add_argument("--canvas-assignment", metavar="NAME",
                            help="the Canvas assignment's column name (default "
                            "'khttpd-book exercises')")
    class_only.add_argument("--resume", action="store_true",
                            help="finish the interrupted run whose <out>.incomplete files exist")
    return parser


def _select(exercises: list[Exercise], only: list[str]) -> list[Exercise]:
    if not only:
        return exercises
    chosen = [ex for ex in exercises if any(ex.name == o or ex.name.startswith(o) for o in only)]
    if not chosen:
        names = ", ".join(ex.name for ex in exercises)
        raise UsageError(f"no exercise matches {', '.join(only)} (exercises: {names})")
    return chosen


def _load_exercises(only: list[str]) -> list[Exercise]:
    exercises = discover(PACKAGE_DIR)
    if not exercises:
        raise ConfigError(f"no exercises found in {PACKAGE_DIR}")
    total = sum(ex.total for ex in exercises)
    if total != COURSE_TOTAL:
        print(f"warning: the exercises' totals add up to {total}, not {COURSE_TOTAL}",
              file=sys.stderr)
    chosen = _select(exercises, only)
    problems = check_points(chosen)
    if problems:
        raise ConfigError("the points tables are inconsistent:\n  " + "\n  ".join(problems))
    return chosen


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.class_dir is not None:
            from exercises.classrun import main_class  # it builds on this module

            return main_class(args)
        return _main_single(args)
    # OSError: a file that could not be read or written is one line too, not a traceback
    except (UsageError, ConfigError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _existing_ancestor(path: Path) -> Path:
    """The nearest directory-or-file above ``path`` that exists (``path`` itself if it does)."""
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_output_file(path: Path, option: str, create_dirs: bool = True) -> None:
    """Refuse, before any grading, a file option the run could not write at its end.

    A class run takes minutes; finding out afterwards that ``--out`` names a
    directory would throw the grades away.  ``create_dirs``: whether missing
    parent directories are created (the gradebook) or must exist
    (``--classroom-output`` appends to a file such as ``$GITHUB_OUTPUT``).
    """
    if path.is_dir():
        raise UsageError(f"{option} {path}: is a directory, not a file")
    if path.exists():
        if not os.access(path, os.W_OK):
            raise UsageError(f"{option} {path}: not writable")
        return
    parent = _existing_ancestor(path.parent) if create_dirs else path.absolute().parent
    if not parent.is_dir():
        what = "not a directory" if parent.exists() else "no such directory"
        raise UsageError(f"{option} {path}: {parent}: {what}")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"{option} {path}: cannot create files in {parent}")


def check_output_dir(path: Path, option: str) -> None:
    """Like :func:`check_output_file`, for a directory the run fills (``--feedback``)."""
    if path.exists() and not path.is_dir():
        raise UsageError(f"{option} {path}: exists and is not a directory")
    ancestor = _existing_ancestor(path)
    if not ancestor.is_dir():
        raise UsageError(f"{option} {path}: {ancestor}: not a directory")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise UsageError(f"{option} {path}: {ancestor}: not writable")


def _options(args: argparse.Namespace) -> Options:
    """The grading options, refusing values that would make every grade wrong."""
    if args.timeout is not None and args.timeout <= 0:
        raise UsageError("--timeout must be positive")
    if args.memory != 0 and args.memory < MIN_MEMORY_MB:
        raise UsageError(f"--memory must be at least {MIN_MEMORY_MB} (MiB), or 0 for no limit; "
                         f"got {args.memory}")
    if args.jobs < 1:
        raise UsageError(f"--jobs must be at least 1; got {args.jobs}")
    return Options(timeout=args.timeout, memory_mb=args.memory, jobs=args.jobs,
                   sandbox=not args.no_sandbox)


def _main_single(args: argparse.Namespace) -> int:
    if args.out or args.feedback:
        raise UsageError("--out and --feedback go with --class")
    class_only = [option for option, value in (
        ("--roster", args.roster), ("--deadline", args.deadline),
        ("--late-penalty", args.late_penalty), ("--manual", args.manual),
        ("--canvas", args.canvas), ("--canvas-assignment", args.canvas_assignment),
        ("--resume", args.resume)) if value not in (None, False)]
    if class_only:
        raise UsageError(f"{', '.join(class_only)} go{'es' if len(class_only) == 1 else ''} "
                         "with --class")
    target = args.dir if args.dir is not None else PACKAGE_DIR.parent
    if not target.is_dir():
        raise UsageError(f"{target}: no such directory")
    ex_dir = exercises_dir_of(target)
    if ex_dir is None:
        raise UsageError(
            f"{target}: not a working copy of the exercises (no exercises/NN-name/{NOTEBOOK_NAME})"
        )
    options = _options(args)
    # A student's own copy: sandboxed where bubblewrap works, silently without it.
    options.sandbox = options.sandbox and not sandbox.available()
    if args.classroom_output is not None:
        check_output_file(args.classroom_output, "--classroom-output", create_dirs=False)
    exercises = _load_exercises(args.only)
    student = working_copy_id(ex_dir, exercises, args.student)
    [result] = grade_many([(student, ex_dir)], exercises, options)
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        print(format_text(result, exercises))
    if args.classroom_output is not None:
        payload = json.dumps(classroom_payload(result)).encode()
        with args.classroom_output.open("a", encoding="utf-8") as stream:
            stream.write(f"result={base64.b64encode(payload).decode()}\n")
    return 0 if result.score == result.reachable else 1


def working_copy_id(ex_dir: Path, exercises: list[Exercise], given: str | None) -> str:
    """The id ``make grade`` grades with, recorded into the notebooks that have none.

    The same order as the student's own kernel (``support.student_id``):
    ``--student``, ``$KHTTPD_STUDENT_ID``, the id the notebooks record, the
    repository's name.  Recording it is what keeps the problem fixed once the
    student has worked on it: a later rename, a ZIP download or a fork no
    longer changes it.  Never in the instructor's tree (it holds hidden
    tests: its notebooks are the solutions the release starts from), never
    into a released starter the student has not touched (the template
    repository would hand its own id to every student), never over an
    existing id: a different one is reported instead.
    """
    found = recorded_ids(ex_dir, exercises)
    chosen = (given or "").strip() or os.environ.get(STUDENT_ID_ENV, "").strip()
    student = chosen or main_recorded(found) or submission_id(ex_dir)
    other = sorted(key for key in found if key != student)
    if other:
        source = "--student" if (given or "").strip() else f"${STUDENT_ID_ENV}"
        names = "; ".join(f"{key} in {', '.join(found[key])}" for key in other)
        print(f"warning: grading as {student!r}" + (f" ({source})" if chosen else "")
              + f", but the notebooks record another student id: {names}", file=sys.stderr)
    if any((ex_dir / ex.name / "test_hidden.py").is_file() for ex in exercises):
        return student
    written = record_id(ex_dir, exercises, student)
    if written:
        print(f"recorded student id {student} in {len(written)} notebook"
              f"{'s' if len(written) > 1 else ''}: commit them", file=sys.stderr)
    return student


if __name__ == "__main__":
    sys.exit(main())
