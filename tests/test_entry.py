"""The ``khttpd-py`` entry point: one command per tool, usage errors on stderr."""

from __future__ import annotations

import pytest

from khttpd_py.__main__ import COMMANDS, main


def test_no_command_is_a_usage_error_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert "usage: python -m khttpd_py COMMAND" in err


def test_help_lists_every_command_on_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(f"  {name} " in out for name in COMMANDS)


def test_unknown_command_names_it(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serv"]) == 2
    assert "unknown command 'serv'" in capsys.readouterr().err
