"""``python -m khttpd_py.ktrace``: summarise, show and compare ``make trace`` recordings."""

from __future__ import annotations

import argparse
import json
import sys

from khttpd_py.ktrace import MODES, RECORDED, TraceFormatError, compare_with_sim, load_recorded
from khttpd_py.ktrace.recording import pack, summarize, write_summary


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status (0 ok, 1 unreadable input, 2 usage)."""
    ap = argparse.ArgumentParser(prog="python -m khttpd_py.ktrace",
                                 description="Kernel traces of khttpd.ko (make -C kmod trace).")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("summarize", help="write summary.json and metadata.json into DIR")
    p.add_argument("dir")
    p.add_argument("--started", default="", help="UTC date of the recording")
    p.add_argument("--command", default="", help="the command that recorded it")
    p.add_argument("--accel", default="", help="QEMU accelerator (tcg or kvm)")
    p.add_argument("--qemu", default="", help="QEMU version line")
    p.add_argument("--events", choices=("module", "all", "none"), default="module",
                   help="which events summary.json lists (default: the module's)")
    p = sub.add_parser("pack", help="gzip DIR's traces and summary.json for committing")
    p.add_argument("dir")
    p = sub.add_parser("show", help="print each mode's summary")
    p.add_argument("dir", nargs="?", default=str(RECORDED))
    p.add_argument("--mode", action="append", help="only these modes")
    p = sub.add_parser("compare", help="replay a cmwq mode through the simulator")
    p.add_argument("dir", nargs="?", default=str(RECORDED))
    p.add_argument("--mode", action="append", help="cmwq modes (default: every cmwq one)")
    p.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    try:
        if args.cmd == "summarize":
            for path in write_summary(args.dir, started=args.started, command=args.command,
                                      accel=args.accel, qemu=args.qemu,
                                      events=args.events):
                print(f"# wrote {path}")
            return 0
        if args.cmd == "pack":
            for path in pack(args.dir):
                print(f"# wrote {path}")
            return 0
        rec = load_recorded(args.dir)
        modes = args.mode or rec.modes()
        if args.cmd == "show":
            for mode in modes:
                s = summarize(rec.mode(mode))
                s["kworkers_alive"].pop("series_ms")
                print(f"== {mode} {MODES.get(mode, {})}")
                for key, value in s.items():
                    print(f"  {key}: {value}")
            return 0
        out = {}
        for mode in modes:
            params = MODES.get(mode, {})
            if params.get("mode") != "cmwq":
                continue
            cmp = compare_with_sim(rec.mode(mode), rec.guest_cpus, params["wq_flags"],
                                   params["max_active"])
            out[mode] = cmp.to_dict()
            if not args.json:
                print(f"== {mode} {params}\n{cmp.text()}")
        if args.json:
            print(json.dumps(out, indent=1))
        return 0
    except (OSError, TraceFormatError, ValueError) as exc:
        print(f"ktrace: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
