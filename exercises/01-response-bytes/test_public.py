"""Public tests of exercise 1: the response bytes, checked against khttpd_py.http."""

import pytest

from khttpd_py import http


@pytest.mark.points(2)
def test_200_close_is_byte_exact(student):
    got = student.build_response(200, b"Hello World!", False)
    want = http.build_response(200, http.HELLO_BODY, False)
    assert got == want, f"200 with Connection: Close should be {want!r}, got {got!r}"


@pytest.mark.points(1)
def test_501_keepalive_spells_keep_alive(student):
    got = student.build_response(501, b"501 Not Implemented", True)
    want = http.build_response(501, http.NOT_IMPLEMENTED_BODY, True)
    assert b"KeepAlive" not in got, "the header token is Keep-Alive (upstream's KeepAlive is a bug)"
    assert got == want, f"501 keep-alive should be {want!r}, got {got!r}"


@pytest.mark.points(1)
@pytest.mark.parametrize("body", [b"", b"x", b"Hello World!\r\n", bytes(range(200))])
def test_content_length_is_body_length(student, body):
    got = student.build_response(200, body, True)
    head, sep, rest = got.partition(b"\r\n\r\n")
    assert sep, "the head must end with an empty line (CRLF CRLF)"
    assert rest == body, "the body must follow the blank line unchanged"
    assert f"Content-Length: {len(body)}".encode() in head.split(b"\r\n"), (
        f"Content-Length must be {len(body)} for a {len(body)}-byte body"
    )


CASES = [
    ("HTTP/1.1", None, True),
    ("HTTP/1.1", "close", False),
    ("HTTP/1.1", "keep-alive", True),
    ("HTTP/1.0", None, False),
    ("HTTP/1.0", "keep-alive", True),
    ("HTTP/1.0", "close", False),
]


@pytest.mark.points(1)
def test_keep_alive_rules(student):
    for version, connection, want in CASES:
        got = student.keep_alive(version, connection)
        assert got is want or got == want, (
            f"keep_alive({version!r}, {connection!r}) should be {want}, got {got}"
        )


def reference(method: bytes, keep_alive: bool) -> bytes:
    """What khttpd_py answers to ``method`` (its builder: pure Python, so this test also
    runs in the online book's browser copy, where the request parser's httptools is not)."""
    return http.http_server_response(method, keep_alive).data


@pytest.mark.points(1)
@pytest.mark.parametrize(
    ("request_bytes", "method", "stays_open"),
    [
        (b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n", b"GET", False),
        (b"GET /index.html HTTP/1.1\r\nHost: localhost\r\n\r\n", b"GET", True),
        (b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n", b"POST", True),
        (b"DELETE /x HTTP/1.0\r\nHost: localhost\r\n\r\n", b"DELETE", False),
    ],
    ids=["get-1.0", "get-1.1", "post-1.1", "delete-1.0"],
)
def test_respond_matches_reference(student, request_bytes, method, stays_open):
    got = student.respond(request_bytes)
    want = reference(method, stays_open)
    assert got == want, f"for {request_bytes!r} expected {want!r}, got {got!r}"
