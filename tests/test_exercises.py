"""The exercise tooling end to end: release, grade a working copy, grade a class.

Grading is process-heavy (one pytest and one Jupyter kernel per exercise), so
one release is shared by the whole module and the class of five is graded
once; the individual tests read that run's CSV, JSON and feedback.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from exercises.catalog import PACKAGE_DIR, check_points, discover
from exercises.notebook import BEGIN, NOTEBOOK_NAME, read, write

ROOT = PACKAGE_DIR.parent
EXERCISES = [ex.name for ex in discover(PACKAGE_DIR)]
POINTS = {ex.name: ex.total for ex in discover(PACKAGE_DIR)}

pytestmark = pytest.mark.slow


def run(*args: str | Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop("KHTTPD_STUDENT_ID", None)
    return subprocess.run(
        [sys.executable, *map(str, args)], capture_output=True, text=True, cwd=ROOT, env=env,
        timeout=timeout,
    )


def grade_json(*args: str | Path, timeout: float = 600) -> tuple[int, Any]:
    proc = run("-m", "exercises.grade", *args, "--json", timeout=timeout)
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def solve(copy: Path, name: str) -> None:
    """Put the instructor's solution notebook of ``name`` into a released copy."""
    shutil.copyfile(PACKAGE_DIR / name / NOTEBOOK_NAME, copy / "exercises" / name / NOTEBOOK_NAME)


def sabotage(copy: Path, name: str, code: str) -> None:
    """Replace the first solution cell of ``name``'s notebook in ``copy`` by ``code``."""
    path = copy / "exercises" / name / NOTEBOOK_NAME
    nb = read(PACKAGE_DIR / name / NOTEBOOK_NAME)
    cell = next(c for c in nb["cells"] if "solution" in c.get("metadata", {}).get("tags", []))
    cell["source"] = code
    write(nb, path)


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("release") / "khttpd-book-student"
    proc = run("-m", "exercises.release", out)
    assert proc.returncode == 0, proc.stderr
    return out


def copy_of(release: Path, dest: Path) -> Path:
    shutil.copytree(release, dest)
    return dest


# --- the tree itself -------------------------------------------------------------------


def test_points_tables_are_consistent_and_sum_to_100():
    exercises = discover(PACKAGE_DIR)
    assert check_points(exercises) == []
    assert sum(ex.total for ex in exercises) == 100


def test_source_tree_scores_full_marks():
    started = time.monotonic()
    code, result = grade_json()
    took = time.monotonic() - started
    failing = {e["name"]: e["note"] or [t["name"] for t in e["tests"] if t["outcome"] != "passed"]
               for e in result["exercises"] if e["score"] != e["max"]}
    assert (result["score"], result["max"]) == (100, 100), failing
    assert code == 0
    print(f"grading the source tree took {took:.1f} s")


def test_text_report_has_lab0c_shape():
    proc = run("-m", "exercises.grade", "--only", "02")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert "---\t02-legacy-threads\t15/15" in lines
    assert lines[-1] == "---\tTOTAL\t\t15/15"


# --- release ---------------------------------------------------------------------------------


def test_release_strips_solutions_and_hidden_tests(release: Path):
    assert (release / "README.md").read_text().count("make grade") >= 1
    assert not list(release.rglob("test_hidden.py"))
    assert not (release / "tests").exists(), "the project's own tests grade solutions"
    for name in EXERCISES:
        text = (release / "exercises" / name / NOTEBOOK_NAME).read_text()
        assert BEGIN not in text
        if (PACKAGE_DIR / name / "test_hidden.py").exists():
            assert "hidden_points" in (release / "exercises" / name / "points.toml").read_text()
    nb = read(release / "exercises" / "01-response-bytes" / NOTEBOOK_NAME)
    solution = [c for c in nb["cells"] if "solution" in c["metadata"].get("tags", [])]
    assert solution and all(not c["outputs"] for c in solution)
    assert all("NotImplementedError" in "".join(c["source"]) for c in solution)
    assert "def build_response(status: int, body: bytes, keep_alive: bool) -> bytes:" in "".join(
        solution[0]["source"]
    ), "starter code keeps the signatures"


def test_release_scores_zero(release: Path):
    code, result = grade_json(release)
    assert result["score"] == 0, [(e["name"], e["score"]) for e in result["exercises"]]
    assert code == 1


def test_release_refuses_a_non_empty_target(release: Path):
    proc = run("-m", "exercises.release", release)
    assert proc.returncode == 2 and "not empty" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_released_copy_grades_itself_with_public_tests(release: Path):
    """A student's ``make grade`` runs the public tests shipped in their copy."""
    env = dict(os.environ, KHTTPD_STUDENT_ID="someone")
    proc = subprocess.run(
        [sys.executable, "-m", "exercises.grade", "--only", "01"], cwd=release, env=env,
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 1, proc.stderr
    assert "public tests" in proc.stdout
    assert "FAIL hidden test" not in proc.stdout, "a release has no hidden tests to run"


# --- robustness ----------------------------------------------------------------------------


def test_infinite_loop_costs_only_that_exercise(release: Path, tmp_path: Path):
    copy = copy_of(release, tmp_path / "looper")
    sabotage(copy, "01-response-bytes", "while True:\n    pass\n")
    solve(copy, "02-legacy-threads")
    started = time.monotonic()
    code, result = grade_json(copy, "--only", "01", "--only", "02", "--timeout", "12")
    took = time.monotonic() - started
    by_name = {e["name"]: e for e in result["exercises"]}
    assert by_name["01-response-bytes"]["score"] == 0
    assert by_name["01-response-bytes"]["status"] == "timeout"
    assert "time limit" in by_name["01-response-bytes"]["note"]
    assert by_name["02-legacy-threads"]["score"] == 15
    assert code == 1
    assert took < 12 + 40, f"the run took {took:.0f} s"


def test_output_flood_costs_only_that_exercise(release: Path, tmp_path: Path):
    copy = copy_of(release, tmp_path / "flooder")
    flood = "import sys\nwhile True:\n    sys.stdout.write('x' * 65536)\n"
    sabotage(copy, "01-response-bytes", flood)
    code, result = grade_json(copy, "--only", "01", "--timeout", "30")
    [exercise] = result["exercises"]
    assert exercise["score"] == 0 and code == 1
    messages = " ".join(t["message"] for t in exercise["tests"]) + exercise["note"]
    assert "File too large" in messages or exercise["status"] in ("crashed", "timeout")


def test_grading_leaves_no_temporary_directory(release: Path):
    import tempfile

    before = set(Path(tempfile.gettempdir()).glob("khttpd-grade-*"))
    grade_json(release, "--only", "02")
    after = set(Path(tempfile.gettempdir()).glob("khttpd-grade-*"))
    assert not after - before - {Path(tempfile.gettempdir()) / f"khttpd-grade-mpl-{os.getuid()}"}


@pytest.mark.parametrize(
    "args,message",
    [
        (["/nonexistent/dir"], "no such directory"),
        (["tests"], "not a working copy"),
        (["--class", "/nonexistent/dir", "--out", "x.csv"], "no such directory"),
        (["--class", "tests", "--out", "x.csv"], "no submissions"),
        (["--only", "99-nothing"], "no exercise matches"),
        (["--only", "02", "--memory", "4"], "--memory must be at least"),
        (["--only", "02", "--memory", "-1"], "--memory must be at least"),
        (["--only", "02", "--jobs", "0"], "--jobs must be at least 1"),
        (["--class", "tests", "--out", "x.csv", "--jobs", "-2"], "--jobs must be at least 1"),
    ],
)
def test_bad_input_exits_2_without_traceback(args: list[str], message: str):
    proc = run("-m", "exercises.grade", *args, timeout=120)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


# --- a class of five --------------------------------------------------------------------------

TRIVIAL_TESTS = "def test_everything_passes():\n    assert True\n"

EXPECTED = {
    # student: (scores by exercise, note fragments)
    "alice": ({name: POINTS[name] for name in EXERCISES}, []),
    "bob": ({}, []),
    "carol": ({"02-legacy-threads": 15}, []),
    "dave": ({"01-response-bytes": 15}, ["03-cm-rules: error"]),
    "erin": ({"03-cm-rules": 20}, ["04-convert-server: crashed"]),
    "empty": ({}, ["not a submission"]),
}


@pytest.fixture(scope="module")
def graded_class(release: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Five submissions: all solved, untouched, tests 'fixed', broken JSON, a crash."""
    root = tmp_path_factory.mktemp("class")
    subs = root / "submissions"
    subs.mkdir()
    alice = copy_of(release, subs / "alice")
    for name in EXERCISES:
        solve(alice, name)
    copy_of(release, subs / "bob")
    carol = copy_of(release, subs / "carol")
    solve(carol, "02-legacy-threads")
    (carol / "exercises" / "01-response-bytes" / "test_public.py").write_text(TRIVIAL_TESTS)
    (carol / "exercises" / "01-response-bytes" / "conftest.py").write_text(
        "import pytest\n\n@pytest.fixture\ndef student():\n    return None\n"
    )
    dave = copy_of(release, subs / "dave")
    solve(dave, "01-response-bytes")
    (dave / "exercises" / "03-cm-rules" / NOTEBOOK_NAME).write_text("{ this is not json")
    erin = copy_of(release, subs / "erin")
    solve(erin, "03-cm-rules")
    sabotage(erin, "04-convert-server", "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n")
    (subs / "stray-file.txt").write_text("not a submission directory")
    (subs / "empty").mkdir()
    out, feedback = root / "gradebook.csv", root / "feedback"
    started = time.monotonic()
    proc = run("-m", "exercises.grade", "--class", subs, "--out", out, "--feedback", feedback)
    took = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr
    with out.open() as stream:
        rows = list(csv.DictReader(stream))
    assert rows[0]["student"] == "Points Possible", "Canvas's convention: maxima under the header"
    assert rows[0]["total"] == "100" and rows[0]["01-response-bytes"] == "15"
    return {"rows": rows[1:], "feedback": feedback, "stderr": proc.stderr, "seconds": took}


def test_class_gradebook_matches_expectations(graded_class: dict[str, Any]):
    rows = {row["student"]: row for row in graded_class["rows"]}
    assert sorted(rows) == sorted(EXPECTED)
    for student, (scores, notes) in EXPECTED.items():
        row = rows[student]
        got = {name: int(row[name]) for name in EXERCISES}
        want = {name: scores.get(name, 0) for name in EXERCISES}
        assert got == want, (student, row)
        assert int(row["total"]) == sum(want.values())
        for fragment in notes:
            assert fragment in row["notes"], (student, row["notes"])
        if not notes:
            assert row["notes"] == "", (student, row["notes"])
    assert list(graded_class["rows"][0])[:1] == ["student"]
    assert list(graded_class["rows"][0])[-7:] == [
        "total", "late", "commit", "commit_time", "graded_at", "warnings", "notes"]
    print(f"class of 5 graded in {graded_class['seconds']:.1f} s")


def test_class_one_solved_exercise_scores_exactly_its_points(graded_class: dict[str, Any]):
    carol = next(r for r in graded_class["rows"] if r["student"] == "carol")
    assert int(carol["total"]) == POINTS["02-legacy-threads"]


def test_class_edited_tests_change_nothing(graded_class: dict[str, Any]):
    carol = next(r for r in graded_class["rows"] if r["student"] == "carol")
    assert int(carol["01-response-bytes"]) == 0


def test_class_feedback_names_failures_without_hidden_code(graded_class: dict[str, Any]):
    feedback: Path = graded_class["feedback"]
    assert sorted(p.stem for p in feedback.glob("*.md")) == sorted(EXPECTED)
    bob = (feedback / "bob.md").read_text()
    assert "test_200_close_is_byte_exact" in bob
    assert "NotImplementedError" in bob
    assert "hidden test" in bob
    hidden_source = (PACKAGE_DIR / "02-legacy-threads" / "test_hidden.py").read_text()
    for line in hidden_source.splitlines():
        if len(line.strip()) > 25 and not line.strip().startswith(('"', "assert", "f\"")):
            assert line.strip() not in bob, f"feedback quotes hidden test code: {line.strip()}"
    erin = (feedback / "erin.md").read_text()
    assert "crashed" in erin and "04-convert-server" in erin
    assert "while importing your solution cells" in erin, "where the process died"
    dave = (feedback / "dave.md").read_text()
    assert "cannot be read" in dave
    alice = (feedback / "alice.md").read_text()
    assert "**Total: 100/100**" in alice
    empty = (feedback / "empty.md").read_text()
    assert "not a submission" in empty
    assert "All tests passed" not in empty, "no test ran for a directory with no notebooks"
    assert empty.count("Not graded") == len(EXERCISES)


def test_class_run_shows_progress(graded_class: dict[str, Any]):
    stderr = graded_class["stderr"]
    assert "grading 5 submissions" in stderr
    assert "30/30" in stderr


# --- interrupting, hanging, refusing ------------------------------------------------------

HANG_FOREVER = (
    "import signal\n"
    "signal.signal(signal.SIGALRM, signal.SIG_IGN)  # defeats a per-test SIGALRM timeout\n"
    "while True:\n"
    "    pass\n"
)
"""Solution code that only the whole-run kill can stop."""


def submission(release: Path, dest: Path, *names: str) -> Path:
    """A light submission: only the released notebooks of ``names`` (the grader reads no more)."""
    for name in names:
        target = dest / "exercises" / name
        target.mkdir(parents=True)
        shutil.copyfile(release / "exercises" / name / NOTEBOOK_NAME, target / NOTEBOOK_NAME)
    return dest


def tagged(needle: str) -> list[int]:
    """Host pids whose environment holds ``needle`` (``NAME=value``)."""
    wanted = needle.encode()
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and wanted in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def student_pids(student: str) -> list[int]:
    """Processes started by a grading run for ``student`` (found by their environment)."""
    return tagged(f"KHTTPD_STUDENT_ID={student}")


def kill_students(*students: str) -> None:
    for student in students:
        for pid in student_pids(student):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


def test_ctrl_c_stops_a_class_run_promptly_and_keeps_finished_results(
    release: Path, tmp_path: Path
):
    subs = tmp_path / "subs"
    solve(submission(release, subs / "sigint-done", "02-legacy-threads"), "02-legacy-threads")
    hangers = ["sigint-hang-1", "sigint-hang-2"]
    for name in hangers:
        sabotage(submission(release, subs / name, "02-legacy-threads"), "02-legacy-threads",
                 HANG_FOREVER)
    out = tmp_path / "gradebook.csv"
    proc = subprocess.Popen(
        [sys.executable, "-m", "exercises.grade", "--class", str(subs), "--out", str(out),
         "--only", "02", "--jobs", "1", "--timeout", "120"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    stderr = b""
    try:
        assert proc.stderr is not None
        deadline = time.monotonic() + 120
        while b"1/3" not in stderr and time.monotonic() < deadline:
            chunk = proc.stderr.read1(4096)
            if not chunk:
                break
            stderr += chunk
        time.sleep(1.5)  # the first hanging submission is being graded now
        assert student_pids(hangers[0]), "its grading process should be running"
        proc.send_signal(signal.SIGINT)
        interrupted = time.monotonic()
        stderr += proc.communicate(timeout=30)[1]
        took = time.monotonic() - interrupted
    finally:
        proc.kill()
        kill_students(*hangers)
    text = stderr.decode()
    assert proc.returncode == 130, text
    assert took < 10, f"exiting took {took:.0f} s after Ctrl-C"
    assert "interrupted: 1 of 3 exercises graded" in text
    assert "Traceback" not in text
    assert not out.exists(), "a partial run must not pass for a complete gradebook"
    with (tmp_path / "gradebook.incomplete.csv").open() as stream:
        rows = {row["student"]: row for row in csv.DictReader(stream)}
    assert rows["sigint-done"]["02-legacy-threads"] == "15"
    assert rows["sigint-hang-1"]["02-legacy-threads"] == ""
    assert "incomplete" in rows["sigint-hang-2"]["notes"]
    assert not any(student_pids(name) for name in hangers), "grading children outlived the run"


def test_symlinked_notebooks_and_submissions_are_not_graded(release: Path, tmp_path: Path):
    name = "02-legacy-threads"
    solution = PACKAGE_DIR / name / NOTEBOOK_NAME
    subs = tmp_path / "subs"
    solve(submission(release, subs / "honest", name), name)
    linked_nb = submission(release, subs / "linked-notebook", name) / "exercises" / name
    (linked_nb / NOTEBOOK_NAME).unlink()
    (linked_nb / NOTEBOOK_NAME).symlink_to(solution)
    (subs / "linked-dir" / "exercises").mkdir(parents=True)
    (subs / "linked-dir" / "exercises" / name).symlink_to(PACKAGE_DIR / name)
    (subs / "linked-submission").symlink_to(subs / "honest")
    out, feedback = tmp_path / "gradebook.csv", tmp_path / "feedback"
    proc = run("-m", "exercises.grade", "--class", subs, "--out", out, "--feedback", feedback,
               "--only", "02", timeout=300)
    assert proc.returncode == 0, proc.stderr
    with out.open() as stream:
        rows = {row["student"]: row for row in csv.DictReader(stream)}
    assert rows["honest"]["total"] == "15"
    for student in ("linked-notebook", "linked-dir", "linked-submission"):
        assert rows[student]["total"] == "0", rows[student]
    feedback_text = (feedback / "linked-notebook.md").read_text()
    assert f"symlinked notebook exercises/{name}/{NOTEBOOK_NAME}" in feedback_text
    assert str(PACKAGE_DIR) not in feedback_text, "no instructor path in student feedback"
    assert "symlinked notebook" in (feedback / "linked-dir.md").read_text()
    assert "symbolic link" in rows["linked-submission"]["notes"]
    assert "skipping linked-submission" in proc.stderr


@pytest.mark.parametrize(
    "case,message",
    [
        ("out-is-a-directory", "--out"),
        ("feedback-is-a-file", "--feedback"),
        ("out-under-a-file", "not a directory"),
        ("classroom-output-in-missing-dir", "no such directory"),
    ],
)
def test_unwritable_outputs_are_refused_before_grading(
    release: Path, tmp_path: Path, case: str, message: str
):
    subs = tmp_path / "subs"
    submission(release, subs / "someone", "02-legacy-threads")
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    args: list[str | Path] = {
        "out-is-a-directory": ["--class", subs, "--out", tmp_path],
        "feedback-is-a-file": ["--class", subs, "--out", tmp_path / "g.csv", "--feedback", a_file],
        "out-under-a-file": ["--class", subs, "--out", a_file / "g.csv"],
        "classroom-output-in-missing-dir": [
            subs / "someone", "--classroom-output", tmp_path / "missing" / "out"
        ],
    }[case]
    started = time.monotonic()
    proc = run("-m", "exercises.grade", *args, "--only", "02", timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: ") and message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "grading" not in proc.stderr, "refused only after grading"
    assert time.monotonic() - started < 20


def test_an_os_error_is_one_line_and_exit_2(monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]):
    from exercises import grade

    def unreadable(*_args: object) -> None:
        raise PermissionError(13, "Permission denied", "exercises/01-response-bytes")

    monkeypatch.setattr(grade, "discover", unreadable)
    assert grade.main(["--only", "02"]) == 2
    err = capsys.readouterr().err
    assert err == "error: [Errno 13] Permission denied: 'exercises/01-response-bytes'\n"


@pytest.mark.parametrize(
    "target,message",
    [
        ("kmod/release", "inside the source tree"),
        ("exercises/release", "inside the source tree"),
        (".", "over the source tree"),
        ("..", "over the source tree"),
        ("pyproject.toml", "inside the source tree"),
        ("/proc/khttpd-release", "cannot write the release"),
    ],
)
def test_release_refuses_bad_targets_in_one_line(target: str, message: str):
    before = sorted(p.name for p in (ROOT / "kmod").iterdir())
    proc = run("-m", "exercises.release", target, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: ") and message in proc.stderr, proc.stderr
    assert len(proc.stderr.splitlines()) == 1, proc.stderr
    assert sorted(p.name for p in (ROOT / "kmod").iterdir()) == before


def test_release_refuses_a_file_target(tmp_path: Path):
    target = tmp_path / "a-file"
    target.write_text("keep me")
    proc = run("-m", "exercises.release", target, "--force", timeout=60)
    assert proc.returncode == 2 and "not a directory" in proc.stderr, proc.stderr
    assert target.read_text() == "keep me"


def test_release_ships_no_ignored_build_or_cache_files(release: Path):
    """Files git ignores (VM images in kmod/.cache, vendored JS) must not reach students."""
    listed = subprocess.run(
        ["git", "ls-files", "--others", "--ignored", "--exclude-standard", "--directory",
         "khttpd_py", "kmod", "book"],
        cwd=ROOT, capture_output=True, text=True,
    )
    if listed.returncode != 0:
        pytest.skip("not a git checkout")
    shipped = [p for p in listed.stdout.split() if (release / p.rstrip("/")).exists()]
    assert shipped == []


# --- hangs cost only what hung ---------------------------------------------------------------

HANG_IN_FUNCTION = "    while True:\n        pass\n"


def edit_solution(copy: Path, name: str, old: str, new: str) -> None:
    """In ``copy``, the instructor's notebook of ``name`` with ``old`` replaced by ``new``."""
    nb = read(PACKAGE_DIR / name / NOTEBOOK_NAME)
    hits = 0
    for cell in nb["cells"]:
        source = "".join(cell["source"])
        if old in source:
            cell["source"] = source.replace(old, new)
            hits += 1
    assert hits, f"{old!r} not in {name}'s notebook"
    path = copy / "exercises" / name / NOTEBOOK_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    write(nb, path)


@pytest.fixture(scope="module")
def hung_class(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Exercise 02 (15 pt: 9 public, 4 hidden, 1 nbval) hung in four places, 8 s limit."""
    subs = tmp_path_factory.mktemp("hung") / "subs"
    name = "02-legacy-threads"
    kworkers = "    return 2 * cpus + unbound_pools + mem_reclaim_wqs\n"
    # cmwq_boot_kworkers() is used by one public test (1 pt) and the notebook only.
    edit_solution(subs / "hung-test", name, kworkers, HANG_IN_FUNCTION)
    edit_solution(subs / "hung-cell", name, "from khttpd_py.sim import PidBudget\n",
                  "from khttpd_py.sim import PidBudget\nwhile True:\n    pass\n")
    unstoppable = HANG_FOREVER.replace("\n", "\n    ").rstrip() + "\n"
    edit_solution(subs / "hung-run", name, kworkers, "    " + unstoppable)
    edit_solution(subs / "hung-import", name, "PID_MAX_DEFAULT = 32768\n",
                  "PID_MAX_DEFAULT = 32768\n" + HANG_FOREVER)
    started = time.monotonic()
    proc = run("-m", "exercises.grade", "--class", subs, "--out", subs.parent / "g.csv",
               "--only", "02", "--timeout", "8", "--json", timeout=120)
    assert proc.returncode == 0, proc.stderr
    results = {r["student"]: r["exercises"][0] for r in json.loads(proc.stdout)}
    return {"results": results, "seconds": time.monotonic() - started}


def test_a_hanging_test_costs_only_its_points(hung_class: dict[str, Any]):
    ex = hung_class["results"]["hung-test"]
    assert ex["score"] == 15 - 1 - 1, "all but the hung test (and the notebook's point)"
    assert ex["status"] == "timeout"
    assert ex["note"] == "stopped after the 2 s time limit per test (in test_cmwq_boot_kworkers)"
    [hung] = [t for t in ex["tests"] if t["outcome"] != "passed" and t["kind"] != "nbval"]
    assert hung["name"] == "test_cmwq_boot_kworkers"
    assert "time limit" in hung["message"] and "solution cell" in hung["message"]
    assert hung_class["seconds"] < 60


def test_a_hanging_notebook_cell_costs_only_the_notebook_points(hung_class: dict[str, Any]):
    ex = hung_class["results"]["hung-cell"]
    assert ex["score"] == 14 and ex["status"] == "timeout"
    assert ex["note"] == (
        "stopped after the 2 s time limit per notebook cell "
        "(in the notebook cell that begins 'from khttpd_py.sim import PidBudget')"
    ), "the cell named by its first line, not nbval's count of code cells from 0"


def test_a_run_killed_at_its_limit_keeps_the_finished_tests(hung_class: dict[str, Any]):
    ex = hung_class["results"]["hung-run"]
    assert ex["status"] == "timeout"
    assert ex["note"].startswith("stopped after the 8 s time limit (in test_cmwq_boot_kworkers)")
    assert ex["score"] == 2 + 1 + 3 + 3, "the public tests that ran before the hang"


def test_a_hang_while_importing_says_so(hung_class: dict[str, Any]):
    ex = hung_class["results"]["hung-import"]
    assert ex["score"] == 0 and ex["status"] == "timeout"
    assert "(in test_legacy_threads, while importing your solution cells)" in ex["note"]


def test_feedback_files_of_clashing_ids_do_not_overwrite_each_other(
    release: Path, tmp_path: Path
):
    subs = tmp_path / "subs"
    for student in ("a b", "a_b", "A_B"):
        submission(release, subs / student, "02-legacy-threads")
    feedback = tmp_path / "feedback"
    proc = run("-m", "exercises.grade", "--class", subs, "--out", tmp_path / "g.csv",
               "--feedback", feedback, "--only", "02", timeout=120)
    assert proc.returncode == 0, proc.stderr
    files = sorted(feedback.iterdir())
    assert len(files) == 3, [f.name for f in files]
    headings = sorted(f.read_text().splitlines()[0] for f in files)
    assert headings == ["# Feedback for A_B", "# Feedback for a b", "# Feedback for a_b"]
    assert "and 3 files in" in proc.stderr
    assert "clashes" in proc.stderr


def test_a_json_notebook_that_is_not_nbformat_4_gets_a_one_line_note(tmp_path: Path):
    copy = tmp_path / "old-format"
    (copy / "exercises" / "02-legacy-threads").mkdir(parents=True)
    (copy / "exercises" / "02-legacy-threads" / NOTEBOOK_NAME).write_text(
        json.dumps({"nbformat": 3, "nbformat_minor": 0, "metadata": {}, "cells": []})
    )
    nb = read(PACKAGE_DIR / "01-response-bytes" / NOTEBOOK_NAME)
    nb["cells"][1]["source"] = 123
    (copy / "exercises" / "01-response-bytes").mkdir(parents=True)
    (copy / "exercises" / "01-response-bytes" / NOTEBOOK_NAME).write_text(json.dumps(nb))
    _code, result = grade_json(copy, "--only", "01", "--only", "02", timeout=120)
    for ex in result["exercises"]:
        assert ex["score"] == 0 and ex["status"] == "error"
        assert ex["note"].startswith(f"{NOTEBOOK_NAME} cannot be read: not an nbformat-4 notebook")
        assert len(ex["note"].splitlines()) == 1, ex["note"]
        assert str(tmp_path) not in ex["note"], "the grader's paths are not for students"
    by_name = {ex["name"]: ex["note"] for ex in result["exercises"]}
    assert "nbformat is 3" in by_name["02-legacy-threads"]
    assert "cell 2 of" in by_name["01-response-bytes"]
