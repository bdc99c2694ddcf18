"""The alarm rule's state lives in PostgreSQL: two workers (each its own engine and no memory of the
other's batches) scoring consecutive batches of one source, even out of order, store the alarms of the rule
over the whole series; a store created before the rule's columns gains them on start-up."""

import itertools
import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest
import torch
from sqlalchemy import Engine, text

from plantwatch.adapters.storage import SqlAnomalyRepository, create_engine_from_url, create_schema
from plantwatch.domain.alarms import rule_of_card
from plantwatch.domain.modules import Module
from plantwatch.domain.ports import TrainedModel
from plantwatch.services.ingest import ReadingContext, ingest_frame
from tests.fakes import BASE_TIME, make_score_point
from tests.streaming_support import drifting_frame, rows, trained_pca, with_alarm_rule

pytestmark = pytest.mark.integration
torch.set_num_threads(1)

READINGS = 240
CONTEXT = 8


@pytest.fixture
def engines(postgres_url: str) -> Iterator[tuple[Engine, Engine]]:
    first, second = create_engine_from_url(postgres_url), create_engine_from_url(postgres_url)
    create_schema(first)
    yield first, second
    first.dispose()
    second.dispose()


@pytest.fixture(scope="module")
def model() -> TrainedModel:
    return with_alarm_rule(trained_pca(window=4), "ewma:0.2+2of3")


def _ingest(model: TrainedModel, repository: SqlAnomalyRepository, begin: int, end: int, **options) -> None:
    series = drifting_frame(READINGS)
    ingest_frame(
        rows(series, begin, end),
        model,
        repository,
        ReadingContext(),
        sent_context=rows(series, begin - CONTEXT, begin) if begin else None,
        **options,
    )


def _expected(model: TrainedModel) -> dict:
    series = drifting_frame(READINGS)
    scores = model.detector.score(series.to_numpy())
    alarms = rule_of_card(model.card).alarms(scores, model.card.threshold)
    stamps = series.values.index.to_pydatetime()
    return {stamps[t]: bool(alarms[t]) for t in range(READINGS) if np.isfinite(scores[t])}


def test_two_workers_on_postgres_store_the_alarms_of_the_whole_series(engines, model) -> None:
    workers = [SqlAnomalyRepository(engine) for engine in engines]
    edges = [0, 17, 60, 61, 95, 150, 199, READINGS]
    for index, (begin, end) in enumerate(itertools.pairwise(edges)):
        _ingest(model, workers[index % 2], begin, end)
    stored = workers[0].list_scores(Module.ENERGY)
    expected = _expected(model)
    assert {p.timestamp: p.alarm for p in stored} == expected
    assert 0 < sum(expected.values()) < len(expected)


def test_the_next_batch_first_on_postgres_waits_for_the_other_workers_commit(engines, model) -> None:
    first_worker, second_worker = (SqlAnomalyRepository(engine) for engine in engines)
    _ingest(model, first_worker, 0, 80)
    errors: list[BaseException] = []

    def later_batch() -> None:
        try:
            _ingest(model, second_worker, 160, READINGS, alarm_state_wait_s=10.0)
        except BaseException as error:
            errors.append(error)

    thread = threading.Thread(target=later_batch)
    thread.start()
    time.sleep(0.3)
    _ingest(model, first_worker, 80, 160)
    thread.join(timeout=20)
    assert not errors
    assert {p.timestamp: p.alarm for p in first_worker.list_scores(Module.ENERGY)} == _expected(model)


def test_a_postgres_store_from_before_the_rule_columns_gains_them(postgres_url: str) -> None:
    engine = create_engine_from_url(postgres_url)
    create_schema(engine)
    with engine.begin() as connection:
        connection.execute(text("ALTER TABLE scores DROP COLUMN statistic, DROP COLUMN alarm"))
        connection.execute(
            text(
                "INSERT INTO scores (module, source, timestamp, score, threshold, model_name, model_version) "
                "VALUES ('energy', 'meter-1', :t, 0.5, 1.0, 'lstm_ae', '1')"
            ),
            {"t": BASE_TIME},
        )
    create_schema(engine)
    repository = SqlAnomalyRepository(engine)
    repository.add_scores([make_score_point(BASE_TIME, source="meter-2", statistic=0.7, alarm=False)])
    stored = repository.list_scores(Module.ENERGY)
    assert [(p.source, p.statistic, p.alarm) for p in stored] == [
        ("meter-1", None, None),
        ("meter-2", 0.7, False),
    ]
    engine.dispose()
