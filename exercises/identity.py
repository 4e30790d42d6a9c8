"""Whose submission is this: recorded ids, the class roster, the problem key.

The per-student problems are seeded by a key (see ``support.student_id``).
Getting it wrong is silent and costly: correct answers to the student's own
problem score as wrong answers to somebody else's.  So the grader derives the
key the way the student's copy does, and says so whenever two sources
disagree instead of quietly picking one.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from exercises.catalog import Exercise, UsageError
from exercises.notebook import NOTEBOOK_NAME, Notebook, NotebookError, solution_code
from exercises.notebook import read as read_notebook
from exercises.notebook import write as write_notebook
from exercises.support import METADATA_KEY, recorded_id, strip_branch

ROSTER_COLUMNS = ("identifier", "github_username", "github_id", "name")
"""GitHub Classroom's roster export; only ``github_username`` is required."""


# --- ids recorded in notebooks -----------------------------------------------------------------


def recorded_ids(ex_dir: Path, exercises: list[Exercise]) -> dict[str, list[str]]:
    """The ids the notebooks of ``ex_dir`` record: id -> the exercises recording it.

    Symbolic links are not followed: they are not the student's files (the
    runner refuses to grade them for the same reason).
    """
    found: dict[str, list[str]] = {}
    for ex in exercises:
        path = ex_dir / ex.name / NOTEBOOK_NAME
        if path.is_file() and not path.is_symlink():
            value = recorded_id(path)
            if value:
                found.setdefault(value, []).append(ex.name)
    return found


def main_recorded(found: dict[str, list[str]]) -> str:
    """The id most notebooks record ("" for none); ties go to the first in name order."""
    if not found:
        return ""
    counts = Counter({key: len(names) for key, names in found.items()})
    return min(counts, key=lambda key: (-counts[key], key))


def starter_digest(nb: Notebook) -> str:
    """A hash of the solution cells: the release stores the starter's, so the grader can
    tell a notebook nobody has worked on yet."""
    return hashlib.sha256(solution_code(nb).encode()).hexdigest()


def mark_starter(nb: Notebook) -> None:
    """For the release: no recorded id (the source's would reach every student), the
    starter's digest instead."""
    meta = nb.setdefault("metadata", {})
    meta[METADATA_KEY] = {"starter": starter_digest(nb)}


def untouched(nb: Notebook) -> bool:
    """A released starter whose solution cells are as released."""
    ours = nb.get("metadata", {}).get(METADATA_KEY)
    return isinstance(ours, dict) and ours.get("starter") == starter_digest(nb)


def record_id(ex_dir: Path, exercises: list[Exercise], student: str) -> list[str]:
    """Write ``student`` into each graded notebook of ``ex_dir`` that records no id yet.

    Returns the exercises written.  An existing id is never overwritten (it is
    what the student's problem was generated from); a notebook that cannot be
    read is left alone (grading reports it), and so is an untouched starter:
    in the template repository an instructor checks, recording would hand the
    template's name to every student created from it.
    """
    written = []
    for ex in exercises:
        path = ex_dir / ex.name / NOTEBOOK_NAME
        if not path.is_file() or path.is_symlink() or recorded_id(path):
            continue
        try:
            nb = read_notebook(path)
        except NotebookError:
            continue
        if untouched(nb):
            continue
        meta = nb.setdefault("metadata", {})
        ours = meta.get(METADATA_KEY)
        if not isinstance(ours, dict):
            ours = meta[METADATA_KEY] = {}
        ours["student_id"] = student
        write_notebook(nb, path)
        written.append(ex.name)
    return written


# --- the roster --------------------------------------------------------------------------------


@dataclass(frozen=True)
class RosterEntry:
    """One student of GitHub Classroom's roster."""

    identifier: str
    """The LMS's id (what the instructor typed or imported: an e-mail, a student number)."""
    login: str
    github_id: str = ""
    name: str = ""


def load_roster(path: Path) -> list[RosterEntry]:
    """Read GitHub Classroom's ``classroom_roster.csv``.

    Lenient about what spreadsheets do to a CSV (a BOM, quoting, header case,
    extra columns, blank lines); strict about what would misfile grades: a
    missing column, two rows with the same login.  Rows of students who have
    not linked a GitHub account yet (no login) are kept, by identifier.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UsageError(f"--roster {path}: not UTF-8 text ({exc.reason})") from None
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), strict=True))
    except csv.Error as exc:
        raise UsageError(f"--roster {path}: not a CSV file ({exc})") from None
    rows = [row for row in rows if any(cell.strip() for cell in row)]
    if not rows:
        raise UsageError(f"--roster {path}: empty")
    header = [cell.strip().lower() for cell in rows[0]]
    if "github_username" not in header or "identifier" not in header:
        raise UsageError(
            f"--roster {path}: needs the columns identifier and github_username "
            f"(GitHub Classroom's roster export); found {', '.join(header) or 'none'}"
        )
    at = {name: header.index(name) for name in ROSTER_COLUMNS if name in header}
    entries: list[RosterEntry] = []
    seen: dict[str, int] = {}
    for number, row in enumerate(rows[1:], start=2):
        def cell(name: str, row: list[str] = row) -> str:
            index = at.get(name)
            return row[index].strip() if index is not None and index < len(row) else ""

        entry = RosterEntry(cell("identifier"), cell("github_username"), cell("github_id"),
                            cell("name"))
        if not entry.login and not entry.identifier:
            raise UsageError(f"--roster {path}: row {number} has neither identifier nor "
                             "github_username")
        if entry.login:
            if entry.login.lower() in seen:
                raise UsageError(f"--roster {path}: login {entry.login} is on rows "
                                 f"{seen[entry.login.lower()]} and {number}")
            seen[entry.login.lower()] = number
        entries.append(entry)
    return entries


def match_name(name: str, roster: list[RosterEntry]) -> RosterEntry | None:
    """The roster row ``name`` belongs to: equal to a login, or ending in ``-<login>``.

    GitHub logins are case-insensitive.  The longest login wins, so
    ``hw1-ann-lee`` is ann-lee's even when ``lee`` is on the roster too.
    """
    lowered = name.lower()
    best: RosterEntry | None = None
    for entry in roster:
        login = entry.login.lower()
        if login and (lowered == login or lowered.endswith("-" + login)) and (
            best is None or len(login) > len(best.login)
        ):
            best = entry
    return best


# --- the problem key ---------------------------------------------------------------------------


@dataclass
class Identity:
    """Who a submission is and which key its problems are generated from."""

    directory: str
    """The submission directory's name: unique in the class, the row's identity."""
    key: str
    entry: RosterEntry | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def lms_id(self) -> str:
        return self.entry.identifier if self.entry else ""

    @property
    def login(self) -> str:
        return self.entry.login if self.entry else ""


def resolve(directory: str, found: dict[str, list[str]],
            roster: list[RosterEntry] | None) -> Identity:
    """The key to grade a submission with, and every disagreement as a warning.

    ``directory`` is the submission's directory name, ``found`` the ids its
    notebooks record.  A roster match by directory name is the strongest
    evidence (the instructor collected that repository from that student): a
    notebook recording someone else's id is then likely copied, and is graded
    with the student's own key.  Without it, a recorded id (written by the
    student's first ``make grade``) beats a directory name that may have been
    renamed; the directory name is the last resort.
    """
    derived = strip_branch(directory)
    recorded = main_recorded(found)
    warnings: list[str] = []
    if len(found) > 1:
        listing = "; ".join(f"{key} ({', '.join(names)})" for key, names in sorted(found.items()))
        warnings.append(f"the notebooks record different student ids: {listing}")
    entry = match_name(derived, roster) if roster else None
    if entry is not None:
        if recorded and recorded != derived:
            warnings.append(f"the notebooks record student id {recorded!r}, not {derived!r} "
                            f"(copied notebooks?); graded as {derived!r}")
        return Identity(directory, derived, entry, warnings)
    entry = match_name(recorded, roster) if roster and recorded else None
    key = recorded or derived
    if recorded and recorded != derived:
        warnings.append(f"directory {directory!r} graded as the id its notebooks record, "
                        f"{recorded!r}")
    if roster and entry is None:
        why = "" if recorded else " and its notebooks record no id"
        warnings.append(f"{directory!r} matches no login of the roster{why}")
    return Identity(directory, key, entry, warnings)


def absent(roster: list[RosterEntry], identities: list[Identity]) -> list[RosterEntry]:
    """The roster rows no submission matched: they get a "no submission" row."""
    matched = {id(ident.entry) for ident in identities if ident.entry is not None}
    return [entry for entry in roster if id(entry) not in matched]


def duplicate_keys(identities: list[Identity]) -> None:
    """Warn on every submission sharing its key (or its roster row) with another.

    Two directories of one student (a clone and a ZIP) would otherwise both
    count, and the reader of the gradebook could not tell them apart.
    """
    by_key: dict[str, list[Identity]] = {}
    for ident in identities:
        by_key.setdefault(ident.entry.login.lower() if ident.entry else ident.key, []).append(ident)
    for group in by_key.values():
        if len(group) > 1:
            names = ", ".join(ident.directory for ident in group)
            for ident in group:
                ident.warnings.append(f"one student, several submissions: {names}")
