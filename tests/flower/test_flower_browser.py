"""Flower as operators use it: `modq flower` (real Flower), a real worker, a private redis-server
and headless Chromium (Debian's, driven by Playwright).

Jobs whose texts and user ids hold one marker string are sent by modq's producer and by a stock
Celery app (``send_task``, by name and by position, a job that fails, one held for later), then
backlogs are left on the three queues. The test logs in, opens the dashboard, the worker page,
the tasks list, every task's page and the broker tab, and reads Flower's JSON API and the raw
event stream: the marker appears nowhere, the content ids do, the depths shown are the queues'.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from celery import Celery
from redis import Redis

from modq.broker.queues import BrokerQueues
from tests.conftest import REPO
from tests.flower.processes import (
    EventRecorder,
    http_get,
    running_flower,
    running_logged_worker,
)
from tests.polling import wait_until
from tests.workers import flush_private_redis

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"  # Debian's package; Playwright never downloads a browser here
USER, PASSWORD = "ops", f"pw-{uuid.uuid4().hex[:12]}"
QUEUES = ("urgent", "normal", "bulk")
BACKLOG = {"urgent": 3, "normal": 7, "bulk": 12}
# Set MODQ_FLOWER_SCREENSHOTS=docs/img to refresh the screenshots in the docs.
SCREENSHOT_DIR = os.environ.get("MODQ_FLOWER_SCREENSHOTS")


@dataclass
class Scenario:
    url: str
    marker: str  # every text and user id sent holds it
    content_ids: dict[str, str]  # job -> content id
    task_ids: dict[str, str]  # job -> task id
    pages: dict[str, str] = field(default_factory=dict)  # what the browser rendered
    api: dict[str, str] = field(default_factory=dict)  # Flower's JSON answers
    events: str = ""
    inspect_replies: str = ""
    depths_shown_api: dict[str, int] = field(default_factory=dict)
    depths_shown_page: dict[str, int] = field(default_factory=dict)
    depths_measured: dict[str, int] = field(default_factory=dict)
    stock_kwargsrepr: str = ""
    screenshots: list[Path] = field(default_factory=list)
    unauthenticated: dict[str, int] = field(default_factory=dict)
    metrics: tuple[int, str] = (0, "")
    worker_log: str = ""
    legacy: tuple[str, str] = ("", "")  # (task id, marker) of the events no worker redacted


def _job(marker: str, name: str) -> dict[str, Any]:
    return {
        "content_id": f"cid-{uuid.uuid4().hex[:8]}-{name}",
        "content": f"{marker}-text-{name} you are a lovely person",
        "user_id": f"{marker}-user-{name}",
    }


def _send_jobs(stock: Celery, marker: str) -> tuple[dict[str, str], dict[str, Any], Any]:
    """The jobs a worker runs: each way of sending, one failure, one held for ten minutes
    (within what a worker may hold: a further ETA is dead-lettered as eta_too_far)."""
    from tasks import moderate, moderate_many

    jobs = {name: _job(marker, name) for name in "abcdefg"}
    sent = {
        # modq's producer: redacted when sent
        "a": moderate.delay(**jobs["a"], priority="urgent", context={"note": marker}),
        "d": moderate_many.delay(items=[jobs["d"], _job(marker, "d2")], priority="urgent"),
        # a stock producer: Celery's own reprs of every argument
        "b": stock.send_task("modq.moderate", kwargs=jobs["b"], queue="normal"),
        "c": stock.send_task(
            "modq.moderate",
            args=[jobs["c"]["content_id"], jobs["c"]["content"], "text", jobs["c"]["user_id"]],
            queue="normal",
        ),
        "e": stock.send_task(
            "modq.moderate_many", kwargs={"items": [jobs["e"]], "priority": "bulk"}, queue="bulk"
        ),
        "f": stock.send_task(  # fails on the worker: the text is blank
            "modq.moderate", kwargs={**jobs["f"], "content": "   "}, queue="normal"
        ),
    }
    held = stock.send_task("modq.moderate", kwargs=jobs["g"], queue="urgent", countdown=600)
    content_ids = {name: job["content_id"] for name, job in jobs.items()}
    return content_ids, sent, held


def _send_unredacted_events(app: Any, url: str, auth: tuple[str, str]) -> tuple[str, str]:
    """Events as a worker without modq's redaction sends them (an older release, another app's
    worker), holding a marker of their own; returns (task id, marker) once Flower has them."""
    task_id, marker = str(uuid.uuid4()), f"old{uuid.uuid4().hex[:12]}"
    with app.events.default_dispatcher(hostname="old-worker@localhost") as dispatcher:
        dispatcher.send(
            "task-received",
            uuid=task_id,
            name="modq.moderate",
            args=f"['{marker}-text']",
            kwargs=f"{{'content_id': 'legacy', 'user_id': '{marker}-user'}}",
            retries=0,
        )
        dispatcher.send("task-succeeded", uuid=task_id, result=f"{{'user_id': '{marker}'}}")

    def flower_has_it() -> bool:
        tasks = json.loads(http_get(f"{url}/api/tasks", auth)[1])
        return tasks.get(task_id, {}).get("state") == "SUCCESS"

    wait_until(flower_has_it, timeout_s=30, message="Flower never saw the unredacted events")
    return task_id, marker


def _broker_table(page: Any) -> dict[str, int]:
    """The broker tab's Messages column, per queue."""
    shown = {}
    for queue in QUEUES:
        cells = page.locator(f"tr#{queue} td")
        shown[queue] = int(cells.nth(1).inner_text().strip())
    return shown


def _capture(page: Any, url: str, name: str, pages: dict[str, str], wait_text: str = "") -> None:
    response = page.goto(url, wait_until="networkidle")
    assert response is not None and response.status == 200, (
        f"{name}: {response and response.status}"
    )
    if wait_text:
        page.get_by_text(wait_text, exact=False).first.wait_for(timeout=30_000)
    pages[name] = page.content()


def _screenshot(page: Any, name: str, folder: Path) -> Path:
    path = folder / name
    page.screenshot(path=str(path), full_page=True)
    if SCREENSHOT_DIR:
        target = REPO / SCREENSHOT_DIR
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target / name)
    return path


@pytest.fixture(scope="module")
def scenario(model_dir, tmp_path_factory) -> Any:
    from playwright.sync_api import sync_playwright

    import migrations
    from tasks import app, moderate

    assert Path(CHROMIUM).exists(), "apt-get install -y chromium (Debian's package)"
    flush_private_redis()
    root = tmp_path_factory.mktemp("flower")
    database_url = f"sqlite:///{root / 'results.db'}"
    migrations.upgrade(database_url)
    redis_url = os.environ["MODQ_REDIS_URL"]
    stock = Celery("stock", broker=redis_url, backend=redis_url, set_as_current=False)
    marker = f"mk{uuid.uuid4().hex[:12]}"
    login = f"{USER}:{PASSWORD}"
    auth = (USER, PASSWORD)

    with (
        running_flower({}, log_path=root / "flower.log", login=login) as url,
        EventRecorder(app) as recorder,
        sync_playwright() as playwright,
    ):
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        context = browser.new_context(
            http_credentials={"username": USER, "password": PASSWORD},
            viewport={"width": 1600, "height": 800},
        )
        page = context.new_page()
        worker_log = root / "worker.log"
        with running_logged_worker(
            {"MODQ_DATABASE_URL": database_url, "MODQ_MAX_WAIT_MS": "5"}, log_path=worker_log
        ) as hostname:
            # events flow once the worker's are on and our receiver hears the worker
            app.control.enable_events(destination=[hostname], reply=True, timeout=5)
            wait_until(
                lambda: any(e.get("hostname") == hostname for e in recorder.events),
                timeout_s=30,
                message="no event from the worker",
            )
            content_ids, sent, held = _send_jobs(stock, marker)
            for name, result in sent.items():
                if name == "f":
                    with pytest.raises(Exception, match="content is empty"):
                        result.get(timeout=90)
                else:
                    result.get(timeout=90)
            task_ids = {name: result.id for name, result in sent.items()} | {"g": held.id}
            del sent, held, result  # their result subscriptions end while Redis is up
            scenario = Scenario(url, marker, content_ids, task_ids)

            inspect = app.control.inspect(destination=[hostname], timeout=5)
            scheduled = wait_until(
                lambda: (inspect.scheduled() or {}).get(hostname),
                timeout_s=30,
                message="the held job never reached the worker's schedule",
            )
            scenario.inspect_replies = json.dumps([scheduled, inspect.reserved()], default=str)

            def flower_saw_all() -> bool:
                tasks = json.loads(http_get(f"{url}/api/tasks", auth)[1])
                return all(task_id in tasks for task_id in task_ids.values()) and all(
                    tasks[task_ids[name]]["state"] in ("SUCCESS", "FAILURE") for name in "abcdef"
                )

            wait_until(flower_saw_all, timeout_s=60, message="Flower never saw every task")
            scenario.legacy = _send_unredacted_events(app, url, auth)
            _capture(page, f"{url}/", "dashboard", scenario.pages, hostname)
            _capture(page, f"{url}/worker/{hostname}", "worker", scenario.pages)
            scenario.api["workers"] = http_get(f"{url}/api/workers", auth)[1]
        # the worker has stopped: backlogs stay where they are
        for queue, count in BACKLOG.items():
            for number in range(count - (queue == "normal")):
                job = _job(marker, f"{queue}{number}")
                moderate.delay(**job, priority=queue)
        stock.send_task("modq.moderate", kwargs=_job(marker, "backlog"), queue="normal")
        (stock_message,) = [
            json.loads(raw)
            for raw in Redis.from_url(redis_url).lrange("normal", 0, -1)
            if "-user-backlog" in json.loads(raw)["headers"].get("kwargsrepr", "")
        ]
        scenario.stock_kwargsrepr = stock_message["headers"]["kwargsrepr"]
        scenario.depths_measured = BrokerQueues.from_app(app).depths(QUEUES)

        _capture(page, f"{url}/tasks", "tasks", scenario.pages, content_ids["a"])
        scenario.screenshots.append(_screenshot(page, "flower-tasks.png", root))
        for name, task_id in task_ids.items():
            _capture(page, f"{url}/task/{task_id}", f"task-{name}", scenario.pages)
        _capture(page, f"{url}/task/{scenario.legacy[0]}", "task-legacy", scenario.pages)
        _capture(page, f"{url}/broker", "broker", scenario.pages)
        scenario.depths_shown_page = _broker_table(page)
        scenario.screenshots.append(_screenshot(page, "flower-broker.png", root))
        browser.close()

        lengths = json.loads(http_get(f"{url}/api/queues/length", auth)[1])
        scenario.depths_shown_api = {q["name"]: q["messages"] for q in lengths["active_queues"]}
        scenario.api["tasks"] = http_get(f"{url}/api/tasks", auth)[1]
        for name, task_id in task_ids.items():
            scenario.api[f"task-{name}"] = http_get(f"{url}/api/task/info/{task_id}", auth)[1]
        scenario.api["result"] = str(http_get(f"{url}/api/task/result/{task_ids['a']}", auth))
        for path in ("/", "/tasks", "/broker", "/api/tasks", "/api/queues/length"):
            scenario.unauthenticated[path] = http_get(f"{url}{path}")[0]
            scenario.unauthenticated[f"{path} (wrong password)"] = http_get(
                f"{url}{path}", (USER, "wrong")
            )[0]
        scenario.metrics = http_get(f"{url}/metrics")
        scenario.events = recorder.dump()
        scenario.worker_log = worker_log.read_text()
    stock.close()
    yield scenario
    flush_private_redis()


def test_every_page_needs_the_login(scenario):
    assert scenario.unauthenticated and set(scenario.unauthenticated.values()) == {401}


def test_the_broker_tab_and_api_show_the_queues_depths(scenario):
    measured = scenario.depths_measured
    assert measured["normal"] == BACKLOG["normal"] and measured["bulk"] == BACKLOG["bulk"]
    # plus the held job, back on its queue once its worker stopped (if it was put back)
    assert measured["urgent"] >= BACKLOG["urgent"]
    assert scenario.depths_shown_page == measured
    assert scenario.depths_shown_api == measured


def test_no_text_or_user_id_on_any_page(scenario):
    assert set(scenario.pages) >= {"dashboard", "worker", "tasks", "broker", "task-a", "task-g"}
    for name, html in scenario.pages.items():
        assert scenario.marker not in html, name
    # the pages did show the jobs: by content id, on the list and on each task's page
    for name, content_id in scenario.content_ids.items():
        assert content_id in scenario.pages[f"task-{name}"], name
    assert scenario.content_ids["a"] in scenario.pages["tasks"]
    assert scenario.content_ids["g"] in scenario.pages["worker"]  # the held job, scheduled


def test_flower_pages_hide_what_a_worker_did_not_redact(scenario):
    """``format_task``, the second line: events from a worker without modq's redaction."""
    task_id, legacy_marker = scenario.legacy
    for name, html in scenario.pages.items():
        assert legacy_marker not in html, name
    assert (
        task_id in scenario.pages["tasks"] and "&lt;redacted&gt;" in scenario.pages["task-legacy"]
    )
    # Flower's JSON API shows its memory as is (docs/flower.md: not covered)
    assert legacy_marker in scenario.api["tasks"]


def test_no_text_or_user_id_in_flowers_api_the_event_stream_or_inspect(scenario):
    for name, body in scenario.api.items():
        assert scenario.marker not in body, name
    assert scenario.marker not in scenario.events
    assert scenario.marker not in scenario.inspect_replies
    tasks = json.loads(scenario.api["tasks"])
    for name in "abcdeg":
        assert scenario.content_ids[name] in tasks[scenario.task_ids[name]]["kwargs"] + str(
            tasks[scenario.task_ids[name]]["result"]
        ), name
    assert scenario.content_ids["g"] in scenario.inspect_replies
    for name, content_id in scenario.content_ids.items():
        assert content_id in scenario.events, name


def test_the_workers_log_shows_content_ids_and_decisions_only(scenario):
    log = scenario.worker_log
    assert "succeeded in" in log and "content is empty" in log  # INFO lines and the failure
    assert f"{{'content_id': '{scenario.content_ids['a']}', 'decision': '" in log
    assert scenario.marker not in log


def test_results_show_content_id_and_decision_only(scenario):
    tasks = json.loads(scenario.api["tasks"])
    shown = tasks[scenario.task_ids["a"]]["result"]
    pattern = r"\{'content_id': '%s', 'decision': '(allow|flag|remove)'\}"
    assert re.fullmatch(pattern % re.escape(scenario.content_ids["a"]), shown), shown
    assert "503" in scenario.api["result"]  # Flower's process reads no results


def test_a_stock_producer_sends_the_text_so_the_worker_redacts(scenario):
    """What the worker was given to show: a stock message's own repr holds the user id."""
    assert scenario.marker in scenario.stock_kwargsrepr


def test_metrics_answer_without_login_and_hold_no_content(scenario):
    status, body = scenario.metrics
    assert status == 200 and "modq.moderate" in body
    assert scenario.marker not in body


def test_screenshots_are_saved(scenario):
    for path in scenario.screenshots:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000
