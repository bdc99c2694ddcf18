"""Any labelled CSV as a SensorFrame, for `plantwatch evaluate --train A.csv --test B.csv --label-column L`.

Features are every numeric column other than the time, label and ignored ones. A column counts as numeric
when nearly all its cells read as numbers; a cell of such a column that does not, or is empty, is an error
naming the file, the line and the column (a sensor column with a stray "n/a" must not silently vanish). Label:
0 normal, any other number an anomaly, empty unlabelled. Without a time column the rows get a running index
(one reading a minute from 2000-01-01 inside plantwatch; the index itself in what is written out).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from plantwatch.domain.errors import DataFileError
from plantwatch.domain.frames import SensorFrame
from plantwatch.domain.modules import Module

# A column whose cells are numbers in at least this share is a sensor column: the rest are errors in it.
NUMERIC_SHARE = 0.95
RUNNING_INDEX_START = pd.Timestamp("2000-01-01")
RUNNING_INDEX_STEP = pd.Timedelta(minutes=1)
# The header is line 1 of the file: data row i (0-based) is on line i + 2.
FIRST_DATA_LINE = 2


@dataclass(frozen=True)
class LabelledCsv:
    frame: SensorFrame
    has_time: bool
    skipped_columns: list[str]


def load_labelled_csv(
    path: Path,
    label_column: str,
    time_column: str | None = None,
    sep: str = ",",
    ignore_columns: Sequence[str] = (),
    features: Sequence[str] | None = None,
) -> LabelledCsv:
    """Load `path`; `features`, when given, are the columns it must have (the training file's)."""
    name = str(path)
    try:
        cells = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, skipinitialspace=True)
    except FileNotFoundError:
        raise DataFileError(name, "file not found") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise DataFileError(name, f"not a readable CSV file with separator {sep!r}: {error}") from None
    cells.columns = [str(c).strip().lstrip("\ufeff") for c in cells.columns]
    header = ", ".join(cells.columns)
    for role, column in (("label", label_column), ("time", time_column)):
        if column is not None and column not in cells.columns:
            raise DataFileError(name, f"no {role} column {column!r}; header has: {header}", column=column)
    missing_ignored = [c for c in ignore_columns if c not in cells.columns]
    if missing_ignored:
        raise DataFileError(name, f"--ignore-columns names {missing_ignored}, not in the header: {header}")
    if cells.empty:
        raise DataFileError(name, "file has a header but no data rows", row=1)

    index = _time_index(cells, time_column, name)
    labels = _labels(cells[label_column], name, label_column)
    reserved = {label_column, *ignore_columns, *([time_column] if time_column else [])}
    candidates = [c for c in cells.columns if c not in reserved]
    if features is not None:
        absent = [f for f in features if f not in candidates]
        if absent:
            raise DataFileError(name, f"lacks the training file's feature columns {absent}")
        chosen, skipped = list(features), [c for c in candidates if c not in features]
    else:
        chosen = [c for c in candidates if _numeric_share(cells[c]) >= NUMERIC_SHARE]
        skipped = [c for c in candidates if c not in chosen]
        if not chosen:
            raise DataFileError(
                name,
                "no numeric feature column (every column is the label, the time, ignored or not numbers): "
                + header,
            )
    values = pd.DataFrame({c: _numbers(cells[c], name, c) for c in chosen}, index=index)
    frame = SensorFrame(
        module=Module.MACHINE,
        source=path.name,
        values=values,
        labels=pd.Series(labels, index=index, name="label"),
    )
    return LabelledCsv(frame=frame, has_time=time_column is not None, skipped_columns=skipped)


def _numeric_share(cells: pd.Series) -> float:
    text = cells.str.strip()
    filled = text[text != ""]
    if filled.empty:
        return 0.0
    return float(pd.to_numeric(filled, errors="coerce").notna().mean())


def _numbers(cells: pd.Series, name: str, column: str) -> np.ndarray:
    text = cells.str.strip()
    parsed = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(parsed)
    if bad.any():
        row = int(np.argmax(bad))
        value = text.iloc[row]
        what = "missing value" if value == "" else f"value {value!r} is not a finite number"
        raise DataFileError(name, what, row=row + FIRST_DATA_LINE, column=column)
    return parsed


def _labels(cells: pd.Series, name: str, column: str) -> np.ndarray:
    text = cells.str.strip()
    parsed = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64)
    bad = np.isnan(parsed) & (text != "").to_numpy()
    if bad.any():
        row = int(np.argmax(bad))
        raise DataFileError(
            name,
            f"label {text.iloc[row]!r} is not a number (0 normal, non-zero anomaly, empty unlabelled)",
            row=row + FIRST_DATA_LINE,
            column=column,
        )
    return np.where(np.isnan(parsed), np.nan, (parsed != 0).astype(np.float64))


def _time_index(cells: pd.DataFrame, time_column: str | None, name: str) -> pd.DatetimeIndex:
    if time_column is None:
        return pd.DatetimeIndex(
            pd.date_range(RUNNING_INDEX_START, periods=len(cells), freq=RUNNING_INDEX_STEP), name="timestamp"
        )
    text = cells[time_column].str.strip()
    parsed = pd.to_datetime(text, errors="coerce", format="mixed")
    bad = parsed.isna().to_numpy()
    if bad.any():
        row = int(np.argmax(bad))
        raise DataFileError(
            name, f"time {text.iloc[row]!r} is not a date", row=row + FIRST_DATA_LINE, column=time_column
        )
    index = pd.DatetimeIndex(parsed, name="timestamp")
    if index.tz is not None:
        index = index.tz_convert(None)
    backwards = np.flatnonzero(index.asi8[1:] <= index.asi8[:-1])
    if backwards.size:
        row = int(backwards[0]) + 1
        raise DataFileError(
            name,
            f"time {index[row]} is not after the previous row's {index[row - 1]} "
            "(rows must be in time order)",
            row=row + FIRST_DATA_LINE,
            column=time_column,
        )
    return index
