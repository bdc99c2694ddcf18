"""Where trained models live: the checksummed file registry."""

from plantwatch.adapters.registry.file_registry import FileModelRegistry, sha256_file, verify_features

__all__ = ["FileModelRegistry", "sha256_file", "verify_features"]
