"""Robust univariate baseline: each feature's distance from its training median in MADs (a robust z-score).

No model of how features relate: a fault that moves one sensor away from where it usually sits is found, one
that only breaks a correlation between sensors is not. It is the reference a multivariate model has to beat,
and often hard to beat on slow single-sensor faults (a plain z-score found 4/4 failures on a machine
temperature series where every multivariate model found 2/4). Median and MAD instead of mean and standard
deviation, so the anomalies and spikes a "normal" training period still holds do not stretch the scale.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from plantwatch.adapters.detectors.base import DetectorConfig, WindowDetector
from plantwatch.domain.errors import InvalidInputError, ModelIntegrityError

MEDIAN_FILE = "robust_median.npy"
SCALE_FILE = "robust_scale.npy"
# MAD of a normal distribution times this is its standard deviation
MAD_TO_STD = 1.4826


@dataclass
class RobustZConfig(DetectorConfig):
    # window > 1 averages the squared z-scores over the window (a longer window smooths single spikes away)
    window: int = 1
    last_step_weight: float = 1.0


class RobustZScoreDetector(WindowDetector):
    """Score = mean over features of the squared robust z-score, each divided by its usual value."""

    name = "robust_z"
    Config = RobustZConfig
    config: RobustZConfig

    def __init__(self, device: str | None = None, **hyper: Any) -> None:
        super().__init__(device=device, **hyper)
        self.median_: np.ndarray | None = None
        self.scale_: np.ndarray | None = None

    def _fit_model(self, windows: np.ndarray) -> None:
        readings = windows[:, -1, :]
        self.median_ = np.median(readings, axis=0)
        mad = np.median(np.abs(readings - self.median_), axis=0) * MAD_TO_STD
        # a sensor stuck on one value for most of training has MAD 0: fall back on its standard deviation,
        # then on 1 (StandardScaler's unit), so any move of it still scores finite
        std = readings.std(axis=0)
        self.scale_ = np.where(mad > 1e-9, mad, np.where(std > 1e-9, std, 1.0))
        self.training_history = {"train_windows": len(windows)}

    def _window_errors(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.median_ is None or self.scale_ is None:
            raise InvalidInputError(f"{self.name} detector is not fitted yet", field="detector")
        squared = ((windows - self.median_) / self.scale_) ** 2
        expected = np.broadcast_to(self.median_, (len(windows), len(self.median_))).copy()
        return self._weighted_error(squared), expected

    def _save_model(self, directory: Path) -> None:
        assert self.median_ is not None and self.scale_ is not None
        np.save(directory / MEDIAN_FILE, self.median_, allow_pickle=False)
        np.save(directory / SCALE_FILE, self.scale_, allow_pickle=False)

    def _load_model(self, directory: Path) -> None:
        try:
            self.median_ = np.load(directory / MEDIAN_FILE, allow_pickle=False)
            self.scale_ = np.load(directory / SCALE_FILE, allow_pickle=False)
        except (FileNotFoundError, ValueError) as error:
            raise ModelIntegrityError(f"{directory}: robust z-score arrays cannot be read: {error}") from None
        shape = (len(self.feature_names),)
        if self.median_.shape != shape or self.scale_.shape != shape:
            raise ModelIntegrityError(f"{directory}: robust z-score arrays do not fit the features")
