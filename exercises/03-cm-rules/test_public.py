"""Public tests of exercise 3b: the predicates alone, then the doc's scenarios B-D."""

import pytest
from cm_rules_support import DOC, GRID, fake_pool, plug

from khttpd_py.sim import simulate


def _check(student, name, want):
    fn = getattr(student, name)
    for pending, running, idle in GRID:
        got = bool(fn(fake_pool(pending, running, idle)))
        expected = want(pending, running, idle)
        assert got == expected, (
            f"{name} with {pending} items waiting, nr_running {running}, nr_idle {idle} "
            f"should be {expected}"
        )


@pytest.mark.points(2)
def test_need_more_worker(student):
    _check(student, "need_more_worker", lambda p, r, i: p > 0 and r == 0)


@pytest.mark.points(1)
def test_may_start_working(student):
    _check(student, "may_start_working", lambda p, r, i: i > 0)


@pytest.mark.points(2)
def test_keep_working(student):
    _check(student, "keep_working", lambda p, r, i: p > 0 and r <= 1)


@pytest.mark.points(3)
@pytest.mark.parametrize("scenario", ["doc-b", "doc-c", "doc-d"])
def test_doc_scenario(student, monkeypatch, scenario):
    plug(student, monkeypatch)
    got = simulate(scenario).doc_text()
    assert got == DOC[scenario], (
        f"with your rules, {scenario} runs as\n  {got}\nbut workqueue.rst says\n  {DOC[scenario]}"
    )
