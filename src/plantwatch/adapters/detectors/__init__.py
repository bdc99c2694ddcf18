"""Detectors behind the domain's Detector port: LSTM autoencoder, GRU forecaster, VAE and a PCA baseline."""

from plantwatch.adapters.detectors.base import DetectorConfig, WindowDetector
from plantwatch.adapters.detectors.catalog import DETECTORS, build_detector, detector_class
from plantwatch.adapters.detectors.gru import GruForecasterDetector
from plantwatch.adapters.detectors.lstm_ae import LstmAutoencoderDetector
from plantwatch.adapters.detectors.pca import PcaConfig, PcaDetector
from plantwatch.adapters.detectors.torch_base import (
    EpochReport,
    TorchConfig,
    TorchDetector,
    resolve_device,
    seed_everything,
)
from plantwatch.adapters.detectors.vae import VaeConfig, VaeDetector

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
