"""Labelled anomaly events for generated data: where they go, what they do to one feature, and their labels.

Events only go after a clean prefix, so the first part of every generated sample is normal data to train on.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import pandas as pd


class EventKind(StrEnum):
    SPIKE = "spike"  # the reading jumps by `size` for the whole event
    DRIFT = "drift"  # the reading drifts linearly away, reaching `size` at the end
    STUCK = "stuck"  # the reading freezes at its value when the event starts
    FORCED = "forced"  # an attacker holds an actuator or spoofs a sensor; simulated by the process model


@dataclass(frozen=True)
class EventSpec:
    """An event a generator injects: on which feature, how, and how hard (signed, in the feature's units)."""

    feature: str
    kind: EventKind
    size: float = 0.0


@dataclass(frozen=True)
class AnomalyEvent:
    spec: EventSpec
    start: int
    length: int

    @property
    def stop(self) -> int:
        return self.start + self.length


def plan_events(
    n_rows: int,
    specs: Sequence[EventSpec],
    rng: np.random.Generator,
    clean_fraction: float = 0.6,
    anomalous_fraction: float = 0.07,
    length_range: tuple[int, int] = (10, 60),
) -> list[AnomalyEvent]:
    """Non-overlapping events after the first `clean_fraction` of rows, cycling through `specs` in a shuffled
    order, until about `anomalous_fraction` of all rows are anomalous."""
    low, high = length_range
    budget = int(n_rows * anomalous_fraction)
    order = rng.permutation(len(specs))
    cursor = int(n_rows * clean_fraction)
    events: list[AnomalyEvent] = []
    used = 0
    while used < budget:
        length = int(rng.integers(low, high + 1))
        start = cursor + int(rng.integers(high, 3 * high))
        if start + length >= n_rows:
            break
        events.append(AnomalyEvent(specs[order[len(events) % len(specs)]], start, length))
        cursor = start + length
        used += length
    return events


def apply_event(column: np.ndarray, event: AnomalyEvent) -> None:
    """Corrupt one feature's readings in place for a SPIKE, DRIFT or STUCK event."""
    rows = slice(event.start, event.stop)
    scale = event.spec.size
    if event.spec.kind is EventKind.SPIKE:
        column[rows] += scale
    elif event.spec.kind is EventKind.DRIFT:
        column[rows] += np.linspace(scale / event.length, scale, event.length)
    elif event.spec.kind is EventKind.STUCK:
        column[rows] = column[event.start]
    else:
        raise ValueError(
            f"{event.spec.kind} events are simulated by the process model, not applied afterwards"
        )


def apply_events(values: pd.DataFrame, events: Sequence[AnomalyEvent]) -> None:
    """Apply each event to its feature's column of `values`, in place."""
    for event in events:
        column = values[event.spec.feature].to_numpy(copy=True)
        apply_event(column, event)
        values[event.spec.feature] = column


def event_labels(index: pd.DatetimeIndex, events: Sequence[AnomalyEvent]) -> tuple[pd.Series, pd.Series]:
    """labels (1.0 inside an event, 0.0 elsewhere) and root_causes (the event's feature, "" elsewhere)."""
    labels = np.zeros(len(index), dtype=np.float64)
    causes = np.full(len(index), "", dtype=object)
    for event in events:
        labels[event.start : event.stop] = 1.0
        causes[event.start : event.stop] = event.spec.feature
    return pd.Series(labels, index=index, name="label"), pd.Series(causes, index=index, name="root_cause")
