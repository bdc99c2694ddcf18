"""The score options of every window detector: max aggregation and adaptive per-feature normalisation over a
trailing window (a drifting sensor is normalised back; an anomaly in progress is not)."""

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from plantwatch.adapters.detectors import WindowDetector, base, build_detector
from plantwatch.domain.errors import InvalidInputError, ModelIntegrityError
from tests.contract.synthetic import FEATURES, normal_series, with_anomalies

ADAPTIVE = {"adaptive_window": 96, "adaptive_guard": 12}
VARIANTS: dict[str, dict[str, Any]] = {
    "pca max": {"window": 4, "aggregation": "max"},
    "pca adaptive": {"window": 4, **ADAPTIVE},
    "pca adaptive max": {"window": 4, **ADAPTIVE, "aggregation": "max"},
    "gru adaptive max": {
        "window": 8,
        "hidden": 8,
        "epochs": 3,
        "device": "cpu",
        **ADAPTIVE,
        "aggregation": "max",
    },
}


def fitted(variant: str) -> WindowDetector:
    torch.set_num_threads(1)
    model = variant.split()[0]
    return build_detector(model, seed=3, **VARIANTS[variant]).fit(normal_series(1200, seed=11), FEATURES)


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def variant_detector(request: pytest.FixtureRequest) -> WindowDetector:
    return fitted(str(request.param))


def test_window_covers_the_model_window_guard_and_reference() -> None:
    detector = build_detector("pca", window=4, adaptive_window=48, adaptive_guard=12)
    assert detector.model_window == 4
    assert (
        detector.window == 4 + 12 + 48 - 1
    )  # reference of reading t: t - 59 ... t - 12, each a 4-reading window
    assert build_detector("pca", window=4, aggregation="max").window == 4


def test_options_keep_the_streaming_contract(variant_detector: WindowDetector, tmp_path: Path) -> None:
    values = with_anomalies(640, seed=12, start=1200).values
    detector = variant_detector
    scores = detector.score(values)
    head = detector.window - 1
    assert np.isnan(scores[:head]).all() and np.isfinite(scores[head:]).all()
    # a score depends on the last `window` readings only: alone it is the same as in the batch
    for t in (head, 300, len(values) - 1):
        alone = detector.score(values[t - head : t + 1])
        np.testing.assert_allclose(alone[-1], scores[t], rtol=1e-6)
    continued = detector.score(values[100:], history=values[:100])
    np.testing.assert_allclose(continued, scores[100:], rtol=1e-9)
    # contributions still split the score between the features
    contributions = detector.explain(values).contributions
    np.testing.assert_allclose(contributions[head:].mean(axis=1), scores[head:])
    detector.save(tmp_path)
    np.testing.assert_array_equal(type(detector).load(tmp_path).score(values), scores)


def test_max_aggregation_scores_the_feature_furthest_off_and_keeps_its_ranking() -> None:
    rng = np.random.default_rng(1)
    names = [f"s{i}" for i in range(40)]
    train, test = rng.normal(size=(3000, 40)), rng.normal(size=(200, 40))
    test[150:, 7] += 6.0  # one sensor of forty walks off
    mean = build_detector("robust_z").fit(train, names)
    peak = build_detector("robust_z", aggregation="max").fit(train, names)
    mean_contributions, peak_contributions = (
        mean.explain(test).contributions,
        peak.explain(test).contributions,
    )
    np.testing.assert_allclose(peak.score(test), mean_contributions.max(axis=1))
    np.testing.assert_array_equal(peak_contributions.argsort(axis=1), mean_contributions.argsort(axis=1))
    # diluted by 39 quiet sensors the mean barely moves; the max stands out from normal readings
    assert mean.score(test)[150:].min() < 2.0 < 10.0 < peak.score(test)[150:].min()


def readings(drift: float = 0.0, shift_rows: slice | None = None) -> np.ndarray:
    """Normal test readings; with `drift`, the temperature sensor reads that many degrees high (a calibration
    drift: it no longer fits the other sensors); with `shift_rows`, a sustained level shift of the flow."""
    values = normal_series(900, seed=12, start=1200)
    values[:, 2] += drift
    if shift_rows is not None:
        values[shift_rows, 0] += 3.0
    return values


def test_adaptive_normalisation_takes_a_drifting_sensor_back_to_its_usual_level() -> None:
    train = normal_series(1200, seed=11)
    plain = build_detector("pca", window=4).fit(train, FEATURES)
    adaptive = build_detector("pca", window=4, **ADAPTIVE).fit(train, FEATURES)
    values = readings(drift=4.0)
    settled = slice(adaptive.window, None)
    assert np.median(plain.score(values)[settled]) > 4.0
    assert np.median(adaptive.score(values)[settled]) < 1.5
    # on data like the training data it changes next to nothing: it only removes a rise
    normal = readings()
    np.testing.assert_allclose(
        np.median(adaptive.score(normal)[settled]), np.median(plain.score(normal)[settled]), rtol=0.1
    )


def test_an_anomaly_in_progress_does_not_normalise_itself_away() -> None:
    train = normal_series(1200, seed=11)
    adaptive = build_detector("pca", window=4, **ADAPTIVE).fit(train, FEATURES)
    plain = build_detector("pca", window=4).fit(train, FEATURES)
    # 60 readings: at its end the shift fills half of the 96-reading reference (its first 48 readings)
    values = readings(shift_rows=slice(600, 660))
    late = slice(650, 660)
    kept = np.median(adaptive.score(values)[late])
    assert kept > 0.9 * np.median(plain.score(values)[late]) > 10.0
    # the same detector without leaving the readings in alarm out divides the shift by itself
    adaptive.exclude_ratio_ = np.inf
    assert np.median(adaptive.score(values)[late]) < 0.6 * kept


@pytest.mark.parametrize(
    ("hyper", "field"),
    [
        ({"aggregation": "median"}, "aggregation"),
        ({"adaptive_window": -1}, "adaptive_window"),
        ({"adaptive_window": 24, "adaptive_guard": 0}, "adaptive_guard"),
        ({"adaptive_exclude_quantile": 0.0}, "adaptive_exclude_quantile"),
    ],
)
def test_bad_options_are_named(hyper: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInputError) as raised:
        build_detector("pca", **hyper)
    assert raised.value.field == field


@pytest.mark.parametrize("option", [{"aggregation": "max"}, {"adaptive_window": 24}])
def test_fusion_refuses_options_its_members_would_ignore(option: dict[str, Any]) -> None:
    with pytest.raises(InvalidInputError) as raised:
        build_detector("fusion", **option)
    assert raised.value.field == next(iter(option))


def test_a_model_saved_before_the_options_loads_and_an_adaptive_one_needs_its_reference(
    tmp_path: Path,
) -> None:
    train = normal_series(600, seed=11)
    detector = build_detector("pca", window=4).fit(train, FEATURES)
    detector.save(tmp_path)
    state_file = tmp_path / "detector.json"
    state = json.loads(state_file.read_text())
    del state["adaptive_reference"]
    for option in ("aggregation", "adaptive_window", "adaptive_guard", "adaptive_exclude_quantile"):
        del state["hyper_params"][option]
    state_file.write_text(json.dumps(state))
    loaded = type(detector).load(tmp_path)
    assert loaded.config.aggregation == "mean"
    np.testing.assert_array_equal(loaded.score(train), detector.score(train))
    state["hyper_params"]["adaptive_window"] = 24
    state_file.write_text(json.dumps(state))
    with pytest.raises(ModelIntegrityError, match="adaptive reference is missing"):
        type(detector).load(tmp_path)


def test_adaptive_scores_do_not_depend_on_the_block_size(monkeypatch: pytest.MonkeyPatch) -> None:
    detector = build_detector("pca", window=4, **ADAPTIVE).fit(normal_series(1200, seed=11), FEATURES)
    values = readings(drift=4.0, shift_rows=slice(600, 640))
    whole = detector.score(values)
    monkeypatch.setattr(base, "ADAPTIVE_BLOCK_VALUES", 1000)  # 2 rows a block
    np.testing.assert_array_equal(detector.score(values), whole)
