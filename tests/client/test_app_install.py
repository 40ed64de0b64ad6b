"""An app installs the client into a fresh venv beside its own ``tasks.py`` and
``celeryconfig.py``, and moderates through a real worker: one namespace, nothing heavy, and
modq's settings, never the app's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SERVICE_NAMES = {
    "tasks", "gpu_worker", "policy", "db", "migrations", "cache", "training", "cli",
    "registry", "lifecycle", "experiments", "reviews", "celeryconfig", "bench",
}  # fmt: skip
HEAVY = {"torch", "onnxruntime", "sqlalchemy", "mlflow", "transformers", "numpy", "alembic"}

APP_TASKS = """
from celery import Celery

app = Celery("shop")
app.config_from_object("celeryconfig")


@app.task(name="shop.notify")
def notify(result):
    return result["decision"]
"""
# the app's own settings: a broker where no modq worker listens
APP_CELERYCONFIG = 'broker_url = "redis://127.0.0.1:1/9"\ntask_default_queue = "shop"\n'
APP_MAIN = """
import json, sys, importlib.util
import tasks                                   # the app's own tasks.py
from modq import moderate, moderate_many, record_review, configure
from modq.errors import InvalidContent

job = moderate.delay(content_id="app-1", content="have a lovely day", user_id="u1",
                     priority="urgent")
result = job.get(timeout=60)
many = moderate_many.delay(items=[{"content_id": "app-2", "content": "hi"}]).get(timeout=60)
try:
    moderate.delay(content_id="app-3", content="")
    refused = None
except InvalidContent as exc:
    refused = exc.code
print(json.dumps({
    "decision": result["decision"], "priority": result["priority"],
    "many": [r["content_id"] for r in many], "refused": refused,
    "tasks_file": tasks.__file__, "app_broker": tasks.app.conf.broker_url,
    "client_broker": moderate.app.conf.broker_url,
    "loaded": sorted(set(sys.modules) & set(json.loads(sys.argv[1]))),
    "findable": sorted(n for n in json.loads(sys.argv[2])
                       if n not in ("tasks", "celeryconfig")  # the app's own
                       and importlib.util.find_spec(n) is not None),
}))
"""


@pytest.fixture(scope="module")
def client_venv(tmp_path_factory) -> Path:
    """A fresh venv with only the client installed (pip builds it from client/)."""
    venv = tmp_path_factory.mktemp("client-venv") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [str(venv / "bin/pip"), "install", "--quiet", str(REPO / "client")],
        check=True,
        timeout=600,
    )
    return venv


def test_installing_the_client_adds_one_namespace_and_nothing_heavy(client_venv):
    listed = subprocess.run(
        [str(client_venv / "bin/pip"), "list", "--format=json"],
        capture_output=True,
        text=True,
        check=True,
    )
    installed = {p["name"].lower() for p in json.loads(listed.stdout)}
    assert "modq" in installed and not installed & HEAVY, installed
    site = next((client_venv / "lib").glob("python3*/site-packages"))
    top_level = {p.stem for p in site.iterdir()}
    assert not top_level & SERVICE_NAMES, top_level & SERVICE_NAMES


def test_an_app_with_its_own_tasks_and_celeryconfig_moderates_through_a_worker(
    client_venv, worker, tmp_path
):
    (tmp_path / "tasks.py").write_text(textwrap.dedent(APP_TASKS))
    (tmp_path / "celeryconfig.py").write_text(APP_CELERYCONFIG)
    (tmp_path / "main.py").write_text(textwrap.dedent(APP_MAIN))
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/root"),
        "MODQ_BROKER_URL": os.environ["MODQ_REDIS_URL"],
    }
    run = subprocess.run(
        [
            str(client_venv / "bin/python"),
            "main.py",
            json.dumps(sorted(HEAVY)),
            json.dumps(sorted(SERVICE_NAMES)),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert report["decision"] == "allow" and report["priority"] == "urgent"
    assert report["many"] == ["app-2"] and report["refused"] == "invalid_content"
    assert report["tasks_file"] == str(tmp_path / "tasks.py")
    assert report["app_broker"] == "redis://127.0.0.1:1/9"  # the app's config is the app's
    assert report["client_broker"] == os.environ["MODQ_REDIS_URL"]
    assert report["loaded"] == [] and report["findable"] == []
