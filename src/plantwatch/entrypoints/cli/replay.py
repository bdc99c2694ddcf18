"""`plantwatch replay`: publish a data file as a live plant would, to MQTT or to the ingest endpoint.

Batches are sent when their last reading is due: the time since the file's first reading divided by the speed.
Every batch carries the readings before it as context, so any worker (or a fresh API process) can score all
of its readings.
"""

import enum
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Protocol

import httpx
import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from plantwatch.adapters.broker.publisher import BrokerUnavailableError, ReadingPublisher
from plantwatch.adapters.datasets import load_dataset
from plantwatch.adapters.wire import CONTEXT_READINGS, encode_batch
from plantwatch.bootstrap import reading_publisher
from plantwatch.domain.errors import PlantwatchError
from plantwatch.domain.frames import SensorFrame
from plantwatch.domain.modules import Module, UnknownModuleError, parse_module
from plantwatch.settings import Settings, get_settings

console = Console()
HTTP_TIMEOUT_S = 60.0


class Target(enum.StrEnum):
    MQTT = "mqtt"
    HTTP = "http"


def parse_speed(text: str) -> float | None:
    """`60x` or `60` -> 60.0; `max` -> None (as fast as possible)."""
    value = text.strip().lower()
    if value == "max":
        return None
    try:
        speed = float(value.removesuffix("x"))
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a speed like 60x or max", param_hint="--speed") from None
    if not np.isfinite(speed) or speed <= 0:
        raise typer.BadParameter(f"speed must be positive, got {text!r}", param_hint="--speed")
    return speed


@dataclass(frozen=True)
class Batch:
    readings: SensorFrame
    context: SensorFrame
    due_s: float
    """Seconds after the replay's start at which the batch's last reading happens (at speed 1)."""


def batches(frame: SensorFrame, size: int, context: int = CONTEXT_READINGS) -> Iterator[Batch]:
    index = frame.values.index
    start = index[0]
    for begin in range(0, len(frame), size):
        end = min(begin + size, len(frame))
        rows = np.zeros(len(frame), dtype=bool)
        rows[begin:end] = True
        before = np.zeros(len(frame), dtype=bool)
        before[max(0, begin - context) : begin] = True
        yield Batch(
            readings=frame.slice_mask(rows),
            context=frame.slice_mask(before),
            due_s=(index[end - 1] - start).total_seconds(),
        )


class BatchSender(Protocol):
    def send(self, module: Module, source: str, batch: Batch) -> None: ...


class MqttSender:
    def __init__(self, publisher: ReadingPublisher) -> None:
        self.publisher = publisher

    def send(self, module: Module, source: str, batch: Batch) -> None:
        self.publisher.publish(module, source, batch.readings, batch.context)


class HttpSender:
    def __init__(self, client: httpx.Client, api_key: str | None) -> None:
        self.client = client
        self.headers = {"X-API-Key": api_key} if api_key else {}
        self.anomalies = 0

    def send(self, module: Module, source: str, batch: Batch) -> None:
        response = self.client.post(
            f"/ingest/{module.value}",
            content=encode_batch(source, batch.readings, batch.context),
            headers={"content-type": "application/json", **self.headers},
        )
        if response.status_code != 200:
            detail = (
                response.json().get("detail", response.text) if response.content else response.reason_phrase
            )
            raise PlantwatchError(f"POST /ingest/{module.value} answered {response.status_code}: {detail}")
        self.anomalies += int(response.json()["new_anomalies"])


@dataclass
class ReplayReport:
    batches: int
    readings: int
    seconds: float


def replay_frame(
    frame: SensorFrame, sender: BatchSender, batch_size: int, speed: float | None, source: str | None = None
) -> ReplayReport:
    """Send `frame` in batches paced by its timestamps divided by `speed` (None: no pacing)."""
    started = time.monotonic()
    sent = readings = 0
    for batch in batches(frame, batch_size):
        if speed is not None:
            wait = started + batch.due_s / speed - time.monotonic()
            if wait > 0:
                time.sleep(wait)
        sender.send(frame.module, source or frame.source, batch)
        sent += 1
        readings += len(batch.readings)
    return ReplayReport(batches=sent, readings=readings, seconds=time.monotonic() - started)


def replay(
    module: Annotated[str, typer.Argument(help="energy, machine or cyber")],
    file: Annotated[
        Path, typer.Argument(help="Data file in the module's raw layout", exists=True, dir_okay=False)
    ],
    speed: Annotated[
        str, typer.Option(help="Time compression, e.g. 60x (a minute of data per second), or max.")
    ] = "60x",
    batch: Annotated[int, typer.Option(min=1, help="Readings per message or request.")] = 10,
    to: Annotated[Target, typer.Option(help="mqtt (the broker) or http (POST /ingest).")] = Target.MQTT,
    url: Annotated[str, typer.Option(help="API base URL for --to http.")] = "http://127.0.0.1:8000",
    source: Annotated[str | None, typer.Option(help="Source name. Default: the file's.")] = None,
) -> None:
    """Publish a data file as a live plant would."""
    settings: Settings = get_settings()
    try:
        parsed = parse_module(module)
    except UnknownModuleError as error:
        raise typer.BadParameter(str(error), param_hint="MODULE") from None
    pace = parse_speed(speed)
    try:
        frame = load_dataset(parsed, file)
        console.print(
            f"replaying {len(frame)} {parsed.value} readings of {frame.source} to {to.value} "
            f"at {'full speed' if pace is None else f'{pace:g}x'}, {batch} per batch"
        )
        if to is Target.MQTT:
            with reading_publisher(settings) as publisher:
                report = replay_frame(frame, MqttSender(publisher), batch, pace, source)
            extra = ""
        else:
            with httpx.Client(base_url=url, timeout=HTTP_TIMEOUT_S) as client:
                http_sender = HttpSender(client, settings.api_key)
                report = replay_frame(frame, http_sender, batch, pace, source)
            extra = f", {http_sender.anomalies} new anomalies"
    except (PlantwatchError, BrokerUnavailableError, httpx.HTTPError) as error:
        console.print(f"[red]error:[/] {error}")
        raise typer.Exit(code=1) from None
    table = Table(title="replay", show_header=False)
    table.add_row("batches", str(report.batches))
    table.add_row("readings", str(report.readings))
    table.add_row("seconds", f"{report.seconds:.1f}")
    table.add_row("readings/s", f"{report.readings / max(report.seconds, 1e-9):.0f}")
    console.print(table)
    if extra:
        console.print(extra.lstrip(", "))
