"""The file model registry: versions, checksums, feature checks, and detectors that come back identical."""

import json
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
import torch

from plantwatch.adapters.detectors import WindowDetector, build_detector
from plantwatch.adapters.registry import FileModelRegistry, verify_features
from plantwatch.domain.errors import (
    FeatureMismatchError,
    InvalidInputError,
    ModelIntegrityError,
    NotFoundError,
)
from plantwatch.domain.modules import Module
from plantwatch.domain.ports import ModelCard, ModelRegistry
from tests.contract.synthetic import FEATURES, normal_series, with_anomalies


@pytest.fixture(scope="module")
def pca() -> WindowDetector:
    return build_detector("pca", window=3).fit(normal_series(600, seed=1), FEATURES)


def card_for(detector: WindowDetector, module: Module = Module.MACHINE, threshold: float = 4.2) -> ModelCard:
    return ModelCard(
        module=module,
        model_name=detector.name,
        version="",
        feature_names=list(detector.feature_names),
        window=detector.window,
        threshold=threshold,
        threshold_method="pot",
        data_hash="ab" * 32,
        training_source="synthetic",
        created_at=datetime(2024, 5, 1, 12, 30, 15, 123456),
        metrics={"epochs_run": 3, "threshold": threshold, "quantiles": [1.0, 2.0]},
    )


def test_file_registry_is_a_model_registry(tmp_path: Path) -> None:
    registry: ModelRegistry = FileModelRegistry(tmp_path)
    assert registry.list_cards() == []


def test_save_gives_increasing_versions_and_load_gives_the_latest(
    tmp_path: Path, pca: WindowDetector
) -> None:
    registry = FileModelRegistry(tmp_path)
    first = registry.save(pca, card_for(pca, threshold=1.0))
    second = registry.save(pca, card_for(pca, threshold=2.0))
    assert (first.version, second.version) == ("v0001", "v0002")
    assert registry.versions(Module.MACHINE, "pca") == ["v0001", "v0002"]
    assert registry.load(Module.MACHINE, "pca").card == second
    assert registry.load(Module.MACHINE, "pca", "v0001").card == first
    assert (tmp_path / "machine" / "pca" / "v0002" / "manifest.json").is_file()
    assert not [p for p in (tmp_path / "machine" / "pca").iterdir() if p.name.startswith(".")]


def test_versions_sort_by_number_past_9999(tmp_path: Path, pca: WindowDetector) -> None:
    registry = FileModelRegistry(tmp_path)
    registry.save(pca, card_for(pca))
    (tmp_path / "machine" / "pca" / "v0001").rename(tmp_path / "machine" / "pca" / "v9999")
    assert registry.save(pca, card_for(pca)).version == "v10000"
    assert registry.versions(Module.MACHINE, "pca") == ["v9999", "v10000"]


def test_loaded_model_scores_like_the_saved_one(tmp_path: Path, pca: WindowDetector) -> None:
    registry = FileModelRegistry(tmp_path)
    card = registry.save(pca, card_for(pca))
    loaded = registry.load(Module.MACHINE, "pca")
    assert loaded.card == card
    assert loaded.card.created_at == datetime(2024, 5, 1, 12, 30, 15, 123456)
    test = with_anomalies(300, seed=2).values
    np.testing.assert_array_equal(loaded.detector.score(test), pca.score(test))


def test_torch_detector_round_trips_through_the_registry(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    gru = build_detector("gru", window=6, hidden=8, epochs=2, ensemble=2, device="cpu").fit(
        normal_series(300, 3), FEATURES
    )
    registry = FileModelRegistry(tmp_path)
    registry.save(gru, card_for(gru, module=Module.ENERGY))
    loaded = registry.load(Module.ENERGY, "gru")
    test = normal_series(100, seed=4)
    np.testing.assert_array_equal(loaded.detector.score(test), gru.score(test))
    manifest = json.loads((tmp_path / "energy" / "gru" / "v0001" / "manifest.json").read_text())
    # every network of the ensemble travels with the version
    assert set(manifest["files"]) == {"card.json", "detector.json", "weights.pt", "weights-1.pt"}


def test_tampered_file_fails_the_checksum(tmp_path: Path, pca: WindowDetector) -> None:
    registry = FileModelRegistry(tmp_path)
    registry.save(pca, card_for(pca))
    components = tmp_path / "machine" / "pca" / "v0001" / "pca_components.npy"
    data = bytearray(components.read_bytes())
    data[-1] ^= 0xFF
    components.write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError, match=r"pca_components\.npy: sha256"):
        registry.load(Module.MACHINE, "pca")


def test_edited_card_fails_the_checksum(tmp_path: Path, pca: WindowDetector) -> None:
    registry = FileModelRegistry(tmp_path)
    registry.save(pca, card_for(pca))
    card_path = tmp_path / "machine" / "pca" / "v0001" / "card.json"
    card_path.write_text(card_path.read_text().replace('"threshold": 4.2', '"threshold": 400.0', 1))
    with pytest.raises(ModelIntegrityError, match=r"card\.json"):
        registry.load(Module.MACHINE, "pca")


@pytest.mark.parametrize("change", ["delete_manifest", "delete_file", "add_file"])
def test_missing_or_unlisted_files_fail_the_check(tmp_path: Path, pca: WindowDetector, change: str) -> None:
    registry = FileModelRegistry(tmp_path)
    registry.save(pca, card_for(pca))
    version_dir = tmp_path / "machine" / "pca" / "v0001"
    if change == "delete_manifest":
        (version_dir / "manifest.json").unlink()
    elif change == "delete_file":
        (version_dir / "pca_mean.npy").unlink()
    else:
        (version_dir / "extra.bin").write_bytes(b"x")
    with pytest.raises(ModelIntegrityError):
        registry.load(Module.MACHINE, "pca")


def test_unknown_model_or_version_is_not_found(tmp_path: Path, pca: WindowDetector) -> None:
    registry = FileModelRegistry(tmp_path)
    with pytest.raises(NotFoundError, match="no 'pca' model for the machine module"):
        registry.load(Module.MACHINE, "pca")
    registry.save(pca, card_for(pca))
    with pytest.raises(NotFoundError, match="no version 'v0042'"):
        registry.load(Module.MACHINE, "pca", "v0042")


def test_list_cards_filters_by_module(tmp_path: Path, pca: WindowDetector) -> None:
    registry = FileModelRegistry(tmp_path)
    registry.save(pca, card_for(pca, module=Module.MACHINE))
    registry.save(pca, card_for(pca, module=Module.CYBER))
    registry.save(pca, card_for(pca, module=Module.CYBER))
    # modules in their declared order, then model name, then version
    assert [(c.module, c.version) for c in registry.list_cards()] == [
        (Module.MACHINE, "v0001"),
        (Module.CYBER, "v0001"),
        (Module.CYBER, "v0002"),
    ]
    assert [c.module for c in registry.list_cards(Module.MACHINE)] == [Module.MACHINE]


def test_save_refuses_a_card_whose_features_differ_from_the_detector(
    tmp_path: Path, pca: WindowDetector
) -> None:
    card = replace(card_for(pca), feature_names=[*FEATURES[:3], "humidity"])
    with pytest.raises(FeatureMismatchError, match="humidity"):
        FileModelRegistry(tmp_path).save(pca, card)


def test_save_refuses_a_detector_outside_the_catalog(tmp_path: Path, pca: WindowDetector) -> None:
    with pytest.raises(InvalidInputError, match="not in the registry catalog"):
        FileModelRegistry(tmp_path, detectors={}).save(pca, card_for(pca))


def test_verify_features_names_missing_and_extra_features(pca: WindowDetector) -> None:
    card = card_for(pca)
    verify_features(card, reversed(FEATURES))  # order does not matter: readings are aligned by name
    with pytest.raises(
        FeatureMismatchError, match=r"missing features \['vibration'\]; unexpected features \['rpm'\]"
    ):
        verify_features(card, ["flow", "pressure", "temperature", "rpm"])
