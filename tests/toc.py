"""The documents of ``_toc.yml``, for the tests that walk the book (build and browser).

One reader, so both see the same pages: ``file:`` entries at any depth and ``glob:``
entries, which the book uses for the generated exercise pages (known from the exercise
folders alone, before any build: :func:`khttpd_py.exercise_pages.docnames`).
"""

from __future__ import annotations

from fnmatch import fnmatch
from pathlib import Path

import yaml

from khttpd_py import exercise_pages

ROOT = Path(__file__).resolve().parent.parent


def toc_files(root: Path = ROOT) -> list[str]:
    """Every document of ``_toc.yml`` (root first, in order), as paths without suffix."""
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    files = [toc["root"]]
    generated = exercise_pages.docnames(root)

    def walk(entries: list[dict]) -> None:
        for entry in entries:
            if "file" in entry:
                files.append(entry["file"])
            elif "glob" in entry:
                files.extend(d for d in generated if fnmatch(d, entry["glob"]) and d not in files)
            walk(entry.get("sections", []))

    for part in toc.get("parts", []):
        walk(part.get("chapters", []))
    walk(toc.get("chapters", []))
    return files
