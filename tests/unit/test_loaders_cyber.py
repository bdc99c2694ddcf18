"""SWaT and BATADAL loaders: raw layouts (spaces, typos, ';' exports), labels, sniffing, broken files."""

from pathlib import Path

import numpy as np
import pytest

from plantwatch.adapters.datasets import (
    BATADAL_TAGS,
    SWAT_TAGS,
    load_batadal_csv,
    load_dataset,
    load_readings_csv,
    load_swat_csv,
)
from plantwatch.domain.errors import DataFileError
from plantwatch.domain.modules import Module

SPACED = {"MV101", "AIT201", "MV201", "P201", "P202", "P204", "MV303"}


def _swat_lines(labels: list[str], stage_row: bool = False) -> list[str]:
    header = ",".join([" Timestamp", *(f" {t}" if t in SPACED else t for t in SWAT_TAGS), "Normal/Attack"])
    lines = [",".join(["", "P1", *[""] * (len(SWAT_TAGS) - 1), ""])] if stage_row else []
    lines.append(header)
    for second, label in enumerate(labels):
        values = [f"{(i + 1) * 1.5 + second:.4f}" for i in range(len(SWAT_TAGS))]
        lines.append(",".join([f" 28/12/2015 10:00:{second:02d} AM", *values, label]))
    return lines


def _write(tmp_path: Path, lines: list[str], name: str = "swat.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_swat_layout_with_spaces_and_the_attack_typo(tmp_path: Path) -> None:
    frame = load_swat_csv(_write(tmp_path, _swat_lines(["Normal", "Attack", "A ttack", "Normal"])))

    assert frame.module is Module.CYBER
    assert frame.feature_names == SWAT_TAGS and len(SWAT_TAGS) == 51
    assert frame.labels is not None and frame.labels.tolist() == [0.0, 1.0, 1.0, 0.0]
    assert frame.values["FIT101"].tolist() == [1.5, 2.5, 3.5, 4.5]
    assert frame.values["MV101"].iloc[0] == 4.5
    assert str(frame.values.index[3]) == "2015-12-28 10:00:03"


def test_semicolon_export_with_decimal_commas(tmp_path: Path) -> None:
    comma_lines = _swat_lines(["Normal", "Attack"])
    semicolon = [line.replace(",", ";").replace(".", ",") for line in comma_lines]
    reference = load_swat_csv(_write(tmp_path, comma_lines, "comma.csv"))
    frame = load_swat_csv(_write(tmp_path, semicolon))
    np.testing.assert_array_equal(frame.to_numpy(), reference.to_numpy())
    assert frame.labels is not None and frame.labels.tolist() == [0.0, 1.0]


def test_stage_grouping_row_above_the_header_is_skipped(tmp_path: Path) -> None:
    frame = load_swat_csv(_write(tmp_path, _swat_lines(["Normal", "Normal"], stage_row=True)))
    assert len(frame) == 2


def test_unknown_label_names_line_and_column(tmp_path: Path) -> None:
    with pytest.raises(DataFileError) as caught:
        load_swat_csv(_write(tmp_path, _swat_lines(["Normal", "Attack", "Maybe"])))
    assert (caught.value.row, caught.value.column) == (4, "Normal/Attack")


def test_bad_swat_timestamp_and_value(tmp_path: Path) -> None:
    lines = _swat_lines(["Normal", "Normal", "Normal"])
    bad_time = [*lines[:3], lines[3].replace("10:00:02 AM", "10:00:02 XM")]
    with pytest.raises(DataFileError) as caught:
        load_swat_csv(_write(tmp_path, bad_time))
    assert (caught.value.row, caught.value.column) == (4, "Timestamp")

    bad_value = [*lines[:2], lines[2].replace(",4.0000,", ",x,"), lines[3]]
    with pytest.raises(DataFileError) as caught:
        load_swat_csv(_write(tmp_path, bad_value))
    assert (caught.value.row, caught.value.column) == (3, "LIT101")


def test_swat_missing_tag_is_named(tmp_path: Path) -> None:
    lines = _swat_lines(["Normal"])
    lines[0] = lines[0].replace("P602", "P6O2")
    with pytest.raises(DataFileError) as caught:
        load_swat_csv(_write(tmp_path, lines))
    assert caught.value.column == "P602"


BATADAL_HEADER = ",".join(["DATETIME", *BATADAL_TAGS, "ATT_FLAG"])


def _batadal_lines(flags: list[str], spaced: bool = False, with_flag: bool = True) -> list[str]:
    separator = ", " if spaced else ","
    columns = ["DATETIME", *BATADAL_TAGS, *(["ATT_FLAG"] if with_flag else [])]
    lines = [separator.join(columns)]
    for hour, flag in enumerate(flags):
        values = [f"{i * 0.5 + hour:.2f}" for i in range(len(BATADAL_TAGS))]
        lines.append(separator.join([f"06/01/14 {hour:02d}", *values, *([flag] if with_flag else [])]))
    return lines


def test_batadal_flags_and_spaced_header(tmp_path: Path) -> None:
    frame = load_batadal_csv(_write(tmp_path, _batadal_lines(["0", "1", "-999"], spaced=True), "b04.csv"))
    assert frame.feature_names == BATADAL_TAGS and len(BATADAL_TAGS) == 43
    assert frame.labels is not None
    assert frame.labels.tolist()[:2] == [0.0, 1.0] and np.isnan(frame.labels.iloc[2])
    assert str(frame.values.index[2]) == "2014-01-06 02:00:00"
    assert frame.values["L_T1"].tolist() == [0.0, 1.0, 2.0]


def test_batadal_test_file_has_no_labels(tmp_path: Path) -> None:
    frame = load_batadal_csv(_write(tmp_path, _batadal_lines(["", ""], with_flag=False)))
    assert frame.labels is None and len(frame) == 2


def test_batadal_bad_flag_and_bad_date(tmp_path: Path) -> None:
    with pytest.raises(DataFileError) as caught:
        load_batadal_csv(_write(tmp_path, _batadal_lines(["0", "2"])))
    assert (caught.value.row, caught.value.column) == (3, "ATT_FLAG")

    lines = _batadal_lines(["0", "0"])
    lines[2] = lines[2].replace("06/01/14 01", "06/13/14 01")
    with pytest.raises(DataFileError) as caught:
        load_batadal_csv(_write(tmp_path, lines))
    assert (caught.value.row, caught.value.column) == (3, "DATETIME")


def test_cyber_dispatch_sniffs_swat_and_batadal(tmp_path: Path) -> None:
    swat = load_dataset(Module.CYBER, _write(tmp_path, _swat_lines(["Normal"]), "s.csv"))
    batadal = load_readings_csv(Module.CYBER, "\n".join(_batadal_lines(["0"])).encode(), source_name="scada")
    assert swat.feature_names == SWAT_TAGS
    assert batadal.feature_names == BATADAL_TAGS and batadal.source == "scada"


def test_cyber_dispatch_rejects_other_layouts() -> None:
    with pytest.raises(DataFileError) as caught:
        load_readings_csv(Module.CYBER, "when,level\n2020-01-01,3\n", source_name="odd.csv")
    assert caught.value.path == "odd.csv"
    assert "not a cyber readings file" in caught.value.message
