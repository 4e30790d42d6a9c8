"""Build the book, and the small helpers its notebooks share.

Command line (``make book`` runs the first)::

    python -m khttpd_py.booktools build     # exercise pages, vendor the JS if missing, then
                                            # jupyter-book build
    python -m khttpd_py.booktools vendor    # only fetch the JS into book/_vendor/
    python -m khttpd_py.booktools lite      # only the live site (JupyterLite) of a built book
    python -m khttpd_py.booktools clean     # remove _build/ (the execution cache included)
    python -m khttpd_py.booktools store-outputs book/02-*.ipynb   # after editing a chapter

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
import hashlib
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
"""``static/`` is served as ``_static/`` (html_static_path), ``root/`` at the site's root."""
BUILD_HTML = ROOT / "_build" / "html"

NPM_PACKAGES: dict[str, tuple[str, str, str]] = {
    # npm spec: (folder inside the tarball, destination under _vendor, a file that must exist)
    "requirejs@2.3.4": ("package/require.js", "require.js", "require.js"),
    "@jupyter-widgets/html-manager@1.0.6": ("package/dist", "widgets", "widgets/embed-amd.js"),
    "mathjax@3.2.2": ("package/es5", "mathjax/es5", "mathjax/es5/tex-chtml.js"),
}
"""Pinned JS packages and where their files go under ``book/_vendor``."""

WIDGETS_CONFIG_JS = """\
/* khttpd-book: settings for the ipywidgets embed manager, written by khttpd_py.booktools.
   Loaded between require.js and widgets/embed-amd.js, on pages with widgets only. */
(function () {
  var root = document.documentElement.getAttribute("data-content_root") || "";
  /* where the manager loads its lazily loaded files from */
  window.__jupyter_widgets_assets_path__ = root + "_static/widgets/";
  /* The manager typesets labels with MathJax 2's MathJax.Hub.Queue whenever window.MathJax
     exists; the book loads MathJax 3, which has no Hub.  Give the real MathJax 3 object
     (the one with a version) a Hub.Queue that calls typesetPromise. */
  var current = window.MathJax;
  var withHub = function (mj) {
    if (mj && mj.version && !mj.Hub) {
      mj.Hub = {Queue: function () { if (mj.typesetPromise) { mj.typesetPromise(); } }};
    }
    return mj;
  };
  try {
    Object.defineProperty(window, "MathJax", {
      configurable: true,
      get: function () { return withHub(current); },
      set: function (value) { current = value; }
    });
  } catch (e) { /* leave MathJax alone */ }
})();
"""
"""Asset path for the manager's lazily loaded files.

Its CSS resolves the icon fonts before reading this, against the page's folder
(``book/@jupyter-widgets/`` or ``book/@jupyter-widgets/html-manager/dist/``), so
:func:`vendor_js` also puts a copy of the fonts there, through ``html_extra_path``
(``book/_vendor/root``).
"""

FONT_SUFFIXES = (".woff2", ".woff", ".ttf", ".eot", ".svg")


class BookError(Exception):
    """An expected failure: printed as one clear message, no traceback."""


# --- vendoring --------------------------------------------------------------------------


def vendored(vendor: Path = VENDOR) -> bool:
    """True when every vendored file the book needs is present."""
    needed = [dest for (_, _, dest) in NPM_PACKAGES.values()]
    needed += ["plotly.min.js", "widgets-config.js"]
    return all((vendor / "static" / name).is_file() for name in needed)


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
    root_dir = vendor / "root"
    vendor = vendor / "static"
    vendor.mkdir(parents=True, exist_ok=True)
    config_js = vendor / "widgets-config.js"
    if not config_js.is_file() or config_js.read_text() != WIDGETS_CONFIG_JS:
        config_js.write_text(WIDGETS_CONFIG_JS)
    if not (vendor / "plotly.min.js").is_file() or force:
        _copy_plotly(vendor)
    missing = {
        spec: v for spec, v in NPM_PACKAGES.items() if force or not (vendor / v[2]).is_file()
    }
    if missing:
        _npm_pack(vendor, missing)
    # the widget CSS asks for its fonts relative to the page, under one of these two folders
    for sub in ("@jupyter-widgets", "@jupyter-widgets/html-manager/dist"):
        fonts = root_dir / "book" / sub
        fonts.mkdir(parents=True, exist_ok=True)
        for font in (vendor / "widgets").iterdir():
            if font.suffix in FONT_SUFFIXES and not (fonts / font.name).is_file():
                shutil.copyfile(font, fonts / font.name)


def _npm_pack(vendor: Path, missing: dict[str, tuple[str, str, str]]) -> None:
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


SOURCES_STAMP = Path("_build") / ".khttpd-sources"
"""Digest of the code and data the chapters run, as of the last successful build."""


def sources_digest(root: Path = ROOT) -> str:
    """A digest of what the chapters' code cells import and read: ``khttpd_py`` and ``book/data``.

    jupyter-cache keys a notebook on its code cells only, and Sphinx re-reads a
    page only when its own file changes; a fix in ``khttpd_py`` would otherwise
    leave every page showing the outputs of the old code.
    """
    digest = hashlib.sha256()
    files = sorted(
        [p for p in (root / "khttpd_py").rglob("*.py") if "__pycache__" not in p.parts]
        + [p for p in (root / "book" / "data").rglob("*") if p.is_file()]
    )
    for path in files:
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def drop_stale_outputs(root: Path = ROOT) -> bool:
    """Forget executed outputs made by other code than this tree's; True if it did.

    Removes the execution cache and Sphinx's doctrees when the digest of the
    last successful build differs (or was never recorded next to a cache), so
    every notebook runs again (a cold build).
    """
    stamp = root / SOURCES_STAMP
    cached = (root / "_build" / ".jupyter_cache").exists()
    if not cached and not stamp.is_file():
        return False  # a first build: nothing executed yet
    if stamp.is_file() and stamp.read_text(encoding="utf-8").strip() == sources_digest(root):
        return False
    for name in (".jupyter_cache", ".doctrees", "jupyter_execute"):
        shutil.rmtree(root / "_build" / name, ignore_errors=True)
    print("booktools: khttpd_py or book/data changed since the last build: "
          "re-executing every notebook", flush=True)
    return True


def build(root: Path = ROOT, quiet: bool = False) -> Path:
    """Write the exercise pages (:mod:`khttpd_py.exercise_pages`), vendor the JS if needed,
    and run ``jupyter-book build`` with warnings as errors."""
    try:
        import jupyter_book  # noqa: F401
    except ImportError as exc:
        raise BookError(
            "jupyter-book is not installed in this Python; run 'make book' (it creates .venv "
            "with the book extra) or: pip install -e '.[book]'"
        ) from exc
    if not (root / "_config.yml").is_file() or not (root / "_toc.yml").is_file():
        raise BookError(f"no _config.yml/_toc.yml in {root}")
    from khttpd_py import exercise_pages  # needs the exercises package: only when building

    try:
        pages = exercise_pages.generate(root)
    except exercise_pages.ExercisePageError as exc:
        raise BookError(str(exc)) from None
    print(f"booktools: {len(pages) - 1} exercise pages in {root / exercise_pages.PAGES}",
          flush=True)
    vendor_js(root / "book" / "_vendor")
    drop_stale_outputs(root)
    digest = sources_digest(root)
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
    (root / SOURCES_STAMP).write_text(digest + "\n", encoding="utf-8")
    build_live_site(root)
    return index


def build_live_site(root: Path = ROOT) -> Path:
    """The JupyterLite site the pages' *Run live* buttons open (``_build/html/lite/``)."""
    from khttpd_py import lite

    html_dir = root / "_build" / "html"
    try:
        out = lite.build_site(root, html_dir / "lite")
    except lite.LiteError as exc:
        raise BookError(f"the live site: {exc}") from None
    # Browsers ask the site's root for /favicon.ico on the lite pages: give them one.
    favicon = out / "lab" / "favicon.ico"
    if favicon.is_file():
        shutil.copyfile(favicon, html_dir / "favicon.ico")
    return out


def store_outputs(notebooks: list[Path]) -> None:
    """Execute each notebook in place and keep only the outputs nbval checks.

    Cells tagged ``nbval-check-output`` keep their (deterministic) outputs so
    ``pytest --nbval-lax`` has something to compare; every other output (timings,
    figures, widgets) is dropped: the book executes the notebooks at build time.
    """
    import nbformat

    for path in notebooks:
        if not path.is_file():
            raise BookError(f"no such notebook: {path}")
        proc = subprocess.run(
            [sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute",
             "--inplace", "--ExecutePreprocessor.timeout=600", str(path)],
            capture_output=True, text=True,
        )
        if proc.returncode != 0:
            raise BookError(f"{path.name} failed to execute:\n{proc.stderr.strip()[-2000:]}")
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            cell.metadata.pop("execution", None)  # timestamps: noise in every diff
            if cell.cell_type == "code" and "nbval-check-output" not in cell.metadata.get(
                "tags", []
            ):
                cell.outputs = []
        nb.metadata.pop("widgets", None)
        nbformat.write(nb, path)
        print(f"booktools: stored the checked outputs of {path}")


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
  s.onerror = function () {
    document.querySelectorAll(".khttpd-figure:empty").forEach(function (d) {
      d.style.height = "auto";
      d.textContent = "(This precomputed figure needs the built book's plotly.js; "
        + "in JupyterLab use the live widget next to it.)";
    });
  };
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



# --- figures shared by the chapters -----------------------------------------------------

GANTT_COLORS = {
    "burn": "#d62728",  # on a CPU
    "sleep": "#9ecae1",  # blocked (I/O, a lock, a sleep)
    "wait": "#fdae6b",  # runnable, waiting for a CPU
    "queued": "#d9d9d9",  # queued, no worker yet (or inactive past max_active)
}
GANTT_LABELS = {
    "burn": "running on a CPU",
    "sleep": "sleeping (blocked)",
    "wait": "runnable, waiting for the CPU",
    "queued": "queued, waiting for a worker",
}


def gantt_traces(result, legend: bool = True) -> list[dict]:
    """Plotly bar traces (one per segment kind), as plain dicts, drawing ``result``'s segments.

    y is the work item, x is simulated time in ms; a running segment is labelled with
    the worker that runs it, and hovering shows worker and CPU.  Plain dicts, not
    ``plotly.graph_objects``, because the explorers build dozens of figures and
    validation would dominate the time.
    """
    traces = []
    for kind in ("burn", "sleep", "wait", "queued"):
        segs = [s for s in result.segments if s.kind == kind]
        if not segs:
            continue
        traces.append(
            {
                "type": "bar",
                "name": GANTT_LABELS[kind],
                "orientation": "h",
                "y": [s.work for s in segs],
                "base": [s.start for s in segs],
                "x": [s.end - s.start for s in segs],
                "marker": {"color": GANTT_COLORS[kind], "line": {"width": 0.5, "color": "#555"}},
                "text": [s.worker if kind == "burn" else "" for s in segs],
                "textposition": "inside",
                "insidetextanchor": "middle",
                "textangle": 0,
                "customdata": [
                    [s.worker or "-", "-" if s.cpu is None else s.cpu, s.start, s.end] for s in segs
                ],
                "hovertemplate": (
                    "%{y}: " + kind + " %{customdata[2]}-%{customdata[3]} ms<br>"
                    "worker %{customdata[0]}, CPU %{customdata[1]}<extra></extra>"
                ),
                "showlegend": legend,
                "legendgroup": kind,
            }
        )
    return traces


def _legend_y(height: int, top: int, bottom: int) -> float:
    """Paper y of a legend 48 px below the plot area (below the x-axis title)."""
    return -48 / max(height - top - bottom, 50)


def gantt_layout(result, title: str, height: int | None = None) -> dict:
    """Layout for :func:`gantt_traces`: items top to bottom in queue order, time in ms."""
    order = [w.name for w in result.scenario.works]
    height = height or max(320, 150 + 40 * len(order))
    return {
        "title": {"text": title},
        "barmode": "overlay",
        "height": height,
        "xaxis": {"title": {"text": "simulated time (ms)"}, "rangemode": "tozero"},
        "yaxis": {
            "title": {"text": "work item"},
            "categoryorder": "array",
            "categoryarray": list(reversed(order)),
        },
        "uniformtext": {"minsize": 9, "mode": "hide"},
        "legend": {"orientation": "h", "y": _legend_y(height, 60, 100), "yanchor": "top"},
        "margin": {"l": 70, "r": 20, "t": 60, "b": 100},
    }


def gantt_spec(result, title: str, height: int | None = None) -> dict:
    """A Gantt chart of one simulation result as a plotly JSON spec (data and layout)."""
    return {"data": gantt_traces(result), "layout": gantt_layout(result, title, height)}


def gantt_figure(result, title: str, height: int | None = None):
    """A plotly Gantt chart of one simulation result, as a ``plotly.graph_objects.Figure``."""
    import plotly.graph_objects as go

    return go.Figure(**gantt_spec(result, title, height))


def gantt_switch(results: dict, title: str):
    """One figure, several simulations: a drop-down menu picks which one is drawn.

    Every result's traces are in the figure and the menu toggles their
    visibility, so the choice works in a static page without a kernel.
    """
    import plotly.graph_objects as go

    fig = go.Figure()
    owners: list[int] = []
    for i, result in enumerate(results.values()):
        for trace in gantt_traces(result):
            trace["visible"] = i == 0
            fig.add_trace(trace)
            owners.append(i)
    first = next(iter(results.values()))
    height = max(gantt_layout(r, "")["height"] for r in results.values())
    fig.update_layout(gantt_layout(first, "", height))
    buttons = []
    end = max(r.stats["makespan_ms"] for r in results.values())
    for i, (name, result) in enumerate(results.items()):
        buttons.append(
            {
                "label": name,
                "method": "update",
                "args": [
                    {"visible": [o == i for o in owners]},
                    {"title.text": f"{title}: {name} "
                     f"(all done at {result.stats['makespan_ms']} ms)"},
                ],
            }
        )
    fig.update_layout(
        title={"text": f"{title}: {next(iter(results))} "
               f"(all done at {first.stats['makespan_ms']} ms)"},
        xaxis={"range": [0, end * 1.03]},
        updatemenus=[
            {
                "buttons": buttons,
                "direction": "down",
                "x": 1.0,
                "xanchor": "right",
                "y": 1.22,
                "yanchor": "top",
                "showactive": True,
            }
        ],
        margin={"t": 90},
        legend={"y": _legend_y(height, 90, 100)},
    )
    return fig


class ChoiceExplorer:
    """Precomputed figures behind HTML drop-down menus: interactive without a kernel.

    ``figures`` maps a tuple of choices (one per control, as strings) to a plotly
    figure or a ``{"data": ..., "layout": ...}`` spec; ``controls`` lists
    ``(label, [choice, ...])`` in the same order.
    The page draws the figure of the current choices with ``Plotly.react``.
    Needs the book's vendored plotly.js; in JupyterLab use the live widget.
    """

    def __init__(self, figures: dict, controls: list, height: int = 420) -> None:
        self.figures = figures
        self.controls = controls
        self.height = height

    def _repr_mimebundle_(self, include=None, exclude=None):
        uid = uuid.uuid4().hex[:12]
        specs = {
            "|".join(key): fig if isinstance(fig, dict) else json.loads(fig.to_json())
            for key, fig in self.figures.items()
        }
        selects = []
        for i, (label, choices) in enumerate(self.controls):
            options = "".join(
                f'<option value="{html.escape(c)}">{html.escape(c)}</option>' for c in choices
            )
            selects.append(
                f'<label style="margin-right:1.2em">{html.escape(label)} '
                f'<select class="khttpd-choice" data-index="{i}">{options}</select></label>'
            )
        draw = (
            f"var box = document.getElementById('khttpd-exp-{uid}'); if (!box) return; "
            f"var specs = {json.dumps(specs)}; "
            "var gd = box.querySelector('.plotly-graph-div'); "
            "var sel = box.querySelectorAll('select.khttpd-choice'); "
            "var cfg = {responsive: true, displaylogo: false}; "
            "var show = function () { var key = Array.prototype.map.call(sel, "
            "function (s) { return s.value; }).join('|'); var sp = specs[key]; "
            "if (sp) { Plotly.react(gd, sp.data, sp.layout, cfg); } }; "
            "Array.prototype.forEach.call(sel, "
            "function (s) { s.addEventListener('change', show); }); "
            "show();"
        )
        body = (
            f'<div id="khttpd-exp-{uid}" class="khttpd-explorer">'
            f'<div class="khttpd-controls" style="margin-bottom:0.5em">{"".join(selects)}</div>'
            f'<div class="plotly-graph-div khttpd-figure" '
            f'style="height:{int(self.height)}px; width:100%;"></div></div>\n'
            f"<script>{_LOADER % {'draw': draw}}</script>"
        )
        return {
            "text/html": body,
            "text/plain": f"<explorer over {', '.join(c[0] for c in self.controls)}: "
            f"{len(self.figures)} precomputed figures>",
        }


# --- command line -----------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m khttpd_py.booktools", description="build the khttpd book"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p_build = sub.add_parser("build", help="vendor the JS if missing, then build _build/html")
    p_build.add_argument("--quiet", action="store_true", help="pass --quiet to jupyter-book")
    sub.add_parser("lite", help="rebuild only the live site (_build/html/lite) of a built book")
    p_vendor = sub.add_parser("vendor", help="fetch the pinned JS into book/_vendor/")
    p_vendor.add_argument("--force", action="store_true", help="fetch again even if present")
    sub.add_parser("clean", help="remove _build/")
    p_store = sub.add_parser(
        "store-outputs", help="execute notebooks in place, keep only nbval-checked outputs"
    )
    p_store.add_argument("notebooks", nargs="+", type=Path)
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
            index = build(quiet=args.quiet)
            print(f"The book is at file://{index}  (or: make serve-book)")
        elif args.command == "lite":
            print(f"booktools: live site at {build_live_site()}")
        elif args.command == "vendor":
            vendor_js(VENDOR, force=args.force)
            print(f"booktools: vendored JS in {VENDOR}")
        elif args.command == "store-outputs":
            store_outputs(args.notebooks)
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
