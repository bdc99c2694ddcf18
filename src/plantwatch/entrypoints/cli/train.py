"""`plantwatch train`: fit a detector on a module's data, calibrate its threshold, register it as a candidate
(the first version of a model is promoted to production at once; later ones wait for `plantwatch models
promote`)."""

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from plantwatch.adapters.datasets.training_data import load_training_frame
from plantwatch.adapters.detectors import DETECTORS
from plantwatch.adapters.modules.catalog import module_config
from plantwatch.adapters.modules.config import AlarmConfig
from plantwatch.bootstrap import model_registry
from plantwatch.domain.alarms import parse_alarm_rule
from plantwatch.domain.errors import InvalidInputError, PlantwatchError
from plantwatch.domain.frames import SensorFrame
from plantwatch.domain.lifecycle import Stage
from plantwatch.domain.modules import Module, UnknownModuleError, parse_module
from plantwatch.domain.ports import ModelCard
from plantwatch.domain.thresholds import THRESHOLD_METHODS
from plantwatch.entrypoints.cli.shared import structure_warning, train_detector
from plantwatch.settings import get_settings

console = Console()


def summary_table(card: ModelCard, frame: SensorFrame, models_dir: Path, stage: Stage) -> Table:
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
        ("alarm rule", _rule_text(card)),
        ("validation false-alarm rate", f"{metrics.get('validation_false_alarm_rate', float('nan')):.4f}"),
        ("structure AUC", _auc(metrics.get("structure_auc"))),
        ("version", card.version),
        ("stage", stage.value),
        ("path", str(models_dir / card.module.value / card.model_name / card.version)),
        ("seconds", f"{metrics.get('training_seconds', float('nan')):.1f}"),
    ]
    for name, value in rows:
        table.add_row(name, value)
    return table


def _threshold_params(method: str, value: str, alarm: AlarmConfig) -> dict[str, Any]:
    """Parameters of the threshold `method` from "METHOD:VALUE", else the module's alarm settings."""
    configured = {
        "pot": ("risk", alarm.risk),
        "quantile": ("q", alarm.quantile),
        "budget": ("alarms_per_day", alarm.alarms_per_day),
    }
    if method not in configured:
        raise InvalidInputError(
            f"unknown threshold method {method!r}; expected one of: {', '.join(THRESHOLD_METHODS)}",
            field="threshold",
        )
    key, default = configured[method]
    if not value:
        return {key: default}
    try:
        return {key: float(value)}
    except ValueError:
        raise InvalidInputError(f"threshold {method}:{value}: {value!r} is not a number", key) from None


def _rule_text(card: ModelCard) -> str:
    if card.alarm_reference is None:
        return card.alarm_rule
    return f"{card.alarm_rule} (reference {card.alarm_reference:.4g}; threshold on the statistic)"


def _auc(value: object) -> str:
    return f"{value:.3f} (shuffled vs real; 0.5 = no structure)" if isinstance(value, float) else "-"


def train(
    module: Annotated[str, typer.Argument(help="Module to train: energy, machine, cyber, process or yours.")],
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            "-m",
            help=f"Detector: {', '.join(DETECTORS)}. Default: lstm_ae for the seed modules, else the "
            "module configuration's default_detector.",
        ),
    ] = None,
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
    threshold: Annotated[
        str | None,
        typer.Option(
            help="Threshold method on normal validation scores: pot[:RISK], quantile[:Q] or "
            "budget[:FALSE_ALARMS_PER_DAY] (at the data's sampling interval). Default: the module's alarm "
            "setting."
        ),
    ] = None,
    alarm_rule: Annotated[
        str | None,
        typer.Option(
            "--alarm-rule",
            help="How scores turn into alarms: none, ewma:ALPHA, cusum[:Q], KofN, joined with + (e.g. "
            "ewma:0.2+2of3); calibrated on normal validation scores and applied live. Default: the "
            "module's alarm rule.",
        ),
    ] = None,
    risk: Annotated[
        float | None, typer.Option(help="POT: probability a normal reading passes the threshold.")
    ] = None,
    quantile: Annotated[
        float | None, typer.Option(help="Quantile method: quantile of normal validation scores.")
    ] = None,
    train_fraction: Annotated[
        float, typer.Option(help="First share of the rows used for training; the rest stays unseen.")
    ] = 1.0,
    validation_fraction: Annotated[
        float, typer.Option(help="Last share of the training rows used to calibrate the threshold.")
    ] = 0.2,
    seed: Annotated[int | None, typer.Option(help="Random seed (default: PLANTWATCH_SEED).")] = None,
) -> None:
    """Train a detector for a module and register it as a candidate version."""
    settings = get_settings()
    if seed is not None:
        settings = settings.model_copy(update={"seed": seed})
    try:
        parsed = parse_module(module)
    except UnknownModuleError as error:
        raise typer.BadParameter(str(error), param_hint="MODULE") from None
    alarm = module_config(parsed).alarm
    model = model or ("lstm_ae" if parsed in Module else module_config(parsed).default_detector)
    method, _, threshold_value = (threshold or alarm.threshold).partition(":")
    if model not in DETECTORS:
        raise typer.BadParameter(
            f"unknown model {model!r}; expected one of: {', '.join(DETECTORS)}", param_hint="--model"
        )
    hyper = {
        name: value
        for name, value in (("epochs", epochs), ("window", window), ("hidden", hidden))
        if value is not None
    }
    try:
        threshold_params = _threshold_params(method, threshold_value, alarm)
        if risk is not None and method == "pot":
            threshold_params["risk"] = risk
        if quantile is not None and method == "quantile":
            threshold_params["q"] = quantile
        rule = parse_alarm_rule(alarm_rule if alarm_rule is not None else alarm.rule)
        if not rule.applies_live:
            raise InvalidInputError(
                f"alarm rule {rule.spec!r}: a minimum gap (gap:N) cannot be applied live; leave it out "
                "(`plantwatch evaluate --alarm-rule` takes it)",
                field="alarm_rule",
            )
    except InvalidInputError as error:
        hint = (
            "--alarm-rule" if error.field in ("alarm_rule", "k", "min_gap", "ewma_alpha") else "--threshold"
        )
        raise typer.BadParameter(str(error), param_hint=hint) from None
    try:
        frame = load_training_frame(parsed, data, settings.datasets_dir, settings.seed)
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
            threshold=method,
            threshold_params=threshold_params,
            alarm_rule=rule,
            train_fraction=train_fraction,
            validation_fraction=validation_fraction,
        )
    except PlantwatchError as error:
        console.print(f"[red]error:[/] {error}")
        raise typer.Exit(code=1) from None
    stage = model_registry(settings).stages(card.module, card.model_name).stage_of(card.version)
    console.print(summary_table(card, frame, settings.models_dir, stage))
    if stage is Stage.CANDIDATE:
        console.print(
            f"{card.version} is a candidate; serve it with "
            f"`plantwatch models promote {card.module.value} {card.version} --model {card.model_name}`"
        )
    warning = structure_warning(card)
    if warning:
        console.print(f"[yellow]warning:[/] {warning}")
