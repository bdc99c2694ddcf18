"""`plantwatch train`: fit a detector on a module's data, calibrate its threshold, register it."""

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from plantwatch.domain.errors import DataFileError, PlantwatchError
from plantwatch.domain.frames import SensorFrame
from plantwatch.domain.modules import Module, UnknownModuleError, parse_module
from plantwatch.domain.ports import ModelCard
from plantwatch.domain.thresholds import build_thresholder
from plantwatch.infrastructure.datasets import load_dataset
from plantwatch.infrastructure.datasets.samples import generate_sample, load_sample, sample_path
from plantwatch.infrastructure.detectors import DETECTORS, EpochReport, TorchDetector, build_detector
from plantwatch.infrastructure.registry import FileModelRegistry
from plantwatch.infrastructure.settings import Settings, get_settings
from plantwatch.services.training import train_model

console = Console()


def find_real_dataset(module: Module, datasets_dir: Path) -> Path | None:
    """The first CSV under `datasets_dir` (samples excluded, names in order) that loads as `module` data."""
    if not datasets_dir.is_dir():
        return None
    candidates = sorted(
        p for p in datasets_dir.rglob("*.csv") if "samples" not in p.relative_to(datasets_dir).parts
    )
    for path in candidates:
        try:
            load_dataset(module, path)
        except DataFileError:
            continue
        return path
    return None


def load_training_frame(module: Module, data: Path | None, settings: Settings) -> SensorFrame:
    """The given file, else a real data set in settings.datasets_dir, else the module's generated sample."""
    if data is not None:
        return load_dataset(module, data)
    real = find_real_dataset(module, settings.datasets_dir)
    if real is not None:
        return load_dataset(module, real)
    if sample_path(module).exists():
        return load_sample(module)
    return generate_sample(module, seed=settings.seed)


def train_detector(
    module: Module,
    model: str,
    frame: SensorFrame,
    settings: Settings,
    hyper: dict[str, Any] | None = None,
    threshold: str = "pot",
    threshold_params: dict[str, Any] | None = None,
    train_fraction: float = 1.0,
    validation_fraction: float = 0.2,
    show_progress: bool = True,
) -> ModelCard:
    """Build, fit, calibrate and register one detector; what `plantwatch train` (and `run`) do per module."""
    detector = build_detector(model, **{"seed": settings.seed, **(hyper or {})})
    thresholder = build_thresholder(threshold, **(threshold_params or {}))
    registry = FileModelRegistry(settings.models_dir)
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
        )
        # early stopping ends the bar short of its total; show it finished
        steps = int(card.metrics.get("epochs_run", 1))
        progress.update(task, total=steps, completed=steps)
    return card


def summary_table(card: ModelCard, frame: SensorFrame, models_dir: Path) -> Table:
    metrics = card.metrics
    table = Table(title=f"Trained {card.module.value}/{card.model_name} {card.version}", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value")
    best_val = metrics.get("best_val_loss")
    rows = [
        ("data", f"{card.training_source} ({len(frame)} rows)"),
        ("rows fitted", str(metrics.get("fit_rows", "?"))),
        ("validation rows", str(metrics.get("validation_rows", "?"))),
        ("features", str(len(card.feature_names))),
        ("window", str(card.window)),
        ("epochs run", str(metrics.get("epochs_run", "-"))),
        ("best val loss", f"{best_val:.5f}" if isinstance(best_val, float) else "-"),
        ("threshold", f"{card.threshold:.4f}"),
        ("method", card.threshold_method),
        ("validation false-alarm rate", f"{metrics.get('validation_false_alarm_rate', float('nan')):.4f}"),
        ("version", card.version),
        ("path", str(models_dir / card.module.value / card.model_name / card.version)),
        ("seconds", f"{metrics.get('training_seconds', float('nan')):.1f}"),
    ]
    for name, value in rows:
        table.add_row(name, value)
    return table


def train(
    module: Annotated[str, typer.Argument(help="Module to train: energy, machine or cyber.")],
    model: Annotated[
        str, typer.Option("--model", "-m", help=f"Detector: {', '.join(DETECTORS)}.")
    ] = "lstm_ae",
    data: Annotated[
        Path | None,
        typer.Option(
            "--data",
            "-d",
            help="CSV in the module's layout. Default: a real file in the datasets dir, else the sample.",
        ),
    ] = None,
    epochs: Annotated[
        int | None, typer.Option(help="Most epochs (torch detectors; early stopping may end sooner).")
    ] = None,
    window: Annotated[int | None, typer.Option(help="Readings per window.")] = None,
    hidden: Annotated[int | None, typer.Option(help="Hidden units (torch detectors).")] = None,
    threshold: Annotated[str, typer.Option(help="Threshold method: pot or quantile.")] = "pot",
    risk: Annotated[
        float, typer.Option(help="POT: probability a normal reading passes the threshold.")
    ] = 1e-3,
    quantile: Annotated[
        float, typer.Option(help="Quantile method: quantile of normal validation scores.")
    ] = 0.995,
    train_fraction: Annotated[
        float, typer.Option(help="First share of the rows used for training; the rest stays unseen.")
    ] = 1.0,
    validation_fraction: Annotated[
        float, typer.Option(help="Last share of the training rows used to calibrate the threshold.")
    ] = 0.2,
    seed: Annotated[int | None, typer.Option(help="Random seed (default: PLANTWATCH_SEED).")] = None,
) -> None:
    """Train a detector for a module and store it in the model registry."""
    settings = get_settings()
    if seed is not None:
        settings = settings.model_copy(update={"seed": seed})
    try:
        parsed = parse_module(module)
    except UnknownModuleError as error:
        raise typer.BadParameter(str(error), param_hint="MODULE") from None
    if model not in DETECTORS:
        raise typer.BadParameter(
            f"unknown model {model!r}; expected one of: {', '.join(DETECTORS)}", param_hint="--model"
        )
    hyper = {
        name: value
        for name, value in (("epochs", epochs), ("window", window), ("hidden", hidden))
        if value is not None
    }
    threshold_params: dict[str, Any] = {"risk": risk} if threshold == "pot" else {"q": quantile}
    try:
        frame = load_training_frame(parsed, data, settings)
        console.print(
            f"Training [bold]{model}[/] for [bold]{parsed.value}[/] on {frame.source}: "
            f"{len(frame)} rows x {len(frame.feature_names)} features"
        )
        card = train_detector(
            parsed,
            model,
            frame,
            settings,
            hyper=hyper,
            threshold=threshold,
            threshold_params=threshold_params,
            train_fraction=train_fraction,
            validation_fraction=validation_fraction,
        )
    except PlantwatchError as error:
        console.print(f"[red]error:[/] {error}")
        raise typer.Exit(code=1) from None
    console.print(summary_table(card, frame, settings.models_dir))
