"""Fixtures shared by the project's tests.

The server tests keep their own fixtures and client helpers in
``test_server.py``; only what any test may need lives here.
"""

from __future__ import annotations

import resource
from collections.abc import Iterator

import pytest


@pytest.fixture
def nofile_limit() -> Iterator[int]:
    """Raise the soft RLIMIT_NOFILE towards the hard limit for the test, restore it after."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 4096 if hard == resource.RLIM_INFINITY else min(hard, 4096)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    try:
        yield resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
