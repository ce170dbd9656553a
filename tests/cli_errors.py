"""The one-line-error checks the bad-input tests share, on the real CLI (typer's CliRunner on
``kws.cli.app``); their ``bundle`` and ``stage2`` fixtures are conftest's."""

from __future__ import annotations

from typer.testing import CliRunner

from kws.cli import app
from kws.commands.common import SAMPLES

runner = CliRunner()
YES = SAMPLES / "speech_commands" / "yes" / "189cbabe_nohash_2.wav"


def kws(*args) -> object:
    return runner.invoke(app, [str(a) for a in args])


def one_line_error(result, *expected: str, code: int = 1) -> str:
    """Exit ``code`` (2: refused by the CLI's own checks), no traceback, and one line
    (``error: ...``) holding every expected part."""
    assert result.exit_code == code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.output
    for part in expected:
        assert part in lines[0], result.output
    return lines[0]


def ok(result) -> str:
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert "Traceback" not in result.output
    return result.output
