"""services.ingest: validation naming the field, the window context rule, idempotent writes."""

from datetime import datetime, timedelta

import pytest
import torch

from plantwatch.adapters.wire import ReadingIn, readings_frame
from plantwatch.domain.errors import FeatureMismatchError, InvalidInputError
from plantwatch.domain.frames import SensorFrame
from plantwatch.domain.modules import Module
from plantwatch.services.ingest import ReadingContext, ingest_frame
from tests.fakes import InMemoryAnomalyRepository
from tests.streaming_support import FEATURES, START, STEP, as_readings, normal_frame, spike_frame, trained_pca

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def model():
    return trained_pca(window=4)


def test_readings_frame_sorts_by_time_and_orders_features():
    readings = [
        ReadingIn(
            timestamp=datetime(2024, 1, 1, 0, 2), values={"pressure": 2.0, "flow": 1.0, "temperature": 3.0}
        ),
        ReadingIn(
            timestamp=datetime(2024, 1, 1, 0, 1), values={"temperature": 30.0, "flow": 10.0, "pressure": 20.0}
        ),
    ]
    frame = readings_frame(Module.ENERGY, "line-1", readings, FEATURES)
    assert frame.feature_names == FEATURES
    assert list(frame.values.index) == [datetime(2024, 1, 1, 0, 1), datetime(2024, 1, 1, 0, 2)]
    assert frame.values.iloc[0].tolist() == [10.0, 20.0, 30.0]


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"flow": 1.0, "pressure": 2.0}, "readings[1].values.temperature"),
        ({"flow": 1.0, "pressure": 2.0, "temperature": 3.0, "humidity": 4.0}, "readings[1].values.humidity"),
        ({"flow": float("nan"), "pressure": 2.0, "temperature": 3.0}, "readings[1].values.flow"),
    ],
)
def test_bad_reading_names_the_field(values, field):
    good = ReadingIn(timestamp=START, values={"flow": 1.0, "pressure": 2.0, "temperature": 3.0})
    with pytest.raises(InvalidInputError) as raised:
        readings_frame(
            Module.ENERGY, "line-1", [good, ReadingIn(timestamp=START + STEP, values=values)], FEATURES
        )
    assert raised.value.field == field
    assert str(raised.value).startswith(field)


def test_duplicate_timestamps_are_refused_and_offsets_converted_to_plant_time():
    values = {"flow": 1.0, "pressure": 2.0, "temperature": 3.0}
    with pytest.raises(InvalidInputError, match=r"readings\[1\]\.timestamp: duplicates readings\[0\]"):
        readings_frame(
            Module.ENERGY,
            "s",
            [ReadingIn(timestamp=START, values=values), ReadingIn(timestamp=START, values=values)],
            FEATURES,
        )
    # the energy module's plant clock is UTC (its configuration's default time zone)
    aware = datetime.fromisoformat("2024-03-01T00:00:00+01:00")
    frame = readings_frame(Module.ENERGY, "s", [ReadingIn(timestamp=aware, values=values)], FEATURES)
    assert list(frame.values.index) == [datetime(2024, 2, 29, 23, 0)]
    with pytest.raises(InvalidInputError, match="at least one"):
        readings_frame(Module.ENERGY, "s", [], FEATURES)


def test_frame_with_other_features_is_refused(model):
    frame = normal_frame(10)
    renamed = SensorFrame(
        module=frame.module, source=frame.source, values=frame.values.rename(columns={"flow": "x"})
    )
    with pytest.raises(FeatureMismatchError) as raised:
        ingest_frame(renamed, model, InMemoryAnomalyRepository(), ReadingContext())
    assert raised.value.field == "flow"


def test_first_batch_without_context_scores_from_the_first_full_window(model):
    repository = InMemoryAnomalyRepository()
    result = ingest_frame(normal_frame(20), model, repository, ReadingContext())
    assert result.readings == 20
    assert result.scored == 20 - (model.card.window - 1)
    assert result.new_scores == result.scored == len(repository.scores)


def test_context_from_earlier_batch_scores_every_reading_of_the_next(model):
    repository = InMemoryAnomalyRepository()
    context = ReadingContext()
    ingest_frame(normal_frame(10), model, repository, context)
    second = normal_frame(5, start=START + 10 * STEP)
    result = ingest_frame(second, model, repository, context)
    assert result.scored == 5
    assert len(repository.scores) == (10 - 3) + 5


def test_sent_context_completes_the_window_of_a_fresh_process(model):
    whole = normal_frame(30)
    earlier, batch = whole.split(25 / 30)
    result = ingest_frame(batch, model, InMemoryAnomalyRepository(), ReadingContext(), sent_context=earlier)
    assert result.scored == len(batch) == 5
    # the scores equal those of scoring the whole series at once
    expected = model.detector.score(whole.to_numpy())[-5:]
    repository = InMemoryAnomalyRepository()
    ingest_frame(batch, model, repository, ReadingContext(), sent_context=earlier)
    got = [p.score for p in sorted(repository.scores.values(), key=lambda p: p.timestamp)]
    assert got == pytest.approx(expected.tolist())


def test_spike_becomes_an_anomaly_with_its_feature_first_and_resending_stores_nothing_twice(model):
    repository = InMemoryAnomalyRepository()
    frame = spike_frame(40, spike_at=30, feature="pressure")
    first = ingest_frame(frame, model, repository, ReadingContext())
    assert first.new_anomalies == len(first.anomalies) >= 1
    flagged = {a.window_end: a for a in first.anomalies}
    spike_time = START + 30 * STEP
    assert spike_time in flagged
    assert flagged[spike_time].top_feature == "pressure"
    assert flagged[spike_time].source == "line-1"

    again = ingest_frame(frame, model, repository, ReadingContext())
    assert again.new_anomalies == 0 and again.new_scores == 0
    assert {a.id for a in again.anomalies} == {a.id for a in first.anomalies}
    assert len(repository.anomalies) == len(first.anomalies)


def test_failed_store_leaves_no_context(model):
    class FailingRepository(InMemoryAnomalyRepository):
        def add_scores(self, points):
            raise ConnectionError("store down")

    context = ReadingContext()
    with pytest.raises(ConnectionError):
        ingest_frame(normal_frame(10), model, FailingRepository(), context)
    assert len(context.before(Module.ENERGY, "line-1", START + timedelta(days=1), FEATURES)) == 0


def test_context_keeps_only_the_latest_readings_per_source():
    context = ReadingContext(max_readings=3)
    context.remember(Module.ENERGY, "a", normal_frame(10).values)
    context.remember(Module.ENERGY, "b", normal_frame(2).values)
    kept = context.before(Module.ENERGY, "a", START + timedelta(days=1), FEATURES)
    assert list(kept.index) == [START + i * STEP for i in (7, 8, 9)]
    assert len(context.before(Module.ENERGY, "b", START + timedelta(days=1), FEATURES)) == 2
    assert len(context.before(Module.ENERGY, "a", START + 8 * STEP, FEATURES)) == 1
    assert len(context.before(Module.CYBER, "a", START + timedelta(days=1), FEATURES)) == 0


def test_as_readings_round_trips(model):
    frame = normal_frame(6)
    again = readings_frame(frame.module, frame.source, as_readings(frame), FEATURES)
    assert again.values.equals(frame.values)
