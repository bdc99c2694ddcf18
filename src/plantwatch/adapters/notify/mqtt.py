"""Publish incident events to `<prefix>/incidents/<module>` (QoS 1), waiting for the broker's ack."""

import json
import threading
import uuid

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from plantwatch.domain.ports import Notification

PUBLISH_TIMEOUT_S = 10.0


def incidents_topic(prefix: str, module: str) -> str:
    return f"{prefix}/incidents/{module}"


class IncidentTopicNotifier:
    """One MQTT connection, opened at the first send and reopened after a drop (paho reconnects)."""

    def __init__(self, host: str, port: int, topic_prefix: str) -> None:
        self.host, self.port, self.topic_prefix = host, port, topic_prefix
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"plantwatch-notifier-{uuid.uuid4().hex[:8]}",
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        self._started = False
        self._lock = threading.Lock()

    def _ensure_connected(self) -> None:
        with self._lock:
            if not self._started:
                self._client.connect(self.host, self.port, keepalive=30)
                self._client.loop_start()
                self._started = True

    def send(self, notification: Notification) -> None:
        self._ensure_connected()
        module = json.loads(notification.payload)["incident"]["module"]
        info = self._client.publish(incidents_topic(self.topic_prefix, module), notification.payload, qos=1)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise ConnectionError(f"MQTT publish failed: {mqtt.error_string(info.rc)}")
        info.wait_for_publish(timeout=PUBLISH_TIMEOUT_S)
        if not info.is_published():
            raise ConnectionError(
                f"the broker did not acknowledge the incident event in {PUBLISH_TIMEOUT_S} s"
            )

    def close(self) -> None:
        with self._lock:
            if self._started:
                self._client.disconnect()
                self._client.loop_stop()
                self._started = False
