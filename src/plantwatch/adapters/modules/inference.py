"""Infer a module configuration from a CSV file: separator, time column and format, label column and codes,
each feature's kind (numeric, binary, categorical with codes) and unit, the sampling interval.

What cannot be inferred fails with a DataFileError naming the file, row and column, and saying which option
settles it (--time-column, --label-column, --sep, --ignore-columns).
"""

import csv
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from pandas.tseries.api import guess_datetime_format

from plantwatch.adapters.datasets.configured import choose_layout, layout_readings, read_module_table
from plantwatch.adapters.datasets.csv_table import CsvTable, read_csv_table
from plantwatch.adapters.modules.config import (
    FeatureConfig,
    FeatureKind,
    LabelConfig,
    LayoutConfig,
    ModuleConfig,
    TimestampConfig,
)
from plantwatch.domain.errors import DataFileError
from plantwatch.domain.modules import MODULE_NAME

SEPARATORS = ",;\t|"
# A text column with more distinct values than this is an identifier or free text, not a category.
MAX_CATEGORIES = 20
_LABEL_NAME = re.compile(
    r"label|anomal|fault|attack|outlier|failure|alarm|status|class|target", re.IGNORECASE
)
_NORMAL_WORDS = {"0", "normal", "ok", "false", "no", "none", "nofault", "good", "healthy", "n"}
_UNIT = re.compile(r"^(?P<name>.*?)\s*[\(\[](?P<unit>[^\)\]]+)[\)\]]\s*$")
_SAMPLE_BYTES = 64 * 1024


@dataclass(frozen=True)
class InferredModule:
    config: ModuleConfig
    rows: int
    separator: str


def sniff_separator(path: Path) -> str:
    """The separator of the file's first lines: the one csv.Sniffer finds among , ; tab |, else the most
    frequent of them in the header."""
    try:
        with path.open("r", encoding="utf-8-sig", errors="replace", newline="") as handle:
            sample = handle.read(_SAMPLE_BYTES)
    except OSError as error:
        raise DataFileError(str(path), f"cannot read file: {error.strerror or error}") from error
    lines = [line for line in sample.splitlines() if line.strip()]
    if not lines:
        raise DataFileError(str(path), "file is empty")
    try:
        return csv.Sniffer().sniff("\n".join(lines[:20]), delimiters=SEPARATORS).delimiter
    except csv.Error:
        header = lines[0]
        return max(SEPARATORS, key=header.count)


def feature_name(column: str) -> str:
    """A plain feature name for a raw column: 'Temperature (°C)' -> 'temperature'."""
    match = _UNIT.match(column)
    base = match.group("name") if match else column
    name = re.sub(r"[^0-9a-zA-Z]+", "_", base).strip("_").lower()
    return name or "feature"


def unit_of(column: str) -> str:
    match = _UNIT.match(column)
    return match.group("unit").strip() if match else ""


def time_format(values: pd.Series) -> str | None:
    """The strftime format every cell of `values` reads with, or None. Day-first is tried before month-first
    (when both read, the one that keeps time increasing wins, else day-first, as most plants write dates)."""
    first = str(values.iloc[0])
    if pd.to_numeric(values, errors="coerce").notna().all():
        return None  # plain numbers are readings, not dates
    readings: list[tuple[str, bool]] = []
    for dayfirst in (True, False):
        guessed = guess_datetime_format(first, dayfirst=dayfirst)
        if guessed is None or guessed in (fmt for fmt, _ in readings):
            continue
        parsed = pd.to_datetime(values, format=guessed, errors="coerce")
        if parsed.notna().all():
            readings.append((guessed, bool(pd.DatetimeIndex(parsed).is_monotonic_increasing)))
    increasing = [fmt for fmt, ordered in readings if ordered]
    chosen = increasing or [fmt for fmt, _ in readings]
    return chosen[0] if chosen else None


def label_codes(table: CsvTable, column: str) -> dict[str, float | None]:
    """Each raw label value as 0 (normal) or 1 (anomaly): zero and words like 'normal' are normal."""
    values = table.text(column)
    codes: dict[str, float | None] = {}
    for raw in sorted(values.unique()):
        number = pd.to_numeric(raw, errors="coerce")
        if not pd.isna(number):
            codes[raw] = 0.0 if float(number) == 0.0 else 1.0
        else:
            codes[raw] = 0.0 if raw.replace(" ", "").lower() in _NORMAL_WORDS else 1.0
    return codes


def _feature(table: CsvTable, column: str, name: str) -> FeatureConfig:
    try:
        numbers = table.numbers(column)
    except DataFileError as error:
        if error.message == "missing value" or error.message.startswith("truncated row"):
            raise
        text = table.text(column)
        distinct = sorted(text.unique())
        if len(distinct) > MAX_CATEGORIES:
            raise DataFileError(
                table.name,
                f"text such as {text.iloc[0]!r} with {len(distinct)} distinct values: neither a number nor a "
                f"category (at most {MAX_CATEGORIES}); leave the column out with --ignore-columns",
                error.row,
                column,
            ) from None
        codes = {value: float(code) for code, value in enumerate(distinct)}
        kind = FeatureKind.BINARY if len(distinct) == 2 else FeatureKind.CATEGORICAL
        return FeatureConfig(name=name, column=column, unit=unit_of(column), kind=kind, codes=codes)
    binary = set(np.unique(numbers.to_numpy())) <= {0.0, 1.0}
    kind = FeatureKind.BINARY if binary else FeatureKind.NUMERIC
    return FeatureConfig(name=name, column=column, unit=unit_of(column), kind=kind)


def _interval(index: pd.DatetimeIndex) -> str | None:
    if len(index) < 2:
        return None
    seconds = float(np.median(np.diff(index.as_unit("ns").asi8)) / 1e9)
    for unit, size in (("h", 3600), ("min", 60), ("s", 1)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{round(seconds * 1000)}ms"


def infer_module(
    name: str,
    path: Path,
    time_column: str | None = None,
    label_column: str | None = None,
    separator: str | None = None,
    ignore_columns: Sequence[str] = (),
) -> InferredModule:
    """A configuration for module `name` that reads `path`, checked by loading the file with it."""
    if not MODULE_NAME.match(name):
        raise DataFileError(
            str(path),
            f"module name {name!r}: use lower-case letters, digits, '_' or '-', starting with a letter",
        )
    sep = separator or sniff_separator(path)
    table = read_csv_table(path, separator=sep)
    columns = list(table.cells.columns)
    for given, option in ((time_column, "--time-column"), (label_column, "--label-column")):
        if given is not None and given not in columns:
            raise DataFileError(
                table.name, f"no such column for {option}; header has: {columns}", column=given
            )
    unknown = [column for column in ignore_columns if column not in columns]
    if unknown:
        raise DataFileError(
            table.name, f"--ignore-columns names columns the header lacks: {unknown}", column=unknown[0]
        )
    candidates = [column for column in columns if column not in ignore_columns]

    if time_column is None:
        time_column = next((c for c in candidates if time_format(table.text(c)) is not None), None)
        if time_column is None:
            raise DataFileError(
                table.name, "no column reads as date and time; name it with --time-column", row=1
            )
    formats = time_format(table.text(time_column))
    if formats is None:
        raise DataFileError(
            table.name,
            f"value {table.text(time_column).iloc[0]!r} is not a date and time",
            table.line_of(0),
            time_column,
        )
    if label_column is None:
        label_column = next(
            (
                c
                for c in candidates
                if c != time_column and _LABEL_NAME.search(c) and table.text(c).nunique() <= MAX_CATEGORIES
            ),
            None,
        )

    features: list[FeatureConfig] = []
    used: set[str] = set()
    for column in candidates:
        if column in (time_column, label_column):
            continue
        base = feature_name(column)
        unique, n = base, 2
        while unique in used:
            unique, n = f"{base}_{n}", n + 1
        used.add(unique)
        features.append(_feature(table, column, unique))
    if not features:
        raise DataFileError(table.name, "no feature columns left besides the time and label columns", row=1)

    index = pd.DatetimeIndex(pd.to_datetime(table.text(time_column), format=formats))
    layout = LayoutConfig(
        features=features,
        timestamp=TimestampConfig(column=time_column, formats=[formats]),
        separator=sep,
        # a value the file did not show (often the fault word of a file with no fault yet) is an anomaly
        label=None
        if label_column is None
        else LabelConfig(column=label_column, codes=label_codes(table, label_column), otherwise=1.0),
        sampling_interval=_interval(index),
    )
    config = ModuleConfig(
        name=name,
        title=name.replace("_", " ").replace("-", " ").capitalize(),
        description=f"Inferred from {path.name}",
        layouts=[layout],
    )
    # the file must read back with what was inferred
    check = read_module_table(config, path, None)
    values, _ = layout_readings(choose_layout(config, check), check)
    return InferredModule(config=config, rows=len(values), separator=sep)
