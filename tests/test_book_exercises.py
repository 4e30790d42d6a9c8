"""Every exercise has a page and a student notebook on the site, and no solution reaches it.

The pages are generated from the student release (``khttpd_py.exercise_pages``), so what
the site shows is what ``make release`` gives students.  These tests read the built site
(the shared ``built_book`` fixture) the way a student or a cheating student would: follow
the chapter links, download the notebook, search every file for solution lines.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pytest

from exercises import catalog, notebook
from khttpd_py import exercise_pages

ROOT = Path(__file__).resolve().parent.parent
EXERCISES = catalog.discover(ROOT / "exercises")
pytestmark = pytest.mark.slow

MIN_SECRET = 24
"""Shorter lines (``return x``, ``pass``) are too common to prove a leak."""


def solution_lines(source_nb: Path) -> list[str]:
    """Distinctive lines inside the notebook's BEGIN/END SOLUTION regions."""
    nb = notebook.read(source_nb)
    lines: list[str] = []
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        inside = False
        for line in "".join(cell["source"]).splitlines():
            stripped = line.strip()
            if stripped == notebook.BEGIN:
                inside = True
            elif stripped == notebook.END:
                inside = False
            elif inside and len(stripped) >= MIN_SECRET and not stripped.startswith("#"):
                lines.append(stripped)
    return lines


def hidden_test_lines(ex: catalog.Exercise) -> list[str]:
    hidden = ex.path / "test_hidden.py"
    if not hidden.is_file():
        return []
    public = (ex.path / "test_public.py").read_text(encoding="utf-8")
    return [s for s in (line.strip() for line in hidden.read_text(encoding="utf-8").splitlines())
            if len(s) >= MIN_SECRET and s not in public and not s.startswith(("import", "from"))]


def public_text(tmp: Path) -> str:
    """All a student may see: the release's files (chapters, starter code, public tests,
    helpers).  A solution line that also appears there is not a secret."""
    from exercises import release

    out = tmp / "release"
    release.release(out)
    parts: list[str] = []
    for path in out.rglob("*"):
        if path.is_file() and path.suffix in (".py", ".md", ".ipynb", ".json", ".toml"):
            text = path.read_text(encoding="utf-8", errors="replace")
            if path.suffix == ".ipynb":  # the raw JSON (outputs, escapes) and the sources
                text += "\n".join("".join(c["source"]) for c in json.loads(text)["cells"])
            parts.append(text)
    return "\n".join(parts)


@pytest.fixture(scope="module")
def secrets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """line -> where it comes from: solution and hidden-test lines no student may see."""
    public = public_text(tmp_path_factory.mktemp("release"))
    found: dict[str, str] = {}
    for ex in EXERCISES:
        for line in solution_lines(ex.path / notebook.NOTEBOOK_NAME):
            found[line] = f"{ex.name} solution"
        for line in hidden_test_lines(ex):
            found[line] = f"{ex.name}/test_hidden.py"
    return {line: where for line, where in found.items() if line not in public}


def page_text(path: Path) -> str:
    """A page's text as a reader sees it (tags dropped, entities decoded)."""
    return html.unescape(re.sub(r"<[^>]+>", "", path.read_text(encoding="utf-8")))


def site_texts(html: Path) -> dict[str, str]:
    texts = {}
    for path in html.rglob("*"):
        if path.is_file() and path.suffix in (".html", ".ipynb", ".txt", ".js", ".py", ".md",
                                              ".json", ".toml"):
            text = path.read_text(encoding="utf-8", errors="replace")
            if path.suffix == ".ipynb":  # lines are JSON strings there
                text += "\n" + "".join(
                    "".join(c.get("source", "")) for c in json.loads(text).get("cells", []))
            texts[str(path.relative_to(html))] = text
    return texts


def test_the_secrets_are_found_at_all(secrets: dict[str, str]) -> None:
    """The leak check below means something only if it looks for real lines."""
    for ex in EXERCISES:
        assert any(where.startswith(ex.name) for where in secrets.values()), ex.name
    assert len(secrets) >= 30


def test_no_solution_or_hidden_test_line_is_in_the_site(
    built_book: Path, secrets: dict[str, str]
) -> None:
    texts = {k: html.unescape(re.sub(r"<[^>]+>", "", v)) if k.endswith(".html") else v
             for k, v in site_texts(built_book).items()}
    leaks = [f"{file}: {where}: {line}" for line, where in secrets.items()
             for file, text in texts.items() if line in text]
    assert not leaks, "solution text on the site:\n" + "\n".join(leaks[:20])


@pytest.mark.parametrize("ex", EXERCISES, ids=lambda e: e.name)
def test_every_exercise_has_a_page_with_its_public_checks(built_book: Path, ex) -> None:
    page = built_book / f"{exercise_pages.docname(ex.name)}.html"
    assert page.is_file(), f"no page for {ex.name}"
    text = page_text(page)
    assert "test_public.py" in text and f'make grade ARGS="--only {ex.name}"' in text
    first_public = re.search(r"def (test_\w+)", (ex.path / "test_public.py").read_text())
    assert first_public and first_public.group(1) in text, "public tests not shown"
    index = (built_book / f"{exercise_pages.docname('index')}.html").read_text(encoding="utf-8")
    assert f"{ex.name}.html" in index, f"the exercises index does not list {ex.name}"


@pytest.mark.parametrize("ex", EXERCISES, ids=lambda e: e.name)
def test_the_downloaded_notebook_is_the_student_version(built_book: Path, ex) -> None:
    page = (built_book / f"{exercise_pages.docname(ex.name)}.html").read_text(encoding="utf-8")
    links = re.findall(r'href="([^"]*_downloads/[^"]*exercise\.ipynb)"', page)
    assert links, f"{ex.name}: no download of the student notebook"
    downloaded = (built_book / exercise_pages.PAGES / links[0]).resolve()
    assert downloaded.is_file(), f"broken download link {links[0]}"
    nb = notebook.read(downloaded)  # refuses anything that is not an nbformat-4 notebook
    solution_cells = [c for c in nb["cells"] if "solution" in c.get("metadata", {}).get(
        "tags", [])]
    assert solution_cells, "the solution cells (the student's work) are gone"
    text = "".join("".join(c["source"]) for c in solution_cells)
    assert exercise_pages.starter_line() in text and notebook.BEGIN not in text


CHAPTER_EXERCISES = {
    "01-khttpd": ["01-response-bytes"],
    "02-one-thread-per-connection": ["02-legacy-threads", "03-predict-timeline"],
    "03-cmwq": ["03-predict-timeline", "03-cm-rules"],
    "04-the-commit": ["04-convert-server"],
    "05-benchmark-lab": ["05-benchmark"],
}


@pytest.mark.parametrize("chapter", sorted(CHAPTER_EXERCISES))
def test_each_chapter_links_to_its_exercise_pages(built_book: Path, chapter: str) -> None:
    text = (built_book / "book" / f"{chapter}.html").read_text(encoding="utf-8")
    section = text[text.index('id="exercises"'):]
    for name in CHAPTER_EXERCISES[chapter]:
        assert f'href="exercises/{name}.html"' in section, f"{chapter}: no link to {name}"


def test_every_exercise_is_linked_from_a_chapter() -> None:
    linked = {name for names in CHAPTER_EXERCISES.values() for name in names}
    assert {ex.name for ex in EXERCISES} <= linked
