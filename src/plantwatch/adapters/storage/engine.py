"""Engines for the anomaly store: SQLite tuned so the API and a worker can share one file, or PostgreSQL."""

from typing import Any

from sqlalchemy import Connection, Engine, MetaData, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import StaticPool

from plantwatch.adapters.storage.incident_tables import incident_metadata
from plantwatch.adapters.storage.tables import metadata

SQLITE_BUSY_TIMEOUT_MS = 10_000


def _tune_sqlite(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers run while a writer commits; the busy timeout makes a second writer wait instead of
    # failing with "database is locked"; SQLite leaves foreign keys off unless asked.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def create_engine_from_url(url: str) -> Engine:
    """An engine for a SQLAlchemy URL, e.g. sqlite:///plantwatch.db or postgresql+psycopg://user@host/db."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database in (None, "", ":memory:"):
            # One shared connection, or every pooled connection would see its own empty in-memory database.
            engine = create_engine(url, poolclass=StaticPool, connect_args={"check_same_thread": False})
        else:
            engine = create_engine(url)
        event.listen(engine, "connect", _tune_sqlite)
        return engine
    return create_engine(url, pool_pre_ping=True)


# Any fixed 64-bit key: PostgreSQL advisory locks are named by number.
SCHEMA_LOCK_KEY = 0x706C616E74776174


def create_schema(engine: Engine) -> None:
    """Create the store's tables and indexes where missing.

    On PostgreSQL, processes starting together (compose replicas) would race in CREATE TABLE and fail on
    pg_type's unique index; a transaction-scoped advisory lock makes them create the schema one at a time.
    """
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK_KEY})
        metadata.create_all(connection)
        add_missing_columns(connection, metadata)


def add_missing_columns(connection: Connection, tables: MetaData) -> list[str]:
    """Add the nullable columns a table gained after a store was created (`create_all` makes missing tables,
    not missing columns), so an existing SQLite file or PostgreSQL schema keeps working after an upgrade.
    Returns the columns added, as "table.column". Only nullable columns without a default are added this
    way: existing rows get NULL, which the code reads as "stored before the column existed"."""
    inspector = inspect(connection)
    preparer = connection.dialect.identifier_preparer
    added: list[str] = []
    for table in tables.sorted_tables:
        present = {column["name"] for column in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name in present:
                continue
            if not column.nullable:
                raise RuntimeError(
                    f"table {table.name} lacks the NOT NULL column {column.name}: it needs a migration"
                )
            kind = column.type.compile(dialect=connection.dialect)
            connection.execute(
                text(
                    f"ALTER TABLE {preparer.format_table(table)} ADD COLUMN "
                    f"{preparer.format_column(column)} {kind}"
                )
            )
            added.append(f"{table.name}.{column.name}")
    return added


def create_incident_schema(engine: Engine) -> None:
    """Create the incident tables (incidents, audit log, notification outbox) where missing, under the same
    lock as create_schema."""
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK_KEY})
        incident_metadata.create_all(connection)
