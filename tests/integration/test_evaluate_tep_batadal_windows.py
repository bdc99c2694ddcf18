"""The classic TEP protocol and fully labelled BATADAL dataset04 on the real files, with the PCA baseline."""

import math
from pathlib import Path

import numpy as np
import pytest

from plantwatch.adapters.datasets.benchmark_splits import batadal_windows_split, tep_split
from plantwatch.adapters.datasets.tep import read_tep_file
from plantwatch.entrypoints.cli.evaluate import evaluate_split, run_tables
from plantwatch.settings import Settings

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
DATASETS_DIR = REPO_ROOT / Settings().shared_datasets_dir
needs_tep = pytest.mark.skipif(
    not (DATASETS_DIR / "tep" / "d21_te.dat").is_file(), reason=f"TEP files not found in {DATASETS_DIR}"
)
needs_windows = pytest.mark.skipif(
    not (DATASETS_DIR / "batadal" / "dataset04_attack_windows.csv").is_file(),
    reason=f"BATADAL attack windows not found in {DATASETS_DIR}",
)


@needs_tep
def test_d00_is_read_transposed_like_every_other_file() -> None:
    train = read_tep_file(DATASETS_DIR / "tep" / "d00.dat")
    test = read_tep_file(DATASETS_DIR / "tep" / "d00_te.dat")
    assert train.shape == (500, 52) and test.shape == (960, 52)
    # the same plant in the same state: every variable's mean agrees within a few standard deviations
    assert (np.abs(train.mean(axis=0) - test.mean(axis=0)) < 3 * test.std(axis=0) + 1e-9).all()


@needs_tep
def test_tep_protocol_with_pca_finds_the_easy_faults_and_few_false_alarms() -> None:
    split = tep_split(DATASETS_DIR)
    result = evaluate_split(split, ["pca"], "quantile:0.99", seed=7)
    runs = result.run_reports["pca"]
    assert len(runs) == 42  # 21 faults, held-back and tuning runs
    assert result.reports[0].far < 0.05  # d00_te.dat, all normal
    for fault in (1, 2, 4, 6, 7):  # step faults every published monitor detects
        assert runs[f"test fault {fault}"].recall > 0.9, fault
    assert runs["test fault 3"].recall < 0.2  # known to leave no trace
    assert not math.isnan(runs["test fault 6"].root_cause_first_top3)
    table = "\n".join(run_tables(result))
    assert "published PCA T²" in table and "mean, 18 faults" in table


@needs_windows
def test_batadal_windows_label_all_seven_attacks_and_judge_two_parts() -> None:
    split = batadal_windows_split(DATASETS_DIR)
    assert split.test.labels is not None
    assert int(split.test.labels.sum()) == 492
    result = evaluate_split(split, ["pca"], "pot", seed=7)
    report = result.reports[0]
    assert report.events == 7
    assert 0.0 <= report.s_score <= 1.0 and 0.0 <= report.far <= 1.0
    parts = result.run_reports["pca"]
    assert sum(part.events for part in parts.values()) == 7
    assert split.held_back == (list(parts)[1],)
