"""What a simulation is about: workqueues, work items and their phases, as data and as text.

A problem must be writable on a command line (``--work w0=burn5,sleep10,burn5@q0``),
in a notebook (``WorkSpec.parse(...)``) and printed back so a student can copy it;
this module owns that one grammar, so the CLI, the scenarios and the book cannot
drift apart.  Nothing here knows how the simulation runs.

Time is kept in integer microseconds inside the simulator (so 0.1 + 0.2 never
becomes 0.30000000000000004 in a timeline) and shown in milliseconds.

Work item grammar::

    [NAME=]PHASE{,PHASE}[@WQ][:cpu=N|rr][:at=MS][:n=COUNT][:every=MS]
    PHASE := burn MS | sleep MS      (short forms b MS, s MS; "burn5" or "burn 5"; "5ms" ok)

``n`` makes COUNT copies named NAME0, NAME1, ...; ``every`` spaces their queue
times; ``cpu=rr`` spreads them round-robin over the CPUs.

Workqueue grammar::

    NAME[:FLAGS[:MAX_ACTIVE]]        e.g.  q1:cpu_intensive   q0:bound:2   log:ordered
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from khttpd_py.workqueue import policy

US_PER_MS = 1000
"""Simulated time is counted in microseconds and shown in milliseconds."""

BURN = "burn"
SLEEP = "sleep"
PHASE_WORDS: dict[str, str] = {"burn": BURN, "b": BURN, "sleep": SLEEP, "s": SLEEP}
"""Phase words accepted in specs and what they mean."""

MODELS: dict[str, str] = {
    "legacy-st": "original single-threaded workqueues: one worker thread per workqueue",
    "legacy-mt": "original multi-threaded workqueues: one worker thread per CPU per workqueue",
    "cmwq": "concurrency-managed workqueues: shared per-CPU and unbound kworker pools",
}
"""The execution models the simulator knows, with one-line descriptions."""

ORDERED_FLAG_NAME = "ordered"
"""Not a flag of ``alloc_workqueue``: it stands for ``alloc_ordered_workqueue``."""

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")
_NUMBER_RE = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")
_PHASE_RE = re.compile(r"^([A-Za-z]+)\s*([^A-Za-z\s]*)\s*(ms)?$")


class SpecError(ValueError):
    """A problem description that cannot be simulated; the message is one line for humans."""


# --- time --------------------------------------------------------------------------------
def parse_ms(text: str, what: str) -> int:
    """Parse a non-negative millisecond count (``"5"``, ``"2.5"``, ``"5ms"``) into microseconds."""
    raw = text.strip()
    if raw.endswith("ms"):
        raw = raw[:-2].strip()
    if not _NUMBER_RE.match(raw):
        raise SpecError(f"{what}: {text.strip()!r} is not a number of milliseconds")
    value = float(raw)
    if value < 0:
        raise SpecError(f"{what}: negative time {text.strip()} (times are >= 0 ms)")
    micros = round(value * US_PER_MS)
    if abs(micros - value * US_PER_MS) > 1e-6:
        raise SpecError(f"{what}: {text.strip()} ms is finer than the simulator's 1 us resolution")
    return micros


def ms_value(micros: int) -> int | float:
    """Microseconds as a millisecond number for JSON: an int when whole (``5``, ``2.5``)."""
    whole, rest = divmod(micros, US_PER_MS)
    return whole if rest == 0 else micros / US_PER_MS


def fmt_ms(micros: int) -> str:
    """Microseconds as a millisecond string without noise (``"5"``, ``"2.5"``, ``"0.001"``)."""
    return str(ms_value(micros))


def parse_int(text: str, what: str) -> int:
    """An integer option value, with a message that names the option."""
    try:
        return int(text.strip())
    except ValueError:
        raise SpecError(f"{what} must be an integer, got {text.strip()!r}") from None


def check_name(name: str, what: str) -> str:
    """Names appear in timelines and specs, so keep them to identifier-like words."""
    if not _NAME_RE.match(name):
        raise SpecError(f"{what} name {name!r} is not valid (letters, digits, _ . -)")
    return name


# --- phases -------------------------------------------------------------------------------
Phase = tuple[str, int]
"""(``"burn"`` or ``"sleep"``, duration in microseconds)."""


def parse_phases(text: str, what: str = "work") -> tuple[Phase, ...]:
    """``"burn5,sleep10,burn5"`` -> ((burn, 5000), (sleep, 10000), (burn, 5000)).

    Adjacent phases of the same kind are merged and zero-length ones dropped:
    they would produce no observable event.
    """
    phases: list[Phase] = []
    words = [w.strip() for w in text.split(",")]
    if not words or words == [""]:
        raise SpecError(f"{what}: no phases (write e.g. burn5,sleep10,burn5)")
    for word in words:
        match = _PHASE_RE.match(word)
        kind = PHASE_WORDS.get(match.group(1).lower()) if match else None
        if match is None or kind is None:
            raise SpecError(f"{what}: unknown phase {word!r} (use burn MS or sleep MS)")
        if not match.group(2):
            raise SpecError(f"{what}: phase {word!r} has no duration (e.g. {kind}5)")
        duration = parse_ms(match.group(2), f"{what}: phase {word!r}")
        if duration == 0:
            continue
        if phases and phases[-1][0] == kind:
            phases[-1] = (kind, phases[-1][1] + duration)
        else:
            phases.append((kind, duration))
    return tuple(phases)


def phases_text(phases: tuple[Phase, ...], sep: str = ",") -> str:
    """The inverse of :func:`parse_phases` (``"burn5,sleep10"``); ``"burn0"`` when empty."""
    if not phases:
        return "burn0"
    return sep.join(f"{kind}{fmt_ms(dur)}" for kind, dur in phases)


# --- workqueues -----------------------------------------------------------------------------
def parse_wq_flags(text: str | int) -> int:
    """Flag names (policy's, plus ``ordered``) to a flags word; ordered implies unbound."""
    if isinstance(text, int):
        return text
    names = [n.strip() for n in text.replace("|", ",").split(",")]
    flags = 0
    rest = []
    for name in names:
        if name.lower().replace("-", "_") in (ORDERED_FLAG_NAME, "__wq_ordered", "wq_ordered"):
            flags |= policy.WQ_UNBOUND | policy.WQ_ORDERED
        else:
            rest.append(name)
    try:
        flags |= policy.parse_flags(rest)
    except ValueError as exc:
        bad = next((n for n in rest if _flag_unknown(n)), None)
        if bad is None:  # every name is known: they contradict each other
            raise SpecError(str(exc)) from None
        valid = ", ".join(["bound", *policy.FLAG_NAMES, ORDERED_FLAG_NAME])
        raise SpecError(f"unknown workqueue flag {bad!r} (valid: {valid})") from None
    if flags & policy.WQ_ORDERED and any(_is_bound(n) for n in rest):
        raise SpecError("a workqueue cannot be both bound and ordered (which is unbound)")
    return flags


def _is_bound(name: str) -> bool:
    return name.strip().lower().replace("-", "_").removeprefix("wq_") == "bound"


def _flag_unknown(name: str) -> bool:
    try:
        policy.parse_flags([name])
    except ValueError:
        return True
    return False


@dataclass(frozen=True)
class WqSpec:
    """A workqueue as ``alloc_workqueue(name, flags, max_active)`` would create it.

    ``max_active`` is what the caller asked for; the simulator clamps it as the
    kernel does (0 = default) and reports a warning for out-of-range values.
    """

    name: str
    flags: int = 0
    max_active: int = 0

    @classmethod
    def parse(cls, text: str, default_flags: int = 0, default_max_active: int = 0) -> WqSpec:
        """``NAME[:FLAGS[:MAX_ACTIVE]]``; missing parts take the given defaults."""
        parts = text.strip().split(":")
        if len(parts) > 3:
            raise SpecError(f"workqueue {text!r}: expected NAME[:FLAGS[:MAX_ACTIVE]]")
        name = check_name(parts[0], f"workqueue {text!r}:")
        flags = default_flags
        if len(parts) > 1 and parts[1].strip():
            flags = parse_wq_flags(parts[1])
        max_active = default_max_active
        if len(parts) > 2 and parts[2].strip():
            max_active = parse_int(parts[2], f"workqueue {name}: max_active")
        return cls(name, flags, max_active)

    @property
    def ordered(self) -> bool:
        return bool(self.flags & policy.WQ_ORDERED)

    def flags_text(self) -> str:
        """Flag names for humans: ``ordered`` rather than ``unbound,ordered``."""
        if self.ordered:
            others = self.flags & ~(policy.WQ_ORDERED | policy.WQ_UNBOUND)
            return "ordered" + ("," + policy.flag_names(others) if others else "")
        return policy.flag_names(self.flags)

    def spec(self) -> str:
        """The text :meth:`parse` reads back to this workqueue."""
        return f"{self.name}:{self.flags_text()}:{self.max_active}"


# --- work items ----------------------------------------------------------------------------
@dataclass(frozen=True)
class WorkSpec:
    """One work item: its phases, the workqueue it goes to, where and when it is queued."""

    name: str
    phases: tuple[Phase, ...]
    wq: str = "q0"
    cpu: int = 0
    at: int = 0
    """Queue time in microseconds."""

    @property
    def burn_total(self) -> int:
        return sum(d for k, d in self.phases if k == BURN)

    def spec(self) -> str:
        """The text :func:`parse_work` reads back to this item."""
        text = f"{self.name}={phases_text(self.phases)}@{self.wq}"
        if self.cpu:
            text += f":cpu={self.cpu}"
        if self.at:
            text += f":at={fmt_ms(self.at)}"
        return text

    def describe(self) -> str:
        """``burn 5, sleep 10, burn 5`` for problem statements."""
        if not self.phases:
            return "does nothing"
        return ", ".join(f"{kind} {fmt_ms(dur)}" for kind, dur in self.phases)


MAX_ITEMS = 10_000
"""The most work items one scenario may have.  The book's problems have at most 16
(the khttpd scenario's connections) and workqueue.rst's 3; 10000 runs in about
two seconds, while ``:n=1000000`` took 20 s and 1.4 GB before the cap."""


def parse_work(text: str, index: int = 0, cpus: int | None = None) -> list[WorkSpec]:
    """Parse one ``--work`` argument into one or more items (more with ``:n=COUNT``).

    ``index`` numbers unnamed items (``w<index>``) and is also the number of
    items already in the scenario, so that a large ``:n=`` is refused against
    MAX_ITEMS before any copy is built; ``cpus`` (when known) is used for
    ``cpu=rr`` and to reject a CPU that does not exist.
    """
    what = f"work {text.strip()!r}"
    head, *options = text.strip().split(":")
    name = None
    if "=" in head:
        name, head = head.split("=", 1)
        name = check_name(name.strip(), f"{what}:")
    phase_text, wq = head, "q0"
    if "@" in head:
        phase_text, wq = head.rsplit("@", 1)
        wq = check_name(wq.strip(), f"{what}: workqueue")
    phases = parse_phases(phase_text, what)
    cpu: int | str = 0
    at = every = 0
    count = 1
    for option in options:
        key, sep, value = option.partition("=")
        key = key.strip().lower()
        if not sep:
            raise SpecError(f"{what}: option {option!r} needs KEY=VALUE (cpu, at, n, every)")
        if key == "cpu":
            cpu = "rr" if value.strip().lower() == "rr" else parse_int(value, f"{what}: cpu")
            if isinstance(cpu, int) and cpu < 0:
                raise SpecError(f"{what}: cpu must be >= 0, got {cpu}")
        elif key == "at":
            at = parse_ms(value, f"{what}: at")
        elif key == "every":
            every = parse_ms(value, f"{what}: every")
        elif key == "n":
            count = parse_int(value, f"{what}: n")
            if count < 1:
                raise SpecError(f"{what}: n must be >= 1, got {count}")
        else:
            raise SpecError(f"{what}: unknown option {key!r} (cpu, at, n, every)")
    if index + count > MAX_ITEMS:
        raise SpecError(f"{what}: makes {index + count} work items; the simulator takes "
                        f"at most {MAX_ITEMS}")
    if cpu == "rr" and cpus is None:
        raise SpecError(f"{what}: cpu=rr needs the number of CPUs")
    if isinstance(cpu, int) and cpus is not None and cpu >= cpus:
        raise SpecError(f"{what}: cpu {cpu} does not exist (CPUs 0..{cpus - 1})")
    base = name if name is not None else "w"
    items = []
    for i in range(count):
        if count == 1:
            item_name = name if name is not None else f"w{index}"
        else:
            item_name = f"{base}{i if name is not None else index + i}"
        item_cpu = (i % cpus if cpus else 0) if cpu == "rr" else int(cpu)
        items.append(WorkSpec(item_name, phases, wq, item_cpu, at + i * every))
    return items


@dataclass
class Scenario:
    """Everything one simulation needs: a model, CPUs, workqueues and work items.

    Work items are queued in time order; items with the same queue time are
    queued in list order (that is what "simultaneous" means here).
    """

    name: str
    model: str = "cmwq"
    cpus: int = 1
    wqs: list[WqSpec] = field(default_factory=list)
    works: list[WorkSpec] = field(default_factory=list)
    description: str = ""
    seed: int | None = None
    args: list[str] = field(default_factory=list)
    """Command-line arguments that reproduce this problem (printed by the CLI)."""

    def validate(self) -> Scenario:
        """Check the problem is complete and consistent; add workqueues used but not listed."""
        if self.model not in MODELS:
            raise SpecError(f"unknown model {self.model!r} (use {', '.join(MODELS)})")
        if self.cpus < 1:
            raise SpecError(f"--cpus must be >= 1, got {self.cpus}")
        names: set[str] = set()
        for wq in self.wqs:
            if wq.name in names:
                raise SpecError(f"workqueue {wq.name!r} is defined twice")
            names.add(wq.name)
        seen: set[str] = set()
        for work in self.works:
            if work.name in seen:
                raise SpecError(f"work item {work.name!r} is defined twice")
            seen.add(work.name)
            if work.cpu >= self.cpus:
                raise SpecError(
                    f"work {work.name}: cpu {work.cpu} does not exist (CPUs 0..{self.cpus - 1})"
                )
            if work.wq not in names:
                self.wqs.append(WqSpec(work.wq))
                names.add(work.wq)
        return self

    def with_overrides(
        self,
        model: str | None = None,
        cpus: int | None = None,
        flags: int | None = None,
        max_active: int | None = None,
    ) -> Scenario:
        """A copy with the given settings replaced (flags/max_active apply to every wq)."""
        wqs = [
            replace(
                wq,
                flags=wq.flags if flags is None else flags,
                max_active=wq.max_active if max_active is None else max_active,
            )
            for wq in self.wqs
        ]
        return replace(
            self,
            model=self.model if model is None else model,
            cpus=self.cpus if cpus is None else cpus,
            wqs=wqs,
            works=list(self.works),
            args=list(self.args),
        )
