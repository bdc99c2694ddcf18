"""A plant of a user's own, unlike any seed layout: a valve line logged to a ';'-separated file with decimal
commas, day-first dotted dates, units in brackets, a pump state written as words, an operating mode, an
operator id column to leave out, and a Status column that marks faults.

The process: the valve position follows a slow set-point; flow follows the valve with a lag; pressure drops
as flow rises; the pump runs while the valve is open enough. Faults: flow collapses while the valve stays
open (a blockage), labelled ALARM.
"""

from pathlib import Path

import numpy as np
import pandas as pd

COLUMNS = [
    "Zeit",
    "Valve Position [%]",
    "Flow (l/min)",
    "Pressure [bar]",
    "Pump",
    "Mode",
    "Operator",
    "Status",
]
START = pd.Timestamp("2024-03-01 06:00:00")
STEP = pd.Timedelta(seconds=10)


def valve_readings(rows: int = 1500, seed: int = 3, fault_from: float = 0.7) -> pd.DataFrame:
    """Readings with faults only after `fault_from` of the rows; column `fault` is 1 in a fault."""
    rng = np.random.default_rng(seed)
    step = np.arange(rows)
    position = 50 + 30 * np.sin(2 * np.pi * step / 240) + rng.normal(0, 1.0, rows)
    flow = np.empty(rows)
    flow[0] = 2.0 * position[0]
    for t in range(1, rows):
        flow[t] = flow[t - 1] + 0.3 * (2.0 * position[t] - flow[t - 1]) + rng.normal(0, 0.5)
    fault = np.zeros(rows, dtype=int)
    start = int(rows * fault_from)
    for begin in range(start + 20, rows - 30, 120):
        fault[begin : begin + 25] = 1
    flow = np.where(fault == 1, flow * 0.2, flow)
    pressure = 6.0 - 0.02 * flow + rng.normal(0, 0.03, rows)
    pump = np.where(position > 25, "on", "off")
    mode = np.where(step % 600 < 500, "auto", "manual")
    return pd.DataFrame(
        {
            "timestamp": pd.date_range(START, periods=rows, freq=STEP),
            "position": position.round(2),
            "flow": flow.round(2),
            "pressure": pressure.round(3),
            "pump": pump,
            "mode": mode,
            "operator": [f"op-{rng.integers(1000, 9999)}" for _ in range(rows)],
            "fault": fault,
        }
    )


def write_valve_csv(path: Path, readings: pd.DataFrame) -> Path:
    """The readings as the plant's logger writes them."""

    def comma(values: pd.Series) -> list[str]:
        return [f"{value}".replace(".", ",") for value in values]

    raw = pd.DataFrame(
        {
            "Zeit": readings["timestamp"].dt.strftime("%d.%m.%Y %H:%M:%S"),
            "Valve Position [%]": comma(readings["position"]),
            "Flow (l/min)": comma(readings["flow"]),
            "Pressure [bar]": comma(readings["pressure"]),
            "Pump": readings["pump"],
            "Mode": readings["mode"],
            "Operator": readings["operator"],
            "Status": np.where(readings["fault"] == 1, "ALARM", "OK"),
        },
        columns=COLUMNS,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    raw.to_csv(path, sep=";", index=False, lineterminator="\n")
    return path
