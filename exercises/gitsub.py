"""Submissions that are git repositories: which commit is graded, and how late it is.

A student's repository is untrusted input, and git obeys the repository's own
configuration: a checkout runs its hooks and filters, ``core.fsmonitor``
runs a program on almost any command, ``log.showSignature`` runs
``gpg.program``.  So the grader never checks anything out and never reads
the working tree's state through git: it lists commits with ``rev-list`` and
copies the notebooks out of the chosen commit with ``cat-file`` (plumbing that
runs no filter), with system and global configuration off, the dangerous
keys overridden on the command line, and a timeout on every call.

Commit times are whatever the student's clock (or ``GIT_COMMITTER_DATE``)
said: they can be forged.  When lateness matters, GitHub's push times (the
repository's activity log, or GitHub Classroom's deadline snapshot) are the
authority; this module's ``late`` column is a convenience, not evidence.
"""

from __future__ import annotations

import math
import os
import subprocess
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from exercises.catalog import Exercise, UsageError
from exercises.notebook import NOTEBOOK_NAME

GIT_TIMEOUT = 30.0
MAX_BLOB_BYTES = 64 * 1024 * 1024
"""A notebook bigger than this is not copied out (the runner refuses 16 MiB already)."""
_SAFE_CONFIG = (
    "safe.directory=*", "core.fsmonitor=false", "core.hooksPath=/dev/null",
    "log.showSignature=false", "gpg.program=false", "core.pager=cat",
)


class GitError(Exception):
    """git failed on a submission: that submission's note, not the run's end."""


def is_repository(path: Path) -> bool:
    """A submission directory that is itself a git repository (a real ``.git`` directory).

    A ``.git`` *file* (a worktree or submodule) names its object store
    elsewhere, anywhere on the grader's disk: not followed.
    """
    git = path / ".git"
    return git.is_dir() and not git.is_symlink()


def _git(repo: Path, *args: str) -> bytes:
    """Run ``git args`` against ``repo``'s object store only, safely; its stdout."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("GIT_")}
    env.update(GIT_DIR=str(repo / ".git"), GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL="/dev/null",
               GIT_TERMINAL_PROMPT="0", GIT_OPTIONAL_LOCKS="0", GIT_NO_REPLACE_OBJECTS="1",
               GIT_CEILING_DIRECTORIES=str(repo.parent))
    cmd = ["git"]
    for item in _SAFE_CONFIG:
        cmd += ["-c", item]
    try:
        proc = subprocess.run([*cmd, *args], capture_output=True, env=env, timeout=GIT_TIMEOUT,
                              stdin=subprocess.DEVNULL, cwd=repo)
    except FileNotFoundError:
        raise GitError("git is not installed") from None
    except subprocess.TimeoutExpired:
        raise GitError(f"git {args[0]} took longer than {GIT_TIMEOUT:g} s") from None
    if proc.returncode != 0:
        message = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise GitError(f"git {args[0]}: {message[-1] if message else proc.returncode}")
    return proc.stdout


@dataclass(frozen=True)
class Commit:
    sha: str
    time: datetime
    """Committer time, with the committer's UTC offset."""

    @property
    def iso(self) -> str:
        return self.time.isoformat()


def first_parent_history(repo: Path) -> list[Commit]:
    """HEAD and its first parents, newest first (the branch as it grew, not merged-in work)."""
    out = _git(repo, "rev-list", "--first-parent", "--format=%H %cI", "HEAD")
    commits = []
    for line in out.decode("utf-8", "replace").splitlines():
        if line.startswith("commit "):  # rev-list's own header line before each format
            continue
        sha, _, when = line.partition(" ")
        try:
            commits.append(Commit(sha, datetime.fromisoformat(when)))
        except ValueError:
            raise GitError(f"unreadable commit time {when!r} of {sha[:12]}") from None
    if not commits:
        raise GitError("no commit on HEAD")
    return commits


def parse_deadline(text: str) -> datetime:
    """``--deadline``: ISO 8601 with a timezone; a naive time would be read in the grader's zone."""
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"--deadline {text!r}: not an ISO 8601 time "
                         "(e.g. 2025-03-01T23:59:00+01:00)") from None
    if when.tzinfo is None or when.utcoffset() is None:
        raise UsageError(f"--deadline {text!r} has no timezone; add one, e.g. "
                         f"{when.isoformat()}+00:00")
    return when


def _span(delta: timedelta) -> str:
    """A lateness for people: ``2d 3h``, ``3h 5m``, ``40s``."""
    seconds = int(delta.total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {secs}s" if minutes else f"{secs}s"


@dataclass
class Choice:
    """The commit to grade and what the gradebook says about its timing."""

    commit: Commit | None
    late: str = ""
    penalty_pct: float = 0.0
    note: str = ""


def choose(history: list[Commit], deadline: datetime | None,
           late_penalty: float | None) -> Choice:
    """Which commit of ``history`` (newest first) is graded, and the lateness.

    Without a deadline: HEAD.  With one: the newest commit at or before it,
    and ``late`` counts the commits after it; with a late policy HEAD is
    graded instead and loses ``late_penalty`` percent per started day after
    the deadline (at most 100).
    """
    head = history[0]
    if deadline is None:
        return Choice(head)
    after = [c for c in history if c.time > deadline]
    late = ""
    if after:
        late = (f"{len(after)} commit{'s' if len(after) > 1 else ''} after the deadline, "
                f"the newest {_span(head.time - deadline)} late")
    if late_penalty is not None:
        if not after or head.time <= deadline:
            return Choice(head, late)
        days = math.ceil((head.time - deadline).total_seconds() / 86400)
        pct = min(100.0, late_penalty * days)
        return Choice(head, f"{late}; penalty {pct:g}% ({days} day{'s' if days > 1 else ''})",
                      pct)
    on_time = next((c for c in history if c.time <= deadline), None)
    if on_time is None:
        return Choice(None, late, note="no commit before the deadline: nothing to grade")
    return Choice(on_time, late)


def export_notebooks(repo: Path, sha: str, exercises: list[Exercise], dest: Path) -> Path:
    """Copy the exercises' notebooks of commit ``sha`` into ``dest/exercises``; that directory.

    The notebooks are looked for where the working copy has them (``exercises/``
    at the top, or the repository being the ``exercises`` folder itself).  A
    notebook committed as a symbolic link becomes a link here too, so the
    runner refuses it with its usual message; one bigger than MAX_BLOB_BYTES
    is left out (graded as missing).
    """
    out = dest / "exercises"
    out.mkdir(parents=True)
    wanted = {f"{prefix}{ex.name}/{NOTEBOOK_NAME}": ex.name
              for prefix in ("exercises/", "") for ex in exercises}
    listing = _git(repo, "ls-tree", "-l", "-z", sha, "--", *wanted).decode("utf-8", "replace")
    listed = {}
    for record in filter(None, listing.split("\0")):
        meta, _, path = record.partition("\t")
        if path in wanted and len(meta.split()) == 4:
            listed[path] = meta.split()
    for ex in exercises:
        name = ex.name
        entry = listed.get(f"exercises/{name}/{NOTEBOOK_NAME}") or listed.get(
            f"{name}/{NOTEBOOK_NAME}")
        if entry is None or entry[1] != "blob":
            continue
        mode, _kind, obj, size = entry
        target = out / name / NOTEBOOK_NAME
        target.parent.mkdir(parents=True, exist_ok=True)
        if mode == "120000":
            try:
                os.symlink(_git(repo, "cat-file", "blob", obj).decode("utf-8", "replace"), target)
            except (OSError, ValueError):
                pass
        elif size.isdigit() and int(size) <= MAX_BLOB_BYTES:
            target.write_bytes(_git(repo, "cat-file", "blob", obj))
    return out
