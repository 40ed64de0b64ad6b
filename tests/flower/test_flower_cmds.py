"""`modq flower` refuses to start without a login, and hands Flower a broker URL it can read."""

from __future__ import annotations

import os

import pytest
from click.testing import CliRunner

from cli.flower_cmds import AUTH_ENV, flower_command, flower_env, parse_basic_auth
from cli.main import main


@pytest.mark.parametrize("value", ["", "   ", "admin", "admin:", ":secret", "a:b,c"])
def test_flower_refuses_to_start_without_a_complete_login(value, monkeypatch):
    monkeypatch.setenv(AUTH_ENV, value)
    outcome = CliRunner().invoke(main, ["flower"])
    assert outcome.exit_code == 2
    assert AUTH_ENV in outcome.output
    assert "secret" not in outcome.output  # a password is never echoed


def test_the_login_reaches_flower_through_its_environment_not_its_command_line():
    entries = parse_basic_auth("ops:pa:ss, audit:x")
    assert entries == ["ops:pa:ss", "audit:x"]
    command = flower_command("127.0.0.1", 5599)
    assert "--address=127.0.0.1" in command and "--port=5599" in command
    assert not any("pa:ss" in part for part in command)
    env = flower_env(
        {"PATH": "/bin", "FLOWER_UNAUTHENTICATED_API": "true", "FLOWER_BASIC_AUTH": "x:y"}, entries
    )
    assert env == {"PATH": "/bin", "FLOWER_BASIC_AUTH": "ops:pa:ss,audit:x"}


def test_the_default_address_serves_this_host_only():
    defaults = {p.name: p.default for p in main.commands["flower"].params}
    assert defaults["address"] == "127.0.0.1"


def test_a_connection_on_modqs_transport_reads_back_as_redis(monkeypatch):
    """Flower builds its broker client from ``as_uri()``: it must parse as redis://, while the
    worker keeps the atomic-fetch transport."""
    from flower.utils.broker import Broker
    from flower.utils.broker import Redis as FlowerRedis

    from tasks import app

    url = os.environ["MODQ_REDIS_URL"]
    with app.connection() as connection:
        assert connection.transport_cls == "modq.broker.transport:Transport"
        assert type(connection.transport).__module__ == "modq.broker.transport"
        assert connection.as_uri(include_password=True) == url
        assert connection.clone().transport_cls == "modq.broker.transport:Transport"
        broker = Broker(connection.as_uri(include_password=True))
    assert isinstance(broker, FlowerRedis)
