"""Peer servers for the benchmark: what a Python programmer would write instead of khttpd.

The bench compares khttpd_py's two modes with two servers from the standard
library, each answering with *the same bytes* as khttpd (``khttpd_py.http``'s
responses), so a difference in throughput comes from how the server gets a
connection onto a CPU, not from what it sends:

``threading``
    ``http.server.ThreadingHTTPServer``: a new thread per connection, the
    standard library's own "kthread per connection".
``asyncio``
    an ``asyncio.Protocol`` server: one thread, one event loop, every
    connection a callback.  This is the design Python programmers reach for
    first when they want many connections, and the bar CMWQ mode is held to.
``sequential``
    no concurrency at all: one thread accepts a connection, serves it to the
    end with khttpd_py's own calls (``oncpu``, ``HttpConnection``) and only
    then accepts the next.  Not a server to deploy (one slow or idle client
    stalls every other), but under htstress load it is the *floor*: the least
    CPU per request any CPython design can spend, so it shows how much of the
    CMWQ server's cost is its dispatching.  The bench runs it only when asked
    (``--servers ...,sequential``).
``handoff``
    the sequential server with the cheapest dispatcher there is: the accept
    loop hands each connection to *one* worker thread through a
    ``queue.SimpleQueue`` and goes back to ``accept``, as khttpd's daemon
    does with ``queue_work``.  Same limits as ``sequential``; it measures what
    handing a connection to another thread costs by itself, so that
    ``cmwq - handoff`` is what the workqueue's bookkeeping and its pool of
    workers cost.  Opt-in as well (``--servers ...,handoff``).

The first two parse with ``httptools`` (the asyncio peer directly, the threading peer
through ``BaseHTTPRequestHandler``'s own parser) and honour keep-alive the way
khttpd does.

Run one with ``python -m khttpd_py.peers {threading,asyncio,sequential,handoff} --port 0``; it
prints ``peer: serving http://127.0.0.1:PORT/`` once it listens (the bench
reads the port from that line) and stops cleanly on SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import queue
import select
import signal
import socket
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httptools

from khttpd_py import oncpu
from khttpd_py.http import (
    RECV_BUFFER_SIZE,
    RESPONSE_200,
    RESPONSE_200_KEEPALIVE,
    RESPONSE_501,
    RESPONSE_501_KEEPALIVE,
    HttpConnection,
)
from khttpd_py.server import http_server_recv, http_server_send, sock_release

PEERS = ("threading", "asyncio", "sequential", "handoff")

SEQUENTIAL_IDLE_TIMEOUT = 5.0
"""Seconds the sequential peer waits for a silent client before dropping it."""


# --------------------------------------------------------------------------- threading


class _KhttpdHandler(BaseHTTPRequestHandler):
    """Answer GET with khttpd's exact 200 bytes and anything else with its 501 bytes."""

    protocol_version = "HTTP/1.1"  # lets keep-alive clients keep the connection

    def _answer(self, ok: bool) -> None:
        keep = not self.close_connection
        if ok:
            response = RESPONSE_200_KEEPALIVE if keep else RESPONSE_200
        else:
            response = RESPONSE_501_KEEPALIVE if keep else RESPONSE_501
        self.wfile.write(response.data)
        self.close_connection = not keep

    def do_GET(self) -> None:  # noqa: N802 - the name http.server dispatches to
        self._answer(True)

    def do_POST(self) -> None:  # noqa: N802
        self._answer(False)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        """Silence the per-request log line: printing would dominate the benchmark."""


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 100  # khttpd's backlog

    def handle_error(self, request, client_address) -> None:  # noqa: ANN001
        """A client resetting mid-request is normal under load; don't print a traceback."""


def serve_threading(host: str, port: int, stop: threading.Event) -> None:
    with _QuietServer((host, port), _KhttpdHandler) as server:
        _announce(host, server.server_address[1])
        runner = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
        runner.start()
        stop.wait()
        server.shutdown()
        runner.join()


# --------------------------------------------------------------------------- asyncio


class _KhttpdProtocol(asyncio.Protocol):
    """One connection: feed bytes to llhttp, answer on each complete message."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.transport.close()

    def on_message_complete(self) -> None:
        keep = self.parser.should_keep_alive()
        ok = self.parser.get_method() == b"GET"
        if ok:
            response = RESPONSE_200_KEEPALIVE if keep else RESPONSE_200
        else:
            response = RESPONSE_501_KEEPALIVE if keep else RESPONSE_501
        self.transport.write(response.data)
        if not keep:
            self.transport.close()


async def _serve_asyncio(host: str, port: int, stop: threading.Event) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_KhttpdProtocol, host, port, backlog=100)
    _announce(host, server.sockets[0].getsockname()[1])
    while not stop.is_set():
        await asyncio.sleep(0.1)
    server.close()
    await server.wait_closed()


def serve_asyncio(host: str, port: int, stop: threading.Event) -> None:
    asyncio.run(_serve_asyncio(host, port, stop))


# --------------------------------------------------------------------------- sequential


def _serve_one(sock: socket.socket) -> None:
    """Serve one connection to its end, blocking: no other client is served meanwhile.

    The receive and send steps are khttpd_py's own (``server.http_server_recv``
    and ``http_server_send``: try without waiting, sleep only if needed), so
    the floor pays for exactly the calls the two khttpd_py modes make.
    """
    http = HttpConnection()
    rbuf = oncpu.RecvBuffer(RECV_BUFFER_SIZE)
    sock.settimeout(SEQUENTIAL_IDLE_TIMEOUT)
    try:
        while True:
            data = http_server_recv(sock, rbuf)
            if not data:
                return
            out = b"".join(r.data for r in http.feed(data))
            if out:
                http_server_send(sock, out)
            if http.should_close:
                return
    except OSError:
        return  # reset, or silent for SEQUENTIAL_IDLE_TIMEOUT
    finally:
        sock_release(sock)


def _accept_loop(host: str, port: int, stop: threading.Event,
                 take: Callable[[socket.socket], None]) -> None:
    """Accept connections until ``stop`` and pass each to ``take``."""
    listen = socket.create_server((host, port), backlog=100)
    with listen:
        listen.setblocking(False)
        _announce(host, listen.getsockname()[1])
        waiter = select.poll()
        waiter.register(listen, select.POLLIN)
        while not stop.is_set():
            sock = oncpu.accept_nowait(listen)
            if sock is None:
                waiter.poll(100)  # ms: look at the stop flag now and then
                continue
            take(sock)


def serve_sequential(host: str, port: int, stop: threading.Event) -> None:
    _accept_loop(host, port, stop, _serve_one)


# --------------------------------------------------------------------------- handoff


def serve_handoff(host: str, port: int, stop: threading.Event) -> None:
    """The accept loop queues each connection for one worker thread, which serves them in turn.

    ``SimpleQueue.put`` wakes the worker only when it sleeps in ``get``; under
    load it finds the next connection waiting and does not sleep at all.
    """
    pending: queue.SimpleQueue[socket.socket | None] = queue.SimpleQueue()

    def worker() -> None:
        while (sock := pending.get()) is not None:
            if stop.is_set():
                sock_release(sock)  # stopping: drop what is still queued
            else:
                _serve_one(sock)

    thread = threading.Thread(target=worker, name="handoff-worker", daemon=True)
    thread.start()
    try:
        _accept_loop(host, port, stop, pending.put)
    finally:
        pending.put(None)  # after the connections already queued
        thread.join()


# --------------------------------------------------------------------------- CLI


def _announce(host: str, port: int) -> None:
    print(f"peer: serving http://{host}:{port}/", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m khttpd_py.peers",
                                     description="Standard-library peers for the benchmark.")
    parser.add_argument("kind", choices=PEERS)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 = any free port (default)")
    args = parser.parse_args(argv)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    runner = {"threading": serve_threading, "asyncio": serve_asyncio,
              "sequential": serve_sequential, "handoff": serve_handoff}[args.kind]
    try:
        runner(args.host, args.port, stop)
    except OSError as exc:
        print(f"peer: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
