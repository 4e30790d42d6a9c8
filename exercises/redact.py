"""Keeping hidden tests out of feedback: cap every student-controlled text, withhold leaks.

Feedback quotes what the student's code controls: failure messages (an
exception raised by the solution cells can carry any text), nbval's cell
reports, cell labels, lines of the grading log.  Hidden tests are readable
in memory by the student's code (see ``exercises/sandbox.py``), so such text
could carry a hidden test's source.  :class:`Redactor` replaces every line
of a text that contains a *secret line* (a line of a hidden test file, long
enough to mean something, that appears in no file the students have), or
a long string or bytes literal of one (as the student's code finds them in
the hidden test module's code objects, raw or as their repr), by
:data:`WITHHELD`.  Comparison ignores whitespace, so re-indenting or
re-spacing a line does not slip it through.  A hidden test's own failure
message quotes its literal on purpose: its first line may.

It stops verbatim leaks, line by line.  A student who encodes the text, or
cuts it into short pieces, gets it through; the caps (``MAX_MESSAGE``
characters and ``MAX_LINES`` lines per message) bound how much per test.
"""

from __future__ import annotations

import ast
import functools
import re
from collections.abc import Iterable
from pathlib import Path

from exercises.catalog import Exercise
from exercises.notebook import NOTEBOOK_NAME, NotebookError, cell_source, student_version
from exercises.notebook import read as read_notebook

WITHHELD = "[line withheld: it reproduces a hidden test]"
MIN_SECRET = 20
"""Shorter lines (``import pytest``, ``def test_x(student):``, brackets) reveal nothing."""
MAX_MESSAGE = 1500
MAX_LINES = 40
MAX_NAME = 200
_SPACE = re.compile(r"\s+")


def _squeeze(text: str) -> str:
    return _SPACE.sub("", text)


class Redactor:
    """Withholds lines that reproduce a secret line; caps lengths."""

    def __init__(self, secret_texts: Iterable[str], public_texts: Iterable[str]) -> None:
        public_texts = list(public_texts)
        secret_texts = list(secret_texts)
        public = {_squeeze(line) for text in public_texts for line in text.splitlines()}
        everything = _squeeze("\n".join(public_texts))
        self.secrets = sorted({
            squeezed
            for text in secret_texts
            for line in text.splitlines()
            if len(squeezed := _squeeze(line)) >= MIN_SECRET and squeezed not in public
        })
        self.literals = sorted({
            form for text in secret_texts for form in _literals(text)
            if len(form) >= MIN_SECRET and form not in everything
        })

    def line(self, line: str, literals: bool = True) -> str:
        squeezed = _squeeze(line)
        if len(squeezed) >= MIN_SECRET and (
            any(secret in squeezed for secret in self.secrets)
            or (literals and any(literal in squeezed for literal in self.literals))
        ):
            return WITHHELD
        return line

    def text(self, text: str, limit: int = MAX_MESSAGE, lines: int = MAX_LINES,
             own_first_line: bool = False) -> str:
        """``text`` capped to ``lines`` lines and ``limit`` characters, secret lines withheld.

        Capped first, then checked, so a cut cannot turn a withheld line into
        a shown prefix of it that was not checked.  ``own_first_line``: the
        text is a hidden test's failure, whose first line may quote the
        test's own literals (its assertion message).
        """
        kept = text.splitlines()
        cut = len(kept) > lines
        capped = "\n".join(kept[:lines])
        if len(capped) > limit:
            capped, cut = capped[:limit], True
        out = "\n".join(self.line(line, literals=not (own_first_line and n == 0))
                        for n, line in enumerate(capped.splitlines()))
        return out + ("\n[... cut]" if cut else "")


def _literals(source: str) -> set[str]:
    """Every str and bytes literal of ``source``, squeezed, raw and as its repr shows it."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return set()
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str | bytes):
            value = node.value
            raw = value if isinstance(value, str) else value.decode("utf-8", "replace")
            shown = repr(value)[2:-1] if isinstance(value, bytes) else repr(value)[1:-1]
            found.update({_squeeze(raw), _squeeze(shown)})
            found.update(_squeeze(line) for line in raw.splitlines())
    return found


def _readable(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def released_notebook_text(path: Path) -> str:
    """The code and text of the notebook as students get it (solutions stripped)."""
    try:
        nb = student_version(read_notebook(path))
    except NotebookError:
        return ""
    return "\n".join(cell_source(cell) for cell in nb["cells"])


@functools.lru_cache(maxsize=64)
def for_exercise(exercise: Exercise) -> Redactor:
    """The redactor of ``exercise``: its hidden test files against everything students get.

    What students have: the exercise folder's other files (public tests,
    helper modules, data) and the released notebook.  Never the submitted
    notebook: a student could copy a hidden line into it to have it shown.
    """
    secret, public = [], []
    for path in sorted(exercise.path.rglob("*")):
        if not path.is_file() or "__pycache__" in path.parts:
            continue
        if path.name.startswith("test_hidden"):
            secret.append(_readable(path))
        elif path.name == NOTEBOOK_NAME:
            public.append(released_notebook_text(path))
        elif path.stat().st_size <= 4 * 1024 * 1024:
            public.append(_readable(path))
    return Redactor(secret, public)
