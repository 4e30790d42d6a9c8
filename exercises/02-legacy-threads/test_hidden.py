"""Hidden tests of exercise 2 (kept by the instructor)."""

import random

import pytest

from khttpd_py.sim import PidBudget


@pytest.mark.points(2)
def test_random_configurations_agree_with_reference(student):
    rng = random.Random(2010)  # the year CMWQ was merged
    for _ in range(300):
        pid_max = rng.choice([32768, 4194304, 1024, 300])
        cpus = rng.choice([1, 2, 4, 64, 1024, 4096])
        mt, st = rng.randrange(0, 800), rng.randrange(0, 60)
        reserved = rng.randrange(0, pid_max // 4)
        ref = PidBudget(cpus, mt, st, pid_max, reserved)
        assert student.legacy_threads(cpus, mt, st) == ref.threads, "thread count is off"
        assert bool(student.fits(cpus, mt, st, pid_max, reserved)) == ref.fits, (
            "fits() disagrees on a random configuration (check pid_max - 1 - reserved)"
        )
        assert student.max_mt_workqueues(cpus, st, pid_max, reserved) == ref.max_mt_wqs, (
            "max_mt_workqueues() disagrees on a random configuration"
        )


@pytest.mark.points(2)
def test_edge_cases(student):
    assert student.max_mt_workqueues(4, 400, 300) == 0, "never negative when ST threads overflow"
    assert student.max_mt_workqueues(1, 0, 2) == 1, "pid_max 2 leaves exactly PID 1"
    assert student.fits(64, 0, 32767), "32767 ST threads exactly fill the default PID space"
    assert not student.fits(64, 0, 32768), "32768 threads need one PID more than exists"
