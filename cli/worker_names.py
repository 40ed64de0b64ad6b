"""Celery node names for `modq worker` and `modq webhooks`: distinct for every worker on a
host, stable across restarts.

Two workers with one node name share a remote-control mailbox (``<name>.celery.pidbox``). On
RabbitMQ that queue is exclusive, so the second worker dies at start (``405 RESOURCE_LOCKED``);
on Redis both answer under one name and ``inspect`` sees one worker. The name also keys the
node's state file (``MODQ_WORKER_STATE_DB``, ``%n``: the revokes it keeps across restarts), so
it must not change from one start to the next either: a pid or a random suffix would not do.

So each worker *claims* its name on this host while it runs: it binds a Linux abstract unix
socket named after the node (no file to clean up; the kernel frees it when the process exits,
SIGKILL included). ``modq worker`` takes the first free name of ``modq``, ``modq-2``,
``modq-3``... (a group of N: the first N free of ``modq-1``, ``modq-2``...): the first worker
on a host is ``modq@host`` as always, the one started beside it ``modq-2@host``, and a worker
restarted gets back the lowest free name, its own. ``--hostname NAME`` asks for one name: it is
used as given, and refused at start if a worker on this host holds it already.
"""

from __future__ import annotations

import errno
import itertools
import socket
import sys
from dataclasses import dataclass, field

DEFAULT_BASE = "modq"
CLAIM_PREFIX = "\0modq-worker-node:"  # Linux abstract namespace: no file, freed at exit


class NameTaken(Exception):
    """A worker on this host already runs under the asked-for node name."""


@dataclass
class Claims:
    """The node names this process holds, and their sockets (keep this object alive, and let
    the worker inherit the sockets, for as long as the workers run)."""

    names: list[str]
    sockets: list[socket.socket] = field(default_factory=list)

    def inherit(self) -> None:
        """Keep the claims across ``exec`` (``modq worker`` execs Celery in its own process)."""
        for sock in self.sockets:
            sock.set_inheritable(True)

    def release(self) -> None:
        for sock in self.sockets:
            sock.close()
        self.sockets.clear()


def full_name(name: str) -> str:
    """``name`` as a Celery node name: ``urgent`` is ``urgent@%h`` (Celery itself would read a
    bare word as the host: ``celery@urgent``)."""
    if not name or name.startswith("@") or name.endswith("@"):
        raise ValueError(f"a worker name is NAME or NAME@HOST, got {name!r}")
    return name if "@" in name else f"{name}@%h"


def numbered(name: str, index: int) -> str:
    """``name`` with ``-index`` after its node part: ``urgent@%h``, 2 → ``urgent-2@%h``."""
    node, _, host = full_name(name).partition("@")
    return f"{node}-{index}@{host}"


def expanded(name: str) -> str:
    """The node name as Celery will spell it on this host (``%h``, ``%n``, ``%d`` filled in)."""
    from celery.utils.nodenames import host_format

    return host_format(full_name(name))


def _claim(name: str) -> socket.socket | None:
    """Bind this host's claim on ``name``; None if another process holds it."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        sock.bind(CLAIM_PREFIX + expanded(name))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            return None
        raise
    return sock


def claim_names(count: int, name: str | None = None, *, base: str = DEFAULT_BASE) -> Claims:
    """Claim ``count`` node names on this host. ``name`` (``--hostname``): that name for one
    worker, ``name-1``... for a group, all free or ``NameTaken``. No name: the first free of
    ``base``, ``base-2``, ``base-3``... for one worker (``modq``, ``modq-2``...; ``modq
    webhooks``: ``webhooks``, ``webhooks-2``...), of ``base-1``, ``base-2``... for a group.
    Off Linux (no abstract sockets) nothing is checked: ``base`` or ``base-1``...."""
    base = full_name(name or base)
    wanted = [base] if count == 1 else [numbered(base, i) for i in range(1, count + 1)]
    if not sys.platform.startswith("linux"):
        return Claims(names=wanted)
    claims = Claims(names=[])
    try:
        if name is not None:
            for candidate in wanted:
                _hold(claims, candidate, _claim(candidate))
            return claims
        first = [base] if count == 1 else []
        later = (numbered(base, i) for i in itertools.count(1 + len(first)))
        for candidate in itertools.chain(first, later):
            held = _claim(candidate)
            if held is not None:
                _hold(claims, candidate, held)
                if len(claims.names) == count:
                    return claims
    except BaseException:
        claims.release()
        raise
    raise AssertionError("unreachable: the candidates never end")  # pragma: no cover


def _hold(claims: Claims, name: str, held: socket.socket | None) -> None:
    if held is None:
        raise NameTaken(
            f"a worker on this host already runs as {expanded(name)}: give this one another "
            "--hostname (or leave it out for a free default name)"
        )
    claims.names.append(name)
    claims.sockets.append(held)
