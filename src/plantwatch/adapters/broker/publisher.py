"""Publishing reading messages to MQTT (QoS 1), as a plant gateway would: for replay and the benchmarks.

The publisher rides out a broker restart: paho's network thread reconnects (every RECONNECT_MAX_DELAY_S at
most) and sends again every message the broker had not acknowledged, and messages published meanwhile wait in
paho's queue. At most `max_unacked` messages are unacknowledged at a time: `publish` then waits for the
broker, so a replay slows down to the broker's pace instead of piling messages up in memory, and gives up
with BrokerUnavailableError only when the broker has acknowledged nothing for `resume_timeout_s`.

A message the broker acknowledges with "no matching subscribers" (MQTT v5) reached no worker: no worker has
subscribed yet, or the broker restarted and has not got the workers' shared subscriptions back (Mosquitto
restores sessions and queued messages from its store, but not shared subscriptions, until each worker
subscribes again). The publisher sends such a message again every RESEND_DELAY_S until a worker takes it.

A message may reach the broker twice (sent, broker restarted before its acknowledgement, sent again); the
store's writes are idempotent, so it is stored once. Each message carries its publication time (a user
property) so workers can report how far behind they are.
"""

import logging
import threading
import time
import uuid
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from plantwatch.adapters.wire import encode_batch, readings_topic
from plantwatch.domain.frames import SensorFrame
from plantwatch.domain.modules import Module

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 30.0
MAX_INFLIGHT = 200
RESUME_TIMEOUT_S = 300.0
RECONNECT_MAX_DELAY_S = 5
PUBLISHED_AT = "published_at"
"""User property of every message: its publication time, seconds since the epoch."""


# MQTT v5 PUBACK reason code: the broker took the message but no subscription matched it.
NO_MATCHING_SUBSCRIBERS = 0x10
RESEND_DELAY_S = 0.5


class BrokerUnavailableError(ConnectionError):
    pass


@dataclass(frozen=True)
class _Message:
    topic: str
    payload: bytes
    properties: Properties


def publication_time(properties: Properties | None) -> float | None:
    """When a message was published, from its user property; None when it carries none."""
    for name, value in getattr(properties, "UserProperty", None) or []:
        if name == PUBLISHED_AT:
            try:
                return float(value)
            except ValueError:
                return None
    return None


class ReadingPublisher:
    """A connected MQTT v5 client publishing reading batches; use as a context manager."""

    def __init__(
        self,
        host: str,
        port: int,
        topic_prefix: str,
        client_id: str | None = None,
        *,
        username: str | None = None,
        password: str | None = None,
        resume_timeout_s: float = RESUME_TIMEOUT_S,
        max_unacked: int = MAX_INFLIGHT,
    ) -> None:
        self.host, self.port, self.topic_prefix = host, port, topic_prefix
        self.resume_timeout_s = resume_timeout_s
        self.max_unacked = max_unacked
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or f"plantwatch-publisher-{uuid.uuid4().hex[:8]}",
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        if username is not None:
            self._client.username_pw_set(username, password)
        self._client.max_inflight_messages_set(max_unacked)
        self._client.reconnect_delay_set(min_delay=1, max_delay=RECONNECT_MAX_DELAY_S)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_publish = self._on_publish
        self._acked = threading.Condition()
        self._unacked: dict[int, _Message] = {}
        self._acked_early: dict[int, int] = {}
        self._unrouted: list[_Message] = []
        self._last_progress = time.monotonic()
        self._connected = threading.Event()
        self._answered = threading.Event()
        self._refusal: str | None = None
        self.published = 0
        self.reconnects = 0
        self.resent = 0
        """Messages sent again because the broker had no subscriber for them."""

    def __enter__(self) -> Self:
        # connect_async: the network thread connects, and connects again after any drop
        self._client.connect_async(self.host, self.port, keepalive=30)
        self._client.loop_start()
        # A refused login (wrong password, anonymous client) must fail here, with the broker's reason, rather
        # than as unacknowledged publishes much later.
        if not self._answered.wait(CONNECT_TIMEOUT_S) or self._refusal is not None:
            self._client.loop_stop()
            self._client.disconnect()
            reason = self._refusal or f"no answer to the connect in {CONNECT_TIMEOUT_S:.0f} s"
            raise BrokerUnavailableError(
                f"MQTT broker at {self.host}:{self.port} refused the client: {reason}"
            )
        return self

    def __exit__(
        self, _type: type[BaseException] | None, _error: BaseException | None, _tb: TracebackType | None
    ) -> None:
        try:
            self.flush()
        finally:
            self._client.disconnect()
            self._client.loop_stop()

    def _on_connect(
        self, _client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any
    ) -> None:
        if reason.is_failure:
            log.warning("MQTT broker refused the publisher: %s", reason)
            self._refusal = str(reason)
            self._answered.set()
            return
        self._refusal = None
        self._answered.set()
        if self._connected.is_set() or self.published:
            self.reconnects += 1
        self._connected.set()

    def _on_disconnect(
        self, _client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any
    ) -> None:
        self._connected.clear()
        log.warning("MQTT broker dropped the publisher (%s); reconnecting", reason)

    def _on_publish(self, _client: mqtt.Client, _userdata: Any, mid: int, reason: Any, _props: Any) -> None:
        with self._acked:
            message = self._unacked.pop(mid, None)
            if message is None:  # acknowledged before publish() recorded it
                self._acked_early[mid] = reason.value
            else:
                self._settle(message, reason.value)
            self._acked.notify_all()

    def _settle(self, message: "_Message", reason: int) -> None:
        """Book the broker's answer to `message`; the caller holds self._acked."""
        if reason == NO_MATCHING_SUBSCRIBERS:
            # accepted and delivered to no one: no worker subscribed yet, or a restarted broker that has not
            # got the workers' shared subscriptions back (Mosquitto does not restore them): send it again
            self._unrouted.append(message)
            self.resent += 1
        else:
            self._last_progress = time.monotonic()

    def publish(
        self, module: Module, source: str, readings: SensorFrame, context: SensorFrame | None = None
    ) -> None:
        """Queue one message; waits while `max_unacked` messages await the broker's acknowledgement."""
        self._wait_for_room(self.max_unacked - 1)
        properties = Properties(PacketTypes.PUBLISH)
        properties.UserProperty = [(PUBLISHED_AT, f"{time.time():.6f}")]
        self._send(
            _Message(
                readings_topic(self.topic_prefix, module), encode_batch(source, readings, context), properties
            )
        )
        self.published += 1

    def _send(self, message: "_Message") -> None:
        # not under self._acked: paho calls on_publish holding its own lock, which publish takes too
        info = self._client.publish(message.topic, message.payload, qos=1, properties=message.properties)
        # NO_CONN: paho keeps the message and sends it once the broker is back
        if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
            raise BrokerUnavailableError(f"publish failed: {mqtt.error_string(info.rc)}")
        with self._acked:
            early = self._acked_early.pop(info.mid, None)
            if early is None:
                self._unacked[info.mid] = message
            else:
                self._settle(message, early)

    def flush(self) -> None:
        """Wait until the broker has acknowledged every message published so far."""
        self._wait_for_room(0)

    def _wait_for_room(self, most: int) -> None:
        """Wait until at most `most` messages are unacknowledged or undelivered, sending undelivered ones
        again every RESEND_DELAY_S."""
        self._last_progress = time.monotonic()
        while True:
            with self._acked:
                if len(self._unacked) + len(self._unrouted) <= most:
                    return
                if time.monotonic() - self._last_progress > self.resume_timeout_s:
                    raise BrokerUnavailableError(
                        f"no message reached a worker through the MQTT broker at {self.host}:{self.port} "
                        f"for {self.resume_timeout_s:g} s; {len(self._unacked)} unacknowledged, "
                        f"{len(self._unrouted)} with no subscriber"
                    )
                self._acked.wait(RESEND_DELAY_S if self._unrouted else 0.1)
                resend, self._unrouted = self._unrouted, []
            for message in resend:
                self._send(message)
