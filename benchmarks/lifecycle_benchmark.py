"""Model lifecycle figures on the generated samples: what drift watching costs per batch, how long the
promotion gate takes, how long a promotion takes to reach a serving process, and what polling the stages
costs when nothing changed.

    .venv/bin/python benchmarks/lifecycle_benchmark.py [--modules cyber energy] [--batch 10] [--repeats 200]

Two PCA versions per module are trained here, on the first 60 % of each sample (seeded differently); the
numbers are about cost, not detection quality.
"""

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from plantwatch.adapters.datasets import load_sample
from plantwatch.adapters.detectors import build_detector
from plantwatch.adapters.registry import FileModelRegistry
from plantwatch.domain.drift import DriftLevels
from plantwatch.domain.frames import SensorFrame
from plantwatch.domain.modules import Module
from plantwatch.domain.thresholds import build_thresholder
from plantwatch.services.drift import DEFAULT_WINDOW, DriftMonitor
from plantwatch.services.lifecycle import promote_version, rollback_production
from plantwatch.services.serving import ProductionModels
from plantwatch.services.training import train_model

console = Console()
TRAIN_FRACTION = 0.6


def rows(frame: SensorFrame, start: int, stop: int) -> SensorFrame:
    mask = np.zeros(len(frame), dtype=bool)
    mask[max(0, start) : stop] = True
    return frame.slice_mask(mask)


def median_ms(samples: list[float]) -> float:
    return float(np.median(samples)) * 1000


def measure(module: Module, models_dir: Path, batch: int, repeats: int) -> list[str]:
    frame = load_sample(module)
    training, live = frame.split(TRAIN_FRACTION)
    registry = FileModelRegistry(models_dir)
    for seed in (1, 2):
        train_model(
            training, build_detector("pca", seed=seed), build_thresholder("quantile", q=0.995), registry
        )
    model = registry.load(module, "pca", "v0001")

    # drift: observe one batch into a full window, as ingest does after every stored batch
    monitor = DriftMonitor(DriftLevels(), window=DEFAULT_WINDOW)
    observe: list[float] = []
    for n in range(repeats):
        begin = (n * batch) % max(1, len(live) - batch)
        piece = rows(live, begin, begin + batch)
        started = time.perf_counter()
        monitor.observe(piece, model)
        observe.append(time.perf_counter() - started)
    score: list[float] = []
    for n in range(min(repeats, 50)):
        begin = (n * batch) % max(1, len(live) - batch)
        values = rows(live, begin, begin + batch).to_numpy()
        started = time.perf_counter()
        model.detector.score(values)
        score.append(time.perf_counter() - started)

    # the gate: load both versions and score both held-out sets with both models
    started = time.perf_counter()
    result = promote_version(registry, module, "pca", "v0002", force=True)
    gate_s = time.perf_counter() - started
    rollback_production(registry, module, "pca")

    # a serving process: refresh when nothing changed (the poll), and after a promotion (the swap)
    served = ProductionModels(registry, {module: "pca"}, lambda m: f"no model for {m.value}")
    served.refresh()
    polls: list[float] = []
    for _ in range(repeats):
        started = time.perf_counter()
        served.refresh()
        polls.append(time.perf_counter() - started)
    promote_version(registry, module, "pca", "v0002", force=True)
    started = time.perf_counter()
    swaps = served.refresh()
    swap_s = time.perf_counter() - started
    assert [s.current for s in swaps] == ["v0002"]

    gate = result.gate
    return [
        module.value,
        str(len(model.card.feature_names)),
        f"{median_ms(observe):.2f}",
        f"{median_ms(score):.2f}",
        f"{gate_s * 1000:.0f}",
        str(gate.windows if gate else "-"),
        f"{median_ms(polls):.3f}",
        f"{swap_s * 1000:.1f}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--modules", nargs="+", default=[m.value for m in Module], choices=[m.value for m in Module]
    )
    parser.add_argument("--batch", type=int, default=10, help="readings per ingested batch")
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args()
    torch.set_num_threads(1)
    table = Table(
        title=f"Model lifecycle costs (PCA, batches of {args.batch}, drift window {DEFAULT_WINDOW})"
    )
    for column in (
        "module",
        "features",
        "drift observe ms/batch",
        "PCA score ms/batch",
        "promote with gate ms",
        "gate windows",
        "stage poll ms",
        "swap ms",
    ):
        table.add_column(column, justify="right")
    with tempfile.TemporaryDirectory() as directory:
        for module in args.modules:
            table.add_row(*measure(Module(module), Path(directory) / "models", args.batch, args.repeats))
    console.print(table)
    console.print(
        "A promotion reaches a serving process within PLANTWATCH_MODEL_RELOAD_INTERVAL_S (2 s) plus the swap "
        "time above; the poll is what each interval costs when nothing changed."
    )


if __name__ == "__main__":
    main()
