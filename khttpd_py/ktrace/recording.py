"""A directory written by ``make -C kmod trace OUT=dir``, read back and summarised.

Layout (one directory per mode, as the guest wrote it, plus two JSON files the
host writes with :func:`write_summary`)::

    dir/guest.txt            uname -r, CPUs, kernel command line, buffer size
    dir/formats.txt          the enabled tracepoints' format files (their fields)
    dir/<mode>/trace.txt     the raw trace (``/sys/kernel/tracing/trace``); may be
                             committed gzipped as trace.txt.gz
    dir/<mode>/tasks-before.txt, tasks-loaded.txt, tasks-after.txt
                             "pid comm" of kworkers, khttpd threads and kthreadd
    dir/<mode>/sysfs-workqueue.txt   /sys/devices/virtual/workqueue/, module loaded
    dir/<mode>/buffer-stats.txt      per-CPU ring-buffer stats (overrun, dropped)
    dir/<mode>/result.txt    clients and htstress requests that succeeded
    dir/summary.json         per mode: the summary and the typed events
    dir/metadata.json        kernel, date, command, load
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from khttpd_py.ktrace.events import TraceEvent, TraceFormatError, parse_trace, read_kallsyms
from khttpd_py.ktrace.model import ModeTrace, distribution, kworker_pool

MODES: dict[str, dict[str, Any]] = {
    "kthread": {"mode": "kthread"},
    "unbound": {"mode": "cmwq", "wq_flags": "unbound", "max_active": 0},
    "bound": {"mode": "cmwq", "wq_flags": "bound", "max_active": 0},
    "max1": {"mode": "cmwq", "wq_flags": "unbound", "max_active": 1},
}
"""The modes ``make trace`` records and the module parameters each one loads with."""

LOAD = {
    "connections": 44,
    "phases": [
        {"name": "seq", "connections": 8,
         "what": "8 sequential HTTP/1.0 GETs (khttpc), each closed by the server"},
        {"name": "burst", "connections": 8,
         "what": "8 concurrent HTTP/1.0 GETs (khttpc in the background)"},
        {"name": "hold", "connections": 4,
         "what": "4 concurrent HTTP/1.1 keep-alive clients: GET, 600 ms quiet "
                 "(the work item blocks in recv), GET with Connection: close"},
        {"name": "htstress", "connections": 24,
         "what": "htstress -n 24 -c 4 -t 1 (HTTP/1.0, 4 connections at once)"},
    ],
    "port": 8081,
}
"""The fixed load ``kmod/vmtest/trace-init.sh`` runs against every mode."""

EVENTS = [
    "workqueue:workqueue_queue_work", "workqueue:workqueue_activate_work",
    "workqueue:workqueue_execute_start", "workqueue:workqueue_execute_end",
    'task:task_newtask (comm == "kthreadd")',
    'task:task_rename (newcomm ~ "kworker*" || newcomm ~ "khttpd*")',
    "sched:sched_process_exit, sched:sched_wakeup, sched:sched_wakeup_new"
    " (comm ~ kworker*/khttpd*)",
    "sched:sched_switch (prev_comm or next_comm ~ kworker*/khttpd*)",
    "ftrace:print (trace_marker lines naming the load's phases)",
]
"""What the guest enables, with its filters (trace-init.sh's setup_trace)."""


def read_key_values(path: Path) -> dict[str, str]:
    """``key=value`` lines (guest.txt, result.txt)."""
    out: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep:
                out[key.strip()] = value.strip()
    return out


def read_tasks(path: Path) -> dict[int, str]:
    """``pid comm`` lines (tasks-*.txt) as a dict; empty when the file is absent."""
    tasks: dict[int, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            pid, _, comm = line.strip().partition(" ")
            if pid.isdigit():
                tasks[int(pid)] = comm
    return tasks


def read_trace_text(mode_dir: Path) -> str:
    """trace.txt, or trace.txt.gz as committed under book/data."""
    plain = mode_dir / "trace.txt"
    if plain.exists():
        return plain.read_text(errors="replace")
    packed = mode_dir / "trace.txt.gz"
    if packed.exists():
        return gzip.decompress(packed.read_bytes()).decode(errors="replace")
    raise FileNotFoundError(f"{mode_dir}: no trace.txt or trace.txt.gz")


def lost_events(mode_dir: Path) -> int:
    """Events the ring buffer overwrote or dropped, summed over CPUs (buffer-stats.txt)."""
    path = mode_dir / "buffer-stats.txt"
    lost = 0
    if path.exists():
        for line in path.read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("overrun", "dropped events") and value.strip().isdigit():
                lost += int(value)
    return lost


@dataclass
class Recording:
    """One ``make trace`` output directory."""

    root: Path

    @property
    def guest(self) -> dict[str, str]:
        """guest.txt: uname_r, nproc, cmdline, modes, buffer_size_kb, trace_clock."""
        return read_key_values(self.root / "guest.txt")

    @property
    def guest_cpus(self) -> int:
        """The guest's CPU count (``nproc``), 1 when guest.txt does not say."""
        n = self.guest.get("nproc", "")
        return int(n) if n.isdigit() else 1

    def modes(self) -> list[str]:
        """The recorded modes, in the order they were traced."""
        listed = self.guest.get("modes", "").split()
        found = [m for m in listed if (self.root / m).is_dir()]
        return found or sorted(p.name for p in self.root.iterdir()
                               if p.is_dir() and ((p / "trace.txt").exists()
                                                  or (p / "trace.txt.gz").exists()))

    def events(self, mode: str) -> list[TraceEvent]:
        """The typed events of one mode."""
        d = self.root / mode
        syms = d / "kallsyms.txt"
        table = read_kallsyms(syms.read_text()) if syms.exists() else None
        return parse_trace(read_trace_text(d), table)

    def mode(self, mode: str) -> ModeTrace:
        """One mode's :class:`ModeTrace`; raises if the ring buffer lost events."""
        d = self.root / mode
        if not d.is_dir():
            raise FileNotFoundError(f"{self.root}: no mode {mode!r} (have {self.modes()})")
        lost = lost_events(d)
        if lost:
            raise TraceFormatError(f"{d}: the ring buffer lost {lost} events; "
                                   "record again with a larger TRACE_BUF_KB")
        return ModeTrace(self.events(mode), read_tasks(d / "tasks-before.txt"))

    def summary_json(self) -> dict[str, Any]:
        """summary.json (or the committed summary.json.gz) as written by :func:`write_summary`."""
        plain = self.root / "summary.json"
        if plain.exists():
            return json.loads(plain.read_text())
        packed = self.root / "summary.json.gz"
        if packed.exists():
            return json.loads(gzip.decompress(packed.read_bytes()))
        raise FileNotFoundError(f"{self.root}: no summary.json (run: python -m khttpd_py.ktrace "
                                f"summarize {self.root})")

    @property
    def metadata(self) -> dict[str, Any]:
        """metadata.json: guest kernel, date, command, load, accelerator."""
        return json.loads((self.root / "metadata.json").read_text())

    def sysfs(self, mode: str) -> str:
        """The guest's /sys/devices/virtual/workqueue/ dump taken with the module loaded."""
        return (self.root / mode / "sysfs-workqueue.txt").read_text()

    def result(self, mode: str) -> dict[str, str]:
        """result.txt: clients_ok, htstress_good, lost_events, trace_lines."""
        return read_key_values(self.root / mode / "result.txt")


def summarize(trace: ModeTrace) -> dict[str, Any]:
    """The numbers a reader compares across modes, as plain data (times in ms)."""
    conn_threads = trace.created("conn")
    new_kworkers = trace.created("kworker")
    pools: dict[str, int] = {}
    for t in new_kworkers:
        pool = kworker_pool(t.comm) or "?"
        pools[pool] = pools.get(pool, 0) + 1
    series = trace.kworkers_over_time()
    return {
        "kind": trace.kind,
        "connections": len(trace.services),
        "connections_finished": sum(1 for s in trace.services if s.ended_us is not None),
        "conn_threads_created": len(conn_threads),
        "kworkers_created": len(new_kworkers),
        "kworkers_created_per_pool": dict(sorted(pools.items())),
        "kworkers_exited": sum(1 for t in trace.threads.values()
                               if t.kind == "kworker" and t.exited_us is not None),
        "kworkers_alive": {"start": series[0][1], "peak": max(c for _, c in series),
                           "end": series[-1][1], "series_ms": series},
        "peak_running": trace.peak_running(),
        "peak_on_cpu": trace.peak_on_cpu(),
        "pools_used": sorted({s.pool for s in trace.services}),
        "workers_used": len({s.worker_pid for s in trace.services}),
        "latency": distribution(trace.latencies_us()),
        "start_order": trace.start_order(),
        "start_order_is_queue_order": trace.start_order() == [
            s.connection for s in trace.services if s.started_us is not None],
        "work_functions": trace.functions(),
        "events": len(trace.events),
    }


def summary_document(rec: Recording, events: str = "module") -> dict[str, Any]:
    """summary.json: per mode the parameters, the summary, the connections and the events.

    ``events`` is the scope of :meth:`ModeTrace.event_rows` (``"module"``,
    the default, or ``"all"``), or ``"none"`` to leave the events out.
    """
    modes: dict[str, Any] = {}
    for name in rec.modes():
        trace = rec.mode(name)
        entry: dict[str, Any] = {
            "params": MODES.get(name, {}),
            "summary": summarize(trace),
            "result": rec.result(name),
            "connections": [s.to_dict(trace.t0_us) for s in trace.services],
        }
        entry["t0_us"] = trace.t0_us
        if events != "none":
            entry["events_scope"] = events
            entry["events"] = trace.event_rows(events)
        modes[name] = entry
    return {"format": "khttpd-ktrace-summary/1", "modes": modes}


def _dump(doc: dict[str, Any]) -> str:
    """JSON with each mode's events one a line (indent=1 elsewhere)."""
    rows: dict[str, list[Any]] = {}
    for name, entry in doc["modes"].items():
        if "events" in entry:
            rows[name] = entry["events"]
            entry["events"] = f"@events:{name}@"
    text = json.dumps(doc, indent=1)
    for name, events in rows.items():
        body = ",\n".join("   " + json.dumps(e, separators=(",", ":")) for e in events)
        text = text.replace(json.dumps(f"@events:{name}@"), "[\n" + body + "\n  ]", 1)
        doc["modes"][name]["events"] = events
    return text


def write_summary(root: Path | str, *, started: str = "", command: str = "",
                  accel: str = "", qemu: str = "", events: str = "module") -> tuple[Path, Path]:
    """Write summary.json and metadata.json into a ``make trace`` directory.

    summary.json holds one event a line, so that it stays readable and diffs
    well; ``events`` is :func:`summary_document`'s scope.
    """
    rec = Recording(Path(root))
    if not rec.modes():
        raise FileNotFoundError(f"{root}: no recorded mode (no */trace.txt)")
    doc = summary_document(rec, events)
    summary_path = rec.root / "summary.json"
    summary_path.write_text(_dump(doc) + "\n")
    guest = rec.guest
    meta_path = rec.root / "metadata.json"
    # summarising again (a newer parser) keeps what only the recording run knew
    old = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    started = started or old.get("date", "")
    command = command or old.get("command", "")
    accel = accel or old.get("accelerator", "")
    qemu = qemu or old.get("qemu", "")
    meta = {
        "format": "khttpd-ktrace-metadata/1",
        "guest_kernel": guest.get("uname_r", ""),
        "guest_kernel_version": guest.get("uname_v", ""),
        "guest_cpus": int(guest["nproc"]) if guest.get("nproc", "").isdigit() else None,
        "guest_cmdline": guest.get("cmdline", ""),
        "accelerator": accel,
        "qemu": qemu,
        "date": started,
        "command": command,
        "modes": {m: MODES.get(m, {}) for m in rec.modes()},
        "load": LOAD,
        "events": EVENTS,
        "buffer_size_kb_per_cpu": guest.get("buffer_size_kb", ""),
        "trace_clock": guest.get("trace_clock", ""),
        "results": {m: rec.result(m) for m in rec.modes()},
    }
    meta_path.write_text(json.dumps(meta, indent=1) + "\n")
    return summary_path, meta_path


def pack(root: Path | str) -> list[Path]:
    """Compress a recording for committing: trace.txt and summary.json -> .gz (gzip -9,
    no name or time stamp, so equal input gives equal bytes); drops the originals."""
    rec = Recording(Path(root))
    targets = [rec.root / m / "trace.txt" for m in rec.modes()] + [rec.root / "summary.json"]
    done = []
    for path in targets:
        if not path.exists():
            continue
        gz = path.with_name(path.name + ".gz")
        with gz.open("wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw,
                                                 compresslevel=9, mtime=0) as dst:
            dst.write(path.read_bytes())
        path.unlink()
        done.append(gz)
    return done
