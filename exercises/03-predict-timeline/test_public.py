"""Public tests of exercise 3a: each student's seeded problem, answered by khttpd_py.sim.

The problem is regenerated here from the grader's student id, never taken from
the notebook, so changing ``STUDENT`` in the notebook only earns a note.
Messages name the wrong items, not the right values.
"""

import pytest

from exercises.support import seed_for, student_id
from khttpd_py.sim import random_scenario, simulate

EXERCISE = "03-predict-timeline"


@pytest.fixture(scope="module")
def problem():
    return random_scenario(seed_for(student_id(), EXERCISE), cpus=1)


@pytest.fixture(scope="module")
def answer(student, problem):
    got = student.my_times()
    assert isinstance(got, dict), "my_times() must return a dict {item: (start, finish)}"
    names = sorted(w.name for w in problem.works)
    assert sorted(got) == names, f"my_times() must answer exactly the items {names}"
    return got


def test_problem_is_yours(student, problem):
    """Worth nothing; explains failures when the notebook's problem was changed."""
    mine = getattr(student, "PROBLEM", None)
    assert mine is not None and [w.spec() for w in mine.works] == [
        w.spec() for w in problem.works
    ], f"your notebook's PROBLEM is not the problem of student {student_id()!r}"


def _wrong(answer, problem, index, model_result):
    want = {w.name: (model_result.start_time(w.name), model_result.finish_time(w.name))
            for w in problem.works}
    return [name for name in sorted(want) if float(answer[name][index]) != want[name][index]]


@pytest.mark.points(4)
def test_start_times(answer, problem):
    wrong = _wrong(answer, problem, 0, simulate(problem))
    assert not wrong, f"start time wrong for {', '.join(wrong)}"


@pytest.mark.points(4)
def test_finish_times(answer, problem):
    wrong = _wrong(answer, problem, 1, simulate(problem))
    assert not wrong, f"finish time wrong for {', '.join(wrong)}"


@pytest.mark.points(4)
def test_legacy_makespan(student, problem):
    want = simulate(problem, model="legacy-mt").stats["makespan_ms"]
    got = student.my_legacy_makespan()
    assert float(got) == want, (
        "on legacy MT workqueues each wq's thread runs its items one after the other, "
        "sleeps included: your last finish time is off"
    )


@pytest.mark.points(2)
def test_doc_scenario_c(student):
    result = simulate("doc-c")
    want = (result.start_time("w2"), result.finish_time("w2"))
    got = tuple(float(x) for x in student.doc_c_w2())
    assert got == want, (
        "in scenario C, w2 is inactive until w0 or w1 retires (max_active 2), then burns "
        "5 ms and sleeps 10"
    )
