"""Public tests of exercise 2: thread and PID arithmetic of the legacy workqueues."""

import pytest

from khttpd_py.sim import PidBudget


@pytest.mark.points(2)
def test_legacy_threads(student):
    assert student.legacy_threads(4, 10, 3) == 43, "4 CPUs x 10 MT wqs + 3 ST wqs = 43 threads"
    assert student.legacy_threads(1, 0, 0) == 0, "no workqueue, no thread"
    assert student.legacy_threads(64, 1, 0) == 64, "an MT workqueue has one thread per CPU"


@pytest.mark.points(1)
def test_pids_available(student):
    assert student.pids_available(32768) == 32767, "PID 0 is never handed out"
    assert student.pids_available(32768, 100) == 32667, "reserved PIDs are not available"


@pytest.mark.points(1)
@pytest.mark.parametrize(
    "cpus,mt,st,pid_max,reserved",
    [(64, 511, 0, 32768, 0), (64, 512, 0, 32768, 0), (8, 100, 5, 1024, 0)],
    ids=["64cpu-511mt", "64cpu-512mt", "small-pid-max"],
)
def test_fits(student, cpus, mt, st, pid_max, reserved):
    want = PidBudget(cpus, mt, st, pid_max, reserved).fits
    got = student.fits(cpus, mt, st, pid_max, reserved)
    assert bool(got) == want, (
        f"{cpus} CPUs, {mt} MT + {st} ST wqs, pid_max {pid_max}: fits should be {want}"
    )


@pytest.mark.points(1)
@pytest.mark.parametrize(
    "cpus,st", [(64, 0), (4096, 0), (16, 40)], ids=["64cpu", "4096cpu", "16cpu-40st"]
)
def test_max_mt_workqueues(student, cpus, st):
    want = PidBudget(cpus, 0, st).max_mt_wqs
    got = student.max_mt_workqueues(cpus, st)
    assert got == want, f"max MT workqueues for {cpus} CPUs and {st} ST wqs should be {want}"


@pytest.mark.points(1)
def test_cmwq_boot_kworkers(student):
    assert student.cmwq_boot_kworkers(4096) == 8193, (
        "two pools per CPU and one unbound pool, one idle kworker each"
    )
    assert student.cmwq_boot_kworkers(64, 650) == 128 + 1 + 650, "plus a rescuer per workqueue"
    assert student.cmwq_boot_kworkers(2, 0, unbound_pools=3) == 7, "one kworker per unbound pool"
