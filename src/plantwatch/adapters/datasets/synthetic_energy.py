"""Generated steel-plant energy readings in the UCI 851 layout, with labelled meter anomalies.

Normal data follows the real plant's habits: light load at night and on Sundays, medium and maximum load in
day shifts (less on Saturdays), reactive power tied to load, power factors computed from kWh and kVarh.
"""

import numpy as np
import pandas as pd

from plantwatch.adapters.datasets.energy import ENERGY_FEATURES
from plantwatch.adapters.datasets.injection import (
    EventKind,
    EventSpec,
    apply_events,
    event_labels,
    plan_events,
)
from plantwatch.domain.frames import SensorFrame
from plantwatch.domain.modules import Module

ENERGY_START = pd.Timestamp("2018-01-01 00:15")
ENERGY_STEP = pd.Timedelta(minutes=15)
ENERGY_EVENTS = (
    EventSpec("usage_kwh", EventKind.SPIKE, 35.0),  # equipment left running / metering fault
    EventSpec("lagging_reactive_power_kvarh", EventKind.DRIFT, 30.0),  # capacitor bank failing
    EventSpec("leading_reactive_power_kvarh", EventKind.SPIKE, 12.0),  # over-compensation
    EventSpec("lagging_power_factor", EventKind.DRIFT, -35.0),  # power factor meter drifting
)
LIGHT, MEDIUM, MAXIMUM = 0.0, 1.0, 2.0
# Load type of each hour of a working day (hour 24 is the day's closing 00:00 reading).
_WORKDAY_LOAD = np.array(
    [LIGHT] * 9 + [MEDIUM] + [MAXIMUM] * 2 + [MEDIUM] + [MAXIMUM] * 4 + [MEDIUM] * 6 + [LIGHT] * 2
)
_MEAN_USAGE = {LIGHT: 3.6, MEDIUM: 42.0, MAXIMUM: 66.0}
_LAGGING_RATIO = {LIGHT: 1.0, MEDIUM: 0.42, MAXIMUM: 0.46}
_MEAN_LEADING = {LIGHT: 0.0, MEDIUM: 6.0, MAXIMUM: 1.0}
_SATURDAY_FACTOR = 0.7
_CO2_PER_KWH = 0.00045


def generate_energy(n_rows: int = 2688, seed: int = 7, inject: bool = True) -> SensorFrame:
    """15-minute readings from 2018-01-01 00:15 (2688 rows = 4 weeks), about 7% in labelled events after the
    first 60% of rows. root_causes names the corrupted feature. inject=False gives the same readings clean."""
    rng = np.random.default_rng(seed)
    index = pd.date_range(ENERGY_START, periods=n_rows, freq=ENERGY_STEP, name="timestamp")
    # A day's closing 00:00 reading belongs to that day, as in the real file.
    operating_day = (index - pd.Timedelta(minutes=1)).normalize()
    weekday = operating_day.dayofweek.to_numpy()
    nsm = (index.hour * 3600 + index.minute * 60).to_numpy().astype(np.float64)
    hour = np.where(nsm == 0, 24, index.hour.to_numpy())

    load = np.where(weekday == 6, LIGHT, _WORKDAY_LOAD[hour])
    mean_usage = np.vectorize(_MEAN_USAGE.__getitem__)(load)
    shift_shape = 1.0 + 0.08 * np.sin(2 * np.pi * (nsm / 86400.0 - 0.3))
    saturday = np.where((weekday == 5) & (load > LIGHT), _SATURDAY_FACTOR, 1.0)
    noise_scale = np.where(load == LIGHT, 0.4, 3.0)
    usage = np.clip(mean_usage * shift_shape * saturday + _smooth_noise(rng, n_rows) * noise_scale, 0.5, None)
    lagging = (
        usage * np.vectorize(_LAGGING_RATIO.__getitem__)(load) * (1 + 0.08 * rng.standard_normal(n_rows))
    )
    leading_mean = np.vectorize(_MEAN_LEADING.__getitem__)(load)
    leading = np.clip(leading_mean + 0.25 * leading_mean * rng.standard_normal(n_rows), 0.0, None)

    values = pd.DataFrame(index=index, columns=ENERGY_FEATURES, dtype=np.float64)
    values["usage_kwh"] = usage.round(2)
    values["lagging_reactive_power_kvarh"] = np.clip(lagging, 0.0, None).round(2)
    values["leading_reactive_power_kvarh"] = leading.round(2)
    values["co2_tco2"] = (values["usage_kwh"] * _CO2_PER_KWH).round(3)
    values["lagging_power_factor"] = _power_factor(
        values["usage_kwh"], values["lagging_reactive_power_kvarh"]
    )
    values["leading_power_factor"] = _power_factor(
        values["usage_kwh"], values["leading_reactive_power_kvarh"]
    )
    values["load_type"] = load

    events = plan_events(n_rows, ENERGY_EVENTS, rng, length_range=(8, 24)) if inject else []
    apply_events(values, events)
    values["lagging_power_factor"] = values["lagging_power_factor"].clip(1.0, 100.0)
    for feature in ENERGY_FEATURES[:6]:
        values[feature] = values[feature].clip(lower=0.0).round(3 if feature == "co2_tco2" else 2)
    labels, root_causes = event_labels(index, events)
    return SensorFrame(Module.ENERGY, "energy_sample.csv", values, labels, root_causes)


def _smooth_noise(rng: np.random.Generator, n_rows: int, persistence: float = 0.7) -> np.ndarray:
    """Unit-variance AR(1) noise: load wanders from one quarter-hour to the next instead of jumping."""
    shocks = rng.standard_normal(n_rows) * np.sqrt(1 - persistence**2)
    out = np.empty(n_rows)
    out[0] = rng.standard_normal()
    for t in range(1, n_rows):
        out[t] = persistence * out[t - 1] + shocks[t]
    return out


def _power_factor(active: pd.Series, reactive: pd.Series) -> pd.Series:
    apparent = np.hypot(active, reactive)
    return pd.Series(np.where(apparent > 0, 100.0 * active / apparent, 100.0), index=active.index).round(2)
