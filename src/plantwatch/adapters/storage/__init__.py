"""The anomaly store: SQLAlchemy tables and the AnomalyRepository adapter (SQLite or PostgreSQL), and the
incident store beside it."""

from plantwatch.adapters.storage.drift_events import SqlDriftEventStore
from plantwatch.adapters.storage.engine import create_engine_from_url, create_incident_schema, create_schema
from plantwatch.adapters.storage.sql_incidents import SqlIncidentRepository
from plantwatch.adapters.storage.sql_repository import SqlAnomalyRepository

__all__ = [
    "SqlAnomalyRepository",
    "SqlDriftEventStore",
    "SqlIncidentRepository",
    "create_engine_from_url",
    "create_incident_schema",
    "create_schema",
]
