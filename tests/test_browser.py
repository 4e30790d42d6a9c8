"""Open the built book in a real browser: no errors, no other host, the controls work.

Debian's ``chromium`` (``apt-get install -y chromium``) driven by Playwright's Python
package; ``playwright install`` is never needed.  Screenshots of every page go to
``_build/screenshots/``.  Skipped, with the reason, when chromium or Playwright is
missing.
"""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urljoin, urlparse

import pytest
from toc import toc_files

from khttpd_py import booktools

ROOT = Path(__file__).resolve().parent.parent
HTML = ROOT / "_build" / "html"
SHOTS = ROOT / "_build" / "screenshots"
CHROMIUM = "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else shutil.which("chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]

pytestmark = pytest.mark.slow

sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is missing")
if not CHROMIUM:
    pytest.skip("chromium is missing (Debian: apt-get install -y chromium)",
                allow_module_level=True)


def _stale() -> bool:
    index = HTML / "index.html"
    if not index.is_file():
        return True
    built = index.stat().st_mtime
    sources = [ROOT / "_config.yml", ROOT / "_toc.yml", *(ROOT / "book").glob("*.*")]
    return any(p.stat().st_mtime > built for p in sources if p.is_file())


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    """The built book served on an ephemeral 127.0.0.1 port (built first if stale)."""
    if _stale():
        try:
            booktools.build(quiet=True)
        except booktools.BookError as exc:
            pytest.fail(f"the book does not build: {exc}")
    handler = functools.partial(_QuietHandler, directory=str(HTML))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


class PageWatch:
    """A page plus everything that went wrong on it."""

    def __init__(self, browser: object, base: str) -> None:
        self.host = urlparse(base).netloc
        self.page = browser.new_page(viewport={"width": 1280, "height": 900})
        self.errors: list[str] = []
        self.failed: list[str] = []
        self.foreign: list[str] = []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))
        self.page.on("request", self._request)
        self.page.on("requestfailed", lambda r: self.failed.append(f"{r.url} ({r.failure})"))
        self.page.on("response", self._response)

    def _console(self, msg: object) -> None:
        if msg.type == "error":
            self.errors.append(f"console: {msg.text}")

    def _request(self, req: object) -> None:
        parsed = urlparse(req.url)
        if parsed.scheme in ("http", "https", "ws", "wss") and parsed.netloc != self.host:
            self.foreign.append(req.url)

    def _response(self, resp: object) -> None:
        if resp.status >= 400:
            self.failed.append(f"{resp.url} (HTTP {resp.status})")

    def assert_clean(self, name: str) -> None:
        assert not self.foreign, f"{name}: requests to other hosts: {self.foreign}"
        assert not self.failed, f"{name}: failed requests: {self.failed}"
        assert not self.errors, f"{name}: console errors: {self.errors}"


def _open(browser: object, site: str, page: str) -> PageWatch:
    watch = PageWatch(browser, site)
    watch.page.goto(f"{site}/{page}.html", wait_until="networkidle")
    watch.page.wait_for_timeout(800)  # widgets render after load
    return watch


@pytest.mark.parametrize("page", toc_files())
def test_page_loads_cleanly(browser: object, site: str, page: str) -> None:
    watch = _open(browser, site, page)
    try:
        SHOTS.mkdir(parents=True, exist_ok=True)
        watch.page.screenshot(path=str(SHOTS / f"{Path(page).name}.png"), full_page=True)
        watch.assert_clean(page)
        assert watch.page.locator("main h1").count() >= 1, f"{page}: no heading rendered"
        if page.endswith(("02-one-thread-per-connection", "03-cmwq")):
            # every precomputed figure was drawn, and the widget manager rendered widgets
            figs = watch.page.locator("div.khttpd-figure")
            assert figs.count() >= 2
            for i in range(figs.count()):
                assert figs.nth(i).locator(".main-svg").count() >= 1, f"{page}: figure {i} empty"
            # the live explorer is a button (frozen widgets are no longer on the page)
            assert watch.page.locator(".khttpd-live button.khttpd-live-run").count() == 1
            assert watch.page.locator(".widget-slider").count() == 0, "a frozen widget is shown"
        if page.endswith("02-one-thread-per-connection"):
            assert watch.page.locator("mjx-container").count() >= 1, "MathJax did not typeset"
    finally:
        watch.page.close()


def _title(fig: object) -> str:
    return fig.locator(".gtitle").first.text_content() or ""


def test_pid_slider_changes_the_figure(browser: object, site: str) -> None:
    watch = _open(browser, site, "book/02-one-thread-per-connection")
    try:
        fig = watch.page.locator("div.khttpd-figure").first
        fig.scroll_into_view_if_needed()
        before = _title(fig)
        assert "64 CPU(s)" in before
        rail = fig.locator(".slider-rail-touch-rect").first
        box = rail.bounding_box()
        assert box, "no slider in the PID figure"
        watch.page.mouse.click(box["x"] + 3, box["y"] + box["height"] / 2)  # leftmost: 1 CPU
        watch.page.wait_for_timeout(500)
        after = _title(fig)
        assert after != before and after.startswith("1 CPU(s)"), (before, after)
        SHOTS.mkdir(parents=True, exist_ok=True)
        fig.screenshot(path=str(SHOTS / "02-pid-slider-moved.png"))
        watch.assert_clean("pid slider")
    finally:
        watch.page.close()


def test_model_dropdown_changes_the_gantt_chart(browser: object, site: str) -> None:
    watch = _open(browser, site, "book/02-one-thread-per-connection")
    try:
        fig = watch.page.locator("div.khttpd-figure").nth(1)
        fig.scroll_into_view_if_needed()
        before = _title(fig)
        assert "legacy-st" in before
        fig.locator(".updatemenu-header-group").first.click()
        watch.page.wait_for_timeout(300)
        fig.locator(".updatemenu-dropdown-button", has_text="cmwq").first.click()
        watch.page.wait_for_timeout(500)
        after = _title(fig)
        assert "cmwq" in after and after != before, (before, after)
        fig.screenshot(path=str(SHOTS / "02-gantt-cmwq.png"))
        watch.assert_clean("model dropdown")
    finally:
        watch.page.close()


def test_explorer_menus_change_the_figure(browser: object, site: str) -> None:
    watch = _open(browser, site, "book/03-cmwq")
    try:
        explorer = watch.page.locator("div.khttpd-explorer").first
        explorer.scroll_into_view_if_needed()
        fig = explorer.locator("div.khttpd-figure")
        before = _title(fig)
        selects = explorer.locator("select.khttpd-choice")
        selects.nth(2).select_option("3")  # max_active 1 -> 3
        watch.page.wait_for_timeout(500)
        after = _title(fig)
        assert after != before and "max_active 3" in after, (before, after)
        explorer.screenshot(path=str(SHOTS / "03-explorer-max-active-3.png"))
        watch.assert_clean("explorer")
    finally:
        watch.page.close()


# --- the live site (JupyterLite): Python in the reader's browser -------------------------

KERNEL_START_MS = 180_000
"""Pyodide's start, with every preloaded wheel: ~20 s here, more on a busy CI machine."""


def _frame_text(watch: PageWatch) -> str:
    return watch.page.frame_locator(".khttpd-live-frame").locator("body").inner_text()


def _wait_frame_text(watch: PageWatch, text: str, timeout: int = 30_000) -> None:
    """Wait until the embedded live frame shows ``text``."""
    watch.page.wait_for_function(
        "(t) => document.querySelector('.khttpd-live-frame').contentDocument.body"
        ".innerText.includes(t)", arg=text, timeout=timeout)


def _run_live(watch: PageWatch) -> None:
    """Press the page's Run-live button and wait until the embedded REPL shows output."""
    box = watch.page.locator(".khttpd-live").first
    box.scroll_into_view_if_needed()
    box.locator("button.khttpd-live-run").click()
    watch.page.wait_for_function(
        "document.querySelector('.khttpd-live-status').textContent.startsWith('Running')",
        timeout=KERNEL_START_MS,
    )


def test_live_simulator_explorer_reruns_the_simulator(browser: object, site: str) -> None:
    """Chapter 3's button: the explorer starts in scenario B's state; max_active 1 -> A."""
    watch = _open(browser, site, "book/03-cmwq")
    try:
        _run_live(watch)
        frame = watch.page.frame_locator(".khttpd-live-frame")
        frame.locator(".js-plotly-plot").first.wait_for(timeout=30_000)
        assert "done at 25 ms" in _frame_text(watch), "the explorer did not start in scenario B"
        handle = frame.locator(".widget-slider .noUi-handle").first  # max_active
        handle.focus()
        handle.press("ArrowRight")
        _wait_frame_text(watch, "done at 50 ms")
        watch.page.locator(".khttpd-live-frame").screenshot(path=str(SHOTS / "03-live.png"))
        watch.assert_clean("live simulator explorer")
    finally:
        watch.page.close()


def test_live_pid_budget_explorer_answers(browser: object, site: str) -> None:
    watch = _open(browser, site, "book/02-one-thread-per-connection")
    try:
        _run_live(watch)
        _wait_frame_text(watch, "PID")
        text = _frame_text(watch)
        assert "threads = 64 x 100 + 20 = 6420" in text, text[-800:]
        watch.assert_clean("live pid explorer")
    finally:
        watch.page.close()


def test_repl_link_runs_code_with_the_simulator(browser: object, site: str) -> None:
    """Any page or reader can link to a ready command: lite/repl/?kernel=python&code=..."""
    code = ("from khttpd_py.sim import simulate\n"
            "print('makespan', simulate('doc-c').stats['makespan_ms'])")
    watch = PageWatch(browser, site)
    try:
        watch.page.goto(f"{site}/lite/repl/index.html?kernel=python&code={quote(code)}")
        watch.page.wait_for_function("document.body.innerText.includes('makespan 35')",
                                     timeout=KERNEL_START_MS)
        watch.assert_clean("repl link")
    finally:
        watch.page.close()


_KERNEL_IDLE = """() => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
  return k && k.status === 'idle'; }"""


def _run_last_cell(page: object) -> str:
    page.evaluate("window.jupyterapp.commands.execute('docmanager:save')")
    page.wait_for_timeout(1500)
    page.evaluate("""() => { const nb = window.jupyterapp.shell.currentWidget.content;
      nb.activeCellIndex = nb.widgets.length - 1;
      return window.jupyterapp.commands.execute('notebook:run-cell'); }""")
    page.wait_for_function("document.body.innerText.includes('public tests:')", timeout=120_000)
    return page.locator(".jp-OutputArea-output").last.inner_text()


@pytest.mark.parametrize("name", ["01-response-bytes", "03-cm-rules"])
def test_exercise_runs_its_public_checks_in_the_browser(
    browser: object, site: str, name: str
) -> None:
    """An exercise opened live from its page: the starter scores 0 of the public points, the
    solution (typed into its cells) all of them, and the work survives a reload."""
    import json as _json

    from exercises import catalog

    source = ROOT / "exercises" / name / "exercise.ipynb"
    solutions = ["".join(c["source"]) for c in _json.loads(source.read_text())["cells"]
                 if "solution" in c["metadata"].get("tags", [])]
    points = catalog.collect_points([catalog.load_exercise(source.parent)])[name]
    public = sum(int(t["points"]) for t in points if t["kind"] == "public")
    watch = _open(browser, site, f"book/exercises/{name}")
    try:
        link = watch.page.locator("a.khttpd-live-link")
        assert link.count() == 1, "the exercise page has no live link"
        watch.page.goto(urljoin(watch.page.url, link.get_attribute("href")))
        page = watch.page
        page.wait_for_function(_KERNEL_IDLE, timeout=KERNEL_START_MS)
        starter = _run_last_cell(page)
        assert f"public tests: 0/{public} points" in starter, starter[-600:]
        set_count = page.evaluate("""(sols) => {
          const nb = window.jupyterapp.shell.currentWidget.content; let k = 0;
          for (const c of nb.widgets) {
            if ((c.model.getMetadata('tags') || []).includes('solution')) {
              c.model.sharedModel.setSource(sols[k++]); } }
          return k; }""", solutions)
        assert set_count == len(solutions)
        solved = _run_last_cell(page)
        assert f"public tests: {public}/{public} points" in solved, solved[-600:]
        page.reload()
        page.wait_for_function(_KERNEL_IDLE, timeout=KERNEL_START_MS)
        kept = page.evaluate("""() => window.jupyterapp.shell.currentWidget.content.widgets
          .map(c => c.model.sharedModel.getSource()).join('\\n')""")
        assert "### BEGIN SOLUTION" in kept, "the browser did not keep the saved notebook"
        watch.assert_clean("live exercise")
    finally:
        watch.page.close()
