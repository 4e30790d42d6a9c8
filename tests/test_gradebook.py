"""The class grader's bookkeeping: identity, roster, gradebook, git deadlines, regrade, resume.

Grading runs only exercise 03-predict-timeline (the one whose problem depends
on the student id) on light submissions holding just that notebook, so the
slow tests stay in seconds.  A notebook "answered for X" carries literal
answers to X's problem: it scores full marks only when graded as X.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from exercises import gitsub, gradebook, identity, support
from exercises.catalog import PACKAGE_DIR, UsageError
from exercises.notebook import NOTEBOOK_NAME, read, write
from khttpd_py.sim import random_scenario, simulate

ROOT = PACKAGE_DIR.parent
EX = "03-predict-timeline"
DEADLINE = "2025-03-02T00:00:00+00:00"
BEFORE, AFTER = "2025-03-01T10:00:00+00:00", "2025-03-03T10:00:00+00:00"
"""Commit times: before the deadline, and 1 day 10 hours after it (2 started days)."""
ROSTER = (
    '\ufeff"identifier","github_username","github_id","name","section"\r\n'
    '"alice@uni.example","alice","101","Alice A","1"\r\n'
    '"bob@uni.example","bob","102","Bob, B","1"\r\n'
    '"carol@uni.example","carol","103","Carol C","2"\r\n'
    '"dave@uni.example","dave","104","Dave D","2"\r\n'
)


def env() -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if k != support.STUDENT_ID_ENV}
    return {**clean, "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1"}


def grade(*args: str | Path, cwd: Path = ROOT, timeout: float = 300
          ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "exercises.grade", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, env=env(), timeout=timeout)


def one_line_error(proc: subprocess.CompletedProcess[str], fragment: str) -> None:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: ") and fragment in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def answered(release: Path, dest: Path, student: str, record: str | None = None) -> Path:
    """A light submission: 03's released notebook answering ``student``'s problem literally."""
    problem = random_scenario(support.seed_for(student, EX), cpus=1)
    result = simulate(problem)
    times = {w.name: (result.start_time(w.name), result.finish_time(w.name))
             for w in problem.works}
    legacy = simulate(problem, model="legacy-mt").stats["makespan_ms"]
    nb = read(release / "exercises" / EX / NOTEBOOK_NAME)
    cells = [c for c in nb["cells"] if "solution" in c["metadata"].get("tags", [])]
    cells[-1]["source"] = (f"def my_times():\n    return {times!r}\n\n\n"
                           f"def my_legacy_makespan():\n    return {legacy!r}\n\n\n"
                           "def doc_c_w2():\n    return (20, 35)\n")
    if record is not None:
        nb["metadata"].setdefault("khttpd", {})["student_id"] = record
    path = dest / "exercises" / EX / NOTEBOOK_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    write(nb, path)
    return dest


def starter(release: Path, dest: Path) -> Path:
    path = dest / "exercises" / EX / NOTEBOOK_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(release / "exercises" / EX / NOTEBOOK_NAME, path)
    return dest


def git(repo: Path, *args: str, when: str | None = None) -> str:
    extra = {"GIT_COMMITTER_DATE": when, "GIT_AUTHOR_DATE": when} if when else {}
    return subprocess.run(
        ["git", "-c", "user.name=T", "-c", "user.email=t@example.org",
         "-c", "init.defaultBranch=main", *args],
        cwd=repo, env={**env(), **extra}, capture_output=True, text=True, check=True,
    ).stdout.strip()


def late_repo(release: Path, dest: Path, student: str) -> tuple[str, str]:
    """A git submission: the starter committed before the deadline, the answer after it."""
    starter(release, dest)
    git(dest, "init", "-q")
    git(dest, "add", "-A")
    git(dest, "commit", "-qm", "start", when=BEFORE)
    early = git(dest, "rev-parse", "HEAD")
    answered(release, dest, student)
    git(dest, "commit", "-qam", "answer", when=AFTER)
    return early, git(dest, "rev-parse", "HEAD")


def rows_of(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as stream:
        return list(csv.DictReader(stream))


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("release") / "khttpd-book-student"
    proc = subprocess.run([sys.executable, "-m", "exercises.release", out], cwd=ROOT,
                          capture_output=True, text=True, env=env(), timeout=120)
    assert proc.returncode == 0, proc.stderr
    return out


# --- identity, without grading -------------------------------------------------------------------


def test_student_id_prefers_env_then_recorded_id_then_repository_name(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    folder = tmp_path / "hw-erin-main" / "exercises" / EX
    folder.mkdir(parents=True)
    monkeypatch.chdir(folder)
    monkeypatch.delenv(support.STUDENT_ID_ENV, raising=False)
    assert support.student_id() == "hw-erin", "a ZIP download keeps its repository's name"
    (folder / NOTEBOOK_NAME).write_text(json.dumps(
        {"metadata": {"khttpd": {"student_id": "hw-erin-fork"}}, "cells": []}))
    assert support.student_id() == "hw-erin-fork"
    monkeypatch.chdir(tmp_path)
    assert support.student_id() == "anonymous"
    monkeypatch.setenv("PYTEST_CURRENT_TEST", f"hw-erin-main/exercises/{EX}/test_public.py::t")
    assert support.student_id() == "hw-erin-fork", "the running test's notebook"
    monkeypatch.setenv(support.STUDENT_ID_ENV, "from-env")
    assert support.student_id() == "from-env"


def test_repository_name_comes_from_the_origin_remote(tmp_path: Path):
    repo = tmp_path / "renamed-folder"
    repo.mkdir()
    git(repo, "init", "-q")
    assert support.repository_name(repo) == "renamed-folder"
    git(repo, "remote", "add", "origin", "git@github.com:course/hw-frank.git")
    assert support.repository_name(repo) == "hw-frank"
    git(repo, "remote", "set-url", "origin", "https://github.com/course/hw-frank/")
    assert support.repository_name(repo) == "hw-frank"


def test_roster_is_read_leniently_and_logins_match_longest_first(tmp_path: Path):
    path = tmp_path / "roster.csv"
    path.write_text(ROSTER + '"lee@uni.example","lee","105","Lee",""\n'
                    '"annlee@uni.example","ann-lee","106","Ann Lee",""\n\n', encoding="utf-8")
    roster = identity.load_roster(path)
    assert [e.login for e in roster] == ["alice", "bob", "carol", "dave", "lee", "ann-lee"]
    assert roster[1].name == "Bob, B" and roster[0].identifier == "alice@uni.example"
    assert identity.match_name("hw-ann-lee", roster).login == "ann-lee"  # type: ignore[union-attr]
    assert identity.match_name("hw-Lee", roster).login == "lee"  # type: ignore[union-attr]
    assert identity.match_name("hw-alicex", roster) is None
    assert identity.match_name("alice", roster).login == "alice"  # type: ignore[union-attr]


@pytest.mark.parametrize("text,fragment", [
    ("name,email\nA,a@x\n", "needs the columns identifier and github_username"),
    ("", "empty"),
    ('identifier,github_username\n"a,alice\n', "not a CSV file"),
    ("identifier,github_username\na,alice\nb,ALICE\n", "login ALICE is on rows 2 and 3"),
])
def test_a_malformed_roster_is_one_error(tmp_path: Path, text: str, fragment: str):
    path = tmp_path / "roster.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(UsageError, match=fragment):
        identity.load_roster(path)


def test_problem_key_rules(tmp_path: Path):
    path = tmp_path / "roster.csv"
    path.write_text(ROSTER, encoding="utf-8")
    roster = identity.load_roster(path)
    zip_dir = identity.resolve("hw-alice-main", {"hw-alice": [EX]}, roster)
    assert (zip_dir.key, zip_dir.login, zip_dir.warnings) == ("hw-alice", "alice", [])
    copied = identity.resolve("hw-bob", {"hw-alice": [EX]}, roster)
    assert copied.key == "hw-bob" and copied.login == "bob"
    assert "copied" in copied.warnings[0] and "'hw-alice'" in copied.warnings[0]
    renamed = identity.resolve("download (1)", {"hw-carol": [EX]}, roster)
    assert (renamed.key, renamed.login) == ("hw-carol", "carol")
    assert "graded as the id its notebooks record" in renamed.warnings[0]
    stranger = identity.resolve("hw-zed", {}, roster)
    assert stranger.key == "hw-zed" and "matches no login" in stranger.warnings[0]
    assert identity.resolve("hw-zed", {}, None).warnings == [], "no roster, nothing to warn"
    assert [e.login for e in identity.absent(roster, [zip_dir, copied, renamed])] == ["dave"]


def test_deadline_must_have_a_timezone():
    assert gitsub.parse_deadline("2025-03-02T00:00:00Z").utcoffset() is not None
    with pytest.raises(UsageError, match="no timezone"):
        gitsub.parse_deadline("2025-03-02T00:00:00")
    with pytest.raises(UsageError, match="not an ISO 8601 time"):
        gitsub.parse_deadline("next friday")


def test_choosing_the_commit_for_a_deadline():
    from datetime import datetime

    head = gitsub.Commit("b" * 40, datetime.fromisoformat(AFTER))
    early = gitsub.Commit("a" * 40, datetime.fromisoformat(BEFORE))
    deadline = datetime.fromisoformat(DEADLINE)
    assert gitsub.choose([head, early], None, None).commit == head
    on_time = gitsub.choose([head, early], deadline, None)
    assert on_time.commit == early
    assert on_time.late == "1 commit after the deadline, the newest 1d 10h late"
    late = gitsub.choose([head, early], deadline, 10)
    assert late.commit == head and late.penalty_pct == 20 and "penalty 20%" in late.late
    assert gitsub.choose([head, early], deadline, 80).penalty_pct == 100
    none = gitsub.choose([head], deadline, None)
    assert none.commit is None and "no commit before the deadline" in none.note


def test_manual_scores_are_checked(tmp_path: Path):
    path = tmp_path / "manual.csv"
    path.write_text("student,item,points,comment,max\nalice,why,3.5,\"clear, short\",5\n"
                    "bob,why,1,,\n", encoding="utf-8")
    scores = gradebook.load_manual(path, [EX])
    assert scores.items == [gradebook.ManualItem("why", 5.0)]
    assert scores.by_student["alice"] == [gradebook.ManualScore("why", 3.5, "clear, short")]
    for text, fragment in [
        ("student,item,points\nalice,why,lots\n", "'lots' is not a number"),
        ("student,item,points\nalice,total,1\n", "clashes with a gradebook column"),
        ("student,points\nalice,1\n", "needs a header"),
        ("student,item,points\nalice,why,1\nalice,why,2\n", "a second score"),
    ]:
        path.write_text(text, encoding="utf-8")
        with pytest.raises(UsageError, match=fragment):
            gradebook.load_manual(path, [EX])


def test_replacing_a_row_keeps_every_other_byte(tmp_path: Path):
    path = tmp_path / "g.csv"
    head = ",".join(gradebook.LEADING + [EX] + gradebook.TRAILING)
    lines = [head, "Points Possible,,,15,15,,,,,,", 'a,,,1,1,,,,,"odd, quoted",',
             "b,,,2,2,,,,,,", 'c,,,3,3,,,,,,"multi\nline"']
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode())
    existing = gradebook.read_gradebook(path)
    assert [cells[0] for cells, _raw in existing.records] == ["Points Possible", "a", "b", "c"]
    gradebook.replace_row(path, existing, 2, ["b", "", "", "9", "9", "", "", "", "", "", ""])
    want = "\r\n".join([*lines[:3], "b,,,9,9,,,,,,", lines[4]]) + "\r\n"
    assert path.read_bytes() == want.encode()


# --- a class, graded ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def graded(release: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Alice as a ZIP download, Bob with Alice's notebook, Carol by git, Dave absent."""
    root = tmp_path_factory.mktemp("class")
    subs = root / "subs"
    answered(release, subs / "hw-alice-main", "hw-alice", record="hw-alice")
    answered(release, subs / "hw-bob", "hw-alice", record="hw-alice")
    early, head = late_repo(release, subs / "hw-carol", "hw-carol")
    (root / "roster.csv").write_text(ROSTER, encoding="utf-8")
    (root / "manual.csv").write_text(
        "student,item,points,comment,max\nalice,03-justification,4,\"good; cites the rule\",5\n"
        "hw-bob,03-justification,1,too short,5\n", encoding="utf-8")
    out, feedback, canvas = root / "gradebook.csv", root / "feedback", root / "canvas.csv"
    proc = grade("--class", subs, "--out", out, "--feedback", feedback, "--only", EX,
                 "--roster", root / "roster.csv", "--deadline", DEADLINE,
                 "--manual", root / "manual.csv", "--canvas", canvas)
    assert proc.returncode == 0, proc.stderr
    return {"root": root, "subs": subs, "out": out, "feedback": feedback, "canvas": canvas,
            "early": early, "head": head, "stderr": proc.stderr}


@pytest.mark.slow
def test_gradebook_shape_and_points_possible(graded: dict[str, Any]):
    with graded["out"].open(newline="", encoding="utf-8") as stream:
        table = list(csv.reader(stream))
    assert table[0] == [*gradebook.LEADING, EX, "03-justification", *gradebook.TRAILING]
    possible = dict(zip(table[0], table[1], strict=True))
    assert possible["student"] == "Points Possible"
    assert (possible[EX], possible["03-justification"], possible["total"]) == ("15", "5", "20")
    rows = {row["student"]: row for row in rows_of(graded["out"])[1:]}
    assert sorted(rows) == ["dave", "hw-alice", "hw-bob", "hw-carol"], "the whole roster"
    for row in rows.values():
        assert row["graded_at"].startswith("20") and "T" in row["graded_at"]


@pytest.mark.slow
def test_a_zip_download_with_a_recorded_id_gets_its_own_problem(graded: dict[str, Any]):
    alice = {row["student"]: row for row in rows_of(graded["out"])}["hw-alice"]
    assert (alice["lms_id"], alice["github_username"]) == ("alice@uni.example", "alice")
    assert alice[EX] == "15" and alice["03-justification"] == "4" and alice["total"] == "19"
    assert alice["warnings"] == "not a git repository: graded as it is, lateness unknown"
    text = (graded["feedback"] / "hw-alice.md").read_text()
    assert "| 03-justification | 4 | good; cites the rule |" in text
    assert "**Total: 19**" in text


@pytest.mark.slow
def test_a_copied_notebook_is_graded_with_the_roster_key_and_warned(graded: dict[str, Any]):
    bob = {row["student"]: row for row in rows_of(graded["out"])}["hw-bob"]
    assert bob["github_username"] == "bob"
    assert int(bob[EX]) < 15, "Alice's answers are wrong for Bob's problem"
    assert "copied" in bob["warnings"] and "hw-alice" in bob["warnings"]
    assert "copied" in (graded["feedback"] / "hw-bob.md").read_text()
    assert "hw-bob" in graded["stderr"] and "copied" in graded["stderr"]


@pytest.mark.slow
def test_the_commit_before_the_deadline_is_graded(graded: dict[str, Any]):
    carol = {row["student"]: row for row in rows_of(graded["out"])}["hw-carol"]
    assert carol["commit"] == graded["early"] and carol["commit_time"].startswith("2025-03-01T10")
    assert carol[EX] == "0", "the starter was committed in time; the answer came late"
    assert carol["notes"] == "", "the starter was graded (not missing from the export)"
    assert carol["late"] == "1 commit after the deadline, the newest 1d 10h late"
    assert git(graded["subs"] / "hw-carol", "rev-parse", "HEAD") == graded["head"]
    assert git(graded["subs"] / "hw-carol", "status", "--porcelain") == "", "never checked out"


@pytest.mark.slow
def test_roster_students_without_a_submission_get_a_row(graded: dict[str, Any]):
    dave = {row["student"]: row for row in rows_of(graded["out"])}["dave"]
    assert dave["notes"].startswith("no submission") and dave["total"] == "0" and dave[EX] == "0"
    assert dave["lms_id"] == "dave@uni.example"


@pytest.mark.slow
def test_canvas_export_shape(graded: dict[str, Any]):
    with graded["canvas"].open(newline="", encoding="utf-8") as stream:
        table = list(csv.reader(stream))
    assert table[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section",
                        "khttpd-book exercises"]
    assert table[1][0] == "Points Possible" and table[1][-1] == "20"
    by_sis = {row[2]: row for row in table[2:]}
    assert by_sis["alice@uni.example"][0] == "Alice A" and by_sis["alice@uni.example"][-1] == "19"
    assert by_sis["bob@uni.example"][0] == "Bob, B"
    assert by_sis["dave@uni.example"][-1] == "0"


@pytest.mark.slow
def test_regrading_one_student_replaces_exactly_its_row(
        graded: dict[str, Any], release: Path, tmp_path: Path):
    root = tmp_path / "copy"
    shutil.copytree(graded["root"], root, symlinks=True)
    out, feedback = root / "gradebook.csv", root / "feedback"
    before = out.read_bytes().splitlines(keepends=True)
    fb_before = {p.name: p.read_bytes() for p in feedback.iterdir()}
    shutil.rmtree(root / "subs" / "hw-bob")
    answered(release, root / "subs" / "hw-bob", "hw-bob", record="hw-bob")
    proc = grade("--class", root / "subs", "--out", out, "--feedback", feedback, "--only", EX,
                 "--roster", root / "roster.csv", "--deadline", DEADLINE, "--student", "bob")
    assert proc.returncode == 0, proc.stderr
    after = out.read_bytes().splitlines(keepends=True)
    changed = [i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b]
    assert len(changed) == 1 and after[changed[0]].startswith(b"hw-bob,"), changed
    bob = {row["student"]: row for row in rows_of(out)}["hw-bob"]
    assert bob[EX] == "15" and "copied" not in bob["warnings"]
    assert bob["03-justification"] == "1" and bob["total"] == "16", "manual points kept"
    fb_after = {p.name: p.read_bytes() for p in feedback.iterdir()}
    assert [n for n in fb_after if fb_after[n] != fb_before.get(n)] == ["hw-bob.md"]
    wrong = grade("--class", root / "subs", "--out", out, "--only", "02", "--student", "bob")
    one_line_error(wrong, "exercise columns")


@pytest.mark.slow
def test_a_late_penalty_grades_head_and_deducts_per_started_day(release: Path, tmp_path: Path):
    subs = tmp_path / "subs"
    _early, head = late_repo(release, subs / "hw-carol", "hw-carol")
    pwned = tmp_path / "pwned"
    hostile = f"touch {pwned}"
    for key in ("core.fsmonitor", "core.pager", "gpg.program", "diff.external"):
        git(subs / "hw-carol", "config", key, hostile)
    git(subs / "hw-carol", "config", "log.showSignature", "true")
    hook = subs / "hw-carol" / ".git" / "hooks" / "post-checkout"
    hook.write_text(f"#!/bin/sh\n{hostile}\n")
    hook.chmod(0o755)
    out = tmp_path / "g.csv"
    proc = grade("--class", subs, "--out", out, "--only", EX, "--deadline", DEADLINE,
                 "--late-penalty", "10")
    assert proc.returncode == 0, proc.stderr
    assert not pwned.exists(), "the repository's own configuration ran a program"
    [carol] = rows_of(out)[1:]
    assert carol["commit"] == head and carol[EX] == "15"
    assert carol["total"] == "12", "15 less 2 started days at 10%"
    assert "penalty 20%" in carol["late"]


@pytest.mark.slow
def test_resume_after_ctrl_c_finishes_like_a_clean_run(
        release: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from exercises import grade as grade_module

    subs = tmp_path / "subs"
    answered(release, subs / "hw-a", "hw-a")
    answered(release, subs / "hw-b", "hw-a", record="hw-a")
    starter(release, subs / "hw-c")
    out, feedback = tmp_path / "g.csv", tmp_path / "feedback"
    args = ["--class", str(subs), "--out", str(out), "--feedback", str(feedback),
            "--only", EX, "--jobs", "1"]
    real, calls = grade_module.grade_exercise, []

    def interrupt_second(*a: Any, **k: Any) -> Any:
        calls.append(a[2])
        if len(calls) == 2:  # Ctrl-C while the second submission is being graded
            os.kill(os.getpid(), signal.SIGINT)
        return real(*a, **k)

    monkeypatch.delenv(support.STUDENT_ID_ENV, raising=False)
    monkeypatch.setattr(grade_module, "grade_exercise", interrupt_second)
    assert grade_module.main(args) == 130
    partial, sidecar = tmp_path / "g.incomplete.csv", tmp_path / "g.incomplete.json"
    assert partial.is_file() and sidecar.is_file() and not out.exists()
    assert sorted(json.loads(sidecar.read_text())["submissions"]) == ["hw-a"]
    changed = grade("--class", subs, "--out", out, "--only", EX, "--timeout", "30", "--resume")
    one_line_error(changed, "timeout differ")
    monkeypatch.setattr(grade_module, "grade_exercise", real)
    calls.clear()
    resumed = grade("--class", subs, "--out", out, "--feedback", feedback, "--only", EX,
                    "--jobs", "1", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming: 1 of 3" in resumed.stderr
    assert not partial.exists() and not sidecar.exists()
    clean_out = tmp_path / "clean.csv"
    clean = grade("--class", subs, "--out", clean_out, "--only", EX)
    assert clean.returncode == 0, clean.stderr

    def scores(path: Path) -> list[tuple[str, str, str]]:
        return [(r["student"], r[EX], r["total"]) for r in rows_of(path)]

    assert scores(out) == scores(clean_out)
    assert scores(out)[1][1] == "15"
    assert sorted(p.name for p in feedback.iterdir()) == ["hw-a-2.md", "hw-a.md", "hw-c.md"]


@pytest.mark.slow
def test_make_grade_records_the_id_once(release: Path, tmp_path: Path):
    copy = answered(release, tmp_path / "hw-erin-main", "hw-erin")
    proc = grade(copy, "--only", EX, "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["score"] == 15, "the ZIP folder's problem is its clone's"
    assert "recorded student id hw-erin in 1 notebook: commit them" in proc.stderr
    nb = read(copy / "exercises" / EX / NOTEBOOK_NAME)
    assert nb["metadata"]["khttpd"]["student_id"] == "hw-erin"
    renamed = copy.rename(tmp_path / "somewhere-else")
    again = grade(renamed, "--only", EX, "--student", "someone")
    assert "recorded student id" not in again.stderr
    assert "notebooks record another student id: hw-erin" in again.stderr
    untouched = starter(release, tmp_path / "template")
    grade(untouched, "--only", EX)
    assert "student_id" not in read(untouched / "exercises" / EX / NOTEBOOK_NAME)["metadata"].get(
        "khttpd", {}), "the template repository must not record its own name"


@pytest.mark.parametrize("case,fragment", [
    ("roster", "needs the columns identifier and github_username"),
    ("naive-deadline", "has no timezone"),
    ("bad-deadline", "not an ISO 8601 time"),
    ("manual-unknown", "--manual"),
    ("penalty-alone", "--late-penalty needs --deadline"),
    ("resume-nothing", "no interrupted run"),
])
def test_bad_class_inputs_exit_2_in_one_line(release: Path, tmp_path: Path, case: str,
                                             fragment: str):
    subs = tmp_path / "subs"
    starter(release, subs / "hw-alice")
    (tmp_path / "roster.csv").write_text("name,email\nA,a@x\n", encoding="utf-8")
    (tmp_path / "manual.csv").write_text("student,item,points\nnobody,why,1\n", encoding="utf-8")
    extra = {
        "roster": ["--roster", tmp_path / "roster.csv"],
        "naive-deadline": ["--deadline", "2025-03-02T00:00"],
        "bad-deadline": ["--deadline", "tomorrow"],
        "manual-unknown": ["--manual", tmp_path / "manual.csv"],
        "penalty-alone": ["--late-penalty", "5"],
        "resume-nothing": ["--resume"],
    }[case]
    proc = grade("--class", subs, "--out", tmp_path / "g.csv", "--only", EX, *extra, timeout=60)
    one_line_error(proc, fragment)
    assert "grading" not in proc.stderr
    if case == "manual-unknown":
        assert "nobody" in proc.stderr


# --- release --force ----------------------------------------------------------------------------


@pytest.mark.slow
def test_release_force_updates_in_place_and_keeps_git(tmp_path: Path):
    target = tmp_path / "template"
    run = [sys.executable, "-m", "exercises.release", str(target)]
    assert subprocess.run(run, cwd=ROOT, env=env(), capture_output=True).returncode == 0
    git(target, "init", "-q")
    git(target, "add", "-A")
    git(target, "commit", "-qm", "first release")
    first = git(target, "rev-parse", "HEAD")
    (target / "README.md").write_text("edited by hand\n")
    (target / "exercises" / "stale.py").write_text("# removed upstream\n")
    (target / "NOTES.md").write_text("the instructor's own file\n")
    refused = subprocess.run(run, cwd=ROOT, env=env(), capture_output=True, text=True)
    assert refused.returncode == 2 and "--force" in refused.stderr
    again = subprocess.run([*run, "--force"], cwd=ROOT, env=env(), capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert git(target, "rev-parse", "HEAD") == first, "the history survives"
    assert git(target, "status", "--porcelain") == "?? NOTES.md"
    assert not (target / "exercises" / "stale.py").exists()
    other = tmp_path / "not-a-release"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    proc = subprocess.run([sys.executable, "-m", "exercises.release", str(other)], cwd=ROOT,
                          env=env(), capture_output=True, text=True)
    assert proc.returncode == 2 and (other / "keep.txt").read_text() == "mine"


def _appendix_commands() -> list[list[str]]:
    """Every grader or release command in the instructors' appendix's code blocks."""
    import shlex

    text = (PACKAGE_DIR.parent / "book" / "appendix-instructors.md").read_text(encoding="utf-8")
    commands, block, pending = [], False, ""
    for line in text.splitlines():
        if line.startswith("```"):
            block = not block
            continue
        if not block:
            continue
        line = pending + line.split("  #")[0].strip()
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        pending = ""
        if "-m exercises." in line:
            commands.append(shlex.split(line))
    return commands


def test_the_appendix_commands_work_as_written():
    """Each command uses the venv the Makefile builds and only options the tool has."""
    from exercises.grade import _parser as grade_parser

    commands = _appendix_commands()
    assert len(commands) >= 5, commands
    release_options = {"--force"}
    for argv in commands:
        assert argv[0] == ".venv/bin/python", f"not the project's venv: {' '.join(argv)}"
        module, args = argv[2], argv[3:]
        assert module in ("exercises.grade", "exercises.release"), argv
        if module == "exercises.grade":
            parsed = grade_parser().parse_args(args)  # SystemExit on an unknown option
            assert parsed is not None
        else:
            assert {a for a in args if a.startswith("-")} <= release_options, argv
