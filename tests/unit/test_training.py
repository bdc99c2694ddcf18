"""Training use case and `plantwatch train`: fit on normal training rows, calibrate on normal validation
windows, leave the held-out rows alone, store a loadable model."""

import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
import typer
from typer.testing import CliRunner, Result

from plantwatch.adapters.datasets.training_data import find_real_dataset, load_training_frame
from plantwatch.adapters.detectors import build_detector
from plantwatch.adapters.registry import FileModelRegistry
from plantwatch.domain.errors import InvalidInputError
from plantwatch.domain.frames import SensorFrame
from plantwatch.domain.modules import Module
from plantwatch.domain.thresholds import PotThresholder, QuantileThresholder
from plantwatch.entrypoints.cli.train import train
from plantwatch.services.training import data_hash, normal_window_mask, train_model
from plantwatch.settings import Settings, get_settings
from tests.contract.synthetic import FEATURES, normal_series, sensor_frame, with_anomalies


def labelled_frame(n_rows: int = 1500, seed: int = 5) -> SensorFrame:
    series = with_anomalies(n_rows, seed=seed, n_events=10)
    return sensor_frame(series.values, series.labels)


def test_train_model_stores_a_calibrated_model(tmp_path: Path) -> None:
    frame = labelled_frame()
    registry = FileModelRegistry(tmp_path)
    card = train_model(
        frame, build_detector("pca", window=4), PotThresholder(), registry, validation_fraction=0.3
    )

    assert card.version == "v0001"
    assert card.model_name == "pca"
    assert card.module is Module.MACHINE
    assert card.feature_names == FEATURES
    assert card.window == 4
    assert card.threshold_method == "pot"
    assert card.training_source == "synthetic"
    fitting, _ = frame.split(0.7)
    assert card.metrics["fit_rows"] == len(fitting.normal_only())
    assert card.data_hash == data_hash(fitting.normal_only().to_numpy(), FEATURES)
    # POT with risk 1e-3: few normal validation windows pass the threshold
    assert card.metrics["validation_false_alarm_rate"] < 0.02
    assert card.threshold > card.metrics["validation_score_p99"] * 0.9

    loaded = registry.load(Module.MACHINE, "pca")
    assert loaded.card == card
    test = with_anomalies(600, seed=9)
    flagged = loaded.detector.score(test.values) > card.threshold
    assert flagged[test.labels == 1].mean() > 5 * flagged[test.labels == 0].mean()


def test_rows_after_the_training_part_are_never_used(tmp_path: Path) -> None:
    frame = labelled_frame()
    changed_tail = frame.values.copy()
    changed_tail.iloc[1200:] *= 50.0
    other = sensor_frame(
        changed_tail.to_numpy(), frame.labels.to_numpy() if frame.labels is not None else None
    )
    registry = FileModelRegistry(tmp_path)
    cards = [
        train_model(f, build_detector("pca"), QuantileThresholder(0.99), registry, train_fraction=0.8)
        for f in (frame, other)
    ]
    assert cards[0].data_hash == cards[1].data_hash
    assert cards[0].threshold == cards[1].threshold
    assert cards[0].metrics["train_until"] == str(frame.values.index[1199].isoformat())


def test_threshold_is_calibrated_on_normal_validation_windows_only(tmp_path: Path) -> None:
    values = normal_series(1500, seed=6)
    labels = np.zeros(1500)
    # a long, labelled fault inside the validation slice: it must not raise the threshold
    values[1300:1360, 1] += 8.0
    labels[1300:1360] = 1.0
    registry = FileModelRegistry(tmp_path)
    labelled = train_model(
        sensor_frame(values, labels), build_detector("pca"), QuantileThresholder(0.99), registry
    )
    unlabelled = train_model(
        sensor_frame(values, None), build_detector("pca"), QuantileThresholder(0.99), registry
    )
    assert unlabelled.threshold > 10 * labelled.threshold
    assert labelled.metrics["validation_normal_windows"] < unlabelled.metrics["validation_normal_windows"]


def test_normal_window_mask_needs_every_reading_of_the_window_normal() -> None:
    labels = np.array([0, 0, 0, 1, 0, 0, 0, 0], dtype=float)
    frame = sensor_frame(np.zeros((8, 4)), labels)
    assert normal_window_mask(frame, 3).tolist() == [False, False, True, False, False, False, True, True]
    assert normal_window_mask(sensor_frame(np.zeros((8, 4)), None), 3).all()


def test_torch_training_metrics_reach_the_card(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    detector = build_detector("gru", window=6, hidden=8, epochs=3, device="cpu")
    card = train_model(labelled_frame(900), detector, PotThresholder(), FileModelRegistry(tmp_path))
    assert card.metrics["epochs_run"] == 3
    assert card.metrics["best_val_loss"] > 0
    assert card.metrics["first_train_loss"] > card.metrics["best_train_loss"]
    assert card.metrics["training_seconds"] > 0


def test_too_little_validation_data_is_a_clear_error(tmp_path: Path) -> None:
    frame = sensor_frame(normal_series(200, seed=7), None)
    with pytest.raises(InvalidInputError, match="normal validation windows") as raised:
        train_model(frame, build_detector("pca"), QuantileThresholder(), FileModelRegistry(tmp_path), 0.1)
    assert raised.value.field == "validation_fraction"


def test_bad_fractions_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="train_fraction"):
        train_model(
            labelled_frame(), build_detector("pca"), PotThresholder(), FileModelRegistry(tmp_path), 0.2, 0
        )


# --- the CLI ------------------------------------------------------------------------------------------------


@pytest.fixture
def cli_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    monkeypatch.setenv("PLANTWATCH_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("PLANTWATCH_DATASETS_DIR", str(tmp_path / "datasets"))
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


def run_train(*args: str) -> Result:
    app = typer.Typer()
    app.command()(train)
    return CliRunner().invoke(app, list(args))


def test_cli_trains_and_registers_a_model(cli_settings: Settings, repo_root: Path) -> None:
    sample = repo_root / "datasets" / "samples" / "machine_sample.csv"
    result = run_train("machine", "--model", "pca", "--data", str(sample), "--threshold", "quantile")
    assert result.exit_code == 0, result.output
    assert "Trained machine/pca v0001" in result.output
    assert "quantile" in result.output
    card = FileModelRegistry(cli_settings.models_dir).load(Module.MACHINE, "pca").card
    assert card.training_source == "machine_sample.csv"
    assert f"{card.threshold:.4f}" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["boiler"], "unknown module 'boiler'"),
        (["energy", "--model", "transformer"], "unknown model 'transformer'"),
    ],
)
def test_cli_names_a_bad_module_or_model(cli_settings: Settings, args: list[str], message: str) -> None:
    result = run_train(*args)
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())


def test_cli_reports_bad_options_without_a_traceback(cli_settings: Settings, repo_root: Path) -> None:
    sample = repo_root / "datasets" / "samples" / "machine_sample.csv"
    result = run_train("machine", "--model", "pca", "--data", str(sample), "--epochs", "3")
    assert result.exit_code == 1
    assert "pca has no hyper-parameter(s) ['epochs']" in " ".join(result.output.split())


def test_training_data_falls_back_from_real_files_to_the_sample(
    cli_settings: Settings, repo_root: Path
) -> None:
    datasets = cli_settings.datasets_dir
    assert find_real_dataset(Module.MACHINE, datasets) is None
    assert (
        load_training_frame(Module.MACHINE, None, datasets, cli_settings.seed).source == "machine_sample.csv"
    )

    datasets.mkdir(parents=True)
    shutil.copy(repo_root / "datasets" / "samples" / "energy_sample.csv", datasets / "a_energy.csv")
    shutil.copy(repo_root / "datasets" / "samples" / "machine_sample.csv", datasets / "b_plant.csv")
    assert find_real_dataset(Module.MACHINE, datasets) == datasets / "b_plant.csv"
    assert load_training_frame(Module.MACHINE, None, datasets, cli_settings.seed).source == "b_plant.csv"
