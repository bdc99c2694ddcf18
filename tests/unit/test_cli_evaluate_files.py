"""`plantwatch evaluate --train A.csv --test B.csv --label-column L`: a labelled CSV pair, JSON, scores."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from plantwatch.entrypoints.cli.app import app

JSON_KEYS = {
    "precision",
    "recall",
    "f1",
    "far",
    "mar",
    "event_recall",
    "events_found",
    "events",
    "false_alarms_per_day",
    "auc_pr",
    "roc_auc",
    "threshold",
    "fit_seconds",
}


def plant(rows: int, seed: int, start: str) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    t = np.arange(rows) * 2 * np.pi / 60
    return pd.DataFrame(
        {
            "time": pd.date_range(start, periods=rows, freq="min").strftime("%Y-%m-%d %H:%M:%S"),
            "flow": 10 + np.sin(t) + rng.normal(0, 0.05, rows),
            "pressure": 5 + 2 * np.sin(t) + rng.normal(0, 0.05, rows),
            "temp": 60 + np.cos(t) + rng.normal(0, 0.05, rows),
            "operator": "anna",
            "batch": np.arange(rows),
            "status": 0,
        }
    )


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    train, test = plant(1_500, 1, "2024-01-01"), plant(600, 2, "2024-01-02 01:00")
    train.loc[700:720, "status"] = 2  # a labelled fault in training data: not fitted on
    train.loc[700:720, "flow"] += 5
    for first in (100, 300, 500):
        test.loc[first : first + 9, "pressure"] += 8
        test.loc[first : first + 9, "status"] = 1
    train_path, test_path = tmp_path / "train.csv", tmp_path / "test.csv"
    train.to_csv(train_path, sep=";", index=False)
    test.to_csv(test_path, sep=";", index=False)
    return train_path, test_path


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["evaluate", *args])
    return result.exit_code, result.output


def test_json_and_scores_have_the_documented_shape(files: tuple[Path, Path], tmp_path: Path) -> None:
    train, test = files
    out, scores = tmp_path / "out.json", tmp_path / "scores"
    code, output = run(
        "--train", str(train), "--test", str(test), "--label-column", "status", "--time-column", "time",
        "--sep", ";", "--ignore-columns", "batch", "--models", "robust_z", "--threshold", "quantile:0.995",
        "--json", str(out), "--scores-out", str(scores),
    )  # fmt: skip
    assert code == 0, output
    assert "operator" in output  # the text column is named as left out
    document = json.loads(out.read_text())
    assert set(document["models"]) == {"pca", "robust_z"}
    for metrics in document["models"].values():
        assert set(metrics) == JSON_KEYS
        for key in ("precision", "recall", "f1", "far", "mar", "event_recall"):
            assert 0.0 <= metrics[key] <= 1.0
        assert metrics["events"] == 3 and metrics["events_found"] == 3
        assert metrics["mar"] == pytest.approx(1.0 - metrics["recall"])
    written = pd.read_csv(scores / "pca.csv")
    assert list(written.columns) == ["timestamp", "score", "threshold", "alarm"]
    assert len(written) == 600 and written["timestamp"].iloc[0] == "2024-01-02 01:00:00"
    assert set(written["alarm"]) <= {0, 1}
    plain = written.dropna()
    assert ((plain["score"] > plain["threshold"]) == (plain["alarm"] == 1)).all()


def test_a_file_without_time_column_gets_a_running_index(files: tuple[Path, Path], tmp_path: Path) -> None:
    train, test = files
    for path in files:
        frame = pd.read_csv(path, sep=";").drop(columns=["time"])
        frame.to_csv(path, sep=";", index=False)
    out, scores = tmp_path / "out.json", tmp_path / "scores"
    code, output = run(
        "--train", str(train), "--test", str(test), "--label-column", "status", "--sep", ";",
        "--ignore-columns", "batch", "--models", "pca", "--json", str(out), "--scores-out", str(scores),
    )  # fmt: skip
    assert code == 0, output
    assert pd.read_csv(scores / "pca.csv")["timestamp"].tolist() == list(range(600))
    assert json.loads(out.read_text())["models"]["pca"]["false_alarms_per_day"] is None


def test_a_missing_label_column_is_named(files: tuple[Path, Path]) -> None:
    train, test = files
    code, output = run("--train", str(train), "--test", str(test), "--label-column", "fault", "--sep", ";")
    assert code == 2
    assert "train.csv" in output and "'fault'" in output and "status" in output


def test_no_numeric_feature_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "words.csv"
    pd.DataFrame({"who": ["a", "b"] * 50, "label": 0}).to_csv(path, index=False)
    code, output = run("--train", str(path), "--test", str(path), "--label-column", "label")
    assert code == 2 and "no numeric feature column" in output


def test_too_few_normal_rows_is_an_error(files: tuple[Path, Path]) -> None:
    train, test = files
    frame = pd.read_csv(train, sep=";")
    frame.loc[30:, "status"] = 1
    frame.to_csv(train, sep=";", index=False)
    code, output = run("--train", str(train), "--test", str(test), "--label-column", "status", "--sep", ";")
    assert code == 2 and "30 normal rows" in output


def test_a_bad_cell_names_file_row_and_column(files: tuple[Path, Path]) -> None:
    train, test = files
    frame = pd.read_csv(test, sep=";").astype({"temp": object})
    frame.loc[41, "temp"] = "n/a"
    frame.to_csv(test, sep=";", index=False)
    code, output = run(
        "--train", str(train), "--test", str(test), "--label-column", "status", "--sep", ";",
        "--ignore-columns", "batch",
    )  # fmt: skip
    assert code == 2
    assert "test.csv, row 43, column 'temp'" in output and "'n/a'" in output
