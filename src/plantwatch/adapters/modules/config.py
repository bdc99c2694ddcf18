"""What a module configuration says, validated with pydantic, and how one is read from or written to YAML.

A configuration describes a module's readings as a file lays them out: the features (raw column, unit, kind:
numeric, binary or categorical with codes), the timestamp column and its formats (or, for a file without
timestamps, the start and the sampling interval), the separator, the label column and its codes, the default
detector and the alarm settings. A module whose data comes in several public layouts (cyber: SWaT and
BATADAL) lists them under `layouts`; a module with one layout writes its fields at the top level.
"""

from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from plantwatch.adapters.detectors.catalog import DETECTORS
from plantwatch.domain.alarms import parse_alarm_rule
from plantwatch.domain.errors import InvalidInputError, ModuleConfigError
from plantwatch.domain.modules import MODULE_NAME
from plantwatch.domain.thresholds import THRESHOLD_METHODS

# Keys of a layout, which a one-layout configuration may write at its top level.
LAYOUT_KEYS = (
    "features",
    "checked_columns",
    "timestamp",
    "separator",
    "decimal",
    "header",
    "label",
    "sampling_interval",
)
WHITESPACE = "whitespace"


class FeatureKind(StrEnum):
    NUMERIC = "numeric"
    BINARY = "binary"
    CATEGORICAL = "categorical"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _code_keys(codes: Any) -> Any:
    """Codes as written in YAML: a number key (0: normal) is its text; a key YAML read as a boolean (on, off,
    yes, no) cannot be told back, so it must be quoted."""
    if not isinstance(codes, dict):
        return codes
    keys: dict[str, Any] = {}
    for key, value in codes.items():
        if isinstance(key, bool):
            raise ValueError(f"YAML reads the code {key!r} as a boolean: quote it, e.g. 'on': 1 or 'off': 0")
        keys[str(key) if isinstance(key, int | float) else key] = value
    return keys


def _check_codes(kind: "FeatureKind", codes: dict[str, float] | None) -> None:
    if kind is FeatureKind.CATEGORICAL and not codes:
        raise ValueError("a categorical column needs codes (raw value: number)")
    if kind is FeatureKind.NUMERIC and codes:
        raise ValueError("a numeric column takes no codes; make it categorical or binary")
    if kind is FeatureKind.BINARY and codes is not None and len(set(codes.values())) != 2:
        raise ValueError("a binary column's codes map to exactly two numbers")


class ColumnConfig(_Strict):
    """A raw column and how its cells read: numbers, or codes (categorical, or binary written as words)."""

    column: str = Field(min_length=1)
    kind: FeatureKind = FeatureKind.NUMERIC
    codes: dict[str, float] | None = None

    _keys = field_validator("codes", mode="before")(_code_keys)

    @model_validator(mode="after")
    def _codes_fit_the_kind(self) -> Self:
        _check_codes(self.kind, self.codes)
        return self


class FeatureConfig(_Strict):
    """A feature: its name inside plantwatch, the raw column it is read from (and other spellings of it),
    its unit and kind."""

    name: str = Field(min_length=1, max_length=200)
    column: str = Field(default="", description="the raw column; empty: called as the feature")
    aliases: list[str] = Field(default_factory=list, description="other spellings of the column")
    unit: str = ""
    kind: FeatureKind = FeatureKind.NUMERIC
    codes: dict[str, float] | None = None
    description: str = ""

    _keys = field_validator("codes", mode="before")(_code_keys)

    @model_validator(mode="after")
    def _codes_fit_the_kind(self) -> Self:
        _check_codes(self.kind, self.codes)
        return self

    @property
    def raw_column(self) -> str:
        return self.column or self.name

    @property
    def raw_columns(self) -> list[str]:
        """The column, then its other spellings, in the order a loader looks for them."""
        return [self.raw_column, *self.aliases]


class TimestampConfig(_Strict):
    """Where a reading's time comes from: a column read with one of `formats` (strftime), or, for files
    without one, `start` plus the sampling interval per row."""

    column: str | None = None
    formats: list[str] = Field(default_factory=list)
    # The UCI steel file dates a day's closing 00:00 reading with the day it closes.
    closing_midnight: bool = False
    start: datetime | None = None

    @model_validator(mode="after")
    def _column_or_start(self) -> Self:
        if self.column is not None and not self.formats:
            raise ValueError("a timestamp column needs formats (strftime, e.g. %Y-%m-%d %H:%M:%S)")
        if self.column is None and self.start is None:
            raise ValueError("without a timestamp column, give start (the first reading's time)")
        return self


class LabelConfig(_Strict):
    """The label column: each raw value means 1 (anomaly), 0 (normal) or null (unknown)."""

    column: str = Field(min_length=1)
    codes: dict[str, float | None]
    otherwise: float | None = Field(
        default=None,
        description="label of a value not in codes (e.g. 1: anything but the normal values is an anomaly); "
        "unset, such a value is an error",
    )

    _keys = field_validator("codes", mode="before")(_code_keys)

    @field_validator("codes")
    @classmethod
    def _codes_are_labels(cls, codes: dict[str, float | None]) -> dict[str, float | None]:
        bad = {key: value for key, value in codes.items() if value not in (0.0, 1.0, None)}
        if bad:
            raise ValueError(f"label codes map to 1 (anomaly), 0 (normal) or null (unknown), got {bad}")
        return codes

    @field_validator("otherwise")
    @classmethod
    def _otherwise_is_a_label(cls, value: float | None) -> float | None:
        if value not in (0.0, 1.0, None):
            raise ValueError("otherwise is 1 (anomaly) or 0 (normal)")
        return value


class LayoutConfig(_Strict):
    """How one file layout of the module's readings reads."""

    name: str = "default"
    features: list[FeatureConfig] = Field(min_length=1)
    checked_columns: list[ColumnConfig] = Field(
        default_factory=list, description="columns a file must have, checked but not used as features"
    )
    timestamp: TimestampConfig
    separator: str = Field(default="auto", description="auto (';' or ','), whitespace, or the character")
    decimal: Literal["auto", ".", ","] = "auto"
    header: bool = True
    label: LabelConfig | None = None
    sampling_interval: str | None = Field(default=None, description="pandas offset, e.g. 15min, 1s")

    @field_validator("sampling_interval")
    @classmethod
    def _interval_reads(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                interval = pd.Timedelta(value)
            except ValueError:
                raise ValueError(f"{value!r} is not a time interval like 15min, 1s or 1h") from None
            if interval <= pd.Timedelta(0):
                raise ValueError("the sampling interval must be positive")
        return value

    @field_validator("separator")
    @classmethod
    def _one_separator(cls, value: str) -> str:
        if value not in ("auto", WHITESPACE) and len(value) != 1:
            raise ValueError("separator is auto, whitespace or one character, e.g. ';' or '\\t'")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        names = [feature.name for feature in self.features]
        columns = [column for feature in self.features for column in feature.raw_columns]
        for what, values in (("feature names", names), ("feature columns", columns)):
            repeated = sorted({value for value in values if values.count(value) > 1})
            if repeated:
                raise ValueError(f"{what} must be unique; repeated: {repeated}")
        if self.timestamp.column is None and self.sampling_interval is None:
            raise ValueError("without a timestamp column, sampling_interval says how far apart rows are")
        if not self.header and (self.timestamp.column is not None or self.label is not None):
            raise ValueError("a file without a header row has only feature columns (no timestamp or label)")
        return self

    @property
    def marker(self) -> str:
        """The column whose presence in a header says a file has this layout."""
        return self.timestamp.column or self.features[0].raw_column

    @property
    def feature_names(self) -> list[str]:
        return [feature.name for feature in self.features]

    def feature(self, name: str) -> FeatureConfig | None:
        return next((feature for feature in self.features if feature.name == name), None)


class AlarmConfig(_Strict):
    """How the served model turns scores into alarms: the alarm rule (domain/alarms.py), and how its
    threshold is calibrated on normal validation scores."""

    rule: str = Field(
        default="none",
        description="alarm rule spec: none, ewma:ALPHA, cusum[:Q], KofN, joined with + (e.g. ewma:0.2+2of3)",
    )
    threshold: str = "pot"
    risk: float = Field(default=1e-3, gt=0, lt=1, description="POT: chance a normal reading passes")
    quantile: float = Field(default=0.995, gt=0, lt=1, description="quantile method: of normal scores")
    alarms_per_day: float = Field(
        default=1.0, ge=0, description="budget method: false alarms per day accepted on normal data"
    )

    @field_validator("threshold")
    @classmethod
    def _known_method(cls, value: str) -> str:
        if value not in THRESHOLD_METHODS:
            raise ValueError(f"threshold is one of {', '.join(THRESHOLD_METHODS)}")
        return value

    @field_validator("rule")
    @classmethod
    def _rule_reads(cls, value: str) -> str:
        try:
            rule = parse_alarm_rule(value)
        except InvalidInputError as error:
            raise ValueError(str(error)) from None
        if not rule.applies_live:
            raise ValueError("a minimum gap (gap:N) cannot be applied live; leave it out")
        return rule.spec

    def params(self) -> dict[str, float]:
        if self.threshold == "pot":
            return {"risk": self.risk}
        if self.threshold == "budget":
            return {"alarms_per_day": self.alarms_per_day}
        return {"q": self.quantile}


class ModuleConfig(_Strict):
    name: str
    title: str = ""
    description: str = ""
    default_detector: str = "pca"
    timezone: str = Field(
        default="UTC",
        description="IANA time zone of the plant's clock (e.g. Europe/Berlin): readings and anomalies are in "
        "its local time, and a timestamp sent with an offset is converted to it",
    )
    alarm: AlarmConfig = Field(default_factory=AlarmConfig)
    layouts: list[LayoutConfig] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _one_layout_at_top_level(cls, data: Any) -> Any:
        if isinstance(data, dict) and "layouts" not in data and any(key in data for key in LAYOUT_KEYS):
            data = dict(data)
            data["layouts"] = [{key: data.pop(key) for key in LAYOUT_KEYS if key in data}]
        return data

    @field_validator("name")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        if not MODULE_NAME.match(value):
            raise ValueError(
                "a module name is lower-case letters, digits, '_' or '-', starting with a letter (at most 40)"
            )
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            raise ValueError(f"{value!r} is not an IANA time zone like UTC or Europe/Berlin") from None
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @field_validator("default_detector")
    @classmethod
    def _known_detector(cls, value: str) -> str:
        if value not in DETECTORS:
            raise ValueError(f"default_detector is one of {', '.join(DETECTORS)}")
        return value

    @model_validator(mode="after")
    def _layouts_tell_apart(self) -> Self:
        if len(self.layouts) > 1:
            if any(not layout.header for layout in self.layouts):
                raise ValueError("a module with several layouts tells them apart by header: all need one")
            if len({layout.separator for layout in self.layouts}) > 1:
                raise ValueError("a module's layouts share one separator setting")
            markers = [layout.marker for layout in self.layouts]
            if len(set(markers)) < len(markers):
                raise ValueError(f"layouts need different marker columns (timestamp columns), got {markers}")
            names = [layout.name for layout in self.layouts]
            if len(set(names)) < len(names):
                raise ValueError(f"layout names must be unique, got {names}")
        return self

    @property
    def display_title(self) -> str:
        return self.title or self.name.replace("_", " ").capitalize()

    def layout_of(self, feature_names: Sequence[str]) -> LayoutConfig | None:
        """The layout whose features are exactly `feature_names` (a model's), if one is."""
        wanted = set(feature_names)
        return next((layout for layout in self.layouts if set(layout.feature_names) == wanted), None)

    def snapshot(self, feature_names: Sequence[str]) -> dict[str, Any]:
        """What a model trained on `feature_names` keeps of this configuration: the module, its alarm
        settings and the layout of those features (plain JSON data)."""
        layout = self.layout_of(feature_names)
        return {
            "module": self.name,
            "title": self.display_title,
            "alarm": self.alarm.model_dump(mode="json"),
            "layout": None if layout is None else layout.model_dump(mode="json"),
        }

    def to_yaml(self) -> str:
        data = self.model_dump(mode="json", exclude_defaults=True)
        # the detector is worth reading even when it is the default
        data = {"name": self.name, **data, "default_detector": self.default_detector}
        data = {
            key: data[key] for key in ("name", "title", "description", "default_detector") if key in data
        } | data
        if len(self.layouts) == 1:
            # one layout reads best at the top level, as `modules add` writes it
            layout = data.pop("layouts")[0]
            layout.pop("name", None)
            data.update(layout)
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def field_path(location: Sequence[int | str]) -> str:
    """`("layouts", 0, "features", 2, "codes")` -> `layouts[0].features[2].codes`."""
    path = ""
    for part in location:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def parse_module_config(data: Any, source: str) -> ModuleConfig:
    """A ModuleConfig from parsed YAML; ModuleConfigError names `source` and the first bad field."""
    if not isinstance(data, dict):
        raise ModuleConfigError(source, "a module configuration is a mapping (name: ..., features: ...)")
    try:
        return ModuleConfig.model_validate(data)
    except ValidationError as error:
        problems = error.errors(include_url=False)
        first = field_path(problems[0]["loc"]) or None
        message = "; ".join(
            f"{field_path(problem['loc']) or 'configuration'}: {problem['msg']}" for problem in problems
        )
        raise ModuleConfigError(source, message, first) from None


def read_module_config(path: Path) -> ModuleConfig:
    """Read and validate one YAML file; errors name the file and the field (or the YAML line)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ModuleConfigError(str(path), f"cannot read file: {error.strerror or error}") from error
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ModuleConfigError(str(path), f"not valid YAML{where}: {error}") from None
    config = parse_module_config(data, str(path))
    if config.name != path.stem:
        raise ModuleConfigError(
            str(path), f"the file of module {config.name!r} must be called {config.name}.yaml", "name"
        )
    return config
