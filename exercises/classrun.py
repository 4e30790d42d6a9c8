"""Grading a whole class: ``python -m exercises.grade --class SUBMISSIONS --out gradebook.csv``.

SUBMISSIONS holds one directory per student (a clone, or an unpacked ZIP).
Per directory, in order:

* **Which files.** A git repository (its own ``.git`` directory) is graded
  from a commit, never from its working tree: HEAD, or with ``--deadline`` the
  last commit on HEAD's first-parent history at or before the deadline;
  ``--late-penalty PCT`` grades HEAD instead and deducts PCT percent per
  started day its commit is late.  Commit times are the student's to set, so
  ``late`` is a hint: GitHub's push times are the evidence (see
  ``exercises/gitsub.py``).  Any other directory is graded as it is.
* **Whose.** ``--roster`` (GitHub Classroom's export) ties the directory to a
  student; the problem key follows ``exercises/identity.py``, and every
  disagreement (a notebook recording someone else's id) is a warning in the
  feedback and the gradebook's ``warnings`` column, never a silently different
  problem.  Roster students without a directory get a "no submission" row.
* **The gradebook** (``exercises/gradebook.py``): header, Points Possible row,
  one row per student; ``--manual`` adds hand-graded columns, ``--canvas`` a
  Canvas import file.  ``--student ID`` regrades one student into an existing
  gradebook; an interrupted run (Ctrl-C) leaves ``<out>.incomplete.csv`` and
  ``.json``, and ``--resume`` finishes it.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from exercises import gitsub, gradebook, resume, sandbox
from exercises.catalog import Exercise, UsageError
from exercises.grade import (
    LINKED_SUBMISSION,
    GradingInterrupted,
    Options,
    Pair,
    SubmissionResult,
    _load_exercises,
    _options,
    _placeholder,
    check_output_dir,
    check_output_file,
    exercises_dir_of,
    feedback_names,
    format_feedback,
    grade_many,
    text_progress,
)
from exercises.identity import (
    Identity,
    RosterEntry,
    absent,
    duplicate_keys,
    load_roster,
    recorded_ids,
    resolve,
)
from exercises.notebook import NOTEBOOK_NAME
from exercises.runner import ExerciseResult
from exercises.support import safe_name


@dataclass
class Prepared:
    """One submission directory, ready to grade."""

    path: Path
    ex_dir: Path | None
    """The ``exercises`` directory to grade (a temporary export for a git submission);
    None: nothing to grade."""
    ident: Identity
    note: str = ""
    commit: str = ""
    commit_time: str = ""
    late: str = ""
    penalty_pct: float = 0.0
    warnings: list[str] = field(default_factory=list)


def _check_args(args: argparse.Namespace) -> None:
    """Everything about the options that can be refused before any work."""
    if args.dir is not None:
        raise UsageError("give either a working copy DIR or --class SUBMISSIONS, not both")
    if args.out is None:
        raise UsageError("--class needs --out gradebook.csv")
    if args.classroom_output is not None:
        raise UsageError("--classroom-output grades one repository, not a class")
    if args.late_penalty is not None and args.deadline is None:
        raise UsageError("--late-penalty needs --deadline")
    if args.late_penalty is not None and not 0 <= args.late_penalty <= 100:
        raise UsageError("--late-penalty is a percentage per day, 0 to 100; "
                         f"got {args.late_penalty:g}")
    if args.student and args.resume:
        raise UsageError("--student regrades one student of a finished gradebook; --resume "
                         "finishes an interrupted run: not both")
    if args.student and not args.out.is_file():
        raise UsageError(f"--student regrades one row of an existing gradebook: {args.out} "
                         "does not exist (grade the whole class first)")
    if args.student and args.canvas is not None:
        raise UsageError("--canvas is written by a whole-class run, not by --student")
    if args.canvas_assignment is not None and args.canvas is None:
        raise UsageError("--canvas-assignment goes with --canvas")
    check_output_file(args.out, "--out")
    if args.canvas is not None:
        check_output_file(args.canvas, "--canvas")
    if args.feedback is not None:
        check_output_dir(args.feedback, "--feedback")


def _prepare(path: Path, exercises: list[Exercise], roster: list[RosterEntry] | None,
             deadline: datetime | None, late_penalty: float | None, scratch: Path) -> Prepared:
    """Find what to grade in ``path`` and whose it is (see the module docstring)."""
    ex_dir = None if path.is_symlink() else exercises_dir_of(path)
    prepared = Prepared(path, ex_dir, Identity(path.name, path.name))
    if path.is_symlink():
        prepared.note = LINKED_SUBMISSION
    elif ex_dir is None:
        prepared.note = "not a submission (no exercises found)"
    elif gitsub.is_repository(path):
        try:
            choice = gitsub.choose(gitsub.first_parent_history(path), deadline, late_penalty)
            prepared.late, prepared.penalty_pct = choice.late, choice.penalty_pct
            if choice.commit is None:
                prepared.ex_dir, prepared.note = None, choice.note
            else:
                prepared.commit, prepared.commit_time = choice.commit.sha, choice.commit.iso
                prepared.ex_dir = gitsub.export_notebooks(path, choice.commit.sha, exercises,
                                                          scratch / safe_name(path.name))
        except gitsub.GitError as exc:
            prepared.warnings.append(f"{exc}: graded the files as they are, not a commit")
    elif deadline is not None:
        prepared.warnings.append("not a git repository: graded as it is, lateness unknown")
    found = recorded_ids(prepared.ex_dir, exercises) if prepared.ex_dir is not None else {}
    prepared.ident = resolve(path.name, found, roster)
    return prepared


def _result(prep: Prepared, graded: SubmissionResult | None, exercises: list[Exercise],
            graded_at: str) -> SubmissionResult:
    """The gradebook's row of one directory: its scores (or zeros) and everything around them."""
    ident = prep.ident
    res = graded or SubmissionResult(ident.key, prep.path)
    if graded is None:
        res.results = [_placeholder(ex, "missing", "") for ex in exercises]
    res.note = prep.note or res.note
    res.directory = ident.directory
    res.lms_id, res.github_username = ident.lms_id, ident.login
    res.name = ident.entry.name if ident.entry else ""
    res.warnings = [*ident.warnings, *prep.warnings]
    res.commit, res.commit_time = prep.commit, prep.commit_time
    res.late, res.penalty_pct, res.graded_at = prep.late, prep.penalty_pct, graded_at
    return res


def _no_submission(entry: RosterEntry, exercises: list[Exercise], graded_at: str,
                   root: Path) -> SubmissionResult:
    res = SubmissionResult(entry.login or entry.identifier, root, note=gradebook.NO_SUBMISSION)
    res.results = [_placeholder(ex, "missing", "") for ex in exercises]
    res.lms_id, res.github_username, res.name = entry.identifier, entry.login, entry.name
    res.graded_at = graded_at
    return res


def _names_of(res: SubmissionResult) -> set[str]:
    """What an instructor may call a student on the command line or in ``--manual``."""
    names = {res.student, res.directory, res.lms_id, res.github_username.lower()}
    return {name for name in names if name}


def _find(rows: list[SubmissionResult], wanted: str, option: str) -> list[SubmissionResult]:
    hits = [res for res in rows if wanted in _names_of(res) or wanted.lower() in _names_of(res)]
    if not hits:
        raise UsageError(f"{option} {wanted}: no such student (not a directory, id, roster "
                         "identifier or login of this class)")
    return hits


def _merge_manual(rows: list[SubmissionResult], manual: gradebook.ManualScores,
                  path: Path) -> None:
    """Attach each student's hand-graded scores; an unknown student is refused."""
    for student, scores in manual.by_student.items():
        hits = _find(rows, student, f"--manual {path}: student")
        if len(hits) > 1:
            raise UsageError(f"--manual {path}: student {student} names "
                             f"{len(hits)} rows; use the directory name")
        hits[0].manual = scores


def _fingerprint(args: argparse.Namespace, exercises: list[Exercise], options: Options,
                 deadline: datetime | None) -> dict[str, object]:
    """The options an interrupted run and its resumption must share (they decide grades)."""
    return {
        "class": str(args.class_dir.resolve()), "exercises": [ex.name for ex in exercises],
        "timeout": options.timeout, "memory_mb": options.memory_mb, "sandbox": options.sandbox,
        "deadline": deadline.isoformat() if deadline else None,
        "late_penalty": args.late_penalty, "roster": resume.digest(args.roster),
    }


def main_class(args: argparse.Namespace) -> int:
    _check_args(args)
    deadline = gitsub.parse_deadline(args.deadline) if args.deadline is not None else None
    roster = load_roster(args.roster) if args.roster is not None else None
    root: Path = args.class_dir
    if not root.is_dir():
        raise UsageError(f"{root}: no such directory")
    options = _options(args)
    unavailable = sandbox.available() if options.sandbox else ""
    if unavailable:
        raise UsageError(unavailable)
    subdirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    for path in subdirs:
        if path.is_symlink():
            print(f"warning: skipping {path.name}: {LINKED_SUBMISSION}", file=sys.stderr)
    if not any(not p.is_symlink() and exercises_dir_of(p) for p in subdirs):
        raise UsageError(
            f"{root}: no submissions in it (expected one directory per student, each a copy "
            f"of the released tree with exercises/NN-name/{NOTEBOOK_NAME})"
        )
    exercises = _load_exercises(args.only)
    with tempfile.TemporaryDirectory(prefix="khttpd-grade-commits-") as scratch:
        preps = [_prepare(p, exercises, roster, deadline, args.late_penalty, Path(scratch))
                 for p in subdirs]
        duplicate_keys([prep.ident for prep in preps if prep.ex_dir is not None])
        return _run(args, root, exercises, options, preps, roster, deadline)


def _run(args: argparse.Namespace, root: Path, exercises: list[Exercise], options: Options,
         preps: list[Prepared], roster: list[RosterEntry] | None,
         deadline: datetime | None) -> int:
    graded_at = datetime.now(UTC).isoformat(timespec="seconds")
    manual = (gradebook.load_manual(args.manual, [ex.name for ex in exercises])
              if args.manual is not None else None)
    missing = absent(roster, [prep.ident for prep in preps]) if roster else []

    def rows(graded: dict[int, SubmissionResult]) -> list[SubmissionResult]:
        out = [_result(prep, graded.get(i), exercises, graded_at) for i, prep in enumerate(preps)]
        return out + [_no_submission(entry, exercises, graded_at, root) for entry in missing]

    everyone = rows({})
    if manual is not None:
        _merge_manual(everyone, manual, args.manual)  # refuses unknown students before grading
    todo = [i for i, prep in enumerate(preps) if prep.ex_dir is not None]
    if args.student:
        return _regrade(args, exercises, options, preps, everyone, graded_at, manual)
    finished: dict[Pair, ExerciseResult] = {}
    fingerprint = _fingerprint(args, exercises, options, deadline)
    if args.resume:
        done = resume.load(resume.sidecar_path(args.out), fingerprint)
        for n, i in enumerate(todo):
            prep = preps[i]
            for ex in exercises:
                hit = done.get((prep.ident.directory, prep.ident.key, prep.commit, ex.name))
                if hit is not None:
                    finished[(n, ex.name)] = hit
        print(f"resuming: {len(finished)} of {len(todo) * len(exercises)} exercises already "
              "graded", file=sys.stderr)
    for res in everyone:
        for warning in res.warnings:
            print(f"warning: {res.directory or res.student}: {warning}", file=sys.stderr)
    print(f"grading {len(todo)} submissions x {len(exercises)} exercises, "
          f"{options.jobs} at a time", file=sys.stderr)
    pairs = [(preps[i].ident.key, preps[i].ex_dir) for i in todo]
    try:
        graded = grade_many(pairs, exercises, options, text_progress(sys.stderr),  # type: ignore[arg-type]
                            finished=finished)
    except GradingInterrupted as stopped:
        partial = rows(dict(zip(todo, stopped.results, strict=True)))
        _keep(args, exercises, fingerprint, partial, manual)
        print(f"\ninterrupted: {stopped.done} of {stopped.total} exercises graded; wrote them "
              f"to {resume.incomplete_path(args.out)} (rows marked incomplete); no feedback "
              "written; --resume finishes the run", file=sys.stderr)
        return 130
    results = rows(dict(zip(todo, graded, strict=True)))
    if manual is not None:
        _merge_manual(results, manual, args.manual)
    items = manual.items if manual else []
    gradebook.write_gradebook(args.out, results, exercises, items)
    for stale in (resume.incomplete_path(args.out), resume.sidecar_path(args.out)):
        stale.unlink(missing_ok=True)
    written = _write_feedback(args.feedback, results)
    if args.canvas is not None:
        unmatched = gradebook.write_canvas(
            args.canvas, results, exercises, items,
            args.canvas_assignment or gradebook.DEFAULT_CANVAS_ASSIGNMENT)
        if unmatched:
            print(f"warning: {unmatched} rows of {args.canvas} have no roster identifier "
                  "(SIS User ID): Canvas cannot match them", file=sys.stderr)
    _report(args, results, written)
    return 0


def _keep(args: argparse.Namespace, exercises: list[Exercise], fingerprint: dict[str, object],
          partial: list[SubmissionResult], manual: gradebook.ManualScores | None) -> None:
    """An interrupted run's partial gradebook, and the sidecar ``--resume`` reads."""
    if manual is not None:
        _merge_manual(partial, manual, args.manual)
    gradebook.write_gradebook(resume.incomplete_path(args.out), partial, exercises,
                              manual.items if manual else [])
    finished = {
        res.directory: {"key": res.student, "commit": res.commit,
                        "results": [r.to_json() for r in res.results if r.status != "interrupted"]}
        for res in partial if res.directory
    }
    resume.save(resume.sidecar_path(args.out), fingerprint,
                {d: entry for d, entry in finished.items() if entry["results"]})


def _write_feedback(folder: Path | None, results: list[SubmissionResult]) -> int:
    if folder is None:
        return 0
    folder.mkdir(parents=True, exist_ok=True)
    names = feedback_names([res.student for res in results])
    for res, file_name in zip(results, names, strict=True):
        (folder / file_name).write_text(format_feedback(res), encoding="utf-8")
        if file_name != f"{safe_name(res.student)}.md":
            print(f"note: feedback for {res.student!r} is in {file_name} (its name clashes)",
                  file=sys.stderr)
    return len(names)


def _report(args: argparse.Namespace, results: list[SubmissionResult], written: int) -> None:
    if args.json:
        import json

        print(json.dumps([res.to_json() for res in results], indent=2))
    else:
        for res in results:
            print(f"{res.student}\t{gradebook.number(res.final)}/{res.total}")
    print(f"wrote {args.out}" + (f" and {written} files in {args.feedback}"
                                 if args.feedback else ""), file=sys.stderr)


def _regrade(args: argparse.Namespace, exercises: list[Exercise], options: Options,
             preps: list[Prepared], everyone: list[SubmissionResult], graded_at: str,
             manual: gradebook.ManualScores | None) -> int:
    """``--student ID``: grade one student and replace only their row and feedback file."""
    existing = gradebook.read_gradebook(args.out)
    items = gradebook.check_columns(existing, args.out, exercises,
                                    manual.items if manual else None)
    hits = _find(everyone, args.student, "--student")
    if len(hits) > 1:
        names = ", ".join(res.directory or res.student for res in hits)
        raise UsageError(f"--student {args.student} names several rows ({names}); "
                         "give the directory name")
    [target] = hits
    index = everyone.index(target)
    row = gradebook.find_row(existing, target)
    if index < len(preps) and preps[index].ex_dir is not None:
        prep = preps[index]
        print(f"regrading {prep.ident.directory} as {prep.ident.key}: {len(exercises)} "
              "exercises", file=sys.stderr)
        [graded] = grade_many([(prep.ident.key, prep.ex_dir)], exercises, options,  # type: ignore[list-item]
                              text_progress(sys.stderr))
        manual_scores = target.manual
        target = _result(prep, graded, exercises, graded_at)
        target.manual = manual_scores
    if manual is None:
        target.manual = gradebook.old_manual(existing, existing.records[row][0], items)
    gradebook.replace_row(args.out, existing, row, gradebook.student_row(target, items))
    if args.feedback is not None:
        student = existing.column("student")
        names = feedback_names([cells[student] for cells, _raw in existing.records[1:]])
        args.feedback.mkdir(parents=True, exist_ok=True)
        (args.feedback / names[row - 1]).write_text(format_feedback(target), encoding="utf-8")
    print(f"{target.student}\t{gradebook.number(target.final)}/{target.total}")
    print(f"replaced the row of {target.student} in {args.out}"
          + (f" and its feedback in {args.feedback}" if args.feedback else ""), file=sys.stderr)
    return 0
