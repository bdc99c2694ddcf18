"""Live scoring applies the model's alarm rule exactly as evaluation does: in one batch or many (any split),
after a restart, and with batches of one source handled by several workers in any order, the stored alarm
flags and anomalies are those of `AlarmRule.alarms` over the whole series."""

import itertools
import logging
import threading
import time
from dataclasses import replace
from datetime import datetime

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from plantwatch.domain.alarms import rule_of_card
from plantwatch.domain.frames import SensorFrame
from plantwatch.domain.ports import TrainedModel
from plantwatch.services.ingest import ReadingContext, ingest_frame
from tests.fakes import InMemoryAnomalyRepository
from tests.streaming_support import drifting_frame, rows, trained_pca, with_alarm_rule

torch.set_num_threads(1)

SPECS = ["none", "ewma:0.2", "cusum:0.9", "2of3", "ewma:0.2+2of3"]
READINGS = 300
WINDOW = 4
CONTEXT = 8


@pytest.fixture(scope="module")
def base_model() -> TrainedModel:
    return trained_pca(window=WINDOW)


@pytest.fixture(scope="module")
def series() -> SensorFrame:
    return drifting_frame(READINGS)


def expected_alarms(model: TrainedModel, series: SensorFrame) -> dict[datetime, bool]:
    """The evaluation's answer: the rule over the whole series' scores, per scored reading."""
    scores = model.detector.score(series.to_numpy())
    alarms = rule_of_card(model.card).alarms(scores, model.card.threshold)
    stamps = series.values.index.to_pydatetime()
    return {stamps[t]: bool(alarms[t]) for t in range(len(series)) if np.isfinite(scores[t])}


def ingest_in_batches(
    model: TrainedModel,
    series: SensorFrame,
    edges: list[int],
    repository: InMemoryAnomalyRepository,
    *,
    fresh_process_each_batch: bool = False,
) -> None:
    """Ingest [edges[i], edges[i + 1]) in order, each batch with the readings before it as sent context
    (as an MQTT message carries them)."""
    context = ReadingContext()
    for begin, end in itertools.pairwise(edges):
        if fresh_process_each_batch:
            context = ReadingContext()  # a restart, or another worker: nothing remembered in memory
        sent = rows(series, begin - CONTEXT, begin) if begin else None
        ingest_frame(rows(series, begin, end), model, repository, context, sent_context=sent)


def stored_alarms(repository: InMemoryAnomalyRepository) -> dict[datetime, bool]:
    return {point.timestamp: bool(point.alarm) for point in repository.scores.values()}


@pytest.mark.parametrize("spec", SPECS)
def test_one_batch_gives_the_alarms_of_the_rule_over_the_whole_series(base_model, series, spec):
    model = with_alarm_rule(base_model, spec)
    repository = InMemoryAnomalyRepository()
    ingest_in_batches(model, series, [0, READINGS], repository)
    expected = expected_alarms(model, series)
    assert stored_alarms(repository) == expected
    assert 0 < sum(expected.values()) < len(expected)
    assert {a.window_end for a in repository.anomalies.values()} == {t for t, on in expected.items() if on}


@pytest.mark.parametrize("spec", SPECS)
@settings(max_examples=15, deadline=None)
@given(cuts=st.lists(st.integers(min_value=1, max_value=READINGS - 1), min_size=1, max_size=10))
def test_any_split_into_batches_gives_the_same_alarms_and_anomalies(base_model, series, spec, cuts):
    model = with_alarm_rule(base_model, spec)
    whole, split = InMemoryAnomalyRepository(), InMemoryAnomalyRepository()
    ingest_in_batches(model, series, [0, READINGS], whole)
    ingest_in_batches(model, series, [0, *sorted(set(cuts)), READINGS], split, fresh_process_each_batch=True)
    assert stored_alarms(split) == stored_alarms(whole) == expected_alarms(model, series)
    assert split.anomalies.keys() == whole.anomalies.keys()
    # the same statistic, whichever batch computed it (up to the detector's own rounding: a matrix product
    # over another number of rows may differ in the last bit; the rule adds no error of its own)
    assert split.scores.keys() == whole.scores.keys()
    for key, point in whole.scores.items():
        assert split.scores[key].statistic == pytest.approx(point.statistic, rel=1e-12, abs=1e-12)


def test_anomaly_keeps_the_raw_score_and_reports_the_statistics_threshold(base_model, series):
    model = with_alarm_rule(base_model, "cusum:0.9")
    repository = InMemoryAnomalyRepository()
    result = ingest_frame(series, model, repository, ReadingContext())
    points = {p.timestamp: p for p in repository.scores.values()}
    assert result.anomalies
    for anomaly in result.anomalies:
        point = points[anomaly.window_end]
        assert anomaly.score == point.score != point.statistic
        assert anomaly.threshold == model.card.threshold == point.threshold
        assert point.alarm and point.statistic is not None and point.statistic > point.threshold


def test_plain_rule_alarms_where_the_score_passes_the_threshold(base_model, series):
    repository = InMemoryAnomalyRepository()
    ingest_frame(series, base_model, repository, ReadingContext())
    for point in repository.scores.values():
        assert point.statistic == point.score
        assert point.alarm == (point.score > point.threshold)


def test_a_worker_handed_the_next_batch_first_waits_for_the_one_before(base_model, series):
    """Two workers of a shared subscription: batch 2 reaches worker B while worker A still holds batch 1.
    B waits for A's stored scores and continues the rule from them."""
    model = with_alarm_rule(base_model, "ewma:0.2")
    repository = InMemoryAnomalyRepository()
    ingest_in_batches(model, series, [0, 100], repository)
    first, second = rows(series, 100, 200), rows(series, 200, READINGS)
    started = threading.Event()
    errors: list[BaseException] = []

    def worker_b() -> None:
        started.set()
        try:
            ingest_frame(
                second,
                model,
                repository,
                ReadingContext(),
                sent_context=rows(series, 200 - CONTEXT, 200),
                alarm_state_wait_s=10.0,
            )
        except BaseException as error:  # surfaced by the assertion below
            errors.append(error)

    thread = threading.Thread(target=worker_b)
    thread.start()
    started.wait()
    time.sleep(0.3)  # B is waiting now: nothing from 200 on may be stored yet
    assert max(p.timestamp for p in repository.scores.values()) < second.values.index[0]
    ingest_frame(first, model, repository, ReadingContext(), sent_context=rows(series, 100 - CONTEXT, 100))
    thread.join(timeout=15)
    assert not errors
    assert stored_alarms(repository) == expected_alarms(model, series)


def test_without_the_previous_score_a_batch_continues_from_what_is_stored_and_says_so(
    base_model, series, caplog
):
    model = with_alarm_rule(base_model, "ewma:0.2")
    repository = InMemoryAnomalyRepository()
    ingest_in_batches(model, series, [0, 100], repository)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="plantwatch.services.ingest"):
        ingest_frame(
            rows(series, 200, READINGS),
            model,
            repository,
            ReadingContext(),
            sent_context=rows(series, 200 - CONTEXT, 200),
            alarm_state_wait_s=0.2,
        )
    assert 0.2 <= time.monotonic() - started < 5
    assert "no stored score at" in caplog.text


def test_a_new_model_version_starts_the_rule_afresh_without_waiting(base_model, series):
    model = with_alarm_rule(base_model, "ewma:0.2")
    repository = InMemoryAnomalyRepository()
    ingest_in_batches(model, series, [0, 100], repository)
    promoted = TrainedModel(detector=model.detector, card=replace(model.card, version="v2"))
    started = time.monotonic()
    ingest_frame(
        rows(series, 100, 200),
        promoted,
        repository,
        ReadingContext(),
        sent_context=rows(series, 100 - CONTEXT, 100),
        alarm_state_wait_s=10.0,
    )
    assert time.monotonic() - started < 5
    assert any(p.model_version == "v2" for p in repository.scores.values())
