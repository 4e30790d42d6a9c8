"""Sphinx extension of the khttpd book: keep every page self-contained.

* Drop sphinx-thebe's scripts: Jupyter Book 1 always loads the extension, its
  inline configuration is added twice (a console error) and names an unpkg URL;
  this book does not use thebe (``launch_buttons.thebe: false``).
* Warn (an error under ``-W``) about any script or stylesheet a page would load
  from another host.
* The ``live-repl`` directive: a *Run live* button that embeds the site's JupyterLite REPL
  (``lite/repl/``, built by ``khttpd_py.lite``) running the directive's code in the
  reader's browser, and a link opening the same in a new tab.  Its script and style are
  added only to pages that use it.
"""

from __future__ import annotations

import html
from pathlib import Path
from urllib.parse import quote

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.application import Sphinx
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

logger = logging.getLogger(__name__)

def _asset_name(asset: object) -> str:
    return str(getattr(asset, "filename", asset) or "")


def _asset_body(asset: object) -> str:
    attributes = getattr(asset, "attributes", {}) or {}
    return str(attributes.get("body", ""))


def _is_thebe(asset: object) -> bool:
    name = _asset_name(asset)
    return "sphinx-thebe" in name or "thebe@" in name or "THEBE_JS_URL" in _asset_body(asset)


def _filter_assets(app: Sphinx, pagename: str, templatename: str, context: dict, doctree) -> None:
    for key in ("script_files", "css_files"):
        files = context.get(key)
        if not files:
            continue
        kept = [a for a in files if not _is_thebe(a)]
        for asset in kept:
            name = _asset_name(asset)
            if name.startswith(("http://", "https://", "//")):
                logger.warning(f"{pagename}: page would load {name} from another host")
        context[key] = kept


STATIC = Path(__file__).resolve().parent / "static"
LIVE_NOTE = (
    "Python starts in your browser, from this site only: about 20-40 s the first time "
    "(a second run is faster, the files are cached). Nothing is sent anywhere."
)


def repl_url(code: str, root: str) -> str:
    """The lite REPL's address that runs ``code`` once its kernel is up."""
    return f"{root}lite/repl/index.html?kernel=python&toolbar=1&code={quote(code, safe='')}"


class LiveRepl(SphinxDirective):
    """``{live-repl}``: the content is the Python to run; ``:label:`` the button's text."""

    has_content = True
    option_spec = {"label": directives.unchanged}

    def run(self) -> list[nodes.Node]:
        code = "\n".join(self.content).strip()
        if not code:
            raise self.error("live-repl needs the code to run as its content")
        label = self.options.get("label", "Run this live in your browser")
        root = "../" * self.env.docname.count("/")
        url = html.escape(repl_url(code, root), quote=True)
        body = (
            f'<div class="khttpd-live" data-src="{url}">'
            f'<button type="button" class="khttpd-live-run">&#9654; {html.escape(label)}</button> '
            f'<a class="khttpd-live-tab" href="{url}" target="_blank" rel="noopener">'
            "or open it in a new tab</a>"
            f'<p class="khttpd-live-note">{html.escape(LIVE_NOTE)}</p>'
            '<span class="khttpd-live-status" aria-live="polite"></span></div>'
        )
        self.env.metadata[self.env.docname]["khttpd_live"] = True
        return [nodes.raw("", body, format="html")]


def _add_static(app: Sphinx) -> None:
    app.config.html_static_path.append(str(STATIC))


def _live_assets(app: Sphinx, pagename: str, templatename: str, context: dict, doctree) -> None:
    if app.env.metadata.get(pagename, {}).get("khttpd_live"):
        app.add_js_file("khttpd-live.js")
        app.add_css_file("khttpd-live.css")


def setup(app: Sphinx) -> dict:
    app.add_directive("live-repl", LiveRepl)
    app.connect("builder-inited", _add_static)
    app.connect("html-page-context", _live_assets, priority=500)
    app.connect("html-page-context", _filter_assets, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
