"""Every "Check yourself" question of the book has an answer the reader can reveal.

Each numbered question of a chapter's "## Check yourself" section is followed, inside
its list item, by a MyST dropdown (``:::{dropdown} Answer`` ... ``:::``).  Two checks:

* in the sources (no build): every question has exactly one non-empty answer, so a new
  question without an answer fails at once;
* in the built HTML: every question's list item holds one sphinx-design dropdown, a
  ``<details class="... sd-dropdown ...">`` that is closed by default (no ``open``
  attribute), whose summary says "Answer" and whose body is not empty.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BOOK = ROOT / "book"

pytestmark = pytest.mark.slow

# The chapters that end with questions; a chapter that loses its section fails too.
CHAPTERS = [
    "01-khttpd",
    "02-one-thread-per-connection",
    "03-cmwq",
    "04-the-commit",
    "05-benchmark-lab",
    "06-going-further",
    "07-watching-the-kernel",
]

HEADING = "## Check yourself"
QUESTION = re.compile(r"^(\d+)\. ", re.MULTILINE)
ANSWER = re.compile(
    r"^ {3}:::\{dropdown\} Answer\n(?P<body>.*?)^ {3}:::$", re.MULTILINE | re.DOTALL
)
OPENER = re.compile(r"^\s*:::\{dropdown\}", re.MULTILINE)
MIN_ANSWER_CHARS = 40  # a real answer, not a placeholder


def chapter_source(name: str) -> str:
    """The Markdown of a chapter: the .md file, or the markdown cells of the notebook."""
    md = BOOK / f"{name}.md"
    if md.is_file():
        return md.read_text(encoding="utf-8")
    nb = json.loads((BOOK / f"{name}.ipynb").read_text(encoding="utf-8"))
    return "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")


def check_yourself_section(text: str) -> str:
    """The text under "## Check yourself", up to the next level-2 heading."""
    start = text.find(HEADING + "\n")
    assert start >= 0, f"no '{HEADING}' section"
    body = text[start + len(HEADING) + 1:]
    end = re.search(r"^## ", body, re.MULTILINE)
    return body[: end.start()] if end else body


def questions(section: str) -> list[tuple[int, str]]:
    """(number, text) of each top-level numbered item, its answer included."""
    starts = list(QUESTION.finditer(section))
    ends = [m.start() for m in starts[1:]] + [len(section)] if starts else []
    return [(int(m.group(1)), section[m.start(): end]) for m, end in zip(starts, ends, strict=True)]


def source_problems(section: str) -> list[str]:
    items = questions(section)
    if not items:
        return ["no numbered question"]
    problems = []
    numbers = [n for n, _ in items]
    if numbers != list(range(1, len(items) + 1)):
        problems.append(f"questions numbered {numbers}")
    for n, item in items:
        answers = list(ANSWER.finditer(item))
        openers = OPENER.findall(item)
        if len(answers) != 1 or len(openers) != 1:
            problems.append(
                f"question {n}: {len(answers)} answer dropdown(s), {len(openers)} opener(s)"
            )
            continue
        body = " ".join(answers[0]["body"].split())
        if len(body) < MIN_ANSWER_CHARS:
            problems.append(f"question {n}: answer too short: {body!r}")
        if re.search(r"^\s*:open:", answers[0]["body"], re.MULTILINE):
            problems.append(f"question {n}: the answer is open by default")
        if not item[len(f"{n}. "): answers[0].start()].strip():
            problems.append(f"question {n}: no question text before the answer")
        if item[answers[0].end():].strip():
            problems.append(f"question {n}: text after the answer, which belongs last")
    return problems


@pytest.mark.parametrize("name", CHAPTERS)
def test_every_question_has_an_answer_in_the_source(name: str) -> None:
    problems = source_problems(check_yourself_section(chapter_source(name)))
    assert not problems, f"{name}: " + "; ".join(problems)


def test_the_source_check_catches_a_missing_answer() -> None:
    good = (
        "1. First question?\n\n   :::{dropdown} Answer\n"
        "   An answer long enough to count as one, with a reason.\n   :::\n\n"
        "2. Second question?\n\n   :::{dropdown} Answer\n"
        "   Another answer long enough to count as one, with a reason.\n   :::\n"
    )
    assert source_problems(good) == []
    without_second = good[: good.index("2. ")] + "2. Second question?\n"
    assert source_problems(without_second) == ["question 2: 0 answer dropdown(s), 0 opener(s)"]
    empty = good.replace("   Another answer long enough to count as one, with a reason.\n", "")
    assert any("too short" in p for p in source_problems(empty))
    unclosed = good.replace("with a reason.\n   :::\n\n2.", "with a reason.\n\n2.")
    assert source_problems(unclosed)
    opened = good.replace("   :::{dropdown} Answer\n", "   :::{dropdown} Answer\n   :open:\n\n", 1)
    assert source_problems(opened) == ["question 1: the answer is open by default"]
    assert source_problems("no list here\n") == ["no numbered question"]


def test_every_chapter_with_questions_is_checked() -> None:
    """A new chapter with a Check yourself section must be added to CHAPTERS."""
    found = set()
    for path in BOOK.iterdir():
        if path.suffix in (".md", ".ipynb") and HEADING + "\n" in chapter_source(path.stem):
            found.add(path.stem)
    assert found == set(CHAPTERS)


# --- the built pages --------------------------------------------------------------------

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr"}


@dataclass
class Node:
    tag: str
    attrs: dict[str, str | None]
    children: list[Node | str] = field(default_factory=list)

    def elements(self) -> list[Node]:
        return [c for c in self.children if isinstance(c, Node)]

    def find_all(self, pred) -> list[Node]:
        out = []
        for child in self.elements():
            if pred(child):
                out.append(child)
            out.extend(child.find_all(pred))
        return out

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    def has_class(self, name: str) -> bool:
        return name in (self.attrs.get("class") or "").split()


class _TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#root", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, dict(attrs))
        self.stack[-1].children.append(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Node(tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self.stack) - 1, 0, -1):
            if self.stack[i].tag == tag:
                del self.stack[i:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def parse_html(text: str) -> Node:
    builder = _TreeBuilder()
    builder.feed(text)
    builder.close()
    return builder.root


def html_problems(page: str) -> tuple[int, list[str]]:
    """(questions found, problems) for the Check yourself section of one built page."""
    root = parse_html(page)
    sections = root.find_all(lambda n: n.tag == "section" and n.attrs.get("id") == "check-yourself")
    if len(sections) != 1:
        return 0, [f"{len(sections)} check-yourself section(s)"]
    lists = [n for n in sections[0].elements() if n.tag == "ol"]
    if len(lists) != 1:
        return 0, [f"{len(lists)} numbered list(s) in the section"]
    items = [n for n in lists[0].elements() if n.tag == "li"]
    problems = []
    for i, item in enumerate(items, 1):
        dropdowns = item.find_all(lambda n: n.tag == "details" and n.has_class("sd-dropdown"))
        if len(dropdowns) != 1:
            problems.append(f"question {i}: {len(dropdowns)} dropdown(s)")
            continue
        details = dropdowns[0]
        if "open" in details.attrs:
            problems.append(f"question {i}: the answer is open by default")
        summaries = [n for n in details.elements() if n.tag == "summary"]
        if len(summaries) != 1 or summaries[0].text().strip() != "Answer":
            problems.append(f"question {i}: no 'Answer' summary")
        body = " ".join("".join(c if isinstance(c, str) else c.text()
                                for c in details.children
                                if all(c is not s for s in summaries)).split())
        if len(body) < MIN_ANSWER_CHARS:
            problems.append(f"question {i}: empty answer {body!r}")
        question = " ".join("".join(c if isinstance(c, str) else c.text()
                                    for c in item.children if c is not details).split())
        if not question:
            problems.append(f"question {i}: no question text before the answer")
    return len(items), problems


@pytest.mark.parametrize("name", CHAPTERS)
def test_every_question_has_a_closed_answer_in_the_built_page(built_book: Path, name: str) -> None:
    page = (built_book / "book" / f"{name}.html").read_text(encoding="utf-8")
    found, problems = html_problems(page)
    expected = len(questions(check_yourself_section(chapter_source(name))))
    assert found == expected, f"{name}: {found} questions in the page, {expected} in the source"
    assert not problems, f"{name}: " + "; ".join(problems)


def test_the_html_check_catches_a_missing_or_open_answer() -> None:
    answer = ('<details class="sd-sphinx-override sd-dropdown sd-card"><summary>Answer'
              '<svg><path d="M0"/></svg></summary><div><p>An answer long enough to count as '
              'one, with a reason.</p></div></details>')
    page = ('<section id="check-yourself"><h2>Check yourself</h2><ol class="arabic">'
            '<li><p>First?</p>' + answer + '</li><li><p>Second?</p>SECOND</li></ol></section>')
    assert html_problems(page.replace("SECOND", answer)) == (2, [])
    assert html_problems(page.replace("SECOND", "")) == (2, ["question 2: 0 dropdown(s)"])
    opened = page.replace("SECOND", answer.replace("<details ", "<details open "))
    assert html_problems(opened) == (2, ["question 2: the answer is open by default"])
    empty = page.replace("SECOND", answer.replace(
        "An answer long enough to count as one, with a reason.", ""))
    assert html_problems(empty) == (2, ["question 2: empty answer ''"])
    assert html_problems("<p>no section</p>") == (0, ["0 check-yourself section(s)"])
