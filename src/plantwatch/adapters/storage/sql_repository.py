"""AnomalyRepository on SQLAlchemy: SQLite for the embedded default, PostgreSQL for a plant."""

import logging
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import (
    Connection,
    DateTime,
    Engine,
    Insert,
    Integer,
    Select,
    Table,
    and_,
    case,
    cast,
    exists,
    func,
    literal,
    or_,
    select,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from plantwatch.adapters.storage.cursor import decode_cursor, encode_cursor
from plantwatch.adapters.storage.tables import anomalies, anomaly_features, scores, store_revisions
from plantwatch.adapters.storage.validation import (
    check_anomalies,
    check_query,
    check_range,
    check_score_points,
    require_naive,
)
from plantwatch.domain.anomaly import Anomaly, FeatureContribution, ScorePoint, Severity
from plantwatch.domain.errors import InvalidInputError, NotFoundError, StoreUnavailableError
from plantwatch.domain.modules import Module, known_modules
from plantwatch.domain.ports import (
    AnomalyOrder,
    AnomalyPage,
    AnomalyQuery,
    AnomalyTally,
    StoredBatch,
    tally_of,
)

# Any select statement, whatever its columns: the filters keep its type.
SelectT = TypeVar("SelectT", bound=Select[*tuple[Any, ...]])

log = logging.getLogger(__name__)

# A batch adding this many rows is a bulk load (a file upload, a replay at full speed): statistics after it.
ANALYZE_AFTER_ROWS = 5000
STORE_UNAVAILABLE = "the anomaly store is unavailable; try again shortly"


@contextmanager
def _unavailable_as_domain_error() -> Iterator[None]:
    """Connection failures, timeouts and a locked SQLite file become StoreUnavailableError (HTTP 503, a
    retry for the worker); the driver's message, which names hosts and users, is only logged."""
    try:
        yield
    except (OperationalError, InterfaceError, PoolTimeoutError) as error:
        log.warning("anomaly store unavailable: %s", getattr(error, "orig", None) or error)
        raise StoreUnavailableError(STORE_UNAVAILABLE) from error


class SqlAnomalyRepository:
    """Anomalies and scores in a SQL database; the tables must exist (see create_schema)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _insert_ignoring_duplicates(self, table: Table) -> Insert:
        # Insert-or-ignore, so a re-sent batch or a concurrent writer of the same rows adds nothing and fails
        # nothing; PostgreSQL waits for the other writer's commit before deciding the row is a duplicate.
        dialect = self.engine.dialect.name
        if dialect == "postgresql":
            return postgresql.insert(table).on_conflict_do_nothing()
        if dialect == "sqlite":
            return sqlite.insert(table).on_conflict_do_nothing()
        raise NotImplementedError(f"the anomaly store supports SQLite and PostgreSQL, not {dialect}")

    def add_many(self, anomalies_to_add: Sequence[Anomaly]) -> int:
        check_anomalies(anomalies_to_add)
        with _unavailable_as_domain_error(), self.engine.begin() as connection:
            return self._insert_anomalies(connection, anomalies_to_add)

    def add_batch(self, points: Sequence[ScorePoint], anomalies_to_add: Sequence[Anomaly]) -> StoredBatch:
        check_score_points(points)
        check_anomalies(anomalies_to_add)
        with _unavailable_as_domain_error(), self.engine.begin() as connection:
            new_scores = self._insert_scores(connection, points)
            new_anomalies = self._insert_anomalies(connection, anomalies_to_add)
        if new_scores + new_anomalies >= ANALYZE_AFTER_ROWS:
            self.analyze()
        return StoredBatch(new_scores=new_scores, new_anomalies=new_anomalies)

    def analyze(self) -> None:
        """Refresh the planner's statistics. After a bulk load they are stale until autovacuum gets to it,
        and PostgreSQL picked plans 3.5x slower for the anomaly pages in that time."""
        with _unavailable_as_domain_error(), self.engine.begin() as connection:
            for table in (scores, anomalies, anomaly_features):
                connection.execute(text(f"ANALYZE {table.name}"))

    def _insert_anomalies(self, connection: Connection, anomalies_to_add: Sequence[Anomaly]) -> int:
        unique = list({a.id: a for a in anomalies_to_add}.values())
        if not unique:
            return 0
        inserted = connection.execute(
            self._insert_ignoring_duplicates(anomalies).returning(anomalies.c.id),
            [_anomaly_row(a) for a in unique],
        )
        new_ids = set(inserted.scalars())
        # Only the anomalies this call inserted get root-cause rows: another writer owns the rest.
        feature_rows = [
            _feature_row(a.id, rank, cause)
            for a in unique
            if a.id in new_ids
            for rank, cause in enumerate(a.root_cause)
        ]
        if feature_rows:
            connection.execute(self._insert_ignoring_duplicates(anomaly_features), feature_rows)
        if new_ids:
            # last in the transaction: the row lock it takes on PostgreSQL is held only until the commit
            self._raise_revision(connection)
        return len(new_ids)

    def _raise_revision(self, connection: Connection) -> None:
        dialect = postgresql if self.engine.dialect.name == "postgresql" else sqlite
        insert = dialect.insert(store_revisions).values(name=anomalies.name, revision=1)
        connection.execute(
            insert.on_conflict_do_update(
                index_elements=[store_revisions.c.name],
                set_={"revision": store_revisions.c.revision + 1},
            )
        )

    def revision(self) -> int:
        with _unavailable_as_domain_error(), self.engine.connect() as connection:
            value = connection.execute(
                select(store_revisions.c.revision).where(store_revisions.c.name == anomalies.name)
            ).scalar()
        return int(value or 0)

    def _insert_scores(self, connection: Connection, points: Sequence[ScorePoint]) -> int:
        if not points:
            return 0
        inserted = connection.execute(
            self._insert_ignoring_duplicates(scores).returning(scores.c.id),
            [_score_row(p) for p in points],
        )
        return len(inserted.all())

    def get(self, anomaly_id: str) -> Anomaly:
        with _unavailable_as_domain_error(), self.engine.connect() as connection:
            row = connection.execute(select(anomalies).where(anomalies.c.id == anomaly_id)).mappings().first()
            if row is None:
                raise NotFoundError(f"anomaly {anomaly_id!r} not found")
            return _load_root_causes(connection, [row])[0]

    def find(self, query: AnomalyQuery) -> AnomalyPage:
        check_query(query)
        statement = _filtered(select(anomalies), query)
        if query.cursor:
            window_end, anomaly_id = decode_cursor(query.cursor)
            statement = statement.where(
                or_(
                    anomalies.c.window_end < window_end,
                    and_(anomalies.c.window_end == window_end, anomalies.c.id < anomaly_id),
                )
            )
        # One row past the page tells whether another page follows.
        statement = statement.order_by(anomalies.c.window_end.desc(), anomalies.c.id.desc()).limit(
            query.limit + 1
        )
        with _unavailable_as_domain_error(), self.engine.connect() as connection:
            rows = list(connection.execute(statement).mappings())
            items = _load_root_causes(connection, rows[: query.limit])
        next_cursor = encode_cursor(items[-1]) if len(rows) > query.limit else None
        return AnomalyPage(items=items, next_cursor=next_cursor)

    def tally(self, query: AnomalyQuery) -> AnomalyTally:
        check_query(query)
        # Two grouped reads: per (module, severity) with the time span, and per main root cause.
        by_group = _filtered(
            select(
                anomalies.c.module,
                anomalies.c.severity,
                func.count(),
                func.min(anomalies.c.window_end),
                func.max(anomalies.c.window_end),
            ),
            query,
        ).group_by(anomalies.c.module, anomalies.c.severity)
        by_cause = (
            _filtered(select(anomalies.c.module, anomalies.c.top_feature, func.count()), query)
            .where(anomalies.c.top_feature.is_not(None))
            .group_by(anomalies.c.module, anomalies.c.top_feature)
        )
        by_module = dict.fromkeys(known_modules(), 0)
        by_severity = dict.fromkeys(Severity, 0)
        earliest: datetime | None = None
        latest_by_module: dict[Module, datetime | None] = dict.fromkeys(known_modules())
        causes: dict[Module, dict[str, int]] = {m: {} for m in known_modules()}
        with _unavailable_as_domain_error(), self.engine.connect() as connection:
            for module, severity, count, first, last in connection.execute(by_group).tuples():
                by_module[Module(module)] += count
                by_severity[Severity(severity)] += count
                earliest = first if earliest is None else min(earliest, first)
                newest = latest_by_module[Module(module)]
                latest_by_module[Module(module)] = last if newest is None else max(newest, last)
            for module, feature, count in connection.execute(by_cause).tuples():
                causes[Module(module)][feature] = count
        return tally_of(by_module, by_severity, causes, earliest, latest_by_module)

    def top(self, query: AnomalyQuery, order: AnomalyOrder) -> list[Anomaly]:
        check_query(query)
        newest = (anomalies.c.window_end.desc(), anomalies.c.id.desc())
        ordering: tuple[Any, ...]
        if order is AnomalyOrder.OLDEST:
            ordering = (anomalies.c.window_end.asc(), anomalies.c.id.asc())
        elif order is AnomalyOrder.HIGHEST_SCORE:
            ordering = (anomalies.c.score.desc(), *newest)
        elif order is AnomalyOrder.LOWEST_SCORE:
            ordering = (anomalies.c.score.asc(), *newest)
        else:
            exceeded = case(
                (anomalies.c.threshold > 0, anomalies.c.score / anomalies.c.threshold), else_=float("inf")
            )
            ordering = (anomalies.c.severity_rank.desc(), exceeded.desc(), *newest)
        statement = _filtered(select(anomalies), query).order_by(*ordering).limit(query.limit)
        with _unavailable_as_domain_error(), self.engine.connect() as connection:
            rows = list(connection.execute(statement).mappings())
            return _load_root_causes(connection, rows)

    def histogram(self, query: AnomalyQuery, start: datetime, step: timedelta, buckets: int) -> list[int]:
        check_query(query)
        require_naive(start, "start")
        seconds = int(step.total_seconds())
        if seconds < 1 or buckets < 1:
            raise InvalidInputError(
                "a histogram needs a step of at least a second and one bucket", field="step"
            )
        end = start + step * buckets
        bucket = self._bucket_expression(start, seconds)
        statement = (
            _filtered(select(bucket.label("bucket"), func.count()), query)
            .where(anomalies.c.window_end >= start, anomalies.c.window_end < end)
            .group_by("bucket")
        )
        counts = [0] * buckets
        with _unavailable_as_domain_error(), self.engine.connect() as connection:
            for index, count in connection.execute(statement).tuples():
                counts[int(index)] += count
        return counts

    def _bucket_expression(self, start: datetime, seconds: int) -> Any:
        """The bucket number of window_end, in whole seconds since `start` (integer division)."""
        if self.engine.dialect.name == "postgresql":
            elapsed = func.extract("epoch", anomalies.c.window_end - literal(start, DateTime()))
            return func.floor(elapsed / seconds)
        # SQLite: whole seconds since the epoch; flooring them first gives the same bucket for whole-second
        # starts and steps.
        since_start = cast(func.strftime("%s", anomalies.c.window_end), Integer) - int(
            (start - datetime(1970, 1, 1)).total_seconds()
        )
        return since_start // seconds

    def add_scores(self, points: Sequence[ScorePoint]) -> int:
        check_score_points(points)
        with _unavailable_as_domain_error(), self.engine.begin() as connection:
            return self._insert_scores(connection, points)

    def list_scores(
        self, module: Module, since: datetime | None = None, until: datetime | None = None, limit: int = 5000
    ) -> list[ScorePoint]:
        check_range(since, until, limit)
        statement = select(scores).where(scores.c.module == module.value)
        if since is not None:
            statement = statement.where(scores.c.timestamp >= since)
        if until is not None:
            statement = statement.where(scores.c.timestamp < until)
        statement = statement.order_by(
            scores.c.timestamp, scores.c.source, scores.c.model_name, scores.c.model_version
        ).limit(limit)
        with _unavailable_as_domain_error(), self.engine.connect() as connection:
            return [_score_point(row) for row in connection.execute(statement)]

    def latest_scores(
        self,
        module: Module,
        source: str,
        model_name: str,
        model_version: str,
        before: datetime,
        limit: int,
    ) -> list[ScorePoint]:
        check_range(None, before, limit)
        # newest first on the unique (module, source, timestamp, model) index, then turned oldest first
        statement = (
            select(scores)
            .where(
                scores.c.module == module.value,
                scores.c.source == source,
                scores.c.model_name == model_name,
                scores.c.model_version == model_version,
                scores.c.timestamp < before,
            )
            .order_by(scores.c.timestamp.desc())
            .limit(limit)
        )
        with _unavailable_as_domain_error(), self.engine.connect() as connection:
            rows = connection.execute(statement).all()
        return [_score_point(row) for row in reversed(rows)]


def _filtered(statement: SelectT, query: AnomalyQuery) -> SelectT:
    """`statement` narrowed to the anomalies matching the query's filters (not its cursor or limit)."""
    if query.module is not None:
        statement = statement.where(anomalies.c.module == query.module.value)
    if query.modules is not None:
        statement = statement.where(anomalies.c.module.in_(sorted(m.value for m in query.modules)))
    if query.source is not None:
        statement = statement.where(anomalies.c.source == query.source)
    if query.model_version is not None:
        statement = statement.where(anomalies.c.model_version == query.model_version)
    if query.since is not None:
        statement = statement.where(anomalies.c.window_end >= query.since)
    if query.until is not None:
        statement = statement.where(anomalies.c.window_end < query.until)
    if query.min_severity is not None:
        statement = statement.where(anomalies.c.severity_rank >= query.min_severity.rank)
    if query.severities is not None:
        statement = statement.where(anomalies.c.severity.in_(sorted(s.value for s in query.severities)))
    if query.feature is not None:
        statement = statement.where(
            exists().where(
                anomaly_features.c.anomaly_id == anomalies.c.id,
                anomaly_features.c.feature == query.feature,
            )
        )
    return statement


def _anomaly_row(anomaly: Anomaly) -> dict[str, Any]:
    return {
        "id": anomaly.id,
        "module": anomaly.module.value,
        "source": anomaly.source,
        "window_start": anomaly.window_start,
        "window_end": anomaly.window_end,
        "score": anomaly.score,
        "threshold": anomaly.threshold,
        "severity": anomaly.severity.value,
        "severity_rank": anomaly.severity.rank,
        "model_name": anomaly.model_name,
        "model_version": anomaly.model_version,
        "detected_at": anomaly.detected_at,
        "top_feature": anomaly.top_feature,
    }


def _feature_row(anomaly_id: str, rank: int, cause: FeatureContribution) -> dict[str, Any]:
    return {
        "anomaly_id": anomaly_id,
        "rank": rank,
        "feature": cause.feature,
        "contribution": cause.contribution,
        "observed": cause.observed,
        "expected": cause.expected,
    }


def _score_row(point: ScorePoint) -> dict[str, Any]:
    return {
        "module": point.module.value,
        "source": point.source,
        "timestamp": point.timestamp,
        "score": point.score,
        "threshold": point.threshold,
        "model_name": point.model_name,
        "model_version": point.model_version,
        "statistic": point.statistic,
        "alarm": point.alarm,
    }


def _score_point(row: Any) -> ScorePoint:
    return ScorePoint(
        module=Module(row.module),
        source=row.source,
        timestamp=row.timestamp,
        score=row.score,
        threshold=row.threshold,
        model_name=row.model_name,
        model_version=row.model_version,
        statistic=row.statistic,
        alarm=row.alarm,
    )


def _load_root_causes(connection: Connection, rows: Sequence[Any]) -> list[Anomaly]:
    """Anomalies for the given anomaly rows, their ranked root causes read in one query."""
    if not rows:
        return []
    causes: dict[str, list[FeatureContribution]] = defaultdict(list)
    feature_rows = connection.execute(
        select(anomaly_features)
        .where(anomaly_features.c.anomaly_id.in_([row["id"] for row in rows]))
        .order_by(anomaly_features.c.anomaly_id, anomaly_features.c.rank)
    )
    for feature in feature_rows:
        causes[feature.anomaly_id].append(
            FeatureContribution(
                feature=feature.feature,
                contribution=feature.contribution,
                observed=feature.observed,
                expected=feature.expected,
            )
        )
    return [
        Anomaly(
            id=row["id"],
            module=Module(row["module"]),
            source=row["source"],
            window_start=row["window_start"],
            window_end=row["window_end"],
            score=row["score"],
            threshold=row["threshold"],
            root_cause=tuple(causes[row["id"]]),
            model_name=row["model_name"],
            model_version=row["model_version"],
            detected_at=row["detected_at"],
            severity=Severity(row["severity"]),
        )
        for row in rows
    ]
