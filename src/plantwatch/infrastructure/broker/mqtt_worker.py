"""The streaming worker: readings from MQTT (v5, QoS 1, shared subscription) scored and stored.

Delivery guarantee: a message is acknowledged only after its scores and anomalies are committed
(manual acks). The session is persistent (fixed client id, clean_start=False, a session expiry), so when the
worker or the broker restarts, the broker sends the unacknowledged messages again. When a write fails the
worker drops the connection and reconnects, which is what makes the broker redeliver; writes are idempotent,
so a redelivered message is stored once. A message that fails validation can never succeed: it is logged,
counted and acknowledged, so it cannot loop.
"""

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from plantwatch.domain.errors import InvalidInputError
from plantwatch.domain.modules import Module
from plantwatch.domain.ports import AnomalyRepository, TrainedModel
from plantwatch.infrastructure.broker.messages import decode_batch, module_of_topic, shared_subscription
from plantwatch.infrastructure.settings import Settings
from plantwatch.services.ingest import IngestResult, ReadingContext, ingest_frame

log = logging.getLogger(__name__)

# How long the broker keeps an offline worker's session and unacknowledged messages.
SESSION_EXPIRY_S = 24 * 3600
KEEPALIVE_S = 30
RECONNECT_DELAY_S = 1.0


@dataclass
class WorkerStats:
    received: int = 0
    stored: int = 0
    """Messages scored, stored and acknowledged."""
    rejected: int = 0
    """Messages that failed validation (acknowledged, not stored)."""
    failed: int = 0
    """Messages whose write failed; left unacknowledged for redelivery."""
    readings: int = 0
    scores: int = 0
    anomalies: int = 0
    reconnects: int = 0
    rejected_reasons: list[str] = field(default_factory=list)


class MqttWorker:
    """Scores the readings of `models`' modules arriving on MQTT and stores them in `repository`."""

    def __init__(
        self,
        settings: Settings,
        models: dict[Module, TrainedModel],
        repository: AnomalyRepository,
        client_id: str,
        *,
        on_stored: Callable[[IngestResult], None] | None = None,
        session_expiry_s: int = SESSION_EXPIRY_S,
    ) -> None:
        if not models:
            raise ValueError("a worker needs at least one module with a model")
        self.settings = settings
        self.models = models
        self.repository = repository
        self.client_id = client_id
        self.on_stored = on_stored
        self.session_expiry_s = session_expiry_s
        self.stats = WorkerStats()
        self.context = ReadingContext()
        self.subscribed = threading.Event()
        self._stopping = threading.Event()
        # set while the connection is being dropped after a failed write: later messages wait for redelivery
        self._dropping = threading.Event()
        self._client = self._new_client()

    @property
    def modules(self) -> list[Module]:
        return list(self.models)

    def _new_client(self) -> mqtt.Client:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=MQTTProtocolVersion.MQTTv5,
            manual_ack=True,
        )
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        client.on_disconnect = self._on_disconnect
        return client

    def _connect(self) -> None:
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = self.session_expiry_s
        self._client.connect(
            self.settings.mqtt_host,
            self.settings.mqtt_port,
            keepalive=KEEPALIVE_S,
            clean_start=False,
            properties=properties,
        )

    def run(self) -> None:
        """Serve until `stop()`: connect, process, and reconnect after a dropped connection."""
        while not self._stopping.is_set():
            try:
                self._connect()
            except OSError as error:
                log.warning(
                    "MQTT broker %s:%s unreachable: %s",
                    self.settings.mqtt_host,
                    self.settings.mqtt_port,
                    error,
                )
                self._stopping.wait(RECONNECT_DELAY_S)
                continue
            self._client.loop_forever()
            if not self._stopping.is_set():
                self.stats.reconnects += 1
                self._stopping.wait(RECONNECT_DELAY_S)
        log.info("worker %s stopped: %s", self.client_id, self.stats)

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.run, name=f"mqtt-worker-{self.client_id}", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self._stopping.set()
        self._client.disconnect()

    def _on_connect(
        self,
        client: mqtt.Client,
        _userdata: object,
        _flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        if reason.is_failure:
            log.error("MQTT connect refused: %s", reason)
            return
        self._dropping.clear()
        topics = [
            (shared_subscription(self.settings.mqtt_share_group, self.settings.mqtt_topic_prefix, m), 1)
            for m in self.modules
        ]
        client.subscribe(topics)
        log.info("worker %s subscribed to %s", self.client_id, [t for t, _ in topics])

    def _on_subscribe(
        self,
        _client: mqtt.Client,
        _userdata: object,
        _mid: int,
        reasons: Sequence[ReasonCode],
        _properties: Properties | None,
    ) -> None:
        failures = [str(r) for r in reasons if r.is_failure]
        if failures:
            log.error("MQTT subscription refused: %s", failures)
            return
        self.subscribed.set()

    def _on_disconnect(
        self,
        _client: mqtt.Client,
        _userdata: object,
        _flags: mqtt.DisconnectFlags,
        reason: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        self.subscribed.clear()
        if not self._stopping.is_set():
            log.warning("worker %s disconnected: %s", self.client_id, reason)

    def _on_message(self, client: mqtt.Client, _userdata: object, message: mqtt.MQTTMessage) -> None:
        if self._dropping.is_set():
            return  # unacknowledged: the broker sends it again after the reconnect
        self.stats.received += 1
        try:
            result = self.process(message.topic, bytes(message.payload))
        except InvalidInputError as error:
            self.stats.rejected += 1
            reason = f"{message.topic}: {error}"
            self.stats.rejected_reasons = [*self.stats.rejected_reasons[-99:], reason]
            log.warning("rejected message on %s", reason)
            client.ack(message.mid, message.qos)
            return
        except Exception:
            self.stats.failed += 1
            log.exception("storing a message from %s failed; reconnecting for redelivery", message.topic)
            self._dropping.set()
            client.disconnect()
            return
        client.ack(message.mid, message.qos)
        self.stats.stored += 1
        self.stats.readings += result.readings
        self.stats.scores += result.new_scores
        self.stats.anomalies += result.new_anomalies
        if self.on_stored is not None:
            self.on_stored(result)

    def process(self, topic: str, payload: bytes) -> IngestResult:
        """Decode, score and store one message. InvalidInputError: a bad message; anything else: retry."""
        module = module_of_topic(topic, self.settings.mqtt_topic_prefix)
        model = self.models.get(module)
        if model is None:
            raise InvalidInputError(
                f"this worker serves {[m.value for m in self.modules]}, not {module.value}"
            )
        batch = decode_batch(payload, module, model.card.feature_names)
        return ingest_frame(batch.frame, model, self.repository, self.context, sent_context=batch.context)
