"""Incident figures on replayed data: does grouping turn flagged rows into one alarm per attack, and does
normal operation stay under 1 alarm per operator-hour without floods?

    .venv/bin/python benchmarks/incident_benchmark.py [--model pca] [--gaps 60 180 360 720]

- BATADAL dataset04 (7 attacks, hourly; the organisers' attack windows in dataset04_attack_windows.csv):
  the cyber model is fitted on dataset03 (normal), dataset04 is replayed a day per batch through ingest with
  incident grouping. Target: 7 +- 2 incidents.
- Normal data: dataset03's last 2,000 hours (the model fitted on the rest), and each generated sample's
  clean prefix (the model fitted on its first 80 %, the last 20 % replayed). Target: at most 1 incident per
  operator-hour per module and no flood.

The store is an in-memory SQLite; thresholds are POT on held-out normal training scores, as `evaluate`.
"""

import argparse
import os
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
import torch
from rich.console import Console
from rich.table import Table

from plantwatch.adapters.datasets.benchmark_splits import GENERATED, batadal_split, generated_split
from plantwatch.adapters.detectors import TorchDetector, build_detector, detector_class
from plantwatch.adapters.registry import FileModelRegistry
from plantwatch.adapters.storage import (
    SqlAnomalyRepository,
    SqlIncidentRepository,
    create_engine_from_url,
    create_incident_schema,
    create_schema,
)
from plantwatch.domain.alarm_kpis import alarm_kpis
from plantwatch.domain.frames import SensorFrame
from plantwatch.domain.incidents import Incident, IncidentPolicy
from plantwatch.domain.modules import Module
from plantwatch.domain.ports import IncidentQuery, TrainedModel
from plantwatch.domain.thresholds import build_thresholder
from plantwatch.services.incidents import IncidentTracking, incidents_between
from plantwatch.services.ingest import ReadingContext, ingest_frame
from plantwatch.services.training import train_model
from plantwatch.settings import Settings

console = Console(width=160)
NOW = datetime(2026, 1, 1)
NORMAL_TAIL_HOURS = 2000


@dataclass(frozen=True)
class Replay:
    incidents: list[Incident]
    """Annunciated ones: the alarms an operator sees."""
    held_back: int
    """Still pending or suppressed (cleared within their on-delay): never shown."""
    anomalies: int
    readings: int
    hours: float


def train(frame: SensorFrame, model_name: str, seed: int, epochs: int | None, root: Path) -> TrainedModel:
    hyper: dict[str, object] = {"seed": seed}
    if epochs is not None and issubclass(detector_class(model_name), TorchDetector):
        hyper["epochs"] = epochs
    registry = FileModelRegistry(root / f"models-{frame.source}")
    train_model(frame, build_detector(model_name, **hyper), build_thresholder("pot"), registry)
    return registry.load(frame.module, model_name)


def replay(
    frame: SensorFrame, model: TrainedModel, policy: IncidentPolicy, history: SensorFrame, batch: int
) -> Replay:
    """Ingest `frame` `batch` readings at a time, the first batch completed by the end of `history`."""
    engine = create_engine_from_url("sqlite://")
    create_schema(engine)
    create_incident_schema(engine)
    repository = SqlAnomalyRepository(engine)
    incidents = SqlIncidentRepository(engine)
    tracking = IncidentTracking(incidents, {frame.module: policy})
    context = ReadingContext(max_readings=max(256, model.card.window))
    context.remember(frame.module, frame.source, history.values[model.card.feature_names].iloc[-256:])
    anomalies = 0
    for start in range(0, len(frame), batch):
        part = frame.slice_mask(
            (pd.RangeIndex(len(frame)) >= start) & (pd.RangeIndex(len(frame)) < start + batch)
        )
        result = ingest_frame(part, model, repository, context, now=NOW, incidents=tracking)
        anomalies += result.new_anomalies
    index = frame.values.index
    hours = (index[-1] - index[0]).total_seconds() / 3600
    found = incidents_between(incidents, frame.module, None, None)
    every = incidents.find(IncidentQuery(include_unannunciated=True, limit=100_000)).items
    held_back = [i for i in every if not i.state.annunciated]
    engine.dispose()
    return Replay(found, len(held_back), anomalies, len(frame), hours)


def attack_windows(path: Path) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    table = pd.read_csv(path, parse_dates=["start", "end"])
    # inclusive hours: the last hour's reading is part of the attack
    return [(row.start, row.end + pd.Timedelta(hours=1)) for row in table.itertuples()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="pca")
    parser.add_argument("--gaps", type=float, nargs="*", help="cyber gaps in minutes (default: the setting)")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--on-delay", type=int, default=None, help="windows (default: the setting)")
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    settings = Settings()
    datasets = Path(os.environ.get("PLANTWATCH_SHARED_DATASETS_DIR", str(settings.shared_datasets_dir)))
    on_delay = args.on_delay or settings.incident_on_delay_windows
    gaps = (
        [timedelta(minutes=g) for g in args.gaps] if args.gaps else [settings.incident_gap_for(Module.CYBER)]
    )

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        split = batadal_split(datasets)
        model = train(split.train, args.model, settings.seed, args.epochs, root)
        windows = attack_windows(datasets / "batadal" / "dataset04_attack_windows.csv")
        table = Table(
            title=f"BATADAL dataset04 replayed a day per batch ({args.model}, on-delay {on_delay}, "
            "target 7 +- 2)"
        )
        for column in (
            "gap",
            "flagged rows",
            "held back",
            "incidents",
            "attacks found",
            "on an attack",
            "off attacks",
            "max/10 min",
            "floods",
        ):
            table.add_column(column, justify="right")
        for gap in gaps:
            run = replay(split.test, model, IncidentPolicy(gap, on_delay), split.train, batch=24)
            on_attack = [
                i for i in run.incidents if any(i.start < end and i.end >= start for start, end in windows)
            ]
            found = sum(
                1 for start, end in windows if any(i.start < end and i.end >= start for i in run.incidents)
            )
            index = split.test.values.index
            kpis = alarm_kpis(Module.CYBER, run.incidents, index[0], index[-1] + timedelta(hours=1))
            table.add_row(
                f"{gap.total_seconds() / 60:.0f} min",
                str(run.anomalies),
                str(run.held_back),
                str(len(run.incidents)),
                f"{found}/{len(windows)}",
                str(len(on_attack)),
                str(len(run.incidents) - len(on_attack)),
                str(kpis.peak_alarms_per_interval),
                str(kpis.flood_intervals),
            )
        console.print(table)

        normal = Table(title=f"Normal data replayed ({args.model}; target <= 1 incident per operator-hour)")
        for column in (
            "data",
            "gap",
            "readings",
            "hours",
            "flagged rows",
            "held back",
            "incidents",
            "per hour",
            "max/10 min",
            "floods",
        ):
            normal.add_column(column, justify="right")
        cases: list[tuple[str, SensorFrame, timedelta]] = []
        train_part, tail = split.train.split(1 - NORMAL_TAIL_HOURS / len(split.train))
        cases.append(("batadal dataset03, last 2,000 h", split.train, gaps[0]))
        for name in GENERATED:
            clean = generated_split(name, settings.seed).train
            module = GENERATED[name][0]
            cases.append((f"{name} clean prefix, last 20 %", clean, settings.incident_gap_for(module)))
        for label, frame, gap in cases:
            fit, held = (train_part, tail) if label.startswith("batadal") else frame.split(0.8)
            fitted = train(fit, args.model, settings.seed, args.epochs, root)
            run = replay(held, fitted, IncidentPolicy(gap, on_delay), fit, batch=60)
            index = held.values.index
            kpis = alarm_kpis(held.module, run.incidents, index[0], index[-1] + (index[1] - index[0]))
            normal.add_row(
                label,
                f"{gap.total_seconds() / 60:.0f} min",
                str(run.readings),
                f"{kpis.hours:.1f}",
                str(run.anomalies),
                str(run.held_back),
                str(kpis.alarms),
                f"{kpis.alarms_per_hour:.3f}",
                str(kpis.peak_alarms_per_interval),
                str(kpis.flood_intervals),
            )
        console.print(normal)


if __name__ == "__main__":
    main()
