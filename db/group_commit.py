"""Group commit: concurrent jobs share one transaction, and each still waits for it.

Every job must have its result stored before it is acknowledged. Stored one job per
transaction, a busy worker spends its time in commits (an fsync each on SQLite) that serialize
on the database's write lock. Here a writer thread takes whatever has queued up while it was
committing and stores it all in one transaction; each caller blocks until the transaction that
holds its rows has committed, and gets that transaction's error if it failed. Nothing waits
for company: an idle worker's job is written at once.

A group that fails because the database is unavailable (``StorageUnavailable``) fails every
member: each job is retried. A group that fails for any other reason (a row the database
refuses: ``StorageRejected``) is stored again member by member, each in its own transaction,
so only the job that brought the bad row fails and its neighbours are stored.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from queue import Empty, SimpleQueue
from typing import Generic, TypeVar

from modq.errors import StorageUnavailable

Item = TypeVar("Item")

STORE_WAIT_S = 120.0  # a commit that has not returned by then fails the job (it is retried)


class GroupCommitter(Generic[Item]):
    """Feeds ``store`` (one transaction for a list of items) from many threads."""

    def __init__(self, store: Callable[[Sequence[Item]], object], *, max_items: int = 512) -> None:
        self._store = store
        self._max_items = max_items
        self._queue: SimpleQueue[tuple[Item, Future[None]] | None] = SimpleQueue()
        self._writer = threading.Thread(target=self._run, name="modq-group-commit", daemon=True)
        self._writer.start()
        self.transactions = 0  # commits made (for stats and tests)
        self.items = 0
        self.isolations = 0  # failed groups whose members were then stored one by one

    def submit(self, item: Item) -> None:
        """Store ``item``; return once its transaction committed, or raise what it raised."""
        done: Future[None] = Future()
        self._queue.put((item, done))
        try:
            done.result(timeout=STORE_WAIT_S)
        except FutureTimeout as exc:
            raise StorageUnavailable(f"no commit within {STORE_WAIT_S:.0f} s") from exc

    def close(self) -> None:
        """Store what is queued, then stop the writer."""
        self._queue.put(None)
        self._writer.join(timeout=STORE_WAIT_S)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            group = [first]
            stopping = False
            while len(group) < self._max_items:
                try:
                    entry = self._queue.get_nowait()
                except Empty:
                    break
                if entry is None:
                    stopping = True
                    break
                group.append(entry)
            self._commit(group)
            if stopping:
                return

    def _commit(self, group: list[tuple[Item, Future[None]]]) -> None:
        try:
            self._store([item for item, _ in group])
        except BaseException as exc:
            if len(group) > 1 and not isinstance(exc, StorageUnavailable):
                self._commit_alone(group)  # a bad row fails its own job, not its neighbours
                return
            for _, done in group:  # the database is down: every waiter learns why
                done.set_exception(exc)
            return
        self.transactions += 1
        self.items += len(group)
        for _, done in group:
            done.set_result(None)

    def _commit_alone(self, group: list[tuple[Item, Future[None]]]) -> None:
        """After a group failed for a reason other than an unavailable database (a row the
        database refuses), store each member in its own transaction: only the bad one fails."""
        self.isolations += 1
        for item, done in group:
            try:
                self._store([item])
            except BaseException as exc:
                done.set_exception(exc)
                continue
            self.transactions += 1
            self.items += 1
            done.set_result(None)
