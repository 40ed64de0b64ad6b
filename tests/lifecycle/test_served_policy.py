"""README "Shipping a model" with a real worker following the alias: a fresh build serves under
the policy calibrated for it; a version whose policy was calibrated for another, promoted by
force, is served degraded, and the worker says so in /healthz and modq_stats."""

from __future__ import annotations

import json
import shutil
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine

import migrations
from cli.services import free_port
from db.alias_history import AliasHistory
from gpu_worker.manifest import ModelManifest
from lifecycle import promote, register_model_folder
from modq.settings import get_settings
from policy import load_policy
from policy.carried import CARRIED_POLICY_FILE
from registry import ModelRegistry
from tasks import moderate
from tasks.control import broadcast_model_refresh
from tests.model_variants import make_variant
from tests.polling import wait_until
from tests.workers import running_worker

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.long]  # ~30-90 s

NAME = "modq-shipped"


def healthz(port: int) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_a_fresh_build_serves_under_its_policy_and_a_mismatch_is_reported(
    model_dir: Path,
    model_registry: ModelRegistry,
    registry_settings: dict[str, str],
    tmp_path: Path,
) -> None:
    from training.finish import ensure_carried_policy

    built = tmp_path / "built"  # as `modq model build` leaves a folder: with its policy.toml
    built.mkdir()
    for path in model_dir.iterdir():
        if path.is_file() and path.name != CARRIED_POLICY_FILE:
            shutil.copy(path, built / path.name)
    ensure_carried_policy(built, load_policy(get_settings().policy_path))
    copied = make_variant(built, tmp_path / "copied", bias_shift=1.5)  # its policy.toml: built's
    for folder in (built, copied):
        register_model_folder(folder, name=NAME, registry=model_registry, check_loads=False)
    database = f"sqlite:///{tmp_path / 'modq.db'}"
    migrations.upgrade(database)
    engine = create_engine(database)
    history = AliasHistory(engine)
    packaged = Path(get_settings().policy_path).parent  # v1, v2: none calibrated for these
    promote(model_registry, history, NAME, "1", policies_dir=packaged, reason="first release")

    port = free_port()
    env = {
        **registry_settings,
        "MODQ_DATABASE_URL": database,
        "MODQ_MODEL_URI": f"models:/{NAME}@production",
        "MODQ_MODEL_POLL_INTERVAL_S": "0",  # only the broadcast swaps
        "MODQ_WORKER_METRICS_PORT": str(port),
    }
    digest = ModelManifest.read(built).version
    try:
        with running_worker(env, log_dir=tmp_path, threads=4) as worker:
            result = moderate.delay(content_id="shipped-1", content="you idiot").get(timeout=60)
            assert result["policy_version"] == f"v2+{digest}"
            status, body = healthz(port)
            assert (status, body["status"], body["checks"]["policy"]) == (200, "ok", "ok")
            stats = worker.stats()
            assert stats["policy_calibrated_for"] == digest and stats["policy_mismatch"] is None

            promote(
                model_registry,
                history,
                NAME,
                "2",
                policies_dir=packaged,
                force=True,
                reason="drill",
            )
            assert any(broadcast_model_refresh())
            swapped = ModelManifest.read(copied).version
            wait_until(
                lambda: worker.stats().get("model_digest") == swapped,
                timeout_s=60,
                message="the worker never swapped to v2",
            )
            result = moderate.delay(content_id="shipped-2", content="you idiot").get(timeout=60)
            assert result["model_version"] == "2"  # served: the promotion was forced
            status, body = healthz(port)
            assert status == 200 and body["status"] == "degraded"
            assert (
                f"calibrated for {ModelManifest.read(built).name} {digest}"
                in (body["checks"]["policy"])
            )
            assert f"not for the served model {swapped}" in body["checks"]["policy"]
            assert worker.stats()["policy_mismatch"] == body["checks"]["policy"]
    finally:
        engine.dispose()
