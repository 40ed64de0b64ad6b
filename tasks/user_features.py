"""The user's recent outcomes for the policy's ``[user_history]`` rule, cached briefly.

One SQL lookup per user per ``USER_HISTORY_TTL_S`` per worker process; a job without a
``user_id``, or under a policy without the rule, never touches the database.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from db.user_history import UserHistoryRepository
from modq.schemas import ModerationRequest
from policy import Policy, UserFeatures

USER_HISTORY_TTL_S = 30.0  # a new violation counts within this long
USER_HISTORY_CACHE_USERS = 10_000


class UserFeatureSource:
    """Per-process LRU of ``(user_id, window_days) -> UserFeatures`` with a TTL."""

    def __init__(
        self,
        repository: UserHistoryRepository,
        *,
        ttl_s: float = USER_HISTORY_TTL_S,
        max_users: int = USER_HISTORY_CACHE_USERS,
    ) -> None:
        self._repository = repository
        self._ttl_s = ttl_s
        self._max_users = max_users
        self._cache: OrderedDict[tuple[str, int], tuple[float, UserFeatures]] = OrderedDict()
        self._lock = threading.Lock()
        self.lookups = 0  # SQL round trips made (for stats and the benchmark)

    def for_requests(
        self, policy: Policy, requests: Sequence[ModerationRequest]
    ) -> list[UserFeatures | None]:
        """Features per request: None without a user_id or without the policy's rule."""
        rule = policy.user_history
        if rule is None:
            return [None] * len(requests)
        return [
            None if r.user_id is None else self.get(r.user_id, rule.window_days) for r in requests
        ]

    def get(self, user_id: str, window_days: int) -> UserFeatures:
        key = (user_id, window_days)
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None and hit[0] > now:
                self._cache.move_to_end(key)
                return hit[1]
        since = datetime.now(UTC) - timedelta(days=window_days)
        outcomes = self._repository.recent(user_id, since)
        self.lookups += 1
        features = UserFeatures(
            window_days=window_days,
            decisions=outcomes.decisions,
            flags=outcomes.flags,
            removals=outcomes.removals,
            confirmed_violations=outcomes.confirmed_violations,
        )
        with self._lock:
            self._cache[key] = (now + self._ttl_s, features)
            self._cache.move_to_end(key)
            while len(self._cache) > self._max_users:
                self._cache.popitem(last=False)
        return features

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()
