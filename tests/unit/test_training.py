"""Training use case and `plantwatch train`: fit on normal training rows, calibrate on normal validation
windows, leave the held-out rows alone, store a loadable model."""

import json
import logging
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
from plantwatch.adapters.registry.file_registry import MANIFEST_FILE, sha256_file
from plantwatch.domain.alarms import AlarmRule, parse_alarm_rule, rule_of_card
from plantwatch.domain.errors import InvalidInputError
from plantwatch.domain.frames import SensorFrame
from plantwatch.domain.modules import Module
from plantwatch.domain.thresholds import (
    AlarmBudgetThresholder,
    PotThresholder,
    QuantileThresholder,
    alarm_runs,
)
from plantwatch.entrypoints.cli.train import train
from plantwatch.services.training import data_hash, normal_window_mask, readings_per_day, train_model
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


# --- the alarm rule and the alarm budget ---------------------------------------------------------------


def test_training_calibrates_the_alarm_rule_and_the_card_keeps_it(tmp_path: Path) -> None:
    registry = FileModelRegistry(tmp_path)
    card = train_model(
        labelled_frame(),
        build_detector("pca", window=4),
        QuantileThresholder(0.99),
        registry,
        alarm_rule=parse_alarm_rule("cusum:0.99+2of3"),
    )
    assert card.alarm_rule == "cusum:0.99+2of3"
    # the CUSUM's reference is the 99th percentile of the normal validation scores
    assert card.alarm_reference == pytest.approx(card.metrics["validation_score_p99"])
    # the threshold applies to the CUSUM statistic, which sits near zero on normal data, not to the score
    assert card.threshold < card.metrics["validation_score_p50"]
    assert card.metrics["validation_false_alarm_rate"] <= 0.02
    loaded = registry.load(Module.MACHINE, "pca").card
    assert loaded == card and loaded.alarm_reference == card.alarm_reference
    assert rule_of_card(loaded).reference == card.alarm_reference


def test_a_card_saved_before_alarm_rules_loads_with_the_plain_rule(tmp_path: Path) -> None:
    registry = FileModelRegistry(tmp_path)
    card = train_model(labelled_frame(), build_detector("pca"), QuantileThresholder(0.99), registry)
    card_file = tmp_path / "machine" / "pca" / card.version / "card.json"
    data = json.loads(card_file.read_text())
    del data["alarm_rule"], data["alarm_reference"]
    card_file.write_text(json.dumps(data))
    manifest_file = card_file.parent / MANIFEST_FILE
    manifest = json.loads(manifest_file.read_text())
    manifest["files"]["card.json"] = sha256_file(card_file)  # as an older version wrote it
    manifest_file.write_text(json.dumps(manifest))
    loaded = registry.load(Module.MACHINE, "pca").card
    assert (loaded.alarm_rule, loaded.alarm_reference) == ("none", None)
    assert rule_of_card(loaded) == AlarmRule()


def test_a_rule_with_a_minimum_gap_is_refused_for_serving(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="gap") as raised:
        train_model(
            labelled_frame(),
            build_detector("pca"),
            QuantileThresholder(),
            FileModelRegistry(tmp_path),
            alarm_rule=parse_alarm_rule("ewma:0.2+gap:12"),
        )
    assert raised.value.field == "alarm_rule"


def test_alarm_budget_keeps_the_rules_false_alarms_per_day_on_normal_validation_data(tmp_path: Path) -> None:
    frame = sensor_frame(normal_series(6000, seed=8), None)  # one reading a minute: 1440 a day
    assert readings_per_day(frame) == 1440.0
    registry = FileModelRegistry(tmp_path)
    card = train_model(
        frame,
        build_detector("pca", window=4),
        AlarmBudgetThresholder(alarms_per_day=2.0, readings_per_day=readings_per_day(frame)),
        registry,
        alarm_rule=parse_alarm_rule("ewma:0.2+2of3"),
    )
    assert card.threshold_method == "budget"
    fitting, validation = frame.split(0.8)
    model = registry.load(Module.MACHINE, "pca")
    scores = model.detector.score(validation.to_numpy(), history=fitting.to_numpy())
    alarms = rule_of_card(model.card).alarms(scores, model.card.threshold)
    days = len(validation) / 1440.0
    assert alarm_runs(alarms) <= 2.0 * days
    # the lowest threshold meeting the budget: a little lower and it is exceeded
    lower = rule_of_card(model.card).alarms(scores, model.card.threshold * 0.9)
    assert alarm_runs(lower) > 2.0 * days


def test_pot_on_a_short_calibration_set_falls_back_to_a_quantile_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    frame = sensor_frame(normal_series(400, seed=9), None)  # 80 validation scores: POT needs 110
    pot = PotThresholder(risk=1e-2)
    with caplog.at_level(logging.WARNING, logger="plantwatch.domain.thresholds"):
        card = train_model(frame, build_detector("pca"), pot, FileModelRegistry(tmp_path))
    assert pot.fell_back
    assert "falling back to the empirical 0.99 quantile" in caplog.text
    assert card.threshold_method == "pot"
    assert card.threshold <= card.metrics["validation_score_max"]


def test_cli_takes_an_alarm_rule_and_a_budget_and_the_module_default_otherwise(
    cli_settings: Settings, repo_root: Path
) -> None:
    sample = str(repo_root / "datasets" / "samples" / "machine_sample.csv")
    result = run_train(
        "machine", "--model", "pca", "--data", sample, "--threshold", "budget:3", "--alarm-rule", "ewma:0.1"
    )
    assert result.exit_code == 0, result.output
    card = FileModelRegistry(cli_settings.models_dir).load(Module.MACHINE, "pca").card
    assert (card.threshold_method, card.alarm_rule, card.alarm_reference) == ("budget", "ewma:0.1", None)
    assert "ewma:0.1" in result.output

    result = run_train("machine", "--model", "pca", "--data", sample)
    assert result.exit_code == 0, result.output
    card = FileModelRegistry(cli_settings.models_dir).load(Module.MACHINE, "pca", "v0002").card
    # docs/benchmarks.md's choice for the machine module: CUSUM at the 99th percentile, quantile 0.99
    assert (card.threshold_method, card.alarm_rule) == ("quantile", "cusum:0.99")
    assert card.alarm_reference is not None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--alarm-rule", "ewma:0.2+gap:12"], "cannot be applied live"),
        (["--alarm-rule", "ewma:fast"], "alarm rule part 'ewma:fast'"),
        (["--threshold", "budget:lots"], "'lots' is not a number"),
        (["--threshold", "median"], "unknown threshold method 'median'"),
    ],
)
def test_cli_names_a_bad_alarm_rule_or_threshold(
    cli_settings: Settings, repo_root: Path, args: list[str], message: str
) -> None:
    sample = str(repo_root / "datasets" / "samples" / "machine_sample.csv")
    result = run_train("machine", "--model", "pca", "--data", sample, *args)
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())
