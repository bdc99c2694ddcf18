"""Industrial IoT fault-detection loader: values, fault labels and classes, broken files."""

from pathlib import Path

import numpy as np
import pytest

from plantwatch.adapters.datasets import (
    MACHINE_FEATURES,
    fault_classes,
    load_machine_csv,
    load_readings_csv,
)
from plantwatch.domain.errors import DataFileError
from plantwatch.domain.modules import Module

HEADER = "Timestamp,Vibration (mm/s),Temperature (°C),Pressure (bar),RMS Vibration,Mean Temp,Fault Label"
ROWS = [
    "2023-03-10 00:00:00,0.437,64.81,7.785,0.6016,90.56,1",
    "2023-03-10 00:01:00,0.955,93.35,7.740,0.6016,90.56,0",
    "2023-03-10 00:02:00,0.501,72.57,9.614,0.6016,90.56,2",
]


def _write(tmp_path: Path, lines: list[str], eol: str = "\r\n", encoding: str = "utf-8") -> Path:
    path = tmp_path / "machine.csv"
    path.write_bytes((eol.join(lines) + eol).encode(encoding))
    return path


def test_values_labels_and_fault_classes(tmp_path: Path) -> None:
    path = _write(tmp_path, [HEADER, *ROWS])
    frame = load_machine_csv(path)

    assert frame.module is Module.MACHINE
    assert frame.feature_names == MACHINE_FEATURES
    assert frame.values["vibration_mm_s"].tolist() == [0.437, 0.955, 0.501]
    assert frame.values["temperature_c"].tolist() == [64.81, 93.35, 72.57]
    assert frame.values.index.name == "timestamp"
    assert str(frame.values.index[2]) == "2023-03-10 00:02:00"
    assert frame.labels is not None and frame.labels.tolist() == [1.0, 0.0, 1.0]
    assert fault_classes(path).tolist() == [1, 0, 2]


def test_windows_encoded_degree_sign_is_read(tmp_path: Path) -> None:
    frame = load_machine_csv(_write(tmp_path, [HEADER, *ROWS], encoding="cp1252"))
    assert len(frame) == 3


def test_upload_without_fault_column_has_no_labels() -> None:
    header = HEADER.removesuffix(",Fault Label")
    rows = [row.rsplit(",", 1)[0] for row in ROWS]
    frame = load_readings_csv(Module.MACHINE, "\n".join([header, *rows]), source_name="press-2")
    assert frame.labels is None and frame.source == "press-2"
    np.testing.assert_allclose(frame.values["pressure_bar"], [7.785, 7.74, 9.614])


def _error(path: Path) -> DataFileError:
    with pytest.raises(DataFileError) as caught:
        load_machine_csv(path)
    return caught.value


def test_unknown_fault_class(tmp_path: Path) -> None:
    error = _error(_write(tmp_path, [HEADER, *ROWS[:2], ROWS[2].replace(",2", ",7")]))
    assert (error.row, error.column) == (4, "Fault Label")


def test_missing_column(tmp_path: Path) -> None:
    error = _error(_write(tmp_path, [HEADER.replace("Pressure (bar)", "Pressure"), *ROWS]))
    assert error.column == "Pressure (bar)" and error.row is None


def test_truncated_row(tmp_path: Path) -> None:
    error = _error(_write(tmp_path, [HEADER, ROWS[0], "2023-03-10 00:01:00,0.955,93.35", ROWS[2]]))
    assert error.row == 3
    assert "truncated row" in error.message


def test_non_numeric_value(tmp_path: Path) -> None:
    error = _error(_write(tmp_path, [HEADER, ROWS[0], ROWS[1].replace("93.35", "hot"), ROWS[2]]))
    assert (error.row, error.column) == (3, "Temperature (°C)")


def test_bad_date(tmp_path: Path) -> None:
    error = _error(_write(tmp_path, [HEADER, ROWS[0], ROWS[1], ROWS[2].replace("00:02:00", "25:02:00")]))
    assert (error.row, error.column) == (4, "Timestamp")


def test_empty_file(tmp_path: Path) -> None:
    error = _error(_write(tmp_path, [""]))
    assert error.message == "file is empty" and "machine.csv" in str(error)
