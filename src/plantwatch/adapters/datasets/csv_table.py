"""Read a CSV into a table of strings that remembers each row's line number, and convert its columns.

Every loader goes through here so that a bad file always fails the same way: a DataFileError naming the file,
the 1-based line number (header = line 1) and the column. Cells stay strings until a loader converts them,
so a bad value can be located exactly instead of surfacing as a dtype error deep inside pandas.
"""

import csv
import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from plantwatch.domain.errors import DataFileError
from plantwatch.domain.frames import SensorFrame

_FIELD_COUNT_ERROR = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
# How far down a title or grouping row may push the header (SWaT v0 files carry one stage-grouping row).
_HEADER_SEARCH_LINES = 5
# pandas' separator for runs of spaces and tabs (a file of columns aligned by spaces, such as TEP's).
WHITESPACE_SEPARATOR = r"\s+"


@dataclass(frozen=True)
class CsvTable:
    """A CSV as strings, column names stripped; line_numbers[i] is row i's line in the file."""

    name: str
    cells: pd.DataFrame
    line_numbers: np.ndarray
    decimal_comma: bool
    lines: list[str]
    delimiter: str | None = None
    """The separator the file was read with (None: ';' with decimal commas, else ',')."""

    def __len__(self) -> int:
        return len(self.cells)

    def line_of(self, position: int) -> int:
        return int(self.line_numbers[position])

    def has_column(self, column: str) -> bool:
        return column in self.cells.columns

    def require_columns(self, columns: Sequence[str]) -> None:
        for column in columns:
            if column not in self.cells.columns:
                found = ", ".join(str(c) for c in self.cells.columns)
                raise DataFileError(self.name, f"missing required column; header has: {found}", column=column)

    def text(self, column: str) -> pd.Series:
        """The column's cells stripped, with empty cells reported as missing values (a truncated row)."""
        values = self.cells[column].str.strip()
        empty = (values == "").to_numpy()
        if empty.any():
            position = int(np.argmax(empty))
            raise DataFileError(
                self.name, self._missing_value_message(position), self.line_of(position), column
            )
        return values

    def numbers(self, column: str) -> pd.Series:
        """The column as float64; the first cell that is not a number is reported by line and column."""
        values = self.text(column)
        if self.decimal_comma:
            values = values.str.replace(",", ".", regex=False)
        parsed = pd.to_numeric(values, errors="coerce")
        bad = parsed.isna().to_numpy() | ~np.isfinite(parsed.to_numpy(dtype=np.float64))
        if bad.any():
            position = int(np.argmax(bad))
            raise DataFileError(
                self.name,
                f"value {values.iloc[position]!r} is not a finite number",
                self.line_of(position),
                column,
            )
        return parsed.astype(np.float64)

    def categories(self, column: str, codes: Mapping[str, float]) -> pd.Series:
        """The column mapped through `codes` (keys compared without spaces, case-insensitive)."""
        values = self.text(column)
        normalised = {key.replace(" ", "").lower(): code for key, code in codes.items()}
        keys = values.str.replace(" ", "", regex=False).str.lower()
        # A code may itself be NaN (an "unknown" label), so membership, not the mapped value, decides.
        bad = ~keys.isin(list(normalised)).to_numpy()
        if bad.any():
            position = int(np.argmax(bad))
            expected = ", ".join(codes)
            raise DataFileError(
                self.name,
                f"value {values.iloc[position]!r} is not one of: {expected}",
                self.line_of(position),
                column,
            )
        return keys.map(normalised).astype(np.float64)

    def timestamps(self, column: str, formats: Sequence[str]) -> pd.DatetimeIndex:
        """The column parsed with the first of `formats` that reads its first cell; all must match it."""
        values = self.text(column)
        first = values.iloc[0]
        chosen = next(
            (f for f in formats if not pd.isna(pd.to_datetime(first, format=f, errors="coerce"))), None
        )
        if chosen is None:
            raise DataFileError(
                self.name,
                f"date {first!r} matches none of the formats {list(formats)}",
                self.line_of(0),
                column,
            )
        parsed = pd.to_datetime(values, format=chosen, errors="coerce")
        bad = parsed.isna().to_numpy()
        if bad.any():
            position = int(np.argmax(bad))
            raise DataFileError(
                self.name,
                f"date {values.iloc[position]!r} does not match the format {chosen!r} of the first row",
                self.line_of(position),
                column,
            )
        return pd.DatetimeIndex(parsed, name="timestamp")

    def require_increasing(self, index: pd.DatetimeIndex, column: str) -> None:
        """Readings must be in strictly increasing time order: detectors read them as a sequence."""
        stamps = index.asi8
        backwards = np.flatnonzero(stamps[1:] <= stamps[:-1])
        if backwards.size:
            position = int(backwards[0]) + 1
            raise DataFileError(
                self.name,
                f"timestamp {index[position]} is not after the previous row's {index[position - 1]}",
                self.line_of(position),
                column,
            )

    def _missing_value_message(self, position: int) -> str:
        line = self.raw_line(position)
        fields = (
            line.split()
            if self.separator == WHITESPACE_SEPARATOR
            else next(csv.reader([line], delimiter=self.separator), [])
        )
        expected = len(self.cells.columns)
        if len(fields) < expected:
            return f"truncated row: expected {expected} fields, found {len(fields)}"
        return "missing value"

    @property
    def separator(self) -> str:
        if self.delimiter is not None:
            return self.delimiter
        return ";" if self.decimal_comma else ","

    def raw_line(self, position: int) -> str:
        return self.lines[self.line_of(position) - 1]


def read_csv_table(
    data: bytes | str | Path,
    name: str | None = None,
    header_markers: Sequence[str] = (),
    *,
    separator: str | None = None,
    decimal_comma: bool | None = None,
    column_names: Sequence[str] | None = None,
) -> CsvTable:
    """Read CSV text, bytes or a file. Errors name the file by its path, or by `name` for text and bytes.

    header_markers: column names that identify the header; lines above the first line that contains one of
    them are skipped (title or grouping rows). Without markers the first non-blank line is the header.
    separator: None sniffs ';' (then with decimal commas) or ',' from the header; WHITESPACE_SEPARATOR reads
    runs of spaces. decimal_comma: None means "when the separator is ';'".
    column_names: the file has no header row; its fields are these columns, in order. A file stored
    transposed (one line per column) is read as well: its rows are then numbered by field, not line.
    """
    if isinstance(data, Path):
        name = str(data)
        try:
            data = data.read_bytes()
        except OSError as error:
            raise DataFileError(name, f"cannot read file: {error.strerror or error}") from error
    name = name or "<upload>"
    text = _decode(data) if isinstance(data, bytes) else data.removeprefix("\ufeff")
    lines = _LINE_BREAK.split(text)
    content = [number for number, line in enumerate(lines) if line.strip()]
    if not content:
        raise DataFileError(name, "file is empty")
    if column_names is not None:
        header_at = -1
        sep = separator or ","
    else:
        header_at = _find_header(lines, content, header_markers)
        header = lines[header_at]
        sep = separator or (";" if header.count(";") > header.count(",") else ",")
    comma = (sep == ";") if decimal_comma is None else decimal_comma
    try:
        cells = pd.read_csv(
            io.StringIO(text),
            sep=sep,
            dtype=str,
            keep_default_na=False,
            skiprows=max(header_at, 0),
            skip_blank_lines=True,
            header=None if column_names is not None else "infer",
        )
    except pd.errors.ParserError as error:
        match = _FIELD_COUNT_ERROR.search(str(error))
        if match is None:
            raise DataFileError(name, f"not a readable CSV file: {error}") from error
        expected, line, found = match.groups()
        raise DataFileError(name, f"expected {expected} fields, found {found}", row=int(line)) from error
    except pd.errors.EmptyDataError as error:
        raise DataFileError(name, "file is empty") from error
    data_lines = np.array([n + 1 for n in content if n > header_at], dtype=np.int64)
    if column_names is not None:
        cells, data_lines = _named_columns(name, cells, data_lines, column_names)
    cells.columns = [str(c).strip() for c in cells.columns]
    if cells.empty:
        raise DataFileError(name, "file has a header but no data rows", row=header_at + 1)
    if len(data_lines) != len(cells):
        # Quoted fields spanning lines: fall back to row order, which is still right up to that point.
        data_lines = np.arange(len(cells), dtype=np.int64) + header_at + 2
    delimiter = None if separator is None else sep
    return CsvTable(
        name=name, cells=cells, line_numbers=data_lines, decimal_comma=comma, lines=lines, delimiter=delimiter
    )


def _named_columns(
    name: str, cells: pd.DataFrame, data_lines: np.ndarray, column_names: Sequence[str]
) -> tuple[pd.DataFrame, np.ndarray]:
    """A header-less table's cells under `column_names`, turned round when the file is stored transposed."""
    expected = len(column_names)
    if cells.shape[1] != expected and cells.shape[0] == expected:
        cells = cells.T.reset_index(drop=True)
        data_lines = np.arange(1, len(cells) + 1, dtype=np.int64)
    if cells.shape[1] != expected:
        raise DataFileError(
            name,
            f"expected {expected} fields (the module's features), found {cells.shape[1]}",
            row=int(data_lines[0]) if len(data_lines) else 1,
        )
    cells.columns = list(column_names)
    return cells, data_lines


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Spreadsheet exports on Windows write cp1252; every byte decodes in it, so this cannot fail.
        return data.decode("cp1252", errors="replace")


def _find_header(lines: list[str], content: list[int], header_markers: Sequence[str]) -> int:
    markers = [marker.lower() for marker in header_markers]
    for number in content[:_HEADER_SEARCH_LINES]:
        if any(marker in lines[number].lower() for marker in markers):
            return number
    return content[0]


def source_label(data: bytes | str | Path, source_name: str | None) -> str:
    """What a frame's `source` is called: the given name, else the file name, else "upload"."""
    if source_name:
        return source_name
    return data.name if isinstance(data, Path) else "upload"


def require_features(frame: SensorFrame, features: Sequence[str], path: Path) -> None:
    """Writers need every feature of the raw layout they write."""
    missing = [f for f in features if f not in frame.values.columns]
    if missing:
        raise DataFileError(str(path), f"cannot write: the frame lacks features {missing}")
