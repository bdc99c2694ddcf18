"""PCA in the way of multivariate statistical process control: Hotelling's T² inside the principal subspace
plus Q (SPE, the reconstruction error) outside it, of scaled windows. No torch.

Q alone misses a shift that moves the readings along the correlations the model learned (a sustained level
shift of correlated features reconstructs well and scored 0.6, never alarming); T² alone misses a reading
that breaks those correlations. The combined index of Yue & Qin (2001), phi = T²/tau² + Q/delta², sees both.
Here tau² and delta² are the means of T² and Q on the normal training windows, so both halves weigh the
same and phi is about 2 on normal data. Per-feature contributions are the complete decomposition of phi
(Alcala & Qin 2009): phi = ||M x||² with M = P diag(1/sqrt(lambda)) P^T / tau + (I - P P^T) / delta, and a
feature's share is the squared entries of M x that belong to it, so the contributions add up to phi and the
root cause names the feature that moved, inside or outside the subspace.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.decomposition import PCA

from plantwatch.adapters.detectors.base import DetectorConfig, WindowDetector
from plantwatch.domain.errors import InvalidInputError, ModelIntegrityError

COMPONENTS_FILE = "pca_components.npy"
CENTER_FILE = "pca_mean.npy"
VARIANCES_FILE = "pca_variances.npy"
SCALES_FILE = "pca_scales.npy"
STATISTICS = ("t2q", "q", "t2")
# A component with a variance below this share of the largest one is numerical noise: T² would divide by ~0.
MIN_VARIANCE_SHARE = 1e-8


@dataclass
class PcaConfig(DetectorConfig):
    window: int = 4
    # an int keeps that many components; a fraction in (0, 1) keeps enough to explain that share of variance
    n_components: float = 0.9
    # "t2q": T² and Q combined (MSPC); "q": reconstruction error only (the earlier baseline); "t2": T² only
    statistic: str = "t2q"


class PcaDetector(WindowDetector):
    """Score = T² and Q of the flattened window, combined and split per feature (see the module docstring)."""

    name = "pca"
    Config = PcaConfig
    config: PcaConfig

    def __init__(self, device: str | None = None, **hyper: Any) -> None:
        super().__init__(device=device, **hyper)
        self.components_: np.ndarray | None = None
        self.center_: np.ndarray | None = None
        # variance of each kept component on the training windows, then tau² and delta² (see the docstring)
        self.variances_: np.ndarray | None = None
        self.scales_: np.ndarray | None = None

    def _check_config(self) -> None:
        super()._check_config()
        if self.config.n_components <= 0:
            raise InvalidInputError("n_components must be positive", field="n_components")
        if self.config.statistic not in STATISTICS:
            raise InvalidInputError(
                f"statistic must be one of {', '.join(STATISTICS)}, got {self.config.statistic!r}",
                field="statistic",
            )

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
        # keeping every component reconstructs anything perfectly and would score nothing
        kept = min(len(pca.components_), n_inputs - 1)
        variances = pca.explained_variance_[:kept].astype(np.float64)
        kept = max(1, int((variances > variances[0] * MIN_VARIANCE_SHARE).sum()))
        self.components_ = pca.components_[:kept].astype(np.float64)
        self.center_ = pca.mean_.astype(np.float64)
        self.variances_ = variances[:kept]
        inside, residual = self._statistic_vectors(flat)
        # tau² and delta²: the mean T² and Q of the training windows, so each half is about 1 on normal data
        self.scales_ = np.sqrt(
            np.maximum([(inside**2).sum(axis=1).mean(), (residual**2).sum(axis=1).mean()], 1e-12)
        )
        self.training_history = {
            "n_components": kept,
            "explained_variance": float(pca.explained_variance_ratio_[:kept].sum()),
            "train_windows": len(windows),
        }

    def _statistic_vectors(self, flat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per flattened window: the T² vector P^T diag(1/sqrt(lambda)) P x (its squared norm is T²) and the
        residual x - P^T P x (its squared norm is Q), x centred."""
        assert self.components_ is not None and self.center_ is not None and self.variances_ is not None
        centred = flat - self.center_
        projected = centred @ self.components_.T
        inside = (projected / np.sqrt(self.variances_)) @ self.components_
        reconstruction = projected @ self.components_
        return inside, centred - reconstruction

    def _window_errors(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        assert self.center_ is not None
        flat = windows.reshape(len(windows), -1)
        inside, residual = self._statistic_vectors(flat)
        statistic = self.config.statistic
        assert self.scales_ is not None
        tau, delta = self.scales_
        combined = np.zeros_like(flat)
        if statistic in ("t2q", "t2"):
            combined = combined + inside / tau
        if statistic in ("t2q", "q"):
            combined = combined + residual / delta
        reconstruction = (flat - residual).reshape(windows.shape)
        return self._weighted_error((combined**2).reshape(windows.shape)), reconstruction[:, -1, :]

    def _save_model(self, directory: Path) -> None:
        assert self.components_ is not None and self.center_ is not None
        assert self.variances_ is not None and self.scales_ is not None
        np.save(directory / COMPONENTS_FILE, self.components_, allow_pickle=False)
        np.save(directory / CENTER_FILE, self.center_, allow_pickle=False)
        np.save(directory / VARIANCES_FILE, self.variances_, allow_pickle=False)
        np.save(directory / SCALES_FILE, self.scales_, allow_pickle=False)

    def _load_model(self, directory: Path) -> None:
        try:
            self.components_ = np.load(directory / COMPONENTS_FILE, allow_pickle=False)
            self.center_ = np.load(directory / CENTER_FILE, allow_pickle=False)
            self.variances_ = np.load(directory / VARIANCES_FILE, allow_pickle=False)
            self.scales_ = np.load(directory / SCALES_FILE, allow_pickle=False)
        except (FileNotFoundError, ValueError) as error:
            raise ModelIntegrityError(f"{directory}: PCA arrays cannot be read: {error}") from None
        expected_inputs = self.model_window * len(self.feature_names)
        if (
            self.components_.ndim != 2
            or self.components_.shape[1] != expected_inputs
            or self.variances_.shape != (len(self.components_),)
            or self.scales_.shape != (2,)
        ):
            raise ModelIntegrityError(
                f"{directory}: PCA components do not fit window x features = {expected_inputs}"
            )
