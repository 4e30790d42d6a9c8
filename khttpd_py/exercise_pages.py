"""The book's exercise pages, generated from the student release before every build.

Why generated: an exercise lives in one place, ``exercises/NN-name/`` (a notebook with
marked solution regions, public and hidden tests, a points table), and what a student may
see of it is decided by one rule, ``exercises.release``.  A hand-written copy on the site
would drift from both.  So :func:`generate` (called by ``booktools.build``) runs that very
release into a temporary directory and turns each released exercise folder into a MyST page
``book/exercises/NN-name.md``: the notebook's text and starter code, the public tests and
shipped helper modules, the points, how to work on it locally, and downloads of the released
files (the student notebook first).  ``book/exercises/index.md`` lists them all.  A solution
or a hidden test can reach the site only by reaching ``make release``'s output first.

The student notebooks are shown as text and never executed: their starter code raises
``NotImplementedError``.  Outputs stored in the release (those of the story cells, which
show what a working solution prints) are shown as text or images.

``book/exercises/`` belongs to this module (it is gitignored): every build rewrites the
pages whose text changed, leaves the others alone (so Sphinx re-reads only those) and
deletes whatever it did not generate, such as the page of a removed exercise.  ``_toc.yml``
takes the pages with a glob, so a new exercise folder needs no entry anywhere.
"""

from __future__ import annotations

import ast
import base64
import binascii
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from exercises import catalog, notebook
from exercises.catalog import Exercise
from exercises.runner import share_of

ROOT = Path(__file__).resolve().parent.parent
PAGES = Path("book") / "exercises"
"""The generated folder, relative to the book's root (docnames ``book/exercises/...``)."""
FILES = "_files"
"""Sub-folder of :data:`PAGES` with the downloadable released files, one folder per exercise."""
INDEX = "index"
LIVE_FOLDER = "exercises"
"""Where the browser-capable exercises sit in the live site (``khttpd_py.lite.contents``)."""

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_IMAGE_TYPES = {"image/png": "png", "image/jpeg": "jpg", "image/svg+xml": "svg"}
_CHECKED = ("# NBVAL_CHECK_OUTPUT", "nbval-check-output")


class ExercisePageError(Exception):
    """Generation failed; the message is one line and names the exercise when there is one."""


def docname(name: str) -> str:
    """The Sphinx docname of an exercise's page, e.g. ``book/exercises/04-convert-server``."""
    return (PAGES / name).as_posix()


def docnames(root: Path = ROOT) -> list[str]:
    """Every generated page (index first), from the exercise folders alone: no build needed."""
    return [docname(INDEX)] + [docname(ex.name) for ex in catalog.discover(root / "exercises")]


def starter_line() -> str:
    """The line the release puts where a solution region was (``raise NotImplementedError...``)."""
    return notebook.strip_solutions(f"{notebook.BEGIN}\n{notebook.END}\n").strip()


@dataclass(frozen=True)
class TestPoints:
    """One public test function: how many collected cases, and their points together."""

    file: str
    name: str
    cases: int
    points: int


@dataclass
class Rendered:
    """What one page needs written: files relative to :data:`PAGES`, as bytes."""

    files: dict[str, bytes] = field(default_factory=dict)

    def add(self, rel: str, data: bytes | str) -> str:
        self.files[rel] = data.encode("utf-8") if isinstance(data, str) else data
        return rel


# --- generation -------------------------------------------------------------------------


def generate(root: Path = ROOT) -> list[str]:
    """Write the pages of every exercise of ``root`` into ``root/book/exercises``.

    Returns their docnames (index first).  Raises :class:`ExercisePageError` with a one-line
    message for anything that keeps an exercise from being released or shown.
    """
    from exercises import release

    source = (root / "exercises").resolve()
    if catalog.PACKAGE_DIR != source:
        raise ExercisePageError(
            f"exercise pages: the exercises package in use is {catalog.PACKAGE_DIR}, "
            f"not {source}; run the build from {root.resolve()}"
        )
    names = [ex.name for ex in catalog.discover(source)]
    with tempfile.TemporaryDirectory(prefix="khttpd-exercise-pages-") as tmp:
        out = Path(tmp) / "release"
        try:
            release.release(out)
            released = catalog.discover(out / "exercises")
            points = catalog.collect_points(released)
        except (release.ReleaseError, catalog.ConfigError, notebook.NotebookError) as exc:
            raise ExercisePageError(_one_line(f"exercise pages: {exc}", names)) from None
        except OSError as exc:
            raise ExercisePageError(f"exercise pages: cannot write the release: {exc}") from None
        toc = _toc_docs(root)
        pages = Rendered()
        for ex in released:
            try:
                render_exercise(ex, tests_of(ex, points.get(ex.name, [])), toc, pages)
            except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
                raise ExercisePageError(
                    f"exercise pages: {ex.name}: cannot render the released exercise ({exc})"
                ) from None
        pages.add(f"{INDEX}.md", render_index(released, toc))
    write_tree(root / PAGES, pages.files)
    return [docname(INDEX)] + [docname(ex.name) for ex in released]


def _one_line(message: str, names: list[str]) -> str:
    """Fold a multi-line message into one line, keeping the lines that name an exercise."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    if len(lines) <= 1:
        return " ".join(lines)
    naming = [line for line in lines[1:] if any(name in line for name in names)]
    return "; ".join([lines[0].rstrip(":"), *(naming or lines[1:])])


def write_tree(target: Path, files: dict[str, bytes]) -> None:
    """Make ``target`` hold exactly ``files``: write what changed, delete what is not there."""
    target.mkdir(parents=True, exist_ok=True)
    for rel, data in sorted(files.items()):
        path = target / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.is_file() or path.read_bytes() != data:
            path.write_bytes(data)
    wanted = {target / rel for rel in files}
    for path in sorted(target.rglob("*"), reverse=True):  # children before their folder
        if path.is_symlink() or path.is_file():
            if path not in wanted:
                path.unlink()
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()


def tests_of(ex: Exercise, items: list[dict[str, object]]) -> list[TestPoints]:
    """The public tests of a released exercise, parametrized cases folded into one row each."""
    rows: dict[tuple[str, str], list[int]] = {}
    for item in items:
        if item.get("kind") == "nbval":
            continue
        path, _, name = str(item["nodeid"]).partition("::")
        key = (Path(path).name, name.split("[", 1)[0])
        rows.setdefault(key, []).append(int(item["points"]))  # type: ignore[call-overload]
    return [TestPoints(f, n, len(p), sum(p)) for (f, n), p in rows.items()]


def _toc_docs(root: Path) -> list[str]:
    """Every ``file:`` entry of ``_toc.yml`` (in order), to link only pages the book has."""
    import yaml

    found: list[str] = []

    def walk(entries: list[dict[str, Any]]) -> None:
        for entry in entries or []:
            if "file" in entry:
                found.append(re.sub(r"\.(md|ipynb)$", "", str(entry["file"])))
            walk(entry.get("sections", []))

    try:
        toc = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ExercisePageError(f"exercise pages: cannot read _toc.yml ({exc})") from None
    found.append(str(toc.get("root", "")))
    for part in toc.get("parts", []) or []:
        walk(part.get("chapters", []))
    walk(toc.get("chapters", []))
    return found


def chapter_of(name: str, toc: list[str]) -> str | None:
    """The chapter an exercise belongs to (``NN`` of its folder), if the book has it."""
    prefix = f"book/{name[:2]}-"
    return next((doc for doc in toc if doc.startswith(prefix)), None)


# --- one exercise -----------------------------------------------------------------------


def render_exercise(ex: Exercise, tests: list[TestPoints], toc: list[str], out: Rendered) -> None:
    """Add the page of one released exercise folder, and its downloads, to ``out``."""
    files = _released_files(ex.path)
    downloads = {
        rel: out.add(f"{FILES}/{ex.name}/{rel}", (ex.path / rel).read_bytes()) for rel in files
    }
    nb = notebook.read(ex.path / notebook.NOTEBOOK_NAME)
    title, body = notebook_markdown(nb, ex.name, out)
    chapter = chapter_of(ex.name, toc)
    parts = [
        f"# {title}",
        page_header(ex, downloads[notebook.NOTEBOOK_NAME], chapter),
        body,
        public_checks(ex, files),
        "## Points\n\n" + points_table(ex, tests),
        work_locally(ex),
        files_section(files, downloads),
    ]
    out.add(f"{ex.name}.md", "\n\n".join(p.strip("\n") for p in parts if p.strip()) + "\n")


def _released_files(folder: Path) -> list[str]:
    """The released folder's files (relative, sorted), as the student gets them."""
    return sorted(
        p.relative_to(folder).as_posix() for p in folder.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    )


def live_url(name: str) -> str:
    """The exercise's notebook in the live site's lab app, relative to the site's root."""
    return f"lite/lab/index.html?path={LIVE_FOLDER}/{name}/{notebook.NOTEBOOK_NAME}"


def actions(ex: Exercise, notebook_file: str) -> list[str]:
    """The ways to open this exercise from its page, as MyST inline markup.

    One entry per way: the live copy in the browser (for exercises that need neither
    sockets nor threads, ``in_browser`` in ``points.toml``), then the download.
    """
    ways = []
    if ex.in_browser:
        root = "../" * docname(ex.name).count("/")  # from the page up to the site's root
        ways.append(f'<a class="khttpd-live-link" href="{root}{live_url(ex.name)}" '
                    'target="_blank" rel="noopener">Open it live in your browser</a>')
    ways.append(f"{{download}}`Download the student notebook <{notebook_file}>`")
    return ways


def live_text(ex: Exercise) -> str:
    """What the page says about working in the browser, for this exercise."""
    if ex.in_browser:
        return (
            "*Open it live* starts Python in your browser (about 20-40 s the first time) "
            "with this exercise's notebook and public tests: work there, save (Ctrl-S) and run "
            "its last cell to see what the public tests award. Your work stays in this "
            "browser's storage across reloads, but not if you clear the site's data: before "
            "that, and to submit, download it (*File → Download*) into your copy of the "
            "repository."
        )
    return (
        "This exercise needs sockets and threads, which the browser's Python (Pyodide) does "
        "not have, so it has no live copy: work on it with `make lab` in your copy of the "
        "repository."
    )


def page_header(ex: Exercise, notebook_file: str, chapter: str | None) -> str:
    """The block under the page's title: how to get the exercise, what it is worth."""
    hidden = f" ({ex.hidden_points} from hidden tests)" if ex.hidden_points else ""
    facts = [f"*{ex.title}*", f"**{ex.total} points**{hidden}"]
    if chapter:
        facts.append(f"chapter: {{doc}}`../{Path(chapter).name}`")
    facts.append(f"folder `exercises/{ex.name}/`")
    return "\n".join([
        " · ".join(f"**{a}**" for a in actions(ex, notebook_file)),
        "",
        " · ".join(facts),
        "",
        "This is the student version of the exercise, as your copy of the course repository "
        "has it: the instructions and starter code of its notebook, its public tests and its "
        "points. Save the downloaded notebook as "
        f"`exercises/{ex.name}/{notebook.NOTEBOOK_NAME}` in your copy; *Work on it locally* "
        "below says how to run and grade it.",
        "",
        live_text(ex),
    ])


def notebook_markdown(nb: notebook.Notebook, name: str, out: Rendered) -> tuple[str, str]:
    """The notebook as MyST: its title (the first ``# `` heading) and everything else."""
    blocks: list[str] = []
    title = ""
    for index, cell in enumerate(nb["cells"]):
        kind = cell.get("cell_type")
        source = notebook.cell_source(cell)
        if kind == "markdown":
            text = _with_attachments(source, cell, name, index, out).strip("\n")
            if not title and not blocks:
                first, _, rest = text.partition("\n")
                if first.startswith("# "):
                    title, text = first[2:].strip(), rest.strip("\n")
            if text:
                blocks.append(text)
        elif kind == "code" and source.strip():
            blocks.append(code_cell(cell, source, name, index, out))
    return title or f"Exercise {name}", "\n\n".join(blocks)


def _with_attachments(source: str, cell: dict[str, Any], name: str, index: int,
                      out: Rendered) -> str:
    """Images pasted into a markdown cell (``attachment:x.png``) become files of the page."""
    for file_name, bundle in sorted((cell.get("attachments") or {}).items()):
        for mime, ext in _IMAGE_TYPES.items():
            if mime in bundle:
                stem = re.sub(r"[^A-Za-z0-9_.-]", "_", Path(file_name).stem)
                rel = out.add(f"{FILES}/{name}/cell{index}-{stem}.{ext}",
                              _decode(bundle[mime], ext))
                source = source.replace(f"attachment:{file_name}", rel)
                break
    return source


def code_cell(cell: dict[str, Any], source: str, name: str, index: int, out: Rendered) -> str:
    """A code cell as a code block (a solution cell says so), followed by its stored outputs."""
    parts = [fenced(source, "ipython3")]
    if notebook.is_solution_cell(cell):
        parts.insert(0, f"**Your code** (a cell tagged `{notebook.SOLUTION_TAG}`):")
    checked = source.lstrip().startswith(_CHECKED[0]) or _CHECKED[1] in (
        cell.get("metadata", {}).get("tags") or [])
    for number, output in enumerate(cell.get("outputs") or []):
        block = output_block(output, name, index, number, checked, out)
        if block:
            parts.append(block)
    return "\n\n".join(parts)


def output_block(output: dict[str, Any], name: str, index: int, number: int, checked: bool,
                 out: Rendered) -> str:
    """One stored output: text as a text block, an image as a picture; "" for anything else."""
    if checked:
        label = "*What this cell must print (the grader compares it):*"
    else:
        label = "*What it prints with a working solution:*"
    kind = output.get("output_type")
    data = output.get("data") or {}
    image = next((mime for mime in _IMAGE_TYPES if mime in data), None)
    if kind == "stream":
        text = _text(output.get("text", ""))
    elif kind == "error":
        text = f"{output.get('ename', 'Error')}: {output.get('evalue', '')}"
    elif image:
        ext = _IMAGE_TYPES[image]
        rel = out.add(f"{FILES}/{name}/cell{index}-output{number}.{ext}",
                      _decode(data[image], ext))
        return f"{label}\n\n![output of the cell above]({rel})"
    elif "text/plain" in data:
        text = _text(data["text/plain"])
    else:
        return ""
    return f"{label}\n\n{fenced(text, 'text')}"


def _text(value: str | list[str]) -> str:
    return _ANSI.sub("", "".join(value) if isinstance(value, list) else str(value))


def _decode(value: str | list[str], ext: str) -> bytes:
    text = "".join(value) if isinstance(value, list) else str(value)
    if ext == "svg":
        return text.encode("utf-8")
    try:
        return base64.b64decode(text, validate=False)
    except binascii.Error as exc:
        raise ValueError(f"an image output is not base64 ({exc})") from None


def fenced(text: str, language: str) -> str:
    """A code block whose fence is longer than any backtick run in ``text``."""
    runs = [len(m) for m in re.findall(r"`+", text)]
    fence = "`" * max(3, max(runs, default=0) + 1)
    body = text.rstrip("\n")
    return f"{fence}{language}\n{body}\n{fence}"


def public_checks(ex: Exercise, files: list[str]) -> str:
    """The released test files and helper modules, in full."""
    tests = [f for f in files if Path(f).name.startswith("test_") and f.endswith(".py")]
    helpers = [f for f in files if f.endswith(".py") and f not in tests]
    parts = [
        "## Public tests",
        "The grader runs these tests on the module it builds from your solution cells; "
        "they are in your copy too, so `pytest` shows the same failures. Every failed "
        "assertion says what was expected."
        + (" Your instructor also runs hidden tests, which are not on this site."
           if ex.hidden_points else ""),
    ]
    for f in tests:
        parts += [f"### `{f}`", fenced(_read(ex, f), "python")]
    for f in helpers:
        parts += [f"### `{f}`", "A helper module shipped next to the tests, which import it:",
                  fenced(_read(ex, f), "python")]
    return "\n\n".join(parts)


def _read(ex: Exercise, rel: str) -> str:
    return (ex.path / rel).read_text(encoding="utf-8")


def points_table(ex: Exercise, tests: list[TestPoints]) -> str:
    """Where the exercise's points come from, test by test."""
    docs = _test_docs(ex, {t.file for t in tests})
    rows = ["| what | points |", "|---|---|"]
    for t in tests:
        cases = f" ({t.cases} cases)" if t.cases > 1 else ""
        doc = docs.get((t.file, t.name), "")
        what = f"`{t.name}`{cases}" + (f": {doc}" if doc else "")
        rows.append(f"| {_cell(what)} | {t.points if t.points else '0 (reports only)'} |")
    if ex.nbval:
        rows.append("| the notebook runs top to bottom and its checked outputs match "
                    f"(counted once every public test passes) | {ex.nbval} |")
    if ex.hidden_points:
        rows.append(f"| your instructor's hidden tests | {ex.hidden_points} |")
    rows.append(f"| **total** | **{ex.total}** |")
    return "\n".join(rows) + (
        f"\n\nThe whole exercise may run for {ex.timeout:g} s; each test and each notebook "
        f"cell for {share_of(ex.timeout):g} s. A test that runs out of time loses its points."
    )


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _test_docs(ex: Exercise, files: set[str]) -> dict[tuple[str, str], str]:
    """First docstring line of each test function, where it has one."""
    found: dict[tuple[str, str], str] = {}
    for rel in sorted(files):
        try:
            tree = ast.parse(_read(ex, rel))
        except (OSError, SyntaxError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                doc = ast.get_docstring(node)
                if doc:
                    found[(rel, node.name)] = doc.strip().splitlines()[0]
    return found


def work_locally(ex: Exercise) -> str:
    """How a student works on and grades this exercise in their copy."""
    path = f"exercises/{ex.name}/{notebook.NOTEBOOK_NAME}"
    commands = [
        ("make lab", f"JupyterLab; open {path}"),
        (f'make grade ARGS="--only {ex.name}"', "your score for this exercise"),
        (f".venv/bin/pytest exercises/{ex.name}", "its public tests, as plain pytest"),
    ]
    width = max(len(command) for command, _ in commands) + 2
    return "\n".join([
        "## Work on it locally",
        "",
        "In your copy of the course repository (your instructor hands it out), once: "
        "`make venv`. Then:",
        "",
        "```sh",
        *(f"{command.ljust(width)}# {what}" for command, what in commands),
        "```",
        "",
        f"In each cell tagged `solution`, replace every `{starter_line()}` with your code and "
        "keep the names and signatures; then restart the kernel and run the whole notebook. "
        "The grader takes only your notebook; the test files always come from the course.",
    ])


def files_section(files: list[str], downloads: dict[str, str]) -> str:
    """Every file of the released folder, each downloadable."""
    rows = ["## Files", "", "What the exercise's folder holds in your copy:", ""]
    for rel in files:
        name = Path(rel).name
        if rel == notebook.NOTEBOOK_NAME:
            what = "the notebook; your code goes in its solution cells"
        elif name.startswith("test_") and name.endswith(".py"):
            what = "public tests"
        elif name == "points.toml":
            what = "the points table the grader reads"
        elif name.endswith(".py"):
            what = "a helper module the tests import"
        else:
            what = "data the notebook or the tests read"
        rows.append(f"- {{download}}`{rel} <{downloads[rel]}>`: {what}")
    return "\n".join(rows)


# --- the index --------------------------------------------------------------------------


def render_index(exercises: list[Exercise], toc: list[str]) -> str:
    """The page listing every exercise, its chapter and its points."""
    rows = ["| exercise | chapter | what you do | points |", "|---|---|---|---|"]
    for ex in exercises:
        chapter = chapter_of(ex.name, toc)
        where = f"{{doc}}`{int(ex.name[:2])} <../{Path(chapter).name}>`" if chapter else ""
        rows.append(f"| {{doc}}`{ex.name} <{ex.name}>` | {where} | {_cell(ex.title)} "
                    f"| {ex.total} |")
    rows.append(f"| | | **total** | **{sum(ex.total for ex in exercises)}** |")
    appendix = "book/appendix-instructors"
    instructors = (
        f" Instructors: {{doc}}`../{Path(appendix).name}` explains releasing and grading."
        if appendix in toc else ""
    )
    return "\n".join([
        "# All exercises",
        "",
        "Every chapter ends with auto-graded exercises. Each page below is the student "
        "version of one of them, exactly as your copy of the course repository has it: "
        "the instructions, the starter code, the public tests and the points, and a "
        "download of the notebook. Solutions and the hidden tests are not on this site.",
        "",
        *rows,
        "",
        "## How to work on them",
        "",
        "Get your copy of the course repository from your instructor, then:",
        "",
        "```sh",
        "make venv      # once: everything the exercises use",
        "make lab       # JupyterLab; open exercises/NN-name/exercise.ipynb",
        "make grade     # your score: one line per exercise and a TOTAL",
        "```",
        "",
        "Your score comes from the public tests; your instructor's run adds the hidden "
        "tests, whose points each exercise's table shows." + instructors,
        "",
    ])
