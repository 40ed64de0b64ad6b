"""The HTTP part of `modq demo`: start `modq api`, make one curl call, show its answer."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import click

from cli.services import running_api

API_READY_TIMEOUT_S = 60


def show_http_call(database_url: str) -> None:
    """Start the API on a free port with a throw-away key, POST /v1/moderate with curl, print
    the command and the decision, then revoke the key and stop the API."""
    from db.api_keys import ApiKeyRepository
    from db.session import make_engine

    engine = make_engine(database_url)
    repository = ApiKeyRepository(engine)
    record, key = repository.create("demo", ["urgent", "normal", "bulk"], may_review=True)
    log_dir = Path("var")
    log_dir.mkdir(exist_ok=True)
    try:
        with running_api({}, log_dir=log_dir, timeout_s=API_READY_TIMEOUT_S) as api:
            _call(api.url, key)
    except RuntimeError as exc:
        raise click.ClickException(f"the API did not start: {exc}") from exc
    finally:
        repository.revoke(record.key_id)
        engine.dispose()


def _call(url: str, key: str) -> None:
    body = json.dumps({"content": "you are a worthless idiot", "priority": "urgent"})
    click.echo(
        f"\nHTTP API up at {url} (modq api); one call with curl, MODQ_KEY being a "
        "throw-away key (modq api-key create), revoked after:"
    )
    click.echo(
        f'  curl -s {url}/v1/moderate -H "Authorization: Bearer $MODQ_KEY" '
        f"-H 'Content-Type: application/json' -d '{body}'"
    )
    answer = _post(url, key, body)
    result = answer.get("result")
    if not isinstance(result, dict):
        raise click.ClickException(f"the API answered {answer.get('status')}: {answer}")
    click.echo(
        f"  → {result['decision']} (tripped: "
        f"{', '.join(r['category'] for r in result['tripped']) or 'none'}; "
        f"model {result['model_version']}, policy {result['policy_version']})"
    )


def _post(url: str, key: str, body: str) -> dict[str, object]:
    """POST /v1/moderate with curl (urllib where curl is missing)."""
    curl = shutil.which("curl")
    if curl is not None:
        completed = subprocess.run(
            [
                curl,
                "-sS",
                f"{url}/v1/moderate",
                "-H",
                f"Authorization: Bearer {key}",
                "-H",
                "Content-Type: application/json",
                "-d",
                body,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return dict(json.loads(completed.stdout))
    request = urllib.request.Request(
        f"{url}/v1/moderate",
        data=body.encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return dict(json.loads(response.read()))
