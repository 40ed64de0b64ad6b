"""The README's HTTP API snippet, pasted in order: extracted from README.md and run by bash
with the real ``curl`` and the real ``modq`` command against a real ``modq api`` and worker.
Every curl fails the run on an HTTP error (``--fail-with-body``), so a call that needs
something the README never set up (a priority the key lacks, a webhook secret, content not
decided yet) fails here."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.api.conftest import ApiServer, api_env, running_api
from tests.workers import WorkerHandle

pytestmark = pytest.mark.integration

README = Path(__file__).resolve().parents[2] / "README.md"
README_API = "API=localhost:8000"
# every curl of the snippet fails the run on a 4xx/5xx, and prints its answer on a line
STRICT_CURL = 'set -euo pipefail\ncurl() { command curl --fail-with-body -sS "$@"; echo; }\n'


def http_section_blocks() -> list[str]:
    """The ```bash blocks of README's "## HTTP API" section, in order."""
    text = README.read_text(encoding="utf-8")
    start = text.index("\n## HTTP API\n")
    end = text.index("\n## ", start + 1)
    return re.findall(r"```bash\n(.*?)```", text[start:end], re.S)


@pytest.fixture(scope="module")
def readme_api(
    api_worker: WorkerHandle, api_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApiServer]:
    """``modq api`` as the README starts it: a webhook secret, no allow-list of hosts."""
    env = api_env(
        api_database_url,
        MODQ_WEBHOOK_SECRET=secrets.token_hex(32),
        MODQ_WEBHOOK_ALLOWED_HOSTS="",
    )
    with running_api(env, log_dir=Path(tmp_path_factory.mktemp("api-readme"))) as server:
        yield server


def test_the_readme_starts_the_servers_with_the_webhook_secret() -> None:
    setup, _ = http_section_blocks()
    secret = setup.index("export MODQ_WEBHOOK_SECRET=")
    assert secret < setup.index("modq worker") and secret < setup.index("modq api ")
    assert "--port 8000" in setup


@pytest.mark.slow
def test_the_readme_http_snippet_runs_in_order(
    readme_api: ApiServer, api_database_url: str
) -> None:
    _, calls = http_section_blocks()
    assert README_API in calls
    address = urlsplit(readme_api.url)
    script = STRICT_CURL + calls.replace(README_API, f"API={address.hostname}:{address.port}")
    bin_dir = str(Path(sys.executable).parent)  # modq and python, as after `make install`
    completed = subprocess.run(
        ["bash", "-c", script],
        env={
            **os.environ,
            "PATH": f"{bin_dir}:{os.environ['PATH']}",
            "MODQ_DATABASE_URL": api_database_url,
        },
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, (completed.stdout[-4000:], completed.stderr[-4000:])
    output = completed.stdout.replace(" ", "")
    assert '"decision":' in output and '"kind":"moderate"' in output  # the job, fetched
    assert '"unchanged":' in output  # the review of c1 was stored
    assert "modq_api_requests" in output  # and the metrics came last
