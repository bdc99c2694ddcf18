"""What several commands share: serving the API, training one detector with a progress bar, options."""

import os
import tempfile
from typing import Annotated, Any

import typer
import uvicorn
from fastapi import FastAPI
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from plantwatch.adapters.detectors import EpochReport, TorchDetector
from plantwatch.adapters.modules.catalog import module_config
from plantwatch.bootstrap import model_registry, new_detector
from plantwatch.domain.alarms import AlarmRule, parse_alarm_rule
from plantwatch.domain.frames import SensorFrame
from plantwatch.domain.modules import Module
from plantwatch.domain.ports import ModelCard
from plantwatch.domain.thresholds import build_thresholder
from plantwatch.entrypoints.api.app import create_app
from plantwatch.entrypoints.logs import configure_logging
from plantwatch.services.structure import STRUCTURE_AUC_WARNING
from plantwatch.services.training import readings_per_day, train_model
from plantwatch.settings import Settings, get_settings

console = Console()

HostOption = Annotated[str, typer.Option(help="Interface to listen on.")]
PortOption = Annotated[int, typer.Option(help="TCP port to listen on.")]


WorkersOption = Annotated[
    int,
    typer.Option(
        min=1,
        help="Worker processes. Sync routes share a few threads per process, so on N cores about N "
        "processes serve the most requests (docs/benchmarks.md).",
    ),
]


def served_app() -> FastAPI:
    """The app each `serve --workers N` process builds (uvicorn imports it by name in every process)."""
    settings = get_settings()
    configure_logging(settings.log_format, settings.log_level)
    return create_app(settings)


def serve_api(settings: Settings, host: str, port: int, workers: int = 1) -> None:
    configure_logging(settings.log_format, settings.log_level)
    console.print(
        f"plantwatch API on [bold]http://{host}:{port}[/] (docs at /docs), {workers} process(es), "
        f"store {settings.database_for_display()}"
    )
    # our request log (with request ids) replaces uvicorn's access log; log_config=None keeps our handlers
    options: dict[str, Any] = {"host": host, "port": port, "log_config": None, "access_log": False}
    if workers == 1:
        uvicorn.run(create_app(settings), **options)
        return
    # every process counts its own requests; a scrape of /metrics adds up their files in this directory
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="plantwatch-metrics-"))
    uvicorn.run(f"{__name__}:served_app", factory=True, workers=workers, **options)


def train_detector(
    module: Module,
    model: str,
    frame: SensorFrame,
    settings: Settings,
    hyper: dict[str, Any] | None = None,
    threshold: str | None = None,
    threshold_params: dict[str, Any] | None = None,
    train_fraction: float = 1.0,
    validation_fraction: float = 0.2,
    show_progress: bool = True,
    alarm_rule: AlarmRule | None = None,
) -> ModelCard:
    """Build, fit, calibrate and register one detector; what `plantwatch train` (and `run`) do per module.

    Without `threshold` (and its params) or `alarm_rule`, the module configuration's alarm settings apply.
    An alarm budget gets the data's sampling rate."""
    alarm = module_config(module).alarm
    if threshold is None:
        threshold, threshold_params = alarm.threshold, {**alarm.params(), **(threshold_params or {})}
    params = dict(threshold_params or {})
    if threshold == "budget":
        params.setdefault("readings_per_day", readings_per_day(frame))
    detector = new_detector(settings, model, **(hyper or {}))
    thresholder = build_thresholder(threshold, **params)
    rule = alarm_rule if alarm_rule is not None else parse_alarm_rule(alarm.rule)
    registry = model_registry(settings)
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[losses]}"),
        TimeElapsedColumn(),
        console=console,
        disable=not show_progress,
    ) as progress:
        if isinstance(detector, TorchDetector):
            task = progress.add_task(f"{module.value}/{model}", total=detector.config.epochs, losses="")

            def report(epoch: EpochReport) -> None:
                losses = f"train {epoch.train_loss:.4f}"
                if epoch.val_loss is not None:
                    losses += f"  val {epoch.val_loss:.4f}  best {epoch.best_val_loss:.4f}"
                if epoch.members > 1:
                    losses = f"network {epoch.member + 1}/{epoch.members}  {losses}"
                progress.update(task, completed=epoch.epoch, losses=losses)

            detector.on_epoch = report
        else:
            task = progress.add_task(f"{module.value}/{model}", total=1, losses="")
        card = train_model(
            frame,
            detector,
            thresholder,
            registry,
            validation_fraction=validation_fraction,
            train_fraction=train_fraction,
            module_config=module_config(module).snapshot(frame.feature_names),
            structure_seed=settings.seed,
            alarm_rule=rule,
        )
        # early stopping ends the bar short of its total; show it finished
        steps = int(card.metrics.get("epochs_run", 1))
        progress.update(task, total=steps, completed=steps)
    return card


def structure_warning(card: ModelCard) -> str | None:
    """A warning when the training data looked like noise to the detector (services/structure.py)."""
    auc = card.metrics.get("structure_auc")
    if auc is None or auc >= STRUCTURE_AUC_WARNING:
        return None
    return (
        f"the training data looks like noise: {card.model_name} tells a copy with every feature shuffled "
        f"from the real readings with AUC {auc:.2f} (0.5 = not at all). Its anomalies will mean little; "
        "check the file and its columns."
    )
