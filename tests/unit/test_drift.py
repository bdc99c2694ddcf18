"""Drift: live readings against the training profile saved with a model; a shifted stream raises one stored
warning within the configured window, and GET /models/{module}/drift shows it."""

from dataclasses import replace
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from sqlalchemy import create_engine

from plantwatch.adapters.detectors import build_detector
from plantwatch.adapters.registry import FileModelRegistry
from plantwatch.adapters.storage import SqlDriftEventStore, create_schema
from plantwatch.bootstrap import Container
from plantwatch.domain.drift import DriftEvent, DriftLevels, DriftWindow, TrainingProfile, measure_drift
from plantwatch.domain.frames import SensorFrame
from plantwatch.domain.modules import Module
from plantwatch.domain.ports import DriftEventStore, TrainedModel
from plantwatch.domain.thresholds import QuantileThresholder
from plantwatch.entrypoints.api.app import create_app
from plantwatch.services.drift import DriftMonitor
from plantwatch.services.ingest import ReadingContext, ingest_frame
from plantwatch.services.training import train_model
from plantwatch.settings import Settings
from tests.fakes import InMemoryAnomalyRepository, InMemoryDriftEventStore
from tests.streaming_support import FEATURES, START, STEP, as_json_readings, normal_frame, rows

torch.set_num_threads(1)

MODULE = Module.ENERGY
WINDOW = 400
BATCH = 10


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> TrainedModel:
    registry = FileModelRegistry(tmp_path_factory.mktemp("models"))
    train_model(
        normal_frame(2000, module=MODULE, seed=1),
        build_detector("pca", window=4),
        QuantileThresholder(0.995),
        registry,
    )
    return registry.load(MODULE, "pca")


def shifted(frame: SensorFrame, feature: str, by: float) -> SensorFrame:
    values = frame.values.copy()
    values[feature] += by
    return SensorFrame(module=frame.module, source=frame.source, values=values)


def test_profile_sees_no_drift_in_normal_data_and_a_shift_in_shifted_data() -> None:
    train = normal_frame(2000, seed=1)
    profile = TrainingProfile.of(train.to_numpy(), FEATURES)
    assert [len(f.shares) for f in profile.features] == [10, 10, 10]
    assert all(sum(f.shares) == pytest.approx(1.0) for f in profile.features)
    assert TrainingProfile.from_json(profile.to_json()) == profile

    live = normal_frame(500, seed=2, start=START + 2000 * STEP)
    steady = measure_drift(profile, live.to_numpy(), list(live.values.index), DriftLevels())
    assert not steady.warning
    assert steady.max_psi < 0.1 and steady.max_out_of_range_share < 0.02

    moved = shifted(live, "pressure", 3.0)  # pressure swings 4..6 in training: +3 leaves most of it above
    report = measure_drift(profile, moved.to_numpy(), list(moved.values.index), DriftLevels())
    assert report.warning and report.drifted_features == ["pressure"]
    pressure = next(f for f in report.features if f.feature == "pressure")
    assert pressure.psi > 1.0 and pressure.above_share > 0.5 and pressure.below_share == 0.0
    assert pressure.training_high == pytest.approx(profile.features[1].high)


def test_a_window_kept_up_to_date_batch_by_batch_measures_what_a_recount_does() -> None:
    profile = TrainingProfile.of(normal_frame(2000, seed=1).to_numpy(), FEATURES)
    live = shifted(normal_frame(700, seed=2, start=START + 2000 * STEP), "flow", 1.5)
    values = live.to_numpy()
    values[::37, 1] = np.nan  # a missing reading counts for no bin and no share
    timestamps = list(live.values.index.to_pydatetime())
    window = DriftWindow(profile, size=250)
    for begin in range(0, len(values), 13):
        window.add(values[begin : begin + 13], timestamps[begin : begin + 13])
    recount = measure_drift(profile, values[-250:], timestamps[-250:], DriftLevels())
    kept = window.report(DriftLevels())
    assert kept.readings == recount.readings == 250
    assert (kept.first_reading, kept.last_reading) == (timestamps[-250], timestamps[-1])
    for ours, theirs in zip(kept.features, recount.features, strict=True):
        assert ours.psi == pytest.approx(theirs.psi, abs=1e-9)
        assert ours.out_of_range_share == pytest.approx(theirs.out_of_range_share, abs=1e-12)
    # and a recount is the PSI formula over the profile's own binning of the same readings (bins floored)
    flow = profile.features[0]
    live_share = np.maximum(flow.bin_shares(values[-250:, 0]), 1e-4)
    train_share = np.maximum(np.array(flow.shares), 1e-4)
    psi = float(np.sum((live_share - train_share) * np.log(live_share / train_share)))
    assert recount.features[0].psi == pytest.approx(psi)


def test_too_few_readings_never_warn(model: TrainedModel) -> None:
    assert model.profile is not None
    few = shifted(normal_frame(20, seed=3), "flow", 100.0)
    report = measure_drift(
        model.profile, few.to_numpy(), list(few.values.index), DriftLevels(min_readings=50)
    )
    assert report.drifted_features[0] == "flow" and not report.warning


def test_a_shifted_stream_raises_one_stored_warning_within_the_window(model: TrainedModel) -> None:
    events = InMemoryDriftEventStore()
    monitor = DriftMonitor(DriftLevels(min_readings=100), window=WINDOW, events=events)
    repository, context = InMemoryAnomalyRepository(), ReadingContext()
    normal = normal_frame(600, module=MODULE, seed=4, start=START + 2000 * STEP)
    for begin in range(0, len(normal), BATCH):
        ingest_frame(rows(normal, begin, begin + BATCH), model, repository, context, drift=monitor)
    assert events.events == [] and not monitor.warning_open(MODULE)

    # the plant changes: temperature reads 8 degrees high from now on
    later = shifted(
        normal_frame(WINDOW, module=MODULE, seed=5, start=START + 2600 * STEP), "temperature", 8.0
    )
    raised_after = None
    for begin in range(0, len(later), BATCH):
        ingest_frame(rows(later, begin, begin + BATCH), model, repository, context, drift=monitor)
        if events.events and raised_after is None:
            raised_after = begin + BATCH
    assert raised_after is not None and raised_after <= WINDOW, "no warning within the drift window"
    # out-of-range share crosses 5 % after about 5 % of the window: long before the window is full
    assert raised_after <= WINDOW // 4
    (event,) = events.events  # raised once, not once per batch
    assert event.module is MODULE and event.model_version == model.card.version
    assert event.features[0] == "temperature"
    assert event.last_reading == later.values.index[raised_after - 1]
    assert monitor.warning_open(MODULE)

    # back to normal: the warning closes once the shifted readings leave the window, and can open again
    back = normal_frame(WINDOW, module=MODULE, seed=6, start=START + 3000 * STEP)
    for begin in range(0, len(back), BATCH):
        ingest_frame(rows(back, begin, begin + BATCH), model, repository, context, drift=monitor)
    assert not monitor.warning_open(MODULE) and len(events.events) == 1

    # another process scoring the same readings again (`plantwatch run` twice, a redelivery) raises the same
    # event, which the store keeps once
    again = DriftMonitor(DriftLevels(min_readings=100), window=WINDOW, events=events)
    for stream in (normal, later):
        for begin in range(0, len(stream), BATCH):
            again.observe(rows(stream, begin, begin + BATCH), model)
    assert again.warning_open(MODULE) and events.events == [event]


def test_drift_endpoint_shows_live_drift_and_stored_warnings(model: TrainedModel) -> None:
    settings = Settings(database_url="sqlite://")
    events = InMemoryDriftEventStore()
    container = Container(
        settings=settings,
        repository=InMemoryAnomalyRepository(),
        models={MODULE: model},
        drift=DriftMonitor(DriftLevels(min_readings=50), window=200, events=events),
        drift_events=events,
    )
    client = TestClient(create_app(settings, container))
    body = client.get(f"/models/{MODULE.value}/drift").json()
    assert body["status"] == "no_readings" and body["readings"] == 0 and body["window_readings"] == 200

    live = shifted(normal_frame(120, module=MODULE, seed=7, start=START + 2000 * STEP), "flow", 6.0)
    response = client.post(
        f"/ingest/{MODULE.value}", json={"source": "line-1", "readings": as_json_readings(live)}
    )
    assert response.status_code == 200
    body = client.get(f"/models/{MODULE.value}/drift").json()
    assert body["status"] == "warning"
    assert body["model_version"] == model.card.version and body["readings"] == 120
    assert body["drifted_features"][0] == "flow"
    flow = next(f for f in body["features"] if f["feature"] == "flow")
    assert flow["out_of_range_share"] > 0.5 and flow["psi"] > 0.25
    assert [e["features"][0] for e in body["events"]] == ["flow"]
    assert body["levels"] == {"psi": 0.25, "out_of_range_share": 0.05, "min_readings": 50}

    assert client.get("/models/boiler/drift").status_code == 404
    assert client.get(f"/models/{Module.CYBER.value}/drift").status_code == 503  # no cyber model


def test_a_model_saved_without_a_profile_reports_it(model: TrainedModel) -> None:
    settings = Settings(database_url="sqlite://")
    bare = TrainedModel(detector=model.detector, card=model.card)
    container = Container(settings=settings, repository=InMemoryAnomalyRepository(), models={MODULE: bare})
    body = TestClient(create_app(settings, container)).get(f"/models/{MODULE.value}/drift").json()
    assert body["status"] == "no_profile" and body["features"] == []


def check_drift_event_store(store: DriftEventStore) -> None:
    """What every DriftEventStore does: every field round-trips, newest first, filtered by module."""
    older, newer = (
        DriftEvent(
            id=f"event-{n}",
            module=MODULE,
            model_name="pca",
            model_version="v0001",
            raised_at=datetime(2024, 3, 1, 12, n),
            first_reading=datetime(2024, 3, 1, 11, 0),
            last_reading=datetime(2024, 3, 1, 11, 59, 30, 250000),
            readings=400,
            max_psi=1.5 + n,
            max_out_of_range_share=0.25,
            features=("temperature", "flow"),
        )
        for n in (1, 2)
    )
    other = replace(older, id="event-cyber", module=Module.CYBER)
    for event in (older, newer, other, older):
        store.add_drift_event(event)  # the same event again (a re-scored window) is stored once
    assert store.list_drift_events(MODULE) == [newer, older]
    assert store.list_drift_events(limit=1) == [newer]
    assert {e.id for e in store.list_drift_events()} == {"event-1", "event-2", "event-cyber"}
    assert np.isclose(store.list_drift_events(Module.CYBER)[0].max_psi, 2.5)


def test_sql_drift_event_store_on_sqlite(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'store.db'}")
    create_schema(engine)
    check_drift_event_store(SqlDriftEventStore(engine))


def test_in_memory_drift_event_store_behaves_like_the_sql_one() -> None:
    check_drift_event_store(InMemoryDriftEventStore())
