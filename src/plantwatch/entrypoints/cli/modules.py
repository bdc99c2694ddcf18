"""`plantwatch modules add|list|show`: module configurations, inferred from a CSV or as configured."""

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from plantwatch.adapters.modules.catalog import CONFIG_SUFFIX, active_catalog
from plantwatch.adapters.modules.config import ModuleConfig
from plantwatch.adapters.modules.inference import infer_module
from plantwatch.domain.errors import PlantwatchError
from plantwatch.settings import get_settings

app = typer.Typer(no_args_is_help=True)
console = Console()

_SEPARATOR_NAMES = {"\t": "tab", ",": "comma", ";": "semicolon", "|": "pipe", "auto": "auto"}


def _separator(value: str | None) -> str | None:
    if value is None:
        return None
    named = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}.get(value, value)
    if len(named) != 1:
        raise typer.BadParameter(f"{value!r} is not one character (or tab)", param_hint="--sep")
    return named


def features_table(config: ModuleConfig) -> Table:
    table = Table(title=f"{config.name}: {config.display_title}")
    for column in ("layout", "feature", "column", "kind", "unit", "codes"):
        table.add_column(column)
    for layout in config.layouts:
        for feature in layout.features:
            codes = ", ".join(f"{raw}={code:g}" for raw, code in (feature.codes or {}).items())
            table.add_row(
                layout.name, feature.name, feature.raw_column, feature.kind.value, feature.unit, codes
            )
    return table


def summary_table(config: ModuleConfig, path: Path | None, rows: int | None = None) -> Table:
    table = Table(show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value")
    if path is not None:
        table.add_row("file", str(path))
    table.add_row("default detector", config.default_detector)
    table.add_row(
        "alarm", f"rule {config.alarm.rule}, threshold {config.alarm.threshold} {config.alarm.params()}"
    )
    for layout in config.layouts:
        prefix = f"{layout.name}: " if len(config.layouts) > 1 else ""
        stamp = layout.timestamp
        time = f"{stamp.column} ({', '.join(stamp.formats)})" if stamp.column else f"from {stamp.start}"
        table.add_row(f"{prefix}time", time)
        table.add_row(f"{prefix}separator", _SEPARATOR_NAMES.get(layout.separator, repr(layout.separator)))
        table.add_row(f"{prefix}sampling interval", layout.sampling_interval or "-")
        label = "-"
        if layout.label is not None:
            codes = ", ".join(f"{raw}={code}" for raw, code in layout.label.codes.items())
            label = f"{layout.label.column} ({codes})"
        table.add_row(f"{prefix}label", label)
        table.add_row(f"{prefix}features", str(len(layout.features)))
    if rows is not None:
        table.add_row("rows read", str(rows))
    return table


@app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="Name of the new module (lower-case, e.g. valve).")],
    source: Annotated[
        Path, typer.Option("--from", help="A CSV of the module's readings.", exists=True, dir_okay=False)
    ],
    time_column: Annotated[str | None, typer.Option(help="The date-time column (default: inferred).")] = None,
    label_column: Annotated[
        str | None,
        typer.Option(help="The anomaly label column (default: one named like label/fault/attack)."),
    ] = None,
    sep: Annotated[
        str | None, typer.Option("--sep", help="Separator (default: inferred), e.g. ';' or tab.")
    ] = None,
    ignore_columns: Annotated[
        str, typer.Option(help="Comma-separated columns to leave out, e.g. id,operator.")
    ] = "",
) -> None:
    """Infer a module configuration from a CSV and write it to the modules folder."""
    settings = get_settings()
    catalog = active_catalog()
    if name in catalog:
        origin = catalog.origins.get(name)
        console.print(f"[red]error:[/] module {name!r} exists ({origin}); pick another name")
        raise typer.Exit(code=1)
    ignored = [column.strip() for column in ignore_columns.split(",") if column.strip()]
    try:
        inferred = infer_module(name, source, time_column, label_column, _separator(sep), ignored)
    except PlantwatchError as error:
        console.print(f"[red]error:[/] {error}")
        raise typer.Exit(code=1) from None
    path = settings.modules_dir / f"{name}{CONFIG_SUFFIX}"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(inferred.config.to_yaml(), encoding="utf-8")
    console.print(f"wrote {path}")
    console.print(summary_table(inferred.config, path, inferred.rows))
    console.print(features_table(inferred.config))
    console.print(f"next: plantwatch train {name} --data {source}")


@app.command("list")
def list_modules() -> None:
    """The configured modules: built-in and the modules folder's."""
    catalog = active_catalog()
    table = Table(title="modules")
    for column in ("name", "title", "layouts", "features", "default detector", "from"):
        table.add_column(column)
    for config in catalog:
        origin = catalog.origins.get(config.name)
        table.add_row(
            config.name,
            config.display_title,
            ", ".join(layout.name for layout in config.layouts),
            ", ".join(str(len(layout.features)) for layout in config.layouts),
            config.default_detector,
            "built-in" if catalog.is_builtin(config.name) else str(origin),
        )
    console.print(table)


@app.command("show")
def show(name: Annotated[str, typer.Argument(help="A configured module.")]) -> None:
    """A module's configuration: where it comes from, its layouts and features."""
    catalog = active_catalog()
    try:
        config = catalog.get(name.strip().lower())
    except PlantwatchError as error:
        console.print(f"[red]error:[/] {error}")
        raise typer.Exit(code=1) from None
    console.print(summary_table(config, catalog.origins.get(config.name)))
    console.print(features_table(config))
