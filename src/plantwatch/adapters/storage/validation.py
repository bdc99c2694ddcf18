"""Checks every store runs before writing, so a bad item fails the whole batch before anything is written.

Timestamps in the store are naive, as in the domain (readings in plant local time, detected_at in UTC). A
timezone-aware value would compare wrongly against them, so it is refused rather than silently converted.
"""

import math
from collections.abc import Sequence
from datetime import datetime

from plantwatch.domain.anomaly import Anomaly, ScorePoint
from plantwatch.domain.errors import InvalidInputError
from plantwatch.domain.ports import AnomalyQuery


def require_naive(value: datetime, field: str) -> datetime:
    if value.tzinfo is not None:
        raise InvalidInputError(
            f"{field} must be a naive timestamp (plant local time), got {value.isoformat()}", field=field
        )
    return value


def _require_finite(value: float, field: str, where: str) -> None:
    if not math.isfinite(value):
        raise InvalidInputError(f"{where}: {field} must be a finite number, got {value}", field=field)


def check_anomalies(anomalies: Sequence[Anomaly]) -> None:
    for index, anomaly in enumerate(anomalies):
        where = f"anomaly {index} ({anomaly.id})"
        _require_finite(anomaly.score, "score", where)
        _require_finite(anomaly.threshold, "threshold", where)
        for name in ("window_start", "window_end", "detected_at"):
            require_naive(getattr(anomaly, name), name)
        if anomaly.window_start > anomaly.window_end:
            raise InvalidInputError(f"{where}: window_start is after window_end", field="window_start")
        if not anomaly.source:
            raise InvalidInputError(f"{where}: source is empty", field="source")
        for rank, cause in enumerate(anomaly.root_cause):
            for name in ("contribution", "observed", "expected"):
                _require_finite(getattr(cause, name), f"root_cause[{rank}].{name}", where)


def check_score_points(points: Sequence[ScorePoint]) -> None:
    for index, point in enumerate(points):
        where = f"score point {index} ({point.source} at {point.timestamp.isoformat()})"
        _require_finite(point.score, "score", where)
        _require_finite(point.threshold, "threshold", where)
        if point.statistic is not None:
            _require_finite(point.statistic, "statistic", where)
        require_naive(point.timestamp, "timestamp")


def check_query(query: AnomalyQuery) -> None:
    check_range(query.since, query.until, query.limit)


def check_range(since: datetime | None, until: datetime | None, limit: int) -> None:
    """The time range and page size of a read: naive bounds, a positive limit."""
    if limit < 1:
        raise InvalidInputError(f"limit must be at least 1, got {limit}", field="limit")
    for name, value in (("since", since), ("until", until)):
        if value is not None:
            require_naive(value, name)
