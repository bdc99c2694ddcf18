"""The incident store on a real PostgreSQL: the contract, and concurrent writers of one source."""

import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine

from plantwatch.adapters.storage import (
    SqlIncidentRepository,
    create_engine_from_url,
    create_incident_schema,
    create_schema,
)
from plantwatch.domain.ports import IncidentQuery
from tests.fakes import BASE_TIME, make_anomaly
from tests.incident_contract import CONTRACT, CONTRACT_IDS, NOW, POLICY

pytestmark = pytest.mark.integration


@pytest.fixture
def engine(postgres_url: str) -> Iterator[Engine]:
    engine = create_engine_from_url(postgres_url)
    create_schema(engine)
    create_incident_schema(engine)
    yield engine
    engine.dispose()


@pytest.mark.parametrize("check", CONTRACT, ids=CONTRACT_IDS)
def test_postgres_incident_store_contract(engine: Engine, check: Callable[[Any], None]) -> None:
    check(SqlIncidentRepository(engine))


def test_two_workers_with_consecutive_batches_of_one_source_open_one_incident(engine: Engine) -> None:
    # a shared subscription hands consecutive messages of one source to different workers
    anomalies = [make_anomaly(BASE_TIME + timedelta(minutes=i)) for i in range(40)]
    batches = [anomalies[0::2], anomalies[1::2]]
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def write(batch: list[Any]) -> None:
        repository = SqlIncidentRepository(engine)
        try:
            start.wait()
            for k in range(0, len(batch), 5):
                part = batch[k : k + 5]
                repository.record(part[0].module, part[0].source, part, POLICY, part[-1].window_end, NOW)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=write, args=(batch,)) for batch in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    (incident,) = SqlIncidentRepository(engine).find(IncidentQuery()).items
    assert incident.window_count == 40
    assert len(SqlIncidentRepository(engine).get(incident.id).anomaly_ids) == 40
