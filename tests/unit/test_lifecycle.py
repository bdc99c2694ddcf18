"""Model stages: train registers a candidate (the first version serves at once), promotion behind the
false-alarm gate, rollback, the stage record stored atomically, and `plantwatch models`."""

import re
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from plantwatch.adapters.detectors import build_detector
from plantwatch.adapters.registry import FileModelRegistry
from plantwatch.domain.errors import NotFoundError, PromotionRefusedError
from plantwatch.domain.lifecycle import ModelStages, Stage
from plantwatch.domain.modules import Module
from plantwatch.domain.ports import TrainedModel
from plantwatch.domain.thresholds import QuantileThresholder
from plantwatch.entrypoints.cli.app import app
from plantwatch.services.lifecycle import (
    false_alarm_gate,
    list_versions,
    load_production,
    promote_version,
    rollback_production,
)
from plantwatch.services.training import train_model
from plantwatch.settings import Settings, get_settings
from tests.streaming_support import normal_frame

MODULE = Module.MACHINE
AT = datetime(2024, 6, 1, 12, 0)


def train(registry: FileModelRegistry, quantile: float = 0.995, seed: int = 1, **kwargs: object) -> str:
    """Train a PCA on generated normal readings; a low `quantile` gives a threshold with many false alarms."""
    frame = normal_frame(1500, module=MODULE, seed=seed)
    card = train_model(
        frame,
        build_detector("pca", window=4),
        QuantileThresholder(quantile),
        registry,
        **kwargs,  # type: ignore[arg-type]
    )
    return card.version


@pytest.fixture
def registry(tmp_path: Path) -> FileModelRegistry:
    return FileModelRegistry(tmp_path / "models")


# --- stages as pure values ----------------------------------------------------------------------------------


def test_promote_archives_the_replaced_version_and_rollback_restores_it() -> None:
    stages = ModelStages(versions=("v0001", "v0002", "v0003")).promote("v0001", AT)
    assert [stages.stage_of(v) for v in stages.versions] == [
        Stage.PRODUCTION,
        Stage.CANDIDATE,
        Stage.CANDIDATE,
    ]
    stages = stages.promote("v0003", AT)
    assert stages.production == "v0003"
    assert stages.stage_of("v0001") is Stage.ARCHIVED and stages.candidates() == ["v0002"]
    back = stages.rollback(AT)
    assert back.production == "v0001"
    assert back.stage_of("v0003") is Stage.ARCHIVED
    assert [c.action for c in back.changes] == ["promote", "promote", "rollback"]
    with pytest.raises(PromotionRefusedError, match="nothing to roll back to"):
        back.rollback(AT)
    with pytest.raises(PromotionRefusedError, match="already production"):
        back.promote("v0001", AT)
    with pytest.raises(NotFoundError, match="v0009"):
        back.promote("v0009", AT)


def test_rollback_skips_a_version_deleted_since_it_served() -> None:
    stages = ModelStages(versions=("v0001", "v0002", "v0003"))
    stages = stages.promote("v0001", AT).promote("v0002", AT).promote("v0003", AT)
    without_v2 = ModelStages(
        versions=("v0001", "v0003"), production_history=stages.production_history, archived=stages.archived
    )
    assert without_v2.rollback(AT).production == "v0001"


# --- registering what train makes ---------------------------------------------------------------------------


def test_first_version_serves_and_later_ones_wait_as_candidates(registry: FileModelRegistry) -> None:
    first, second = train(registry), train(registry, seed=2)
    stages = registry.stages(MODULE, "pca")
    assert stages.recorded and stages.production == first
    assert stages.stage_of(second) is Stage.CANDIDATE
    assert load_production(registry, MODULE, "pca").card.version == first
    # registry.load without a version is still "the latest", whatever the stages say
    assert registry.load(MODULE, "pca").card.version == second


def test_a_registry_from_before_stages_keeps_serving_its_latest_version(registry: FileModelRegistry) -> None:
    first = train(registry)
    (registry.model_dir(MODULE, "pca") / "stages.json").unlink()  # as before stages existed
    assert registry.stages(MODULE, "pca").production == first and not registry.stages(MODULE, "pca").recorded
    new = train(registry, seed=3)
    stages = registry.stages(MODULE, "pca")
    assert stages.recorded and stages.production == first
    assert stages.stage_of(new) is Stage.CANDIDATE
    assert [c.action for c in stages.changes] == ["adopt"]


def test_without_promote_first_even_the_first_version_waits(registry: FileModelRegistry) -> None:
    version = train(registry, promote_first=False)
    assert registry.stages(MODULE, "pca").production is None
    with pytest.raises(Exception, match="no machine/pca version is in production"):
        load_production(registry, MODULE, "pca")
    assert promote_version(registry, MODULE, "pca", version).gate is None
    assert registry.stages(MODULE, "pca").production == version


def test_stage_and_held_out_files_are_written_beside_the_versions(registry: FileModelRegistry) -> None:
    version = train(registry)
    model_dir = registry.model_dir(MODULE, "pca")
    assert sorted(p.name for p in model_dir.iterdir()) == ["stages.json", version]
    loaded = registry.load(MODULE, "pca", version)
    assert loaded.profile is not None and loaded.profile.feature_names == loaded.card.feature_names
    assert loaded.held_out is not None
    assert loaded.held_out.values.shape == (loaded.held_out.history + len(loaded.held_out.normal), 3)
    assert loaded.held_out.history == 3  # window - 1 readings complete the first held-out window


# --- the promotion gate -------------------------------------------------------------------------------------


def test_a_candidate_worse_on_false_alarms_is_refused_without_force(registry: FileModelRegistry) -> None:
    production = train(registry)
    noisy = train(registry, quantile=0.6, seed=2)
    with pytest.raises(PromotionRefusedError, match=r"more false alarms .*--force") as refused:
        promote_version(registry, MODULE, "pca", noisy)
    rates = re.search(r"candidate false-alarm rate ([0-9.]+) vs production ([0-9.]+)", str(refused.value))
    assert rates is not None and float(rates[1]) > 0.2 > 0.05 > float(rates[2])
    assert registry.stages(MODULE, "pca").production == production

    forced = promote_version(registry, MODULE, "pca", noisy, force=True)
    assert forced.forced and forced.gate is not None and not forced.gate.passed
    stages = registry.stages(MODULE, "pca")
    assert stages.production == noisy and stages.stage_of(production) is Stage.ARCHIVED
    assert stages.changes[-1].forced


def test_a_candidate_with_no_more_false_alarms_passes_the_gate(registry: FileModelRegistry) -> None:
    production = train(registry)
    # the same detector on the same data with a stricter threshold: it alarms where production does, or less
    retrained = train(registry, quantile=0.999)
    result = promote_version(registry, MODULE, "pca", retrained)
    assert result.previous == production and not result.forced
    assert result.gate is not None and result.gate.passed
    # both scored on the held-out windows of both models: each model kept about 300
    assert result.gate.windows > 500
    assert (
        result.gate.candidate_false_alarm_rate is not None and result.gate.candidate_false_alarm_rate < 0.05
    )
    assert rollback_production(registry, MODULE, "pca").production == production


def test_the_gate_refuses_models_with_different_features(registry: FileModelRegistry) -> None:
    train(registry)
    production = registry.load(MODULE, "pca")
    features = ["level", "pressure", "temperature"]
    detector = build_detector("pca", window=4).fit(normal_frame(600, module=MODULE).to_numpy(), features)
    candidate = TrainedModel(detector=detector, card=replace(production.card, feature_names=features))
    gate = false_alarm_gate(candidate, production)
    assert not gate.passed and "features differ" in gate.reason and "level" in gate.reason


def test_promotion_is_refused_when_production_changed_since_the_gate_ran(registry: FileModelRegistry) -> None:
    train(registry)
    second, third = train(registry, seed=2), train(registry, seed=3)
    stale_registry = FileModelRegistry(registry.root)
    original_change = stale_registry.change_stages

    def promote_someone_else_first(module, model_name, change):  # type: ignore[no-untyped-def]
        registry.change_stages(module, model_name, lambda s: s.promote(third, AT))
        return original_change(module, model_name, change)

    stale_registry.change_stages = promote_someone_else_first  # type: ignore[method-assign]
    with pytest.raises(PromotionRefusedError, match="changed to v0003 meanwhile"):
        promote_version(stale_registry, MODULE, "pca", second)


def test_concurrent_stage_changes_are_never_lost(registry: FileModelRegistry) -> None:
    first, second = train(registry), train(registry, seed=2)
    threads_count, each = 4, 10

    def flip() -> None:
        for _ in range(each):
            registry.change_stages(
                MODULE,
                "pca",
                lambda s: s.promote(second if s.production == first else first, AT),
            )

    threads = [threading.Thread(target=flip) for _ in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # every read-modify-write saw the one before it: one promotion per call, on top of the first
    assert len(registry.stages(MODULE, "pca").production_history) == 1 + threads_count * each
    assert not [p for p in registry.model_dir(MODULE, "pca").iterdir() if p.name.startswith(".")]


def test_list_versions_gives_each_version_its_stage(registry: FileModelRegistry) -> None:
    train(registry)
    train(registry, seed=2)
    views = list_versions(registry, MODULE)
    assert [(v.card.version, v.stage) for v in views] == [
        ("v0001", Stage.PRODUCTION),
        ("v0002", Stage.CANDIDATE),
    ]
    assert np.isclose(views[0].card.threshold, registry.load(MODULE, "pca", "v0001").card.threshold)


# --- plantwatch models --------------------------------------------------------------------------------------


@pytest.fixture
def cli_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    monkeypatch.setenv("PLANTWATCH_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("PLANTWATCH_MACHINE_MODEL", "pca")
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


def run_cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})
    return result.exit_code, " ".join(result.output.split())


def test_models_commands_list_promote_and_roll_back(cli_settings: Settings) -> None:
    registry = FileModelRegistry(cli_settings.models_dir)
    code, output = run_cli("models", "list")
    assert code == 0 and "no model versions" in output
    train(registry)
    noisy = train(registry, quantile=0.6, seed=2)

    code, output = run_cli("models", "list", "machine")
    assert code == 0
    assert re.search(r"v0001 │ production", output) and re.search(rf"{noisy} │ candidate", output)

    code, output = run_cli("models", "promote", "machine", noisy)
    assert code == 1 and "more false alarms" in output and "--force" in output
    assert registry.stages(MODULE, "pca").production == "v0001"

    code, output = run_cli("models", "promote", "machine", noisy, "--force")
    assert code == 0 and "v0002 is production (forced past the gate); v0001 archived" in output
    assert "McNemar" in output

    code, output = run_cli("models", "rollback", "machine")
    assert code == 0 and "v0001 is production again; v0002 archived" in output
    code, output = run_cli("models", "rollback", "machine")
    assert code == 1 and "nothing to roll back to" in output

    code, output = run_cli("models", "promote", "machine", "v0042")
    assert code == 1 and "no version 'v0042'" in output
    code, output = run_cli("models", "promote", "boiler", "v0001")
    assert code == 2 and "unknown module 'boiler'" in output
