"""Detectors behind the domain's Detector port: LSTM autoencoder, GRU forecaster, VAE and a PCA baseline."""

from plantwatch.infrastructure.detectors.base import DetectorConfig, WindowDetector
from plantwatch.infrastructure.detectors.catalog import DETECTORS, build_detector, detector_class
from plantwatch.infrastructure.detectors.gru import GruForecasterDetector
from plantwatch.infrastructure.detectors.lstm_ae import LstmAutoencoderDetector
from plantwatch.infrastructure.detectors.pca import PcaConfig, PcaDetector
from plantwatch.infrastructure.detectors.torch_base import (
    EpochReport,
    TorchConfig,
    TorchDetector,
    resolve_device,
    seed_everything,
)
from plantwatch.infrastructure.detectors.vae import VaeConfig, VaeDetector

__all__ = [
    "DETECTORS",
    "DetectorConfig",
    "EpochReport",
    "GruForecasterDetector",
    "LstmAutoencoderDetector",
    "PcaConfig",
    "PcaDetector",
    "TorchConfig",
    "TorchDetector",
    "VaeConfig",
    "VaeDetector",
    "WindowDetector",
    "build_detector",
    "detector_class",
    "resolve_device",
    "seed_everything",
]
