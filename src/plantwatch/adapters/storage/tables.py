"""SQLAlchemy Core tables of the anomaly store. Work on SQLite (embedded default) and PostgreSQL."""

from sqlalchemy import (
    JSON,
    BigInteger,
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
    UniqueConstraint,
)

metadata = MetaData()

# Ids are compared by keyset pagination; byte order ("C" collation) keeps PostgreSQL's order equal to Python's
# str order whatever the database's locale, so every store pages identically.
IdType = String(64).with_variant(String(64, collation="C"), "postgresql")

anomalies = Table(
    "anomalies",
    metadata,
    Column("id", IdType, primary_key=True),
    Column("module", String(16), nullable=False),
    Column("source", String(200), nullable=False),
    Column("window_start", DateTime(), nullable=False),
    Column("window_end", DateTime(), nullable=False),
    Column("score", Double(), nullable=False),
    Column("threshold", Double(), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("severity_rank", Integer(), nullable=False),
    Column("model_name", String(100), nullable=False),
    Column("model_version", String(100), nullable=False),
    Column("detected_at", DateTime(), nullable=False),
    Column("top_feature", String(200), nullable=True),
    Index("ix_anomalies_module_window_end_id", "module", "window_end", "id"),
    Index("ix_anomalies_window_end_id", "window_end", "id"),
    Index("ix_anomalies_source_window_end", "source", "window_end"),
)

# The ranked root cause, one row per feature: a child table (not a JSON column) so the `feature` filter is one
# indexed EXISTS on every database.
anomaly_features = Table(
    "anomaly_features",
    metadata,
    Column("anomaly_id", IdType, ForeignKey("anomalies.id", ondelete="CASCADE"), primary_key=True),
    Column("rank", Integer(), primary_key=True),
    Column("feature", String(200), nullable=False),
    Column("contribution", Double(), nullable=False),
    Column("observed", Double(), nullable=False),
    Column("expected", Double(), nullable=False),
    Index("ix_anomaly_features_feature_anomaly_id", "feature", "anomaly_id"),
)

scores = Table(
    "scores",
    metadata,
    Column("id", Integer(), primary_key=True, autoincrement=True),
    Column("module", String(16), nullable=False),
    Column("source", String(200), nullable=False),
    Column("timestamp", DateTime(), nullable=False),
    Column("score", Double(), nullable=False),
    Column("threshold", Double(), nullable=False),
    Column("model_name", String(100), nullable=False),
    Column("model_version", String(100), nullable=False),
    # The alarm rule's statistic and alarm at the reading: live scoring continues the rule from the latest
    # ones of a source. Nullable because they were added later (see engine.add_missing_columns).
    Column("statistic", Double(), nullable=True),
    Column("alarm", Boolean(), nullable=True),
    UniqueConstraint(
        "module", "source", "timestamp", "model_name", "model_version", name="uq_scores_reading"
    ),
    Index("ix_scores_module_timestamp", "module", "timestamp"),
)

# Drift warnings (see services/drift.py): one row each time a module's live data crosses a drift level.
# One counter per table whose rows only ever get added: raised in the transaction that adds rows, so a reader
# that sees an unchanged revision knows its cached answer is still the whole truth (api/page_cache.py).
store_revisions = Table(
    "store_revisions",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("revision", BigInteger(), nullable=False),
)

drift_events = Table(
    "drift_events",
    metadata,
    Column("id", IdType, primary_key=True),
    Column("module", String(16), nullable=False),
    Column("model_name", String(100), nullable=False),
    Column("model_version", String(100), nullable=False),
    Column("raised_at", DateTime(), nullable=False),
    Column("first_reading", DateTime(), nullable=True),
    Column("last_reading", DateTime(), nullable=True),
    Column("readings", Integer(), nullable=False),
    Column("max_psi", Double(), nullable=False),
    Column("max_out_of_range_share", Double(), nullable=False),
    Column("features", JSON(), nullable=False),
    Index("ix_drift_events_module_raised_at", "module", "raised_at"),
)
