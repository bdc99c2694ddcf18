"""Detection metrics: point-wise, event-wise, ranking and root-cause scores of a detector on labelled data.

Definitions (every metric is computed on labelled readings only, in time order):

- point precision/recall/F1: each reading is one decision, alarm = score > threshold; no point adjustment.
- event: a maximal run of consecutive readings labelled 1. An event is detected when at least one alarm falls
  in it or in the `tolerance` readings right after it (a windowed detector may see an attack only late).
- event recall: detected events / events.
- false alarms per day: alarm runs (maximal runs of consecutive alarms) that overlap no event (tolerance
  included), divided by the days the readings cover (readings x median sampling interval, so gaps in the
  timestamps are not counted as watched time).
- AUC-PR (average precision) and ROC-AUC: threshold-free, on readings with a finite score.
- PA-F1, the point-adjusted F1 of the literature: when any reading of an event is alarmed, every reading of
  that event counts as alarmed. It rewards firing once per long event and makes even random scores look good
  (Kim et al., AAAI 2022), so it is reported apart, for comparison with published numbers only.
- root-cause top-k: for each detected event whose injected root-cause feature is known, the alarmed reading
  with the highest score in the event (tolerance included) is explained; a hit when the injected feature is
  among the k features ranked first there. Rate = hits / such events (NaN when there are none). A cause may
  name alternatives joined by "|" (a fault acting on a loop seen by its measurement and its valve): a hit
  when any of them is among the k first. The same rates are also judged at each event's FIRST alarm (what
  the operator is told when the alarm goes off): in a process plant a fault spreads through the control
  loops, and by the peak the most disturbed variable is often one far downstream.
- FAR (false alarm rate) = FP / (FP + TN) and MAR (missed alarm rate) = FN / (FN + TP), per reading.
- time to detection: readings from an event's first reading to its first alarm; the mean over found events.
- BATADAL's S score (Taormina et al. 2018): S = ½·S_TTD + ½·S_CM, with S_TTD = 1 - mean over events of
  TTD / event length (a missed event counts as its whole length) and S_CM = (TPR + TNR) / 2.
"""

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, precision_recall_fscore_support, roc_auc_score

from plantwatch.domain.errors import InvalidInputError

ROOT_CAUSE_TOP_K = 3
DAY = pd.Timedelta(days=1)


@dataclass(frozen=True)
class DetectionReport:
    """How one detector did on one labelled test set. Rates are NaN where they are undefined."""

    model_name: str
    threshold: float
    threshold_method: str
    readings: int
    anomalous_readings: int
    alarms: int
    events: int
    detected_events: int
    precision: float
    recall: float
    f1: float
    event_recall: float
    false_alarm_runs: int
    false_alarms_per_day: float
    days: float
    auc_pr: float
    roc_auc: float
    pa_f1: float
    root_cause_events: int = 0
    root_cause_top1: float = math.nan
    root_cause_top3: float = math.nan
    root_cause_first_top1: float = math.nan
    root_cause_first_top3: float = math.nan
    fit_seconds: float = math.nan
    score_ms_per_1k: float = math.nan
    far: float = math.nan
    mar: float = math.nan
    mean_time_to_detection: float = math.nan
    s_ttd: float = math.nan
    s_score: float = math.nan
    alarm_rule: str = "none"

    @property
    def prevalence(self) -> float:
        """Share of readings labelled anomalous: the AUC-PR of a detector that scores at random."""
        return self.anomalous_readings / self.readings if self.readings else math.nan


def runs(mask: np.ndarray) -> np.ndarray:
    """(k, 2) array of [start, end) index pairs of the maximal runs of True in a 1-D boolean mask."""
    flags = np.asarray(mask, dtype=bool).ravel().astype(np.int8)
    edges = np.diff(np.concatenate(([0], flags, [0])))
    return np.column_stack((np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)))


def point_scores(labels: np.ndarray, alarms: np.ndarray) -> tuple[float, float, float]:
    """Point-wise (precision, recall, F1); 0.0 where a ratio has no denominator."""
    precision, recall, f1, _ = precision_recall_fscore_support(
        np.asarray(labels, dtype=bool), np.asarray(alarms, dtype=bool), average="binary", zero_division=0.0
    )
    return float(precision), float(recall), float(f1)


def point_adjust(labels: np.ndarray, alarms: np.ndarray) -> np.ndarray:
    """Alarms with every reading of an event set once any reading of it is alarmed (the literature's PA)."""
    adjusted = np.asarray(alarms, dtype=bool).copy()
    for start, end in runs(labels):
        if adjusted[start:end].any():
            adjusted[start:end] = True
    return adjusted


def detected_event_mask(labels: np.ndarray, alarms: np.ndarray, tolerance: int = 0) -> np.ndarray:
    """Per event (run of label 1): does an alarm fall in it or in the `tolerance` readings after it."""
    alarms = np.asarray(alarms, dtype=bool)
    return np.array(
        [alarms[start : end + tolerance].any() for start, end in runs(labels)],
        dtype=bool,
    )


def false_alarm_runs(labels: np.ndarray, alarms: np.ndarray, tolerance: int = 0) -> int:
    """Alarm runs that overlap no event, each event stretched by `tolerance` readings after its end."""
    covered = np.zeros(len(labels), dtype=bool)
    for start, end in runs(labels):
        covered[start : end + tolerance] = True
    return sum(1 for start, end in runs(alarms) if not covered[start:end].any())


def days_covered(timestamps: pd.DatetimeIndex) -> float:
    """Watched time in days: readings x median sampling interval. NaN with fewer than two readings."""
    if len(timestamps) < 2:
        return math.nan
    step = pd.Series(timestamps).diff().median()
    return float(len(timestamps) * step / DAY)


def ranking_scores(labels: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    """(AUC-PR, ROC-AUC) over readings with a finite score; NaN when those hold a single class."""
    finite = np.isfinite(scores)
    truth = np.asarray(labels, dtype=bool)[finite]
    if truth.all() or not truth.any():
        return math.nan, math.nan
    return (
        float(average_precision_score(truth, scores[finite])),
        float(roc_auc_score(truth, scores[finite])),
    )


def root_cause_hit_rates(
    labels: np.ndarray,
    alarms: np.ndarray,
    scores: np.ndarray,
    root_causes: Sequence[str],
    rank_features: Callable[[int], Sequence[str]],
    top_k: int = ROOT_CAUSE_TOP_K,
    tolerance: int = 0,
    at_first_alarm: bool = False,
) -> tuple[int, float, float]:
    """(events judged, top-1 hit rate, top-k hit rate) over detected events with a known root cause.

    The event's known cause is its most frequent non-empty `root_causes` entry; `rank_features(t)` gives the
    features ranked most-to-least responsible at reading t, and is asked only at the highest-scoring alarmed
    reading of each event (the `tolerance` readings after it included, as for detection), or at its first
    alarmed reading with `at_first_alarm`.
    """
    alarms = np.asarray(alarms, dtype=bool)
    judged = top1 = topk = 0
    for start, end in runs(labels):
        causes = Counter(str(c) for c in root_causes[start:end] if c)
        inside = np.flatnonzero(alarms[start : end + tolerance]) + start
        if not causes or inside.size == 0:
            continue
        accepted = set(causes.most_common(1)[0][0].split("|"))
        if at_first_alarm:
            judged_at = int(inside[0])
        else:
            judged_at = int(inside[np.argmax(np.nan_to_num(scores[inside], nan=-np.inf))])
        ranked = list(rank_features(judged_at))
        judged += 1
        top1 += int(bool(accepted & set(ranked[:1])))
        topk += int(bool(accepted & set(ranked[:top_k])))
    if judged == 0:
        return 0, math.nan, math.nan
    return judged, top1 / judged, topk / judged


def error_rates(truth: np.ndarray, alarms: np.ndarray) -> tuple[float, float]:
    """(FAR, MAR) per reading: FP / (FP + TN) and FN / (FN + TP); NaN without a denominator."""
    truth, alarms = np.asarray(truth, dtype=bool), np.asarray(alarms, dtype=bool)
    normal, anomalous = int((~truth).sum()), int(truth.sum())
    far = float((alarms & ~truth).sum() / normal) if normal else math.nan
    mar = float((~alarms & truth).sum() / anomalous) if anomalous else math.nan
    return far, mar


def times_to_detection(truth: np.ndarray, alarms: np.ndarray) -> list[tuple[int, int | None]]:
    """Per event: (its length, readings from its start to its first alarm inside it, None when missed)."""
    alarms = np.asarray(alarms, dtype=bool)
    out: list[tuple[int, int | None]] = []
    for start, end in runs(truth):
        inside = np.flatnonzero(alarms[start:end])
        out.append((int(end - start), int(inside[0]) if inside.size else None))
    return out


def batadal_s_score(truth: np.ndarray, alarms: np.ndarray) -> tuple[float, float]:
    """(S_TTD, S) of the BATADAL competition (see the module docstring); NaN without events."""
    events = times_to_detection(truth, alarms)
    if not events:
        return math.nan, math.nan
    s_ttd = 1.0 - float(np.mean([(length if ttd is None else ttd) / length for length, ttd in events]))
    far, mar = error_rates(truth, alarms)
    s_cm = ((1.0 - mar) + (1.0 - far)) / 2.0
    return s_ttd, 0.5 * s_ttd + 0.5 * s_cm


def detection_report(
    labels: np.ndarray,
    scores: np.ndarray,
    threshold: float,
    timestamps: pd.DatetimeIndex,
    *,
    model_name: str = "",
    threshold_method: str = "",
    tolerance: int = 0,
    root_causes: Sequence[str] | None = None,
    rank_features: Callable[[int], Sequence[str]] | None = None,
    alarms: np.ndarray | None = None,
    alarm_rule: str = "none",
) -> DetectionReport:
    """Every metric of one detector on labelled readings in time order (see the module docstring).

    labels: 0/1 per reading, no NaN (drop unlabelled readings first). scores: NaN where the detector had no
    full window; such readings raise no alarm. root_causes with rank_features: the root-cause hit rates.
    alarms: what an alarm rule decided per reading (domain.alarms); score > threshold when not given.
    """
    labels = np.asarray(labels, dtype=np.float64).ravel()
    scores = np.asarray(scores, dtype=np.float64).ravel()
    if not np.isin(labels, (0.0, 1.0)).all():
        raise InvalidInputError(
            "labels must be 0 or 1 on every evaluated reading (drop unlabelled ones)", "labels"
        )
    for name, length in (("scores", len(scores)), ("timestamps", len(timestamps))):
        if length != len(labels):
            raise InvalidInputError(f"{name} has {length} entries, labels has {len(labels)}", field=name)
    if root_causes is not None and len(root_causes) != len(labels):
        raise InvalidInputError(
            f"root_causes has {len(root_causes)} entries, labels has {len(labels)}", "root_causes"
        )
    if tolerance < 0:
        raise InvalidInputError(f"tolerance must be >= 0 readings, got {tolerance}", field="tolerance")

    truth = labels == 1.0
    if alarms is None:
        alarms = np.nan_to_num(scores, nan=-np.inf) > threshold
    else:
        alarms = np.asarray(alarms, dtype=bool).ravel()
        if len(alarms) != len(labels):
            raise InvalidInputError(f"alarms has {len(alarms)} entries, labels has {len(labels)}", "alarms")
    precision, recall, f1 = point_scores(truth, alarms)
    detected = detected_event_mask(truth, alarms, tolerance)
    false_runs = false_alarm_runs(truth, alarms, tolerance)
    days = days_covered(timestamps)
    auc_pr, roc_auc = ranking_scores(truth, scores)
    _, _, pa_f1 = point_scores(truth, point_adjust(truth, alarms))
    rc_events, rc_top1, rc_topk = 0, math.nan, math.nan
    first_top1, first_topk = math.nan, math.nan
    if root_causes is not None and rank_features is not None:
        causes = [str(c) for c in root_causes]
        rc_events, rc_top1, rc_topk = root_cause_hit_rates(
            truth, alarms, scores, causes, rank_features, tolerance=tolerance
        )
        _, first_top1, first_topk = root_cause_hit_rates(
            truth, alarms, scores, causes, rank_features, tolerance=tolerance, at_first_alarm=True
        )
    far, mar = error_rates(truth, alarms)
    delays = [ttd for _, ttd in times_to_detection(truth, alarms) if ttd is not None]
    s_ttd, s_score = batadal_s_score(truth, alarms)
    return DetectionReport(
        model_name=model_name,
        threshold=float(threshold),
        threshold_method=threshold_method,
        readings=len(labels),
        anomalous_readings=int(truth.sum()),
        alarms=int(alarms.sum()),
        events=len(detected),
        detected_events=int(detected.sum()),
        precision=precision,
        recall=recall,
        f1=f1,
        event_recall=float(detected.mean()) if len(detected) else math.nan,
        false_alarm_runs=false_runs,
        false_alarms_per_day=false_runs / days if days and not math.isnan(days) else math.nan,
        days=days,
        auc_pr=auc_pr,
        roc_auc=roc_auc,
        pa_f1=pa_f1,
        root_cause_events=rc_events,
        root_cause_top1=rc_top1,
        root_cause_top3=rc_topk,
        root_cause_first_top1=first_top1,
        root_cause_first_top3=first_topk,
        far=far,
        mar=mar,
        mean_time_to_detection=float(np.mean(delays)) if delays else math.nan,
        s_ttd=s_ttd,
        s_score=s_score,
        alarm_rule=alarm_rule,
    )
