"""kmod/htstress.c's command line: numbers are checked, not guessed.

The tool is compiled here, into a temporary directory, with the Makefile's
warning flags (-Wall -Wextra -Werror), so the test sees the source as it is and
never replaces a kmod/htstress another test may be running.  Runs aim at a
closed port on 127.0.0.1: every attempt is a socket error at once, no server
needed.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

KMOD = Path(__file__).resolve().parents[1] / "kmod"


def tool_cflags() -> list[str]:
    """TOOL_CFLAGS from kmod/Makefile, so the test builds what `make htstress` builds."""
    match = re.search(r"^TOOL_CFLAGS\s*:?=\s*(.+)$", (KMOD / "Makefile").read_text(), re.M)
    assert match, "kmod/Makefile has no TOOL_CFLAGS line"
    return shlex.split(match.group(1))


@pytest.fixture(scope="module")
def htstress(tmp_path_factory: pytest.TempPathFactory) -> Path:
    compiler = shutil.which("gcc") or shutil.which("cc")
    if compiler is None:
        pytest.skip("no C compiler (gcc or cc) to build kmod/htstress.c")
    binary = tmp_path_factory.mktemp("htstress") / "htstress"
    proc = subprocess.run(
        [compiler, *tool_cflags(), "-pthread", "-o", str(binary), str(KMOD / "htstress.c")],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return binary


def run(binary: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    # a few seconds: a mistaken value used to mean "until Ctrl-C" or 2^64 - 5 requests
    return subprocess.run([str(binary), *argv], capture_output=True, text=True, timeout=10)


@pytest.mark.parametrize(
    ("argv", "option", "value"),
    [
        (["-n", "abc"], "-n", "abc"),  # was 0: run until Ctrl-C
        (["-n", "-5"], "-n", "-5"),  # was 2^64 - 5 requests
        (["-n", ""], "-n", ""),
        (["-n", "+5"], "-n", "+5"),
        (["-n", "18446744073709551616"], "-n", "18446744073709551616"),  # 2^64
        (["--number=1e3"], "-n", "1e3"),  # was 1
        (["-n", "2", "-c", "5x"], "-c", "5x"),  # was 5 connections
        (["-n", "2", "-c", "-1"], "-c", "-1"),
        (["-n", "2", "-t", "2t"], "-t", "2t"),  # was 2 threads
        (["-n", "2", "-t", "2147483648"], "-t", "2147483648"),  # INT_MAX + 1
    ],
)
def test_a_bad_number_is_a_usage_error(htstress: Path, closed_url: str, argv: list[str],
                                       option: str, value: str) -> None:
    """One line naming the option and the value, exit 1 like the tool's other usage
    errors, and no run: before, atoi/strtoull read these as other numbers."""
    proc = run(htstress, *argv, closed_url)
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and proc.stderr.endswith("\n")
    assert proc.stderr.startswith(f"{option} wants a number")
    assert f"not '{value}'" in proc.stderr


def test_good_numbers_still_run(htstress: Path, closed_url: str) -> None:
    proc = run(htstress, "-n", "3", "-c", "2", "-t", "1", closed_url)
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"^requests:\s+3$", proc.stdout, re.M)
    assert re.search(r"^socket errors:\s+3 ", proc.stdout, re.M)


def test_zero_connections_keeps_its_message(htstress: Path, closed_url: str) -> None:
    proc = run(htstress, "-n", "1", "-c", "0", closed_url)
    assert proc.returncode == 1 and proc.stderr == "-c and -t must be at least 1\n"


def test_keep_alive_understands_an_http10_server_that_closes(
    htstress: Path, http10_url: str
) -> None:
    """-k must not send a second request on a connection an HTTP/1.0 server closes:
    that used to count as a socket error (28 good, 22 errors of 50)."""
    proc = run(htstress, "-n", "50", "-c", "3", "-t", "2", "-k", http10_url)
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"good requests:\s+50 \[100%\]", proc.stdout), proc.stdout
    assert re.search(r"socket errors:\s+0 ", proc.stdout), proc.stdout
