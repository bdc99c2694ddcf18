"""`modules add` inference: separator, time column and format, label, kinds and units, from a CSV."""

from pathlib import Path

import pytest

from plantwatch.adapters.modules.config import FeatureKind
from plantwatch.adapters.modules.inference import infer_module, time_format
from plantwatch.domain.errors import DataFileError
from tests.own_plant import valve_readings, write_valve_csv


@pytest.fixture
def valve_csv(tmp_path: Path) -> Path:
    return write_valve_csv(tmp_path / "valve_run.csv", valve_readings(rows=300))


def test_infers_the_valve_layout(valve_csv: Path) -> None:
    inferred = infer_module("valve", valve_csv, ignore_columns=["Operator"])
    layout = inferred.config.layouts[0]
    assert inferred.rows == 300 and layout.separator == ";"
    assert layout.timestamp.column == "Zeit" and layout.timestamp.formats == ["%d.%m.%Y %H:%M:%S"]
    assert layout.sampling_interval == "10s"
    assert layout.label is not None and layout.label.column == "Status"
    assert layout.label.codes == {"ALARM": 1.0, "OK": 0.0}
    by_name = {f.name: f for f in layout.features}
    assert list(by_name) == ["valve_position", "flow", "pressure", "pump", "mode"]
    assert by_name["flow"].raw_column == "Flow (l/min)" and by_name["flow"].unit == "l/min"
    assert by_name["valve_position"].unit == "%" and by_name["pressure"].kind is FeatureKind.NUMERIC
    assert by_name["pump"].kind is FeatureKind.BINARY and by_name["pump"].codes == {"off": 0.0, "on": 1.0}


def test_options_override_what_is_inferred(valve_csv: Path) -> None:
    inferred = infer_module(
        "valve",
        valve_csv,
        time_column="Zeit",
        label_column=None,
        separator=";",
        ignore_columns=["Operator", "Mode"],
    )
    assert [f.name for f in inferred.config.layouts[0].features] == [
        "valve_position",
        "flow",
        "pressure",
        "pump",
    ]


def test_a_free_text_column_is_refused_naming_it(valve_csv: Path) -> None:
    with pytest.raises(DataFileError, match="--ignore-columns") as caught:
        infer_module("valve", valve_csv)
    assert caught.value.column == "Operator" and caught.value.path == str(valve_csv)


def test_unknown_option_columns_are_named(valve_csv: Path) -> None:
    with pytest.raises(DataFileError, match="--time-column") as caught:
        infer_module("valve", valve_csv, time_column="Time")
    assert caught.value.column == "Time"
    with pytest.raises(DataFileError, match="--ignore-columns"):
        infer_module("valve", valve_csv, ignore_columns=["Nope"])


def test_a_missing_value_is_reported_by_row_and_column(tmp_path: Path) -> None:
    path = tmp_path / "gaps.csv"
    path.write_text("time,a,b\n2024-01-01 00:00,1,2\n2024-01-01 00:01,,3\n2024-01-01 00:02,4,5\n")
    with pytest.raises(DataFileError) as caught:
        infer_module("gaps", path)
    assert (caught.value.row, caught.value.column) == (3, "a")


def test_time_format_prefers_the_reading_that_keeps_time_increasing() -> None:
    import pandas as pd

    month_first = pd.Series(["01/02/2024 10:00", "01/03/2024 10:00", "01/13/2024 10:00"])
    assert time_format(month_first) == "%m/%d/%Y %H:%M"
    ambiguous_days = pd.Series(["01/02/2024 10:00", "02/02/2024 10:00"])
    assert time_format(ambiguous_days) == "%d/%m/%Y %H:%M"
    assert time_format(pd.Series(["1.5", "2.5"])) is None


def test_a_fault_word_the_training_file_never_showed_still_reads_as_an_anomaly(tmp_path: Path) -> None:
    from plantwatch.adapters.datasets.configured import layout_readings
    from plantwatch.adapters.datasets.csv_table import read_csv_table

    readings = valve_readings(rows=800, fault_from=0.85)
    clean = write_valve_csv(tmp_path / "clean.csv", readings.iloc[:600])  # OK only, both modes
    config = infer_module("valve", clean, ignore_columns=["Operator"]).config
    label = config.layouts[0].label
    assert label is not None and label.codes == {"OK": 0.0} and label.otherwise == 1.0
    with_faults = write_valve_csv(tmp_path / "later.csv", readings.iloc[600:])
    _, labels = layout_readings(config.layouts[0], read_csv_table(with_faults, separator=";"))
    assert labels is not None
    assert labels.to_numpy().tolist() == readings["fault"].iloc[600:].astype(float).tolist()
