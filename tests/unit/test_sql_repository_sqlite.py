"""The SQL store on a SQLite file passes the repository contract, and keeps SQLite usable by two processes."""

from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import (
    Column,
    DateTime,
    Double,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    event,
    text,
)

from plantwatch.adapters.storage import SqlAnomalyRepository, create_engine_from_url, create_schema
from plantwatch.adapters.storage.engine import add_missing_columns
from plantwatch.adapters.storage.sql_repository import ANALYZE_AFTER_ROWS
from plantwatch.adapters.storage.tables import metadata
from plantwatch.domain.modules import Module
from plantwatch.domain.ports import AnomalyRepository
from tests.fakes import BASE_TIME, make_anomaly, make_score_point
from tests.repository_contract import CONTRACT, CONTRACT_IDS, check_get_round_trips_every_field


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = create_engine_from_url(f"sqlite:///{tmp_path / 'store.db'}")
    create_schema(engine)
    yield engine
    engine.dispose()


@pytest.mark.parametrize("check", CONTRACT, ids=CONTRACT_IDS)
def test_sqlite_repository_contract(engine: Engine, check: Callable[[AnomalyRepository], None]) -> None:
    check(SqlAnomalyRepository(engine))


def test_sqlite_file_uses_wal_busy_timeout_and_foreign_keys(engine: Engine) -> None:
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA busy_timeout")).scalar() == 10_000
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1


def test_in_memory_sqlite_keeps_one_database_across_connections() -> None:
    engine = create_engine_from_url("sqlite://")
    create_schema(engine)
    check_get_round_trips_every_field(SqlAnomalyRepository(engine))


def test_create_schema_twice_keeps_the_data(engine: Engine) -> None:
    repository = SqlAnomalyRepository(engine)
    anomaly = make_anomaly()
    repository.add_many([anomaly])
    create_schema(engine)
    assert repository.get(anomaly.id) == anomaly


def test_a_failure_while_writing_root_causes_rolls_back_the_anomalies(engine: Engine) -> None:
    repository = SqlAnomalyRepository(engine)

    def fail_on_root_causes(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO ANOMALY_FEATURES"):
            raise RuntimeError("disk full")

    event.listen(engine, "before_cursor_execute", fail_on_root_causes)
    with pytest.raises(RuntimeError, match="disk full"):
        repository.add_many([make_anomaly()])
    event.remove(engine, "before_cursor_execute", fail_on_root_causes)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM anomalies")).scalar() == 0
    assert repository.add_many([make_anomaly()]) == 1


def test_two_repositories_on_one_file_see_each_others_writes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    writer_engine, reader_engine = create_engine_from_url(url), create_engine_from_url(url)
    create_schema(writer_engine)
    writer, reader = SqlAnomalyRepository(writer_engine), SqlAnomalyRepository(reader_engine)
    anomaly = make_anomaly()
    assert writer.add_many([anomaly]) == 1
    assert reader.get(anomaly.id) == anomaly
    assert reader.add_many([anomaly]) == 0
    writer_engine.dispose()
    reader_engine.dispose()


def test_a_batch_whose_anomaly_insert_fails_leaves_no_score(engine: Engine) -> None:
    """Scores and anomalies of one ingest batch commit together: a failure while writing the anomalies (the
    process dying, the database going away) rolls the batch's scores back too."""
    repository = SqlAnomalyRepository(engine)

    def fail_on_anomalies(_conn, _cursor, statement: str, *_args) -> None:  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("INSERT INTO ANOMALIES"):
            raise OSError("the database went away mid-batch")

    event.listen(engine, "before_cursor_execute", fail_on_anomalies)
    try:
        with pytest.raises(OSError, match="mid-batch"):
            repository.add_batch([make_score_point()], [make_anomaly()])
    finally:
        event.remove(engine, "before_cursor_execute", fail_on_anomalies)
    assert repository.list_scores(Module.ENERGY) == []
    stored = repository.add_batch([make_score_point()], [make_anomaly()])
    assert (stored.new_scores, stored.new_anomalies) == (1, 1)


def test_a_bulk_batch_refreshes_the_planner_statistics(engine: Engine) -> None:
    repository = SqlAnomalyRepository(engine)
    small = [make_score_point(BASE_TIME + timedelta(minutes=i)) for i in range(10)]
    repository.add_batch(small, [])
    with engine.connect() as connection:
        assert (
            connection.execute(
                text("SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'")
            ).scalar()
            == 0
        )
    bulk = [make_score_point(BASE_TIME + timedelta(minutes=i)) for i in range(10, 10 + ANALYZE_AFTER_ROWS)]
    repository.add_batch(bulk, [])
    with engine.connect() as connection:
        analyzed = {row[0] for row in connection.execute(text("SELECT tbl FROM sqlite_stat1"))}
    assert "scores" in analyzed


def test_a_store_from_before_scores_carried_the_alarm_rule_gains_the_columns_and_keeps_its_rows(
    tmp_path: Path,
) -> None:
    """create_schema adds the nullable columns a table gained since the file was made: an upgrade needs no
    migration step, and the old rows read back as stored before the rule (None)."""
    engine = create_engine_from_url(f"sqlite:///{tmp_path / 'old.db'}")
    # the scores table as it was before the alarm rule's columns
    old_scores = Table(
        "scores",
        MetaData(),
        Column("id", Integer(), primary_key=True, autoincrement=True),
        *(Column(name, String(200), nullable=False) for name in ("module", "source")),
        Column("timestamp", DateTime(), nullable=False),
        *(Column(name, Double(), nullable=False) for name in ("score", "threshold")),
        *(Column(name, String(100), nullable=False) for name in ("model_name", "model_version")),
        UniqueConstraint("module", "source", "timestamp", "model_name", "model_version"),
    )
    old_scores.metadata.create_all(engine)
    old_point = make_score_point(BASE_TIME)
    with engine.begin() as connection:
        connection.execute(
            old_scores.insert(),
            [
                {k: v for k, v in vars(old_point).items() if k not in ("statistic", "alarm")}
                | {"module": "energy"}
            ],
        )
    create_schema(engine)
    repository = SqlAnomalyRepository(engine)
    new_point = make_score_point(BASE_TIME + timedelta(seconds=1), statistic=0.25, alarm=False)
    assert repository.add_batch([old_point, new_point], []).new_scores == 1
    assert repository.list_scores(Module.ENERGY) == [old_point, new_point]
    create_schema(engine)  # a second start adds nothing and keeps the rows
    with engine.connect() as connection:
        assert add_missing_columns(connection, metadata) == []
    assert repository.list_scores(Module.ENERGY) == [old_point, new_point]
    engine.dispose()
