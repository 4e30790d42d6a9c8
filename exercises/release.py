"""Write the student version of the project: ``python -m exercises.release OUT``.

The student copy is the project (reference code, book, kernel module) with the
exercises turned into assignments: every ``### BEGIN SOLUTION`` region becomes
``raise NotImplementedError``, solution cells lose their outputs, hidden tests
are left out (their points are recorded in ``points.toml`` as
``hidden_points`` so the local grader can say how much it cannot see), and a
README tells students how to work and how they are graded.  The project's own
tests and CI are not shipped: they grade the instructor's solutions.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from exercises import notebook
from exercises.catalog import PACKAGE_DIR, ConfigError, check_points, collect_points, discover
from exercises.identity import mark_starter

ROOT = PACKAGE_DIR.parent
SHIPPED = [
    "khttpd_py", "kmod", "book", "Makefile", "pyproject.toml", "_config.yml", "_toc.yml",
    ".gitignore", "LICENSE", ".github/workflows/classroom.yml",
]
"""Top-level paths copied into a release (missing ones are skipped)."""
IGNORE = shutil.ignore_patterns(
    "__pycache__", "*.pyc", ".ipynb_checkpoints", ".pytest_cache", ".ruff_cache", "_build",
    "*.egg-info", "*.o", "*.ko", "*.mod", "*.mod.c", ".*.cmd", "Module.symvers", "modules.order",
    # Caches the tree builds or downloads (VM images, vendored JS): hundreds of MB.
    ".cache", ".tmp_versions", "_vendor", "node_modules",
    "htstress",  # kmod/htstress, the built load generator (students run make to build it)
)

STUDENT_README = """\
# khttpd-book — exercises

This repository is your copy of the khttpd-book exercises.  The book explains
how Linux's Concurrency Managed Workqueue (CMWQ) replaced one kernel thread
per connection in khttpd; each chapter ends with exercises in `exercises/`.

## Set up and work

```
make venv          # once: a virtual environment with everything the exercises use
make lab           # JupyterLab; open exercises/NN-name/exercise.ipynb
```

In each notebook, the code cells tagged **solution** are yours: replace every
`raise NotImplementedError(...)` with your code and keep the function names
and signatures.  Then restart the kernel and run the whole notebook.

## Check your score

```
make grade                                        # all exercises
.venv/bin/python -m exercises.grade --only 03     # one chapter's exercises
.venv/bin/pytest exercises/01-response-bytes      # the public tests, as plain pytest
```

`make grade` prints one line per exercise and a total, and lists each failing
test with its message.  It runs the **public tests** shipped here; your
instructor also runs hidden tests, worth the points the report marks as
hidden.  Points per exercise:

{table}

An exercise's points come from its tests, plus a few points for the notebook
running top to bottom with the expected outputs, counted once every public
test of that exercise passes.  A test or notebook cell that runs too long is
stopped and loses its points, and a notebook whose solution cells hang or
crash while being imported scores 0 for that exercise, so restart and run all
before you submit.  The grader takes
only your `exercise.ipynb` files: editing the test files changes nothing.

Some exercises give each student a different problem, generated from your
student id.  Your id is, in order: `$KHTTPD_STUDENT_ID` if set; the id
recorded in the notebook; else the name of your repository (GitHub Classroom
names it `<assignment>-<your login>`), taken from its `origin` remote or, for
a ZIP download unpacked as `<repository>-main`, from the folder without
`-main`.  The first `make grade` after you have started a notebook records the
id in it (`recorded student id ... : commit them`): commit the notebooks then,
and the problem stays yours however the folder is later renamed, downloaded
or moved.  Never copy a notebook from someone else: it records their id, and
the grader notices.

## Submit

Commit and push your notebooks (after a `make grade`, so they carry your id).
The GitHub Classroom workflow (`.github/workflows/classroom.yml`) runs the
public tests on every push and reports the score.
"""


class ReleaseError(Exception):
    """Printed as one line; exit status 2."""


RESERVED = {rel.split("/")[0] for rel in SHIPPED} | {"exercises", "tests"}
"""Top-level names of the source tree a release may never be written into."""


def looks_like_release(path: Path) -> bool:
    """True for a directory an earlier release wrote (its student README is there)."""
    readme = path / "README.md"
    return readme.is_file() and readme.read_text(encoding="utf-8", errors="replace").startswith(
        STUDENT_README.splitlines()[0]
    )


def check_target(out: Path, force: bool) -> None:
    """Refuse an OUT that would damage the source tree or cannot hold a release.

    Inside the tree only a new top-level directory (``release/``, the Makefile's
    default) is allowed: a target inside a shipped directory would be copied
    into itself without end, and ``--force`` must never remove source files.
    """
    root, target = ROOT.resolve(), out.resolve()
    if target == root or target in root.parents:
        raise ReleaseError(f"{out}: refusing to write a release over the source tree")
    if root in target.parents:
        inside = target.relative_to(root).parts
        if len(inside) > 1 or inside[0] in RESERVED or inside[0].startswith("."):
            raise ReleaseError(
                f"{out}: refusing to write a release inside the source tree "
                "(use a new directory next to it, or a new top-level one such as release/)"
            )
        if force and out.is_dir() and any(out.iterdir()) and not looks_like_release(out):
            raise ReleaseError(f"{out}: --force replaces only an earlier release inside the tree")
    if out.exists() and not out.is_dir():
        raise ReleaseError(f"{out}: exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise ReleaseError(f"{out} exists and is not empty (use --force to update it in place)")


GENERATED = {ROOT / "book" / "exercises"}
"""Folders ``make book`` writes (the exercise pages, from a release of the tree it is in)."""


def _ignore_generated(folder: str, names: list[str]) -> set[str]:
    """:data:`IGNORE`, plus the generated folders: a student's ``make book`` makes its own."""
    ignored = set(IGNORE(folder, names))
    return ignored | {n for n in names if Path(folder, n) in GENERATED}


OWNED = [*SHIPPED, "exercises", "README.md"]
"""What a release writes into OUT, hence what ``--force`` removes first."""


def clear_owned(out: Path) -> None:
    """Remove what an earlier release wrote, and nothing else.

    ``--force`` updates the template repository in place: its ``.git`` (the
    history GitHub Classroom copies to every student) and any file the
    release does not write (the instructor's own notes) stay.  A file the
    source tree no longer has disappears with its shipped folder.
    """
    for rel in OWNED:
        path = out / rel
        if path.is_symlink() or path.is_file():
            path.unlink()
        elif path.is_dir():
            shutil.rmtree(path)
    workflows = out / ".github" / "workflows"
    for empty in (workflows, workflows.parent):
        if empty.is_dir() and not any(empty.iterdir()):
            empty.rmdir()


def release(out: Path, force: bool = False) -> list[str]:
    """Write the student version into ``out``; returns the exercise names released."""
    check_target(out, force)
    exercises = discover(PACKAGE_DIR)
    if not exercises:
        raise ReleaseError(f"no exercises in {PACKAGE_DIR}")
    problems = check_points(exercises)
    if problems:
        raise ReleaseError("points tables are inconsistent:\n  " + "\n  ".join(problems))
    collected = collect_points(exercises)
    if out.is_dir() and any(out.iterdir()):  # only once the tree is known to be releasable
        clear_owned(out)
    out.mkdir(parents=True, exist_ok=True)

    for rel in SHIPPED:
        src = ROOT / rel
        dst = out / rel
        if src.is_dir():
            shutil.copytree(src, dst, ignore=_ignore_generated)
        elif src.is_file():
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)

    ex_out = out / "exercises"
    ex_out.mkdir()
    for item in PACKAGE_DIR.iterdir():
        if item.is_file() and item.suffix in (".py", ".md"):
            shutil.copy2(item, ex_out / item.name)
    for ex in exercises:
        dst = ex_out / ex.name
        shutil.copytree(
            ex.path, dst, ignore=shutil.ignore_patterns(
                "test_hidden.py", notebook.NOTEBOOK_NAME, "__pycache__", ".ipynb_checkpoints",
                ".pytest_cache",
            ),
        )
        try:
            nb = notebook.student_version(notebook.read(ex.path / notebook.NOTEBOOK_NAME),
                                          f"{ex.name}/{notebook.NOTEBOOK_NAME}")
        except notebook.NotebookError as exc:
            raise ReleaseError(str(exc)) from None
        mark_starter(nb)
        notebook.write(nb, dst / notebook.NOTEBOOK_NAME)
        hidden = sum(int(i["points"]) for i in collected[ex.name] if i["kind"] == "hidden")  # type: ignore[call-overload]
        toml = (ex.path / "points.toml").read_text(encoding="utf-8").rstrip("\n")
        if hidden:
            toml += (
                "\n# Written by exercises.release: points of the instructor's hidden tests,\n"
                f"# which this copy does not contain.\nhidden_points = {hidden}\n"
            )
        (dst / "points.toml").write_text(toml.rstrip("\n") + "\n", encoding="utf-8")

    table = "\n".join(
        ["| exercise | what | points |", "|---|---|---|"]
        + [f"| `{ex.name}` | {ex.title} | {ex.total} |" for ex in exercises]
        + [f"| | **total** | **{sum(ex.total for ex in exercises)}** |"]
    )
    (out / "README.md").write_text(STUDENT_README.format(table=table), encoding="utf-8")
    _verify(out)
    return [ex.name for ex in exercises]


def _verify(out: Path) -> None:
    """Belt and braces: no solution marker and no hidden test may reach students."""
    leaks = [p for p in (out / "exercises").rglob("test_hidden*.py")]
    for path in (out / "exercises").rglob("*.ipynb"):
        if notebook.BEGIN in path.read_text(encoding="utf-8"):
            leaks.append(path)
    if leaks:
        raise ReleaseError("release would leak solutions: " + ", ".join(map(str, leaks)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m exercises.release",
        description="Write the student version: solutions stripped, hidden tests removed.",
    )
    parser.add_argument("out", type=Path, help="directory to write (must be empty or absent)")
    parser.add_argument("--force", action="store_true",
                        help="update a non-empty OUT in place: replace what a release writes, "
                        "keep its .git and any other file")
    args = parser.parse_args(argv)
    try:
        names = release(args.out, force=args.force)
    except (ReleaseError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # e.g. OUT under /proc or a read-only place: one line, no traceback
        print(f"error: cannot write the release: {exc}", file=sys.stderr)
        return 2
    print(f"released {len(names)} exercises to {args.out}: {', '.join(names)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
