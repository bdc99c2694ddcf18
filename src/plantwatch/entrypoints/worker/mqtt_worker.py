"""The streaming worker: readings from MQTT (v5, QoS 1, shared subscription) scored and stored.

Delivery guarantee: a message is acknowledged only after its scores and anomalies are committed
(manual acks). The session is persistent (fixed client id, clean_start=False, a session expiry), so when the
worker or the broker restarts, the broker sends the unacknowledged messages again. When a write fails the
worker drops the connection and reconnects, which is what makes the broker redeliver; writes are idempotent,
so a redelivered message is stored once. A message that fails validation can never succeed: it is logged,
counted and acknowledged, so it cannot loop.

A graceful stop (`stop()`, SIGTERM: a scale-down) must not leave messages behind either: Mosquitto keeps a
disconnected member of a share group and goes on queueing its share of new messages in its session until
the same client id returns, which a removed worker never does. So the worker first unsubscribes (the broker
assigns it nothing new but still delivers what it had queued for it), then drains: processes and acknowledges
messages until none has come for a quiet period, and then disconnects with a session expiry of 0, which
deletes the session and its place in the group. A stop that cannot drain (the limit passes, a write fails,
the connection drops) keeps the session, as a crash does, so nothing unacknowledged is thrown away.
"""

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from plantwatch.adapters.broker.publisher import publication_time
from plantwatch.adapters.wire import decode_batch, module_of_topic, shared_subscription
from plantwatch.domain.errors import InvalidInputError
from plantwatch.domain.modules import Module
from plantwatch.domain.ports import AnomalyRepository, TrainedModel
from plantwatch.entrypoints.metrics import WORKER_LAG, WORKER_LAST_LAG, WORKER_MESSAGES, record_ingest
from plantwatch.services.drift import DriftMonitor
from plantwatch.services.incidents import IncidentTracking
from plantwatch.services.ingest import IngestResult, ReadingContext, ingest_frame
from plantwatch.settings import Settings

log = logging.getLogger(__name__)

# How long the broker keeps an offline worker's session and unacknowledged messages.
SESSION_EXPIRY_S = 24 * 3600
KEEPALIVE_S = 30
RECONNECT_DELAY_S = 1.0
# A graceful stop ends its drain once no message came for DRAIN_QUIET_S (the broker sends a queued message as
# soon as an acknowledgement frees a slot, so a second of silence means the queue is empty), and gives up
# after DRAIN_LIMIT_S, keeping the session; orchestrators should allow this long before they send SIGKILL.
DRAIN_QUIET_S = 1.0
DRAIN_LIMIT_S = 25.0
# How often the network loop looks at a stop request.
LOOP_TICK_S = 0.1


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
    drained: int = 0
    """Messages received after a stop request, while draining."""
    session_released: bool = False
    """The stop drained the session and asked the broker to delete it (expiry 0)."""
    rejected_reasons: list[str] = field(default_factory=list)


@dataclass
class _Drain:
    """A graceful stop in progress, on the network loop's thread."""

    started: float
    unsubscribed: float | None = None
    """When the broker confirmed the unsubscribe: from then on it only sends what it had queued for us."""


class MqttWorker:
    """Scores the readings of `models`' modules arriving on MQTT and stores them in `repository`, grouping
    anomalies into incidents when given `incidents` (as HTTP ingest does, through the same service).

    `models` is read once per message, so a hot reload that replaces an entry (services/serving.py) takes
    effect from the next message on; `drift` watches the readings stored.
    """

    def __init__(
        self,
        settings: Settings,
        models: dict[Module, TrainedModel],
        repository: AnomalyRepository,
        client_id: str,
        *,
        on_stored: Callable[[IngestResult], None] | None = None,
        incidents: IncidentTracking | None = None,
        session_expiry_s: int = SESSION_EXPIRY_S,
        drain_quiet_s: float = DRAIN_QUIET_S,
        drain_limit_s: float = DRAIN_LIMIT_S,
        drift: DriftMonitor | None = None,
    ) -> None:
        if not models:
            raise ValueError("a worker needs at least one module with a model")
        self.settings = settings
        self.models = models
        self.repository = repository
        self.client_id = client_id
        self.on_stored = on_stored
        self.incidents = incidents
        self.session_expiry_s = session_expiry_s
        self.drain_quiet_s = drain_quiet_s
        self.drain_limit_s = drain_limit_s
        self.drift = drift
        self.stats = WorkerStats()
        self.context = ReadingContext()
        self.subscribed = threading.Event()
        # a plain flag, not an Event: stop() runs in signal handlers, which must not take a lock that the
        # interrupted code may hold; everything else about stopping happens on the network loop's thread
        self._stop_requested = False
        self._drain: _Drain | None = None
        self._last_message_at = 0.0
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
        if self.settings.mqtt_username is not None:
            password = self.settings.mqtt_password
            client.username_pw_set(
                self.settings.mqtt_username, password.get_secret_value() if password else None
            )
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_unsubscribe = self._on_unsubscribe
        client.on_message = self._on_message
        client.on_disconnect = self._on_disconnect
        return client

    def _connect(self) -> None:
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = self.session_expiry_s
        # at most this many unacknowledged messages on their way to this worker: the rest wait in the broker's
        # queue for the session (bounded by its max_queued_messages, see docker/mosquitto.conf)
        properties.ReceiveMaximum = self.settings.mqtt_receive_maximum
        self._client.connect(
            self.settings.mqtt_host,
            self.settings.mqtt_port,
            keepalive=KEEPALIVE_S,
            clean_start=False,
            properties=properties,
        )

    def run(self) -> None:
        """Serve until `stop()` (then drain, see the module doc): connect, process, reconnect after a drop."""
        while not self._stop_requested:
            try:
                self._connect()
            except OSError as error:
                log.warning(
                    "MQTT broker %s:%s unreachable: %s",
                    self.settings.mqtt_host,
                    self.settings.mqtt_port,
                    error,
                )
                self._pause(RECONNECT_DELAY_S)
                continue
            self._serve_connection()
            if not self._stop_requested:
                self.stats.reconnects += 1
                self._pause(RECONNECT_DELAY_S)
        log.info("worker %s stopped: %s", self.client_id, self.stats)

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.run, name=f"mqtt-worker-{self.client_id}", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        """Ask `run()` to drain and return. Safe from a signal handler or any thread; returns at once."""
        self._stop_requested = True

    def _pause(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self._stop_requested and time.monotonic() < deadline:
            time.sleep(LOOP_TICK_S)

    def _serve_connection(self) -> None:
        """Run the network loop until the connection closes; a stop request drains and closes it."""
        self._drain = None
        while self._client.loop(timeout=LOOP_TICK_S) == MQTTErrorCode.MQTT_ERR_SUCCESS:
            if self._stop_requested:
                self._advance_drain()

    def _topics(self) -> list[str]:
        return [
            shared_subscription(self.settings.mqtt_share_group, self.settings.mqtt_topic_prefix, m)
            for m in self.modules
        ]

    def _advance_drain(self) -> None:
        if not self._client.is_connected():
            return  # not yet connected (wait: the session's messages come first), or already closing
        now = time.monotonic()
        drain = self._drain
        if drain is None:
            self._drain = _Drain(started=now)
            self._client.unsubscribe(self._topics())
            log.info("worker %s stopping: unsubscribed, draining its queued messages", self.client_id)
            return
        if drain.unsubscribed is not None and now - max(drain.unsubscribed, self._last_message_at) >= (
            self.drain_quiet_s
        ):
            self._release_session()
            log.info(
                "worker %s drained %d messages in %.1f s; session released",
                self.client_id,
                self.stats.drained,
                now - drain.started,
            )
        elif now - drain.started >= self.drain_limit_s:
            log.warning(
                "worker %s still receiving after %.0f s of draining: disconnecting and keeping its session, "
                "whose messages wait for the same client id",
                self.client_id,
                self.drain_limit_s,
            )
            self._client.disconnect()

    def _release_session(self) -> None:
        properties = Properties(PacketTypes.DISCONNECT)
        properties.SessionExpiryInterval = 0
        self._client.disconnect(
            reasoncode=ReasonCode(PacketTypes.DISCONNECT, "Normal disconnection"), properties=properties
        )
        self.stats.session_released = True

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
        topics = self._topics()
        client.subscribe([(topic, 1) for topic in topics])
        log.info("worker %s subscribed to %s", self.client_id, topics)

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

    def _on_unsubscribe(
        self,
        _client: mqtt.Client,
        _userdata: object,
        _mid: int,
        reasons: Sequence[ReasonCode],
        _properties: Properties | None,
    ) -> None:
        failures = [str(r) for r in reasons if r.is_failure]
        if failures:
            log.warning("MQTT unsubscribe refused: %s", failures)
        if self._drain is not None:
            self._drain.unsubscribed = time.monotonic()

    def _on_disconnect(
        self,
        _client: mqtt.Client,
        _userdata: object,
        _flags: mqtt.DisconnectFlags,
        reason: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        self.subscribed.clear()
        if not self._stop_requested:
            log.warning("worker %s disconnected: %s", self.client_id, reason)

    def _on_message(self, client: mqtt.Client, _userdata: object, message: mqtt.MQTTMessage) -> None:
        if self._dropping.is_set():
            return  # unacknowledged: the broker sends it again after the reconnect
        try:
            self._handle(client, message)
        finally:
            self._last_message_at = time.monotonic()

    def _handle(self, client: mqtt.Client, message: mqtt.MQTTMessage) -> None:
        self.stats.received += 1
        if self._drain is not None:
            self.stats.drained += 1
        try:
            result = self.process(message.topic, bytes(message.payload))
        except InvalidInputError as error:
            self.stats.rejected += 1
            reason = f"{message.topic}: {error}"
            self.stats.rejected_reasons = [*self.stats.rejected_reasons[-99:], reason]
            log.warning("rejected message on %s", reason)
            client.ack(message.mid, message.qos)
            WORKER_MESSAGES.labels("rejected").inc()
            return
        except Exception:
            self.stats.failed += 1
            WORKER_MESSAGES.labels("failed").inc()
            log.exception("storing a message from %s failed; reconnecting for redelivery", message.topic)
            self._dropping.set()
            client.disconnect()
            return
        client.ack(message.mid, message.qos)
        WORKER_MESSAGES.labels("stored").inc()
        published_at = publication_time(message.properties)
        if published_at is not None:
            lag = max(0.0, time.time() - published_at)
            WORKER_LAG.observe(lag)
            WORKER_LAST_LAG.set(lag)
        record_ingest(result, via="mqtt")
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
        batch = decode_batch(payload, module, model.card.feature_names, self.settings.plausibility(module))
        return ingest_frame(
            batch.frame,
            model,
            self.repository,
            self.context,
            sent_context=batch.context,
            incidents=self.incidents,
            drift=self.drift,
            alarm_state_wait_s=self.settings.alarm_state_wait_s,
        )
