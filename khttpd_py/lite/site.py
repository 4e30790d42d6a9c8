"""Build the JupyterLite site that makes the book's pages live: ``_build/html/lite/``.

``make book`` calls :func:`build_site` after Jupyter Book.  The site holds

* Pyodide and every wheel the browser loads (:mod:`khttpd_py.lite.packages`), preloaded at
  kernel start so ``from khttpd_py.sim import simulate`` works in the first cell;
* the ``repl`` app the chapters' *Run live* buttons open with ``?kernel=python&code=...``
  (the code runs as soon as the kernel is up), and the ``lab`` app for the exercises;
* the student version of every exercise marked ``in_browser = true`` in its
  ``points.toml`` (:mod:`khttpd_py.lite.contents`).

The build is clean every time: an incremental ``jupyter lite build`` was seen to drop the
local ``pyodideUrl`` and load Pyodide from a CDN.  What makes it fast is the cache of
downloads, not reuse of the output.  After the build :func:`check_site` refuses a site
that names another host in its configuration or could fall back to PyPI.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from khttpd_py.lite import contents, packages
from khttpd_py.lite.packages import LiteError

APPS = ["lab", "repl"]
"""JupyterLite apps in the site: ``lab`` for exercises, ``repl`` for the live explorers."""

APP_CONFIG = {
    "repl": {
        "jupyter-lite-schema-version": 0,
        "jupyter-config-data": {
            # JupyterLite 0.8.6's repl app bundles this plugin without the notebook tracker it
            # requires: it fails to activate (a console error) and the console needs none of it
            "disabledExtensions": ["@jupyterlab/codemirror-extension:commands"],
        },
    },
}
"""Per-app settings, merged over the site's ``jupyter-lite.json`` by JupyterLite."""

KERNEL_PLUGIN = "@jupyterlite/pyodide-kernel-extension:kernel"
PYODIDE_DIR = Path("static") / "pyodide"
"""Where Pyodide lives in a lite site; the kernel's build addon picks it up from here."""

KEEP_FROM_CORE = ("pyodide.mjs", "pyodide.asm.mjs", "pyodide.asm.wasm", "python_stdlib.zip",
                  "pyodide.js", "package.json")
"""The files of npm's pyodide package the kernel loads (no sourcemaps, demos, typings)."""

FOREIGN = ("cdn.jsdelivr.net", "pypi.org", "unpkg.com", "fonts.googleapis.com",
           "files.pythonhosted.org")


def build_site(root: Path, out: Path, quiet: bool = True) -> Path:
    """Build the lite site into ``out`` (replaced), from the caches under ``root/.cache``."""
    start = time.monotonic()
    cache = root / ".cache" / "lite"
    version = packages.pyodide_version()
    core = packages.fetch_pyodide(cache, version)
    original_lock = json.loads((core / "pyodide-lock.json").read_text())
    wheel = packages.build_project_wheel(root, cache / "project")
    wheels = packages.download_wheels(cache, original_lock, wheel)

    src = root / "_build" / "lite-src"
    shutil.rmtree(src, ignore_errors=True)
    pyodide = src / PYODIDE_DIR
    pyodide.mkdir(parents=True)
    for name in KEEP_FROM_CORE:
        shutil.copyfile(core / name, pyodide / name)
    for w in wheels:
        shutil.copyfile(w.path, pyodide / w.path.name)
    packages.write_lock(original_lock, wheels, pyodide / "pyodide-lock.json")
    (src / "jupyter-lite.json").write_text(json.dumps(lite_config(wheels), indent=2) + "\n")
    for app, config in APP_CONFIG.items():
        (src / app).mkdir()
        (src / app / "jupyter-lite.json").write_text(json.dumps(config, indent=2) + "\n")
    files = src / "files"
    shipped = contents.write_contents(root, files)

    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, "-m", "jupyterlite_core", "build", "--lite-dir", str(src),
           "--output-dir", str(out), "--no-sourcemaps", "--no-unused-shared-packages",
           "--contents", str(files)]
    for app in APPS:
        cmd += ["--apps", app]
    print(f"lite: jupyter lite build ({', '.join(APPS)}; {len(wheels)} wheels; "
          f"{len(shipped)} exercises)", flush=True)
    proc = subprocess.run(cmd, cwd=src, capture_output=quiet, text=True)
    if proc.returncode != 0:
        tail = (proc.stdout or "")[-2000:] + (proc.stderr or "")[-2000:] if quiet else ""
        raise LiteError(f"jupyter lite build failed (exit {proc.returncode}):\n{tail}")
    check_site(out)
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"lite: built in {time.monotonic() - start:.0f} s, {size / 2**20:.0f} MiB -> {out}",
          flush=True)
    return out


def lite_config(wheels: list[packages.Wheel]) -> dict:
    """``jupyter-lite.json``: local Pyodide, no PyPI fallback, the wheels preloaded."""
    names = {w.name for w in wheels}
    preload = [n for n in (packages.canonicalize_name(p) for p in packages.PRELOAD) if n in names]
    return {
        "jupyter-lite-schema-version": 0,
        "jupyter-config-data": {
            "appName": "khttpd-book live",
            "exposeAppInBrowser": True,  # the browser test reads the kernel's state
            "litePluginSettings": {
                KERNEL_PLUGIN: {
                    "pyodideUrl": f"./{PYODIDE_DIR.as_posix()}/pyodide.mjs",
                    "disablePyPIFallback": True,
                    "loadPyodideOptions": {"packages": preload},
                },
            },
        },
    }


def check_site(out: Path) -> None:
    """Refuse a site that would load Python or packages from another host."""
    configs = sorted(out.rglob("jupyter-lite.json"))
    if not configs:
        raise LiteError(f"{out}: no jupyter-lite.json was written")
    for config in configs:
        text = config.read_text()
        data = json.loads(text).get("jupyter-config-data", {})
        settings = data.get("litePluginSettings", {}).get(KERNEL_PLUGIN)
        if settings is None:
            continue
        url = settings.get("pyodideUrl", "")
        if not url.startswith("./"):
            raise LiteError(f"{config}: pyodideUrl is {url!r}, not the site's own copy")
        if not settings.get("disablePyPIFallback"):
            raise LiteError(f"{config}: the kernel could fall back to PyPI")
        for host in FOREIGN:
            if host in text:
                raise LiteError(f"{config} names {host}")
    if not (out / PYODIDE_DIR / "pyodide.mjs").is_file():
        raise LiteError(f"{out / PYODIDE_DIR}: Pyodide was not copied into the site")
