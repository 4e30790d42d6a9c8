"""The class grader's bubblewrap sandbox: what a submission can see, write, start and leak.

Direct checks run small scripts in a sandbox (``sandbox.Job``); the end-to-end
check grades a class of six light submissions (solved, partial, hanging,
crashing, test-editing, hostile) over exercises 01 and 04 (04 needs loopback
sockets) with ``python -m exercises.grade --class``, sandboxed by default.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from test_exercises import tagged

from exercises import redact, sandbox
from exercises.catalog import PACKAGE_DIR, discover
from exercises.notebook import NOTEBOOK_NAME, read, student_version, write
from exercises.runner import TOKEN_ENV, grade_exercise

ROOT = PACKAGE_DIR.parent
EXERCISES = {ex.name: ex for ex in discover(PACKAGE_DIR)}
ONE, FOUR = "01-response-bytes", "04-convert-server"

needs_sandbox = pytest.mark.skipif(bool(sandbox.available()),
                                   reason=sandbox.available() or "sandboxed grading works")


def in_sandbox(code: str, timeout: float = 60) -> tuple[int, str, str]:
    """Run ``code`` as a script in a sandbox: exit status, output, the job's token."""
    token = uuid.uuid4().hex
    job = sandbox.Job(folder="probe", files={"probe.py": code.encode()},
                      command=["script", "probe.py"], env={TOKEN_ENV: token})
    with job.start(stdout=subprocess.PIPE, report=None) as proc:
        out, _ = proc.communicate(timeout=timeout)
    return proc.returncode, out.decode("utf-8", "replace"), token


def process_count() -> int:
    return sum(1 for entry in Path("/proc").iterdir() if entry.name.isdigit())


# --- direct checks ----------------------------------------------------------------------


@pytest.mark.slow
@needs_sandbox
def test_the_sandbox_sees_no_private_path(tmp_path: Path):
    other = tmp_path / "submissions" / "someone-else" / "exercises"
    other.mkdir(parents=True)
    (other / "secret.txt").write_text("another student's work")
    home_entries = [str(p) for p in Path.home().iterdir()] if Path.home().is_dir() else []
    python_dirs = [str(p) for p in sandbox._python_paths()]
    private = [
        str(PACKAGE_DIR / ONE / "test_hidden.py"), str(PACKAGE_DIR / ONE),
        str(ROOT / "exercises"), str(ROOT / "tests"), str(ROOT / "pyproject.toml"),
        str(other), str(other / "secret.txt"),
        *(p for p in home_entries if not any(d.startswith(p) for d in python_dirs)),
    ]
    code, out, _ = in_sandbox(
        "import json, os\n"
        f"print(json.dumps({{p: os.path.exists(p) for p in {private!r}}}))\n"
    )
    assert code == 0, out
    seen = json.loads(out.splitlines()[-1])
    assert not any(seen.values()), [p for p, there in seen.items() if there]


@pytest.mark.slow
@needs_sandbox
def test_writes_outside_home_and_tmp_fail():
    targets = ["/x", "/usr/x", "/etc/x", f"{sandbox.LIB}/x", f"{sandbox.LIB}/exercises/plugin.py",
               f"{sys.prefix}/x", "/home/x", str(ROOT / "x")]
    code, out, _ = in_sandbox(
        "import json, os\n"
        "done = {}\n"
        f"for p in {targets!r} + [os.path.expanduser('~/x'), '/tmp/x']:\n"
        "    try:\n"
        "        with open(p, 'a') as f: f.write('x')\n"
        "        done[p] = True\n"
        "    except OSError:\n"
        "        done[p] = False\n"
        "print(json.dumps(done))\n"
    )
    assert code == 0, out
    done = json.loads(out.splitlines()[-1])
    assert done.pop(f"{sandbox.HOME}/x") and done.pop("/tmp/x")
    assert not any(done.values()), [p for p, ok in done.items() if ok]
    assert not (ROOT / "x").exists()


@pytest.mark.slow
@needs_sandbox
def test_only_loopback_and_it_works():
    code, out, _ = in_sandbox(
        "import socket, errno\n"
        "print([name for _, name in socket.if_nameindex()])\n"
        "server = socket.create_server(('127.0.0.1', 0))\n"
        "client = socket.create_connection(server.getsockname(), timeout=5)\n"
        "conn, _ = server.accept(); client.sendall(b'ping'); print(conn.recv(4))\n"
        "try:\n"
        "    socket.create_connection(('192.0.2.1', 80), timeout=5)\n"  # TEST-NET-1
        "    print('outside: reached')\n"
        "except OSError as exc:\n"
        "    print('outside:', errno.errorcode.get(exc.errno, exc))\n"
    )
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0] == "['lo']" and lines[1] == "b'ping'"
    assert lines[2].startswith("outside: ") and "reached" not in lines[2], lines[2]


@pytest.mark.slow
@needs_sandbox
def test_detached_processes_die_with_the_job():
    before = process_count()
    code, out, token = in_sandbox(
        "import os, time\n"
        "started = 0\n"
        "for _ in range(150):\n"
        "    pid = os.fork()\n"
        "    if pid == 0:\n"
        "        os.setsid()\n"
        "        if os.fork() == 0:\n"
        "            time.sleep(600)\n"
        "        os._exit(0)\n"
        "    os.waitpid(pid, 0)\n"
        "    started += 1\n"
        "print(started, flush=True)\n"
    )
    assert code == 0, out
    assert out.split()[-1] == "150"
    time.sleep(0.5)
    assert tagged(f"{TOKEN_ENV}={token}") == []
    assert process_count() < before + 10


@pytest.mark.slow
@needs_sandbox
def test_a_fork_bomb_hits_the_process_limit():
    started = time.monotonic()
    code, out, token = in_sandbox(
        "import os, time\n"
        "children = 0\n"
        "try:\n"
        "    while children < 5000:\n"
        "        if os.fork() == 0:\n"
        "            time.sleep(60)\n"
        "            os._exit(0)\n"
        "        children += 1\n"
        "except OSError as exc:\n"
        "    print('refused after', children, type(exc).__name__, flush=True)\n"
    )
    assert code == 0, out
    words = out.split()
    assert words[0] == "refused", out
    assert int(words[2]) < sandbox.MAX_TASKS
    assert tagged(f"{TOKEN_ENV}={token}") == []
    assert time.monotonic() - started < 30


@pytest.mark.slow
@needs_sandbox
@pytest.mark.skipif(os.geteuid() != 0, reason="the uid drop happens when the grader is root")
def test_the_job_has_no_capabilities_and_another_uid():
    code, out, _ = in_sandbox(
        "import os\n"
        "status = dict(l.split(':\\t', 1) for l in open('/proc/self/status').read().splitlines()"
        " if ':\\t' in l)\n"
        "print(os.getuid(), os.geteuid(), os.getgid(), os.getgroups(), status['CapEff'].strip(),"
        " status['CapPrm'].strip(), status['NoNewPrivs'].strip())\n"
    )
    assert code == 0, out
    uid, euid, gid, groups, cap_eff, cap_prm, nnp = out.split(maxsplit=6)[:7]
    assert int(uid) >= sandbox.UID_BASE and uid == euid == gid
    assert cap_eff == cap_prm == "0000000000000000"
    assert groups == "[]" and nnp.strip() == "1"


# --- hidden tests are out of reach ------------------------------------------------------

PROBE = (
    "import json as _json, os as _os\n"
    "def _probe():\n"
    "    paths = ['test_hidden.py', _os.path.abspath('test_hidden.py'),\n"
    f"             {str(PACKAGE_DIR / ONE / 'test_hidden.py')!r}]\n"
    "    return {'exists': [_os.path.exists(p) for p in paths], 'cwd': sorted(_os.listdir('.'))}\n"
)


def with_cell(name: str, code: str, solution: bool, at_end: bool = True) -> dict[str, Any]:
    """The instructor's notebook of ``name`` with a code cell added (a solution cell or not)."""
    nb = read(PACKAGE_DIR / name / NOTEBOOK_NAME)
    cell = {"cell_type": "code", "execution_count": None, "id": uuid.uuid4().hex[:8],
            "metadata": {"tags": ["solution"]} if solution else {}, "outputs": [],
            "source": code}
    last = max(i for i, c in enumerate(nb["cells"])
               if "solution" in c.get("metadata", {}).get("tags", []))
    nb["cells"].insert(len(nb["cells"]) if at_end else last + 1, cell)
    return nb


def probe_result(text: str) -> dict[str, Any]:
    line = [line for line in text.splitlines() if "PROBE {" in line][-1]
    return json.loads(line[line.index("PROBE {") + 6:].rstrip("'\""))


@pytest.mark.slow
@needs_sandbox
def test_hidden_tests_are_not_on_disk_for_solution_code_nor_cells(tmp_path: Path):
    ex = EXERCISES[ONE]
    solution = tmp_path / "solution" / NOTEBOOK_NAME
    solution.parent.mkdir()
    write(with_cell(ONE, PROBE + "PROBED = _probe()\n"
                    "def build_response(status, body, keep_alive):\n"
                    "    raise RuntimeError('PROBE ' + _json.dumps(PROBED))\n",
                    solution=True, at_end=False), solution)
    cell = tmp_path / "cell" / NOTEBOOK_NAME
    cell.parent.mkdir()
    write(with_cell(ONE, PROBE + "raise RuntimeError('PROBE ' + _json.dumps(_probe()))\n",
                    solution=False), cell)
    starter = tmp_path / "starter" / NOTEBOOK_NAME
    starter.parent.mkdir()
    write(student_version(read(ex.path / NOTEBOOK_NAME)), starter)

    by_solution = grade_exercise(ex, solution, "probe-solution", sandbox=True)
    failed = [t for t in by_solution.tests if t.name == "test_200_close_is_byte_exact"]
    seen = probe_result(failed[0].message)
    assert seen["exists"] == [False, False, False] and "test_hidden.py" not in seen["cwd"]
    assert "test_public.py" in seen["cwd"], "the probe ran in the exercise's folder"

    by_cell = grade_exercise(ex, cell, "probe-cell", sandbox=True)
    [failed_cell] = [t for t in by_cell.tests if t.kind == "nbval" and not t.passed]
    seen = probe_result(failed_cell.message)
    assert seen["exists"] == [False, False, False] and "test_hidden.py" not in seen["cwd"]
    assert by_cell.score == ex.total - ex.nbval, "every test passed, the notebook did not"

    # pytest still reports failures of hidden tests whose file is gone.
    unsolved = grade_exercise(ex, starter, "probe-starter", sandbox=True)
    hidden = [t for t in unsolved.tests if t.kind == "hidden"]
    assert hidden and all(t.outcome == "failed" for t in hidden)
    assert all("NotImplementedError" in t.message for t in hidden), hidden
    assert unsolved.score == 0 and unsolved.status == "ok"


# --- a class end to end -----------------------------------------------------------------

HANG_FOREVER = (
    "import signal\n"
    "signal.signal(signal.SIGALRM, signal.SIG_IGN)\n"
    "while True:\n"
    "    pass\n"
)

HOSTILE = f"""
import os, sys, time
_INSTRUCTOR = {str(PACKAGE_DIR)!r}
_HIDDEN = [_INSTRUCTOR + '/01-response-bytes/test_hidden.py', 'test_hidden.py',
           _INSTRUCTOR + '/04-convert-server/test_hidden.py']
_STOLEN = []
for _path in _HIDDEN:
    try:
        with open(_path) as _f:
            _STOLEN.append(_f.read())
    except OSError as _exc:
        _STOLEN.append(type(_exc).__name__)
for _path in [_INSTRUCTOR + '/pwned.py', _INSTRUCTOR + '/01-response-bytes/test_extra.py',
              {str(ROOT / 'pwned.txt')!r}, '/tmp/khttpd-hostile-pwned', '../../pwned.txt',
              os.path.expanduser('~/../pwned.txt')]:
    try:
        with open(_path, 'w') as _f:
            _f.write('pwned')
    except OSError:
        pass
for _ in range(120):
    try:
        _pid = os.fork()
    except OSError:
        break
    if _pid == 0:
        try:
            os.setsid()
            if os.fork() == 0:
                time.sleep(600)
        finally:
            os._exit(0)
    os.waitpid(_pid, 0)


def _constants(code, seen):
    for const in code.co_consts:
        if isinstance(const, (str, bytes)):
            seen.append(repr(const) if isinstance(const, bytes) else const)
        elif hasattr(const, 'co_consts'):
            _constants(const, seen)
    return seen


def _leak():
    found = []
    for module in list(sys.modules.values()):
        if str(getattr(module, '__file__', '')).endswith('test_hidden.py'):
            found.append(module.__doc__ or '')
            for value in vars(module).values():
                if hasattr(value, '__code__'):
                    _constants(value.__code__, found)
    try:
        with open('test_hidden.py') as f:
            found.append(f.read())
    except OSError:
        pass
    return '\\n'.join(found + _STOLEN)


_keep_alive = keep_alive


def keep_alive(version, connection):
    if (version, connection) == ('HTTP/1.0', 'close'):
        raise AssertionError(_leak())
    return _keep_alive(version, connection)
"""

CLASS_EXPECTED = {
    "solved": {ONE: 15, FOUR: 20},
    "partial": {ONE: 15, FOUR: 0},
    "hanging": {ONE: 0, FOUR: 20},
    "crashing": {ONE: 15, FOUR: 0},
    "editing": {ONE: 0, FOUR: 0},
    # test_keep_alive_rules (1 pt) fails with the leak, so the notebook's point is lost too.
    "hostile": {ONE: 13, FOUR: 0},
}


def light(subs: Path, student: str, notebooks: dict[str, dict[str, Any]]) -> Path:
    """A submission holding only the notebooks the grader reads."""
    for name, nb in notebooks.items():
        (subs / student / "exercises" / name).mkdir(parents=True, exist_ok=True)
        write(nb, subs / student / "exercises" / name / NOTEBOOK_NAME)
    return subs / student


def solved(name: str) -> dict[str, Any]:
    return read(PACKAGE_DIR / name / NOTEBOOK_NAME)


def starter(name: str) -> dict[str, Any]:
    return student_version(read(PACKAGE_DIR / name / NOTEBOOK_NAME))


def replaced_first_solution(name: str, code: str) -> dict[str, Any]:
    nb = read(PACKAGE_DIR / name / NOTEBOOK_NAME)
    cell = next(c for c in nb["cells"] if "solution" in c.get("metadata", {}).get("tags", []))
    cell["source"] = code
    return nb


def tree_hash(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if "__pycache__" in path.parts or not path.is_file():
            continue
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def secret_lines(name: str) -> list[str]:
    """Lines of ``name``'s hidden tests, stripped, over 20 characters, in no file students get."""
    ex = EXERCISES[name]
    public: set[str] = set()
    for path in ex.path.iterdir():
        if path.is_file() and not path.name.startswith("test_hidden"):
            text = (redact.released_notebook_text(path) if path.name == NOTEBOOK_NAME
                    else path.read_text(errors="replace"))
            public.update(line.strip() for line in text.splitlines())
    lines = []
    for path in ex.path.glob("test_hidden*.py"):
        lines += [s for line in path.read_text().splitlines()
                  if len(s := line.strip()) > 20 and s not in public]
    return lines


@pytest.fixture(scope="module")
def sandboxed_class(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("sandboxed-class")
    subs = root / "subs"
    light(subs, "solved", {ONE: solved(ONE), FOUR: solved(FOUR)})
    light(subs, "partial", {ONE: solved(ONE), FOUR: starter(FOUR)})
    light(subs, "hanging", {ONE: replaced_first_solution(ONE, HANG_FOREVER), FOUR: solved(FOUR)})
    light(subs, "crashing", {ONE: solved(ONE), FOUR: replaced_first_solution(
        FOUR, "import ctypes\nctypes.string_at(0)\n")})
    editing = light(subs, "editing", {ONE: starter(ONE), FOUR: starter(FOUR)})
    (editing / "exercises" / ONE / "test_public.py").write_text(
        "def test_everything_passes():\n    assert True\n")
    (editing / "exercises" / ONE / "conftest.py").write_text(
        "import pytest\n\n@pytest.fixture\ndef student():\n    return None\n")
    light(subs, "hostile", {ONE: with_cell(ONE, HOSTILE, solution=True, at_end=False),
                            FOUR: starter(FOUR)})
    Path("/tmp/khttpd-hostile-pwned").unlink(missing_ok=True)  # left by a run without sandbox
    before = {"instructor": tree_hash(PACKAGE_DIR), "subs": tree_hash(subs),
              "root": sorted(p.name for p in ROOT.iterdir()), "processes": process_count()}
    out, feedback = root / "gradebook.csv", root / "feedback"
    env = dict(os.environ)
    env.pop("KHTTPD_STUDENT_ID", None)
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "exercises.grade", "--class", str(subs), "--out", str(out),
         "--feedback", str(feedback), "--only", ONE, "--only", FOUR, "--timeout", "15",
         "--json"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    took = time.monotonic() - started
    time.sleep(0.5)
    after = {"instructor": tree_hash(PACKAGE_DIR), "subs": tree_hash(subs),
             "root": sorted(p.name for p in ROOT.iterdir()), "processes": process_count()}
    print(f"sandboxed class of 6 x 2 exercises graded in {took:.1f} s")
    assert proc.returncode == 0, proc.stderr
    with out.open() as stream:
        rows = {row["student"]: row for row in csv.DictReader(stream)
                if row["student"] != "Points Possible"}
    return {"rows": rows, "json": proc.stdout, "feedback": feedback, "before": before,
            "after": after, "seconds": took}


@pytest.mark.slow
@needs_sandbox
def test_class_scores_are_exact(sandboxed_class: dict[str, Any]):
    rows = sandboxed_class["rows"]
    got = {student: {ONE: int(row[ONE]), FOUR: int(row[FOUR])} for student, row in rows.items()}
    assert got == CLASS_EXPECTED
    results = {r["student"]: {e["name"]: e for e in r["exercises"]}
               for r in json.loads(sandboxed_class["json"])}
    assert results["hanging"][ONE]["status"] == "timeout"
    crash = results["crashing"][FOUR]
    assert crash["status"] == "crashed" and "signal SIGSEGV" in crash["note"], crash["note"]
    assert "while importing your solution cells" in crash["note"]
    assert sandboxed_class["seconds"] < 90


@pytest.mark.slow
@needs_sandbox
def test_class_leaves_every_tree_as_it_was(sandboxed_class: dict[str, Any]):
    before, after = sandboxed_class["before"], sandboxed_class["after"]
    assert after["instructor"] == before["instructor"], "the instructor's exercises/ changed"
    assert after["subs"] == before["subs"], "a submission's copy was written to"
    assert after["root"] == before["root"], "a file appeared in the instructor's tree"
    assert not Path("/tmp/khttpd-hostile-pwned").exists()


@pytest.mark.slow
@needs_sandbox
def test_class_leaves_no_process(sandboxed_class: dict[str, Any]):
    for student in CLASS_EXPECTED:
        assert tagged(f"KHTTPD_STUDENT_ID={student}") == [], student
    assert sandboxed_class["after"]["processes"] < sandboxed_class["before"]["processes"] + 10


@pytest.mark.slow
@needs_sandbox
def test_class_feedback_quotes_no_hidden_line(sandboxed_class: dict[str, Any]):
    secrets = secret_lines(ONE) + secret_lines(FOUR)
    assert len(secrets) > 10
    texts = {path.name: path.read_text() for path in sandboxed_class["feedback"].glob("*.md")}
    texts["json"] = sandboxed_class["json"]
    texts["json-decoded"] = "\n".join(
        t["message"] + "\n" + t["name"] for r in json.loads(sandboxed_class["json"])
        for e in r["exercises"] for t in e["tests"])
    for where, text in texts.items():
        for line in secrets:
            assert line not in text, f"{where} quotes a hidden test: {line}"
    hostile = texts["hostile.md"]
    assert "test_keep_alive_rules" in hostile and redact.WITHHELD in hostile
    literals = redact.for_exercise(EXERCISES[ONE]).literals
    squeezed = "".join(hostile.split())
    assert not [lit for lit in literals if lit in squeezed], "a hidden test's literal leaked"


# --- without the sandbox ----------------------------------------------------------------


@pytest.mark.slow
def test_no_sandbox_still_grades(tmp_path: Path):
    copy = light(tmp_path, "nosandbox", {ONE: solved(ONE)})
    proc = subprocess.run(
        [sys.executable, "-m", "exercises.grade", str(copy), "--only", ONE, "--no-sandbox",
         "--json"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["score"] == 15


def test_class_mode_without_bwrap_is_one_line_exit_2(tmp_path: Path):
    light(tmp_path / "subs", "someone", {ONE: solved(ONE)})
    python_dir = str(Path(sys.executable).parent)
    env = dict(os.environ, PATH=python_dir)
    assert shutil.which("bwrap", path=python_dir) is None
    proc = subprocess.run(
        [sys.executable, "-m", "exercises.grade", "--class", str(tmp_path / "subs"), "--out",
         str(tmp_path / "g.csv"), "--only", ONE], cwd=ROOT, env=env, capture_output=True,
        text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: class grading needs the bubblewrap sandbox")
    assert "apt-get install bubblewrap" in proc.stderr and "--no-sandbox" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not (tmp_path / "g.csv").exists()


@pytest.mark.slow
@needs_sandbox
def test_an_import_error_names_the_module(tmp_path: Path):
    path = tmp_path / NOTEBOOK_NAME
    write(replaced_first_solution(ONE, "import numpy_is_not_here_xyz\n"), path)
    result = grade_exercise(EXERCISES[ONE], path, "importer", sandbox=True)
    assert result.score == 0
    assert result.note == ("your solution cells import 'numpy_is_not_here_xyz', which is not "
                           "installed where grading runs (ModuleNotFoundError)")
    assert all(t.message.startswith("your solution cells import") for t in result.tests
               if t.kind != "nbval")


def test_redaction_withholds_hidden_lines_and_literals_only():
    hidden = ('def test_secret(student):\n'
              '    assert student.f(3) == 41, "the answer for three is forty-one, always"\n'
              '    shared = student.helper_shared_with_public_tests(1)\n'
              '    data = b"a hidden\\r\\nbyte string literal here"\n')
    public = "    shared = student.helper_shared_with_public_tests(1)\n"
    redactor = redact.Redactor([hidden], [public])
    leak = 'assert   student.f(3)==41,  "the answer for three is forty-one, always"  # respaced'
    assert redactor.text(leak) == redact.WITHHELD
    assert redactor.text("the answer for three is forty-one, always") == redact.WITHHELD
    assert redactor.text("b'a hidden\\r\\nbyte string literal here'") == redact.WITHHELD
    assert redactor.text("shared = student.helper_shared_with_public_tests(1)") != redact.WITHHELD
    assert redactor.text("assert 3 == 41") == "assert 3 == 41"
    own = "AssertionError: the answer for three is forty-one, always\nassert 3 == 41"
    assert redactor.text(own, own_first_line=True) == own, "a hidden test's own message"
    capped = redactor.text("x" * 5000)
    assert len(capped) < redact.MAX_MESSAGE + 20 and capped.endswith("[... cut]")
    assert redactor.text("line\n" * 100).count("\n") == redact.MAX_LINES
