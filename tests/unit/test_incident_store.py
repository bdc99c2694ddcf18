"""The in-memory fake and the SQL store on SQLite pass the same incident-store contract."""

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from plantwatch.adapters.storage import (
    SqlIncidentRepository,
    create_engine_from_url,
    create_incident_schema,
    create_schema,
)
from tests.fakes import InMemoryIncidentRepository
from tests.incident_contract import CONTRACT, CONTRACT_IDS


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = create_engine_from_url(f"sqlite:///{tmp_path / 'store.db'}")
    create_schema(engine)
    create_incident_schema(engine)
    yield engine
    engine.dispose()


@pytest.mark.parametrize("check", CONTRACT, ids=CONTRACT_IDS)
def test_memory_incident_store_contract(check: Callable[[Any], None]) -> None:
    check(InMemoryIncidentRepository())


@pytest.mark.parametrize("check", CONTRACT, ids=CONTRACT_IDS)
def test_sqlite_incident_store_contract(engine: Engine, check: Callable[[Any], None]) -> None:
    check(SqlIncidentRepository(engine))
