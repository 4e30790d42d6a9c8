"""The files the live site opens: the browser-capable exercises, as the student gets them.

Taken from the exercise pages' downloads (``book/exercises/_files/NN-name/``, written from
``make release``'s output by :mod:`khttpd_py.exercise_pages` earlier in the same build), so
the site can hold nothing a student's own copy does not: no solution, no hidden test.
Only exercises whose ``points.toml`` says ``in_browser = true`` are copied.

Each copied notebook gets two cells the repository's notebook does not have, both inert
outside the browser so a downloaded notebook grades exactly like the original:

* when the notebook derives a per-student problem (``student_id()``), a first cell where
  the student types the name of their course repository: in the browser there is no
  repository folder to take it from, and a wrong name would give another student's problem;
* a last cell that runs the public tests in the browser (:mod:`exercises.live`).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from exercises import catalog, notebook
from exercises.support import STUDENT_ID_ENV
from khttpd_py.exercise_pages import FILES, LIVE_FOLDER, PAGES

IDENTITY_MARK = "# khttpd-book: browser identity"
CHECK_MARK = "# khttpd-book: browser checks"

IDENTITY_CELL = f'''{IDENTITY_MARK} (this cell does nothing outside the browser)
import os
import sys

if sys.platform == "emscripten":
    # The name of YOUR course repository, e.g. "khttpd-hw-alice": your problem depends on it,
    # and the instructor's grader takes it from the repository you submit.
    os.environ["{STUDENT_ID_ENV}"] = ""
'''

CHECK_CELL = f"""{CHECK_MARK} (outside the browser it only points to make grade)
from exercises.live import run_public_checks

run_public_checks()
"""

CHECK_TEXT = """## Check your work in the browser

Save the notebook first (**Ctrl-S**): the checks read the saved file, as the grader does.
The next cell runs this exercise's public tests here and prints the points each one is
worth. Hidden tests and the notebook check (nbval) run only when you (`make grade`) or
your instructor grade your copy of the repository.

Your work is kept in this browser's storage, so it survives a reload, but not clearing
the site's data. To submit, or before clearing the browser, download the notebook
(*File → Download*) and save it as `exercises/{name}/exercise.ipynb` in your copy of the
course repository.
"""


def _code_cell(source: str) -> dict:
    cell = {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": []}
    notebook.set_cell_source(cell, source)
    return cell


def _markdown_cell(source: str) -> dict:
    cell = {"cell_type": "markdown", "metadata": {}}
    notebook.set_cell_source(cell, source)
    return cell


def browser_notebook(nb: notebook.Notebook, name: str) -> notebook.Notebook:
    """The released notebook with the browser's identity and checks cells."""
    cells = list(nb["cells"])
    if any("student_id" in notebook.cell_source(c) for c in cells if c["cell_type"] == "code"):
        cells.insert(0, _code_cell(IDENTITY_CELL))
    cells += [_markdown_cell(CHECK_TEXT.format(name=name)), _code_cell(CHECK_CELL)]
    return {**nb, "cells": cells}


def write_contents(root: Path, files: Path) -> list[str]:
    """Copy the browser exercises into ``files/exercises/``; return their names."""
    released = root / PAGES / FILES
    if not released.is_dir():
        raise FileNotFoundError(f"{released}: the exercise pages were not generated first")
    shutil.rmtree(files, ignore_errors=True)
    (files / LIVE_FOLDER).mkdir(parents=True)
    names = []
    for ex in catalog.discover(released):
        if not ex.in_browser:
            continue
        target = files / LIVE_FOLDER / ex.name
        shutil.copytree(ex.path, target)
        nb_path = target / notebook.NOTEBOOK_NAME
        notebook.write(browser_notebook(notebook.read(nb_path), ex.name), nb_path)
        names.append(ex.name)
    return names
