"""Finding exercises and their points: the folder layout of FORMAT.md, read back.

An exercise is any ``exercises/NN-name/`` folder holding ``points.toml`` and
``exercise.ipynb``.  Points live in two places on purpose: ``points.toml``
says what an exercise is worth in the course (its share of 100), the test
markers say how that share is split; :func:`check_points` refuses a tree
where the two disagree, so a forgotten marker cannot silently change a grade.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

from exercises.notebook import NOTEBOOK_NAME

PACKAGE_DIR = Path(__file__).resolve().parent
"""The ``exercises`` package this grader belongs to: its tests are the pristine ones."""

EXERCISE_DIR = re.compile(r"^\d\d-[a-z0-9-]+$")
DEFAULT_TIMEOUT = 60.0
COURSE_TOTAL = 100


class ConfigError(Exception):
    """The exercise tree itself is wrong (instructor's problem, not the student's)."""


class UsageError(Exception):
    """Bad input from the user (options, roster, scores): printed as one line, exit status 2.

    Here rather than in ``grade`` so the modules that read the instructor's
    files (roster, deadline, manual scores) can raise it without importing the CLI.
    """


@dataclass(frozen=True)
class Exercise:
    """One exercise folder and its ``points.toml``."""

    name: str
    path: Path
    title: str
    total: int
    nbval: int
    timeout: float
    hidden_points: int
    """Points of hidden tests that are *not* in this tree (a released copy); 0 in the source."""
    in_browser: bool = False
    """Needs neither sockets nor threads, so the online book opens it live in the reader's
    browser (Pyodide), public checks included; see ``khttpd_py.lite``."""

    @property
    def has_hidden_tests(self) -> bool:
        return (self.path / "test_hidden.py").is_file()

    @property
    def test_files(self) -> list[str]:
        """Public tests first, hidden last: the report lists failures in that order."""
        names = sorted(p.name for p in self.path.glob("test_*.py"))
        return sorted(names, key=lambda n: (n != "test_public.py", n.startswith("test_hidden"), n))

    @property
    def reachable(self) -> int:
        """The most this tree's tests can award (total minus hidden points not here)."""
        return self.total - self.hidden_points


def load_exercise(path: Path) -> Exercise:
    try:
        meta = tomllib.loads((path / "points.toml").read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path / 'points.toml'}: {exc}") from None
    try:
        return Exercise(
            name=path.name,
            path=path,
            title=str(meta.get("title", path.name)),
            total=int(meta["total"]),
            nbval=int(meta.get("nbval", 0)),
            timeout=float(meta.get("timeout", DEFAULT_TIMEOUT)),
            hidden_points=int(meta.get("hidden_points", 0)),
            in_browser=_flag(meta, "in_browser"),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{path / 'points.toml'}: bad or missing key ({exc})") from None


def _flag(meta: dict, key: str) -> bool:
    value = meta.get(key, False)
    if not isinstance(value, bool):
        raise ValueError(f"{key} must be true or false, not {value!r}")
    return value


def discover(root: Path = PACKAGE_DIR) -> list[Exercise]:
    """Every exercise under ``root`` (an ``exercises`` directory), in name order."""
    found = []
    for path in sorted(root.iterdir()):
        if path.is_dir() and EXERCISE_DIR.match(path.name) and (path / "points.toml").is_file():
            found.append(load_exercise(path))
    return found


def collect_points(exercises: list[Exercise]) -> dict[str, list[dict[str, object]]]:
    """Run ``pytest --collect-only`` once over all test files; points per test, per exercise.

    Collecting (rather than parsing decorators) counts parametrized cases and
    markers set on classes or modules exactly as the grading run will.
    """
    if not exercises:
        return {}
    with tempfile.TemporaryDirectory(prefix="khttpd-collect-") as tmp:
        out = Path(tmp) / "collect.json"
        ini = Path(tmp) / "pytest.ini"
        ini.write_text("[pytest]\n", encoding="utf-8")
        files = [str(ex.path / name) for ex in exercises for name in ex.test_files]
        env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
        env["PYTHONPATH"] = os.pathsep.join(
            [str(PACKAGE_DIR.parent), *filter(None, [env.get("PYTHONPATH")])]
        )
        cmd = [
            sys.executable, "-m", "pytest", "--collect-only", "-q", "--noconftest",
            "-p", "no:nbval", "-p", "exercises.plugin", "-p", "no:cacheprovider",
            "-c", str(ini), "--rootdir", str(exercises[0].path.parent),
            "--import-mode=importlib", "--grade-collect", str(out), *files,
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
        if proc.returncode != 0 or not out.exists():
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
            raise ConfigError(f"cannot collect the exercise tests:\n{tail}")
        items = json.loads(out.read_text(encoding="utf-8"))
    by_exercise: dict[str, list[dict[str, object]]] = {ex.name: [] for ex in exercises}
    for item in items:
        name = str(item["nodeid"]).split("/")[0]
        if name in by_exercise:
            by_exercise[name].append(item)
    return by_exercise


def check_points(exercises: list[Exercise]) -> list[str]:
    """Problems with the points tables (empty list = consistent).

    Per exercise: ``total == nbval + markers (+ hidden_points of a release)``.
    Over the course: the totals add up to 100 (reported, not fatal, so a tree
    being built exercise by exercise can still be graded).
    """
    problems = []
    collected = collect_points(exercises)
    for ex in exercises:
        marked = sum(int(item["points"]) for item in collected[ex.name])  # type: ignore[call-overload]
        if marked + ex.nbval + ex.hidden_points != ex.total:
            problems.append(
                f"{ex.name}: points.toml says total = {ex.total}, but tests carry {marked}, "
                f"nbval {ex.nbval}, hidden_points {ex.hidden_points}"
            )
        if not (ex.path / NOTEBOOK_NAME).is_file():
            problems.append(f"{ex.name}: no {NOTEBOOK_NAME}")
    return problems
