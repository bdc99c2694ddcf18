"""The structure check behind train's noise warning, and what a model's card keeps of its module."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from plantwatch.adapters.detectors import PcaDetector
from plantwatch.adapters.modules import active_catalog
from plantwatch.adapters.registry import FileModelRegistry
from plantwatch.domain.errors import InvalidInputError
from plantwatch.domain.frames import SensorFrame
from plantwatch.domain.modules import Module
from plantwatch.domain.thresholds import build_thresholder
from plantwatch.services.conformance import changed_columns, check_codes
from plantwatch.services.structure import STRUCTURE_AUC_WARNING, structure_auc
from plantwatch.services.training import train_model


def _correlated(rows: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = np.cumsum(rng.normal(0, 1, rows))
    return np.column_stack([base, 2 * base + rng.normal(0, 0.1, rows), -base + rng.normal(0, 0.1, rows)])


def test_structure_auc_is_high_on_structured_data_and_about_half_on_noise() -> None:
    structured = _correlated(1200, 1)
    detector = PcaDetector().fit(structured[:800], ["a", "b", "c"])
    assert structure_auc(detector, structured[800:], history=structured[:800]) > 0.9
    noise = np.random.default_rng(2).uniform(size=(1200, 3))
    detector = PcaDetector().fit(noise[:800], ["a", "b", "c"])
    auc = structure_auc(detector, noise[800:], history=noise[:800])
    assert auc is not None and abs(auc - 0.5) < 0.1 and auc < STRUCTURE_AUC_WARNING


def _energy_frame(rows: int = 600) -> SensorFrame:
    rng = np.random.default_rng(3)
    names = active_catalog().get("energy").layouts[0].feature_names
    values = pd.DataFrame(rng.normal(50, 5, (rows, len(names))), columns=names)
    values["load_type"] = rng.integers(0, 3, rows).astype(float)
    values.index = pd.date_range("2018-01-01", periods=rows, freq="15min", name="timestamp")
    return SensorFrame(Module.ENERGY, "plant", values)


def test_card_keeps_the_module_configuration_and_a_fingerprint(tmp_path: Path) -> None:
    frame = _energy_frame()
    snapshot = active_catalog().get("energy").snapshot(frame.feature_names)
    card = train_model(
        frame,
        PcaDetector(),
        build_thresholder("quantile"),
        FileModelRegistry(tmp_path),
        module_config=snapshot,
    )
    assert card.module_config["layout"]["features"][-1]["codes"] == {
        "Light_Load": 0.0,
        "Medium_Load": 1.0,
        "Maximum_Load": 2.0,
    }
    assert card.fingerprint["rows"] == 600 and card.fingerprint["sampling_interval_s"] == 900.0
    assert card.fingerprint["features"]["load_type"]["values"] == [0.0, 1.0, 2.0]
    assert card.metrics["structure_auc"] is not None
    assert FileModelRegistry(tmp_path).load(Module.ENERGY, "pca").card == card  # kept in card.json

    check_codes(frame, card)  # the training data itself conforms
    bad = frame.values.copy()
    bad.iloc[5, bad.columns.get_loc("load_type")] = 7.0
    with pytest.raises(InvalidInputError, match="load_type") as caught:
        check_codes(replace(frame, values=bad), card)
    assert caught.value.field == "values.load_type"

    assert changed_columns(card, snapshot) == []
    renamed = active_catalog().get("energy").snapshot(frame.feature_names)
    renamed["layout"]["features"][0]["unit"] = "MWh"
    assert changed_columns(card, renamed) == ["usage_kwh"]
    assert changed_columns(replace(card, module_config={}), renamed) == []
