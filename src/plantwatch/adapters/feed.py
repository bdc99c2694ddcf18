"""In-process feed of newly stored anomalies, for the server-sent event stream.

Ingest runs in FastAPI's thread pool while stream listeners are coroutines on the event loop, so publishing
hands each anomaly to the listener's loop with call_soon_threadsafe.
"""

import asyncio
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from plantwatch.domain.anomaly import Anomaly

# A listener that stops reading must not make the process hold anomalies without bound.
LISTENER_QUEUE_SIZE = 1000


@dataclass(eq=False)
class FeedListener:
    queue: "asyncio.Queue[Anomaly]"
    loop: asyncio.AbstractEventLoop


class AnomalyFeed:
    def __init__(self) -> None:
        self._listeners: set[FeedListener] = set()
        self._lock = threading.Lock()

    def subscribe(self) -> FeedListener:
        """A listener for the running event loop; call `unsubscribe` when the client goes."""
        listener = FeedListener(queue=asyncio.Queue(LISTENER_QUEUE_SIZE), loop=asyncio.get_running_loop())
        with self._lock:
            self._listeners.add(listener)
        return listener

    def unsubscribe(self, listener: FeedListener) -> None:
        with self._lock:
            self._listeners.discard(listener)

    @property
    def listener_count(self) -> int:
        with self._lock:
            return len(self._listeners)

    def publish(self, anomalies: Sequence[Anomaly]) -> None:
        if not anomalies:
            return
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            for anomaly in anomalies:
                try:
                    listener.loop.call_soon_threadsafe(_offer, listener.queue, anomaly)
                except RuntimeError:
                    # the listener's loop has closed: the client is gone
                    self.unsubscribe(listener)
                    break


def _offer(queue: "asyncio.Queue[Anomaly]", anomaly: Anomaly) -> None:
    # a full queue means a stalled client: dropping is right, it polls the store for what it missed
    if not queue.full():
        queue.put_nowait(anomaly)
