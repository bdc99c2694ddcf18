"""`plantwatch run --no-serve`: trains what is missing, scores held-out data into the store, idempotently."""

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from plantwatch.bootstrap import build_container
from plantwatch.domain.modules import Module
from plantwatch.domain.ports import AnomalyQuery
from plantwatch.entrypoints.cli.app import app
from plantwatch.settings import Settings, get_settings

torch.set_num_threads(1)
EVERYTHING = AnomalyQuery(limit=100_000)


@pytest.fixture
def quick_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    monkeypatch.setenv("PLANTWATCH_DATABASE_URL", f"sqlite:///{tmp_path / 'store.db'}")
    monkeypatch.setenv("PLANTWATCH_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("PLANTWATCH_DATASETS_DIR", str(tmp_path / "no-real-data"))
    for module in Module:  # PCA keeps this test fast; the torch detectors are trained by their own tests
        monkeypatch.setenv(f"PLANTWATCH_{module.value.upper()}_MODEL", "pca")
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


def test_run_without_serving_trains_scores_and_is_idempotent(quick_settings: Settings):
    runner = CliRunner()
    first = runner.invoke(app, ["run", "--no-serve"])
    assert first.exit_code == 0, first.output
    container = build_container(quick_settings)
    try:
        assert set(container.models) == set(Module)
        assert all(card.version == "v0001" for card in container.cards())
        counts = {module: len(container.repository.list_scores(module, limit=100_000)) for module in Module}
        assert all(count > 0 for count in counts.values())
        anomalies = container.repository.find(EVERYTHING).items
        assert anomalies, "run stored no anomaly to show"
    finally:
        container.close()

    second = runner.invoke(app, ["run", "--no-serve"])
    assert second.exit_code == 0, second.output
    container = build_container(quick_settings)
    try:
        # the registry was reused (no new version) and re-scoring stored nothing twice
        assert all(card.version == "v0001" for card in container.cards())
        assert {m: len(container.repository.list_scores(m, limit=100_000)) for m in Module} == counts
        assert len(container.repository.find(EVERYTHING).items) == len(anomalies)
    finally:
        container.close()
