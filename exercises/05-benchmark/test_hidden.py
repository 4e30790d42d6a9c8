"""Hidden tests of exercise 5: the four questions, and the functions on a second report."""

import json
import statistics
from pathlib import Path

import pytest

SAMPLE = json.loads((Path(__file__).parent / "sample_report.json").read_text())


@pytest.mark.points(1)
def test_q1_alternating_spreads_the_noise(student):
    assert str(student.answer_q1()).strip().lower() == "b", (
        "Q1: alternating spreads a slow period of the machine over every server")


@pytest.mark.points(1)
def test_q2_workers_are_reused(student):
    assert str(student.answer_q2()).strip().lower() == "b", (
        "Q2: CMWQ reuses workers instead of creating a thread per connection; the GIL stays")


@pytest.mark.points(1)
def test_q3_keep_alive_shrinks_the_gap(student):
    assert str(student.answer_q3()).strip().lower() == "a", (
        "Q3: with keep-alive a thread is paid once per connection, not per request")


@pytest.mark.points(1)
def test_q4_cpu_per_request_is_the_servers_own_cost(student):
    assert str(student.answer_q4()).strip().lower() == "a", (
        "Q4: requests per second also depend on the load generator and everything else "
        "sharing the CPUs; CPU per request is what the server itself paid")


@pytest.mark.points(1)
def test_functions_on_a_reordered_report(student):
    shuffled = json.loads(json.dumps(SAMPLE))
    for entry in shuffled["servers"].values():
        entry["runs"].reverse()  # order of runs must not matter
    shuffled["baseline"] = "asyncio"
    meds = {n: statistics.median(r["good"] / r["seconds"] for r in e["runs"])
            for n, e in shuffled["servers"].items()}
    got = student.ratios(shuffled)
    for name, value in meds.items():
        assert got[name] == pytest.approx(value / meds["asyncio"]), (
            "ratios must follow report['baseline'], whichever server it names")
