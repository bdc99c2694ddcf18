"""The drift event store on a real PostgreSQL behaves like the SQLite one and the fake."""

import pytest

from plantwatch.adapters.storage import SqlDriftEventStore, create_engine_from_url, create_schema
from tests.unit.test_drift import check_drift_event_store

pytestmark = pytest.mark.integration


def test_postgres_drift_event_store(postgres_url: str) -> None:
    engine = create_engine_from_url(postgres_url)
    try:
        create_schema(engine)
        check_drift_event_store(SqlDriftEventStore(engine))
    finally:
        engine.dispose()
