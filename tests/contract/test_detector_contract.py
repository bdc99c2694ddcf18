"""Every detector in the catalog keeps the Detector contract (in the style of river's estimator checks)."""

from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from plantwatch.adapters.detectors import (
    DETECTORS,
    TorchDetector,
    WindowDetector,
    build_detector,
    resolve_device,
)
from plantwatch.domain.errors import FeatureMismatchError, InvalidInputError
from plantwatch.domain.ports import Detector
from plantwatch.domain.root_cause import rank_root_causes
from plantwatch.settings import get_settings
from tests.contract.conftest import SMALL_HYPER, build_small, fit_small
from tests.contract.synthetic import FEATURES, SyntheticSeries


def test_every_catalog_entry_is_a_detector(fitted: WindowDetector, detector_name: str) -> None:
    assert isinstance(fitted, Detector)
    assert fitted.name == detector_name
    assert DETECTORS[detector_name] is type(fitted)
    assert fitted.feature_names == FEATURES


def test_score_has_one_entry_per_reading_and_nan_before_the_first_full_window(
    fitted: WindowDetector, test_series: SyntheticSeries
) -> None:
    scores = fitted.score(test_series.values)
    assert scores.shape == (len(test_series.values),)
    assert np.isnan(scores[: fitted.window - 1]).all()
    assert np.isfinite(scores[fitted.window - 1 :]).all()
    assert (scores[fitted.window - 1 :] >= 0).all()


def test_fewer_readings_than_a_window_score_nan(fitted: WindowDetector, test_series: SyntheticSeries) -> None:
    short = test_series.values[: fitted.window - 1]
    assert np.isnan(fitted.score(short)).all()
    assert len(fitted.score(short)) == len(short)


def test_batch_score_equals_the_score_of_each_window_alone(
    fitted: WindowDetector, test_series: SyntheticSeries
) -> None:
    values = test_series.values
    scores = fitted.score(values)
    event_row = test_series.events[0].start + 2
    for t in (fitted.window - 1, fitted.window + 5, 200, event_row, len(values) - 1):
        alone = fitted.score(values[t - fitted.window + 1 : t + 1])
        np.testing.assert_allclose(alone[-1], scores[t], rtol=1e-5, atol=1e-5)


def test_history_completes_the_first_windows_and_gets_no_score(
    fitted: WindowDetector, test_series: SyntheticSeries
) -> None:
    values = test_series.values
    split = 50
    whole = fitted.score(values)
    continued = fitted.score(values[split:], history=values[:split])
    assert continued.shape == (len(values) - split,)
    np.testing.assert_allclose(continued, whole[split:], rtol=1e-9, atol=1e-12)
    explained = fitted.explain(values[split:], history=values[:split])
    whole_contributions = fitted.explain(values).contributions[split:]
    np.testing.assert_allclose(explained.contributions, whole_contributions, rtol=1e-9)
    # no history: the first window - 1 readings of the batch have no full window
    assert np.isnan(fitted.score(values[split:])[: fitted.window - 1]).all()


def test_same_seed_gives_the_same_model(
    fitted: WindowDetector, detector_case: str, train_values: np.ndarray, test_series: SyntheticSeries
) -> None:
    again = fit_small(detector_case, train_values)
    np.testing.assert_array_equal(again.score(test_series.values), fitted.score(test_series.values))


def test_save_then_load_gives_identical_scores_and_explanations(
    fitted: WindowDetector, test_series: SyntheticSeries, tmp_path: Path
) -> None:
    fitted.save(tmp_path)
    loaded = type(fitted).load(tmp_path)
    assert loaded.feature_names == fitted.feature_names
    assert loaded.window == fitted.window
    np.testing.assert_array_equal(loaded.score(test_series.values), fitted.score(test_series.values))
    before, after = fitted.explain(test_series.values), loaded.explain(test_series.values)
    np.testing.assert_array_equal(after.contributions, before.contributions)
    np.testing.assert_array_equal(after.expected, before.expected)


def test_saved_files_hold_no_pickled_objects(fitted: WindowDetector, tmp_path: Path) -> None:
    fitted.save(tmp_path)
    suffixes = {path.suffix for path in tmp_path.iterdir()}
    assert suffixes <= {".json", ".pt", ".npy"}
    if isinstance(fitted, TorchDetector):
        # weights_only=True refuses anything but tensors and plain containers (one file per ensemble member)
        weight_files = sorted(tmp_path.glob("*.pt"))
        assert len(weight_files) == fitted.config.ensemble
        for path in weight_files:
            state = torch.load(path, weights_only=True)
            assert all(isinstance(value, torch.Tensor) for value in state.values())


def test_explain_gives_per_feature_contributions_and_expected_values(
    fitted: WindowDetector, test_series: SyntheticSeries
) -> None:
    values = test_series.values
    explanation = fitted.explain(values)
    assert explanation.contributions.shape == values.shape
    assert explanation.expected.shape == values.shape
    head = fitted.window - 1
    assert np.isnan(explanation.contributions[:head]).all()
    assert np.isfinite(explanation.contributions[head:]).all()
    # the score is the mean contribution: contributions split the score between features
    np.testing.assert_allclose(explanation.contributions[head:].mean(axis=1), fitted.score(values)[head:])
    # expected values are in the data's own units: close to what normal readings read
    normal_rows = np.flatnonzero(test_series.labels == 0)
    normal_rows = normal_rows[normal_rows >= head + 20]
    error = np.abs(explanation.expected[normal_rows] - values[normal_rows]).mean(axis=0)
    assert (error < values.std(axis=0)).all(), error


def test_injected_anomalies_score_higher_than_normal_readings(
    fitted: WindowDetector, test_series: SyntheticSeries
) -> None:
    scores = fitted.score(test_series.values)
    scored = np.isfinite(scores)
    auc = roc_auc_score(test_series.labels[scored], scores[scored])
    assert auc > 0.8, f"{fitted.name} ROC-AUC {auc:.3f}"
    normal = np.median(scores[scored & (test_series.labels == 0)])
    anomalous = np.median(scores[scored & (test_series.labels == 1)])
    assert anomalous > 2 * normal


def test_absurdly_large_reading_gets_a_finite_score_far_above_normal(
    fitted: WindowDetector, test_series: SyntheticSeries
) -> None:
    values = test_series.values[:80].copy()
    normal_max = np.nanmax(fitted.score(values))
    values[-1, 0] = 1e300  # finite, but its squared error would overflow without clipping
    scores = fitted.score(values)
    explanation = fitted.explain(values)
    assert np.isfinite(scores[-1]) and scores[-1] > 1000 * normal_max
    assert np.isfinite(explanation.contributions[-1]).all()
    assert int(np.argmax(explanation.contributions[-1])) == 0


def test_normal_readings_score_about_one(fitted: WindowDetector, test_series: SyntheticSeries) -> None:
    scores = fitted.score(test_series.values)
    normal = np.median(scores[np.isfinite(scores) & (test_series.labels == 0)])
    assert 0.2 < normal < 5.0


def test_top_root_cause_is_the_feature_the_anomaly_was_put_on(
    fitted: WindowDetector, test_series: SyntheticSeries
) -> None:
    values = test_series.values
    scores = fitted.score(values)
    explanation = fitted.explain(values)
    hits = 0
    for event in test_series.events:
        t = event.start + int(np.nanargmax(scores[event.rows]))
        ranked = rank_root_causes(FEATURES, explanation.contributions[t], values[t], explanation.expected[t])
        hits += ranked[0].feature == event.feature
    assert hits / len(test_series.events) >= 0.75, f"{hits}/{len(test_series.events)} top-1 root causes right"


def test_training_reduced_the_loss(fitted: WindowDetector, train_values: np.ndarray) -> None:
    history = fitted.training_history
    if isinstance(fitted, TorchDetector):
        assert history["epochs_run"] >= 1
        assert history["best_train_loss"] < 0.5 * history["first_train_loss"]
        assert history["best_val_loss"] < history["train_loss"][0]
    elif "explained_variance" in history:
        assert history["explained_variance"] > 0.5
    else:  # no loss to fall: the statistics were fitted on every training window
        assert history["train_windows"] == len(train_values) - fitted.window + 1


def test_wrong_number_of_features_is_refused(fitted: WindowDetector, test_series: SyntheticSeries) -> None:
    with pytest.raises(FeatureMismatchError, match="expects 4"):
        fitted.score(test_series.values[:, :3])


def test_non_finite_input_names_the_row_and_feature(
    fitted: WindowDetector, test_series: SyntheticSeries
) -> None:
    values = test_series.values.copy()
    values[30, 2] = np.nan
    with pytest.raises(InvalidInputError, match="row 30, feature 'temperature'") as raised:
        fitted.score(values)
    assert raised.value.field == "temperature"


def test_scoring_before_fit_is_an_error(detector_case: str, test_series: SyntheticSeries) -> None:
    with pytest.raises(InvalidInputError, match="not fitted"):
        build_small(detector_case).score(test_series.values)


def test_unknown_hyper_parameter_is_named(detector_name: str) -> None:
    with pytest.raises(InvalidInputError, match="no_such_knob") as raised:
        build_detector(detector_name, no_such_knob=3)
    assert raised.value.field == "no_such_knob"


def test_unknown_detector_name_lists_the_catalog() -> None:
    with pytest.raises(InvalidInputError, match="lstm_ae"):
        build_detector("transformer")


def test_auto_device_is_cuda_when_available_else_cpu() -> None:
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device("cpu").type == "cpu"
    with pytest.raises(InvalidInputError, match="unknown torch device 'gpu0'"):
        resolve_device("gpu0")


def test_training_leaves_the_process_thread_setting_alone(train_values: np.ndarray) -> None:
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        build_detector("gru", window=4, hidden=4, epochs=1, device="cpu").fit(train_values[:200], FEATURES)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(previous)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", sorted(n for n, cls in DETECTORS.items() if issubclass(cls, TorchDetector)))
def test_a_model_trained_on_cuda_scores_the_same_on_cpu(
    name: str,
    train_values: np.ndarray,
    test_series: SyntheticSeries,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hyper = {**SMALL_HYPER[name], "device": "cuda"}
    on_gpu = build_detector(name, seed=3, **hyper).fit(train_values, FEATURES)
    again = build_detector(name, seed=3, **hyper).fit(train_values, FEATURES)
    scores = on_gpu.score(test_series.values)
    np.testing.assert_allclose(again.score(test_series.values), scores, rtol=1e-6)
    t = test_series.events[0].start + 2
    alone = on_gpu.score(test_series.values[t - on_gpu.window + 1 : t + 1])[-1]
    np.testing.assert_allclose(alone, scores[t], rtol=1e-5)

    on_gpu.save(tmp_path)
    monkeypatch.setenv("PLANTWATCH_DEVICE", "cpu")
    get_settings.cache_clear()
    try:
        on_cpu = type(on_gpu).load(tmp_path)
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
    assert isinstance(on_cpu, TorchDetector) and on_cpu.device.type == "cpu"
    np.testing.assert_allclose(on_cpu.score(test_series.values), scores, rtol=1e-6)
