"""htstress: the course's HTTP load generator, with the same CLI and output block.

khttpd is measured with ``htstress`` (sysprog21/khttpd ``htstress.c``): it keeps
``-c`` connections busy in each of ``-t`` threads, sends
``GET <path> HTTP/1.0\\r\\nHost: <host>\\r\\n\\r\\n`` on each, and counts a request
as done when the server closes the connection.  One TCP connection per request
is exactly the load that makes "one kthread per connection" expensive, so the
book keeps it as the default.

Two engines run the same load:

* ``c``: the compiled ``kmod/htstress`` (built by ``make kmod``).  It is used when
  present because a C client spends far less CPU per request than Python, and
  on a 2-core machine every cycle the client burns is a cycle the server under
  test does not get.
* ``python``: this module.  Each of the ``-t`` "threads" is a *process* (Python
  threads would share one GIL and the client would measure itself), running an
  ``epoll`` loop over ``-c`` non-blocking connections.

The engine that ran is printed as ``# engine: NAME`` on stderr and stored in
:attr:`Result.engine`.

Additions over the C tool:

* ``--keep-alive``: HTTP/1.1, many requests per connection, each response framed
  by its ``Content-Length`` (what changes when connections are reused is a
  chapter-5 question).  Python engine only unless the C tool says it can.
* ``--duration S`` (default 120, 0 = none): every run is bounded in time.  When
  the bound hits, connections in flight are dropped and not counted.
* ``--engine {auto,c,python}`` and ``--json``.

One deliberate difference in counting: upstream leaves socket errors out of
``requests`` and retries them forever, so a run against a closed port never
ends.  The Python engine counts every attempt once, so ``requests = good + bad
+ socket errors`` and ``-n`` bounds attempts.  Code that must accept both
(the parser, the bench's checks) relies only on
``good + bad <= requests <= good + bad + socket errors``.

Safety: this tool only talks to loopback (127.0.0.0/8, ::1) or a unix socket;
any other host is refused.  It is a teaching tool, not a way to load someone
else's server.
"""

from __future__ import annotations

import argparse
import dataclasses
import errno
import ipaddress
import json
import multiprocessing
import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from khttpd_py.argtypes import seconds_in
from khttpd_py.signals import sigterm_as_interrupt

DEFAULT_DURATION = 120.0
"""Seconds after which a CLI run stops even if ``-n`` is not reached (0 = no bound)."""

C_TOOL = Path(__file__).resolve().parent.parent / "kmod" / "htstress"
"""Where ``make kmod`` leaves the compiled tool."""

RECV_SIZE = 4096

_READABLE = select.EPOLLIN | select.EPOLLRDHUP
"""What a connection waits for once its request is out: data, or the server's FIN."""


class UsageError(Exception):
    """A command-line or argument error: the CLI prints it and exits with status 2."""


# --------------------------------------------------------------------------- results


@dataclass
class Result:
    """One htstress run: the numbers of the output block plus how they were made."""

    requests: int
    good: int
    bad: int
    socket_errors: int
    seconds: float
    requests_per_sec: float
    engine: str = "python"
    keep_alive: bool = False
    stopped_by_duration: bool = False
    interrupted: bool = False

    @property
    def good_per_sec(self) -> float:
        """Good requests per second: the figure the bench compares (errors are not work)."""
        return self.good / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _percent(part: int, whole: int) -> int:
    """The C tool's integer percentage (truncated, 0 when nothing ran)."""
    return part * 100 // whole if whole else 0


def format_block(r: Result) -> str:
    """The output block, spaced like ``htstress.c`` so one parser reads both tools."""
    return (
        "\n"
        f"requests:      {r.requests}\n"
        f"good requests: {r.good} [{_percent(r.good, r.requests)}%]\n"
        f"bad requests:  {r.bad} [{_percent(r.bad, r.requests)}%]\n"
        f"socket errors: {r.socket_errors} [{_percent(r.socket_errors, r.requests)}%]\n"
        f"seconds:       {r.seconds:.3f}\n"
        f"requests/sec:  {r.requests_per_sec:.3f}\n"
    )


_BLOCK_FIELDS = {
    "requests": r"^\s*requests:\s+(\d+)\s*$",
    "good": r"^\s*good requests:\s+(\d+)",
    "bad": r"^\s*bad requests:\s+(\d+)",
    # upstream prints "socker errors" (a typo); accept both spellings.
    "socket_errors": r"^\s*sock(?:et|er) errors:\s+(\d+)",
    "seconds": r"^\s*seconds:\s+([0-9.]+)",
    "requests_per_sec": r"^\s*requests/sec:\s+([0-9.]+)",
}


def parse_block(text: str, engine: str = "c") -> Result:
    """Read an htstress output block (C or Python tool) into a :class:`Result`.

    Progress lines (``1000 requests``) and banners are ignored; a missing field
    raises ``ValueError`` naming it, so a crashed run is never read as zeros.
    """
    values: dict[str, float] = {}
    for name, pattern in _BLOCK_FIELDS.items():
        matches = re.findall(pattern, text, flags=re.MULTILINE)
        if not matches:
            raise ValueError(f"htstress output has no {name!r} line")
        values[name] = float(matches[-1])
    ints = {k: int(values[k]) for k in ("requests", "good", "bad", "socket_errors")}
    return Result(
        **ints,
        seconds=values["seconds"],
        requests_per_sec=values["requests_per_sec"],
        engine=engine,
    )


# --------------------------------------------------------------------------- targets


@dataclass(frozen=True)
class Target:
    """Where to connect and what to ask for."""

    host: str
    port: int
    path: str
    host_header: str
    family: int = socket.AF_INET
    address: tuple | str = ("127.0.0.1", 80)

    def request(self, keep_alive: bool) -> bytes:
        """The request bytes: htstress's HTTP/1.0 line, or HTTP/1.1 for keep-alive."""
        version = "HTTP/1.1" if keep_alive else "HTTP/1.0"
        return f"GET {self.path} {version}\r\nHost: {self.host_header}\r\n\r\n".encode()


_URL = re.compile(r"^(\[[0-9a-fA-F:.]+\]|[^/:\[\]]+)(?::([^/]*))?(/.*)?$")


def parse_url(url: str) -> tuple[str, int, str]:
    """Split ``[http://]host[:port][/path]`` into (host, port, path), as htstress does."""
    if "://" in url and not url.startswith("http://"):
        raise UsageError(f"bad URL {url!r}: only http:// is supported")
    m = _URL.match(url.removeprefix("http://"))
    if not m or not m.group(1):
        raise UsageError(f"bad URL {url!r}: expected [http://]host[:port][/path]")
    host, port_text, path = m.group(1).strip("[]"), m.group(2), m.group(3) or "/"
    if port_text is None:
        return host, 80, path
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise UsageError(f"bad URL {url!r}: port must be 1-65535")
    return host, int(port_text), path


def _is_loopback(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    mapped = getattr(ip, "ipv4_mapped", None)
    return (mapped or ip).is_loopback


def resolve(url: str, family: int = socket.AF_UNSPEC, unix_path: str = "",
            host_header: str | None = None) -> Target:
    """Turn a URL into a :class:`Target`, refusing anything but loopback."""
    host, port, path = parse_url(url)
    header = host_header or host
    if unix_path:
        return Target(host, port, path, header, socket.AF_UNIX, unix_path)
    try:
        infos = socket.getaddrinfo(host, port, family, socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise UsageError(f"cannot resolve {host!r}: {exc}") from None
    for fam, _, _, _, sockaddr in infos:
        if _is_loopback(sockaddr[0]):
            return Target(host, port, path, header, fam, sockaddr)
    raise UsageError(f"refusing {host!r}: htstress here only loads loopback (127.0.0.0/8, ::1)")


# --------------------------------------------------------------------------- python engine


class _Conn:
    """One client connection's state; ``__slots__`` because thousands are made per second."""

    __slots__ = ("sock", "fd", "sent", "buf")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.sent = 0
        self.buf = b""


def _status_is_bad(head: bytes) -> bool:
    """htstress's test: the 10th byte of ``HTTP/1.x NNN`` is ``4`` or ``5``."""
    return len(head) > 9 and head[9] in b"45"


def _frame(buf: bytes) -> int:
    """Length of the first complete response in ``buf`` (0 if incomplete), by Content-Length."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return 0
    m = re.search(rb"\r\ncontent-length:\s*(\d+)", buf[:end], flags=re.IGNORECASE)
    length = int(m.group(1)) if m else 0
    total = end + 4 + length
    return total if len(buf) >= total else 0


def _wants_close(head: bytes) -> bool:
    """The server closes after this response: it says so, or it speaks HTTP/1.0 and
    does not promise keep-alive (as htstress.c's ``parse_head``)."""
    if re.search(rb"\r\nconnection:\s*close", head, flags=re.IGNORECASE):
        return True
    return head.startswith(b"HTTP/1.0") and not re.search(
        rb"\r\nconnection:\s*keep-alive", head, flags=re.IGNORECASE)


class _Worker:
    """An epoll loop keeping ``concurrency`` connections busy until its budget is spent.

    This is ``worker()`` of htstress.c: connect non-blocking, write the request
    at once (over loopback the handshake is over when ``connect`` returns; if
    not, on EPOLLOUT), read on EPOLLIN, and on EOF count the request and open
    the next connection.  EPOLLRDHUP says the server's FIN is in, so a short
    read has drained the stream and the ``recv`` that would return ``b""`` is
    skipped.  With keep-alive the next request goes out on the same socket as
    soon as a whole response (by Content-Length) has arrived.
    """

    def __init__(self, target: Target, concurrency: int, budget: int, deadline: float,
                 keep_alive: bool, debug: bool) -> None:
        self.target = target
        self.concurrency = concurrency
        self.budget = budget  # attempts allowed; 0 = unlimited
        self.deadline = deadline  # monotonic seconds; 0 = none
        self.keep_alive = keep_alive
        self.debug = debug
        self.request = target.request(keep_alive)
        self.ep = select.epoll()
        self.conns: dict[int, _Conn] = {}
        self.started = 0
        self.good = self.bad = self.errors = 0
        self.last_done = time.monotonic()
        self.stopped_by_duration = False
        self.interrupted = False
        self.stop = False

    # -- accounting
    def _done(self, conn: _Conn, outcome: str) -> None:
        if outcome == "good":
            self.good += 1
        elif outcome == "bad":
            self.bad += 1
        else:
            self.errors += 1
        self.last_done = time.monotonic()

    def _may_start(self) -> bool:
        """Another attempt is allowed: budget left, not stopped, and not past the deadline
        (checked here too, since against a closed port every attempt fails at once and
        the event loop, which watches the deadline, is never reached)."""
        if self.stop or (self.budget and self.started >= self.budget):
            return False
        if self.deadline and time.monotonic() >= self.deadline:
            self.stopped_by_duration = True
            return False
        return True

    # -- connection life cycle
    def _open(self) -> None:
        self.started += 1
        try:
            sock = socket.socket(self.target.family, socket.SOCK_STREAM)
        except OSError as exc:  # EMFILE/ENFILE despite _fd_room(): a failed run, not a count
            raise RuntimeError(f"cannot open a socket: {exc.strerror}") from None
        sock.setblocking(False)
        conn = _Conn(sock)
        rc = sock.connect_ex(self.target.address)
        sent = self._send(conn) if rc in (0, errno.EINPROGRESS, errno.EAGAIN) else None
        if sent is None:  # connect or send failed at once
            sock.close()
            self._done(conn, "error")
            return  # the caller's loop (_refill) makes the next attempt
        self.conns[conn.fd] = conn
        self.ep.register(conn.fd, _READABLE if sent else select.EPOLLOUT)

    def _close(self, conn: _Conn) -> None:
        self.conns.pop(conn.fd, None)
        try:
            self.ep.unregister(conn.fd)
        except OSError:
            pass
        conn.sock.close()

    def _refill(self) -> None:
        """Open connections up to the concurrency; a loop, never recursion, since a
        closed port fails every attempt at once."""
        while len(self.conns) < self.concurrency and self._may_start():
            self._open()

    def _finish(self, conn: _Conn, outcome: str) -> None:
        self._close(conn)
        self._done(conn, outcome)
        self._refill()

    # -- events
    def _send(self, conn: _Conn) -> bool | None:
        """Write what is left of the request: True when all of it is out, False to
        wait for EPOLLOUT, None when the connection failed."""
        try:
            conn.sent += conn.sock.send(self.request[conn.sent:])
        except BlockingIOError:
            return False
        except OSError:
            return None
        if conn.sent < len(self.request):
            return False
        if self.debug:
            sys.stderr.write(self.request.decode("latin-1"))
        return True

    def _on_writable(self, conn: _Conn) -> None:
        sent = self._send(conn)
        if sent is None:
            self._finish(conn, "error")
        elif sent:
            self.ep.modify(conn.fd, _READABLE)

    def _on_readable(self, conn: _Conn, events: int) -> None:
        while True:
            try:
                chunk = conn.sock.recv(RECV_SIZE)
            except BlockingIOError:
                break
            except OSError:
                self._finish(conn, "error")
                return
            if not chunk:
                self._on_eof(conn)
                return
            if self.debug:
                sys.stderr.write(chunk.decode("latin-1"))
            conn.buf += chunk
            if self.keep_alive and self._consume_keepalive(conn):
                return
            if events & select.EPOLLRDHUP and len(chunk) < RECV_SIZE:
                self._on_eof(conn)
                return

    def _on_eof(self, conn: _Conn) -> None:
        """HTTP/1.0: the close marks the end. Keep-alive: a close mid-response is an error."""
        if self.keep_alive or not conn.buf:
            self._finish(conn, "error")
        else:
            self._finish(conn, "bad" if _status_is_bad(conn.buf) else "good")

    def _consume_keepalive(self, conn: _Conn) -> bool:
        """Count every complete response in the buffer; True if the connection was replaced."""
        while (size := _frame(conn.buf)) > 0:
            response, conn.buf = conn.buf[:size], conn.buf[size:]
            self._done(conn, "bad" if _status_is_bad(response) else "good")
            if _wants_close(response) or not self._may_start():
                self._close(conn)
                self._refill()
                return True
            self.started += 1
            conn.sent = 0
            sent = self._send(conn)
            if sent is None:
                self._finish(conn, "error")
                return True
            if not sent:
                self.ep.modify(conn.fd, select.EPOLLOUT)
        return False

    def _on_event(self, fd: int, events: int) -> None:
        conn = self.conns.get(fd)
        if conn is None:
            return
        if events & select.EPOLLERR:
            self._finish(conn, "error")
        elif events & select.EPOLLOUT:
            self._on_writable(conn)
        elif events & (select.EPOLLIN | select.EPOLLHUP):
            self._on_readable(conn, events)

    def run(self) -> None:
        try:
            self._refill()
            while self.conns:
                timeout = -1.0
                if self.deadline:
                    timeout = self.deadline - time.monotonic()
                    if timeout <= 0:
                        self.stopped_by_duration = True
                        break
                for fd, events in self.ep.poll(timeout):
                    self._on_event(fd, events)
        except KeyboardInterrupt:
            self.interrupted = True  # Ctrl-C: report what completed, like the C tool
        finally:
            for conn in list(self.conns.values()):
                self._close(conn)
            self.ep.close()

    def counts(self) -> tuple[int, int, int, float, bool, bool]:
        return (self.good, self.bad, self.errors, self.last_done, self.stopped_by_duration,
                self.interrupted or self.stop)


def _split(total: int, parts: int) -> list[int]:
    """Share ``-n`` among workers; 0 stays 0 (unlimited) for every worker.

    A worker whose share would be 0 is not started at all, since a budget of
    0 means "no limit": ``-n 2 -t 3`` runs two workers of one request each.
    """
    if total == 0:
        return [0] * parts
    shares = [total // parts + (1 if i < total % parts else 0) for i in range(parts)]
    return [share for share in shares if share]


def _fd_room(concurrency: int) -> None:
    """Make room for ``concurrency`` sockets in one process, or say why there is none.

    Raises the soft ``RLIMIT_NOFILE`` towards the hard one if needed (as a
    shell's ``ulimit -n`` would); a UsageError names both limits otherwise.
    """
    import resource

    need = concurrency + 64  # the sockets, plus what the interpreter holds open
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < need:
        if hard == resource.RLIM_INFINITY or hard >= need:
            resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))
        else:
            raise UsageError(f"-c {concurrency} needs about {need} open files per process; "
                             f"the limit is {hard} (ulimit -Hn)")


def _child(conn, target, concurrency, budget, deadline, keep_alive, debug, go) -> None:
    """Body of one worker process: wait for the common start, run, send the counts back."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    go.wait()
    worker = _Worker(target, concurrency, budget, deadline, keep_alive, debug)
    signal.signal(signal.SIGTERM, lambda *_: setattr(worker, "stop", True))
    worker.run()
    conn.send(worker.counts())
    conn.close()


def _run_python(target: Target, requests: int, concurrency: int, threads: int,
                duration: float, keep_alive: bool, debug: bool) -> Result:
    """Run the Python engine: one worker in this process, or ``threads`` processes."""
    budgets = _split(requests, threads)
    _fd_room(concurrency)
    if len(budgets) == 1:
        start = time.monotonic()
        deadline = start + duration if duration else 0.0
        worker = _Worker(target, concurrency, budgets[0], deadline, keep_alive, debug)
        worker.run()
        outcomes = [worker.counts()]
    else:
        start, deadline, outcomes = _run_processes(target, budgets, concurrency, duration,
                                                   keep_alive, debug)
    good = sum(o[0] for o in outcomes)
    bad = sum(o[1] for o in outcomes)
    errors = sum(o[2] for o in outcomes)
    timed_out = any(o[4] for o in outcomes)
    end = deadline if timed_out else max(o[3] for o in outcomes)
    seconds = max(end - start, 1e-6)
    total = good + bad + errors
    return Result(total, good, bad, errors, seconds, total / seconds, "python", keep_alive,
                  timed_out, any(o[5] for o in outcomes))


def _run_processes(target, budgets, concurrency, duration, keep_alive, debug):
    """Fork one worker per ``-t``, release them together, collect their counts.

    Workers wait on an event so forking (milliseconds each) is not timed; the
    clock starts when they are released.  ``time.monotonic`` is one system-wide
    clock on Linux, so the children's end times compare with the parent's start.
    """
    ctx = multiprocessing.get_context("fork")
    go = ctx.Event()
    deadline = time.monotonic() + duration if duration else 0.0
    procs, pipes = [], []
    try:
        for budget in budgets:
            parent_end, child_end = ctx.Pipe(duplex=False)
            p = ctx.Process(target=_child, daemon=True, args=(
                child_end, target, concurrency, budget, deadline, keep_alive, debug, go))
            p.start()
            child_end.close()
            procs.append(p)
            pipes.append(parent_end)
        start = time.monotonic()
        go.set()
        outcomes = [_receive(pipe, procs, deadline) for pipe in pipes]
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()
            p.join(timeout=5)
    return start, deadline, outcomes


def _receive(pipe, procs, deadline: float):
    """Wait for one worker's counts; on Ctrl-C ask every worker to stop and keep waiting."""
    while True:
        try:
            limit = (deadline - time.monotonic() + 10) if deadline else None
            if pipe.poll(limit):
                return pipe.recv()
            raise RuntimeError("an htstress worker process did not report back")
        except KeyboardInterrupt:
            for p in procs:
                if p.is_alive():
                    os.kill(p.pid, signal.SIGTERM)
        except EOFError:
            raise RuntimeError("an htstress worker process died") from None


# --------------------------------------------------------------------------- C engine


_PDEATHSIG_SHIM = (
    "import ctypes, os, signal, sys\n"
    "ctypes.CDLL(None).prctl(1, signal.SIGKILL)\n"  # PR_SET_PDEATHSIG
    "if os.getppid() == 1: sys.exit(1)\n"           # the parent died before prctl
    "os.execv(sys.argv[1], sys.argv[1:])\n"
)


def die_with_parent(argv: list[str] | tuple[str, ...]) -> list[str]:
    """``argv`` wrapped so the kernel SIGKILLs the program when its parent dies.

    A small Python shim sets ``PR_SET_PDEATHSIG`` and then execs the
    program: the PID stays the same and the death signal survives ``exec``, so
    even ``kill -9`` of the bench or of this tool leaves no load generator or
    server running.  A shim rather than ``preexec_fn``, which is unsafe once
    the parent has threads.
    """
    return [sys.executable, "-c", _PDEATHSIG_SHIM, *argv]


def c_tool(path: Path | None = None) -> Path | None:
    """The compiled htstress if it exists and is executable, else None."""
    candidate = path or C_TOOL
    return candidate if candidate.is_file() and os.access(candidate, os.X_OK) else None


def c_tool_supports_keepalive(tool: Path) -> bool:
    """True if the C tool's usage text mentions keep-alive (``-k``/``--keep-alive``)."""
    try:
        out = subprocess.run([str(tool), "--help"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "keep-alive" in (out.stdout + out.stderr).lower()


def _run_c(tool: Path, url: str, requests: int, concurrency: int, threads: int,
           duration: float, keep_alive: bool, extra: list[str]) -> Result:
    """Run the C tool; on the duration bound send SIGINT (it then prints its block)."""
    cmd = [str(tool), "-n", str(requests), "-c", str(concurrency), "-t", str(threads)]
    cmd += (["-k"] if keep_alive else []) + extra + [url]
    proc = subprocess.Popen(die_with_parent(cmd), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    timed_out = interrupted = False
    try:
        out, err = proc.communicate(timeout=duration or None)
    except subprocess.TimeoutExpired:
        timed_out = True
        proc.send_signal(signal.SIGINT)
        try:
            out, err = proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
    except KeyboardInterrupt:
        interrupted = True  # pass the Ctrl-C on (a terminal's already did); it prints its block
        proc.send_signal(signal.SIGINT)
        try:
            out, err = proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise KeyboardInterrupt from None
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    try:
        result = parse_block(out, engine="c")
    except ValueError as exc:
        raise RuntimeError(f"{tool} failed (exit {proc.returncode}): {err.strip()}") from exc
    result.keep_alive = keep_alive
    result.stopped_by_duration = timed_out
    result.interrupted = interrupted
    return result


# --------------------------------------------------------------------------- API


def choose_engine(engine: str, keep_alive: bool, unix_path: str = "") -> tuple[str, Path | None]:
    """Pick the engine: ``auto`` prefers the C tool when it can do what was asked."""
    tool = c_tool()
    if engine == "python":
        return "python", None
    if engine == "c":
        if tool is None:
            raise UsageError(f"--engine c: {C_TOOL} not found (run 'make kmod')")
        return "c", tool
    if tool is not None and (not keep_alive or c_tool_supports_keepalive(tool)):
        return "c", tool
    return "python", None


def run_htstress(url: str = "http://127.0.0.1:8081/", requests: int = 10000,
                 concurrency: int = 100, threads: int = 1, duration: float = 30.0,
                 keep_alive: bool = False, engine: str = "auto", host_header: str | None = None,
                 unix_path: str = "", family: int = socket.AF_UNSPEC,
                 debug: bool = False, partial_on_interrupt: bool = False) -> Result:
    """Run one htstress load and return its :class:`Result` (for notebooks and bench).

    ``concurrency`` is per thread (``-c``); the load keeps ``concurrency *
    threads`` connections open.  ``duration`` bounds the run in seconds.
    Ctrl-C raises ``KeyboardInterrupt`` once the load is torn down, unless
    ``partial_on_interrupt`` (the CLI) asks for the counts so far instead.
    """
    result = _run(url, requests, concurrency, threads, duration, keep_alive, engine,
                  host_header, unix_path, family, debug)
    if result.interrupted and not partial_on_interrupt:
        raise KeyboardInterrupt
    return result


def _run(url: str, requests: int, concurrency: int, threads: int, duration: float,
         keep_alive: bool, engine: str, host_header: str | None, unix_path: str, family: int,
         debug: bool) -> Result:
    """Validate, resolve (loopback only) and run the chosen engine."""
    if concurrency < 1 or threads < 1 or requests < 0 or duration < 0:
        raise UsageError("need concurrency >= 1, threads >= 1, requests >= 0, duration >= 0")
    target = resolve(url, family, unix_path, host_header)
    name, tool = choose_engine(engine, keep_alive, unix_path)
    if name == "c" and tool is not None:
        extra = ["-u", unix_path] if unix_path else []
        extra += ["-h", target.host_header, "-d"] if debug else ["-h", target.host_header]
        if target.family == socket.AF_INET:
            # the address we checked is loopback, not whatever the tool would resolve
            url = f"http://{target.address[0]}:{target.port}{target.path}"
            extra.append("-4")
        elif family == socket.AF_INET6:
            extra.append("-6")
        return _run_c(tool, url, requests, concurrency, threads, duration, keep_alive, extra)
    return _run_python(target, requests, concurrency, threads, duration, keep_alive, debug)


# --------------------------------------------------------------------------- CLI

USAGE = """\
usage: python -m khttpd_py htstress [options] [http://]host[:port][/path]

Options (as htstress.c):
  -n N          total number of requests (0 = until Ctrl-C or --duration)
  -c N          concurrent connections per thread (default 1)
  -t N          threads (processes in the Python engine; default 1)
  -u PATH       connect to this unix domain socket instead
  -h HOST       Host header to send (default: the URL's host)
  -d            debug: dump requests and responses on stderr
  -4 / -6       resolve the host as IPv4 / IPv6 only
Additions:
  -k, --keep-alive   HTTP/1.1, many requests per connection (Content-Length framing)
  --duration S       stop after S seconds even if -n is not reached (default 120, 0 = none)
  --engine E         auto (C tool if built, else Python), c or python
  --json             print the result as JSON after the block
  --help             this text

Only loopback hosts (127.0.0.0/8, ::1) are accepted.
"""


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so main() owns messages and exit codes."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)


_COUNTS = ("-n", "-c", "-t", "--duration")


def _refuse_negative_counts(argv: list[str]) -> None:
    """Name a negative count ourselves: with ``-4``/``-6`` defined, argparse takes
    ``-5`` for an option and would only say "expected one argument"."""
    for flag, value in zip(argv, argv[1:], strict=False):
        if flag in _COUNTS and re.fullmatch(r"-[0-9.]+", value):
            raise UsageError(f"argument {flag}: must not be negative: {value}")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="htstress", add_help=False, usage=USAGE)
    p.add_argument("-n", type=int, default=1, dest="requests")
    p.add_argument("-c", type=int, default=1, dest="concurrency")
    p.add_argument("-t", type=int, default=1, dest="threads")
    p.add_argument("-u", default="", dest="unix_path")
    p.add_argument("-h", default=None, dest="host_header")
    p.add_argument("-d", action="store_true", dest="debug")
    p.add_argument("-4", action="store_const", const=socket.AF_INET, dest="family",
                   default=socket.AF_UNSPEC)
    p.add_argument("-6", action="store_const", const=socket.AF_INET6, dest="family")
    p.add_argument("-k", "--keep-alive", action="store_true")
    p.add_argument("--duration", type=seconds_in(0, 1e9), default=DEFAULT_DURATION)
    p.add_argument("--engine", choices=("auto", "c", "python"), default="auto")
    p.add_argument("--json", action="store_true")
    p.add_argument("--help", action="store_true")
    p.add_argument("url", nargs="?")
    return p


def main(argv: list[str] | None = None) -> int:
    """CLI entry: exit 0 on a completed run, 1 on a failed run (or one that no server
    answered), 2 on a usage error."""
    argv = sys.argv[1:] if argv is None else argv
    with sigterm_as_interrupt():  # timeout/kill: print the counts so far, as the C tool
        return _main(argv)


def _main(argv: list[str]) -> int:
    try:
        _refuse_negative_counts(argv)
        args = build_parser().parse_args(argv)
        if args.help or not argv:
            print(USAGE, end="")
            return 0
        if not args.url:
            raise UsageError("missing URL")
        if args.requests == 0 and not args.duration:
            print("[Press Ctrl-C to finish]")
        result = run_htstress(args.url, args.requests, args.concurrency, args.threads,
                              args.duration, args.keep_alive, args.engine, args.host_header,
                              args.unix_path, args.family, args.debug,
                              partial_on_interrupt=True)
    except UsageError as exc:
        print(f"htstress: {exc}\n(try --help)", file=sys.stderr)
        return 2
    except RuntimeError as exc:
        print(f"htstress: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # before the load started: nothing to report
        print("htstress: interrupted", file=sys.stderr)
        return 130
    try:
        print(f"# engine: {result.engine}", file=sys.stderr)
        if result.stopped_by_duration:
            print(f"# stopped by --duration {args.duration:g}", file=sys.stderr)
        print(format_block(result), flush=True)
        if args.json:
            print(json.dumps(result.to_dict()), flush=True)
    except BrokenPipeError:  # e.g. piped into head
        sys.stdout = open(os.devnull, "w")  # the exit-time flush would fail again
        return 0
    if result.requests and not (result.good or result.bad):
        print(f"htstress: no request was answered ({result.socket_errors} socket errors): "
              f"is a server listening at {args.unix_path or args.url}?", file=sys.stderr)
        return 1
    return 0


def which_engine() -> str:
    """Name of the engine ``auto`` would pick for HTTP/1.0 load (for banners)."""
    return "c" if c_tool() else "python"


__all__ = ["Result", "Target", "UsageError", "format_block", "main", "parse_block", "parse_url",
           "resolve", "run_htstress", "which_engine"]
