"""Generated samples: deterministic, shipped files up to date, round trip through the real loaders, and
anomalies placed where the training split expects them."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from plantwatch.adapters.datasets import (
    ENERGY_FEATURES,
    MACHINE_FEATURES,
    SAMPLE_FILES,
    SWAT_TAGS,
    fault_classes,
    generate_energy,
    generate_machine,
    generate_sample,
    generate_swat,
    load_sample,
    root_causes_path,
    sample_path,
    write_sample,
)
from plantwatch.domain.modules import Module
from plantwatch.entrypoints.cli.samples import samples

FEATURES = {Module.ENERGY: ENERGY_FEATURES, Module.MACHINE: MACHINE_FEATURES, Module.CYBER: SWAT_TAGS}


@pytest.fixture(scope="module")
def fresh_samples(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out_dir = tmp_path_factory.mktemp("samples")
    samples(out_dir=out_dir, seed=7)
    return out_dir


@pytest.mark.parametrize("module", list(Module))
def test_committed_samples_equal_freshly_generated_ones(
    module: Module, fresh_samples: Path, repo_root: Path
) -> None:
    committed = sample_path(module, repo_root / "datasets")
    fresh = fresh_samples / SAMPLE_FILES[module]
    assert committed.read_bytes() == fresh.read_bytes(), f"{committed} is stale: run `plantwatch samples`"
    assert root_causes_path(committed).read_bytes() == root_causes_path(fresh).read_bytes()
    assert committed.stat().st_size < 400_000


@pytest.mark.parametrize("module", list(Module))
def test_round_trip_through_the_real_loader(module: Module, tmp_path: Path) -> None:
    generated = generate_sample(module, seed=3)
    path = tmp_path / SAMPLE_FILES[module]
    write_sample(generated, path)
    loaded = load_sample(module, path)

    assert loaded.feature_names == FEATURES[module]
    pd.testing.assert_frame_equal(loaded.values, generated.values, check_freq=False)
    assert loaded.labels is not None and generated.labels is not None
    np.testing.assert_array_equal(loaded.labels.to_numpy(), generated.labels.to_numpy())
    assert loaded.root_causes is not None and generated.root_causes is not None
    assert loaded.root_causes.tolist() == generated.root_causes.tolist()


def test_same_seed_same_data_other_seed_other_data() -> None:
    first, again, other = generate_machine(seed=1), generate_machine(seed=1), generate_machine(seed=2)
    pd.testing.assert_frame_equal(first.values, again.values)
    assert not np.allclose(first.to_numpy(), other.to_numpy())


@pytest.mark.parametrize("generate", [generate_energy, generate_machine, generate_swat])
def test_anomalies_are_labelled_events_after_a_clean_prefix(generate) -> None:  # type: ignore[no-untyped-def]
    frame = generate(seed=11)
    assert frame.labels is not None and frame.root_causes is not None
    labels = frame.labels.to_numpy()
    causes = frame.root_causes.to_numpy()

    assert 0.04 <= labels.mean() <= 0.11
    assert labels[: int(len(frame) * 0.6)].sum() == 0
    # Root causes are exactly the anomalous rows, and name real features.
    assert ((causes != "") == (labels == 1)).all()
    assert set(causes[causes != ""]) <= set(frame.feature_names)
    # Events are contiguous runs of one feature, at least 8 rows long.
    starts = np.flatnonzero(np.diff(np.r_[0, labels]) == 1)
    stops = np.flatnonzero(np.diff(np.r_[labels, 0]) == -1) + 1
    assert len(starts) >= 3
    for start, stop in zip(starts, stops, strict=True):
        assert stop - start >= 8
        assert len(set(causes[start:stop])) == 1


@pytest.mark.parametrize("generate", [generate_energy, generate_machine])
def test_each_event_corrupts_only_its_root_cause_feature(generate) -> None:  # type: ignore[no-untyped-def]
    frame, clean = generate(seed=5), generate(seed=5, inject=False)
    assert frame.labels is not None and frame.root_causes is not None
    assert clean.labels is not None and clean.labels.sum() == 0
    changed = (frame.values - clean.values).abs()
    for feature in frame.feature_names:
        is_cause = (frame.root_causes == feature).to_numpy()
        # Nothing else moves; the cause moves far more than its usual step from one reading to the next.
        assert (changed.loc[~is_cause, feature] == 0).all(), feature
        if is_cause.any():
            usual_step = clean.values[feature].diff().abs().median()
            assert changed.loc[is_cause, feature].max() > 5 * usual_step, feature


def test_a_cyber_attack_holds_its_tag_at_the_attackers_value() -> None:
    frame, clean = generate_swat(seed=5), generate_swat(seed=5, inject=False)
    assert frame.root_causes is not None
    first_attack = int(np.argmax((frame.root_causes != "").to_numpy()))
    pd.testing.assert_frame_equal(frame.values.iloc[:first_attack], clean.values.iloc[:first_attack])
    for tag in set(frame.root_causes) - {""}:
        attacked = frame.values.loc[(frame.root_causes == tag).to_numpy(), tag]
        assert attacked.nunique() == 1, tag


def test_energy_normal_data_has_the_plants_habits() -> None:
    frame = generate_energy()
    values = frame.values
    assert set(values["load_type"].unique()) == {0.0, 1.0, 2.0}
    by_load = values.groupby("load_type")["usage_kwh"].median()
    assert by_load[0.0] < 10 < by_load[1.0] < by_load[2.0]
    index = pd.DatetimeIndex(values.index)
    sunday_after_midnight = (index.dayofweek == 6) & (index.hour >= 1)
    assert (values.loc[sunday_after_midnight, "load_type"] == 0).all()
    clean = values[frame.labels == 0] if frame.labels is not None else values
    assert clean["usage_kwh"].corr(clean["co2_tco2"]) > 0.95
    assert clean["usage_kwh"].corr(clean["lagging_reactive_power_kvarh"]) > 0.8


def test_swat_process_cycles_and_actuators_take_their_states() -> None:
    values = generate_swat().values
    for tag in SWAT_TAGS:
        if tag.startswith(("P", "MV", "UV")) and not tag.startswith("PIT"):
            assert set(values[tag].unique()) <= {0.0, 1.0, 2.0}, tag
    assert (values["MV101"].diff().abs() > 0).sum() >= 6
    assert values["LIT101"].between(0, 1100).all()
    on = values["P101"] == 2
    assert values.loc[on, "FIT201"].mean() > 2 > values.loc[~on, "FIT201"].mean()


def test_machine_file_carries_fault_classes(tmp_path: Path) -> None:
    frame = generate_machine()
    path = tmp_path / "machine.csv"
    write_sample(frame, path)
    classes = fault_classes(path)
    assert frame.root_causes is not None
    assert (classes[frame.root_causes == "vibration_mm_s"] == 1).all()
    assert (classes[frame.root_causes == "temperature_c"] == 2).all()
    assert (classes[frame.root_causes == ""] == 0).all()
