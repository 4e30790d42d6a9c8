"""ftrace text lines to typed events.

One line of ``/sys/kernel/tracing/trace`` (nop tracer, default options, Linux
6.1) looks like::

    kworker/u4:1-35      [001] d..2.    12.345678: workqueue_execute_start:
        work struct 000000008d2a4f4b: function http_conn_work [khttpd]

(one line in the file):
that is: the current task's comm and pid, the CPU, the irq/preempt flags, the
timestamp in seconds and the event's name and text.  :func:`parse_line` turns
it into a :class:`TraceEvent` whose ``fields`` hold the event's own values,
typed (ints as ints), for the events ``make -C kmod trace`` enables (their
``TP_printk`` formats, as ``kmod``'s recorded ``formats.txt`` shows them):

* ``workqueue_queue_work``: ``work struct=%p function=%ps workqueue=%s
  req_cpu=%d cpu=%d`` -> ``work``, ``function``, ``workqueue``, ``req_cpu``,
  ``cpu`` (``req_cpu`` 8192 is WORK_CPU_UNBOUND, what ``queue_work()``
  passes; ``cpu`` is the CPU of the pool the work went to: the queueing CPU
  for a per-CPU workqueue, -1 for an unbound one)
* ``workqueue_activate_work``: ``work struct %p`` -> ``work``
* ``workqueue_execute_start`` / ``workqueue_execute_end``: ``work struct %p:
  function %ps`` -> ``work``, ``function``
* ``sched_switch``: ``prev_comm prev_pid prev_prio prev_state next_comm
  next_pid next_prio``
* ``sched_wakeup`` / ``sched_wakeup_new``: ``comm pid prio target_cpu``
* ``sched_process_exit``: ``comm pid prio``
* ``task_newtask``: ``pid comm clone_flags oom_score_adj``
* ``task_rename``: ``pid oldcomm newcomm oom_score_adj``
* ``tracing_mark_write`` (a line written to ``trace_marker``): ``text``

Other events are kept with their text in ``fields["text"]``.  Function names
lose their ``[module]`` suffix into ``fields["module"]``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

FieldValue = int | str


class TraceFormatError(ValueError):
    """A trace line that cannot be read; the message names the line."""


@dataclass(frozen=True)
class TraceEvent:
    """One ftrace event.

    ``ts`` is in seconds (the trace clock's, ``global`` in recorded traces);
    ``comm``/``pid`` are the task that was current on ``cpu`` when the event
    fired (for ``task_newtask``, the parent: ``kthreadd`` for kernel threads).
    ``lineno`` is the line's number in its file, 1-based.
    """

    ts: float
    cpu: int
    pid: int
    comm: str
    event: str
    fields: dict[str, FieldValue] = field(default_factory=dict)
    flags: str = ""
    lineno: int = 0

    @property
    def us(self) -> int:
        """The timestamp in whole microseconds (ftrace prints microseconds)."""
        return round(self.ts * 1_000_000)

    def get(self, key: str, default: Any = None) -> Any:
        """A field's value, or ``default``."""
        return self.fields.get(key, default)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON: the common fields, ``args`` (the event's own fields,
        whose names may repeat the common ones: ``task_newtask`` has its own
        ``pid``), and for workqueue events ``work``/``function``/``workqueue`` on top."""
        out: dict[str, Any] = {"ts": self.ts, "cpu": self.cpu, "pid": self.pid,
                               "comm": self.comm, "event": self.event}
        for key in ("work", "function", "workqueue"):
            if key in self.fields:
                out[key] = self.fields[key]
        out["args"] = dict(self.fields)
        return out


# comm may hold spaces and dashes: the pid is the last "-digits" before the CPU
_LINE_RE = re.compile(
    r"^\s*(?P<comm>.*?)-(?P<pid>\d+)\s+"
    r"(?:\(\s*(?P<tgid>[\d-]+)\)\s+)?"
    r"\[(?P<cpu>\d+)\]\s+"
    r"(?:(?P<flags>[^\s\d][^\s]{2,5})\s+)?"
    r"(?P<ts>\d+\.\d+):\s+"
    r"(?P<event>[A-Za-z0-9_]+):\s?(?P<body>.*)$"
)

_FUNC = r"(?P<function>[^\s\[]+)(?:\s+\[(?P<module>[^\]]+)\])?"
_BODY_RES: dict[str, re.Pattern[str]] = {
    "workqueue_queue_work": re.compile(
        r"^work struct=(?P<work>\S+) function=" + _FUNC +
        r" workqueue=(?P<workqueue>\S+) req_cpu=(?P<req_cpu>-?\d+) cpu=(?P<cpu>-?\d+)$"),
    "workqueue_activate_work": re.compile(r"^work struct (?P<work>\S+)$"),
    "workqueue_execute_start": re.compile(r"^work struct (?P<work>\S+): function " + _FUNC + "$"),
    "workqueue_execute_end": re.compile(r"^work struct (?P<work>\S+): function " + _FUNC + "$"),
    "sched_switch": re.compile(
        r"^prev_comm=(?P<prev_comm>.*?) prev_pid=(?P<prev_pid>-?\d+) prev_prio=(?P<prev_prio>-?\d+)"
        r" prev_state=(?P<prev_state>\S+) ==> next_comm=(?P<next_comm>.*?)"
        r" next_pid=(?P<next_pid>-?\d+) next_prio=(?P<next_prio>-?\d+)$"),
    "sched_wakeup": re.compile(
        r"^comm=(?P<comm>.*?) pid=(?P<pid>-?\d+) prio=(?P<prio>-?\d+)"
        r"(?: success=\d+)? target_cpu=(?P<target_cpu>\d+)$"),
    "sched_process_exit": re.compile(
        r"^comm=(?P<comm>.*?) pid=(?P<pid>-?\d+) prio=(?P<prio>-?\d+)(?: group_dead=\S+)?$"),
    "task_newtask": re.compile(
        r"^pid=(?P<pid>\d+) comm=(?P<comm>.*?) clone_flags=(?P<clone_flags>[0-9a-fx]+)"
        r" oom_score_adj=(?P<oom_score_adj>-?\d+)$"),
    "task_rename": re.compile(
        r"^pid=(?P<pid>\d+) oldcomm=(?P<oldcomm>.*?) newcomm=(?P<newcomm>.*?)"
        r" oom_score_adj=(?P<oom_score_adj>-?\d+)$"),
}
_BODY_RES["sched_wakeup_new"] = _BODY_RES["sched_wakeup"]
_BODY_RES["sched_waking"] = _BODY_RES["sched_wakeup"]

_INT_FIELDS = frozenset({
    "req_cpu", "prev_pid", "prev_prio", "next_pid", "next_prio", "pid", "prio",
    "target_cpu", "oom_score_adj",
})

UNBOUND_CPU = 8192
"""``req_cpu`` of ``queue_work()`` (WORK_CPU_UNBOUND = NR_CPUS, 8192 in Debian's 6.1)."""


def parse_line(line: str, lineno: int = 0) -> TraceEvent | None:
    """Parse one trace line; None for comments and blank lines.

    Raises :class:`TraceFormatError` for a line that is neither, or for an
    event this module knows whose text does not match its format.
    """
    text = line.rstrip("\r\n")
    if not text.strip() or text.lstrip().startswith("#"):
        return None
    m = _LINE_RE.match(text)
    if m is None:
        raise TraceFormatError(f"line {lineno}: not an ftrace event line: {text[:120]!r}")
    event = m["event"]
    body = m["body"]
    fields: dict[str, FieldValue] = {}
    pattern = _BODY_RES.get(event)
    if event == "tracing_mark_write":
        fields["text"] = body.strip()
    elif pattern is not None:
        bm = pattern.match(body.strip())
        if bm is None:
            raise TraceFormatError(f"line {lineno}: {event} text not in the expected format: "
                                   f"{body[:120]!r}")
        for key, value in bm.groupdict().items():
            if value is None:
                continue
            if key in _INT_FIELDS:
                fields[key] = int(value)
            elif key == "cpu":  # queue_work's pwq cpu, printed %d of an int
                cpu = int(value)
                fields[key] = -1 if cpu >= 2**31 else cpu
            else:
                fields[key] = value
    else:
        fields["text"] = body
    return TraceEvent(
        ts=float(m["ts"]), cpu=int(m["cpu"]), pid=int(m["pid"]), comm=m["comm"].strip(),
        event=event, fields=fields, flags=m["flags"] or "", lineno=lineno,
    )


def read_kallsyms(text: str) -> dict[str, tuple[str, str]]:
    """``/proc/kallsyms`` lines -> {``"0xffffffffc0201540"``: (name, module)}.

    ftrace resolves ``%ps`` when the trace is *read*; a trace read after the
    module was unloaded shows its functions as raw addresses, which the
    recording's ``kallsyms.txt`` (taken while it was loaded) names again.
    """
    table: dict[str, tuple[str, str]] = {}
    for row in text.splitlines():
        parts = row.split()
        if len(parts) >= 3:
            module = parts[3].strip("[]") if len(parts) > 3 else ""
            table[f"0x{int(parts[0], 16):x}"] = (parts[2], module)
    return table


def parse_trace(lines: str | Iterable[str],
                symbols: dict[str, tuple[str, str]] | None = None) -> list[TraceEvent]:
    """Every event of a trace (its text, or an iterable of lines), in file order.

    ``symbols`` (from :func:`read_kallsyms`) names functions printed as raw
    addresses.

    ftrace merges the per-CPU buffers by timestamp when it prints ``trace``,
    so file order is time order.  Raises :class:`TraceFormatError` on the first
    unreadable line, and for a trace whose ring buffer lost events (ftrace
    writes ``CPU:N [LOST M EVENTS]`` lines then): a summary of such a trace
    would silently undercount.
    """
    if isinstance(lines, str):
        lines = lines.splitlines()
    events: list[TraceEvent] = []
    for n, line in enumerate(lines, 1):
        if "[LOST " in line and " EVENTS]" in line:
            raise TraceFormatError(f"line {n}: the ring buffer overflowed ({line.strip()}); "
                                   "record again with a larger buffer (TRACE_BUF_KB)")
        ev = parse_line(line, n)
        if ev is None:
            continue
        func = ev.fields.get("function")
        if symbols and isinstance(func, str) and func in symbols:
            ev.fields["function"], ev.fields["module"] = symbols[func]
        events.append(ev)
    return events


def marker(ev: TraceEvent, prefix: str = "khttpd-trace:") -> str | None:
    """The text after ``prefix`` of a ``trace_marker`` line, else None."""
    if ev.event != "tracing_mark_write":
        return None
    text = str(ev.fields.get("text", ""))
    if not text.startswith(prefix):
        return None
    return text[len(prefix):].strip()
