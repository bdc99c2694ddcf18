"""`plantwatch models list|promote|rollback`: the stages of the registered model versions.

A running API or worker notices a promotion or rollback within settings.model_reload_interval_s and serves
the new production version from its next batch on, without a restart.
"""

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from plantwatch.bootstrap import model_registry
from plantwatch.domain.errors import PlantwatchError
from plantwatch.domain.lifecycle import GateResult, Stage
from plantwatch.domain.modules import Module, UnknownModuleError, parse_module
from plantwatch.services.lifecycle import list_versions, promote_version, rollback_production
from plantwatch.settings import Settings, get_settings

console = Console()
app = typer.Typer(help="List, promote and roll back model versions.", no_args_is_help=True)

STAGE_STYLE = {Stage.PRODUCTION: "bold green", Stage.CANDIDATE: "yellow", Stage.ARCHIVED: "dim"}

ModelOption = Annotated[
    str | None,
    typer.Option(
        "--model", "-m", help="Detector whose versions to use. Default: the module's configured one."
    ),
]


def _module(value: str) -> Module:
    try:
        return parse_module(value)
    except UnknownModuleError as error:
        raise typer.BadParameter(str(error), param_hint="MODULE") from None


def _model_name(settings: Settings, module: Module, model: str | None) -> str:
    return model or settings.model_for(module)


def _fail(error: PlantwatchError) -> typer.Exit:
    console.print(f"[red]error:[/] {error}")
    return typer.Exit(code=1)


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def gate_table(gate: GateResult) -> Table:
    table = Table(title="False-alarm gate (same held-out normal windows)", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value")
    for name, value in (
        ("windows compared", str(gate.windows)),
        ("candidate false-alarm rate", _rate(gate.candidate_false_alarm_rate)),
        ("production false-alarm rate", _rate(gate.production_false_alarm_rate)),
        ("alarms only the candidate raised", str(gate.candidate_only_alarms)),
        ("alarms only production raised", str(gate.production_only_alarms)),
        ("McNemar p (candidate worse)", "-" if gate.p_value is None else f"{gate.p_value:.3g}"),
        ("passed", "yes" if gate.passed else "no"),
    ):
        table.add_row(name, value)
    return table


def list_command(
    module: Annotated[str | None, typer.Argument(help="energy, machine or cyber. Default: all.")] = None,
    model: ModelOption = None,
) -> None:
    """Every registered version with its stage, threshold, training data fingerprint and false-alarm rate."""
    settings = get_settings()
    parsed = _module(module) if module is not None else None
    try:
        views = list_versions(model_registry(settings), parsed, model)
    except PlantwatchError as error:
        raise _fail(error) from None
    if not views:
        console.print(f"no model versions under {settings.models_dir}; train one with `plantwatch train`")
        return
    table = Table(title=f"Model versions in {settings.models_dir}")
    for column in (
        "module",
        "model",
        "version",
        "stage",
        "served",
        "threshold",
        "val. FAR",
        "data",
        "trained",
    ):
        table.add_column(column)
    for view in views:
        card = view.card
        rate = card.metrics.get("validation_false_alarm_rate")
        table.add_row(
            card.module.value,
            card.model_name,
            card.version,
            f"[{STAGE_STYLE[view.stage]}]{view.stage.value}[/]",
            "yes"
            if view.stage is Stage.PRODUCTION and card.model_name == settings.model_for(card.module)
            else "",
            f"{card.threshold:.4g}",
            _rate(rate if isinstance(rate, float) else None),
            card.data_hash[:8],
            card.created_at.strftime("%Y-%m-%d"),
        )
    console.print(table)


def promote(
    module: Annotated[str, typer.Argument(help="energy, machine or cyber.")],
    version: Annotated[str, typer.Argument(help="Version to promote, e.g. v0003.")],
    model: ModelOption = None,
    force: Annotated[
        bool, typer.Option("--force", help="Promote even when the false-alarm gate refuses the version.")
    ] = False,
) -> None:
    """Make a version production if it raises no more false alarms than production on held-out data."""
    settings = get_settings()
    parsed = _module(module)
    model_name = _model_name(settings, parsed, model)
    try:
        result = promote_version(model_registry(settings), parsed, model_name, version, force=force)
    except PlantwatchError as error:
        raise _fail(error) from None
    if result.gate is not None:
        console.print(gate_table(result.gate))
    forced = " [red](forced past the gate)[/]" if result.forced else ""
    console.print(
        f"{parsed.value}/{model_name}: {version} is production{forced}"
        + (f"; {result.previous} archived" if result.previous else "")
    )


def rollback(
    module: Annotated[str, typer.Argument(help="energy, machine or cyber.")],
    model: ModelOption = None,
) -> None:
    """Put back the version that was production before the current one (which is archived)."""
    settings = get_settings()
    parsed = _module(module)
    model_name = _model_name(settings, parsed, model)
    registry = model_registry(settings)
    try:
        before = registry.stages(parsed, model_name).production
        stages = rollback_production(registry, parsed, model_name)
    except PlantwatchError as error:
        raise _fail(error) from None
    console.print(f"{parsed.value}/{model_name}: {stages.production} is production again; {before} archived")


app.command("list")(list_command)
app.command("promote")(promote)
app.command("rollback")(rollback)
