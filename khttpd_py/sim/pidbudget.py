"""How many legacy workqueue threads a machine needs, and whether its PIDs suffice.

Before 2.6.36 a multi-threaded (MT) workqueue kept one worker thread per CPU and
a single-threaded (ST) one a thread for the whole system, so

    threads = CPUs x MT workqueues + ST workqueues

and, in the kernel documentation's words, "some systems saturated the default
32k PID space just booting up".  This module is that arithmetic, for the CLI
(``--scenario pid-budget``) and for the book's widget.

Definition used here (say it in the book, students will check it):

* ``pid_max`` is "one greater than the maximum PID" (proc(5)); PID 0 is the
  idle task and never handed out, so at most ``pid_max - 1`` tasks can exist.
* ``reserved`` PIDs are taken by everything that is not a workqueue thread
  (init, kthreadd, other kernel threads, user processes); 0 by default.
* The workqueue threads fit when ``threads <= pid_max - 1 - reserved``.
* The largest number of MT workqueues is ``(pid_max - 1 - reserved - ST) // CPUs``:
  511, not 512, for 64 CPUs and the default 32768; 7 for 4096 CPUs.

For comparison, :attr:`PidBudget.cmwq_kworkers` counts the kworkers cmwq starts
with for the same workqueues, as ``workqueue_init()`` of Linux 6.1 creates them
(kernel/workqueue.c): one idle worker in each online CPU's normal and highpri
pool, one in each unbound pool (one pool on a machine with one NUMA node), and a
rescuer for every ``WQ_MEM_RECLAIM`` workqueue.  Every workqueue made with the
legacy API (``create_workqueue()``, ``create_singlethread_workqueue()``) has
``WQ_MEM_RECLAIM`` (include/linux/workqueue.h), so each of them still costs one
thread: the count grows by one per workqueue, not by one per CPU per workqueue.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from khttpd_py.sim.spec import SpecError

PID_MAX_DEFAULT = 32768
"""The default ``/proc/sys/kernel/pid_max``."""

UNBOUND_POOLS_ONE_NODE = 1
"""Unbound pools at boot on one NUMA node: ``system_unbound_wq``'s, shared by every
unbound workqueue of the same attributes (nice 0, all CPUs)."""


@dataclass(frozen=True)
class PidBudget:
    """The thread count of a legacy configuration against its PID space."""

    cpus: int
    mt_wqs: int
    st_wqs: int = 0
    pid_max: int = PID_MAX_DEFAULT
    reserved: int = 0

    def __post_init__(self) -> None:
        if self.cpus < 1:
            raise SpecError(f"--cpus must be >= 1, got {self.cpus}")
        if self.mt_wqs < 0 or self.st_wqs < 0:
            raise SpecError("the numbers of workqueues must be >= 0")
        if self.pid_max < 2:
            raise SpecError(f"--pid-max must be >= 2, got {self.pid_max}")
        if self.reserved < 0 or self.reserved > self.pid_max - 1:
            raise SpecError(f"--reserved must be between 0 and {self.pid_max - 1}")

    @property
    def threads(self) -> int:
        """Legacy worker threads: one per CPU per MT workqueue, one per ST workqueue."""
        return self.cpus * self.mt_wqs + self.st_wqs

    @property
    def available(self) -> int:
        """PIDs left for workqueue threads: 1 .. pid_max-1, minus the reserved ones."""
        return self.pid_max - 1 - self.reserved

    @property
    def fits(self) -> bool:
        return self.threads <= self.available

    @property
    def used_percent(self) -> float:
        """Share of the available PIDs the threads take (may exceed 100)."""
        return 100.0 * self.threads / self.available if self.available else float("inf")

    @property
    def max_mt_wqs(self) -> int:
        """The most MT workqueues that fit next to the ST ones."""
        return max(0, (self.available - self.st_wqs) // self.cpus)

    @property
    def cmwq_rescuers(self) -> int:
        """Rescuers for the same workqueues made with the legacy API (all ``WQ_MEM_RECLAIM``)."""
        return self.mt_wqs + self.st_wqs

    @property
    def cmwq_kworkers(self) -> int:
        """Threads cmwq starts with for these workqueues (one NUMA node): see the module doc."""
        return 2 * self.cpus + UNBOUND_POOLS_ONE_NODE + self.cmwq_rescuers

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(
            threads=self.threads,
            available=self.available,
            fits=self.fits,
            used_percent=round(self.used_percent, 2),
            max_mt_wqs=self.max_mt_wqs,
            cmwq_rescuers=self.cmwq_rescuers,
            cmwq_kworkers=self.cmwq_kworkers,
        )
        return data

    def problem_text(self) -> str:
        st = f" and {self.st_wqs} single-threaded" if self.st_wqs else ""
        reserved = f", {self.reserved} of them taken by other tasks" if self.reserved else ""
        return (
            f"A machine with {self.cpus} CPUs runs a pre-2.6.36 kernel with {self.mt_wqs} "
            f"multi-threaded{st} workqueues; pid_max is {self.pid_max}{reserved}.\n"
            "  1. How many workqueue worker threads exist after boot?\n"
            "  2. Do they fit in the PID space?\n"
            "  3. How many MT workqueues could this machine have at most?\n"
            "  4. How many threads would cmwq start with for the same workqueues instead?"
        )

    def answer_text(self) -> str:
        verdict = "yes" if self.fits else "NO: the PIDs run out"
        reserved = f" minus {self.reserved} reserved" if self.reserved else ""
        return (
            f"  1. threads = {self.cpus} x {self.mt_wqs} + {self.st_wqs} = {self.threads}\n"
            f"  2. {verdict} ({self.threads} of {self.available} PIDs, "
            f"{self.used_percent:.1f}%; PIDs 1..{self.pid_max - 1}{reserved})\n"
            f"  3. ({self.available} - {self.st_wqs}) // {self.cpus} = {self.max_mt_wqs} "
            "MT workqueues\n"
            f"  4. 2 x {self.cpus} + {UNBOUND_POOLS_ONE_NODE} + {self.cmwq_rescuers} = "
            f"{self.cmwq_kworkers} (an idle kworker in each CPU's normal and highpri pool, "
            f"one in the unbound pool, a rescuer per WQ_MEM_RECLAIM workqueue)"
        )


def pid_budget(
    cpus: int, mt_wqs: int, st_wqs: int = 0, pid_max: int = PID_MAX_DEFAULT, reserved: int = 0
) -> PidBudget:
    """The book's widget entry point: ``pid_budget(64, 100).threads == 6400``."""
    return PidBudget(cpus, mt_wqs, st_wqs, pid_max, reserved)


def max_mt_workqueues(
    cpus: int, st_wqs: int = 0, pid_max: int = PID_MAX_DEFAULT, reserved: int = 0
) -> int:
    """How many MT workqueues fit: ``max_mt_workqueues(4096) == 7``."""
    return PidBudget(cpus, 0, st_wqs, pid_max, reserved).max_mt_wqs


def budget_table(
    cpu_counts: list[int], mt_wqs: int, st_wqs: int = 0, pid_max: int = PID_MAX_DEFAULT
) -> list[dict[str, Any]]:
    """One row per CPU count, for a table or a plot of threads against the PID limit."""
    return [PidBudget(c, mt_wqs, st_wqs, pid_max).to_dict() for c in cpu_counts]
