"""CI lints before it tests: `.ci/run` runs `make lint` (ruff check, ruff format --check, mypy)
and stops with a failure when it fails, before `make test`."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _fake(folder: Path, name: str, body: str) -> None:
    path = folder / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def _ci_run(tmp_path: Path, lint_status: int) -> tuple[int, list[str]]:
    """Run the real .ci/run with `make` (and the setup steps' system tools) replaced by
    recorders: the make targets it asked for, in order, and its exit status."""
    bin_dir, calls = tmp_path / "bin", tmp_path / "calls"
    bin_dir.mkdir()
    _fake(bin_dir, "make", f'echo "$*" >> {calls}\n[ "$1" = lint ] && exit {lint_status}\nexit 0')
    for tool in ("apt-get", "pg_ctlcluster"):
        _fake(bin_dir, tool, "exit 0")
    _fake(bin_dir, "pg_isready", "exit 0")  # PostgreSQL is up: nothing to start
    done = subprocess.run(
        [str(REPO / ".ci" / "run")],
        env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    targets = calls.read_text().split("\n")[:-1] if calls.exists() else []
    return done.returncode, targets


def test_ci_lints_before_it_tests(tmp_path):
    status, targets = _ci_run(tmp_path, lint_status=0)
    assert status == 0
    assert targets == ["lint", "test"]


def test_ci_fails_without_testing_when_lint_fails(tmp_path):
    status, targets = _ci_run(tmp_path, lint_status=2)
    assert status != 0
    assert targets == ["lint"]


def test_the_lint_target_runs_ruff_check_ruff_format_and_mypy():
    done = subprocess.run(
        ["make", "-n", "lint"],  # print, run nothing
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    commands = [line.strip() for line in done.stdout.splitlines()]
    for command in ("ruff check .", "ruff format --check .", "mypy"):
        assert any(line.endswith(f"/{command}") for line in commands), (command, commands)
