"""A private RabbitMQ node for tests and the fault suite: its own node name, ports and data
folder, no plugins, so it can be stopped, killed and started again without touching the
machine's shared RabbitMQ (5672). Starting one takes about 4 s on the 2-core dev machine.

Needs ``rabbitmq-server`` and ``rabbitmqctl`` (the Debian package); run as root (the server
script drops to the ``rabbitmq`` user, which must own the data folder) or as that user.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from cli.services import free_port

SERVER = "rabbitmq-server"
CTL = "rabbitmqctl"


def rabbitmq_available() -> bool:
    """True if this machine can run a private node (the binaries, and root or ``rabbitmq``)."""
    if shutil.which(SERVER) is None or shutil.which(CTL) is None:
        return False
    return os.geteuid() == 0


class RabbitNode:
    """One private RabbitMQ node on loopback; ``url`` is its guest AMQP URL."""

    def __init__(self) -> None:
        self.name = f"modqtest-{uuid.uuid4().hex[:8]}@localhost"
        self.port = free_port()
        self.dist_port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="modq-rabbit-"))
        self.process: subprocess.Popen[bytes] | None = None
        (self.folder / "mnesia").mkdir()
        (self.folder / "log").mkdir()
        (self.folder / "enabled_plugins").write_text("[].\n")  # management plugin off
        (self.folder / "rabbitmq.conf").write_text(
            f"listeners.tcp.default = 127.0.0.1:{self.port}\n"
            "management.tcp.port = 0\n"  # never bind 15672 even if the plugin is enabled
        )
        self._chown()

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}//"

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(self.folder / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.folder / "log"),
            "RABBITMQ_CONFIG_FILE": str(self.folder / "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.folder / "enabled_plugins"),
            "RABBITMQ_PID_FILE": str(self.folder / "node.pid"),
        }

    def start(self, *, timeout_s: float = 60) -> str:
        """Start (or start again, on the same data); return the URL once it accepts AMQP."""
        with (self.folder / "server.out").open("ab") as output:  # the child keeps its own
            self.process = subprocess.Popen(
                [SERVER],
                env=self.env,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: kill() takes all of it
            )
        deadline = time.monotonic() + timeout_s
        while not self.answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                tail = (self.folder / "server.out").read_text()[-2000:]
                self.kill()
                raise RuntimeError(f"private rabbitmq-server did not start:\n{tail}")
            time.sleep(0.1)
        return self.url

    def answers(self) -> bool:
        """True if the node takes a TCP connection and greets in AMQP."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"AMQP\x00\x00\x09\x01")
                return bool(sock.recv(8))
        except OSError:
            return False

    def stop(self) -> None:
        """A clean stop (``rabbitmqctl stop``): connections closed, queues written."""
        if self.process is None or self.process.poll() is not None:
            return
        subprocess.run(
            [CTL, "-n", self.name, "stop"], env=self.env, capture_output=True, timeout=60
        )
        self._wait_gone()

    def kill(self) -> None:
        """SIGKILL the whole node (a crash): no goodbye to clients, nothing flushed."""
        if self.process is None:
            return
        beam_pid = self._beam_pid()  # `su -c` starts the VM in a session of its own
        if beam_pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(beam_pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self._wait_gone()

    def _beam_pid(self) -> int | None:
        try:
            return int((self.folder / "node.pid").read_text().strip())
        except (OSError, ValueError):
            return None

    def restart(self, *, crash: bool = False) -> float:
        """Stop (or kill) and start again; returns the seconds it was unreachable."""
        down_s = time.monotonic()
        self.kill() if crash else self.stop()
        self.start()
        return time.monotonic() - down_s

    def ctl(self, *args: str) -> str:
        """``rabbitmqctl`` against this node; its output."""
        done = subprocess.run(
            [CTL, "-n", self.name, *args], env=self.env, capture_output=True, text=True, timeout=60
        )
        if done.returncode:
            raise RuntimeError(f"rabbitmqctl {' '.join(args)}: {done.stderr[-500:]}")
        return done.stdout

    def close(self) -> None:
        """Stop the node and remove its folder."""
        try:
            self.stop()
        finally:
            self.kill()
            shutil.rmtree(self.folder, ignore_errors=True)

    def _wait_gone(self, timeout_s: float = 30) -> None:
        assert self.process is not None
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        # the server's shell wrapper can exit before the Erlang VM it started: wait for the port
        deadline = time.monotonic() + timeout_s
        while self.answers() and time.monotonic() < deadline:
            time.sleep(0.1)

    def _chown(self) -> None:
        if os.geteuid() != 0:
            return
        import pwd

        try:
            user = pwd.getpwnam("rabbitmq")
        except KeyError:
            return
        for path in [self.folder, *self.folder.rglob("*")]:
            os.chown(path, user.pw_uid, user.pw_gid)


@contextlib.contextmanager
def private_rabbitmq() -> Iterator[RabbitNode]:
    """A started private node, stopped and removed on exit."""
    node = RabbitNode()
    try:
        node.start()
        yield node
    finally:
        node.close()
