"""`plantwatch serve` (the API) and `plantwatch worker` (the MQTT streaming worker)."""

import signal
import socket
from dataclasses import fields
from types import FrameType
from typing import Annotated

import typer
from prometheus_client import start_http_server
from rich.console import Console
from rich.table import Table

from plantwatch.bootstrap import build_container, notification_dispatcher
from plantwatch.domain.modules import Module, UnknownModuleError, parse_module
from plantwatch.entrypoints.cli.shared import HostOption, PortOption, WorkersOption, serve_api
from plantwatch.entrypoints.logs import configure_logging
from plantwatch.entrypoints.worker.mqtt_worker import MqttWorker, WorkerStats
from plantwatch.settings import get_settings

console = Console()


def serve(host: HostOption = "127.0.0.1", port: PortOption = 8000, workers: WorkersOption = 1) -> None:
    """Serve the API with the models in the registry."""
    serve_api(get_settings(), host, port, workers)


def parse_modules(values: list[str] | None) -> list[Module]:
    if not values:
        return list(Module)
    try:
        return list(dict.fromkeys(parse_module(v) for v in values))
    except UnknownModuleError as error:
        raise typer.BadParameter(str(error), param_hint="--module") from None


def stats_table(client_id: str, stats: WorkerStats) -> Table:
    table = Table(title=f"worker {client_id}", show_header=False)
    for stat in fields(stats):
        if stat.name != "rejected_reasons":  # a list; each reason was logged when its message was rejected
            table.add_row(stat.name, str(getattr(stats, stat.name)))
    return table


def worker(
    module: Annotated[
        list[str] | None,
        typer.Option("--module", "-m", help="Module to serve (repeat for several). Default: all."),
    ] = None,
    client_id: Annotated[
        str | None,
        typer.Option(
            help="MQTT client id, fixed per worker so its session (unacknowledged readings) survives a "
            "restart. Give each worker its own. Default: plantwatch-worker-<host>-<modules>."
        ),
    ] = None,
) -> None:
    """Score readings from MQTT and store anomalies; several workers of one share group split the load."""
    settings = get_settings()
    configure_logging(settings.log_format, settings.log_level)
    if settings.worker_metrics_port is not None:
        start_http_server(settings.worker_metrics_port)
    modules = parse_modules(module)
    container = build_container(settings, modules)
    missing = [m for m in modules if m not in container.models]
    if missing:
        for m in missing:
            console.print(f"[red]error:[/] {container.model_problem(m)}")
        container.close()
        raise typer.Exit(code=1)
    client_id = client_id or f"plantwatch-worker-{socket.gethostname()}-{'-'.join(m.value for m in modules)}"
    mqtt_worker = MqttWorker(
        settings,
        container.models,
        container.repository,
        client_id,
        incidents=container.incidents,
        drift=container.drift,
    )
    stop_dispatcher = (
        notification_dispatcher(settings, container.outbox).start() if container.outbox else None
    )
    if container.served is not None and settings.model_reload_interval_s > 0:
        container.served.watch(settings.model_reload_interval_s)

    def stop(_signal: int, _frame: FrameType | None) -> None:
        mqtt_worker.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    console.print(
        f"worker [bold]{client_id}[/] for {[m.value for m in modules]} on "
        f"mqtt://{settings.mqtt_host}:{settings.mqtt_port} (share group {settings.mqtt_share_group})"
    )
    try:
        mqtt_worker.run()
    finally:
        if stop_dispatcher is not None:
            stop_dispatcher()
        container.close()
        console.print(stats_table(client_id, mqtt_worker.stats))
