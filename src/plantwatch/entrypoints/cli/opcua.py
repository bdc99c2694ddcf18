"""`plantwatch opcua`: score a module's readings from OPC UA nodes as they change, and store anomalies."""

import asyncio
import logging
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

from plantwatch.adapters.modules.catalog import module_config
from plantwatch.adapters.opcua import OpcuaReader, ReaderStats, read_nodes_file
from plantwatch.bootstrap import Container, build_container
from plantwatch.domain.errors import PlantwatchError, require_same_features
from plantwatch.domain.frames import SensorFrame
from plantwatch.domain.modules import Module, UnknownModuleError, parse_module
from plantwatch.services.ingest import ingest_frame
from plantwatch.settings import get_settings

console = Console()
DEFAULT_INTERVAL = "1s"


def reader_for(
    container: Container,
    module: Module,
    endpoint: str,
    nodes_path: Path,
    interval: str | None = None,
    batch: int = 1,
) -> OpcuaReader:
    """A reader of `module`'s model features from the nodes `nodes_path` names, storing what it scores in
    `container`'s store. The interval defaults to the module configuration's sampling interval."""
    model = container.model(module)
    nodes = read_nodes_file(nodes_path)
    require_same_features(
        nodes.nodes, model.card.feature_names, f"{nodes_path}: nodes vs the {module.value} model"
    )
    layout = module_config(module).layout_of(model.card.feature_names)
    step = pd.Timedelta(interval or (layout.sampling_interval if layout else None) or DEFAULT_INTERVAL)

    def store(frame: SensorFrame) -> None:
        result = ingest_frame(frame, model, container.repository, container.context)
        container.feed.publish(result.anomalies)
        if result.new_anomalies:
            console.print(f"{frame.values.index[-1]}: {result.new_anomalies} new anomalies")

    return OpcuaReader(endpoint, module, nodes, list(model.card.feature_names), step, store, batch_size=batch)


def stats_table(stats: ReaderStats) -> Table:
    table = Table(title="opcua", show_header=False)
    for name, value in asdict(stats).items():
        if name != "errors":
            table.add_row(name, str(value))
    return table


def opcua(
    module: Annotated[str, typer.Option("--module", "-m", help="The module the nodes' readings belong to.")],
    endpoint: Annotated[str, typer.Option(help="Server endpoint, e.g. opc.tcp://HOST:4840.")],
    nodes: Annotated[
        Path,
        typer.Option(help="YAML: source, and nodes (feature: node id).", exists=True, dir_okay=False),
    ],
    interval: Annotated[
        str | None, typer.Option(help="Time between readings (default: the module's sampling interval).")
    ] = None,
    batch: Annotated[int, typer.Option(min=1, help="Readings scored and stored together.")] = 1,
    readings: Annotated[int | None, typer.Option(min=1, help="Stop after this many readings.")] = None,
) -> None:
    """Subscribe to OPC UA nodes, assemble readings at the module's interval, score and store them."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = get_settings()
    try:
        parsed = parse_module(module)
    except UnknownModuleError as error:
        raise typer.BadParameter(str(error), param_hint="--module") from None
    container = build_container(settings, [parsed])
    try:
        reader = reader_for(container, parsed, endpoint, nodes, interval, batch)
        console.print(f"reading {len(reader.feature_names)} nodes of {endpoint} every {reader.interval}")
        try:
            asyncio.run(reader.run(max_readings=readings))
        except KeyboardInterrupt:
            console.print("stopped")
        console.print(stats_table(reader.stats))
    except (PlantwatchError, ValueError) as error:
        console.print(f"[red]error:[/] {error}")
        raise typer.Exit(code=1) from None
    finally:
        container.close()
