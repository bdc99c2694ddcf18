"""The notification dispatcher: back-off, giving up, nothing lost over a restart, the webhook notifier."""

import json
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from plantwatch.adapters.notify import WebhookNotifier
from plantwatch.adapters.storage import (
    SqlIncidentRepository,
    create_engine_from_url,
    create_incident_schema,
)
from plantwatch.domain.incidents import IncidentPolicy
from plantwatch.domain.ports import MQTT_TARGET, Notification
from plantwatch.services.notifications import NotificationDispatcher, RetryPolicy
from tests.fakes import BASE_TIME, InMemoryIncidentRepository, make_anomaly

HOOK = "http://hooks.example/incidents"
POLICY = IncidentPolicy(gap=timedelta(minutes=10))
T0 = datetime(2024, 3, 2, 9, 0)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


class FlakyNotifier:
    """Fails the first `failures` sends, then records what it receives."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.received: list[Notification] = []

    def send(self, notification: Notification) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise ConnectionError("receiver down")
        self.received.append(notification)


def _open_one_incident(store, notify=(HOOK,)) -> None:
    anomalies = [make_anomaly(BASE_TIME + timedelta(minutes=i)) for i in range(3)]
    store.record(
        anomalies[0].module,
        anomalies[0].source,
        anomalies,
        POLICY,
        anomalies[-1].window_end,
        T0,
        notify=list(notify),
    )


def test_retry_policy_backs_off_exponentially_up_to_a_cap_then_gives_up() -> None:
    policy = RetryPolicy(first_delay=timedelta(seconds=2), max_delay=timedelta(seconds=30), max_attempts=6)
    delays = [(policy.retry_at(n, T0) - T0).total_seconds() for n in range(1, 6)]  # type: ignore[operator]
    assert delays == [2, 4, 8, 16, 30]
    assert policy.retry_at(6, T0) is None


def test_a_failing_webhook_is_retried_with_back_off_until_it_answers() -> None:
    store, clock, hook = InMemoryIncidentRepository(), Clock(), FlakyNotifier(failures=2)
    _open_one_incident(store)
    dispatcher = NotificationDispatcher(store, hook, clock=clock, retry=RetryPolicy(max_attempts=5))
    assert dispatcher.run_once() == 1 and hook.received == []
    assert dispatcher.run_once() == 0  # not due before its back-off
    clock.now += timedelta(seconds=2)
    assert dispatcher.run_once() == 1 and hook.received == []
    clock.now += timedelta(seconds=3)
    assert dispatcher.run_once() == 0
    clock.now += timedelta(seconds=1)  # the second back-off is 4 s
    dispatcher.run_once()
    (sent,) = hook.received
    assert json.loads(sent.payload)["event"] == "opened"
    assert dispatcher.stats.failed == 2 and dispatcher.stats.delivered == 1 and store.pending() == 0


def test_after_the_last_attempt_it_gives_up_and_says_so() -> None:
    store, clock = InMemoryIncidentRepository(), Clock()
    _open_one_incident(store, notify=(HOOK, MQTT_TARGET))
    # no MQTT notifier in this process: that target fails like a down broker
    dispatcher = NotificationDispatcher(
        store, FlakyNotifier(failures=100), None, retry=RetryPolicy(max_attempts=2), clock=clock
    )
    dispatcher.run_once()
    clock.now += timedelta(minutes=1)
    dispatcher.run_once()
    assert dispatcher.stats.given_up == 2 and store.pending() == 0
    assert {row.last_error for row in store.outbox.values()} == {
        "ConnectionError: receiver down",
        "RuntimeError: no notifier for target 'mqtt' in this process",
    }


def test_a_restart_loses_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    engine = create_engine_from_url(url)
    create_incident_schema(engine)
    _open_one_incident(SqlIncidentRepository(engine))
    clock = Clock()
    # the first process claims the notification, fails to send it and dies before anything else
    first = NotificationDispatcher(SqlIncidentRepository(engine), FlakyNotifier(failures=1), clock=clock)
    first.run_once()
    engine.dispose()

    restarted = create_engine_from_url(url)
    hook = FlakyNotifier()
    second = NotificationDispatcher(SqlIncidentRepository(restarted), hook, clock=clock)
    clock.now += timedelta(seconds=2)
    second.run_once()
    assert len(hook.received) == 1 and hook.received[0].attempts == 1
    assert SqlIncidentRepository(restarted).pending() == 0
    restarted.dispose()


class _Receiver(BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[dict, str]]] = []
    status = 200

    def do_POST(self) -> None:  # the http.server API names it
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((json.loads(body), self.headers["X-Plantwatch-Event-Id"]))
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[str]:
    _Receiver.received, _Receiver.status = [], 200
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook"
    server.shutdown()
    server.server_close()


def test_webhook_notifier_posts_the_json_and_fails_on_an_error_status(receiver: str) -> None:
    notifier = WebhookNotifier(timeout_s=5)
    payload = json.dumps({"event": "opened", "incident": {"id": "i-1"}})
    notifier.send(Notification(1, "event-1", receiver, payload, 0))
    assert _Receiver.received == [({"event": "opened", "incident": {"id": "i-1"}}, "event-1")]
    _Receiver.status = 503
    with pytest.raises(Exception, match="503"):
        notifier.send(Notification(2, "event-2", receiver, payload, 0))
    notifier.close()
