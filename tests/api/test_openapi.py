"""The served OpenAPI is correct: schemathesis (its CLI, a real HTTP client) drives every
operation of the live server with generated valid and invalid requests and checks that none
gets a 500 and every response fits the schema (status, content type, body, headers).

The default run is bounded (a few examples per operation, fixed seed); the slow one explores
more."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.api.conftest import ApiServer

pytestmark = pytest.mark.integration

CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
        "negative_data_rejection",
        "ignored_auth",
    ]
)


def _schemathesis(
    api_server: ApiServer, key: str, tmp_path: Path, *, max_examples: int, phases: str
) -> None:
    binary = shutil.which("st", path=str(Path(sys.executable).parent))
    assert binary, "schemathesis is not installed (pip install -e '.[dev]')"
    completed = subprocess.run(
        [
            binary,
            "run",
            f"{api_server.url}/openapi.json",
            "--header",
            f"Authorization: Bearer {key}",
            "--checks",
            CHECKS,
            "--phases",
            phases,
            "--max-examples",
            str(max_examples),
            "--seed",
            "15",
            "--workers",  # one: hypothesis's lambda reprs (ast.parse) are not thread-safe on 3.11
            "1",
            "--request-timeout",
            "30",
            "--generation-database",
            "none",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output[-6000:]


def test_no_operation_answers_500_or_off_schema(
    api_server: ApiServer, api_key: str, tmp_path: Path
) -> None:
    _schemathesis(api_server, api_key, tmp_path, max_examples=5, phases="examples,fuzzing")


@pytest.mark.long
@pytest.mark.slow
def test_no_operation_answers_500_or_off_schema_explored_further(
    api_server: ApiServer, api_key: str, tmp_path: Path
) -> None:
    _schemathesis(
        api_server, api_key, tmp_path, max_examples=50, phases="examples,coverage,fuzzing"
    )
