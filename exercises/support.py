"""Helpers the exercise notebooks and tests share.

Kept tiny and dependency-free: a notebook imports it in the student's kernel,
the grader imports it in every test process.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

STUDENT_ID_ENV = "KHTTPD_STUDENT_ID"
METADATA_KEY = "khttpd"
"""``metadata.khttpd.student_id`` of a notebook: the id recorded by the first ``make grade``."""
NOTEBOOK = "exercise.ipynb"
BRANCH_SUFFIXES = ("-main", "-master")
"""What GitHub appends to a repository's name in a ZIP download (``<repo>-<branch>``)."""
GIT_TIMEOUT = 3.0


def submission_root(start: Path | None = None) -> Path | None:
    """The directory that holds ``exercises/`` above ``start`` (the cwd by default)."""
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / "exercises").is_dir():
            return candidate
    return None


def strip_branch(name: str) -> str:
    """``repo-main`` -> ``repo``: a GitHub ZIP download keeps the problem of its clone."""
    for suffix in BRANCH_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


def recorded_id(notebook: Path) -> str:
    """The student id recorded in ``notebook``'s metadata, or "" (none, or unreadable)."""
    try:
        nb = json.loads(notebook.read_text(encoding="utf-8"))
        value = nb["metadata"][METADATA_KEY]["student_id"]
    except (OSError, ValueError, KeyError, TypeError):
        return ""
    return value.strip() if isinstance(value, str) else ""


def remote_name(root: Path) -> str:
    """The name of ``root``'s repository from ``git remote get-url origin``, or "".

    Only when ``root`` is itself a repository (a ZIP unpacked inside some other
    repository must not take that one's name).  git may be missing, slow or
    broken: any failure means "", never an exception, within GIT_TIMEOUT.
    """
    if not (root / ".git").exists():
        return ""
    try:
        proc = subprocess.run(
            ["git", "-c", "core.fsmonitor=false", "-C", str(root), "remote", "get-url", "origin"],
            capture_output=True, text=True, timeout=GIT_TIMEOUT, stdin=subprocess.DEVNULL,
            env={**os.environ, "GIT_TERMINAL_PROMPT": "0"},
        )
    except (OSError, subprocess.SubprocessError, ValueError):
        return ""
    url = proc.stdout.strip() if proc.returncode == 0 else ""
    last = re.split(r"[/:\\]", url.rstrip("/"))[-1] if url else ""
    return last.removesuffix(".git")


def repository_name(root: Path) -> str:
    """What the repository at ``root`` is called: its origin's name, else its directory's.

    The directory's name loses a ``-main``/``-master`` suffix, so a ZIP download
    of ``hw-alice`` (unpacked as ``hw-alice-main``) is still ``hw-alice``.
    """
    return remote_name(root) or strip_branch(root.resolve().name)


def _notebook_nearby() -> Path | None:
    """The ``exercise.ipynb`` this call is about: in the cwd (Jupyter starts a kernel in
    the notebook's folder), else next to the calling test file (plain pytest).

    The notebook's own solution cells are imported by a fixture, with no test
    file on the stack; pytest's ``PYTEST_CURRENT_TEST`` (the running test's
    node id, relative to where pytest was started) names it then.
    """
    here = Path.cwd() / NOTEBOOK
    if here.is_file():
        return here
    frame = sys._getframe(1)
    while frame is not None:
        caller = Path(frame.f_code.co_filename)
        if caller.name.startswith("test_") and (caller.parent / NOTEBOOK).is_file():
            return caller.parent / NOTEBOOK
        frame = frame.f_back  # type: ignore[assignment]
    current = os.environ.get("PYTEST_CURRENT_TEST", "").split("::", 1)[0]
    if current:
        beside = (Path.cwd() / current).parent / NOTEBOOK
        if beside.is_file():
            return beside
    return None


def student_id() -> str:
    """Who this copy belongs to; the per-student problems are seeded by it.

    In order: ``$KHTTPD_STUDENT_ID`` (the grader always sets it); the id
    recorded in the notebook's metadata (``make grade`` writes it on the first
    run, so the problem stays the same however the folder is renamed later);
    the repository's name (its git remote, else its folder without a ZIP
    download's ``-main``).  GitHub Classroom names each repository
    ``<assignment>-<login>``, so student and instructor derive the same id
    without anyone typing it.
    """
    value = os.environ.get(STUDENT_ID_ENV, "").strip()
    if value:
        return value
    if sys.platform == "emscripten":  # the online book's browser copy: no repository folder
        raise RuntimeError(
            "type the name of your course repository in this notebook's first cell "
            f"({STUDENT_ID_ENV}) and run it: your problem depends on it"
        )
    notebook = _notebook_nearby()
    recorded = recorded_id(notebook) if notebook is not None else ""
    if recorded:
        return recorded
    root = submission_root(notebook.parent if notebook is not None else None)
    return repository_name(root) if root is not None else "anonymous"


def seed_for(student: str, exercise: str) -> int:
    """A stable 32-bit seed per (student, exercise); ``hash()`` is salted per process."""
    digest = hashlib.sha256(f"{exercise}:{student}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def safe_name(text: str) -> str:
    """A file-name-safe form of a student id (feedback files are named after it)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "student"
