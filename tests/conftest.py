"""Fixtures shared by the project's tests.

The server tests' client helpers live in ``test_server.py``; their two fixtures
(``mode``, ``make_server``) live here, because ``test_event_mode.py`` runs on
the same servers in the same three modes.
"""

from __future__ import annotations

import resource
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from khttpd_py.server import MODES, KHttpd


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


class _Http10Handler(BaseHTTPRequestHandler):
    """An HTTP/1.0 server (the stdlib default): it closes after every response and
    sends no Connection header, which a keep-alive client must understand."""

    def do_GET(self) -> None:  # noqa: N802 -- the stdlib's name
        body = b"Hello World!"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def http10_url() -> Iterator[str]:
    """The URL of a running HTTP/1.0 server on 127.0.0.1 (both htstress engines test on it)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Http10Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def closed_url() -> str:
    """A URL on 127.0.0.1 where nothing listens: every connect is refused at once.

    The port was bound for a moment and released, so it is free, and (barring a
    race with another program taking it) nobody accepts there.
    """
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


@pytest.fixture(scope="session")
def built_book() -> Path:
    """Build the book once per session, as ``make book`` does; every book test shares it."""
    from khttpd_py import booktools

    try:
        booktools.build(quiet=True)
    except booktools.BookError as exc:
        pytest.fail(f"the book does not build: {exc}")
    return booktools.BUILD_HTML


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    """Each server test runs once per worker mode; the wire bytes must not differ."""
    return request.param


@pytest.fixture
def make_server(mode: str) -> Iterator[Callable[..., KHttpd]]:
    """Start servers on 127.0.0.1 and an ephemeral port; stop whatever is left at teardown."""
    servers: list[KHttpd] = []

    def start(**kwargs: object) -> KHttpd:
        kwargs.setdefault("host", "127.0.0.1")
        kwargs.setdefault("port", 0)
        kwargs.setdefault("mode", mode)
        server = KHttpd(**kwargs).start()  # type: ignore[arg-type]
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
