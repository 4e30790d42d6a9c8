"""CMWQ on real threads: ``kernel/workqueue.c`` with the kernel's names and semantics.

The decisions (concurrency management, max_active, the manager, idle reaping,
maydays) are made by ``policy.py``, which the simulator in ``khttpd_py.sim``
drives too; this package is the threaded clock around it:

=================  ============================================================
``work``           ``WorkStruct`` (work_struct), ``Workqueue`` (workqueue_struct)
``system``         ``WorkqueueSystem``: pools, the lock, queue/flush/cancel/destroy
``worker``         the kworker and rescuer threads performing policy's actions
``blocking``       ``blocking()`` and ``wq_recv``/...: the sleeping/running hooks
``api``            the kernel-named functions on a default system
``legacy``         the pre-2.6.36 MT/ST workqueues, for comparison
``stats``          wq_monitor's columns and table
``stats_server``   the JSON endpoint a server exposes; ``monitor`` reads it
=================  ============================================================

Typical use, as in khttpd's CMWQ mode::

    wq = alloc_workqueue("khttpd", WQ_UNBOUND, 0)
    queue_work(wq, KHttp(sock))        # KHttp subclasses WorkStruct
    ...
    destroy_workqueue(wq)
"""

from khttpd_py.workqueue.api import (
    alloc_ordered_workqueue,
    alloc_workqueue,
    cancel_work,
    cancel_work_sync,
    default_system,
    destroy_workqueue,
    drain_workqueue,
    flush_work,
    flush_workqueue,
    init_default_system,
    queue_work,
    queue_work_on,
    schedule_work,
    shutdown_default_system,
    system_wq,
)
from khttpd_py.workqueue.blocking import (
    blocking,
    in_worker,
    wq_accept,
    wq_recv,
    wq_sendall,
    wq_sleep,
    wq_wait,
)
from khttpd_py.workqueue.legacy import (
    create_singlethread_workqueue,
    create_workqueue,
    legacy_thread_count,
)
from khttpd_py.workqueue.policy import (
    WQ_CPU_INTENSIVE,
    WQ_DFL_ACTIVE,
    WQ_FREEZABLE,
    WQ_HIGHPRI,
    WQ_MAX_ACTIVE,
    WQ_MEM_RECLAIM,
    WQ_ORDERED,
    WQ_SYSFS,
    WQ_UNBOUND,
    PwqStats,
    flag_names,
    parse_flags,
)
from khttpd_py.workqueue.stats import WqStats, format_table, table_header
from khttpd_py.workqueue.stats_server import StatsServer, serve_stats, start_stats_server
from khttpd_py.workqueue.system import WorkqueueSystem
from khttpd_py.workqueue.work import Workqueue, WorkStruct, init_work

__all__ = [
    "WQ_CPU_INTENSIVE",
    "WQ_DFL_ACTIVE",
    "WQ_FREEZABLE",
    "WQ_HIGHPRI",
    "WQ_MAX_ACTIVE",
    "WQ_MEM_RECLAIM",
    "WQ_ORDERED",
    "WQ_SYSFS",
    "WQ_UNBOUND",
    "PwqStats",
    "StatsServer",
    "WorkStruct",
    "Workqueue",
    "WorkqueueSystem",
    "WqStats",
    "alloc_ordered_workqueue",
    "alloc_workqueue",
    "blocking",
    "cancel_work",
    "cancel_work_sync",
    "create_singlethread_workqueue",
    "create_workqueue",
    "default_system",
    "destroy_workqueue",
    "drain_workqueue",
    "flag_names",
    "flush_work",
    "flush_workqueue",
    "format_table",
    "in_worker",
    "init_default_system",
    "init_work",
    "legacy_thread_count",
    "parse_flags",
    "queue_work",
    "queue_work_on",
    "schedule_work",
    "serve_stats",
    "shutdown_default_system",
    "start_stats_server",
    "system_wq",
    "table_header",
    "wq_accept",
    "wq_recv",
    "wq_sendall",
    "wq_sleep",
    "wq_wait",
]
