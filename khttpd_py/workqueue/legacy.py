"""The workqueues before 2.6.36, kept to measure what CMWQ fixed.

An MT workqueue (``create_workqueue``) owned one worker thread per CPU; an ST
workqueue (``create_singlethread_workqueue``) owned one thread in the whole
system.  Each workqueue was its own execution context, so

* threads = CPUs x MT workqueues + ST workqueues, whether or not any work ever
  came (some systems ran out of the default 32k PIDs just booting), and
* concurrency was one item at a time per CPU per workqueue: while an item
  sleeps, the items queued behind it on that CPU wait, even if the CPU idles.

Here each legacy workqueue gets private ``legacy=True`` pools (one per CPU for
MT, one unbound for ST) with exactly one worker each.  ``policy.py`` gives such
a pool no concurrency management and no manager: the one thread takes items
in order and keeps its context while an item blocks.  The threads are named as
``ps`` showed them then: ``<wq>/<cpu>`` and ``<wq>``.

These are *not* today's kernel functions of the same names (which are CMWQ
workqueues with ``__WQ_LEGACY``); they model the old implementation.
"""

from __future__ import annotations

from khttpd_py.workqueue.api import default_system
from khttpd_py.workqueue.system import WorkqueueSystem
from khttpd_py.workqueue.work import Workqueue


def create_workqueue(name: str, system: WorkqueueSystem | None = None) -> Workqueue | None:
    """Legacy MT workqueue: one dedicated thread per CPU, private to this workqueue."""
    return (system or default_system()).create_workqueue(name)


def create_singlethread_workqueue(
    name: str, system: WorkqueueSystem | None = None
) -> Workqueue | None:
    """Legacy ST workqueue: one dedicated thread for the whole system."""
    return (system or default_system()).create_singlethread_workqueue(name)


def legacy_thread_count(nr_cpus: int, nr_mt: int, nr_st: int = 0) -> int:
    """Threads the old design needed: ``CPUs x MT workqueues + ST workqueues``."""
    return nr_cpus * nr_mt + nr_st
