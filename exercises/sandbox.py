"""The bubblewrap sandbox every grading process of a class run lives in.

What it gives, per (submission, exercise) job:

* **Its own namespaces** (``bwrap``): a PID namespace, so when the job's
  first process ends, or the grader kills bwrap, the kernel kills every
  process the student started, detached or not; a network namespace with
  only the loopback interface (exercise 04 serves on 127.0.0.1); its own
  IPC, UTS and cgroup namespaces; a new session (no TIOCSTI into the
  grader's terminal); ``--die-with-parent``.
* **Its own file system view**: ``/usr`` and ``/etc`` read-only (``/bin``,
  ``/lib``... as on the host), the Python installation read-only at its own
  paths (the base prefix, the venv, the real directory of the interpreter:
  the venv lives inside the instructor's tree, and only the venv itself is
  bound), the grader's public code (``exercises/*.py`` and ``khttpd_py``,
  staged once per grading run) read-only at ``/grader/lib``, and a private
  size-capped tmpfs for ``HOME`` (``/home/student``), ``/tmp`` and
  ``/dev/shm``.  Nothing else: not the instructor's tree (its exercise
  folders, hidden tests, solution notebooks), not other submissions, not
  the gradebook, not ``/root``.  The root of the tree is read-only.
* **Files through a pipe**: the student's notebook and the exercise folder
  (public tests, helpers, data, hidden tests) reach the sandbox as one JSON
  bundle on an inherited pipe, which the launcher below reads to its end
  (a drained pipe holds nothing more) and writes out under
  ``HOME/<exercise>/``.  The plugin deletes the hidden test files right
  after collection (``--grade-forget``), before any student code runs: the
  solution cells are imported in the first test's setup and nbval's kernel
  starts after collection too.  The report leaves through an inherited file
  descriptor (``--grade-report-fd``); stdout and stderr go to the log.
* **An unprivileged user**: when the grader runs as root, bwrap runs
  privileged (no user namespace: it can bind the interpreter under a
  ``0700`` ``/root``), keeps only CAP_SETUID, CAP_SETGID and CAP_CHOWN for
  the launcher, which hands ``HOME`` and ``/tmp`` to a uid of its own
  (``UID_BASE`` + the grader's pid and job slot: distinct per concurrent
  job), clears its groups and switches to it before pytest starts: no
  capabilities left (CapEff 0), ``no_new_privs`` set by bwrap, and the
  process is not dumpable (another process of the same uid, the notebook's
  kernel, cannot read its memory through ``/proc``).  A grader that is not
  root gets an unprivileged bwrap (a user namespace) and keeps its uid.
* **Limits**, inherited by everything the job starts: address space
  (RLIMIT_AS, per process), file size (RLIMIT_FSIZE), no core dumps, and
  RLIMIT_NPROC: ``MAX_TASKS`` tasks (threads count) for the job's own uid.
  For a non-root grader the kernel counts every task of that user, so the
  limit is the user's current count plus ``MAX_TASKS``: a looser bound.
* **A short environment**: an allowlist (``_ENV_KEEP`` and the variables set
  in :func:`environment`); no shared writable cache (no ``MPLCONFIGDIR``
  shared between submissions: matplotlib, which grading does not import,
  would build its font cache in the job's own ``HOME``).

What it does **not** do, honestly:

* The student's solution cells run *in the pytest process*: they can read
  the hidden tests' code in memory (``sys.modules``, code objects), patch
  pytest or the plugin, and write anything to the report descriptor, so a
  determined student can forge their own result.  The runner caps every
  message and withholds message lines that reproduce a hidden test line
  (``exercises/redact.py``), which stops verbatim leaks into feedback, not
  encoded ones.
* The memory limit is per process; a job's processes together may use up to
  ``MAX_TASKS`` times it, plus the tmpfs sizes.  There is no CPU-share or I/O
  limit besides the wall-clock timeout (no cgroups here).
* The sandbox shares the host kernel: a kernel bug reachable from an
  unprivileged process (system calls are not filtered: no seccomp) is
  reachable from a submission.  ``/etc`` is readable (what any local user
  can read).  For an exam-grade boundary, also run the grader in a throwaway
  VM.
"""

from __future__ import annotations

import atexit
import base64
import functools
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from exercises.catalog import PACKAGE_DIR

HOME = "/home/student"
LIB = "/grader/lib"
UID_BASE = 2_000_000
SLOTS = 256
"""Concurrent jobs per grader process, each with its own uid."""
MAX_TASKS = 256
"""RLIMIT_NPROC of a job: exercise 04 peaks near 50 tasks (its server's threads,
the Jupyter kernel's); five times that, and a fork bomb stops there."""
HOME_BYTES = 256 * 1024 * 1024
TMP_BYTES = 256 * 1024 * 1024
SHM_BYTES = 64 * 1024 * 1024
_CAPS = ("CAP_SETUID", "CAP_SETGID", "CAP_CHOWN")
"""All the launcher needs as root: hand HOME and /tmp over, then switch uid."""
_ENV_KEEP = ("LANG", "LANGUAGE")
"""Host variables passed through (and every LC_*); the rest is set by us."""


def bwrap_path() -> str | None:
    """The bubblewrap binary on PATH, if any."""
    return shutil.which("bwrap")


@functools.cache
def available() -> str:
    """"" when sandboxed grading works here, else a one-line reason (cached per process).

    Runs a trivial job (the interpreter, inside a real sandbox with every
    option a grading job uses), because a present bwrap can still be
    refused namespaces (a container without user namespaces, a sysctl).
    """
    hint = "or pass --no-sandbox to grade without it"
    if bwrap_path() is None:
        return ("class grading needs the bubblewrap sandbox: bwrap not found "
                f"(sudo apt-get install bubblewrap), {hint}")
    job = Job(folder="probe", files={"probe.py": b"print('ok')\n"},
              command=["script", "probe.py"], env={})
    try:
        with job.start(stdout=subprocess.PIPE, report=None) as proc:
            out, _ = proc.communicate(timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        return (f"class grading needs the bubblewrap sandbox, which cannot start here ({exc}), "
                f"{hint}")
    if proc.returncode == 0 and out.strip() == b"ok":
        return ""
    text = out.decode("utf-8", "replace").strip().splitlines()
    why = next((line for line in text if line.startswith("bwrap:")), text[-1] if text else "")
    why = why or f"exit status {proc.returncode}"
    return (f"class grading needs the bubblewrap sandbox: bwrap cannot create namespaces "
            f"here ({why[:200]}), {hint}")


# --- the grader's public code, staged once per process ----------------------------------

_staged: Path | None = None
_stage_lock = threading.Lock()


def staged_lib() -> Path:
    """A directory holding the code the tests import: ``exercises/*.py`` and ``khttpd_py``.

    Only modules, never the exercise folders (hidden tests, solution
    notebooks).  Copied once per grading process, so a job sees the code as
    it was when the run started, and removed when the process exits.
    """
    global _staged
    with _stage_lock:
        if _staged is not None and _staged.is_dir():
            return _staged
        root = Path(tempfile.mkdtemp(prefix="khttpd-grade-lib-"))
        atexit.register(shutil.rmtree, root, ignore_errors=True)
        (root / "exercises").mkdir()
        for module in sorted(PACKAGE_DIR.glob("*.py")):
            shutil.copyfile(module, root / "exercises" / module.name)
        library = PACKAGE_DIR.parent / "khttpd_py"
        if library.is_dir():
            shutil.copytree(library, root / "khttpd_py",
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        for path in (root, *root.rglob("*")):  # mkdtemp's 0700 would hide it from the job's uid
            path.chmod(0o755 if path.is_dir() else 0o644)
        _staged = root
        return root


# --- uids -------------------------------------------------------------------------------

_slots: set[int] = set()
_slots_lock = threading.Lock()


@contextmanager
def job_uid() -> Iterator[int]:
    """A uid no other running job of any grader process on this host uses.

    ``UID_BASE + pid * SLOTS + slot``: the pid separates grader processes,
    the slot separates this process's concurrent jobs.  A distinct uid per
    job keeps RLIMIT_NPROC per job and stops one job's processes from
    signalling or tracing another's.
    """
    with _slots_lock:
        slot = next((n for n in range(SLOTS) if n not in _slots), None)
        if slot is None:
            raise RuntimeError(f"more than {SLOTS} grading jobs at once in one process")
        _slots.add(slot)
    try:
        yield UID_BASE + (os.getpid() % 2**22) * SLOTS + slot
    finally:
        with _slots_lock:
            _slots.discard(slot)


def _user_tasks(uid: int) -> int:
    """How many tasks (threads included) ``uid`` runs: what RLIMIT_NPROC counts for it."""
    count = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
        if fields.get("Uid", "").split()[:1] == [str(uid)]:
            count += int(fields.get("Threads", "1").strip() or 1)
    return count


# --- the bwrap command ------------------------------------------------------------------


def _python_paths() -> list[Path]:
    """The interpreter's directories to bind: base prefix, venv, the binary's real dir.

    Nested ones are dropped (a bind covers what is under it).
    """
    wanted = {Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve(),
              Path(os.path.realpath(sys.executable)).parent}
    return sorted(p for p in wanted
                  if not any(p != q and p.is_relative_to(q) for q in wanted))


def _system_args() -> list[str]:
    """Read-only /usr and /etc; /bin, /lib, /lib64, /sbin as the host has them."""
    args = ["--ro-bind", "/usr", "/usr", "--ro-bind", "/etc", "/etc"]
    for name in ("/bin", "/lib", "/lib64", "/lib32", "/sbin"):
        if os.path.islink(name):
            args += ["--symlink", os.readlink(name), name]
        elif os.path.isdir(name):
            args += ["--ro-bind", name, name]
    return args


def _parents(paths: list[Path]) -> list[str]:
    """``--dir`` (mode 0755) for every missing ancestor of the bound paths.

    bwrap would create them with mode 0700 as root, which hides the
    interpreter from the job's uid.
    """
    made: list[str] = []
    args: list[str] = []
    skip = {"/", "/usr", "/etc", "/bin", "/lib", "/lib64", "/sbin", "/home", "/tmp", "/dev",
            "/proc"}
    for path in paths:
        for parent in reversed(path.parents):
            text = str(parent)
            if text in skip or text in made or any(Path(text).is_relative_to(s)
                                                   for s in ("/usr", "/etc")):
                continue
            made.append(text)
            args += ["--perms", "0755", "--dir", text]
    return args


def bwrap_command(bundle_fd: int, privileged: bool) -> list[str]:
    """The bwrap command line of one job; the launcher reads its bundle from ``bundle_fd``."""
    bwrap = bwrap_path() or "bwrap"
    python = _python_paths()
    lib = staged_lib()
    if privileged:
        # No user namespace: only uid 0 would be mapped in one, so the launcher
        # could not switch to the job's uid.
        spaces = ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts",
                  "--unshare-cgroup-try", "--cap-drop", "ALL"]
        for cap in _CAPS:
            spaces += ["--cap-add", cap]
    else:
        spaces = ["--unshare-all"]
    args = [
        bwrap, *spaces, "--die-with-parent", "--new-session", "--hostname", "grader",
        *_system_args(),
        "--proc", "/proc", "--dev", "/dev",
        "--perms", "1777", "--size", str(SHM_BYTES), "--tmpfs", "/dev/shm",
        "--perms", "1777", "--size", str(TMP_BYTES), "--tmpfs", "/tmp",
        "--perms", "0755", "--dir", "/home",
        "--perms", "0700", "--size", str(HOME_BYTES), "--tmpfs", HOME,
        *_parents([*python, Path(LIB)]),
    ]
    for path in python:
        args += ["--ro-bind", str(path), str(path)]
    args += ["--ro-bind", str(lib), LIB, "--remount-ro", "/", "--chdir", HOME,
             sys.executable, "-m", "exercises.sandbox", str(bundle_fd)]
    return args


def environment(extra: dict[str, str]) -> dict[str, str]:
    """The job's whole environment: an allowlist of host variables, then ours, then ``extra``."""
    env = {key: value for key, value in os.environ.items()
           if key in _ENV_KEEP or key.startswith("LC_")}
    env.update(
        PATH=os.pathsep.join([os.path.dirname(sys.executable), "/usr/local/bin", "/usr/bin",
                              "/bin"]),
        HOME=HOME,
        TMPDIR="/tmp",
        PYTHONPATH=LIB,
        PYTHONDONTWRITEBYTECODE="1",
        PYTEST_DISABLE_PLUGIN_AUTOLOAD="1",
        MPLBACKEND="Agg",
        JUPYTER_PLATFORM_DIRS="1",
        PYDEVD_DISABLE_FILE_VALIDATION="1",
    )
    env.update(extra)
    return env


# --- one job ----------------------------------------------------------------------------


@dataclass
class Job:
    """What to run in one sandbox: files under ``HOME/folder``, and a command there.

    ``command`` is ``["pytest", *args]`` (pytest in the launcher's own
    process) or ``["script", PATH, *args]`` (a Python file of ``files``).
    ``memory_mb`` 0: no address-space limit.
    """

    folder: str
    files: dict[str, bytes]
    command: list[str]
    env: dict[str, str]
    memory_mb: int = 0
    file_bytes: int = 64 * 1024 * 1024
    tasks: int = MAX_TASKS
    extra_home: dict[str, bytes] = field(default_factory=dict)
    """Files directly under HOME (the pytest.ini the command points at)."""

    def bundle(self, uid: int | None, nproc: int) -> bytes:
        files = {f"{self.folder}/{name}": data for name, data in self.files.items()}
        files.update(self.extra_home)
        return json.dumps({
            "folder": self.folder,
            "files": {name: base64.b64encode(data).decode() for name, data in files.items()},
            "command": self.command,
            "uid": uid,
            "memory": max(0, self.memory_mb) * 1024 * 1024,
            "fsize": self.file_bytes,
            "nproc": nproc,
        }).encode()

    @contextmanager
    def start(
        self, stdout: int | IO[bytes], report: int | None
    ) -> Iterator[subprocess.Popen[bytes]]:
        """Start the job; the sandbox's whole process tree is gone when this exits.

        ``report``: a writable descriptor the job inherits under its own number
        (the plugin's ``--grade-report-fd``).  The caller waits for, or kills,
        the process (its own session: ``os.killpg(proc.pid, ...)``).
        """
        privileged = os.geteuid() == 0
        with job_uid() as uid:
            nproc = self.tasks if privileged else _user_tasks(os.getuid()) + self.tasks
            data = self.bundle(uid if privileged else None, nproc)
            read_end, write_end = os.pipe()
            keep = (read_end,) if report is None else (read_end, report)
            try:
                proc = subprocess.Popen(
                    bwrap_command(read_end, privileged),
                    env=environment(self.env),
                    stdin=subprocess.DEVNULL,
                    stdout=stdout,
                    stderr=subprocess.STDOUT,
                    pass_fds=keep,
                    start_new_session=True,
                )
            except BaseException:
                os.close(write_end)
                raise
            finally:
                os.close(read_end)
            feeder = threading.Thread(target=_feed, args=(write_end, data), daemon=True)
            feeder.start()
            try:
                yield proc
            finally:
                if proc.poll() is None:
                    try:
                        os.killpg(proc.pid, 9)
                    except OSError:
                        pass
                proc.wait()
                feeder.join(timeout=5)


def _feed(fd: int, data: bytes) -> None:
    """Write the bundle into the pipe (from a thread: it is larger than a pipe's buffer)."""
    try:
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
    except OSError:  # the job died before reading it all: its result will say so
        pass


# --- inside the sandbox -----------------------------------------------------------------


def _read_bundle(fd: int) -> dict:
    with os.fdopen(fd, "rb") as stream:
        return json.loads(stream.read())


def _not_dumpable() -> None:
    """PR_SET_DUMPABLE 0: processes of the same uid cannot read this one's memory."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def launch(fd: int) -> int:
    """The job's first process: write the files, drop to the job's uid, set limits, run.

    Runs as ``python -m exercises.sandbox FD`` inside the sandbox, importing
    only the standard library before pytest.
    """
    job = _read_bundle(fd)
    home = Path(HOME)
    for name, data in job["files"].items():
        path = home / name
        if home not in path.resolve().parents:
            raise SystemExit(f"sandbox: bad file name in the bundle: {name!r}")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
    del job["files"]
    uid = job["uid"]
    if uid is not None:
        # Deepest first: once HOME (0700) is the job's, root without
        # CAP_DAC_OVERRIDE can no longer enter it.
        for path in (*sorted(home.rglob("*"), reverse=True), home, Path("/tmp")):
            os.chown(path, uid, uid, follow_symlinks=False)
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
        if os.getuid() != uid or os.geteuid() != uid:
            raise SystemExit("sandbox: could not switch to the job's uid")
    _not_dumpable()
    if job["memory"] > 0:
        resource.setrlimit(resource.RLIMIT_AS, (job["memory"], job["memory"]))
    resource.setrlimit(resource.RLIMIT_FSIZE, (job["fsize"], job["fsize"]))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NPROC, (job["nproc"], job["nproc"]))
    os.chdir(home / job["folder"])
    command = job["command"]
    sys.argv = command[1:]
    if command[0] == "pytest":
        # jsonschema (nbformat, nbval) would build this package's IRI grammar at
        # import: three seconds per exercise for a format no notebook uses.
        sys.modules["rfc3987_syntax"] = None  # type: ignore[assignment]
        import pytest

        return int(pytest.main(command[1:]))
    import runpy

    sys.path.insert(0, os.getcwd())
    runpy.run_path(command[1], run_name="__main__")
    return 0


if __name__ == "__main__":
    sys.exit(launch(int(sys.argv[1])))
