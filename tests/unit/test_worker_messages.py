"""Reading messages and the worker's acknowledgement rules, without a broker."""

from dataclasses import dataclass, field

import paho.mqtt.client as mqtt
import pytest
import torch

from plantwatch.adapters.wire import (
    decode_batch,
    encode_batch,
    module_of_topic,
    readings_topic,
    shared_subscription,
)
from plantwatch.domain.errors import InvalidInputError
from plantwatch.domain.modules import Module
from plantwatch.entrypoints.worker.mqtt_worker import MqttWorker
from plantwatch.settings import Settings
from tests.fakes import InMemoryAnomalyRepository
from tests.streaming_support import FEATURES, normal_frame, spike_frame, trained_pca

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def model():
    return trained_pca(Module.CYBER, window=4)


def test_topics():
    assert readings_topic("plantwatch", Module.CYBER) == "plantwatch/cyber/readings"
    assert shared_subscription("g", "plantwatch", Module.ENERGY) == "$share/g/plantwatch/energy/readings"
    assert module_of_topic("plantwatch/machine/readings", "plantwatch") is Module.MACHINE
    for topic in ("plantwatch/water/readings", "other/cyber/readings", "plantwatch/cyber"):
        with pytest.raises(InvalidInputError):
            module_of_topic(topic, "plantwatch")


def test_batch_round_trips_with_its_context():
    frame = normal_frame(12, module=Module.CYBER)
    context, readings = frame.split(8 / 12)
    decoded = decode_batch(encode_batch("plc-1", readings, context), Module.CYBER, FEATURES)
    assert decoded.frame.source == "plc-1"
    assert decoded.frame.values.equals(readings.values)
    assert decoded.context is not None and decoded.context.values.equals(context.values)


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (b"{oops", "payload"),
        (b'{"source": "s", "readings": []}', "readings"),
        (
            b'{"source": "s", "readings": [{"timestamp": "2024-01-01T00:00:00", "values": {"flow": 1}}]}',
            "readings[0].values.pressure",
        ),
        (b'{"source": "s", "readings": [{"timestamp": "soon", "values": {}}]}', "readings[0].timestamp"),
    ],
)
def test_bad_payloads_name_the_field(payload, field):
    with pytest.raises(InvalidInputError) as raised:
        decode_batch(payload, Module.CYBER, FEATURES)
    assert raised.value.field == field


@dataclass
class RecordingClient:
    """Stands in for the paho client inside on_message: records acks and disconnects."""

    acked: list[int] = field(default_factory=list)
    disconnects: int = 0

    def ack(self, mid: int, qos: int) -> None:
        self.acked.append(mid)

    def disconnect(self) -> None:
        self.disconnects += 1


def message(mid: int, payload: bytes, topic: str = "plantwatch/cyber/readings") -> mqtt.MQTTMessage:
    msg = mqtt.MQTTMessage(mid=mid, topic=topic.encode())
    msg.payload = payload
    msg.qos = 1
    return msg


class FailingOnce(InMemoryAnomalyRepository):
    def __init__(self) -> None:
        super().__init__()
        self.failures_left = 1

    def add_many(self, anomalies):
        if self.failures_left:
            self.failures_left -= 1
            raise ConnectionError("store down")
        return super().add_many(anomalies)


def test_acknowledged_only_after_store_and_poison_acked_without_storing(model):
    repository = FailingOnce()
    worker = MqttWorker(Settings(), {Module.CYBER: model}, repository, client_id="unit")
    client = RecordingClient()
    frame = spike_frame(30, 25, "temperature", module=Module.CYBER)
    good = encode_batch("plc", frame)

    worker._on_message(client, None, message(1, good))  # type: ignore[arg-type]
    assert client.acked == [] and client.disconnects == 1 and worker.stats.failed == 1
    # what arrives while the connection is being dropped waits for redelivery
    worker._on_message(client, None, message(2, good))  # type: ignore[arg-type]
    assert client.acked == [] and worker.stats.received == 1

    worker._dropping.clear()  # reconnected: the broker redelivers message 1
    worker._on_message(client, None, message(1, good))  # type: ignore[arg-type]
    assert client.acked == [1] and worker.stats.stored == 1
    assert len(repository.scores) == 27 and worker.stats.anomalies == len(repository.anomalies) >= 1

    worker._on_message(client, None, message(3, b"not json"))  # type: ignore[arg-type]
    worker._on_message(client, None, message(4, good, topic="plantwatch/energy/readings"))  # type: ignore[arg-type]
    assert client.acked == [1, 3, 4] and worker.stats.rejected == 2
    assert "not energy" in worker.stats.rejected_reasons[-1]
    assert len(repository.scores) == 27


def test_worker_needs_a_model():
    with pytest.raises(ValueError, match="at least one"):
        MqttWorker(Settings(), {}, InMemoryAnomalyRepository(), client_id="unit")
