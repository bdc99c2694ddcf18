"""Adapters: data-set files, detectors (PyTorch), model files, storage, broker, API, CLI."""
