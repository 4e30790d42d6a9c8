"""Reading notebooks without Jupyter: solution cells, markers, the student module.

Notebooks are nbformat-4 JSON.  Only the standard library is used here so the
grader's parent process stays light and does not depend on nbformat's version.
The student's code is the concatenation of the code cells tagged ``solution``;
everything else in the notebook is the story told around it (run by nbval).
"""

from __future__ import annotations

import json
import linecache
import re
import sys
import types
from pathlib import Path
from typing import Any

SOLUTION_TAG = "solution"
BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
NOTEBOOK_NAME = "exercise.ipynb"
CELL_HEADER = "# --- cell "

Notebook = dict[str, Any]


class NotebookError(Exception):
    """The notebook cannot be read or its markers are malformed (message for humans)."""


def read(path: Path) -> Notebook:
    """Load a notebook; a clear NotebookError instead of a JSON traceback."""
    try:
        nb = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NotebookError(f"{path}: no such notebook") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise NotebookError(f"{path}: not a readable notebook ({exc})") from None
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise NotebookError(f"{path}: not a notebook (no cell list)")
    problem = _nbformat4_problem(nb)
    if problem:
        raise NotebookError(f"{path}: not an nbformat-4 notebook ({problem})")
    return nb


_CELL_TYPES = ("code", "markdown", "raw")


def _nbformat4_problem(nb: Notebook) -> str:
    """What keeps ``nb`` from being an nbformat-4 notebook the grader can run, or "".

    Checked here, in the grader's own process, because nbval fails on such a
    notebook with a collection error and a traceback into site-packages,
    which is no feedback for a student.  Only the fields grading reads.
    """
    if nb.get("nbformat") != 4:
        return f"nbformat is {nb.get('nbformat')!r}, not 4; re-save it with Jupyter 4 or later"
    if not isinstance(nb.get("metadata", {}), dict):
        return "its metadata is not an object"
    for index, cell in enumerate(nb["cells"]):
        where = f"cell {index + 1} of {len(nb['cells'])}"
        if not isinstance(cell, dict):
            return f"{where} is not an object"
        if cell.get("cell_type") not in _CELL_TYPES:
            return f"{where} has cell_type {cell.get('cell_type')!r}"
        source = cell.get("source")
        if not (isinstance(source, str) or (
            isinstance(source, list) and all(isinstance(line, str) for line in source)
        )):
            return f"{where}'s source is neither text nor a list of lines"
        if not isinstance(cell.get("metadata", {}), dict):
            return f"{where}'s metadata is not an object"
        if cell["cell_type"] == "code" and not isinstance(cell.get("outputs", []), list):
            return f"{where}'s outputs are not a list"
    return ""


def write(nb: Notebook, path: Path) -> None:
    """Write in the layout Jupyter itself uses (indent 1, trailing newline), so
    a release diffs cleanly against a notebook saved by JupyterLab."""
    Path(path).write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def cell_source(cell: dict[str, Any]) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def set_cell_source(cell: dict[str, Any], text: str) -> None:
    cell["source"] = text.splitlines(keepends=True)


def is_solution_cell(cell: dict[str, Any]) -> bool:
    tags = cell.get("metadata", {}).get("tags", [])
    return cell.get("cell_type") == "code" and isinstance(tags, list) and SOLUTION_TAG in tags


_MAGIC = re.compile(r"^\s*[%!]")


def solution_code(nb: Notebook) -> str:
    """The Python module the tests import: every solution cell, in order.

    IPython-only lines (``%magic``, ``!shell``) are replaced by ``pass`` rather
    than dropped so line numbers in tracebacks still match the cells.
    """
    parts: list[str] = []
    for index, cell in enumerate(nb["cells"]):
        if not is_solution_cell(cell):
            continue
        lines = [
            (re.match(r"^\s*", line).group(0) + "pass" if _MAGIC.match(line) else line)  # type: ignore[union-attr]
            for line in cell_source(cell).splitlines()
        ]
        parts.append(f"{CELL_HEADER}{index} ---\n" + "\n".join(lines) + "\n")
    return "\n".join(parts)


def load_module(path: Path, name: str = "student") -> types.ModuleType:
    """Build and import the student's module from a notebook's solution cells.

    The module is registered in ``sys.modules`` (dataclasses and pickling need
    that) and its source is put in ``linecache`` under a readable pseudo file
    name, so tracebacks show the student's own lines without writing any file.
    """
    code = solution_code(read(path))
    filename = f"<{Path(path).name} solution cells>"
    linecache.cache[filename] = (len(code), None, code.splitlines(keepends=True), filename)
    module = types.ModuleType(name)
    module.__file__ = filename
    sys.modules[name] = module
    try:
        exec(compile(code, filename, "exec"), module.__dict__)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def strip_solutions(source: str, where: str = "") -> str:
    """Replace each BEGIN/END SOLUTION region by a NotImplementedError at its indent.

    Markers must pair up and not nest; anything else is a NotebookError naming
    ``where`` so the instructor can find the cell.
    """
    out: list[str] = []
    inside = False
    for number, line in enumerate(source.splitlines(keepends=True), 1):
        stripped = line.strip()
        if stripped == BEGIN:
            if inside:
                raise NotebookError(f"{where} line {number}: nested {BEGIN}")
            inside = True
            indent = line[: len(line) - len(line.lstrip())]
            out.append(f'{indent}raise NotImplementedError("your code here")\n')
        elif stripped == END:
            if not inside:
                raise NotebookError(f"{where} line {number}: {END} without {BEGIN}")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise NotebookError(f"{where}: {BEGIN} without {END}")
    return "".join(out)


def has_markers(source: str) -> bool:
    return any(line.strip() == BEGIN for line in source.splitlines())


def student_version(nb: Notebook, where: str = NOTEBOOK_NAME) -> Notebook:
    """The released notebook: solutions stripped, solution cells' outputs cleared.

    Other cells keep their executed outputs so students see what a correct
    solution prints (the cells nbval compares are among them).
    """
    nb = json.loads(json.dumps(nb))  # deep copy
    for index, cell in enumerate(nb["cells"]):
        if cell.get("cell_type") != "code":
            continue
        source = cell_source(cell)
        if has_markers(source):
            set_cell_source(cell, strip_solutions(source, f"{where} cell {index}"))
        if is_solution_cell(cell) or has_markers(source):
            cell["outputs"] = []
            cell["execution_count"] = None
    return nb
