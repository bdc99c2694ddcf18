"""A store of replayed historical data: SWaT-style cyber anomalies from December 2015 and energy anomalies
from 2018, so "now" per module (the time anchor) and explicit clock ranges can be tested.

cyber, 2015-12-28: one anomaly every 2 seconds from 10:16:50 to 10:18:10 (41), severity by second: every
third critical, the others alternating high and medium; and 5 more on 2015-12-22 at 09:00 + i hours.
energy, 2018-03-01 to 2018-03-10: one anomaly a day at 12:00, high.
"""

from datetime import datetime, timedelta

from plantwatch.domain.anomaly import Anomaly, FeatureContribution, Severity
from plantwatch.domain.modules import Module
from tests.fakes import InMemoryAnomalyRepository

SEVERITY_SCORES = {Severity.CRITICAL: 5.0, Severity.HIGH: 2.5, Severity.MEDIUM: 1.5, Severity.LOW: 1.1}


def _anomaly(module: Module, end: datetime, severity: Severity, feature: str) -> Anomaly:
    return Anomaly(
        module=module,
        source="swat" if module is Module.CYBER else "steel",
        window_start=end - timedelta(seconds=10),
        window_end=end,
        score=SEVERITY_SCORES[severity],
        threshold=1.0,
        root_cause=(FeatureContribution(feature, 4.0, 1.0, 0.0),),
        model_name="pca",
        model_version="v1",
        detected_at=end,
        severity=severity,
    )


def build_replay_anomalies() -> list[Anomaly]:
    anomalies = []
    start = datetime(2015, 12, 28, 10, 16, 50)
    for i in range(41):
        severity = Severity.CRITICAL if i % 3 == 0 else Severity.HIGH if i % 2 == 0 else Severity.MEDIUM
        anomalies.append(_anomaly(Module.CYBER, start + timedelta(seconds=2 * i), severity, "LIT101"))
    for i in range(5):
        anomalies.append(
            _anomaly(Module.CYBER, datetime(2015, 12, 22, 9) + timedelta(hours=i), Severity.LOW, "P101")
        )
    for day in range(10):
        anomalies.append(_anomaly(Module.ENERGY, datetime(2018, 3, 1 + day, 12), Severity.HIGH, "usage_kwh"))
    return anomalies


def build_replay_store() -> tuple[InMemoryAnomalyRepository, list[Anomaly]]:
    anomalies = build_replay_anomalies()
    repository = InMemoryAnomalyRepository()
    repository.add_many(anomalies)
    return repository, anomalies
