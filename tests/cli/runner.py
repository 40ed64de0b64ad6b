"""Run `modq` in-process, as people type it."""

from __future__ import annotations

from click.testing import CliRunner

from cli.main import main


def modq(*args: str) -> tuple[int, str]:
    """(exit status, stdout), or stderr on failure: where click writes errors (MLflow logs to
    stderr too)."""
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout if result.exit_code == 0 else result.stderr
