"""The one CSV loader: reads any module's readings as its configuration lays them out.

Every file goes through csv_table, so a file that does not match its configuration fails the same way for
every module: a DataFileError naming the file, the line and the column.
"""

from pathlib import Path

import numpy as np
import pandas as pd

from plantwatch.adapters.datasets.csv_table import (
    WHITESPACE_SEPARATOR,
    CsvTable,
    read_csv_table,
    source_label,
)
from plantwatch.adapters.modules.config import (
    WHITESPACE,
    ColumnConfig,
    FeatureConfig,
    FeatureKind,
    LayoutConfig,
    ModuleConfig,
)
from plantwatch.domain.errors import DataFileError
from plantwatch.domain.frames import SensorFrame
from plantwatch.domain.modules import Module


def read_module_table(config: ModuleConfig, data: bytes | str | Path, source_name: str | None) -> CsvTable:
    """The file as a table of strings, read with the separator and header the configuration gives."""
    first = config.layouts[0]
    separator = {"auto": None, WHITESPACE: WHITESPACE_SEPARATOR}.get(first.separator, first.separator)
    decimal_comma = None if first.decimal == "auto" else first.decimal == ","
    if not first.header:
        return read_csv_table(
            data,
            source_name,
            separator=separator or ",",
            decimal_comma=decimal_comma,
            column_names=[feature.raw_column for feature in first.features],
        )
    return read_csv_table(
        data,
        source_name,
        header_markers=[layout.marker for layout in config.layouts],
        separator=separator,
        decimal_comma=decimal_comma,
    )


def choose_layout(config: ModuleConfig, table: CsvTable) -> LayoutConfig:
    """The layout whose marker column (its timestamp column) the header has."""
    if len(config.layouts) == 1 and not config.layouts[0].header:
        return config.layouts[0]
    for layout in config.layouts:
        if table.has_column(layout.marker):
            return layout
    markers = " or ".join(repr(layout.marker) for layout in config.layouts)
    raise DataFileError(
        table.name,
        f"not a {config.name} readings file: the header has no {markers} column",
        column=config.layouts[0].marker,
    )


def load_module_csv(
    config: ModuleConfig, data: bytes | str | Path, source_name: str | None = None
) -> SensorFrame:
    """Readings of the module `config` describes, from a file (Path), uploaded bytes or CSV text."""
    table = read_module_table(config, data, source_name)
    layout = choose_layout(config, table)
    return layout_frame(Module(config.name), layout, table, source_label(data, source_name))


def layout_frame(module: Module, layout: LayoutConfig, table: CsvTable, source: str) -> SensorFrame:
    """A frame of `table` read as `layout` says: features in layout order, float64, labels when the file
    has the label column."""
    values, labels = layout_readings(layout, table)
    return SensorFrame(module=module, source=source, values=values, labels=labels)


def layout_readings(layout: LayoutConfig, table: CsvTable) -> tuple[pd.DataFrame, pd.Series | None]:
    """The feature values (float64, DatetimeIndex) and labels (None without a label column) of `table`."""
    columns = {feature.name: _pick_column(table, feature) for feature in layout.features}
    timestamp_column = layout.timestamp.column
    required = [*([timestamp_column] if timestamp_column else []), *columns.values()]
    table.require_columns([*required, *(checked.column for checked in layout.checked_columns)])
    index = _index(layout, table)
    if timestamp_column is not None:
        table.require_increasing(index, timestamp_column)
    values = pd.DataFrame(
        {feature.name: _read(table, columns[feature.name], feature) for feature in layout.features},
        index=index,
        dtype=np.float64,
    )
    for checked in layout.checked_columns:
        _read(table, checked.column, checked)
    labels = None
    if layout.label is not None and table.has_column(layout.label.column):
        label = layout.label
        codes = {key: np.nan if code is None else code for key, code in label.codes.items()}
        if label.otherwise is not None:
            raw = table.text(label.column).str.replace(" ", "", regex=False).str.lower()
            known = {key.replace(" ", "").lower(): code for key, code in codes.items()}
            mapped = raw.map(known).where(raw.isin(list(known)), label.otherwise)
            labels = pd.Series(mapped.to_numpy(dtype=np.float64), index=index, name="label")
        else:
            labels = pd.Series(table.categories(label.column, codes).to_numpy(), index=index, name="label")
    return values, labels


def _pick_column(table: CsvTable, feature: FeatureConfig) -> str:
    """The first spelling of the feature's column the file has (the main one when it has none)."""
    return next((column for column in feature.raw_columns if table.has_column(column)), feature.raw_column)


def _read(table: CsvTable, column: str, spec: FeatureConfig | ColumnConfig) -> np.ndarray:
    if spec.codes is not None and spec.kind is not FeatureKind.NUMERIC:
        return table.categories(column, spec.codes).to_numpy()
    return table.numbers(column).to_numpy()


def _index(layout: LayoutConfig, table: CsvTable) -> pd.DatetimeIndex:
    stamp = layout.timestamp
    if stamp.column is None:
        assert stamp.start is not None and layout.sampling_interval is not None  # the config checks both
        return pd.date_range(
            stamp.start, periods=len(table), freq=pd.Timedelta(layout.sampling_interval), name="timestamp"
        )
    index = table.timestamps(stamp.column, stamp.formats)
    return rolled_midnights(index) if stamp.closing_midnight else index


def rolled_midnights(index: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """The UCI file dates each day's last reading (00:00, NSM 0) with the day it closes: '01/01/2018 0:00'
    follows '01/01/2018 23:45'. A midnight reading earlier than the one before it is moved to the next day."""
    stamps = index.to_numpy()
    earlier_than_previous = np.zeros(len(index), dtype=bool)
    earlier_than_previous[1:] = stamps[1:] < stamps[:-1]
    at_midnight = (index.hour == 0) & (index.minute == 0) & (index.second == 0)
    rolled = earlier_than_previous & at_midnight
    return pd.DatetimeIndex(index.where(~rolled, index + pd.Timedelta(days=1)), name="timestamp")
