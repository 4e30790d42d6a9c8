"""Request parsing and response bytes: the Python side of khttpd's ``http_server.c``.

khttpd hands every received chunk to the nodejs ``http_parser`` and answers from
its callbacks.  Here the parser is ``httptools``, a binding of llhttp (the
successor of that parser), and the callbacks keep their names:
``on_message_begin``, ``on_url``, ``on_header``, ``on_headers_complete``,
``on_body`` and ``on_message_complete``.  Nothing here touches a socket:
:class:`HttpConnection` turns bytes in into :class:`Response` objects out, so
the book and the tests can drive it by hand, and ``server.py`` owns the I/O.

What the course's module does, and what this module does instead (the book
prints these side by side):

* The 200 response says ``Content-Length: 12`` but sends ``Hello World!\\r\\n``
  (14 bytes), so a keep-alive client finds two stray bytes in front of its
  next response.  See :data:`UPSTREAM_RESPONSE_200_DUMMY`.  Here the body is
  the 12 bytes the header announces.
* The 501 keep-alive response spells its header ``Connection: KeepAlive``, which
  no client recognises as keep-alive.  See
  :data:`UPSTREAM_RESPONSE_501_KEEPALIVE`.  Here it is ``Keep-Alive``.
* The URL is ``strncat``-ed into a 128-byte ``request_url`` with the length of
  the piece rather than the room left, so a long URL overruns the buffer.  Here
  the URL is a Python ``bytes`` object and the whole request head is capped at
  :data:`MAX_REQUEST_HEAD` bytes (414 or 431 past that).
* ``http_parser_execute``'s result is ignored, so a malformed request gets no
  answer and the connection stays open.  Here it gets ``400 Bad Request`` and
  the connection closes.
* A ``HEAD`` request gets 501 upstream (only ``GET`` is handled).  Here ``HEAD``
  gets the headers of the ``GET`` response and no body, as RFC 9110 section
  9.3.2 asks, so a client that probes with ``HEAD`` sees the same
  ``Content-Length: 12`` that ``GET`` would deliver.
* The 501 body here is ``501 Not Implemented`` without the trailing CRLF and
  ``Content-Length: 19`` (upstream sends 21 bytes and says 21, which is
  consistent); dropping the CRLF lets both bodies follow one rule: the body is
  exactly the text, and Content-Length is its length.

llhttp is stricter than the old ``http_parser``: lines must end in CRLF (a bare
LF is a parse error, so ``printf 'GET / HTTP/1.0\\n\\n' | nc`` gets a 400), and
methods outside llhttp's list (``BREW``) are parse errors, hence 400 rather
than 501.
"""

from __future__ import annotations

from typing import NamedTuple

try:
    import httptools
except ImportError:  # the browser's Python (Pyodide) has no wheel of it: responses only there
    httptools = None

CRLF = b"\r\n"
"""Every line of a request head and of a response head ends with these two bytes."""

SERVER_NAME = b"khttpd"
"""The ``Server:`` header value; upstream writes ``KBUILD_MODNAME`` there."""

RECV_BUFFER_SIZE = 4096
"""The worker's receive buffer, as in ``http_server.c`` (upstream reads at most 4095)."""

MAX_REQUEST_HEAD = 8 * 1024
"""Largest request head (request line plus header lines) accepted, in bytes.

Upstream has no limit and overruns a 128-byte URL buffer instead.  8 KiB is the
common default of nginx and Node.js.  A URL longer than this gets 414; a head
that grows past it because of its headers gets 431.
"""

HELLO_BODY = b"Hello World!"
"""The body of every 200 response: 12 bytes, matching ``Content-Length: 12``."""

NOT_IMPLEMENTED_BODY = b"501 Not Implemented"
"""The body of a 501 response: 19 bytes."""

REASONS: dict[int, str] = {
    200: "OK",
    400: "Bad Request",
    414: "URI Too Long",
    431: "Request Header Fields Too Large",
    501: "Not Implemented",
}
"""Reason phrases for every status this server sends."""

UPSTREAM_RESPONSE_200_DUMMY = (
    b"HTTP/1.1 200 OK\r\nServer: khttpd\r\nContent-Type: text/plain\r\n"
    b"Content-Length: 12\r\nConnection: Close\r\n\r\nHello World!\r\n"
)
"""What upstream's ``HTTP_RESPONSE_200_DUMMY`` puts on the wire (defect: 14-byte body).

The macro appends ``CRLF`` after the body, so the body is 14 bytes while
``Content-Length`` says 12.  With ``Connection: Close`` the client stops at 12
and never sees the extra two; with keep-alive they sit where the next status
line should start.  Lenient parsers (http_parser, llhttp) skip blank lines
there, which is how the defect went unnoticed; a client that trusts
Content-Length strictly does not.
"""

UPSTREAM_RESPONSE_501_KEEPALIVE = (
    b"HTTP/1.1 501 Not Implemented\r\nServer: khttpd\r\nContent-Type: text/plain\r\n"
    b"Content-Length: 21\r\nConnection: KeepAlive\r\n\r\n501 Not Implemented\r\n"
)
"""What upstream's ``HTTP_RESPONSE_501_KEEPALIVE`` puts on the wire (defect: ``KeepAlive``).

The header token is ``Keep-Alive``; ``KeepAlive`` means nothing to a client,
so an HTTP/1.0 client that asked for keep-alive is told, in effect, nothing.
"""


def build_response(status: int, body: bytes, keep_alive: bool, send_body: bool = True) -> bytes:
    """Return the exact response bytes khttpd's macros spell, with a correct length.

    Header order is upstream's: status line, ``Server``, ``Content-Type``,
    ``Content-Length``, ``Connection``, blank line, body.  ``send_body=False``
    gives a ``HEAD`` answer: same headers (Content-Length still announces the
    body a ``GET`` would get), no body.
    """
    connection = b"Keep-Alive" if keep_alive else b"Close"
    head = b"".join(
        (
            b"HTTP/1.1 %d %s" % (status, REASONS[status].encode("ascii")), CRLF,
            b"Server: ", SERVER_NAME, CRLF,
            b"Content-Type: text/plain", CRLF,
            b"Content-Length: %d" % len(body), CRLF,
            b"Connection: ", connection, CRLF,
            CRLF,
        )
    )
    return head + body if send_body else head


class Response(NamedTuple):
    """One answer to send: its status, whether the connection stays open, its bytes.

    The server sends ``data`` as is; ``status`` and ``keep_alive`` are there for
    the tests and the book.  Instances are built once at import (below) and
    shared, so answering a request allocates nothing.
    """

    status: int
    keep_alive: bool
    data: bytes


def _response(status: int, body: bytes, keep_alive: bool, send_body: bool = True) -> Response:
    return Response(status, keep_alive, build_response(status, body, keep_alive, send_body))


RESPONSE_200 = _response(200, HELLO_BODY, False)
RESPONSE_200_KEEPALIVE = _response(200, HELLO_BODY, True)
RESPONSE_200_HEAD = _response(200, HELLO_BODY, False, send_body=False)
RESPONSE_200_HEAD_KEEPALIVE = _response(200, HELLO_BODY, True, send_body=False)
RESPONSE_501 = _response(501, NOT_IMPLEMENTED_BODY, False)
RESPONSE_501_KEEPALIVE = _response(501, NOT_IMPLEMENTED_BODY, True)
RESPONSE_400 = _response(400, b"400 Bad Request", False)
RESPONSE_414 = _response(414, b"414 URI Too Long", False)
RESPONSE_431 = _response(431, b"431 Request Header Fields Too Large", False)

_BY_METHOD: dict[tuple[bytes, bool], Response] = {
    (b"GET", False): RESPONSE_200,
    (b"GET", True): RESPONSE_200_KEEPALIVE,
    (b"HEAD", False): RESPONSE_200_HEAD,
    (b"HEAD", True): RESPONSE_200_HEAD_KEEPALIVE,
}


def http_server_response(method: bytes, keep_alive: bool) -> Response:
    """Pick the answer for a complete request, like upstream's ``http_server_response``.

    ``GET`` (any path) gets ``Hello World!``, ``HEAD`` its headers, anything
    else 501; ``keep_alive`` chooses between the Close and Keep-Alive variants.
    """
    response = _BY_METHOD.get((method, keep_alive))
    if response is not None:
        return response
    return RESPONSE_501_KEEPALIVE if keep_alive else RESPONSE_501


class RequestRejected(Exception):
    """Raised inside a parser callback to stop parsing and answer with ``response``."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


class HttpConnection:
    """The parser state of one connection: upstream's ``struct http_request`` + parser.

    Feed it what ``recv`` returned; it returns the responses to send, in request
    order (pipelined requests in one chunk give several).  Once
    :attr:`should_close` is true the server must send what it got and close;
    later input is ignored.  It is also the parser's protocol object, so the
    callbacks below are called by llhttp while :meth:`feed` runs, the way
    ``http_parser_execute`` calls khttpd's ``http_parser_callback_*``.

    Size accounting.  The head limit is checked on what the callbacks report
    (URL length, each header's name and value), so the verdict does not depend
    on how TCP split the request.  httptools joins a header's pieces before
    ``on_header`` sees them, though, so a header line that never ends would
    grow unseen; :meth:`feed` therefore also counts raw bytes received while a
    head is open and gives up at twice the limit.
    """

    __slots__ = (
        "_parser", "_out", "_head_bytes", "_raw_head_bytes", "_began_in_chunk", "_in_head",
        "should_close", "requests", "url",
    )

    def __init__(self) -> None:
        if httptools is None:
            raise RuntimeError("the request parser needs httptools (pip install httptools); "
                               "the browser's Python has none: run the server with make lab")
        self._parser = httptools.HttpRequestParser(self)
        self._out: list[Response] = []
        self._head_bytes = 0
        self._raw_head_bytes = 0
        self._began_in_chunk = False
        self._in_head = False
        self.should_close = False  # a response that ends the connection was produced
        self.requests = 0  # requests answered so far, errors included
        self.url = b""  # URL of the request being parsed (or the last one)

    # -- llhttp callbacks (the names of khttpd's http_parser_settings) --------

    def on_message_begin(self) -> None:
        """A new request starts: reset the per-request state (upstream memsets it)."""
        self.url = b""
        self._head_bytes = 0
        self._began_in_chunk = True
        self._in_head = True

    def on_url(self, url: bytes) -> None:
        """Collect the URL, which may arrive in pieces; refuse it past the limit (414)."""
        self.url += url
        if len(self.url) > MAX_REQUEST_HEAD:
            raise RequestRejected(RESPONSE_414)

    def on_header(self, name: bytes, value: bytes) -> None:
        """Count a complete header line (``name: value`` CRLF); refuse past the limit (431)."""
        self._head_bytes += len(name) + len(value) + 4
        if self._head_bytes + len(self.url) > MAX_REQUEST_HEAD:
            raise RequestRejected(RESPONSE_431)

    def on_headers_complete(self) -> None:
        """The head is over; the raw-byte guard no longer applies to this request."""
        self._in_head = False

    def on_body(self, body: bytes) -> None:
        """Request bodies are read and dropped: no route here uses them."""

    def on_message_complete(self) -> None:
        """Answer the request, like upstream's ``http_parser_callback_message_complete``.

        Keep-alive follows llhttp's ``should_keep_alive`` (HTTP/1.1 unless
        ``Connection: close``; HTTP/1.0 only with ``Connection: keep-alive``).
        An ``Upgrade`` or ``CONNECT`` request is answered and the connection
        closed, since this server speaks nothing but HTTP/1.x.
        """
        parser = self._parser
        keep_alive = parser.should_keep_alive() and not parser.should_upgrade()
        response = http_server_response(parser.get_method(), keep_alive)
        self._out.append(response)
        self.requests += 1
        if not keep_alive:
            self.should_close = True

    # -- driving the parser --------------------------------------------------

    def feed(self, data: bytes) -> list[Response]:
        """Parse one received chunk; return the responses it completes, in order."""
        if self.should_close:
            return []
        out: list[Response] = []
        self._out = out
        self._began_in_chunk = False
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            pass  # on_message_complete already answered and marked the close
        except httptools.HttpParserCallbackError as exc:
            rejected = exc.__context__
            if not isinstance(rejected, RequestRejected):
                raise
            self._reject(rejected.response)
        except httptools.HttpParserError:
            self._reject(RESPONSE_400)
        else:
            if self._in_head:
                self._guard_open_head(len(data))
        return out

    def _guard_open_head(self, nbytes: int) -> None:
        """Count raw bytes of a head still open after a chunk; refuse past twice the limit.

        If the head began in this chunk the whole chunk is counted, which may
        include an earlier pipelined request: an over-estimate by at most one
        chunk, harmless against a bound twice the limit.
        """
        if self._began_in_chunk:
            self._raw_head_bytes = nbytes
        else:
            self._raw_head_bytes += nbytes
        if self._raw_head_bytes > 2 * MAX_REQUEST_HEAD:
            self._reject(RESPONSE_431)

    def _reject(self, response: Response) -> None:
        """Answer an unparsable or oversized request and mark the connection for closing.

        llhttp also reports input after a ``Connection: close`` request as an
        error; that input is simply ignored, since the close is already due.
        """
        if self.should_close:
            return
        self._out.append(response)
        self.requests += 1
        self.should_close = True
