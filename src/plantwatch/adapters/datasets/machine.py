"""Industrial IoT Fault Detection (Kaggle ziya07): 1-minute machine readings with a fault class per row."""

from pathlib import Path

import numpy as np
import pandas as pd

from plantwatch.adapters.datasets.configured import layout_frame
from plantwatch.adapters.datasets.csv_table import (
    CsvTable,
    read_csv_table,
    require_features,
    source_label,
)
from plantwatch.adapters.modules.catalog import builtin_config
from plantwatch.domain.frames import SensorFrame
from plantwatch.domain.modules import Module

MACHINE_COLUMNS = {
    "vibration_mm_s": "Vibration (mm/s)",
    "temperature_c": "Temperature (°C)",
    "pressure_bar": "Pressure (bar)",
    "rms_vibration": "RMS Vibration",
    "mean_temp": "Mean Temp",
}
MACHINE_FEATURES = list(MACHINE_COLUMNS)
TIMESTAMP_COLUMN = "Timestamp"
FAULT_COLUMN = "Fault Label"
# The data set's classes; any class above NO_FAULT is an anomaly.
NO_FAULT, BEARING_FAULT, OVERHEATING = 0, 1, 2
FAULT_CLASS_NAMES = {NO_FAULT: "No Fault", BEARING_FAULT: "Bearing Fault", OVERHEATING: "Overheating"}
_WRITE_DATE_FORMAT = "%Y-%m-%d %H:%M:%S"


def load_machine_csv(data: bytes | str | Path, source_name: str | None = None) -> SensorFrame:
    """Load the fault-detection CSV. labels = 1.0 where Fault Label > 0; None without a Fault Label column."""
    table = read_csv_table(data, source_name, header_markers=[TIMESTAMP_COLUMN])
    frame, _ = machine_frame(table, source_label(data, source_name))
    return frame


def fault_classes(data: bytes | str | Path, source_name: str | None = None) -> pd.Series:
    """The raw Fault Label per reading (0 no fault, 1 bearing fault, 2 overheating), indexed by timestamp."""
    table = read_csv_table(data, source_name, header_markers=[TIMESTAMP_COLUMN])
    table.require_columns([FAULT_COLUMN])
    _, classes = machine_frame(table, source_label(data, source_name))
    assert classes is not None, "the fault column is present"
    return classes


def machine_frame(table: CsvTable, source: str) -> tuple[SensorFrame, pd.Series | None]:
    """The readings as the built-in machine configuration lays them out, and the raw fault class per row."""
    frame = layout_frame(Module.MACHINE, builtin_config("machine").layouts[0], table, source)
    classes = None
    if table.has_column(FAULT_COLUMN):
        codes = {str(code): float(code) for code in FAULT_CLASS_NAMES}
        classes = pd.Series(
            table.categories(FAULT_COLUMN, codes).to_numpy().astype(np.int64),
            index=frame.values.index,
            name="fault_class",
        )
    return frame, classes


def write_machine_csv(frame: SensorFrame, path: Path, classes: pd.Series | None = None) -> None:
    """Write a frame in the data set's layout. Fault Label is `classes` when given, else the labels as 0/1."""
    require_features(frame, MACHINE_FEATURES, path)
    raw = pd.DataFrame({TIMESTAMP_COLUMN: pd.DatetimeIndex(frame.values.index).strftime(_WRITE_DATE_FORMAT)})
    for feature, column in MACHINE_COLUMNS.items():
        raw[column] = frame.values[feature].to_numpy()
    if classes is not None:
        raw[FAULT_COLUMN] = classes.to_numpy().astype(np.int64)
    elif frame.labels is not None:
        raw[FAULT_COLUMN] = frame.labels.fillna(0).to_numpy().astype(np.int64)
    path.parent.mkdir(parents=True, exist_ok=True)
    raw.to_csv(path, index=False, lineterminator="\n")
