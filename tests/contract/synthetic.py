"""Small seeded multivariate data for detector tests: correlated sinusoids plus noise, with single-feature
anomalies (spikes, level shifts, drifts and broken correlations) injected at known rows."""

from dataclasses import dataclass

import numpy as np
import pandas as pd

from plantwatch.domain.frames import SensorFrame
from plantwatch.domain.modules import Module

FEATURES = ["flow", "pressure", "temperature", "vibration"]
PERIOD = 40


@dataclass(frozen=True)
class InjectedEvent:
    start: int
    length: int
    feature: str
    kind: str

    @property
    def rows(self) -> slice:
        return slice(self.start, self.start + self.length)


@dataclass(frozen=True)
class SyntheticSeries:
    values: np.ndarray
    labels: np.ndarray
    events: tuple[InjectedEvent, ...]

    def root_cause_of_row(self) -> np.ndarray:
        causes = np.full(len(self.values), "", dtype=object)
        for event in self.events:
            causes[event.rows] = event.feature
        return causes


def normal_series(n_rows: int, seed: int, start: int = 0) -> np.ndarray:
    """(n_rows, 4) readings driven by one hidden phase, so every feature is predictable from the others."""
    rng = np.random.default_rng(seed)
    phase = 2 * np.pi * (np.arange(start, start + n_rows) / PERIOD)
    clean = np.stack(
        [
            10.0 + 2.0 * np.sin(phase),
            5.0 + 1.2 * np.sin(phase) + 0.9 * np.cos(phase),
            60.0 + 4.0 * np.cos(phase),
            0.5 * np.sin(2 * phase),
        ],
        axis=1,
    )
    noise_scale = np.array([0.08, 0.05, 0.15, 0.02])
    return clean + rng.normal(size=clean.shape) * noise_scale


def with_anomalies(n_rows: int, seed: int, start: int = 0, n_events: int = 8) -> SyntheticSeries:
    """Normal readings with `n_events` single-feature anomalies, evenly spread, cycling through features."""
    values = normal_series(n_rows, seed, start)
    std = values.std(axis=0)
    rng = np.random.default_rng(seed + 1)
    labels = np.zeros(n_rows)
    events = []
    spacing = n_rows // (n_events + 1)
    kinds = ("spike", "shift", "drift", "flip")
    for i in range(n_events):
        column = i % len(FEATURES)
        kind = kinds[(i // len(FEATURES) + i) % len(kinds)]
        length = 6
        begin = spacing * (i + 1) + int(rng.integers(-3, 4))
        rows = slice(begin, begin + length)
        if kind == "spike":
            values[rows, column] += 3.0 * std[column]
        elif kind == "shift":
            values[rows, column] -= 2.5 * std[column]
        elif kind == "drift":
            values[rows, column] += np.linspace(1.5, 4.0, length) * std[column]
        else:
            # the value stays in its normal range but breaks its relation to the other features
            mean = values[:, column].mean()
            values[rows, column] = 2 * mean - values[rows, column] + 1.0 * std[column]
        labels[rows] = 1.0
        events.append(InjectedEvent(begin, length, FEATURES[column], kind))
    return SyntheticSeries(values=values, labels=labels, events=tuple(events))


def sensor_frame(values: np.ndarray, labels: np.ndarray | None, source: str = "synthetic") -> SensorFrame:
    index = pd.date_range("2024-01-01", periods=len(values), freq="1min", name="timestamp")
    return SensorFrame(
        module=Module.MACHINE,
        source=source,
        values=pd.DataFrame(values, index=index, columns=FEATURES),
        labels=None if labels is None else pd.Series(labels, index=index, name="label"),
    )
