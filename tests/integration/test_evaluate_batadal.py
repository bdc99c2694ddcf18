"""`plantwatch evaluate` on the real BATADAL files with the PCA baseline: better than chance, adds up."""

import math
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from plantwatch.adapters.datasets.benchmark_splits import BATADAL_TEST_FILE, BATADAL_TRAIN_FILE, batadal_split
from plantwatch.entrypoints.cli.evaluate import (
    BEGIN_MARK,
    END_MARK,
    evaluate,
    evaluate_split,
)
from plantwatch.settings import Settings

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
# relative settings paths are relative to the repository root, wherever pytest was started from
DATASETS_DIR = REPO_ROOT / Settings().shared_datasets_dir
BATADAL_DIR = DATASETS_DIR / "batadal"
needs_batadal = pytest.mark.skipif(
    not (BATADAL_DIR / BATADAL_TRAIN_FILE).is_file() or not (BATADAL_DIR / BATADAL_TEST_FILE).is_file(),
    reason=f"BATADAL files not found in {BATADAL_DIR}",
)


@needs_batadal
def test_pca_beats_chance_on_batadal_and_its_report_adds_up() -> None:
    split = batadal_split(DATASETS_DIR)
    report = evaluate_split(split, ["pca"], "pot", seed=7).reports[0]

    assert report.model_name == "pca" and report.threshold_method == "pot"
    assert report.readings == len(split.test) == 4177
    assert report.anomalous_readings == 219  # ATT_FLAG 1 hours, per the data set's README
    assert report.auc_pr > 2 * report.prevalence
    assert report.roc_auc > 0.5
    assert report.event_recall == report.detected_events / report.events
    true_alarms = report.recall * report.anomalous_readings
    assert report.precision * report.alarms == pytest.approx(true_alarms)
    assert report.pa_f1 >= report.f1
    assert report.days == pytest.approx(4177 / 24)
    assert report.false_alarms_per_day == pytest.approx(report.false_alarm_runs / report.days)
    assert report.root_cause_events == 0 and math.isnan(report.root_cause_top1)  # no injected causes here
    assert report.fit_seconds > 0 and report.score_ms_per_1k > 0


@needs_batadal
def test_cli_writes_the_tables_between_marks_and_keeps_the_commentary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLANTWATCH_SHARED_DATASETS_DIR", str(DATASETS_DIR))
    app = typer.Typer()
    app.command()(evaluate)
    output = tmp_path / "benchmarks.md"
    output.write_text(
        f"# Benchmarks\n\nWritten by hand.\n\n{BEGIN_MARK}\nold table\n{END_MARK}\n\nMore prose.\n"
    )

    result = CliRunner().invoke(app, ["--dataset", "batadal", "--models", "pca", "--output", str(output)])

    assert result.exit_code == 0, result.output
    assert "batadal" in result.output and "pca" in result.output
    text = output.read_text()
    assert text.startswith("# Benchmarks\n\nWritten by hand.\n")
    assert text.endswith("\n\nMore prose.\n")
    assert "old table" not in text
    assert "plantwatch evaluate --dataset batadal --models pca --threshold pot" in text
    rows = [line for line in text.splitlines() if line.startswith("| pca |")]
    assert len(rows) == 1


def test_cli_names_the_missing_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLANTWATCH_SHARED_DATASETS_DIR", str(tmp_path))
    app = typer.Typer()
    app.command()(evaluate)
    result = CliRunner().invoke(app, ["--dataset", "batadal", "--models", "pca"])
    assert result.exit_code == 2
    assert BATADAL_TRAIN_FILE in result.output
