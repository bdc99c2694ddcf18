"""SensorFrame: what every loader returns, one typed frame per source."""

from dataclasses import dataclass

import numpy as np
import pandas as pd

from plantwatch.domain.modules import Module


@dataclass(frozen=True)
class SensorFrame:
    """Readings of one source, in time order.

    values: float64 columns named by feature, index a DatetimeIndex named "timestamp" (naive, plant
        local time).
    labels: aligned with values; 1.0 anomaly/attack/fault, 0.0 normal, NaN unlabelled. None when the
        source has no labels at all.
    root_causes: for generated data only, the name of the feature an injected anomaly was put on
        ("" elsewhere).
    """

    module: Module
    source: str
    values: pd.DataFrame
    labels: pd.Series | None = None
    root_causes: pd.Series | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.values.index, pd.DatetimeIndex):
            raise TypeError("SensorFrame.values needs a DatetimeIndex")
        for name, series in (("labels", self.labels), ("root_causes", self.root_causes)):
            if series is not None and len(series) != len(self.values):
                raise ValueError(f"SensorFrame.{name} has {len(series)} rows, values has {len(self.values)}")

    @property
    def feature_names(self) -> list[str]:
        return [str(c) for c in self.values.columns]

    def __len__(self) -> int:
        return len(self.values)

    def to_numpy(self) -> np.ndarray:
        return self.values.to_numpy(dtype=np.float64)

    def normal_only(self) -> "SensorFrame":
        """Rows labelled normal (all rows when unlabelled): what detectors are fitted on."""
        if self.labels is None:
            return self
        mask = (self.labels == 0).to_numpy()
        return self.slice_mask(mask)

    def slice_mask(self, mask: np.ndarray) -> "SensorFrame":
        return SensorFrame(
            module=self.module,
            source=self.source,
            values=self.values[mask],
            labels=None if self.labels is None else self.labels[mask],
            root_causes=None if self.root_causes is None else self.root_causes[mask],
        )

    def split(self, fraction: float) -> tuple["SensorFrame", "SensorFrame"]:
        """Chronological split: the first `fraction` of rows and the rest."""
        cut = int(len(self) * fraction)
        head = np.zeros(len(self), dtype=bool)
        head[:cut] = True
        return self.slice_mask(head), self.slice_mask(~head)
