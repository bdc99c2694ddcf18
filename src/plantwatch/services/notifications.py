"""Deliver the notification outbox: each due notification to its target, retried with exponential back-off.

The outbox is written in the same transaction as the incident change (see IncidentRepository.record), so a
crash between the change and the delivery loses nothing: the next dispatcher, in any process, finds the row.
Delivery is at least once; receivers drop duplicates by the payload's event_id.
"""

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from plantwatch.domain.ports import MQTT_TARGET, Notification, NotificationOutbox, Notifier

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetryPolicy:
    """Attempt n (1-based) failed: the next one waits first_delay * factor^(n-1), at most max_delay."""

    first_delay: timedelta = timedelta(seconds=2)
    factor: float = 2.0
    max_delay: timedelta = timedelta(minutes=10)
    max_attempts: int = 12

    def retry_at(self, attempts_made: int, now: datetime) -> datetime | None:
        if attempts_made >= self.max_attempts:
            return None
        delay = self.first_delay * self.factor ** (attempts_made - 1)
        return now + min(delay, self.max_delay)


@dataclass
class DispatchStats:
    delivered: int = 0
    failed: int = 0
    given_up: int = 0


def _utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass
class NotificationDispatcher:
    """Sends due notifications: MQTT_TARGET to `mqtt`, every other target (a URL) to `webhook`."""

    outbox: NotificationOutbox
    webhook: Notifier
    mqtt: Notifier | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    lease: timedelta = timedelta(seconds=60)
    batch: int = 50
    clock: Callable[[], datetime] = _utc_now
    stats: DispatchStats = field(default_factory=DispatchStats)

    def _notifier(self, target: str) -> Notifier | None:
        return self.mqtt if target == MQTT_TARGET else self.webhook

    def run_once(self) -> int:
        """Send what is due now; returns how many were claimed."""
        claimed = self.outbox.claim_due(self.clock(), self.batch, self.lease)
        for notification in claimed:
            self._deliver(notification)
        return len(claimed)

    def _deliver(self, notification: Notification) -> None:
        notifier = self._notifier(notification.target)
        try:
            if notifier is None:
                raise RuntimeError(f"no notifier for target {notification.target!r} in this process")
            notifier.send(notification)
        except Exception as error:
            retry_at = self.retry.retry_at(notification.attempts + 1, self.clock())
            self.outbox.failed(notification.id, f"{type(error).__name__}: {error}", retry_at)
            self.stats.failed += 1
            if retry_at is None:
                self.stats.given_up += 1
                log.error(
                    "giving up on notification %s to %s: %s", notification.id, notification.target, error
                )
            else:
                log.warning(
                    "notification %s to %s failed (%s); retry at %s",
                    notification.id,
                    notification.target,
                    error,
                    retry_at.isoformat(),
                )
            return
        self.outbox.delivered(notification.id, self.clock())
        self.stats.delivered += 1

    def run_until(self, stop: threading.Event, interval_s: float = 1.0) -> None:
        """Poll until `stop` is set; a failing outbox (database down) is logged and polled again."""
        while not stop.is_set():
            try:
                busy = self.run_once() == self.batch
            except Exception:
                log.exception("the notification outbox could not be read; trying again")
                busy = False
            if not busy:
                stop.wait(interval_s)

    def start(self, interval_s: float = 1.0) -> Callable[[], None]:
        """Run in a daemon thread; returns a function that stops it and waits for it."""
        stop = threading.Event()
        thread = threading.Thread(
            target=self.run_until, args=(stop, interval_s), name="notification-dispatcher", daemon=True
        )
        thread.start()

        def stop_and_join() -> None:
            stop.set()
            thread.join(timeout=10)

        return stop_and_join
