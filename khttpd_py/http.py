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
LF is a parse error, so ``printf 'GET / HTTP/1.0\\n\\n' | nc`` gets a 400).

RFC 9112/9110 rules neither upstream nor llhttp applies for us:

* Host (RFC 9112 section 3.2): an HTTP/1.1 request without ``Host``, and any
  request with two ``Host`` lines or an invalid value, gets 400.
* ``Expect: 100-continue`` (RFC 9110 section 10.1.1): a request that would
  succeed gets ``HTTP/1.1 100 Continue`` as soon as its head is in, so the
  client sends its body at once instead of waiting (curl waits 1 s); one that
  will fail gets its final 501 at once, without waiting for the body, and the
  connection closes (the unread body is drained by the lingering close).
* HTTP/0.9 (``GET /`` without a version) cannot carry a status line, so the
  connection is closed at once with nothing sent.
* An unknown method (``BREW``, or lowercase ``get``: methods are
  case-sensitive, RFC 9110 section 9.1) is a llhttp parse error, but RFC 9110
  section 9.1 wants 501 for a well-formed request with a method we do not
  implement.  On that error the request line is read to its end and
  classified (:func:`classify_request_line`): a well-formed line gets 501, any
  other 400.

After an error response :attr:`HttpConnection.linger` tells the server to close
lingeringly (shut down writing, drain what the client still sends, then
close), so the client is not reset before it reads the answer.
"""

from __future__ import annotations

import re
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
    100: "Continue",
    200: "OK",
    400: "Bad Request",
    414: "URI Too Long",
    431: "Request Header Fields Too Large",
    501: "Not Implemented",
    503: "Service Unavailable",
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
RESPONSE_503 = _response(503, b"503 Service Unavailable", False)
"""Sent by the server (not the parser) when it cannot serve a connection: over
``max_conns``, or a worker thread or work item could not be started."""

RESPONSE_100_CONTINUE = Response(100, True, b"HTTP/1.1 100 Continue" + CRLF + CRLF)
"""The interim answer to ``Expect: 100-continue`` (no headers, no body, RFC 9110 15.2.1)."""

CLOSE_SILENTLY = Response(0, False, b"")
"""Not a response: the connection closes with nothing sent (an HTTP/0.9 request)."""

_TCHAR = rb"[!#$%&'*+.^_`|~0-9A-Za-z-]"
_REQUEST_LINE = re.compile(rb"%s+ [^\x00-\x20\x7f]+ HTTP/[0-9]\.[0-9]" % _TCHAR)
_REQUEST_LINE_PREFIX = re.compile(rb"%s*(?: [^\x00-\x20\x7f]*(?: [!-~]*)?)?\r?" % _TCHAR)
"""What a request line can look like before its CRLF arrived (to refuse garbage at once)."""
_HOST_VALUE = re.compile(
    rb"(?:\[[0-9A-Fa-f:.]+\]|\[v[0-9A-Fa-f]+\.[-A-Za-z0-9._~!$&'()*+,;=:]+\]"
    rb"|[-A-Za-z0-9._~!$&'()*+,;=%]*)(?::[0-9]*)?"
)
"""RFC 9112 3.2's ``Host = uri-host [ ":" port ]`` (IP-literal, IPv4 or reg-name)."""


def classify_request_line(line: bytes) -> Response:
    """The answer to a request line llhttp refused for its method.

    ``method SP request-target SP HTTP-version`` with a token method is a
    well-formed request for a method we do not implement: 501 (RFC 9110
    9.1); anything else is malformed: 400.  The connection closes either way,
    since the rest of the request cannot be parsed.
    """
    return RESPONSE_501 if _REQUEST_LINE.fullmatch(line) else RESPONSE_400

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
    :attr:`should_close` is true the server must send what it got and close
    (lingeringly if :attr:`linger` says so); later input is ignored.  It is
    also the parser's protocol object, so the callbacks below are called by
    llhttp while :meth:`feed` runs, the way ``http_parser_execute`` calls
    khttpd's ``http_parser_callback_*``.

    Size accounting.  The head limit is checked on what the callbacks report
    (URL length, each header's name and value), so the verdict does not depend
    on how TCP split the request.  httptools joins a header's pieces before
    ``on_header`` sees them, though, so a header line that never ends would
    grow unseen; :meth:`feed` therefore also counts raw bytes received while a
    head is open and gives up at twice the limit.

    Timing is the server's job: :attr:`head_open` and :attr:`head_began` tell
    it when a request head started arriving, for its header deadline.
    """

    __slots__ = (
        "_parser", "_out", "_head_bytes", "_raw_head_bytes", "_began_in_chunk", "_in_head",
        "_hosts", "_expect_continue", "_has_body", "_done_in_chunk", "_prev", "_line",
        "should_close", "linger", "requests", "url",
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
        self._hosts = 0
        self._expect_continue = False
        self._has_body = False
        self._done_in_chunk = 0
        self._prev = b""  # the previous chunk, to find a refused request line's start
        self._line: bytes | None = None  # a refused request line being read to its end
        self.should_close = False  # a response that ends the connection was produced
        self.linger = False  # close lingeringly: an error answer, or input left unread
        self.requests = 0  # requests answered so far, errors included
        self.url = b""  # URL of the request being parsed (or the last one)

    @property
    def head_open(self) -> bool:
        """True while a request head has begun and not ended (the header deadline runs)."""
        return self._in_head or self._line is not None

    @property
    def head_began(self) -> bool:
        """True if the open head began in the last chunk fed (restart the header deadline)."""
        return self._began_in_chunk

    # -- llhttp callbacks (the names of khttpd's http_parser_settings) --------

    def on_message_begin(self) -> None:
        """A new request starts: reset the per-request state (upstream memsets it)."""
        self.url = b""
        self._head_bytes = 0
        self._hosts = 0
        self._expect_continue = False
        self._has_body = False
        self._began_in_chunk = True
        self._in_head = True

    def on_url(self, url: bytes) -> None:
        """Collect the URL, which may arrive in pieces; refuse it past the limit (414)."""
        self.url += url
        if len(self.url) > MAX_REQUEST_HEAD:
            raise RequestRejected(RESPONSE_414)

    def on_header(self, name: bytes, value: bytes) -> None:
        """Count a header line (431 past the limit); note Host, Expect and body framing."""
        self._head_bytes += len(name) + len(value) + 4
        if self._head_bytes + len(self.url) > MAX_REQUEST_HEAD:
            raise RequestRejected(RESPONSE_431)
        lname = name.lower()
        if lname == b"host":
            self._hosts += 1
            if self._hosts > 1 or not _HOST_VALUE.fullmatch(value.strip(b" \t")):
                raise RequestRejected(RESPONSE_400)  # RFC 9112 3.2: repeated or invalid
        elif lname == b"expect":
            self._expect_continue = value.strip(b" \t").lower() == b"100-continue"
        elif lname == b"transfer-encoding" or (lname == b"content-length"
                                               and value.strip(b" \t") != b"0"):
            self._has_body = True

    def on_headers_complete(self) -> None:
        """The head is over: apply the version rules (Host, HTTP/0.9) and ``Expect``.

        HTTP/1.0 clients may omit Host and their ``Expect`` is ignored (RFC
        9110 10.1.1); from HTTP/1.1 on Host is required.
        """
        self._in_head = False
        version = self._parser.get_http_version()
        if version == "0.9":
            raise RequestRejected(CLOSE_SILENTLY)
        if version == "1.0":
            return
        if self._hosts == 0:
            raise RequestRejected(RESPONSE_400)
        if self._expect_continue:
            if self._parser.get_method() not in (b"GET", b"HEAD"):
                raise RequestRejected(RESPONSE_501)  # the final answer now, body unread
            if self._has_body:
                self._out.append(RESPONSE_100_CONTINUE)

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
        self._done_in_chunk += 1
        if not keep_alive:
            self.should_close = True

    # -- driving the parser --------------------------------------------------

    def feed(self, data: bytes) -> list[Response]:
        """Parse one received chunk; return the responses it completes, in order."""
        if self.should_close:
            return []
        out: list[Response] = []
        self._out = out
        if self._line is not None:
            self._read_refused_line(data)
            return out
        self._began_in_chunk = False
        self._done_in_chunk = 0
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            pass  # on_message_complete already answered and marked the close
        except httptools.HttpParserCallbackError as exc:
            rejected = exc.__context__
            if not isinstance(rejected, RequestRejected):
                raise
            self._reject(rejected.response)
        except httptools.HttpParserInvalidMethodError:
            self._refused_method(data)
        except httptools.HttpParserError:
            self._reject(RESPONSE_400)
        else:
            if self._in_head:
                self._guard_open_head(len(data))
                if self._in_head and data.endswith(b" " + self.url + CRLF) and self.url:
                    self._reject(CLOSE_SILENTLY)  # "GET /" CRLF: HTTP/0.9, no headers follow
        self._prev = data
        return out

    def _refused_method(self, data: bytes) -> None:
        """llhttp refused the method: find the request line's start and read it to its end.

        llhttp reports no error offset, so the start is found from what is
        known: after the last complete request of this chunk (its head ends at
        the n-th blank line, exact for the body-less requests this server
        answers), or where the request began in an earlier chunk.  A request
        with a body before the refused one may mislead the search; the result
        is then a 400 instead of a 501, never a wrong success.
        """
        if self._done_in_chunk:
            start = -4
            for _ in range(self._done_in_chunk):
                start = data.find(b"\r\n\r\n", start + 4)
                if start < 0:
                    self._reject(RESPONSE_400)
                    return
            line = data[start + 4 :]
        elif self._began_in_chunk:
            line = data
        else:
            prev = self._prev
            cut = prev.rfind(b"\r\n\r\n")
            line = (prev[cut + 4 :] if cut >= 0 else prev) + data
        self._line = b""
        self._read_refused_line(line.lstrip(b"\r\n"))

    def _read_refused_line(self, data: bytes) -> None:
        """Collect a refused request line until CRLF, then answer 501 or 400 (414 if endless)."""
        assert self._line is not None
        line = self._line + data
        end = line.find(CRLF)
        if end >= 0:
            self._line = None
            self._reject(classify_request_line(line[:end]))
        elif not _REQUEST_LINE_PREFIX.fullmatch(line):
            self._line = None
            self._reject(RESPONSE_400)  # binary junk (a TLS hello, say): no line will come
        elif len(line) > MAX_REQUEST_HEAD:
            self._line = None
            self._reject(RESPONSE_414)
        else:
            self._line = line

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
        """Answer an unparsable, oversized or refused request and mark the connection closing.

        llhttp also reports input after a ``Connection: close`` request as an
        error; that input is ignored, since the close is already due, but the
        close lingers so the client is not reset.
        """
        self._in_head = False
        self.linger = True
        if self.should_close:
            return
        if response.data:
            self._out.append(response)
        self.requests += 1
        self.should_close = True
