"""PCA baseline: reconstruction error of scaled windows from their leading principal components. No torch."""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.decomposition import PCA

from plantwatch.adapters.detectors.base import DetectorConfig, WindowDetector
from plantwatch.domain.errors import InvalidInputError, ModelIntegrityError

COMPONENTS_FILE = "pca_components.npy"
CENTER_FILE = "pca_mean.npy"


@dataclass
class PcaConfig(DetectorConfig):
    window: int = 4
    # an int keeps that many components; a fraction in (0, 1) keeps enough to explain that share of variance
    n_components: float = 0.9


class PcaDetector(WindowDetector):
    """Score = error of reconstructing the flattened window from its projection on the principal subspace."""

    name = "pca"
    Config = PcaConfig
    config: PcaConfig

    def __init__(self, device: str | None = None, **hyper: Any) -> None:
        super().__init__(device=device, **hyper)
        self.components_: np.ndarray | None = None
        self.center_: np.ndarray | None = None

    def _check_config(self) -> None:
        super()._check_config()
        if self.config.n_components <= 0:
            raise InvalidInputError("n_components must be positive", field="n_components")

    def _fit_model(self, windows: np.ndarray) -> None:
        flat = windows.reshape(len(windows), -1)
        n_inputs = flat.shape[1]
        if n_inputs < 2:
            raise InvalidInputError(
                "pca needs window * features >= 2 to have anything to reconstruct", "window"
            )
        wanted = self.config.n_components
        n_components: int | float = int(wanted) if wanted >= 1 else float(wanted)
        pca = PCA(n_components=n_components, svd_solver="full", random_state=self.config.seed).fit(flat)
        components = pca.components_
        # keeping every component reconstructs anything perfectly and would score nothing
        self.components_ = components[: min(len(components), n_inputs - 1)].astype(np.float64)
        self.center_ = pca.mean_.astype(np.float64)
        self.training_history = {
            "n_components": len(self.components_),
            "explained_variance": float(pca.explained_variance_ratio_[: len(self.components_)].sum()),
            "train_windows": len(windows),
        }

    def _window_errors(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        assert self.components_ is not None and self.center_ is not None
        flat = windows.reshape(len(windows), -1)
        projected = (flat - self.center_) @ self.components_.T
        reconstruction = (projected @ self.components_ + self.center_).reshape(windows.shape)
        return self._weighted_error((reconstruction - windows) ** 2), reconstruction[:, -1, :]

    def _save_model(self, directory: Path) -> None:
        assert self.components_ is not None and self.center_ is not None
        np.save(directory / COMPONENTS_FILE, self.components_, allow_pickle=False)
        np.save(directory / CENTER_FILE, self.center_, allow_pickle=False)

    def _load_model(self, directory: Path) -> None:
        try:
            self.components_ = np.load(directory / COMPONENTS_FILE, allow_pickle=False)
            self.center_ = np.load(directory / CENTER_FILE, allow_pickle=False)
        except (FileNotFoundError, ValueError) as error:
            raise ModelIntegrityError(f"{directory}: PCA arrays cannot be read: {error}") from None
        expected_inputs = self.window * len(self.feature_names)
        if self.components_.ndim != 2 or self.components_.shape[1] != expected_inputs:
            raise ModelIntegrityError(
                f"{directory}: PCA components do not fit window x features = {expected_inputs}"
            )
