"""Generated machine readings in the Industrial IoT Fault Detection layout, with labelled faults.

Normal data: an 8-hour duty cycle drives vibration, temperature (which lags behind load) and pressure, with
a slow wear drift in vibration. RMS vibration and mean temperature are rolling aggregates of the clean
signals, so an injected fault corrupts one reading and breaks its link to the others.
"""

import numpy as np
import pandas as pd

from plantwatch.adapters.datasets.injection import (
    EventKind,
    EventSpec,
    apply_events,
    event_labels,
    plan_events,
)
from plantwatch.adapters.datasets.machine import BEARING_FAULT, MACHINE_FEATURES, NO_FAULT, OVERHEATING
from plantwatch.domain.frames import SensorFrame
from plantwatch.domain.modules import Module

MACHINE_START = pd.Timestamp("2023-03-10 00:00:00")
MACHINE_STEP = pd.Timedelta(minutes=1)
MACHINE_EVENTS = (
    EventSpec("vibration_mm_s", EventKind.SPIKE, 3.0),  # bearing damage
    EventSpec("vibration_mm_s", EventKind.DRIFT, 4.0),  # bearing wearing out fast
    EventSpec("temperature_c", EventKind.DRIFT, 15.0),  # overheating
    EventSpec("temperature_c", EventKind.SPIKE, 9.0),  # cooling lost
)
# The data set's fault class for each feature a fault shows up on.
FAULT_CLASS_OF_FEATURE = {"vibration_mm_s": BEARING_FAULT, "temperature_c": OVERHEATING}
_DUTY_CYCLE_ROWS = 480
_AGGREGATE_ROWS = 10


def generate_machine(n_rows: int = 3000, seed: int = 7, inject: bool = True) -> SensorFrame:
    """1-minute readings from 2023-03-10 00:00, about 7% in labelled fault events after the first 60%.
    inject=False gives the same readings without faults."""
    rng = np.random.default_rng(seed)
    index = pd.date_range(MACHINE_START, periods=n_rows, freq=MACHINE_STEP, name="timestamp")
    step = np.arange(n_rows)
    load = 0.6 + 0.3 * np.sin(2 * np.pi * step / _DUTY_CYCLE_ROWS) + 0.05 * rng.standard_normal(n_rows)
    wear = 0.3 * step / n_rows
    vibration = 1.8 + 1.2 * load + wear + 0.15 * rng.standard_normal(n_rows)
    temperature = np.empty(n_rows)
    temperature[0] = 55 + 20 * load[0] + 2 * vibration[0]
    for t in range(1, n_rows):
        target = 55 + 20 * load[t] + 2 * vibration[t]
        temperature[t] = (
            temperature[t - 1] + 0.05 * (target - temperature[t - 1]) + 0.2 * rng.standard_normal()
        )
    pressure = 7.0 + 1.5 * load - 0.05 * (temperature - 65) + 0.08 * rng.standard_normal(n_rows)

    values = pd.DataFrame(
        {
            "vibration_mm_s": vibration,
            "temperature_c": temperature,
            "pressure_bar": pressure,
            "rms_vibration": pd.Series(vibration**2).rolling(_AGGREGATE_ROWS, min_periods=1).mean() ** 0.5,
            "mean_temp": pd.Series(temperature).rolling(_AGGREGATE_ROWS, min_periods=1).mean(),
        },
        columns=MACHINE_FEATURES,
    ).set_axis(index)
    events = plan_events(n_rows, MACHINE_EVENTS, rng) if inject else []
    apply_events(values, events)
    values = values.astype(np.float64).round(4)
    labels, root_causes = event_labels(index, events)
    return SensorFrame(Module.MACHINE, "machine_sample.csv", values, labels, root_causes)


def generated_fault_classes(frame: SensorFrame) -> pd.Series:
    """The Fault Label a generated frame's file carries: the class of each row's root-cause feature."""
    if frame.root_causes is None:
        return pd.Series(NO_FAULT, index=frame.values.index, name="fault_class")
    classes = frame.root_causes.map(lambda feature: FAULT_CLASS_OF_FEATURE.get(feature, NO_FAULT))
    return classes.astype(np.int64).rename("fault_class")
