"""Build the book, and the small helpers its notebooks share.

Command line (``make book`` runs the first)::

    python -m khttpd_py.booktools build     # vendor the JS if missing, then jupyter-book build
    python -m khttpd_py.booktools vendor    # only fetch the JS into book/_vendor/
    python -m khttpd_py.booktools clean     # remove _build/ (the execution cache included)

The built site must make no request to another host, so everything a page
loads is copied into ``book/_vendor/`` (served as ``_static/`` through
``html_static_path``; see ``_config.yml``):

* ``require.js`` and ``widgets/embed-amd.js`` (``@jupyter-widgets/html-manager``):
  the ipywidgets embed manager that renders the widget state saved in a page;
* ``mathjax/`` (MathJax 3, for ``$...$`` in the text);
* ``plotly.min.js``: copied from the installed ``plotly`` package, loaded
  once per page by :func:`show_plotly`.

The first three come from the npm registry with ``npm pack`` (no
``node_modules``, no install scripts).  The folder must not be ``_static/``:
Jupyter Book 1 injects every ``_static/*.js`` into every page, which would load
the widget manager twice and draw every widget twice.

Notebook helpers: :func:`show_plotly` (an interactive plotly figure that works
in JupyterLab and in the static book without any CDN) and :func:`hexdump`.
"""

from __future__ import annotations

import argparse
import html
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
"""The repository root: ``_config.yml`` and ``_toc.yml`` live here."""
VENDOR = ROOT / "book" / "_vendor"
BUILD_HTML = ROOT / "_build" / "html"

NPM_PACKAGES: dict[str, tuple[str, str, str]] = {
    # npm spec: (folder inside the tarball, destination under _vendor, a file that must exist)
    "requirejs@2.3.4": ("package/require.js", "require.js", "require.js"),
    "@jupyter-widgets/html-manager@1.0.6": ("package/dist", "widgets", "widgets/embed-amd.js"),
    "mathjax@3.2.2": ("package/es5", "mathjax/es5", "mathjax/es5/tex-chtml.js"),
}
"""Pinned JS packages and where their files go under ``book/_vendor``."""


class BookError(Exception):
    """An expected failure: printed as one clear message, no traceback."""


# --- vendoring --------------------------------------------------------------------------


def vendored(vendor: Path = VENDOR) -> bool:
    """True when every vendored file the book needs is present."""
    needed = [dest for (_, _, dest) in NPM_PACKAGES.values()] + ["plotly.min.js"]
    return all((vendor / name).is_file() for name in needed)


def _copy_plotly(vendor: Path) -> None:
    try:
        import plotly
    except ImportError as exc:  # pragma: no cover - the book extra installs it
        raise BookError("plotly is not installed; run 'make venv' (extras book,plot)") from exc
    src = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    if not src.is_file():
        raise BookError(f"plotly's bundled plotly.min.js is missing ({src})")
    shutil.copyfile(src, vendor / "plotly.min.js")


def vendor_js(vendor: Path = VENDOR, force: bool = False) -> None:
    """Fetch the pinned npm packages with ``npm pack`` and unpack them into ``vendor``."""
    vendor.mkdir(parents=True, exist_ok=True)
    if not (vendor / "plotly.min.js").is_file() or force:
        _copy_plotly(vendor)
    missing = {spec: v for spec, v in NPM_PACKAGES.items() if force or not (vendor / v[2]).is_file()}
    if not missing:
        return
    npm = shutil.which("npm")
    if npm is None:
        raise BookError(
            "npm is needed once to fetch the book's JavaScript (the widget manager, require.js, "
            "MathJax) into book/_vendor/.\n"
            "  Debian/Ubuntu: sudo apt-get install nodejs npm\n"
            "  elsewhere:     install Node.js from https://nodejs.org/ (it includes npm)\n"
            "then run 'make book' again."
        )
    with tempfile.TemporaryDirectory(prefix="khttpd-book-npm-") as tmp:
        tmpdir = Path(tmp)
        print(f"booktools: npm pack {' '.join(missing)}", flush=True)
        proc = subprocess.run(
            [npm, "pack", "--silent", *missing], cwd=tmpdir, capture_output=True, text=True
        )
        if proc.returncode != 0:
            raise BookError(
                "npm pack failed (is the npm registry reachable?):\n" + proc.stderr.strip()
            )
        tarballs = sorted(tmpdir.glob("*.tgz"))
        for spec, (inner, dest, check) in missing.items():
            name = spec.rsplit("@", 1)[0].lstrip("@").replace("/", "-")
            version = spec.rsplit("@", 1)[1]
            tgz = next((t for t in tarballs if t.name == f"{name}-{version}.tgz"), None)
            if tgz is None:
                raise BookError(f"npm pack did not produce the tarball for {spec}")
            unpack = tmpdir / name
            with tarfile.open(tgz) as tar:
                tar.extractall(unpack, filter="data")
            src = unpack / inner
            target = vendor / dest
            if target.exists():
                shutil.rmtree(target) if target.is_dir() else target.unlink()
            target.parent.mkdir(parents=True, exist_ok=True)
            if src.is_dir():
                shutil.copytree(src, target)
            else:
                shutil.copyfile(src, target)
            if not (vendor / check).is_file():
                raise BookError(f"{spec}: expected {check} in the package, not found")


# --- building ---------------------------------------------------------------------------


_JB_MAIN = (
    "import sys; from jupyter_book.cli.main import main; "
    "sys.argv[0] = 'jupyter-book'; sys.exit(main())"
)
"""``jupyter_book.cli.main`` has no ``__main__`` guard, so run its ``main`` explicitly."""


def build(root: Path = ROOT, quiet: bool = False) -> Path:
    """Vendor the JS if needed and run ``jupyter-book build`` with warnings as errors."""
    try:
        import jupyter_book  # noqa: F401
    except ImportError as exc:
        raise BookError(
            "jupyter-book is not installed in this Python; run 'make book' (it creates .venv "
            "with the book extra) or: pip install -e '.[book]'"
        ) from exc
    if not (root / "_config.yml").is_file() or not (root / "_toc.yml").is_file():
        raise BookError(f"no _config.yml/_toc.yml in {root}")
    vendor_js(root / "book" / "_vendor")
    cmd = [
        sys.executable, "-c", _JB_MAIN, "build", str(root),
        "-W", "-n", "--keep-going", "--builder", "html",
    ]
    if quiet:
        cmd.append("--quiet")
    print("booktools: jupyter-book " + " ".join(cmd[3:]), flush=True)
    start = time.monotonic()
    proc = subprocess.run(cmd, cwd=root)
    elapsed = time.monotonic() - start
    index = root / "_build" / "html" / "index.html"
    if proc.returncode != 0:
        reports = root / "_build" / "html" / "reports"
        hint = f"\n  notebook tracebacks: {reports}/" if reports.is_dir() else ""
        raise BookError(
            f"the book build failed (exit {proc.returncode} after {elapsed:.0f} s); "
            "warnings count as errors, see the messages above." + hint
        )
    if not index.is_file():
        raise BookError(f"the build reported success but {index} is missing")
    print(f"booktools: built in {elapsed:.0f} s -> {index}")
    return index


def clean(root: Path = ROOT) -> None:
    """Remove ``_build/`` (pages and the notebook execution cache)."""
    shutil.rmtree(root / "_build", ignore_errors=True)
    print(f"booktools: removed {root / '_build'}")


# --- notebook helpers -------------------------------------------------------------------

_LOADER = """(function () {
  var draw = function () { %(draw)s };
  if (window.Plotly) { draw(); return; }
  var q = (window.__khttpdPlotlyQueue = window.__khttpdPlotlyQueue || []);
  q.push(draw);
  if (q.length > 1) { return; }
  var root = document.documentElement.getAttribute("data-content_root") || "../";
  var s = document.createElement("script");
  s.src = root + "_static/plotly.min.js";
  s.onload = function () { while (q.length) { (q.shift())(); } };
  document.head.appendChild(s);
})();"""


class PlotlyFigure:
    """A plotly figure for both worlds: JupyterLab and the static book.

    JupyterLab renders the ``application/vnd.plotly.v1+json`` part with its
    plotly extension.  The book (myst-nb prefers ``text/html``) gets a ``div``
    and a script that loads the vendored ``_static/plotly.min.js`` once per page
    and draws the figure, sliders and dropdowns included; nothing comes from a
    CDN, unlike plotly's own HTML renderers, which add a MathJax CDN script.
    """

    def __init__(self, fig, height: int | None = None) -> None:
        self.fig = fig
        self.height = height or fig.layout.height or 480

    def _repr_mimebundle_(self, include=None, exclude=None):
        spec = json.loads(self.fig.to_json())
        config = {"responsive": True, "displaylogo": False}
        div_id = "khttpd-fig-" + uuid.uuid4().hex[:12]
        draw = (
            f"var gd = document.getElementById({json.dumps(div_id)}); if (!gd) return; "
            f"var spec = {json.dumps(spec)}; "
            f"Plotly.newPlot(gd, spec.data, spec.layout, {json.dumps(config)})"
            ".then(function () { if (spec.frames) { return Plotly.addFrames(gd, spec.frames); } });"
        )
        body = (
            f'<div id="{div_id}" class="plotly-graph-div khttpd-figure" '
            f'style="height:{int(self.height)}px; width:100%;"></div>\n'
            f"<script>{_LOADER % {'draw': draw}}</script>"
        )
        title = self.fig.layout.title.text or "figure"
        return {
            "application/vnd.plotly.v1+json": {**spec, "config": config},
            "text/html": body,
            "text/plain": f"<plotly figure: {html.escape(title)}>",
        }


def show_plotly(fig, height: int | None = None) -> PlotlyFigure:
    """Return an object that displays ``fig`` interactively in JupyterLab and in the book."""
    return PlotlyFigure(fig, height)


def hexdump(data: bytes, width: int = 16) -> str:
    """``hexdump -C``-style lines: offset, hex bytes, printable characters."""
    lines = []
    for off in range(0, len(data), width):
        chunk = data[off : off + width]
        hexes = " ".join(f"{b:02x}" for b in chunk)
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{off:08x}  {hexes:<{width * 3 - 1}}  |{text}|")
    return "\n".join(lines)


# --- command line -----------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m khttpd_py.booktools", description="build the khttpd book"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p_build = sub.add_parser("build", help="vendor the JS if missing, then build _build/html")
    p_build.add_argument("--quiet", action="store_true", help="pass --quiet to jupyter-book")
    p_vendor = sub.add_parser("vendor", help="fetch the pinned JS into book/_vendor/")
    p_vendor.add_argument("--force", action="store_true", help="fetch again even if present")
    sub.add_parser("clean", help="remove _build/")
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
            index = build(quiet=args.quiet)
            print(f"The book is at file://{index}  (or: make serve-book)")
        elif args.command == "vendor":
            vendor_js(force=args.force)
            print(f"booktools: vendored JS in {VENDOR}")
        else:
            clean()
    except BookError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
