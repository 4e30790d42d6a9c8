"""Hidden tests of exercise 1 (kept by the instructor)."""

import pytest

from khttpd_py import http


@pytest.mark.points(1)
def test_keep_alive_tokens_and_case(student):
    cases = [
        ("HTTP/1.1", "Close", False),
        ("HTTP/1.1", "keep-alive, Upgrade", True),
        ("HTTP/1.1", "Upgrade, close", False),
        ("HTTP/1.0", "Keep-Alive", True),
        ("HTTP/1.0", "upgrade, KEEP-ALIVE", True),
    ]
    for version, connection, want in cases:
        got = student.keep_alive(version, connection)
        assert bool(got) == want, (
            f"keep_alive({version!r}, {connection!r}) should be {want}: tokens are "
            "case-insensitive and a header may list several"
        )


@pytest.mark.points(1)
def test_respond_head_and_header_case(student):
    for request in (
        b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET / HTTP/1.0\r\nhost: a\r\nCONNECTION: Keep-Alive\r\n\r\n",
        b"PUT / HTTP/1.1\r\nHost: a\r\nconnection: close\r\nContent-Length: 0\r\n\r\n",
    ):
        want = http.HttpConnection().feed(request)[0].data
        got = student.respond(request)
        assert got == want, "a HEAD request, or header names in another case, got a wrong answer"
