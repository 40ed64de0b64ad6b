"""The registry workflow as people type it: register, promote, list, rollback, history."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from modq.settings import get_settings
from policy import load_policy
from policy.carried import CARRIED_POLICY_FILE
from tests.cli.runner import modq as _modq


def bare_copy(source: Path, target: Path) -> Path:
    """``source``'s files without the policy it carries: a folder built before folders
    carried their policy."""
    target.mkdir(parents=True)
    for path in source.iterdir():
        if path.is_file() and path.name != CARRIED_POLICY_FILE:
            shutil.copy(path, target / path.name)
    return target


def test_register_promote_rollback_history(
    cli_env: dict[str, str],
    model_dir: Path,
    variant_model_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "v1.toml").write_text('version = "v1"\n[categories.spam]\nremove = 0.9\n')
    monkeypatch.setenv("MODQ_POLICY_PATH", str(policies / "v1.toml"))
    get_settings.cache_clear()
    code, out = _modq("model", "register", str(bare_copy(model_dir, tmp_path / "bare")))
    assert code == 0 and out.startswith("modq-text v1 (digest ")
    code, out = _modq("model", "register", str(variant_model_dir))
    assert code == 0 and "modq-text v2" in out

    # neither folder has a policy calibrated for it in the test's policy folder
    code, out = _modq("model", "promote", "modq-text", "1", "--reason", "first release")
    assert code == 1 and "no policy" in out and "calibrated for" in out
    code, out = _modq("model", "promote", "modq-text", "1", "--force")
    assert code == 1 and "--force needs a --reason" in out
    code, out = _modq("model", "promote", "modq-text", "1", "--force", "--reason", "first release")
    assert code == 0 and "v- → v1" in out
    code, out = _modq("model", "promote", "modq-text", "2", "--force", "--reason", "retrained")
    assert code == 0 and "v1 → v2" in out

    code, out = _modq("model", "list")
    lines = out.splitlines()
    assert code == 0 and len(lines) == 3
    assert lines[2].split()[:2] == ["2", "production"]

    code, out = _modq("model", "rollback", "modq-text", "--reason", "flags up 30%")
    assert code == 0 and "v2 → v1 (rollback)" in out

    code, out = _modq("model", "history", "modq-text")
    assert code == 0
    rows = out.splitlines()
    assert len(rows) == 3
    assert "rollback v2 → v1  by tester  (flags up 30%)" in rows[2]


def test_the_readmes_flow_ships_a_model_as_make_model_leaves_it(
    cli_env: dict[str, str], model_dir: Path, tmp_path: Path
) -> None:
    """README "Shipping a model": `make model`, `modq model register models/current`, then
    `modq model promote modq-text 1 --reason "first release"`, with the packaged policies
    (v2 is calibrated for another build). The folder's own policy lets it through."""
    from gpu_worker.manifest import ModelManifest

    root = tmp_path / "models"
    digest = ModelManifest.read(model_dir).version
    folder = bare_copy(model_dir, root / model_dir.parent.name / digest)
    (root / "current").symlink_to(folder.relative_to(root))

    # `make model` (= build --if-missing) on a model built before folders carried their policy
    code, out = _modq("model", "build", "--if-missing", "--models-dir", str(root))
    assert code == 0 and f"wrote {folder / CARRIED_POLICY_FILE}" in out, out
    carried = load_policy(folder / CARRIED_POLICY_FILE)
    assert carried.calibration is not None and carried.calibration.model_version == digest
    assert carried.version == f"v2+{digest}"

    code, out = _modq("model", "register", str(root / "current"))
    assert code == 0 and out == f"modq-text v1 (digest {digest})\n"
    code, out = _modq("model", "promote", "modq-text", "1", "--reason", "first release")
    assert code == 0, out
    assert "v- → v1" in out
    code, out = _modq("model", "history", "modq-text")
    assert "(first release)" in out and "forced" not in out


def test_errors_are_one_line_and_exit_1(cli_env: dict[str, str], model_dir: Path) -> None:
    code, out = _modq("model", "promote", "nosuch", "1")
    assert code == 1 and "unknown_model" in out and "Traceback" not in out
    _modq("model", "register", str(model_dir))
    code, out = _modq("model", "promote", "modq-text", "9")
    assert code == 1 and "no version 9" in out
    code, out = _modq("model", "rollback", "modq-text")
    assert code == 1 and "no alias 'production'" in out


@pytest.mark.long
@pytest.mark.slow
def test_eval_prints_held_out_metrics_and_logs_them_to_mlflow(
    cli_env: dict[str, str], model_dir: Path
) -> None:
    import json

    from registry import registry_from_settings

    _modq("model", "register", str(model_dir))
    code, out = _modq("model", "eval", "modq-text", "1")
    assert code == 0, out
    printed = dict(line.split() for line in out.splitlines() if line.startswith("roc_auc."))
    built = json.loads((model_dir / "metrics.json").read_text())
    # the same held-out rows as the build: the same AUC
    assert float(printed["roc_auc.harassment"]) == pytest.approx(
        built["harassment"]["roc_auc"], abs=1e-3
    )
    registry = registry_from_settings(get_settings())
    run_id = out.strip().splitlines()[-1].split()[-1]
    logged = registry.client.get_run(run_id)
    assert logged.data.tags["modq.version"] == "1"
    assert logged.data.metrics["roc_auc.harassment"] == pytest.approx(
        float(printed["roc_auc.harassment"])
    )
