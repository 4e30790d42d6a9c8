"""Grade exercises: one working copy (``make grade``) or a whole class.

    python -m exercises.grade [DIR] [--only NAME ...] [--json]
    python -m exercises.grade --class SUBMISSIONS --out gradebook.csv --feedback FEEDBACK_DIR

DIR is a working copy (a directory holding ``exercises/``, or the
``exercises`` directory itself); the default is the tree this grader lives in.
Whatever DIR is, only its notebooks are read: the tests always come from the
grader's own tree (see ``exercises/runner.py`` for the sandbox).

Exit status: single mode 0 only at full marks (of what this tree can award),
1 otherwise; class mode 0 when the run completed; 2 for bad input.
"""

from __future__ import annotations

import argparse
import base64
import csv
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
    check_points,
    discover,
)
from exercises.notebook import NOTEBOOK_NAME
from exercises.runner import (
    DEFAULT_MEMORY_MB,
    INTERRUPTED_NOTE,
    ExerciseResult,
    grade_exercise,
)
from exercises.support import STUDENT_ID_ENV, safe_name

MIN_MEMORY_MB = 1024
"""Below this the notebook's Jupyter kernel cannot start (measured: 512 MiB fails), so
every notebook would silently lose its points; 0 means no limit."""


LINKED_SUBMISSION = "a symbolic link, not a submission directory: not graded"


class UsageError(Exception):
    """Bad input from the user: printed as one line, exit status 2."""


@dataclass
class SubmissionResult:
    """All exercises of one student."""

    student: str
    path: Path
    results: list[ExerciseResult] = field(default_factory=list)
    note: str = ""

    @property
    def score(self) -> int:
        return sum(r.score for r in self.results)

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


def submission_id(path: Path) -> str:
    """The student id of a working copy: its directory name (the one above ``exercises``)."""
    path = path.resolve()
    return path.parent.name if path.name == "exercises" else path.name


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


def grade_many(
    submissions: list[tuple[str, Path]],
    exercises: list[Exercise],
    options: Options,
    progress: Callable[[int, int, str], None] | None = None,
) -> list[SubmissionResult]:
    """Grade every (submission, exercise) pair, ``options.jobs`` at a time.

    Each pair is its own child process (see runner), so the pool's threads only
    wait; with two jobs both cores stay busy.  Results keep the input order.

    On Ctrl-C, queued jobs are cancelled and running children killed (they run
    in sessions of their own, so the terminal's SIGINT does not reach them);
    then GradingInterrupted carries the results finished so far.
    """
    jobs = [(sid, path, ex) for sid, path in submissions for ex in exercises]
    by_pair: dict[tuple[str, str], ExerciseResult] = {}
    stop = threading.Event()
    if progress:
        progress(0, len(jobs), "")
    pool = ThreadPoolExecutor(max_workers=max(1, options.jobs))
    futures: dict[Future[ExerciseResult], tuple[str, Exercise]] = {}
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
            ): (sid, ex)
            for sid, path, ex in jobs
        }
        for future in as_completed(futures):
            sid, ex = futures[future]
            by_pair[(sid, ex.name)] = future.result()
            if progress:
                progress(len(by_pair), len(jobs), f"{sid} {ex.name}")
    except KeyboardInterrupt:
        stop.set()
        pool.shutdown(wait=False, cancel_futures=True)
        _collect_finished(futures, by_pair)
        raise GradingInterrupted(
            _assemble(submissions, exercises, by_pair), len(by_pair), len(jobs)
        ) from None
    finally:
        pool.shutdown(wait=True)
    return _assemble(submissions, exercises, by_pair)


def _collect_finished(
    futures: dict[Future[ExerciseResult], tuple[str, Exercise]],
    by_pair: dict[tuple[str, str], ExerciseResult],
) -> None:
    """After a stop: add the jobs that did finish; wait (briefly) for the running ones.

    Running jobs notice the stop within a fraction of a second, kill their
    child and clean up; waiting for them means no child or temporary
    directory outlives the grader.
    """
    for future, (sid, ex) in futures.items():
        if future.cancelled() or (sid, ex.name) in by_pair:
            continue
        result = future.result()
        if result.status != "interrupted":
            by_pair[(sid, ex.name)] = result


def _assemble(
    submissions: list[tuple[str, Path]],
    exercises: list[Exercise],
    by_pair: dict[tuple[str, str], ExerciseResult],
) -> list[SubmissionResult]:
    """One SubmissionResult per submission, in input order; missing pairs are "interrupted"."""
    results = []
    for sid, path in submissions:
        res = SubmissionResult(sid, path)
        res.results = [
            by_pair.get((sid, ex.name)) or _placeholder(ex, "interrupted", INTERRUPTED_NOTE)
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
    lines += [f"**Total: {result.score}/{result.total}**", ""]
    if result.note:
        lines += [f"> {result.note}", ""]
    lines += ["| exercise | score |", "|---|---|"]
    lines += [f"| {r.name} | {r.score}/{r.total} |" for r in result.results]
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


def feedback_names(students: list[str]) -> dict[str, str]:
    """A distinct feedback file name per student: ``safe_name(id).md``, suffixed on a clash.

    Ids differing only in characters ``safe_name`` replaces ("a b", "a_b"), or
    only in case (one file on a case-insensitive file system), would otherwise
    overwrite each other's feedback; the later one gets ``-2``, ``-3``...
    """
    names: dict[str, str] = {}
    taken: set[str] = set()
    for student in students:
        base = safe_name(student)
        candidate, n = base, 1
        while candidate.lower() in taken:
            n += 1
            candidate = f"{base}-{n}"
        taken.add(candidate.lower())
        names[student] = f"{candidate}.md"
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


def write_gradebook(path: Path, results: list[SubmissionResult], exercises: list[Exercise]) -> None:
    """One row per student: id, each exercise's score, total, notes (timeouts, crashes).

    An exercise an interrupted run did not grade has an empty cell, not a 0,
    and the row's total is empty too: a partial sum would read as a grade.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(["student", *(ex.name for ex in exercises), "total", "notes"])
        for res in results:
            skipped = [r.name for r in res.results if r.status == "interrupted"]
            notes = [res.note] if res.note else []
            if skipped:
                notes.append("incomplete: not graded: " + ", ".join(skipped))
            notes += [f"{r.name}: {r.status}" for r in res.results
                      if r.status not in ("ok", "interrupted")]
            scores = ["" if r.status == "interrupted" else r.score for r in res.results]
            total = "" if skipped else res.score
            writer.writerow([res.student, *scores, total, "; ".join(notes)])


def incomplete_path(out: Path) -> Path:
    """Where an interrupted class run writes its partial gradebook: next to ``--out``.

    A separate name, so an interrupted rerun never replaces a complete gradebook.
    """
    return out.with_name(f"{out.stem}.incomplete{out.suffix or '.csv'}")


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
                        help=f"student id for a working copy (default: ${STUDENT_ID_ENV} "
                        "or the directory name)")
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
            return _main_class(args)
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
    student = args.student or os.environ.get(STUDENT_ID_ENV) or submission_id(ex_dir)
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


def _main_class(args: argparse.Namespace) -> int:
    if args.dir is not None:
        raise UsageError("give either a working copy DIR or --class SUBMISSIONS, not both")
    if args.out is None:
        raise UsageError("--class needs --out gradebook.csv")
    if args.classroom_output is not None:
        raise UsageError("--classroom-output grades one repository, not a class")
    check_output_file(args.out, "--out")
    if args.feedback is not None:
        check_output_dir(args.feedback, "--feedback")
    root: Path = args.class_dir
    if not root.is_dir():
        raise UsageError(f"{root}: no such directory")
    options = _options(args)
    if options.sandbox and sandbox.available():
        raise UsageError(sandbox.available())
    subdirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    linked = {p.name for p in subdirs if p.is_symlink()}
    for name in sorted(linked):
        print(f"warning: skipping {name}: {LINKED_SUBMISSION}", file=sys.stderr)
    submissions = [(p.name, None if p.name in linked else exercises_dir_of(p)) for p in subdirs]
    valid = [(sid, ex_dir) for sid, ex_dir in submissions if ex_dir is not None]
    if not valid:
        raise UsageError(
            f"{root}: no submissions in it (expected one directory per student, each a copy "
            f"of the released tree with exercises/NN-name/{NOTEBOOK_NAME})"
        )
    exercises = _load_exercises(args.only)
    print(f"grading {len(valid)} submissions x {len(exercises)} exercises, "
          f"{options.jobs} at a time", file=sys.stderr)
    try:
        graded = grade_many(valid, exercises, options, text_progress(sys.stderr))
    except GradingInterrupted as stopped:
        partial = incomplete_path(args.out)
        write_gradebook(partial, _with_non_submissions(root, submissions, stopped.results,
                                                       exercises, linked), exercises)
        print(f"\ninterrupted: {stopped.done} of {stopped.total} exercises graded; wrote them "
              f"to {partial} (rows marked incomplete); no feedback written", file=sys.stderr)
        return 130
    results = _with_non_submissions(root, submissions, graded, exercises, linked)
    write_gradebook(args.out, results, exercises)
    names: dict[str, str] = {}
    if args.feedback is not None:
        args.feedback.mkdir(parents=True, exist_ok=True)
        names = feedback_names([res.student for res in results])
        for res in results:
            (args.feedback / names[res.student]).write_text(format_feedback(res), encoding="utf-8")
        for student, file_name in names.items():
            if file_name != f"{safe_name(student)}.md":
                print(f"note: feedback for {student!r} is in {file_name} (its name clashes)",
                      file=sys.stderr)
    if args.json:
        print(json.dumps([res.to_json() for res in results], indent=2))
    else:
        for res in results:
            print(f"{res.student}\t{res.score}/{res.total}")
    print(f"wrote {args.out}" + (f" and {len(names)} files in {args.feedback}"
                                 if args.feedback else ""), file=sys.stderr)
    return 0


def _with_non_submissions(
    root: Path,
    submissions: list[tuple[str, Path | None]],
    graded: list[SubmissionResult],
    exercises: list[Exercise],
    linked: set[str],
) -> list[SubmissionResult]:
    """Every directory of the class, in order: graded ones, and a zero row for the others.

    A directory that is not a submission (or a symbolic link, ``linked``) still
    gets a row, so a student whose upload went wrong shows up in the gradebook
    rather than vanishing from it.
    """
    by_id = {res.student: res for res in graded}
    results: list[SubmissionResult] = []
    for sid, ex_dir in submissions:
        if ex_dir is None:
            why = LINKED_SUBMISSION if sid in linked else "not a submission (no exercises found)"
            res = SubmissionResult(sid, root / sid, note=why)
            res.results = [_placeholder(ex, "missing", "") for ex in exercises]
            results.append(res)
        else:
            results.append(by_id[sid])
    return results


if __name__ == "__main__":
    sys.exit(main())
