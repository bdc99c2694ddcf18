"""Read routes answer from a cache of their serialised JSON while the store's revision is unchanged.

Anomalies are only ever added, and every write that adds one raises the store's revision
(AnomalyRepository.revision), so a page rendered at revision R is the right answer until the revision moves:
a hit costs one single-row read instead of a page query, a root-cause query and a pydantic serialisation
(about 10x less work per request; docs/benchmarks.md, "API load"). Each process keeps its own cache; a write
through another process or a worker raises the shared revision, so no process serves a stale page.

The same revision gives each answer an ETag: a client that sends it back in If-None-Match gets a 304
without a body.
"""

import hashlib
import threading
from collections.abc import Callable, Hashable

from cachetools import LRUCache
from fastapi import Request, Response

JSON = "application/json"


class PageCache:
    """Serialised answers by (key, revision), the least recently used dropped past `max_entries`."""

    def __init__(self, max_entries: int = 512) -> None:
        self._entries: LRUCache[Hashable, tuple[int, bytes]] = LRUCache(maxsize=max_entries)
        # sync routes run on several threads; cachetools' caches are not thread-safe
        self._lock = threading.Lock()

    def answer(self, request: Request, key: Hashable, revision: int, render: Callable[[], bytes]) -> Response:
        """The JSON answer for `key` at `revision`: from the cache, or rendered (outside the lock) and kept.

        `revision` must be read before the data `render` reads, so a page never claims an older revision
        than its content: at worst it is re-rendered once more than needed."""
        etag = f'"{revision}-{hashlib.blake2b(repr(key).encode(), digest_size=8).hexdigest()}"'
        headers = {"etag": etag, "cache-control": "no-cache"}
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers=headers)
        with self._lock:
            cached = self._entries.get(key)
        if cached is not None and cached[0] == revision:
            body = cached[1]
        else:
            body = render()
            with self._lock:
                current = self._entries.get(key)
                if current is None or current[0] <= revision:
                    self._entries[key] = (revision, body)
        return Response(content=body, media_type=JSON, headers=headers)
