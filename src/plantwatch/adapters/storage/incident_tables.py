"""SQLAlchemy Core tables of incidents, their audit log and the notification outbox.

Their own MetaData beside the anomaly tables (see create_incident_schema): incidents refer to anomalies by
id only, so the anomaly store stands on its own.
"""

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from plantwatch.adapters.storage.tables import IdType

incident_metadata = MetaData()

incidents = Table(
    "incidents",
    incident_metadata,
    Column("id", IdType, primary_key=True),
    Column("module", String(16), nullable=False),
    Column("source", String(200), nullable=False),
    Column("start_at", DateTime(), nullable=False),
    Column("end_at", DateTime(), nullable=False),
    Column("peak_score", Double(), nullable=False),
    Column("threshold", Double(), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("severity_rank", Integer(), nullable=False),
    Column("window_count", Integer(), nullable=False),
    Column("state", String(32), nullable=False),
    Column("opened_at", DateTime(), nullable=False),
    Column("updated_at", DateTime(), nullable=False),
    Column("shelved_until", DateTime(), nullable=True),
    Index("ix_incidents_start_id", "start_at", "id"),
    Index("ix_incidents_module_start_id", "module", "start_at", "id"),
    Index("ix_incidents_module_source_state", "module", "source", "state"),
)

incident_causes = Table(
    "incident_causes",
    incident_metadata,
    Column("incident_id", IdType, ForeignKey("incidents.id", ondelete="CASCADE"), primary_key=True),
    Column("feature", String(200), primary_key=True),
    Column("windows", Integer(), nullable=False),
    Column("share_total", Double(), nullable=False),
    Column("peak_contribution", Double(), nullable=False),
)

# The anomaly id is the key: an anomaly belongs to at most one incident, which is what makes grouping
# idempotent under replays.
incident_anomalies = Table(
    "incident_anomalies",
    incident_metadata,
    Column("anomaly_id", IdType, primary_key=True),
    Column("incident_id", IdType, ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False),
    Column("window_end", DateTime(), nullable=False),
    Index("ix_incident_anomalies_incident_window_end", "incident_id", "window_end"),
)

incident_audit = Table(
    "incident_audit",
    incident_metadata,
    Column("id", Integer(), primary_key=True, autoincrement=True),
    Column("incident_id", IdType, ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False),
    Column("at", DateTime(), nullable=False),
    Column("actor", String(100), nullable=False),
    Column("action", String(16), nullable=False),
    Column("from_state", String(32), nullable=True),
    Column("to_state", String(32), nullable=False),
    Column("detail", Text(), nullable=True),
    Index("ix_incident_audit_incident_id", "incident_id", "id"),
)

# One row per (module, source), written first in every incident transaction: the row lock (PostgreSQL) or
# the write lock (SQLite) it takes serialises writers of the same source, so two workers given consecutive
# messages of one source cannot both open an incident for the same attack.
incident_locks = Table(
    "incident_locks",
    incident_metadata,
    Column("module", String(16), primary_key=True),
    Column("source", String(200), primary_key=True),
    Column("touched_at", DateTime(), nullable=False),
)

notification_outbox = Table(
    "notification_outbox",
    incident_metadata,
    Column("id", Integer(), primary_key=True, autoincrement=True),
    Column("event_id", IdType, nullable=False),
    Column("target", String(500), nullable=False),
    Column("payload", Text(), nullable=False),
    Column("attempts", Integer(), nullable=False, default=0),
    Column("next_attempt_at", DateTime(), nullable=False),
    Column("leased_until", DateTime(), nullable=True),
    Column("delivered_at", DateTime(), nullable=True),
    Column("given_up", Boolean(), nullable=False, default=False),
    Column("last_error", Text(), nullable=True),
    UniqueConstraint("event_id", "target", name="uq_notification_event_target"),
    Index("ix_notification_outbox_due", "delivered_at", "given_up", "next_attempt_at"),
)
