"""Hidden tests of exercise 3b (kept by the instructor)."""

import pytest
from cm_rules_support import plug

from khttpd_py.sim import random_scenario, simulate


@pytest.mark.points(4)
def test_random_problems_match_reference(student, monkeypatch):
    seeds = range(40)
    reference = [simulate(random_scenario(seed)).events for seed in seeds]
    plug(student, monkeypatch)
    for seed, want in zip(seeds, reference, strict=True):
        got = simulate(random_scenario(seed)).events
        assert got == want, (
            "on a random problem (several workqueues, flags and CPUs) your rules schedule "
            "differently from the kernel's"
        )
