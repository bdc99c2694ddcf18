"""DriftEventStore on SQLAlchemy, in the anomaly store's database."""

from sqlalchemy import Engine, select
from sqlalchemy.dialects import postgresql, sqlite

from plantwatch.adapters.storage.tables import drift_events
from plantwatch.adapters.storage.validation import require_naive
from plantwatch.domain.drift import DriftEvent
from plantwatch.domain.modules import Module


class SqlDriftEventStore:
    """Drift events in the `drift_events` table; the tables must exist (see create_schema)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add_drift_event(self, event: DriftEvent) -> None:
        """Store `event`; one already stored (same id) is left as it is."""
        require_naive(event.raised_at, "raised_at")
        dialect = self.engine.dialect.name
        if dialect not in ("postgresql", "sqlite"):
            raise NotImplementedError(f"the drift event store supports SQLite and PostgreSQL, not {dialect}")
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        with self.engine.begin() as connection:
            connection.execute(
                insert(drift_events)
                .on_conflict_do_nothing()
                .values(
                    id=event.id,
                    module=event.module.value,
                    model_name=event.model_name,
                    model_version=event.model_version,
                    raised_at=event.raised_at,
                    first_reading=event.first_reading,
                    last_reading=event.last_reading,
                    readings=event.readings,
                    max_psi=event.max_psi,
                    max_out_of_range_share=event.max_out_of_range_share,
                    features=list(event.features),
                )
            )

    def list_drift_events(self, module: Module | None = None, limit: int = 20) -> list[DriftEvent]:
        statement = select(drift_events)
        if module is not None:
            statement = statement.where(drift_events.c.module == module.value)
        statement = statement.order_by(drift_events.c.raised_at.desc(), drift_events.c.id.desc()).limit(limit)
        with self.engine.connect() as connection:
            return [
                DriftEvent(
                    id=row.id,
                    module=Module(row.module),
                    model_name=row.model_name,
                    model_version=row.model_version,
                    raised_at=row.raised_at,
                    first_reading=row.first_reading,
                    last_reading=row.last_reading,
                    readings=row.readings,
                    max_psi=row.max_psi,
                    max_out_of_range_share=row.max_out_of_range_share,
                    features=tuple(row.features),
                )
                for row in connection.execute(statement)
            ]
