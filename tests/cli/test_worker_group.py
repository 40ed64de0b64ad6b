"""`modq worker --processes N`: N real worker processes behind one command."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from cli.services import free_port, start_worker, worker_stats
from cli.worker_group import metrics_ports, processes_for
from cli.worker_names import NameTaken, claim_names, expanded, full_name
from tests.cli.side_by_side import check_two_workers_on_one_host
from tests.polling import wait_until
from tests.tasks.conftest import tiny_model_dir  # noqa: F401  # a fixture: the tiny model

MODQ = str(Path(sys.executable).parent / "modq")


def test_processes_auto_is_one_per_core_on_a_cpu_and_one_on_a_gpu():
    assert processes_for("auto", device="cpu", cores=2) == 2
    assert processes_for("auto", device="cpu", cores=16) == 16
    assert processes_for("auto", device="cuda", cores=16) == 1
    assert processes_for("3", device="cuda") == 3  # asked for is asked for


@pytest.mark.parametrize("choice", ["0", "-1", "two", ""])
def test_processes_must_be_auto_or_a_positive_count(choice):
    with pytest.raises(ValueError, match="processes"):
        processes_for(choice, device="cpu")


def _node(name: str) -> str:
    return name.split("@")[0]


def test_workers_on_one_host_never_share_a_default_name():
    """The first free of modq, modq-2, ... (modq-1, ... for a group), held while it runs:
    other sessions on this machine may hold some, so the names are compared, not spelled."""
    first, second, group = claim_names(1), claim_names(1), claim_names(2)
    try:
        names = [*first.names, *second.names, *group.names]
        assert len(set(names)) == 4
        assert all(name.endswith("@%h") for name in names)
        assert all(_node(name) == "modq" or _node(name).startswith("modq-") for name in names)
        freed = first.names[0]
        first.release()
        again = claim_names(1)  # a restarted worker gets its own name back
        assert again.names == [freed]
        again.release()
    finally:
        for claims in (first, second, group):
            claims.release()


def test_an_asked_for_name_is_used_as_given_and_refused_when_taken():
    name = f"urgent{uuid.uuid4().hex[:6]}"
    one = claim_names(1, name)
    try:
        assert one.names == [f"{name}@%h"]  # NAME alone is NAME@%h (Celery reads it as a host)
        with pytest.raises(NameTaken, match=expanded(f"{name}@%h")):
            claim_names(1, f"{name}@%h")
        group = claim_names(2, f"{name}-g")
        assert group.names == [f"{name}-g-1@%h", f"{name}-g-2@%h"]
        group.release()
    finally:
        one.release()
    for bad in ("", "@host", "name@"):
        with pytest.raises(ValueError, match="NAME@HOST"):
            full_name(bad)


def _assert_refused_while_held(command: str, flag: str, prefix: str) -> None:
    """``modq COMMAND FLAG NAME`` exits 2 naming the holder while this process holds NAME."""
    name = f"{prefix}{uuid.uuid4().hex[:6]}"
    held = claim_names(1, name)
    try:
        done = subprocess.run(
            [MODQ, command, flag, name], capture_output=True, text=True, timeout=60
        )
    finally:
        held.release()
    assert done.returncode == 2, done.stderr
    assert f"already runs as {name}@" in done.stderr


def test_the_command_refuses_a_name_a_worker_on_this_host_holds():
    _assert_refused_while_held("worker", "-n", "taken")


def test_a_worker_started_by_the_demo_holds_a_free_name_of_its_own(tmp_path):
    """`modq demo` (cli.services.start_worker) names its worker like `modq worker` does: a
    free name, held by the worker process itself while it runs."""
    process = start_worker({}, threads=1, log_path=tmp_path / "worker.log")
    try:
        arguments = list(process.args)
        name = str(arguments[arguments.index("--hostname") + 1])
        with pytest.raises(NameTaken):  # held by the worker, not by this process
            claim_names(1, name)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)
    wait_until(_free(name), timeout_s=10, message=f"{name} still held after the worker died")


def _free(name: str) -> Callable[[], bool]:
    def free() -> bool:
        try:
            claim_names(1, name).release()
        except NameTaken:
            return False
        return True

    return free


@pytest.mark.integration
@pytest.mark.slow
def test_two_workers_on_one_host_on_redis(cli_env, tiny_model_dir, tmp_path):  # noqa: F811
    """README's layout (a worker and a dedicated urgent one) on one host: two nodes, not one
    name answered twice (RabbitMQ: tests/rabbitmq/test_worker_names.py)."""
    check_two_workers_on_one_host({**cli_env, "MODQ_MODEL_DIR": str(tiny_model_dir)}, tmp_path)


def test_each_process_of_a_group_gets_its_own_metrics_port():
    assert metrics_ports(9100, 3) == [9100, 9101, 9102]
    assert metrics_ports(0, 2) == [0, 0]  # off for all
    with pytest.raises(ValueError, match="65535"):
        metrics_ports(65535, 2)


def _group_nodes(expected: int, timeout_s: float = 120) -> dict[str, dict]:
    def loaded_nodes() -> dict[str, dict]:
        nodes = {
            name: stats
            for name, stats in worker_stats(timeout_s=1).items()
            if name.startswith("modq-") and stats.get("model_loaded")
        }
        return nodes if len(nodes) == expected else {}

    return wait_until(
        loaded_nodes,
        timeout_s=timeout_s,
        interval_s=0.5,
        message=f"{expected} worker processes never answered with a model loaded",
    )


def _children(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in found.split()]


@pytest.fixture
def metrics_port() -> int:
    while True:  # two free ports side by side
        port = free_port()
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port + 1)) != 0:
                return port


@pytest.fixture
def start_group(tmp_path, cli_env, model_dir, metrics_port):
    """Starts `modq worker --processes 2` (2 task threads each, metrics on metrics_port and
    metrics_port + 1); killed if still up after."""
    started: list[subprocess.Popen[bytes]] = []

    def start() -> subprocess.Popen[bytes]:
        options = ["--processes", "2", "--threads", "2", "--metrics-port", str(metrics_port)]
        with open(tmp_path / "group.log", "ab") as log:  # the children keep their own handle
            group = subprocess.Popen(
                [MODQ, "worker", *options, "--loglevel", "warning"],
                env={**os.environ, **cli_env},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        started.append(group)
        return group

    yield start
    for group in started:
        if group.poll() is None:
            os.killpg(group.pid, signal.SIGKILL)
            group.wait(10)


def _decisions(port: int) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "modq_worker_decisions_total"
    )


@pytest.mark.integration
def test_two_processes_serve_jobs_and_stop_together_on_sigterm(start_group, metrics_port):
    from tasks import moderate

    group = start_group()
    nodes = _group_nodes(2)
    assert len(nodes) == 2 and all(_node(name).startswith("modq-") for name in nodes)
    assert len({stats["pid"] for stats in nodes.values()}) == 2  # two models, two processes
    results = [
        moderate.delay(content_id=f"group-{i}", content=f"hello number {i}") for i in range(8)
    ]
    assert [r.get(timeout=60)["content_id"] for r in results] == [f"group-{i}" for i in range(8)]
    # each process serves its own metrics, on its own port: together they saw every job
    assert _decisions(metrics_port) + _decisions(metrics_port + 1) == 8
    children = _children(group.pid)
    assert len(children) == 2
    group.send_signal(signal.SIGTERM)
    assert group.wait(60) == 0
    assert not [pid for pid in children if Path(f"/proc/{pid}").exists()]


@pytest.mark.integration
def test_one_process_dying_stops_the_group_with_a_failure(start_group):
    group = start_group()
    _group_nodes(2)
    first, second = _children(group.pid)
    os.kill(first, signal.SIGKILL)
    assert group.wait(60) != 0  # a supervisor sees the group fail and restarts it whole
    assert not Path(f"/proc/{second}").exists()  # stopped and reaped


def test_modq_webhooks_takes_a_stable_free_name_and_refuses_a_held_one():
    """`modq webhooks` claims its node name as `modq worker` does: ``--hostname`` held on this
    host is refused; without it, the first free of webhooks@%h, webhooks-2@%h... (was
    ``webhooks-<pid>@%h``: a new name on every restart, never checked)."""
    _assert_refused_while_held("webhooks", "--hostname", "hooks")
    # the default name: `webhooks@%h` held here, the command takes the next free one
    try:
        base = claim_names(1, "webhooks")
    except NameTaken:  # a `modq webhooks` runs on this host: its name is the base's
        base = None
    env = {**os.environ, "MODQ_BROKER_URL": "redis://127.0.0.1:1/0"}
    process = subprocess.Popen(
        [MODQ, "webhooks"], stderr=subprocess.PIPE, text=True, env=env, start_new_session=True
    )
    try:
        assert process.stderr is not None
        first = process.stderr.readline()
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)
        if process.stderr is not None:
            process.stderr.close()
        if base is not None:
            base.release()
    host = expanded("any").partition("@")[2]
    assert first.startswith("modq: webhooks webhooks-") and first.endswith(f"@{host}\n"), first
    assert "-2@" in first or base is None, first  # the lowest free name after webhooks@%h
