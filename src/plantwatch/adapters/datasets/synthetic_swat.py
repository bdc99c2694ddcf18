"""Generated SWaT-layout readings from a small simulated water treatment process, with labelled attacks.

The process: raw water flows through MV101 (FIT101) into tank T101 (LIT101); pump P101 moves it (FIT201,
dosing pumps P203/P205) to tank T301 (LIT301); P302 feeds the ultrafiltration (FIT301, DPIT301) into tank
T401 (LIT401); P402 feeds UV401 and the reverse osmosis stage (FIT5xx, PIT5xx). Valves and pumps switch on
tank levels with hysteresis, as the real PLCs do; analysers (AIT*) wander slowly. Attacks act inside the
simulation, so the process reacts to them: a forced actuator changes flows and levels, a spoofed sensor
misleads its controller.
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd

from plantwatch.adapters.datasets.injection import (
    AnomalyEvent,
    EventKind,
    EventSpec,
    event_labels,
    plan_events,
)
from plantwatch.adapters.datasets.swat import SWAT_TAGS
from plantwatch.domain.frames import SensorFrame
from plantwatch.domain.modules import Module

SWAT_START = pd.Timestamp("2015-12-28 10:00:00")
SWAT_STEP = pd.Timedelta(seconds=1)
OFF, ON = 1.0, 2.0  # pumps: 1 off, 2 on
CLOSED, OPEN = 1.0, 2.0  # motorised valves: 0 in transition, 1 closed, 2 open
# `size` is the value the attacker forces the tag to.
SWAT_ATTACKS = (
    EventSpec("MV101", EventKind.FORCED, OPEN),  # tank T101 overflows
    EventSpec("P101", EventKind.FORCED, OFF),  # stage 2 starved
    EventSpec("LIT101", EventKind.FORCED, 850.0),  # level spoofed high: MV101 shuts, the tank drains
    EventSpec("P302", EventKind.FORCED, OFF),  # ultrafiltration stopped
    EventSpec("AIT202", EventKind.FORCED, 7.2),  # pH reading spoofed
    EventSpec("FIT401", EventKind.FORCED, 0.0),  # flow to UV/RO reported as zero
)
_MM_PER_FLOW = 2.0  # tank level change (mm per second) per m3/h of net inflow
# Analysers: (mean, slow-variation standard deviation).
_ANALYSERS = {
    "AIT201": (255.0, 2.0),
    "AIT202": (8.35, 0.03),
    "AIT203": (330.0, 5.0),
    "AIT401": (148.0, 0.5),
    "AIT402": (156.0, 2.0),
    "AIT501": (7.46, 0.02),
    "AIT502": (140.0, 3.0),
    "AIT503": (264.0, 2.0),
    "AIT504": (12.0, 0.3),
}
_THREE_DECIMALS = {"AIT202", "AIT501", *(tag for tag in SWAT_TAGS if tag.startswith("FIT"))}


@dataclass
class _Plant:
    level_101: float = 650.0
    level_301: float = 900.0
    level_401: float = 900.0
    mv101: float = OPEN
    p101: float = ON
    p302: float = ON
    p402: float = ON
    flow_101: float = 2.6
    flow_201: float = 2.45
    flow_301: float = 2.3
    flow_401: float = 1.75
    dp_301: float = 19.5


def generate_swat(n_rows: int = 1500, seed: int = 7, inject: bool = True) -> SensorFrame:
    """1 Hz readings from 28/12/2015 10:00:00 AM with all 51 SWaT tags, about 7% under labelled attack
    after the first 60% of rows. root_causes names the attacked tag. inject=False runs the same plant
    without attacks."""
    rng = np.random.default_rng(seed)
    index = pd.date_range(SWAT_START, periods=n_rows, freq=SWAT_STEP, name="timestamp")
    planned = plan_events(n_rows, SWAT_ATTACKS, rng, length_range=(15, 40))
    events = planned if inject else []
    attack_at: list[AnomalyEvent | None] = [None] * n_rows
    for event in events:
        attack_at[event.start : event.stop] = [event] * event.length
    analysers = _analyser_series(rng, n_rows)
    rows: list[dict[str, float]] = []
    plant = _Plant()
    for t in range(n_rows):
        rows.append(_step(plant, rng, t, attack_at[t], analysers))
    values = pd.DataFrame(rows, columns=SWAT_TAGS, dtype=np.float64).set_axis(index)
    for tag in SWAT_TAGS:
        values[tag] = values[tag].round(3 if tag in _THREE_DECIMALS else 2)
    labels, root_causes = event_labels(index, events)
    return SensorFrame(Module.CYBER, "swat_sample.csv", values, labels, root_causes)


def _step(
    plant: _Plant,
    rng: np.random.Generator,
    t: int,
    attack: AnomalyEvent | None,
    analysers: dict[str, np.ndarray],
) -> dict[str, float]:
    """Advance the plant one second and return what its sensors and actuators report."""
    forced = {attack.spec.feature: attack.spec.size} if attack is not None else {}
    reported_101 = forced.get("LIT101", plant.level_101)

    # PLC logic on the reported levels, with hysteresis; a forced actuator ignores it.
    if reported_101 < 500:
        plant.mv101 = OPEN
    elif reported_101 > 800:
        plant.mv101 = CLOSED
    if plant.level_301 < 800 and reported_101 > 250:
        plant.p101 = ON
    elif plant.level_301 > 1000 or reported_101 < 250:
        plant.p101 = OFF
    if plant.level_401 < 800 and plant.level_301 > 250:
        plant.p302 = ON
    elif plant.level_401 > 1000 or plant.level_301 < 250:
        plant.p302 = OFF
    plant.p402 = ON if plant.level_401 > 250 else OFF if plant.level_401 < 200 else plant.p402
    mv101 = forced.get("MV101", plant.mv101)
    p101 = forced.get("P101", plant.p101)
    p302 = forced.get("P302", plant.p302)

    # Flows follow their valve or pump with a short lag; levels integrate net flow, bounded by the tank.
    plant.flow_101 += 0.3 * ((2.6 if mv101 == OPEN else 0.0) - plant.flow_101)
    plant.flow_201 += 0.3 * ((2.45 if p101 == ON else 0.0) - plant.flow_201)
    plant.flow_301 += 0.3 * ((2.3 if p302 == ON else 0.0) - plant.flow_301)
    plant.flow_401 += 0.3 * ((1.75 if plant.p402 == ON else 0.0) - plant.flow_401)
    plant.dp_301 += 0.1 * ((19.5 if p302 == ON else 2.5) - plant.dp_301)
    plant.level_101 = float(
        np.clip(plant.level_101 + _MM_PER_FLOW * (plant.flow_101 - plant.flow_201), 0, 1100)
    )
    plant.level_301 = float(
        np.clip(plant.level_301 + _MM_PER_FLOW * (plant.flow_201 - plant.flow_301), 0, 1200)
    )
    plant.level_401 = float(
        np.clip(plant.level_401 + _MM_PER_FLOW * (plant.flow_301 - plant.flow_401), 0, 1200)
    )

    ro_on = plant.flow_401 > 0.5
    noise = rng.standard_normal(16)
    reading = {
        "FIT101": max(plant.flow_101 + 0.01 * noise[0], 0.0),
        "LIT101": plant.level_101 + 0.3 * noise[1],
        "MV101": mv101,
        "P101": p101,
        "P102": OFF,
        "FIT201": max(plant.flow_201 + 0.01 * noise[2], 0.0),
        "MV201": OPEN if p101 == ON else CLOSED,
        "P201": OFF,
        "P202": OFF,
        "P203": p101,
        "P204": OFF,
        "P205": p101,
        "P206": OFF,
        "DPIT301": plant.dp_301 + 0.1 * noise[3],
        "FIT301": max(plant.flow_301 + 0.01 * noise[4], 0.0),
        "LIT301": plant.level_301 + 0.3 * noise[5],
        "MV301": CLOSED,
        "MV302": OPEN if p302 == ON else CLOSED,
        "MV303": CLOSED,
        "MV304": CLOSED,
        "P301": OFF,
        "P302": p302,
        "FIT401": max(plant.flow_401 + 0.005 * noise[6], 0.0),
        "LIT401": plant.level_401 + 0.3 * noise[7],
        "P401": OFF,
        "P402": plant.p402,
        "P403": OFF,
        "P404": OFF,
        "UV401": plant.p402,
        "FIT501": max(0.98 * plant.flow_401 + 0.005 * noise[8], 0.0),
        "FIT502": max(0.73 * plant.flow_401 + 0.005 * noise[9], 0.0),
        "FIT503": max(0.42 * plant.flow_401 + 0.005 * noise[10], 0.0),
        "FIT504": max(0.17 * plant.flow_401 + 0.002 * noise[11], 0.0),
        "P501": ON if ro_on else OFF,
        "P502": OFF,
        "PIT501": (250.0 if ro_on else 10.0) + 0.5 * noise[12],
        "PIT502": (1.4 if ro_on else 0.1) + 0.02 * noise[13],
        "PIT503": (190.0 if ro_on else 5.0) + 0.5 * noise[14],
        "FIT601": abs(0.0003 * noise[15]),
        "P601": OFF,
        "P602": OFF,
        "P603": OFF,
    }
    reading.update({tag: float(series[t]) for tag, series in analysers.items()})
    # Spoofed sensors report the attacker's value; forced actuators already do.
    for tag, value in forced.items():
        reading[tag] = value
    return reading


def _analyser_series(rng: np.random.Generator, n_rows: int) -> dict[str, np.ndarray]:
    """Slow mean-reverting wander plus small measurement noise, per analyser."""
    series = {}
    for tag, (mean, spread) in _ANALYSERS.items():
        shocks = rng.standard_normal(n_rows) * spread * np.sqrt(1 - 0.995**2)
        level = np.empty(n_rows)
        level[0] = mean
        for t in range(1, n_rows):
            level[t] = mean + 0.995 * (level[t - 1] - mean) + shocks[t]
        series[tag] = level + 0.05 * spread * rng.standard_normal(n_rows)
    return series
