"""`plantwatch evaluate --train TRAIN.csv --test TEST.csv --label-column COL ...`: any labelled CSV pair.

Each model is fitted on TRAIN's normal rows (label 0), thresholded on normal data only (held-out or
cross-fitted scores, see services/evaluation.py) and judged on TEST's labelled rows. `--json` writes
{"models": {NAME: {precision, recall, f1, far, mar, event_recall, events_found, events,
false_alarms_per_day, auc_pr, roc_auc, threshold, fit_seconds}}} (NaN as null); `--scores-out DIR` writes
DIR/NAME.csv with timestamp, score (the statistic the threshold applies to: the detector's score under the
plain rule), threshold and alarm (0/1) for every test row.
"""

import dataclasses
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from plantwatch.adapters.datasets.labelled_csv import LabelledCsv, load_labelled_csv
from plantwatch.adapters.detectors import build_detector
from plantwatch.domain.alarms import AlarmRule
from plantwatch.domain.errors import InvalidInputError
from plantwatch.domain.metrics import DetectionReport
from plantwatch.domain.ports import Thresholder
from plantwatch.services.evaluation import ScoredRun, calibrate_detector, judge, score_run

# Fewer normal training rows than this cannot fit a model and say where its normal scores end.
MIN_NORMAL_ROWS = 50


@dataclass(frozen=True)
class FileEvaluation:
    train: LabelledCsv
    test: LabelledCsv
    reports: dict[str, DetectionReport]


def load_pair(
    train_path: Path,
    test_path: Path,
    label_column: str,
    time_column: str | None,
    sep: str,
    ignore_columns: Sequence[str],
) -> tuple[LabelledCsv, LabelledCsv]:
    train = load_labelled_csv(train_path, label_column, time_column, sep, ignore_columns)
    test = load_labelled_csv(
        test_path, label_column, time_column, sep, ignore_columns, features=train.frame.feature_names
    )
    assert train.frame.labels is not None and test.frame.labels is not None
    normal_rows = int((train.frame.labels == 0).sum())
    if normal_rows < MIN_NORMAL_ROWS:
        raise InvalidInputError(
            f"{train_path}: {normal_rows} normal rows (label 0) to fit on; need at least {MIN_NORMAL_ROWS}",
            field=label_column,
        )
    if not test.frame.labels.notna().any():
        raise InvalidInputError(f"{test_path}: no labelled row in {label_column!r}", field=label_column)
    return train, test


def evaluate_files(
    train: LabelledCsv,
    test: LabelledCsv,
    models: Sequence[str],
    thresholder_for: Callable[[], Thresholder],
    alarm_rule: AlarmRule,
    seed: int,
    scores_out: Path | None = None,
) -> FileEvaluation:
    """Fit, calibrate and judge each model; `thresholder_for()` gives a fresh Thresholder per model."""
    reports: dict[str, DetectionReport] = {}
    for name in models:
        thresholder = thresholder_for()
        calibrated = calibrate_detector(
            train.frame, build_detector(name, seed=seed), thresholder, alarm_rule=alarm_rule
        )
        report = judge(calibrated, test.frame)
        if not test.has_time:  # a running index is not a clock: no per-day figure
            report = _without_days(report)
        reports[name] = report
        if scores_out is not None:
            write_scores(scores_out / f"{name}.csv", test, score_run(calibrated, test.frame))
    return FileEvaluation(train, test, reports)


def _without_days(report: DetectionReport) -> DetectionReport:
    return dataclasses.replace(report, false_alarms_per_day=math.nan, days=math.nan)


def write_scores(path: Path, test: LabelledCsv, scored: ScoredRun) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    index = pd.DatetimeIndex(test.frame.values.index)
    timestamps: Any = index.strftime("%Y-%m-%d %H:%M:%S") if test.has_time else np.arange(len(index))
    pd.DataFrame(
        {
            "timestamp": timestamps,
            "score": scored.statistic,
            "threshold": scored.threshold,
            "alarm": scored.alarms.astype(int),
        }
    ).to_csv(path, index=False)


JSON_FIELDS = {
    "precision": "precision",
    "recall": "recall",
    "f1": "f1",
    "far": "far",
    "mar": "mar",
    "event_recall": "event_recall",
    "events_found": "detected_events",
    "events": "events",
    "false_alarms_per_day": "false_alarms_per_day",
    "auc_pr": "auc_pr",
    "roc_auc": "roc_auc",
    "threshold": "threshold",
    "fit_seconds": "fit_seconds",
}


def json_document(evaluation: FileEvaluation) -> dict[str, Any]:
    def plain(value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            return None
        return value

    return {
        "models": {
            name: {key: plain(getattr(report, attribute)) for key, attribute in JSON_FIELDS.items()}
            for name, report in evaluation.reports.items()
        }
    }


def write_json(path: Path, evaluation: FileEvaluation) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(json_document(evaluation), indent=2) + "\n")
