"""Read routes answer from a cache of their serialised JSON while the store's revision is unchanged.

Anomalies are only ever added, and every write that adds one raises the store's revision
(AnomalyRepository.revision), so a page rendered at revision R is the right answer until the revision moves.

Two ways to answer, cheapest first:
- on the event loop, when this process read the revision less than `max_age_s` ago and holds the page at
  that revision: no thread hand-over, no database (about half the CPU of the next way);
- on the thread pool: read the revision (one single-row query), then the page from the cache, or render it.
So a write by another process (a worker, another API process) shows within `max_age_s` (plus the time one
revision read takes, while the others keep answering from the known revision for at most a second); a write
through this process (`invalidate`, called by ingest) shows at once. `max_age_s = 0` checks the store on every
request.

The revision also gives each answer an ETag: a client that sends it back in If-None-Match gets a 304
without a body.
"""

import hashlib
import threading
import time
from collections.abc import Callable, Hashable

from fastapi import Request, Response
from starlette.concurrency import run_in_threadpool

from plantwatch.adapters.storage.read_cache import RevisionedCache

JSON = "application/json"
REFRESH_GRACE_S = 1.0


class PageCache:
    """Serialised answers by (key, revision), the least recently used dropped past `max_entries`."""

    def __init__(self, max_age_s: float = 0.1, max_entries: int = 512) -> None:
        self.max_age_s = max_age_s
        self._pages = RevisionedCache(max_entries)
        self._lock = threading.Lock()  # guards the revision and generation below
        self._revision: tuple[int, float] | None = None  # the last revision read, and when
        self._generation = 0  # raised by invalidate: a revision read before it must not be kept after it
        self._refreshing = False  # a request is reading the revision on the pool

    def invalidate(self) -> None:
        """This process changed the store: the next answers read the revision again."""
        with self._lock:
            self._generation += 1
            self._revision = None

    async def answer(
        self,
        request: Request,
        key: Hashable,
        read_revision: Callable[[], int],
        render: Callable[[], bytes],
    ) -> Response:
        """The JSON answer for `key`: from the cache at a recent revision without leaving the event loop,
        or via the thread pool (`read_revision`, then `render` on a miss)."""
        known = self._revision
        if known is not None:
            age = time.monotonic() - known[1]
            # past the max age one request reads the revision again; the others keep answering from the
            # known one meanwhile (for at most REFRESH_GRACE_S more), rather than all queueing on the pool
            fresh = age < self.max_age_s or (self._refreshing and age < self.max_age_s + REFRESH_GRACE_S)
            if fresh:
                cached = self._pages.get(key, known[0])
                if cached is not None:
                    return self._response(request, key, known[0], cached)  # type: ignore[arg-type]
        self._refreshing = True
        try:
            return await run_in_threadpool(self._answer_from_store, request, key, read_revision, render)
        finally:
            self._refreshing = False

    def _answer_from_store(
        self,
        request: Request,
        key: Hashable,
        read_revision: Callable[[], int],
        render: Callable[[], bytes],
    ) -> Response:
        # the revision first: a page rendered after it can only be newer than the revision it is kept under
        read_at, generation = time.monotonic(), self._generation
        revision = read_revision()
        with self._lock:
            if generation == self._generation:
                self._revision = (revision, read_at)
        return self._response(request, key, revision, self._pages.get_or_read(key, revision, render))

    @staticmethod
    def _response(request: Request, key: Hashable, revision: int, body: bytes) -> Response:
        etag = f'"{revision}-{hashlib.blake2b(repr(key).encode(), digest_size=8).hexdigest()}"'
        headers = {"etag": etag, "cache-control": "no-cache"}
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers=headers)
        return Response(content=body, media_type=JSON, headers=headers)
