"""Sphinx extension of the khttpd book: keep every page self-contained.

* Drop sphinx-thebe's scripts: Jupyter Book 1 always loads the extension, its
  inline configuration is added twice (a console error) and names an unpkg URL;
  this book does not use thebe (``launch_buttons.thebe: false``).
* Warn (an error under ``-W``) about any script or stylesheet a page would load
  from another host.
"""

from __future__ import annotations

from sphinx.application import Sphinx
from sphinx.util import logging

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


def setup(app: Sphinx) -> dict:
    app.connect("html-page-context", _filter_assets, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
