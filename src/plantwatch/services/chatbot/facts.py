"""The typed figures behind each kind of answer. A reply's `facts` is one of these as a dict (`as_dict`).

Every figure is rounded as the answer writes it: scores to three significant digits, ratios and
contributions to one decimal, times as ISO 8601.
"""

from dataclasses import asdict, dataclass, field
from typing import Any

from plantwatch.domain.anomaly import Anomaly


def score_written(value: float) -> float:
    """A score as written: three significant digits."""
    return float(f"{value:.3g}")


def ratio_written(value: float) -> float:
    """A ratio or contribution as written: one decimal."""
    return round(value, 1)


def score_ratio(anomaly: Anomaly) -> float:
    return anomaly.score / anomaly.threshold if anomaly.threshold > 0 else float("inf")


@dataclass(kw_only=True)
class Facts:
    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(kw_only=True)
class RangeFacts(Facts):
    period: str
    since: str | None
    until: str | None


@dataclass(kw_only=True)
class FeatureCount:
    feature: str
    count: int


@dataclass(kw_only=True)
class AnomalyLine:
    """One anomaly as an answer lists it."""

    anomaly_id: str
    module: str
    source: str
    time: str
    severity: str
    score: float
    threshold: float
    top_feature: str | None

    @classmethod
    def of(cls, anomaly: Anomaly) -> "AnomalyLine":
        return cls(
            anomaly_id=anomaly.id,
            module=anomaly.module.value,
            source=anomaly.source,
            time=anomaly.window_end.isoformat(),
            severity=anomaly.severity.value,
            score=score_written(anomaly.score),
            threshold=score_written(anomaly.threshold),
            top_feature=anomaly.top_feature,
        )


@dataclass(kw_only=True)
class NothingFound(RangeFacts):
    """No anomaly matched; where the asked module's newest anomaly is, so an empty period is not read as
    health."""

    module: str
    count: int = 0
    latest_time: str | None = None
    latest_anomaly_id: str | None = None


@dataclass(kw_only=True)
class ListFacts(RangeFacts):
    module: str
    count: int
    min_severity: str | None
    severities: list[str]
    feature: str | None
    by_module: dict[str, int]
    by_severity: dict[str, int]
    top_feature: str | None
    """The most frequent main root cause; None when two or more tie."""
    top_feature_count: int
    top_features: list[FeatureCount]
    most_severe_id: str
    latest_time: str | None
    cited_all: bool
    """False when the count is larger than the citation cap: the count is exact, the citations the newest."""


@dataclass(kw_only=True)
class CauseFacts:
    feature: str
    contribution: float
    observed: float
    expected: float


@dataclass(kw_only=True)
class ExplainFacts(Facts):
    found: bool = True
    anomaly_id: str
    module: str
    source: str
    time: str
    window_start: str
    score: float
    threshold: float
    ratio: float
    severity: str
    model: str
    top_feature: str | None
    matches: int
    root_cause: list[CauseFacts]


@dataclass(kw_only=True)
class NotExplained(Facts):
    found: bool = False
    anomaly_id: str | None
    asked_time: str | None = None
    tolerance_minutes: int | None = None
    latest_time: str | None = None
    latest_anomaly_id: str | None = None


@dataclass(kw_only=True)
class RankedCause:
    feature: str
    count: int
    modules: list[str]


@dataclass(kw_only=True)
class TopCauseFacts(RangeFacts):
    module: str
    count: int
    top_feature: str
    top_feature_count: int
    tied: list[str]
    share_pct: int
    ranking: list[RankedCause]


@dataclass(kw_only=True)
class ModuleSummary:
    count: int
    top_feature: str | None
    latest_time: str | None


@dataclass(kw_only=True)
class SummaryFacts(RangeFacts):
    module: str
    count: int
    by_module: dict[str, int]
    by_severity: dict[str, int]
    modules: dict[str, ModuleSummary]
    most_severe_id: str


@dataclass(kw_only=True)
class ComparePeriodsFacts(Facts):
    module: str
    period_a: str
    period_b: str
    count_a: int
    count_b: int
    delta: int
    change_pct: int | None
    top_feature_a: str | None
    top_feature_b: str | None
    by_module_a: dict[str, int]
    by_module_b: dict[str, int]
    top_features_a: list[FeatureCount]
    top_features_b: list[FeatureCount]


@dataclass(kw_only=True)
class CompareModulesFacts(RangeFacts):
    counts: dict[str, int]
    most: list[str]
    """The module(s) with the most anomalies (several when tied)."""
    delta: int | None
    """First named module minus second, when exactly two are compared."""
    severities: list[str]


@dataclass(kw_only=True)
class Involvement:
    feature: str
    module: str
    known_feature: bool
    involved: bool
    count: int
    top_cause_count: int
    by_module: dict[str, int]
    latest_time: str | None
    latest_anomaly_id: str | None
    max_contribution: float | None = None


@dataclass(kw_only=True)
class InvolvementFacts(RangeFacts, Involvement):
    features: dict[str, Involvement]


@dataclass(kw_only=True)
class WhichSensor(Facts):
    feature: None = None
    known_features: list[str]


@dataclass(kw_only=True)
class RankedFacts(RangeFacts, AnomalyLine):
    """The newest, oldest, highest- or lowest-scoring anomaly (first of `anomalies` when N were asked)."""

    order: str
    limit: int
    of_count: int
    """How many anomalies were in scope."""
    anomalies: list[AnomalyLine]


@dataclass(kw_only=True)
class ShareFacts(RangeFacts):
    module: str
    part: int
    total: int
    share_pct: float | None
    subset: str
    """What the part is: 'are high or critical severity', 'involve P101', 'are in cyber'."""


@dataclass(kw_only=True)
class TrendFacts(RangeFacts):
    module: str
    direction: str
    """rising, falling or flat."""
    bucket: str
    counts: list[int]
    total: int
    change: float
    """The least-squares line's change over the period, in anomalies per bucket."""
    first_half: int
    second_half: int


@dataclass(kw_only=True)
class HelpFacts(Facts):
    capabilities: list[str]
    modules: list[str]
    reason: str | None = None
    """Why the question was not answered: out_of_scope, future or unsure."""


@dataclass(kw_only=True)
class ClarifyFacts(Facts):
    needs: str
    """What the question lacks ("a severity, a sensor or a module")."""
    examples: list[str] = field(default_factory=list)


@dataclass(kw_only=True)
class IncidentLine:
    """One incident as an answer lists it."""

    incident_id: str
    module: str
    source: str
    state: str
    severity: str
    start: str
    end: str
    top_cause: str | None


@dataclass(kw_only=True)
class NoIncidentStore(Facts):
    """The chatbot was asked about incidents but runs without an incident store: no figure to give."""

    incident_store: bool = False


@dataclass(kw_only=True)
class OpenIncidentsFacts(RangeFacts):
    """Incidents not closed (annunciated ones: active or cleared but not yet acknowledged)."""

    module: str
    count: int
    by_state: dict[str, int]
    by_module: dict[str, int]
    incidents: list[IncidentLine]
    """The newest ones, as many as the answer shows."""


@dataclass(kw_only=True)
class IncidentCountFacts(RangeFacts):
    module: str
    count: int
    by_state: dict[str, int]
    by_module: dict[str, int]
    by_severity: dict[str, int]


@dataclass(kw_only=True)
class AcknowledgerFacts(Facts):
    module: str
    incident: IncidentLine | None
    """The newest incident in scope; None when there is none."""
    acknowledged: bool
    actor: str | None = None
    acknowledged_at: str | None = None
    """Wall-clock time of the acknowledgement, naive UTC, as the audit log keeps it."""
