"""The online book's live site: the project's Python running in the reader's browser.

``make book`` builds a JupyterLite site into ``_build/html/lite/`` (:mod:`.site`) from
Pyodide and wheels fetched once into ``.cache/lite/`` (:mod:`.packages`), with the
browser-capable exercises as the student gets them (:mod:`.contents`).  The chapters reach
it through the ``live-repl`` directive of ``book/_ext`` (a *Run live* button) and the
exercise pages through a link into the site's ``lab`` app.
"""

from khttpd_py.lite.packages import LiteError
from khttpd_py.lite.site import build_site

__all__ = ["LiteError", "build_site"]
