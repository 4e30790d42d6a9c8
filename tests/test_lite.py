"""The live site in ``_build/html/lite`` (khttpd_py.lite), checked without a browser.

What a reader's browser will load must be all there, consistent and local: every wheel the
rewritten Pyodide lock names, with the sum of the file shipped; no CDN or PyPI fallback;
the browser exercises as the student gets them, and nothing else of the instructor's.
The browser itself is driven in ``test_browser.py``.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from exercises import catalog, live, notebook, support
from khttpd_py.lite import contents, packages, site

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def lite(built_book: Path) -> Path:
    out = built_book / "lite"
    assert (out / "index.html").is_file(), "make book built no live site"
    return out


def _kernel_settings(lite: Path) -> dict:
    config = json.loads((lite / "jupyter-lite.json").read_text())["jupyter-config-data"]
    return config["litePluginSettings"][site.KERNEL_PLUGIN]


def test_kernel_loads_pyodide_from_the_site_and_never_from_pypi(lite: Path) -> None:
    settings = _kernel_settings(lite)
    assert settings["pyodideUrl"] == "./static/pyodide/pyodide.mjs"
    assert settings["disablePyPIFallback"] is True
    assert (lite / "static" / "pyodide" / "pyodide.asm.wasm").is_file()
    for config in lite.rglob("jupyter-lite.json"):
        text = config.read_text()
        for host in site.FOREIGN:
            assert host not in text, f"{config.relative_to(lite)} names {host}"


def test_lock_lists_exactly_the_shipped_wheels_with_their_sums(lite: Path) -> None:
    folder = lite / "static" / "pyodide"
    lock = json.loads((folder / "pyodide-lock.json").read_text())
    shipped = {p.name for p in folder.glob("*.whl")}
    named = {entry["file_name"] for entry in lock["packages"].values()}
    assert named == shipped, f"lock and files differ: {sorted(named ^ shipped)}"
    for name, entry in lock["packages"].items():
        digest = hashlib.sha256((folder / entry["file_name"]).read_bytes()).hexdigest()
        assert entry["sha256"] == digest, f"{name}: the lock's sha256 is not the file's"
        missing = [d for d in entry["depends"] if d not in lock["packages"]]
        assert not missing, f"{name} depends on {missing}, which the site does not ship"
    assert lock["info"]["python"].startswith(packages.PYTHON_TAG)


def test_everything_a_page_imports_is_preloaded(lite: Path) -> None:
    preload = set(_kernel_settings(lite)["loadPyodideOptions"]["packages"])
    lock = json.loads((lite / "static" / "pyodide" / "pyodide-lock.json").read_text())
    for name in ("khttpd-py", "ipywidgets", "plotly", "pytest", "micropip", "ipython"):
        assert name in preload and name in lock["packages"], name
    # the widgets' Python side must match the JupyterLab extensions the site was built with
    import ipywidgets
    import plotly

    assert lock["packages"]["ipywidgets"]["version"] == ipywidgets.__version__
    assert lock["packages"]["plotly"]["version"] == plotly.__version__


def test_site_holds_the_browser_exercises_as_released(lite: Path) -> None:
    want = sorted(ex.name for ex in catalog.discover(ROOT / "exercises") if ex.in_browser)
    assert want, "no exercise is marked in_browser"
    folder = lite / "files" / contents.LIVE_FOLDER
    assert sorted(p.name for p in folder.iterdir()) == want
    for name in want:
        assert (folder / name / "test_public.py").is_file()
        assert not list((folder / name).glob("test_hidden*")), f"{name}: a hidden test"
        nb = notebook.read(folder / name / notebook.NOTEBOOK_NAME)
        text = "\n".join(notebook.cell_source(c) for c in nb["cells"])
        assert notebook.BEGIN not in text, f"{name}: a solution region reached the site"
        assert contents.CHECK_MARK in notebook.cell_source(nb["cells"][-1])


def test_no_solution_line_anywhere_in_the_live_site(lite: Path) -> None:
    """Every line of every solution region must be absent from the site's text files,
    the project wheel included (it carries the exercises package, not the folders)."""
    import zipfile

    lines = set()
    for ex in catalog.discover(ROOT / "exercises"):
        nb = notebook.read(ex.path / notebook.NOTEBOOK_NAME)
        for cell in nb["cells"]:
            inside = False
            for line in notebook.cell_source(cell).splitlines():
                if line.strip() == notebook.BEGIN:
                    inside = True
                elif line.strip() == notebook.END:
                    inside = False
                elif inside and len(line.strip()) > 25:
                    lines.add(line.strip())
    # lines a solution shares with the project's own code are no secret
    public = "\n".join(p.read_text() for p in (ROOT / "khttpd_py").rglob("*.py"))
    lines = {line for line in lines if line not in public}
    assert lines
    texts = [p.read_text(errors="ignore") for p in (lite / "files").rglob("*") if p.is_file()]
    wheel = next((lite / "static" / "pyodide").glob("khttpd_py-*.whl"))
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        texts += [z.read(n).decode(errors="ignore") for n in names]
    assert not [n for n in names if "test_hidden" in n or n.endswith(".ipynb")]
    leaked = [line for line in lines if any(line in t for t in texts)]
    assert not leaked, f"solution lines in the live site: {leaked[:3]}"


def test_browser_cells_are_inert_outside_the_browser(monkeypatch) -> None:
    """A notebook downloaded from the site grades like the original: under CPython its
    identity cell leaves the grader's student id alone and its checks cell runs nothing."""
    monkeypatch.setenv(support.STUDENT_ID_ENV, "khttpd-hw-alice")
    exec(compile(contents.IDENTITY_CELL, "<identity cell>", "exec"), {})
    assert os.environ[support.STUDENT_ID_ENV] == "khttpd-hw-alice"
    proc = subprocess.run([sys.executable, "-c", contents.CHECK_CELL], capture_output=True,
                          text=True, cwd=ROOT / "exercises" / "01-response-bytes", timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "make grade" in proc.stdout and "ok " not in proc.stdout


def test_browser_student_id_must_be_typed(monkeypatch) -> None:
    """In the browser there is no repository folder: no silent 'drive' student."""
    monkeypatch.delenv(support.STUDENT_ID_ENV, raising=False)
    monkeypatch.setattr(support.sys, "platform", "emscripten")
    with pytest.raises(RuntimeError, match="name of your course repository"):
        support.student_id()
    monkeypatch.setenv(support.STUDENT_ID_ENV, "khttpd-hw-bob")
    assert support.student_id() == "khttpd-hw-bob"


def _public_points(folder: Path) -> int:
    return sum(int(t["points"]) for t in catalog.collect_points([catalog.load_exercise(folder)])
               [folder.name] if t["kind"] == "public")


def test_public_checks_score_the_saved_notebook(tmp_path: Path, capsys, lite: Path) -> None:
    """The browser's check cell, run here: the released starter earns 0 public points, the
    source's solutions all of them, with one line per test."""
    released = lite / "files" / contents.LIVE_FOLDER / "03-cm-rules"
    folder = tmp_path / "03-cm-rules"
    import shutil

    shutil.copytree(released, folder)
    possible = _public_points(folder)
    assert possible > 0
    assert live.public_checks(folder) == 0
    out = capsys.readouterr().out
    assert f"public tests: 0/{possible} points" in out and "FAILED" in out
    shutil.copyfile(ROOT / "exercises" / "03-cm-rules" / notebook.NOTEBOOK_NAME,
                    folder / notebook.NOTEBOOK_NAME)
    assert live.public_checks(folder) == possible
    assert f"public tests: {possible}/{possible} points" in capsys.readouterr().out


def test_http_builds_responses_without_httptools() -> None:
    """The browser has no httptools: khttpd_py.http still imports and builds responses, and
    its parser says clearly what it needs."""
    code = (
        "import sys; sys.modules['httptools'] = None\n"
        "from khttpd_py import http\n"
        "assert http.build_response(200, b'x', False).endswith(b'\\r\\n\\r\\nx')\n"
        "try:\n    http.HttpConnection()\nexcept RuntimeError as e:\n    print(e)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "needs httptools" in proc.stdout
