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
from urllib.parse import urlparse

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
            assert watch.page.locator(".widget-slider, .jupyter-widgets").count() >= 1
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
