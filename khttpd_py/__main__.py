"""``python -m khttpd_py`` / ``khttpd-py``: one entry point, one sub-command per tool.

Each sub-command lives in the module that owns the concept and exposes
``main(argv) -> int``; importing lazily keeps ``serve`` from paying for
matplotlib and ``sim`` from paying for httptools.
"""

from __future__ import annotations

import importlib
import sys

COMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("khttpd_py.server", "run the reference khttpd (thread, cmwq or cmwq-event mode)"),
    "wq-monitor": ("khttpd_py.workqueue.monitor", "print wq_monitor-style stats of a server"),
    "sim": ("khttpd_py.sim.cli", "deterministic workqueue simulator (OSTEP style)"),
    "htstress": ("khttpd_py.htstress", "htstress-compatible HTTP load generator"),
    "bench": ("khttpd_py.bench", "benchmark lab: thread vs cmwq vs peers"),
    "ktrace": ("khttpd_py.ktrace.__main__", "kernel traces of khttpd.ko (make -C kmod trace)"),
}


def usage() -> str:
    lines = ["usage: python -m khttpd_py COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name:<11} {help_}" for name, (_, help_) in COMMANDS.items()]
    lines.append("")
    lines.append("Run 'python -m khttpd_py COMMAND --help' for a command's options.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help"):
        print(usage(), file=sys.stdout if args else sys.stderr)  # no command: a usage error
        return 0 if args else 2
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        print(f"khttpd-py: unknown command {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    try:
        return int(module.main(rest) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
