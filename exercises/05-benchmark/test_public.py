"""Public tests of exercise 5: the submitted report is whole and consistent, and the
student's functions recompute its figures from the raw runs.

Nothing here looks at absolute speed: every machine passes with its own numbers.
"""

import json
import statistics
from pathlib import Path

import pytest

from khttpd_py.bench import LOCAL_SERVERS, check_report

SAMPLE = json.loads((Path(__file__).parent / "sample_report.json").read_text())


def rates(entry: dict) -> list[float]:
    return [run["good"] / run["seconds"] for run in entry["runs"]]


def reference_medians(report: dict) -> dict[str, float]:
    return {name: statistics.median(rates(e)) for name, e in report["servers"].items()}


@pytest.fixture
def report(student) -> dict:
    got = student.my_report()
    assert isinstance(got, dict), "my_report() must return the parsed JSON object (a dict)"
    return got


@pytest.mark.points(3)
def test_report_is_whole_and_consistent(report):
    problems = check_report(report, required=LOCAL_SERVERS, min_rounds=3)
    assert not problems, "the report is not consistent: " + "; ".join(problems[:5])
    assert report["load"]["requests"] >= 1000, "use at least 1000 requests per run"
    assert report["load"]["warmup_rounds"] >= 1, "keep the warm-up round"
    assert report.get("created") != SAMPLE["created"], (
        "that is the sample report shipped with the exercise; run the bench yourself")


@pytest.mark.points(1)
def test_medians_of_your_report(student, report):
    got, want = student.medians(report), reference_medians(report)
    assert set(got) == set(want), f"medians() should have one entry per server: {sorted(want)}"
    for name in want:
        assert got[name] == pytest.approx(want[name]), f"median of {name} should be {want[name]}"


@pytest.mark.points(1)
def test_medians_ignore_stored_figures(student):
    doctored = json.loads(json.dumps(SAMPLE))
    for entry in doctored["servers"].values():
        entry["median"] = 1.0
        for run in entry["runs"]:
            run["good_per_sec"] = 1.0
    want = reference_medians(SAMPLE)
    got = student.medians(doctored)
    for name in want:
        assert got[name] == pytest.approx(want[name]), (
            "compute each run's rate from good / seconds, not from the stored fields")


@pytest.mark.points(2)
def test_ratios(student, report):
    for rep in (report, SAMPLE):
        meds = reference_medians(rep)
        base = meds[rep["baseline"]]
        got = student.ratios(rep)
        for name, value in meds.items():
            assert got[name] == pytest.approx(value / base), (
                f"ratio of {name} should be its median over the baseline's: {value / base:.3f}")


@pytest.mark.points(1)
def test_spread(student):
    for name, entry in SAMPLE["servers"].items():
        r = rates(entry)
        want = (max(r) - min(r)) / statistics.median(r)
        assert student.spread(SAMPLE, name) == pytest.approx(want), (
            f"spread of {name} should be (max - min) / median = {want:.3f}")


@pytest.mark.points(1)
def test_always_faster_is_per_round(student):
    fake = json.loads(json.dumps(SAMPLE))
    a, b = fake["servers"]["asyncio"]["runs"], fake["servers"]["threading"]["runs"]
    for run_a, run_b in zip(a, b, strict=True):
        run_a["good"], run_a["seconds"] = 1000, 1.0
        run_b["good"], run_b["seconds"] = 500, 1.0
    assert student.always_faster(fake, "asyncio", "threading") is True, (
        "asyncio won every round here")
    # One round lost: the median still favours asyncio, but it did not win every round.
    b[-1]["good"] = 2000
    assert student.always_faster(fake, "asyncio", "threading") is False, (
        "a single lost round means 'not always faster', whatever the medians say")
    assert student.always_faster(fake, "threading", "asyncio") is False
