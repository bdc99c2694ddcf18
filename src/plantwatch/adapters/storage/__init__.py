"""The anomaly store: SQLAlchemy tables and the AnomalyRepository adapter (SQLite or PostgreSQL)."""

from plantwatch.adapters.storage.engine import create_engine_from_url, create_schema
from plantwatch.adapters.storage.sql_repository import SqlAnomalyRepository

__all__ = ["SqlAnomalyRepository", "create_engine_from_url", "create_schema"]
