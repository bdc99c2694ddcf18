"""The detectors plantwatch can train and serve, by name, with small CPU-friendly defaults."""

from typing import Any

from plantwatch.adapters.detectors.base import WindowDetector
from plantwatch.adapters.detectors.fusion import FusionDetector
from plantwatch.adapters.detectors.gru import GruForecasterDetector
from plantwatch.adapters.detectors.lstm_ae import LstmAutoencoderDetector
from plantwatch.adapters.detectors.pca import PcaDetector
from plantwatch.adapters.detectors.pyod_adapter import HistogramDetector, IsolationForestDetector
from plantwatch.adapters.detectors.robust_z import RobustZScoreDetector
from plantwatch.adapters.detectors.vae import VaeDetector
from plantwatch.domain.errors import InvalidInputError

DETECTORS: dict[str, type[WindowDetector]] = {
    detector.name: detector
    for detector in (
        LstmAutoencoderDetector,
        GruForecasterDetector,
        VaeDetector,
        PcaDetector,
        RobustZScoreDetector,
        IsolationForestDetector,
        HistogramDetector,
        FusionDetector,
    )
}


def detector_class(name: str) -> type[WindowDetector]:
    try:
        return DETECTORS[name]
    except KeyError:
        raise InvalidInputError(
            f"unknown model {name!r}; expected one of: {', '.join(DETECTORS)}", field="model"
        ) from None


def build_detector(name: str, **hyper: Any) -> WindowDetector:
    """A fresh detector by catalog name. `hyper` overrides its defaults (window, hidden, epochs, seed, ...);
    torch detectors also take `device` and an `on_epoch` progress callback."""
    return detector_class(name)(**hyper)
