"""Every real public data file in ../shared/datasets loads through the loaders (skips when absent)."""

from pathlib import Path

import pandas as pd
import pytest

from plantwatch.adapters.datasets import (
    BATADAL_TAGS,
    ENERGY_FEATURES,
    MACHINE_FEATURES,
    fault_classes,
    load_dataset,
    write_energy_csv,
)
from plantwatch.domain.modules import Module

pytestmark = pytest.mark.integration


def _steel_files(shared: Path) -> list[Path]:
    return [shared / "Steel_industry_data.csv", *sorted((shared / "steel_variants").glob("*.csv"))]


def test_every_steel_copy_gives_identical_values(shared_datasets_dir: Path) -> None:
    files = _steel_files(shared_datasets_dir)
    assert len(files) == 4
    frames = [load_dataset(Module.ENERGY, path) for path in files]
    reference = frames[0]

    assert len(reference) == 35_040
    assert reference.feature_names == ENERGY_FEATURES
    assert reference.labels is None
    index = reference.values.index
    # 15-minute steps all year; the file's closing '31/12/2018 00:00' is midnight into 2019.
    assert index[0] == pd.Timestamp("2018-01-01 00:15") and index[-1] == pd.Timestamp("2019-01-01 00:00")
    assert index.to_series().diff().dropna().eq(pd.Timedelta(minutes=15)).all()
    assert reference.values["load_type"].value_counts().to_dict() == {0.0: 18_072, 1.0: 9_696, 2.0: 7_272}
    for path, frame in zip(files[1:], frames[1:], strict=True):
        pd.testing.assert_frame_equal(frame.values, reference.values, obj=path.name)


def test_writer_reproduces_the_steel_files_calendar_columns(
    shared_datasets_dir: Path, tmp_path: Path
) -> None:
    original_path = shared_datasets_dir / "Steel_industry_data.csv"
    frame = load_dataset(Module.ENERGY, original_path)
    written_path = tmp_path / "steel.csv"
    write_energy_csv(frame, written_path)

    original = pd.read_csv(original_path, encoding="utf-8-sig")
    written = pd.read_csv(written_path)
    calendar = ["NSM", "WeekStatus", "Day_of_week"]
    assert int((original["WeekStatus"] == "Weekend").sum()) == 9_984
    pd.testing.assert_frame_equal(written[calendar], original[calendar])
    pd.testing.assert_frame_equal(load_dataset(Module.ENERGY, written_path).values, frame.values)


def test_machine_fault_file(shared_datasets_dir: Path) -> None:
    path = shared_datasets_dir / "industrial_fault_detection_data_1000.csv"
    frame = load_dataset(Module.MACHINE, path)

    assert len(frame) == 1000
    assert frame.feature_names == MACHINE_FEATURES
    assert frame.labels is not None and int(frame.labels.sum()) == 391
    assert fault_classes(path).value_counts().to_dict() == {0: 609, 1: 303, 2: 88}
    assert frame.values.index[1] - frame.values.index[0] == pd.Timedelta(minutes=1)


@pytest.mark.parametrize(
    ("name", "rows", "attacks", "unlabelled"),
    [
        ("BATADAL_dataset03.csv", 8_761, 0, 0),
        ("BATADAL_dataset04.csv", 4_177, 219, 3_958),
        ("BATADAL_test_dataset.csv", 2_089, None, None),
    ],
)
def test_batadal_files(
    shared_datasets_dir: Path, name: str, rows: int, attacks: int | None, unlabelled: int | None
) -> None:
    frame = load_dataset(Module.CYBER, shared_datasets_dir / "batadal" / name)

    assert len(frame) == rows
    assert frame.feature_names == BATADAL_TAGS
    assert frame.values.index.to_series().diff().dropna().eq(pd.Timedelta(hours=1)).all()
    if attacks is None:
        assert frame.labels is None
    else:
        assert frame.labels is not None
        assert int(frame.labels.sum()) == attacks
        assert int(frame.labels.isna().sum()) == unlabelled
        assert int((frame.labels == 0).sum()) == rows - attacks - (unlabelled or 0)
