"""What an interrupted class run keeps, so ``--resume`` can finish it.

The partial CSV (``<out>.incomplete.csv``) is for people; the JSON sidecar
next to it holds every finished result in full (each test's outcome and
message), enough to write the feedback later as if the run had never
stopped.  It also records the options that decide grades: resuming under
different ones would mix two gradings in one gradebook, so it is refused.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from exercises.catalog import UsageError
from exercises.runner import ExerciseResult, TestOutcome

VERSION = 1


def incomplete_path(out: Path) -> Path:
    """Where an interrupted class run writes its partial gradebook: next to ``--out``.

    A separate name, so an interrupted rerun never replaces a complete gradebook.
    """
    return out.with_name(f"{out.stem}.incomplete{out.suffix or '.csv'}")


def sidecar_path(out: Path) -> Path:
    return incomplete_path(out).with_suffix(".json")


def digest(path: Path | None) -> str:
    """A file's content hash (a roster edited between the runs changes who is whom)."""
    return hashlib.sha256(path.read_bytes()).hexdigest() if path is not None else ""


def result_from_json(data: dict[str, Any]) -> ExerciseResult:
    """The inverse of ``ExerciseResult.to_json``: how a resumed run reads what it finished."""
    nbval = data.get("nbval") or {}
    return ExerciseResult(
        name=str(data["name"]), title=str(data["title"]), score=int(data["score"]),
        total=int(data["max"]), reachable=int(data["reachable"]), status=str(data["status"]),
        note=str(data.get("note", "")),
        tests=[TestOutcome(**{key: test[key] for key in TestOutcome.__dataclass_fields__
                              if key in test}) for test in data.get("tests", [])],
        nbval_points=int(nbval.get("points", 0)), nbval_awarded=bool(nbval.get("awarded")),
        seconds=float(data.get("seconds", 0.0)),
    )


def save(path: Path, fingerprint: dict[str, Any], finished: dict[str, dict[str, Any]]) -> None:
    """Write the sidecar: ``finished`` maps a submission directory to
    ``{"key", "commit", "results": [ExerciseResult JSON]}`` (finished ones only)."""
    payload = {"version": VERSION, "fingerprint": fingerprint, "submissions": finished}
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=1), encoding="utf-8")
    tmp.replace(path)


Finished = dict[tuple[str, str, str, str], ExerciseResult]


def load(path: Path, fingerprint: dict[str, Any]) -> Finished:
    """The finished results of an interrupted run: (directory, key, commit, exercise) -> result.

    Refuses, in one line, a missing or unreadable sidecar and one written
    under other options than ``fingerprint``.
    """
    if not path.is_file():
        raise UsageError(f"--resume: no interrupted run to resume ({path} does not exist)")
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
        if payload.get("version") != VERSION:
            raise ValueError(f"version {payload.get('version')!r}")
        old = payload["fingerprint"]
        finished = {
            (directory, str(entry["key"]), str(entry.get("commit", "")), str(res["name"])):
            result_from_json(res)
            for directory, entry in payload["submissions"].items()
            for res in entry["results"]
        }
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise UsageError(f"--resume: {path} is not readable ({exc})") from None
    if old != fingerprint:
        changed = sorted(key for key in set(old) | set(fingerprint)
                         if old.get(key) != fingerprint.get(key))
        raise UsageError("--resume: the interrupted run used other options "
                         f"({', '.join(changed)} differ); rerun without --resume")
    return finished
