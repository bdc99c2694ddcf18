"""Steel Industry Energy Consumption (UCI 851): 15-minute readings of a steel plant's electricity use.

The public copies differ in header spelling, byte-order mark and date style; all load to the same frame.
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

ENERGY_FEATURES = [
    "usage_kwh",
    "lagging_reactive_power_kvarh",
    "leading_reactive_power_kvarh",
    "co2_tco2",
    "lagging_power_factor",
    "leading_power_factor",
    "load_type",
]

DATE_COLUMN = "date"
NSM_COLUMN = "NSM"
WEEK_STATUS_COLUMN = "WeekStatus"
DAY_OF_WEEK_COLUMN = "Day_of_week"
LOAD_TYPE_COLUMN = "Load_Type"
LOAD_TYPE_CODES = {"Light_Load": 0.0, "Medium_Load": 1.0, "Maximum_Load": 2.0}
_WRITE_DATE_FORMAT = "%d/%m/%Y %H:%M"


def load_energy_csv(data: bytes | str | Path, source_name: str | None = None) -> SensorFrame:
    """Load a Steel Industry Energy CSV (file path, bytes or text). No anomaly labels: labels is None."""
    table = read_csv_table(data, source_name, header_markers=[DATE_COLUMN])
    return energy_frame(table, source_label(data, source_name))


def energy_frame(table: CsvTable, source: str) -> SensorFrame:
    """The plant's measurements and load type, as the built-in energy configuration lays them out. NSM and
    WeekStatus are checked but left out of the features: they are calendar context, and a detector that
    reconstructs them blames them for every midnight."""
    return layout_frame(Module.ENERGY, builtin_config("energy").layouts[0], table, source)


def write_energy_csv(frame: SensorFrame, path: Path) -> None:
    """Write a frame in the UCI file's own layout, including its habit of dating a day's closing 00:00 reading
    with that day (so the file reads back through load_energy_csv unchanged). NSM, WeekStatus and Day_of_week
    are derived from the timestamps the way the real file has them: the closing reading has NSM 0 and the
    weekday of the day it closes."""
    require_features(frame, ENERGY_FEATURES, path)
    values = frame.values
    index = pd.DatetimeIndex(values.index)
    at_midnight = (index.hour == 0) & (index.minute == 0)
    dated = index.where(~at_midnight, index - pd.Timedelta(days=1))
    seconds_since_midnight = index.hour * 3600 + index.minute * 60 + index.second
    load_type = {code: name for name, code in LOAD_TYPE_CODES.items()}
    raw = pd.DataFrame(
        {
            DATE_COLUMN: dated.strftime(_WRITE_DATE_FORMAT),
            "Usage_kWh": values["usage_kwh"].to_numpy(),
            "Lagging_Current_Reactive.Power_kVarh": values["lagging_reactive_power_kvarh"].to_numpy(),
            "Leading_Current_Reactive_Power_kVarh": values["leading_reactive_power_kvarh"].to_numpy(),
            "CO2(tCO2)": values["co2_tco2"].to_numpy(),
            "Lagging_Current_Power_Factor": values["lagging_power_factor"].to_numpy(),
            "Leading_Current_Power_Factor": values["leading_power_factor"].to_numpy(),
            NSM_COLUMN: np.asarray(seconds_since_midnight, dtype=np.int64),
            WEEK_STATUS_COLUMN: np.where(dated.dayofweek >= 5, "Weekend", "Weekday"),
            DAY_OF_WEEK_COLUMN: dated.day_name(),
            LOAD_TYPE_COLUMN: values["load_type"].map(load_type).to_numpy(),
        }
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    raw.to_csv(path, index=False, lineterminator="\n")
