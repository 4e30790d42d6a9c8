"""The Python the reader's browser runs: Pyodide from npm and wheels from PyPI, cached.

The JupyterLite Pyodide kernel pins one Pyodide release
(``jupyterlite_pyodide_kernel.constants.PYODIDE_VERSION``).  npm's ``pyodide`` package
at that version holds the interpreter only (``pyodide.mjs``, the wasm, the standard
library) and a ``pyodide-lock.json`` naming ~350 packages whose wheels it does not
contain.  So this module

* fetches the core with ``npm pack`` (:func:`fetch_pyodide`);
* downloads, with ``pip download``, the pure-Python wheels the browser needs
  (:data:`BROWSER_ROOTS` and their dependencies), at the lock's own versions where the
  lock has the package, else at the version installed here, so the widgets' Python side
  matches the JupyterLab extensions the site is built with (:func:`download_wheels`);
* writes a new lock listing exactly those wheels, with sha256 sums computed from the
  downloaded files and dependencies read from each wheel's metadata
  (:func:`write_lock`): PyPI's files differ byte for byte from the ones Pyodide's own
  CDN serves, so the original sums would fail every load.

Everything lands in ``.cache/lite/`` and is reused by the next build.  Compiled
packages (numpy, httptools...) have no wasm wheel on PyPI: what runs in the browser
stays pure Python, and :data:`NOT_IN_BROWSER` names the declared dependencies the
browser goes without.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from email.parser import HeaderParser
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename


class LiteError(Exception):
    """An expected failure of the lite build: one clear message, no traceback."""


PYTHON_TAG = "3.14"
"""The CPython inside Pyodide 314 (``PYODIDE_PYTHON_VERSION`` of the kernel)."""

KERNEL_NEEDS = ["micropip", "ipython", "jedi", "comm"]
"""What the Pyodide kernel imports at start beyond its own bundled wheels (``ipykernel``,
``pyodide-kernel`` and ``piplite`` stubs ship with the JupyterLab extension)."""

BROWSER_ROOTS = ["khttpd_py", "ipywidgets", "plotly", "pytest"]
"""What the book's live pages and exercises import: the project, its widgets and charts,
and pytest for the exercises' public checks."""

NOT_IN_BROWSER = {
    "httptools": "compiled (no wasm wheel); only khttpd_py.http's parser needs it",
    "widgetsnbextension": "the kernel ships a stub; the front end is the lite site's",
    "jupyterlab-widgets": "the widget front end is built into the lite site",
}
"""Declared dependencies left out of the browser, and why."""

PRELOAD = [*KERNEL_NEEDS, *BROWSER_ROOTS]
"""Loaded with the interpreter (``loadPyodideOptions.packages``): the reader's first
``import khttpd_py`` just works, with no install cell in any notebook."""


@dataclass(frozen=True)
class Wheel:
    """One wheel the browser can load: its lock entry is computed from the file."""

    path: Path
    name: str  # canonical
    version: str
    depends: tuple[str, ...]
    imports: tuple[str, ...]

    def lock_entry(self) -> dict:
        return {
            "name": self.name,
            "version": self.version,
            "file_name": self.path.name,
            "install_dir": "site",
            "package_type": "package",
            "imports": list(self.imports),
            "depends": list(self.depends),
            "sha256": sha256(self.path),
            "unvendored_tests": False,
            "shared_library": False,
        }


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def pyodide_version() -> str:
    """The Pyodide release the installed JupyterLite kernel expects."""
    try:
        from jupyterlite_pyodide_kernel.constants import PYODIDE_VERSION
    except ImportError as exc:
        raise LiteError(
            "jupyterlite-pyodide-kernel is not installed; run 'make venv' (the book extra)"
        ) from exc
    return PYODIDE_VERSION


def fetch_pyodide(cache: Path, version: str) -> Path:
    """The unpacked npm ``pyodide@version`` (cached): the folder holding ``pyodide.mjs``."""
    target = cache / f"pyodide-{version}"
    if (target / "pyodide.mjs").is_file() and (target / "pyodide-lock.json").is_file():
        return target
    npm = shutil.which("npm")
    if npm is None:
        raise LiteError(
            "npm is needed once to fetch Pyodide for the live pages "
            "(Debian: sudo apt-get install nodejs npm)"
        )
    cache.mkdir(parents=True, exist_ok=True)
    print(f"lite: npm pack pyodide@{version}", flush=True)
    with tempfile.TemporaryDirectory(prefix="khttpd-lite-npm-") as tmp:
        proc = subprocess.run([npm, "pack", "--silent", f"pyodide@{version}"], cwd=tmp,
                              capture_output=True, text=True)
        tgz = Path(tmp) / f"pyodide-{version}.tgz"
        if proc.returncode != 0 or not tgz.is_file():
            raise LiteError(f"npm pack pyodide@{version} failed (is the npm registry "
                            f"reachable?): {proc.stderr.strip()[-500:]}")
        with tarfile.open(tgz) as tar:
            tar.extractall(Path(tmp) / "x", filter="data")
        partial = cache / f".pyodide-{version}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        shutil.move(str(Path(tmp) / "x" / "package"), partial)
        shutil.rmtree(target, ignore_errors=True)
        partial.rename(target)
    if not (target / "pyodide.mjs").is_file():
        raise LiteError(f"npm's pyodide@{version} has no pyodide.mjs")
    return target


def _metadata(whl: Path) -> tuple[list[Requirement], list[str]]:
    """Requires-Dist and the top-level import names of a wheel."""
    with zipfile.ZipFile(whl) as z:
        names = z.namelist()
        meta_name = next((n for n in names if n.endswith(".dist-info/METADATA")), None)
        if meta_name is None:
            raise LiteError(f"{whl.name}: no METADATA in the wheel")
        meta = HeaderParser().parsestr(z.read(meta_name).decode("utf-8"))
        top = next((n for n in names if n.endswith(".dist-info/top_level.txt")), None)
        if top is not None:
            imports = [t for t in z.read(top).decode().split() if t and not t.startswith("_")]
        else:
            imports = sorted({
                n.split("/", 1)[0].removesuffix(".py") for n in names
                if not n.split("/", 1)[0].endswith((".dist-info", ".data"))
                and (n.endswith(".py") or "/" in n)
                and not n.split("/", 1)[0].startswith("_")
            })
    return [Requirement(r) for r in meta.get_all("Requires-Dist") or []], imports


def _browser_env() -> dict[str, str]:
    """Marker values of Pyodide's interpreter, for evaluating Requires-Dist."""
    env = default_environment()
    env.update({"sys_platform": "emscripten", "platform_system": "Emscripten",
                "os_name": "posix", "platform_machine": "wasm32",
                "implementation_name": "cpython", "platform_python_implementation": "CPython",
                "python_version": PYTHON_TAG, "python_full_version": PYTHON_TAG + ".0"})
    return env


def _needs(req: Requirement, env: dict[str, str]) -> bool:
    if req.marker is None:
        return True
    return req.marker.evaluate({**env, "extra": ""})


def _pip_download(specs: list[str], dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
           "--only-binary=:all:", "--python-version", PYTHON_TAG, "--implementation", "py",
           "--abi", "none", "--platform", "any", "--dest", str(dest), *specs]
    print("lite: pip download " + " ".join(specs), flush=True)
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise LiteError("pip download failed (is PyPI reachable?):\n" + proc.stderr.strip()[-1500:])


def _installed(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def download_wheels(cache: Path, lock: dict, project_wheel: Path) -> list[Wheel]:
    """Every wheel the browser loads, the dependencies of :data:`PRELOAD` resolved here.

    A package in Pyodide's lock is fetched at the lock's version; any other at the
    version installed in this environment (ipywidgets and plotly must match the
    JupyterLab extensions of the build).  A dependency nobody can provide is an error,
    not a page that fails in the reader's browser.
    """
    wheels_dir = cache / "wheels"
    env = _browser_env()
    in_lock = {canonicalize_name(k): v for k, v in lock["packages"].items()}
    chosen: dict[str, Wheel] = {}
    pending = [canonicalize_name(n) for n in PRELOAD]
    while pending:
        name = pending.pop(0)
        if name in chosen or name in NOT_IN_BROWSER:
            continue
        if name == canonicalize_name("khttpd_py"):
            whl = project_wheel
        else:
            version = in_lock[name]["version"] if name in in_lock else _installed(name)
            if version is None:
                raise LiteError(f"the browser needs {name}, which is neither in Pyodide's "
                                "lock nor installed here; add it to the book extra")
            whl = _cached_wheel(wheels_dir, name, version)
            if whl is None:
                _pip_download([f"{name}=={version}"], wheels_dir)
                whl = _cached_wheel(wheels_dir, name, version)
                if whl is None:
                    raise LiteError(f"pip download {name}=={version} gave no pure-Python "
                                    "wheel (compiled packages cannot run in the browser)")
        reqs, imports = _metadata(whl)
        depends = sorted({canonicalize_name(r.name) for r in reqs if _needs(r, env)}
                         - set(NOT_IN_BROWSER))
        _, version, _, _ = parse_wheel_filename(whl.name)
        chosen[name] = Wheel(whl, name, str(version), tuple(depends), tuple(imports))
        pending.extend(depends)
    return [chosen[k] for k in sorted(chosen)]


def _cached_wheel(folder: Path, name: str, version: str) -> Path | None:
    if not folder.is_dir():
        return None
    for whl in folder.glob("*.whl"):
        wname, wversion, _, tags = parse_wheel_filename(whl.name)
        if wname == name and str(wversion) == version and any(
            t.platform == "any" and t.abi == "none" for t in tags
        ):
            return whl
    return None


def write_lock(original: dict, wheels: list[Wheel], path: Path) -> dict:
    """A ``pyodide-lock.json`` holding exactly ``wheels`` (the interpreter's own info kept)."""
    lock = {"info": original["info"], "packages": {w.name: w.lock_entry() for w in wheels}}
    path.write_text(json.dumps(lock, indent=1, sort_keys=True) + "\n")
    return lock


def build_project_wheel(root: Path, dest: Path) -> Path:
    """This repository as a wheel (khttpd_py and the exercises' helpers), built outside it.

    Built from a copy of the sources so no ``build/`` or ``*.egg-info`` is left behind.
    """
    dest.mkdir(parents=True, exist_ok=True)
    for old in dest.glob("khttpd_py-*.whl"):
        old.unlink()
    with tempfile.TemporaryDirectory(prefix="khttpd-lite-wheel-") as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        for name in ("pyproject.toml", "README.md"):
            shutil.copyfile(root / name, src / name)
        shutil.copytree(root / "khttpd_py", src / "khttpd_py",
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        # the grader's package only: never the exercise folders and their hidden tests
        (src / "exercises").mkdir()
        for module in (root / "exercises").glob("*.py"):
            shutil.copyfile(module, src / "exercises" / module.name)
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
             "--wheel-dir", str(dest), str(src)],
            capture_output=True, text=True,
        )
        if proc.returncode != 0:
            raise LiteError("building the khttpd_py wheel failed:\n" + proc.stderr[-1500:])
    found = sorted(dest.glob("khttpd_py-*.whl"))
    if not found:
        raise LiteError("pip wheel produced no khttpd_py wheel")
    return found[0]
