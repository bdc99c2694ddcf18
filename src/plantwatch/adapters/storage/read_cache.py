"""An AnomalyRepository that answers repeated reads from memory while the store's revision is unchanged.

Anomalies are only ever added, and each write that adds one raises the store's revision in the same
transaction (AnomalyRepository.revision). So a read answered at revision R stays right until the revision
moves, whichever process writes: a hit costs one single-row read instead of the read itself. The chatbot asks
the store the same few aggregate questions again and again (tallies, top anomalies, pages with their root
causes: ~70 ms of SQLite work a question over 20,000 anomalies); the dashboard polls the same pages.

Scores are not cached: they arrive with every reading, anomaly or not, and do not move the revision.
"""

import threading
from collections.abc import Callable, Hashable, Sequence
from datetime import datetime, timedelta
from typing import TypeVar

from cachetools import LRUCache

from plantwatch.domain.anomaly import Anomaly, ScorePoint
from plantwatch.domain.modules import Module
from plantwatch.domain.ports import (
    AnomalyOrder,
    AnomalyPage,
    AnomalyQuery,
    AnomalyRepository,
    AnomalyTally,
    StoredBatch,
)

T = TypeVar("T")


class RevisionedCache:
    """Values by key, each kept with the store revision it was read at; the least recently used dropped past
    `max_entries`. Thread-safe: reads run on several threads and cachetools' caches are not."""

    def __init__(self, max_entries: int) -> None:
        self._entries: LRUCache[Hashable, tuple[int, object]] = LRUCache(maxsize=max_entries)
        self._lock = threading.Lock()

    def get(self, key: Hashable, revision: int) -> object | None:
        """The value kept for `key` at exactly `revision`, else None."""
        with self._lock:
            hit = self._entries.get(key)
        return hit[1] if hit is not None and hit[0] == revision else None

    def get_or_read(self, key: Hashable, revision: int, read: Callable[[], T]) -> T:
        """The value kept for `key` at `revision`, or `read()` (outside the lock) and kept. `revision` must be
        read before the data `read` reads, so a value is never kept under a newer revision than its own."""
        hit = self.get(key, revision)
        if hit is not None:
            return hit  # type: ignore[return-value]
        value = read()
        with self._lock:
            current = self._entries.get(key)
            if current is None or current[0] <= revision:
                self._entries[key] = (revision, value)
        return value


class RevisionCachedRepository:
    """`inner` with its anomaly reads (find, tally, top, histogram) cached by revision; writes go through."""

    def __init__(self, inner: AnomalyRepository, max_entries: int = 1024) -> None:
        self.inner = inner
        self._cache = RevisionedCache(max_entries)

    def _cached(self, key: Hashable, read: Callable[[], T]) -> T:
        return self._cache.get_or_read(key, self.inner.revision(), read)

    # reads, cached
    def find(self, query: AnomalyQuery) -> AnomalyPage:
        page = self._cached(("find", query), lambda: self.inner.find(query))
        return AnomalyPage(items=list(page.items), next_cursor=page.next_cursor)

    def tally(self, query: AnomalyQuery) -> AnomalyTally:
        return self._cached(("tally", query), lambda: self.inner.tally(query))

    def top(self, query: AnomalyQuery, order: AnomalyOrder) -> list[Anomaly]:
        return list(self._cached(("top", query, order), lambda: self.inner.top(query, order)))

    def histogram(self, query: AnomalyQuery, start: datetime, step: timedelta, buckets: int) -> list[int]:
        key = ("histogram", query, start, step, buckets)
        return list(self._cached(key, lambda: self.inner.histogram(query, start, step, buckets)))

    # everything else, as the store does it
    def revision(self) -> int:
        return self.inner.revision()

    def get(self, anomaly_id: str) -> Anomaly:
        return self.inner.get(anomaly_id)

    def add_many(self, anomalies: Sequence[Anomaly]) -> int:
        return self.inner.add_many(anomalies)

    def add_batch(self, points: Sequence[ScorePoint], anomalies: Sequence[Anomaly]) -> StoredBatch:
        return self.inner.add_batch(points, anomalies)

    def add_scores(self, points: Sequence[ScorePoint]) -> int:
        return self.inner.add_scores(points)

    def list_scores(
        self, module: Module, since: datetime | None = None, until: datetime | None = None, limit: int = 5000
    ) -> list[ScorePoint]:
        return self.inner.list_scores(module, since=since, until=until, limit=limit)

    def latest_scores(
        self,
        module: Module,
        source: str,
        model_name: str,
        model_version: str,
        before: datetime,
        limit: int,
    ) -> list[ScorePoint]:
        return self.inner.latest_scores(module, source, model_name, model_version, before, limit)
