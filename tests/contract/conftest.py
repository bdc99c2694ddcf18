"""Fixtures of the detector contract suite: one small fitted detector per catalog entry, shared by tests."""

from typing import Any

import numpy as np
import pytest
import torch

from plantwatch.adapters.detectors import DETECTORS, WindowDetector, build_detector
from tests.contract.synthetic import FEATURES, SyntheticSeries, normal_series, with_anomalies

# Tiny models: the whole suite trains every detector twice on two shared cores.
SMALL_HYPER: dict[str, dict[str, Any]] = {
    "lstm_ae": {"window": 8, "hidden": 16, "epochs": 12, "patience": 3, "device": "cpu"},
    "gru": {"window": 8, "hidden": 16, "epochs": 12, "patience": 3, "ensemble": 1, "device": "cpu"},
    "vae": {"window": 8, "hidden": 32, "latent": 4, "epochs": 25, "patience": 4, "device": "cpu"},
    "pca": {"window": 4},
    "robust_z": {},
    "iforest": {},
    "hbos": {},
    "fusion": {},
}
# Cases beyond each catalog entry's defaults that must keep the contract too: case -> (catalog name, hyper).
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "gru-ensemble": ("gru", {**SMALL_HYPER["gru"], "ensemble": 2}),
}
CASES: dict[str, tuple[str, dict[str, Any]]] = {
    **{name: (name, hyper) for name, hyper in SMALL_HYPER.items()},
    **VARIANTS,
}
TRAIN_ROWS = 1200
TEST_ROWS = 640


def build_small(case: str, seed: int = 3) -> WindowDetector:
    name, hyper = CASES[case]
    return build_detector(name, seed=seed, **hyper)


def fit_small(case: str, values: np.ndarray, seed: int = 3) -> WindowDetector:
    torch.set_num_threads(1)
    return build_small(case, seed).fit(values, FEATURES)


@pytest.fixture(scope="session")
def train_values() -> np.ndarray:
    return normal_series(TRAIN_ROWS, seed=11)


@pytest.fixture(scope="session")
def test_series() -> SyntheticSeries:
    # continues the training phase so the test data are the same process, later in time
    return with_anomalies(TEST_ROWS, seed=12, start=TRAIN_ROWS)


@pytest.fixture(scope="session", params=sorted(DETECTORS) + sorted(VARIANTS))
def detector_case(request: pytest.FixtureRequest) -> str:
    """A catalog entry, or one of its VARIANTS."""
    return str(request.param)


@pytest.fixture(scope="session")
def detector_name(detector_case: str) -> str:
    return CASES[detector_case][0]


@pytest.fixture(scope="session")
def fitted(detector_case: str, train_values: np.ndarray) -> WindowDetector:
    """The case fitted once per session (tests must not change it)."""
    return fit_small(detector_case, train_values)
