"""Streaming figures: readings/s per core through ingest -> score -> store for each detector on the generated
samples, and end-to-end latency from MQTT publish to stored score through the real Mosquitto and a worker.

    .venv/bin/python benchmarks/streaming_benchmark.py [--models pca lstm_ae] [--modules cyber] [--epochs 3]

Models are trained here, quickly, on the first 60 % of each sample (the numbers are about throughput and
latency, not detection quality). The store is a SQLite file in a temporary directory.
"""

import argparse
import socket
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from plantwatch.adapters.datasets import load_sample
from plantwatch.adapters.detectors import DETECTORS, TorchDetector, build_detector
from plantwatch.adapters.registry import FileModelRegistry
from plantwatch.adapters.storage import SqlAnomalyRepository, create_engine_from_url, create_schema
from plantwatch.adapters.wire import CONTEXT_READINGS
from plantwatch.bootstrap import reading_publisher
from plantwatch.domain.anomaly import ScorePoint
from plantwatch.domain.frames import SensorFrame
from plantwatch.domain.modules import Module
from plantwatch.domain.ports import TrainedModel
from plantwatch.domain.thresholds import build_thresholder
from plantwatch.entrypoints.worker.mqtt_worker import MqttWorker
from plantwatch.services.ingest import ReadingContext, ingest_frame
from plantwatch.services.training import train_model
from plantwatch.settings import Settings

console = Console()
TRAIN_FRACTION = 0.6


def train(module: Module, model_name: str, frame: SensorFrame, models_dir: Path, epochs: int) -> TrainedModel:
    hyper: dict[str, int] = {"epochs": epochs} if issubclass(DETECTORS[model_name], TorchDetector) else {}
    training_part, _ = frame.split(TRAIN_FRACTION)
    registry = FileModelRegistry(models_dir)
    train_model(training_part, build_detector(model_name, **hyper), build_thresholder("pot"), registry)
    return registry.load(module, model_name)


def rows(frame: SensorFrame, start: int, stop: int) -> SensorFrame:
    mask = np.zeros(len(frame), dtype=bool)
    mask[max(0, start) : stop] = True
    return frame.slice_mask(mask)


def throughput(
    model: TrainedModel, frame: SensorFrame, repository: SqlAnomalyRepository, batch: int
) -> tuple[float, int]:
    """Readings/s scoring the held-out part in batches, as the ingest endpoint does; and anomalies found."""
    start = int(len(frame) * TRAIN_FRACTION)
    context = ReadingContext()
    context.remember(frame.module, frame.source, rows(frame, start - CONTEXT_READINGS, start).values)
    anomalies = 0
    began = time.perf_counter()
    for begin in range(start, len(frame), batch):
        result = ingest_frame(rows(frame, begin, begin + batch), model, repository, context)
        anomalies += len(result.anomalies)
    seconds = time.perf_counter() - began
    return (len(frame) - start) / seconds, anomalies


class TimedRepository(SqlAnomalyRepository):
    """The SQL store, noting when each reading's score was committed."""

    def __init__(self, *args: object) -> None:
        super().__init__(*args)  # type: ignore[arg-type]
        self.stored_at: dict[object, float] = {}

    def add_scores(self, points: Sequence[ScorePoint]) -> int:
        count = super().add_scores(points)
        now = time.perf_counter()
        for point in points:
            self.stored_at.setdefault(point.timestamp, now)
        return count


def mosquitto_up(settings: Settings) -> bool:
    try:
        with socket.create_connection((settings.mqtt_host, settings.mqtt_port), timeout=2):
            return True
    except OSError:
        return False


def latency(
    model: TrainedModel, frame: SensorFrame, store_url: str, messages: int, rate: float
) -> np.ndarray:
    """Publish one reading per message (with context) at `rate`/s; seconds from publish to committed score."""
    tag = f"bench-{time.time_ns()}"
    settings = Settings(mqtt_topic_prefix=tag, mqtt_share_group=tag)
    engine = create_engine_from_url(store_url)
    create_schema(engine)
    repository = TimedRepository(engine)
    worker = MqttWorker(settings, {frame.module: model}, repository, client_id=tag, session_expiry_s=60)
    thread = worker.start()
    published_at: dict[object, float] = {}
    try:
        if not worker.subscribed.wait(10):
            raise RuntimeError("the worker did not subscribe")
        start = int(len(frame) * TRAIN_FRACTION)
        with reading_publisher(settings) as publisher:
            began = time.perf_counter()
            for n, t in enumerate(range(start, min(start + messages, len(frame)))):
                due = began + n / rate
                time.sleep(max(0.0, due - time.perf_counter()))
                reading = rows(frame, t, t + 1)
                published_at[reading.values.index[0].to_pydatetime()] = time.perf_counter()
                publisher.publish(frame.module, frame.source, reading, rows(frame, t - CONTEXT_READINGS, t))
                publisher.flush()
        deadline = time.monotonic() + 120
        while len(repository.stored_at) < len(published_at) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        worker.stop()
        thread.join(10)
        engine.dispose()
    return np.array(
        [repository.stored_at[k] - v for k, v in published_at.items() if k in repository.stored_at]
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--models", nargs="+", default=["pca", "lstm_ae", "gru", "vae"], choices=list(DETECTORS)
    )
    parser.add_argument(
        "--modules", nargs="+", default=[m.value for m in Module], choices=[m.value for m in Module]
    )
    parser.add_argument("--epochs", type=int, default=3, help="epochs of the torch detectors (speed only)")
    parser.add_argument("--batch", type=int, default=100, help="readings per ingest call")
    parser.add_argument("--latency-models", nargs="*", default=["pca", "lstm_ae"], choices=list(DETECTORS))
    parser.add_argument("--messages", type=int, default=200, help="messages per latency run")
    parser.add_argument("--rate", type=float, default=20.0, help="messages per second in the latency run")
    args = parser.parse_args()

    torch.set_num_threads(1)  # figures are per core
    work = Path(tempfile.mkdtemp(prefix="plantwatch-bench-"))
    store_url = f"sqlite:///{work / 'store.db'}"
    engine = create_engine_from_url(store_url)
    create_schema(engine)
    repository = SqlAnomalyRepository(engine)
    frames = {Module(m): load_sample(Module(m)) for m in args.modules}
    trained: dict[tuple[Module, str], TrainedModel] = {}

    table = Table(title=f"ingest -> score -> store, 1 core, batches of {args.batch}, SQLite")
    for column in ("module", "model", "window", "features", "readings", "readings/s", "anomalies"):
        table.add_column(column, justify="right" if column not in ("module", "model") else "left")
    for module, frame in frames.items():
        for model_name in args.models:
            console.print(f"training {module.value}/{model_name} ...")
            model = train(module, model_name, frame, work / "models", args.epochs)
            trained[(module, model_name)] = model
            rate, anomalies = throughput(model, frame, repository, args.batch)
            held_out = len(frame) - int(len(frame) * TRAIN_FRACTION)
            table.add_row(
                module.value,
                model_name,
                str(model.card.window),
                str(len(model.card.feature_names)),
                str(held_out),
                f"{rate:,.0f}",
                str(anomalies),
            )
    engine.dispose()
    console.print(table)

    if not args.latency_models:
        return
    if not mosquitto_up(Settings()):
        console.print("[yellow]Mosquitto is not reachable: no latency figures[/]")
        return
    module = Module.CYBER if Module.CYBER in frames else next(iter(frames))
    latency_table = Table(
        title=f"MQTT publish -> stored score ({module.value}, 1 reading/message, {args.rate:g} msg/s)"
    )
    for column in ("model", "messages", "p50 ms", "p90 ms", "p99 ms", "max ms"):
        latency_table.add_column(column, justify="right" if column != "model" else "left")
    for model_name in args.latency_models:
        model = trained.get((module, model_name)) or train(
            module, model_name, frames[module], work / "models", args.epochs
        )
        seconds = latency(model, frames[module], store_url, args.messages, args.rate) * 1000
        p50, p90, p99 = np.percentile(seconds, [50, 90, 99])
        latency_table.add_row(
            model_name, str(len(seconds)), f"{p50:.1f}", f"{p90:.1f}", f"{p99:.1f}", f"{seconds.max():.1f}"
        )
    console.print(latency_table)


if __name__ == "__main__":
    main()
