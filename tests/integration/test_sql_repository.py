"""The SQL store on a real PostgreSQL: the repository contract, rollback, and concurrent writers."""

import threading
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from sqlalchemy import Engine, event, text

from plantwatch.adapters.storage import SqlAnomalyRepository, create_engine_from_url, create_schema
from plantwatch.domain.ports import AnomalyQuery, AnomalyRepository
from tests.fakes import BASE_TIME, make_anomaly, make_score_point
from tests.repository_contract import CONTRACT, CONTRACT_IDS

pytestmark = pytest.mark.integration


@pytest.fixture
def engine(postgres_url: str) -> Iterator[Engine]:
    engine = create_engine_from_url(postgres_url)
    create_schema(engine)
    yield engine
    engine.dispose()


@pytest.mark.parametrize("check", CONTRACT, ids=CONTRACT_IDS)
def test_postgres_repository_contract(engine: Engine, check: Callable[[AnomalyRepository], None]) -> None:
    check(SqlAnomalyRepository(engine))


def test_tables_live_in_the_isolated_schema(engine: Engine) -> None:
    with engine.connect() as connection:
        schema = connection.execute(text("SELECT current_schema()")).scalar()
        tables = connection.execute(
            text("SELECT table_name FROM information_schema.tables WHERE table_schema = :schema"),
            {"schema": schema},
        ).scalars()
        assert str(schema).startswith("plantwatch_test_")
        assert set(tables) == {"anomalies", "anomaly_features", "scores", "drift_events", "store_revisions"}


def test_concurrent_writers_of_the_same_anomalies_store_each_once(engine: Engine) -> None:
    batch = [
        make_anomaly(BASE_TIME + timedelta(seconds=i), features=("voltage", "current", "power"))
        for i in range(200)
    ]
    points = [make_score_point(BASE_TIME + timedelta(seconds=i)) for i in range(500)]
    start = threading.Barrier(2)
    added_anomalies: list[int] = []
    added_points: list[int] = []
    errors: list[BaseException] = []

    def write() -> None:
        # Each writer has its own repository and pooled connection, as the API and a worker would.
        repository = SqlAnomalyRepository(engine)
        try:
            start.wait()
            added_anomalies.append(repository.add_many(batch))
            added_points.append(repository.add_scores(points))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=write) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert sum(added_anomalies) == len(batch)
    assert sum(added_points) == len(points)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM anomalies")).scalar() == len(batch)
        assert connection.execute(text("SELECT count(*) FROM anomaly_features")).scalar() == 3 * len(batch)
        assert connection.execute(text("SELECT count(*) FROM scores")).scalar() == len(points)
    repository = SqlAnomalyRepository(engine)
    assert repository.get(batch[0].id) == batch[0]


def test_a_failure_while_writing_root_causes_rolls_back_the_anomalies(engine: Engine) -> None:
    repository = SqlAnomalyRepository(engine)

    def fail_on_root_causes(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO ANOMALY_FEATURES"):
            raise RuntimeError("connection lost")

    event.listen(engine, "before_cursor_execute", fail_on_root_causes)
    with pytest.raises(RuntimeError, match="connection lost"):
        repository.add_many([make_anomaly()])
    event.remove(engine, "before_cursor_execute", fail_on_root_causes)
    assert repository.find(AnomalyQuery()).items == []
    assert repository.add_many([make_anomaly()]) == 1
