"""argparse types shared by the ``khttpd-py`` commands: a bad number is named at parse time.

``int()`` and ``float()`` alone let ``-5``, ``nan``, ``inf`` and ``1e300``
through, to fail later as a traceback (``time.sleep``, ``range``) or as a
run that quietly does nothing.  Each option states its range with one of
these, so the user gets argparse's one line, ``argument --x: ...``, and exit 2.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable


def int_in(low: int, high: int | None = None) -> Callable[[str], int]:
    """An integer in ``[low, high]``, or at least ``low`` when ``high`` is None."""

    def convert(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
        if high is None and value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, not {value}")
        if high is not None and not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is outside {low}..{high}")
        return value

    return convert


def seconds_in(low: float, high: float, *, low_open: bool = False) -> Callable[[str], float]:
    """A finite number of seconds in ``[low, high]`` (``(low, high]`` if ``low_open``)."""

    def convert(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
        above_low = value > low if low_open else value >= low
        if not (above_low and value <= high):  # also true for nan, which compares false
            side = "more than" if low_open else "between"
            raise argparse.ArgumentTypeError(
                f"must be {side} {low:g} {'and at most' if low_open else 'and'} {high:g} "
                f"seconds, not {text!r}")
        return value

    return convert


__all__ = ["int_in", "seconds_in"]
