"""The `ensemble` option of torch detectors: k networks from consecutive seeds, their standardised errors
averaged."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from plantwatch.adapters.detectors import EpochReport, GruForecasterDetector, TorchDetector, build_detector
from plantwatch.domain.errors import InvalidInputError, ModelIntegrityError
from tests.contract.synthetic import FEATURES, normal_series, with_anomalies

TINY = {"window": 4, "hidden": 8, "epochs": 3, "device": "cpu"}


@pytest.fixture(scope="module")
def train_values() -> np.ndarray:
    return normal_series(400, seed=21)


@pytest.fixture(scope="module")
def ensemble(train_values: np.ndarray) -> TorchDetector:
    detector = build_detector("gru", seed=5, ensemble=3, **TINY).fit(train_values, FEATURES)
    assert isinstance(detector, TorchDetector)
    return detector


def _weights(network: torch.nn.Module) -> list[torch.Tensor]:
    return [tensor.detach().clone() for tensor in network.state_dict().values()]


@pytest.mark.parametrize("member", [0, 1, 2])
def test_member_k_is_the_single_network_of_seed_plus_k(
    ensemble: TorchDetector, train_values: np.ndarray, member: int
) -> None:
    single = build_detector("gru", seed=5 + member, ensemble=1, **TINY).fit(train_values, FEATURES)
    assert isinstance(single, TorchDetector)
    for ours, theirs in zip(_weights(ensemble.networks[member]), _weights(single.networks[0]), strict=True):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=0)


def test_errors_are_the_mean_of_each_members_standardised_errors(ensemble: TorchDetector) -> None:
    windows = ensemble._windows(ensemble._scale(with_anomalies(120, seed=22, start=400).values))
    assert ensemble.member_usual_error_ is not None
    assert ensemble.member_usual_error_.shape == (3, len(FEATURES))
    per_member = [ensemble._network_errors(network, windows) for network in ensemble.networks]
    standardised = [
        errors / usual for (errors, _), usual in zip(per_member, ensemble.member_usual_error_, strict=True)
    ]
    errors, expected = ensemble._window_errors(windows)
    np.testing.assert_allclose(errors, np.mean(standardised, axis=0), rtol=1e-12)
    np.testing.assert_allclose(expected, np.mean([e for _, e in per_member], axis=0), rtol=1e-12)
    # the members really differ: otherwise the average would reduce nothing
    assert not np.allclose(per_member[0][0], per_member[1][0])


def test_training_history_names_every_member(ensemble: TorchDetector) -> None:
    members = ensemble.training_history["ensemble_members"]
    assert len(members) == 3
    assert all(member["epochs_run"] >= 1 for member in members)


def test_ensemble_below_one_is_refused_by_name() -> None:
    with pytest.raises(InvalidInputError, match="ensemble must be at least 1") as raised:
        build_detector("gru", ensemble=0)
    assert raised.value.field == "ensemble"


def test_a_missing_member_weights_file_is_an_integrity_error(ensemble: TorchDetector, tmp_path: Path) -> None:
    ensemble.save(tmp_path)
    (tmp_path / "weights-2.pt").unlink()
    with pytest.raises(ModelIntegrityError, match=r"weights-2\.pt"):
        GruForecasterDetector.load(tmp_path)


def test_missing_member_usual_errors_are_an_integrity_error(ensemble: TorchDetector, tmp_path: Path) -> None:
    ensemble.save(tmp_path)
    state_file = tmp_path / "detector.json"
    state = json.loads(state_file.read_text())
    del state["member_usual_error"]
    state_file.write_text(json.dumps(state))
    with pytest.raises(ModelIntegrityError, match="member_usual_error"):
        GruForecasterDetector.load(tmp_path)


def test_a_single_network_saves_no_member_errors(train_values: np.ndarray, tmp_path: Path) -> None:
    single = build_detector("gru", seed=5, ensemble=1, **TINY).fit(train_values, FEATURES)
    single.save(tmp_path)
    assert "member_usual_error" not in json.loads((tmp_path / "detector.json").read_text())
    assert sorted(path.name for path in tmp_path.glob("*.pt")) == ["weights.pt"]


def test_a_model_saved_before_ensembles_loads_as_one_network(
    train_values: np.ndarray, tmp_path: Path
) -> None:
    single = build_detector("gru", seed=5, ensemble=1, **TINY).fit(train_values, FEATURES)
    single.save(tmp_path)
    state_file = tmp_path / "detector.json"
    state = json.loads(state_file.read_text())
    del state["hyper_params"]["ensemble"]
    state_file.write_text(json.dumps(state))
    loaded = GruForecasterDetector.load(tmp_path)
    assert loaded.config.ensemble == 1
    values = with_anomalies(60, seed=23, start=400).values
    np.testing.assert_array_equal(loaded.score(values), single.score(values))


def test_progress_reports_name_the_ensemble_member(train_values: np.ndarray) -> None:
    reports: list[EpochReport] = []
    build_detector("gru", seed=5, ensemble=2, on_epoch=reports.append, **TINY).fit(train_values, FEATURES)
    assert {(report.member, report.members) for report in reports} == {(0, 2), (1, 2)}
