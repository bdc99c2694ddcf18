"""Steel Industry Energy loader: every public header and date variant, and every kind of broken file."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from plantwatch.adapters.datasets import (
    ENERGY_FEATURES,
    load_dataset,
    load_energy_csv,
    write_energy_csv,
)
from plantwatch.domain.errors import DataFileError
from plantwatch.domain.modules import Module

HEADER_DOT = (
    "date,Usage_kWh,Lagging_Current_Reactive.Power_kVarh,Leading_Current_Reactive_Power_kVarh,CO2(tCO2),"
    "Lagging_Current_Power_Factor,Leading_Current_Power_Factor,NSM,WeekStatus,Day_of_week,Load_Type"
)
HEADER_UNDERSCORE = HEADER_DOT.replace("Reactive.Power", "Reactive_Power")
ROWS = [
    ("01/01/2018 23:45", "3.67,3.96,0,0,67.97,100,85500,Weekday,Monday,Light_Load"),
    ("01/01/2018 0:00", "3.42,3.46,0,0,70.3,100,0,Weekday,Monday,Light_Load"),
    ("02/01/2018 0:15", "3.2,3.1,0,0,71.82,100,900,Weekday,Tuesday,Medium_Load"),
    ("06/01/2018 0:15", "52.1,20.5,1.2,0.02,92.1,99.9,900,Weekend,Saturday,Maximum_Load"),
]


def _styled(date: str, style: str) -> str:
    day, month, rest = date.split("/")
    year, clock = rest.split(" ")
    hour, minute = clock.split(":")
    if style == "padded":
        return f"{day}/{month}/{year} {int(hour):02d}:{minute}"
    if style == "unpadded":
        return f"{int(day)}/{int(month)}/{year} {int(hour)}:{minute}"
    if style == "dashes":
        return f"{day}-{month}-{year} {int(hour):02d}:{minute}"
    return date


def _energy_csv(
    header: str = HEADER_DOT, style: str = "original", bom: bool = False, eol: str = "\n"
) -> bytes:
    lines = [header, *(f"{_styled(date, style)},{rest}" for date, rest in ROWS)]
    text = eol.join(lines) + eol
    return (b"\xef\xbb\xbf" if bom else b"") + text.encode()


def _write(tmp_path: Path, content: bytes | str, name: str = "steel.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


@pytest.mark.parametrize(
    ("header", "style", "bom", "eol"),
    [
        (HEADER_DOT, "original", False, "\n"),
        (HEADER_UNDERSCORE, "padded", True, "\r\n"),
        (HEADER_DOT, "unpadded", True, "\r\n"),
        (HEADER_UNDERSCORE, "dashes", True, "\r\n"),
    ],
)
def test_every_public_variant_loads_to_the_same_frame(
    tmp_path: Path, header: str, style: str, bom: bool, eol: str
) -> None:
    reference = load_energy_csv(_write(tmp_path, _energy_csv(), "reference.csv"))
    frame = load_energy_csv(_write(tmp_path, _energy_csv(header, style, bom, eol)))

    assert frame.module is Module.ENERGY
    assert frame.feature_names == ENERGY_FEATURES
    assert frame.labels is None
    assert frame.values.index.name == "timestamp"
    assert (frame.values.dtypes == np.float64).all()
    np.testing.assert_array_equal(frame.to_numpy(), reference.to_numpy())
    assert list(frame.values.index) == list(reference.values.index)


def test_values_categories_and_the_closing_midnight_reading(tmp_path: Path) -> None:
    frame = load_energy_csv(_write(tmp_path, _energy_csv()))
    index = [str(t) for t in frame.values.index]

    # '01/01/2018 0:00' closes 1 January: it is the reading at midnight into 2 January.
    assert index == [
        "2018-01-01 23:45:00",
        "2018-01-02 00:00:00",
        "2018-01-02 00:15:00",
        "2018-01-06 00:15:00",
    ]
    assert frame.values["usage_kwh"].tolist() == [3.67, 3.42, 3.2, 52.1]
    assert frame.values["lagging_reactive_power_kvarh"].tolist() == [3.96, 3.46, 3.1, 20.5]
    assert frame.values["co2_tco2"].tolist() == [0, 0, 0, 0.02]
    assert frame.values["load_type"].tolist() == [0, 0, 1, 2]
    assert frame.source == "steel.csv"


def test_calendar_columns_are_checked_but_are_not_features(tmp_path: Path) -> None:
    frame = load_energy_csv(_write(tmp_path, _energy_csv()))
    assert "nsm" not in frame.feature_names and "is_weekend" not in frame.feature_names
    assert len(frame.feature_names) == 7


def test_writer_derives_the_files_calendar_columns(tmp_path: Path) -> None:
    frame = load_energy_csv(_write(tmp_path, _energy_csv()))
    written = tmp_path / "written.csv"
    write_energy_csv(frame, written)

    raw = pd.read_csv(written)
    assert raw.columns.tolist() == HEADER_DOT.split(",")
    # The closing 00:00 reading keeps NSM 0 and the weekday of the day it closes, as in the real file.
    assert raw["date"].tolist()[:2] == ["01/01/2018 23:45", "01/01/2018 00:00"]
    assert raw["NSM"].tolist() == [85500, 0, 900, 900]
    assert raw["WeekStatus"].tolist() == ["Weekday", "Weekday", "Weekday", "Weekend"]
    assert raw["Day_of_week"].tolist() == ["Monday", "Monday", "Tuesday", "Saturday"]
    reloaded = load_energy_csv(written)
    np.testing.assert_array_equal(reloaded.to_numpy(), frame.to_numpy())
    assert list(reloaded.values.index) == list(frame.values.index)


def test_a_correctly_dated_midnight_is_kept(tmp_path: Path) -> None:
    text = _energy_csv().decode().replace("01/01/2018 0:00", "02/01/2018 0:00")
    frame = load_energy_csv(_write(tmp_path, text))
    assert str(frame.values.index[1]) == "2018-01-02 00:00:00"


def test_dispatcher_and_upload_bytes_give_the_same_frame(tmp_path: Path) -> None:
    from plantwatch.adapters.datasets import load_readings_csv

    path = _write(tmp_path, _energy_csv())
    from_file = load_dataset(Module.ENERGY, path)
    uploaded = load_readings_csv(Module.ENERGY, _energy_csv(bom=True), source_name="meter-7")
    assert uploaded.source == "meter-7"
    np.testing.assert_array_equal(uploaded.to_numpy(), from_file.to_numpy())


def _broken(tmp_path: Path, line: int, replacement: str) -> Path:
    lines = _energy_csv().decode().splitlines()
    lines[line - 1] = replacement
    return _write(tmp_path, "\n".join(lines) + "\n")


def _error(path: Path) -> DataFileError:
    with pytest.raises(DataFileError) as caught:
        load_energy_csv(path)
    return caught.value


def test_missing_column_is_named(tmp_path: Path) -> None:
    text = _energy_csv().decode().replace("Usage_kWh", "Usage")
    error = _error(_write(tmp_path, text))
    assert error.column == "Usage_kWh"
    assert error.row is None
    assert "steel.csv" in str(error) and "missing required column" in error.message


def test_truncated_row_names_its_line(tmp_path: Path) -> None:
    error = _error(_broken(tmp_path, 3, "01/01/2018 0:00,3.42,3.46,0"))
    assert error.row == 3
    assert "truncated row: expected 11 fields, found 4" in error.message
    assert "steel.csv, row 3" in str(error)


def test_too_many_fields_names_its_line(tmp_path: Path) -> None:
    error = _error(_broken(tmp_path, 4, f"02/01/2018 0:15,{ROWS[2][1]},extra"))
    assert error.row == 4
    assert "expected 11 fields, found 12" in error.message


def test_non_numeric_value_names_line_and_column(tmp_path: Path) -> None:
    error = _error(
        _broken(tmp_path, 5, "06/01/2018 0:15,52.1,n/a,1.2,0.02,92.1,99.9,900,Weekend,Sat,Maximum_Load")
    )
    assert (error.row, error.column) == (5, "Lagging_Current_Reactive.Power_kVarh")
    assert "'n/a' is not a finite number" in error.message


def test_bad_date_names_line_and_column(tmp_path: Path) -> None:
    error = _error(_broken(tmp_path, 4, f"31/02/2018 0:15,{ROWS[2][1]}"))
    assert (error.row, error.column) == (4, "date")


def test_unknown_category_names_line_and_column(tmp_path: Path) -> None:
    error = _error(
        _broken(tmp_path, 2, "01/01/2018 23:45,3.67,3.96,0,0,67.97,100,85500,Weekday,Monday,Huge_Load")
    )
    assert (error.row, error.column) == (2, "Load_Type")


def test_unknown_week_status_names_line_and_column(tmp_path: Path) -> None:
    error = _error(_broken(tmp_path, 3, "01/01/2018 0:00,3.42,3.46,0,0,70.3,100,0,Holiday,Monday,Light_Load"))
    assert (error.row, error.column) == (3, "WeekStatus")


def test_non_numeric_nsm_names_line_and_column(tmp_path: Path) -> None:
    error = _error(
        _broken(tmp_path, 4, "02/01/2018 0:15,3.2,3.1,0,0,71.82,100,noon,Weekday,Tuesday,Medium_Load")
    )
    assert (error.row, error.column) == (4, "NSM")
    assert "'noon' is not a finite number" in error.message


@pytest.mark.parametrize("column", ["NSM", "WeekStatus"])
def test_missing_calendar_column_is_named(tmp_path: Path, column: str) -> None:
    lines = _energy_csv().decode().splitlines()
    lines[0] = lines[0].replace(column, "Unused")
    error = _error(_write(tmp_path, "\n".join(lines) + "\n"))
    assert error.column == column
    assert "missing required column" in error.message


def test_blank_lines_do_not_shift_line_numbers(tmp_path: Path) -> None:
    lines = _energy_csv().decode().splitlines()
    lines.insert(2, "")
    lines[4] = "02/01/2018 0:15,oops,3.1,0,0,71.82,100,900,Weekday,Tuesday,Medium_Load"
    error = _error(_write(tmp_path, "\n".join(lines)))
    assert (error.row, error.column) == (5, "Usage_kWh")


def test_time_going_backwards_is_an_error(tmp_path: Path) -> None:
    error = _error(
        _broken(tmp_path, 5, "01/01/2018 12:00,52.1,20.5,1.2,0.02,92.1,99.9,43200,Weekday,Mon,Light_Load")
    )
    assert (error.row, error.column) == (5, "date")


@pytest.mark.parametrize("content", [b"", b"\n\n  \n", b"\xef\xbb\xbf"])
def test_empty_file(tmp_path: Path, content: bytes) -> None:
    error = _error(_write(tmp_path, content))
    assert error.message == "file is empty"
    assert error.path.endswith("steel.csv")


def test_header_without_rows(tmp_path: Path) -> None:
    error = _error(_write(tmp_path, HEADER_DOT + "\n"))
    assert "no data rows" in error.message


def test_unreadable_path(tmp_path: Path) -> None:
    error = _error(tmp_path / "absent.csv")
    assert "cannot read file" in error.message and "absent.csv" in error.path
