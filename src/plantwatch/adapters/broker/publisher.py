"""Publishing reading messages to MQTT (QoS 1), as a plant gateway would: for replay and the benchmarks."""

import logging
import threading
import uuid
from types import TracebackType
from typing import Self

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from plantwatch.adapters.wire import encode_batch, readings_topic
from plantwatch.domain.frames import SensorFrame
from plantwatch.domain.modules import Module

log = logging.getLogger(__name__)

PUBLISH_TIMEOUT_S = 30.0
CONNECT_TIMEOUT_S = 30.0
MAX_INFLIGHT = 200


class BrokerUnavailableError(ConnectionError):
    pass


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
    ) -> None:
        self.host, self.port, self.topic_prefix = host, port, topic_prefix
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or f"plantwatch-publisher-{uuid.uuid4().hex[:8]}",
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        if username is not None:
            self._client.username_pw_set(username, password)
        self._client.on_connect = self._on_connect
        self._connected = threading.Event()
        self._refusal: str | None = None
        self._client.max_inflight_messages_set(MAX_INFLIGHT)
        self._pending: list[mqtt.MQTTMessageInfo] = []
        self.published = 0

    def __enter__(self) -> Self:
        try:
            self._client.connect(self.host, self.port, keepalive=30)
        except OSError as error:
            raise BrokerUnavailableError(
                f"MQTT broker at {self.host}:{self.port} is unreachable: {error}"
            ) from error
        self._client.loop_start()
        # A refused login (wrong password, anonymous client) must fail here, with the broker's reason, rather
        # than as unacknowledged publishes much later.
        if not self._connected.wait(CONNECT_TIMEOUT_S) or self._refusal is not None:
            self._client.loop_stop()
            self._client.disconnect()
            reason = self._refusal or f"no answer to the connect in {CONNECT_TIMEOUT_S:.0f} s"
            raise BrokerUnavailableError(
                f"MQTT broker at {self.host}:{self.port} refused the client: {reason}"
            )
        return self

    def _on_connect(
        self,
        _client: mqtt.Client,
        _userdata: object,
        _flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        if reason.is_failure:
            self._refusal = str(reason)
        self._connected.set()

    def __exit__(
        self, _type: type[BaseException] | None, _error: BaseException | None, _tb: TracebackType | None
    ) -> None:
        try:
            self.flush()
        finally:
            self._client.disconnect()
            self._client.loop_stop()

    def publish(
        self, module: Module, source: str, readings: SensorFrame, context: SensorFrame | None = None
    ) -> None:
        """Queue one message; `flush` waits until the broker has acknowledged every queued one."""
        info = self._client.publish(
            readings_topic(self.topic_prefix, module),
            encode_batch(source, readings, context),
            qos=1,
        )
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise BrokerUnavailableError(f"publish failed: {mqtt.error_string(info.rc)}")
        self._pending.append(info)
        self.published += 1
        if len(self._pending) >= MAX_INFLIGHT:
            self.flush()

    def flush(self) -> None:
        for info in self._pending:
            info.wait_for_publish(timeout=PUBLISH_TIMEOUT_S)
            if not info.is_published():
                raise BrokerUnavailableError(f"the broker did not acknowledge message {info.mid} in time")
        self._pending.clear()
