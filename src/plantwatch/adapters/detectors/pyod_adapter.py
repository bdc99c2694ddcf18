"""PyOD detectors behind plantwatch's Detector interface, through one small adapter.

PyOD gives one anomaly score per row; plantwatch needs per-feature contributions (the root cause) that add up
to the score and a score of about 1 on normal data. The adapter
- feeds PyOD the flattened scaled window;
- takes the PyOD score above its lowest training score as the window's excess, and splits it between features
  by occlusion (a standard model-agnostic attribution): how far the score falls when that feature's readings
  are replaced by their training median;
- adds each feature's squared distance outside the range seen in training. Tree and histogram models
  saturate outside that range (a reading of 1e300 looks no worse to them than one just past the maximum);
  this term keeps such a reading finite and far above anything normal, and names the feature.

Only models whose score of a row does not depend on the other rows scored with it are registered: ECOD and
COPOD re-estimate their distributions on the training rows plus the scored batch, so a reading would score
differently alone and in a batch, which the streaming contract forbids.

PyOD models are pickled objects; plantwatch stores no pickle. The adapter saves the (capped, evenly spaced)
training windows as .npy and refits on load: both registered models are deterministic for a given seed.
"""

from abc import abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from pyod.models.base import BaseDetector
from pyod.models.hbos import HBOS
from pyod.models.iforest import IForest

from plantwatch.adapters.detectors.base import DetectorConfig, WindowDetector
from plantwatch.domain.errors import InvalidInputError, ModelIntegrityError

TRAINING_FILE = "pyod_training_windows.npy"


@dataclass
class PyodConfig(DetectorConfig):
    window: int = 1
    last_step_weight: float = 1.0
    # PyOD models are fitted on at most this many windows (evenly spaced): enough for trees and histograms,
    # and what is stored for the refit on load
    max_train_windows: int = 5_000


class PyodDetector(WindowDetector):
    """Adapter base: a subclass names its PyOD model in `_build_model`."""

    Config: ClassVar[type[DetectorConfig]] = PyodConfig
    config: PyodConfig

    def __init__(self, device: str | None = None, **hyper: Any) -> None:
        super().__init__(device=device, **hyper)
        self.model: BaseDetector | None = None
        self.training_windows_: np.ndarray | None = None
        self.median_: np.ndarray | None = None
        self.low_: np.ndarray | None = None
        self.high_: np.ndarray | None = None
        self.score_floor_: float = 0.0

    @abstractmethod
    def _build_model(self) -> BaseDetector:
        """A fresh, unfitted PyOD model, seeded from the config where it is random."""

    def _fit_model(self, windows: np.ndarray) -> None:
        flat = windows.reshape(len(windows), -1)
        self.training_windows_ = np.ascontiguousarray(flat)
        self.model = self._build_model().fit(flat)
        self.median_ = np.median(flat, axis=0)
        self.low_, self.high_ = flat.min(axis=0), flat.max(axis=0)
        self.score_floor_ = float(np.min(self.model.decision_function(flat)))
        self.training_history = {"train_windows": len(flat)}

    def _window_errors(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.model is None or self.median_ is None or self.low_ is None or self.high_ is None:
            raise InvalidInputError(f"{self.name} detector is not fitted yet", field="detector")
        n_windows, window, n_features = windows.shape
        flat = windows.reshape(n_windows, -1)
        excess = np.maximum(self.model.decision_function(flat) - self.score_floor_, 0.0)
        drops = np.empty((n_windows, n_features))
        median = self.median_.reshape(window, n_features)
        for feature in range(n_features):
            occluded = windows.copy()
            occluded[:, :, feature] = median[:, feature]
            drops[:, feature] = excess - np.maximum(
                self.model.decision_function(occluded.reshape(n_windows, -1)) - self.score_floor_, 0.0
            )
        drops = np.maximum(drops, 0.0)
        total = drops.sum(axis=1, keepdims=True)
        # where no single feature explains the score (a joint anomaly), it is shared evenly
        shares = np.where(total > 0, drops / np.where(total > 0, total, 1.0), 1.0 / n_features)
        outside = np.maximum(flat - self.high_, 0.0) + np.maximum(self.low_ - flat, 0.0)
        out_of_range = self._weighted_error((outside**2).reshape(windows.shape))
        errors = excess[:, None] * shares + out_of_range
        expected = np.broadcast_to(median[-1], (n_windows, n_features)).copy()
        return errors, expected

    def _save_model(self, directory: Path) -> None:
        assert self.training_windows_ is not None
        np.save(directory / TRAINING_FILE, self.training_windows_, allow_pickle=False)

    def _load_model(self, directory: Path) -> None:
        try:
            flat = np.load(directory / TRAINING_FILE, allow_pickle=False)
        except (FileNotFoundError, ValueError) as error:
            raise ModelIntegrityError(f"{directory}: PyOD training windows cannot be read: {error}") from None
        if flat.ndim != 2 or flat.shape[1] != self.model_window * len(self.feature_names):
            raise ModelIntegrityError(f"{directory}: PyOD training windows do not fit window x features")
        self._fit_model(flat.reshape(len(flat), self.model_window, len(self.feature_names)))


class IsolationForestDetector(PyodDetector):
    """PyOD's isolation forest (Liu et al. 2008): readings that few random splits isolate are anomalous."""

    name = "iforest"

    def _build_model(self) -> BaseDetector:
        return IForest(n_estimators=100, random_state=self.config.seed, n_jobs=1)


class HistogramDetector(PyodDetector):
    """PyOD's HBOS (Goldstein & Dengel 2012): sum over features of -log of the training histogram density;
    fast and per-feature, a strong univariate baseline."""

    name = "hbos"

    def _build_model(self) -> BaseDetector:
        return HBOS(n_bins=20)
