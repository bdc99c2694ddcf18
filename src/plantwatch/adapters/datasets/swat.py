"""SWaT (iTrust, SUTD) water treatment testbed: 1 Hz readings of 51 sensors/actuators, Normal/Attack labels.

The data itself is access-controlled; this reads its published layout (see ../shared/datasets/SWaT_SCHEMA.md):
leading spaces in headers and timestamps, the 'A ttack' typo, and ';'-separated exports with decimal commas.
"""

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

# Stage by stage, in the order of the raw files.
SWAT_TAGS = [
    *("FIT101", "LIT101", "MV101", "P101", "P102"),
    *("AIT201", "AIT202", "AIT203", "FIT201", "MV201", "P201", "P202", "P203", "P204", "P205", "P206"),
    *("DPIT301", "FIT301", "LIT301", "MV301", "MV302", "MV303", "MV304", "P301", "P302"),
    *("AIT401", "AIT402", "FIT401", "LIT401", "P401", "P402", "P403", "P404", "UV401"),
    *("AIT501", "AIT502", "AIT503", "AIT504", "FIT501", "FIT502", "FIT503", "FIT504"),
    *("P501", "P502", "PIT501", "PIT502", "PIT503"),
    *("FIT601", "P601", "P602", "P603"),
]
TIMESTAMP_COLUMN = "Timestamp"
LABEL_COLUMN = "Normal/Attack"
_WRITE_DATE_FORMAT = "%d/%m/%Y %I:%M:%S %p"
# Header names that carry a leading space in the raw files.
_SPACED_HEADERS = {"MV101", "AIT201", "MV201", "P201", "P202", "P204", "MV303"}


def load_swat_csv(data: bytes | str | Path, source_name: str | None = None) -> SensorFrame:
    """Load a SWaT CSV export. Feature names are the SWaT tags; labels None when there is no label column."""
    table = read_csv_table(data, source_name, header_markers=[TIMESTAMP_COLUMN])
    return swat_frame(table, source_label(data, source_name))


def swat_frame(table: CsvTable, source: str) -> SensorFrame:
    """The readings as the built-in cyber configuration's swat layout reads them."""
    layout = next(layout for layout in builtin_config("cyber").layouts if layout.name == "swat")
    return layout_frame(Module.CYBER, layout, table, source)


def write_swat_csv(frame: SensorFrame, path: Path) -> None:
    """Write a frame as the SWaT files are laid out, leading spaces in the header and timestamps included."""
    require_features(frame, SWAT_TAGS, path)
    stamps = " " + pd.DatetimeIndex(frame.values.index).strftime(_WRITE_DATE_FORMAT)
    raw = pd.DataFrame({" " + TIMESTAMP_COLUMN: stamps})
    for tag in SWAT_TAGS:
        values = frame.values[tag].to_numpy()
        # Actuator states are integers in the raw files: write 2, not 2.0.
        raw[f" {tag}" if tag in _SPACED_HEADERS else tag] = (
            values.astype(np.int64) if np.all(values == np.round(values)) else values
        )
    if frame.labels is not None:
        raw[LABEL_COLUMN] = np.where(frame.labels.to_numpy() == 1.0, "Attack", "Normal")
    path.parent.mkdir(parents=True, exist_ok=True)
    raw.to_csv(path, index=False, lineterminator="\n")
