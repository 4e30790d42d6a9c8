"""The class's gradebook: its CSV, the Canvas export, manual scores, reading one back.

The gradebook is what the instructor keeps and imports, so its shape is
fixed and self-describing: a header, then a "Points Possible" row (the
convention Canvas and most spreadsheets' grade templates use), then one row
per student of the class, non-submitters included.  Written with the csv
module in UTF-8, so names with commas, quotes or accents survive a spreadsheet.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from exercises.catalog import PACKAGE_DIR, Exercise, UsageError, discover

if TYPE_CHECKING:  # grade imports this module: only the type is needed here
    from exercises.grade import SubmissionResult

POINTS_POSSIBLE = "Points Possible"
LEADING = ["student", "lms_id", "github_username"]
TRAILING = ["total", "late", "commit", "commit_time", "graded_at", "warnings", "notes"]
NO_SUBMISSION = "no submission"
DEFAULT_CANVAS_ASSIGNMENT = "khttpd-book exercises"


def number(value: float) -> str:
    """A score as a spreadsheet reads it: ``12``, ``7.5``, never ``12.0``."""
    if math.isclose(value, round(value)):
        return str(round(value))
    return f"{value:.2f}".rstrip("0").rstrip(".")


def one_line(text: str) -> str:
    """Cells stay one line: multi-line notes break naive readers of the CSV."""
    return " ".join(text.split())


# --- manual scores -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ManualScore:
    """One hand-graded item of one student (a written justification, say)."""

    item: str
    points: float
    comment: str = ""


@dataclass(frozen=True)
class ManualItem:
    """A gradebook column of hand-graded points; ``max`` is "" when the file gives none."""

    name: str
    max: float | None = None


@dataclass
class ManualScores:
    items: list[ManualItem]
    by_student: dict[str, list[ManualScore]]
    """Keyed by the ``student`` cell of the file, as written."""


def _float(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise UsageError(f"{what}: {text!r} is not a number") from None
    if not math.isfinite(value):
        raise UsageError(f"{what}: {text!r} is not a number")
    return value


def load_manual(path: Path, exercise_names: list[str]) -> ManualScores:
    """Read ``--manual``: columns ``student,item,points,comment`` and an optional ``max``.

    Every problem is reported before any grading starts (one line, exit 2): a
    typo found after a class run would cost the run.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
        rows = list(csv.DictReader(io.StringIO(text, newline=""), strict=True))
    except UnicodeDecodeError as exc:
        raise UsageError(f"--manual {path}: not UTF-8 text ({exc.reason})") from None
    except csv.Error as exc:
        raise UsageError(f"--manual {path}: not a CSV file ({exc})") from None
    header = {(name or "").strip().lower() for name in (rows[0].keys() if rows else [])}
    if not rows or not {"student", "item", "points"} <= header:
        raise UsageError(f"--manual {path}: needs a header student,item,points,comment[,max] "
                         "and at least one row")
    reserved = set(LEADING) | set(TRAILING) | set(exercise_names) | set(catalog_names())
    items: dict[str, ManualItem] = {}
    by_student: dict[str, list[ManualScore]] = {}
    seen: set[tuple[str, str]] = set()
    for number_, raw in enumerate(rows, start=2):
        row = {(k or "").strip().lower(): (v or "").strip() for k, v in raw.items()
               if not isinstance(v, list)}
        where = f"--manual {path} row {number_}"
        student, item = row.get("student", ""), row.get("item", "")
        if not student or not item:
            raise UsageError(f"{where}: student and item must not be empty")
        if item in reserved or item == POINTS_POSSIBLE:
            raise UsageError(f"{where}: item {item!r} clashes with a gradebook column "
                             "(name it e.g. 03-justification)")
        points = _float(row.get("points", ""), f"{where} points")
        top = _float(row["max"], f"{where} max") if row.get("max") else None
        known = items.get(item)
        if known is not None and top is not None and known.max not in (None, top):
            raise UsageError(f"{where}: max {number(top)} for {item!r}, earlier rows say "
                             f"{number(known.max)}")  # type: ignore[arg-type]
        if known is None or known.max is None:
            items[item] = ManualItem(item, top)
        if (student, item) in seen:
            raise UsageError(f"{where}: a second score for {student} on {item!r}")
        seen.add((student, item))
        by_student.setdefault(student, []).append(ManualScore(item, points, row.get("comment", "")))
    return ManualScores(list(items.values()), by_student)


# --- writing -------------------------------------------------------------------------------------


def catalog_names() -> list[str]:
    """Every exercise of the grader's tree: how a gradebook's exercise columns are told
    from its manual ones (a manual item may not take such a name)."""
    return [ex.name for ex in discover(PACKAGE_DIR)]


def header(exercises: list[Exercise], items: list[ManualItem]) -> list[str]:
    return [*LEADING, *(ex.name for ex in exercises), *(i.name for i in items), *TRAILING]


def points_row(exercises: list[Exercise], items: list[ManualItem]) -> list[str]:
    """The maxima under each score column; a manual item without ``max`` leaves its cell empty."""
    top = sum(ex.total for ex in exercises) + sum(i.max or 0 for i in items)
    return [POINTS_POSSIBLE, "", "", *(str(ex.total) for ex in exercises),
            *(number(i.max) if i.max is not None else "" for i in items), number(top),
            *[""] * (len(TRAILING) - 1)]


def student_row(res: SubmissionResult, items: list[ManualItem]) -> list[str]:
    """One student's cells.  An exercise an interrupted run did not grade is empty, not 0,
    and so is the total: a partial sum would read as a grade."""
    skipped = [r.name for r in res.results if r.status == "interrupted"]
    notes = [res.note] if res.note else []
    if skipped:
        notes.append("incomplete: not graded: " + ", ".join(skipped))
    notes += [f"{r.name}: {r.status}" for r in res.results
              if r.status not in ("ok", "interrupted")]
    scores = ["" if r.status == "interrupted" else str(r.score) for r in res.results]
    manual = {m.item: m for m in res.manual}
    cells = [number(manual[i.name].points) if i.name in manual else "" for i in items]
    return [res.student, res.lms_id, res.github_username, *scores, *cells,
            "" if skipped else number(res.final), res.late, res.commit, res.commit_time,
            res.graded_at, one_line("; ".join(res.warnings)), one_line("; ".join(notes))]


def write_gradebook(path: Path, results: list[SubmissionResult], exercises: list[Exercise],
                    items: list[ManualItem] | None = None) -> None:
    """Header, Points Possible row, a row per student."""
    items = items or []
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(header(exercises, items))
        writer.writerow(points_row(exercises, items))
        for res in results:
            writer.writerow(student_row(res, items))


def write_canvas(path: Path, results: list[SubmissionResult], exercises: list[Exercise],
                 items: list[ManualItem], assignment: str) -> int:
    """The total as one assignment column in Canvas's gradebook-import CSV; rows unmatched.

    The shape follows Canvas's import format: the columns ``Student, ID, SIS User
    ID, SIS Login ID, Section`` then one column per assignment (a new name
    creates the assignment), and a ``Points Possible`` row under the header; see
    https://teaching.resources.osu.edu/toolsets/carmencanvas/guides/calculating-final-grades/import-csv-file-carmen-grades
    (and Instructure's guide "How do I import grades in the Gradebook?").
    Canvas matches a row by ID or SIS User ID; the Canvas user ID is unknown
    here, so the roster's identifier goes in SIS User ID: import the roster
    into GitHub Classroom with the SIS ids as identifiers.  Returns how many
    rows lack an identifier (Canvas cannot place them).
    """
    top = sum(ex.total for ex in exercises) + sum(i.max or 0 for i in items)
    unmatched = 0
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(["Student", "ID", "SIS User ID", "SIS Login ID", "Section", assignment])
        writer.writerow([POINTS_POSSIBLE, "", "", "", "", number(top)])
        for res in results:
            unmatched += not res.lms_id
            writer.writerow([res.name or res.student, "", res.lms_id, "", "", number(res.final)])
    return unmatched


# --- reading one back (regrading one student) ---------------------------------------------------


@dataclass
class Existing:
    """A gradebook as read, each record with its exact text so rewriting keeps it byte for byte."""

    header: list[str]
    records: list[tuple[list[str], str]]
    """(cells, raw text including its line ending) of every record after the header."""
    head_text: str

    def column(self, name: str) -> int:
        return self.header.index(name)


def _recording(lines: list[str], taken: list[str]) -> Iterator[str]:
    for line in lines:
        taken.append(line)
        yield line


def read_gradebook(path: Path) -> Existing:
    """Read ``path`` for a one-student regrade, refusing what this grader did not write."""
    try:
        text = path.read_bytes().decode("utf-8")  # no newline translation: bytes are kept
    except UnicodeDecodeError:
        raise UsageError(f"--out {path}: not a gradebook (not UTF-8 text)") from None
    taken: list[str] = []
    lines = re.findall(r"[^\n]*\n|[^\n]+$", text)  # str.splitlines also splits at U+2028
    reader = csv.reader(_recording(lines, taken), strict=True)
    records: list[tuple[list[str], str]] = []
    try:
        head = next(reader, None)
        head_text = "".join(taken)
        taken.clear()
        for cells in reader:  # the reader pulls exactly one record's lines at a time
            records.append((cells, "".join(taken)))
            taken.clear()
    except csv.Error as exc:
        raise UsageError(f"--out {path}: not a readable CSV ({exc})") from None
    if (not head or head[:len(LEADING)] != LEADING or head[-len(TRAILING):] != TRAILING
            or not records or records[0][0][:1] != [POINTS_POSSIBLE]):
        raise UsageError(f"--out {path}: not a gradebook this grader wrote (header and "
                         f"{POINTS_POSSIBLE} row); regrade the whole class instead")
    return Existing(head, records, head_text)


def check_columns(existing: Existing, path: Path, exercises: list[Exercise],
                  items: list[ManualItem] | None) -> list[ManualItem]:
    """The manual items of ``existing``; refuses one whose exercise columns differ from this run's.

    A row regraded with another exercise set would not line up with its
    neighbours.  Manual columns are taken from the file (with their points
    possible); ``--manual`` must not bring new ones.
    """
    middle = existing.header[len(LEADING):-len(TRAILING)]
    names = [ex.name for ex in exercises]
    known = set(catalog_names())
    have = [name for name in middle if name in known]
    if have != names:
        raise UsageError(f"--out {path}: its exercise columns ({', '.join(have) or 'none'}) "
                         f"are not this run's ({', '.join(names)}); pass the same --only")
    possible = dict(zip(existing.header, existing.records[0][0], strict=False))
    found = [ManualItem(name, _float(possible[name], f"--out {path} points possible")
                        if possible.get(name) else None)
             for name in middle if name not in known]
    new = [i.name for i in items or [] if i.name not in {f.name for f in found}]
    if new:
        raise UsageError(f"--out {path}: has no column for the manual item(s) {', '.join(new)}; "
                         "regrade the whole class to add them")
    return found


def old_manual(existing: Existing, record: list[str], items: list[ManualItem]) -> list[ManualScore]:
    """The manual points already in a row (kept when a regrade has no ``--manual``)."""
    cells = dict(zip(existing.header, record, strict=False))
    return [ManualScore(i.name, float(cells[i.name])) for i in items if cells.get(i.name)]


def replace_row(path: Path, existing: Existing, index: int, cells: list[str]) -> None:
    """Rewrite ``path`` with record ``index`` replaced by ``cells``, every other byte kept."""
    buffer = io.StringIO(newline="")
    ending = "\r\n" if existing.records[index][1].endswith("\r\n") else "\n"
    csv.writer(buffer, lineterminator=ending).writerow(cells)
    parts = [raw for _cells, raw in existing.records]
    parts[index] = buffer.getvalue()
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(existing.head_text + "".join(parts), encoding="utf-8", newline="")
    tmp.replace(path)


def find_row(existing: Existing, res: SubmissionResult) -> int:
    """The record of ``res``'s student: by roster identifier when both have one, else by key."""
    lms, student = existing.column("lms_id"), existing.column("student")
    hits = [i for i, (cells, _raw) in enumerate(existing.records) if i > 0 and (
        (cells[lms] == res.lms_id) if res.lms_id and cells[lms] else cells[student] == res.student
    )]
    if len(hits) != 1:
        how = "no row" if not hits else f"{len(hits)} rows"
        raise UsageError(f"the gradebook has {how} for {res.student}; regrade the whole class")
    return hits[0]

