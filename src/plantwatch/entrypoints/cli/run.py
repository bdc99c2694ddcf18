"""`plantwatch run`: the embedded default. Train quick models where the registry has none, score held-out
data into the store with each module's production version so the API has anomalies to show, then serve the
API.

Re-running is idempotent: existing models are reused and re-scored readings give the same anomaly ids.
"""

from dataclasses import dataclass
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from plantwatch.adapters.datasets.samples import SAMPLE_FILES
from plantwatch.adapters.datasets.training_data import find_real_dataset, load_training_frame
from plantwatch.adapters.detectors import TorchDetector, detector_class
from plantwatch.adapters.storage import SqlDriftEventStore
from plantwatch.bootstrap import drift_monitor, incident_store, model_registry, sql_store
from plantwatch.domain.errors import NotFoundError, PlantwatchError
from plantwatch.domain.modules import Module, known_modules
from plantwatch.domain.ports import AnomalyRepository
from plantwatch.entrypoints.cli.shared import HostOption, PortOption, serve_api, train_detector
from plantwatch.services.drift import DriftMonitor
from plantwatch.services.incidents import IncidentTracking
from plantwatch.services.ingest import ReadingContext, ingest_frame
from plantwatch.services.lifecycle import load_production
from plantwatch.settings import Settings, get_settings

console = Console()

# The first share of each module's data trains the quick model; the rest is scored into the store.
TRAIN_FRACTION = 0.6
QUICK_EPOCHS = 8


@dataclass(frozen=True)
class PreparedModule:
    module: Module
    model_name: str
    version: str
    trained_now: bool
    data_source: str
    scored: int
    anomalies: int
    new_anomalies: int


def prepare_module(
    module: Module,
    settings: Settings,
    repository: AnomalyRepository,
    epochs: int | None,
    incidents: IncidentTracking | None = None,
    drift: DriftMonitor | None = None,
) -> PreparedModule:
    """Make sure `module` has a model, then score the held-out part of its data into the store (and watch
    its drift with `drift`, which stores a drift event where the held-out data leave the training data)."""
    registry = model_registry(settings)
    model_name = settings.model_for(module)
    frame = load_training_frame(module, None, settings.datasets_dir, settings.seed)
    trained_now = False
    try:
        model = load_production(registry, module, model_name)
    except NotFoundError:
        hyper = {"epochs": epochs} if epochs and issubclass(detector_class(model_name), TorchDetector) else {}
        console.print(f"training a quick [bold]{model_name}[/] for [bold]{module.value}[/] on {frame.source}")
        # the first version of a model is promoted at once, so the API has something to serve
        train_detector(module, model_name, frame, settings, hyper=hyper, train_fraction=TRAIN_FRACTION)
        model = load_production(registry, module, model_name)
        trained_now = True
    training_part, held_out = frame.split(TRAIN_FRACTION)
    result = ingest_frame(
        held_out,
        model,
        repository,
        ReadingContext(),
        sent_context=training_part,
        incidents=incidents,
        drift=drift,
    )
    return PreparedModule(
        module=module,
        model_name=model_name,
        version=model.card.version,
        trained_now=trained_now,
        data_source=frame.source,
        scored=result.scored,
        anomalies=len(result.anomalies),
        new_anomalies=result.new_anomalies,
    )


def prepared_table(prepared: list[PreparedModule]) -> Table:
    table = Table(title="plantwatch run")
    for column in ("module", "model", "version", "trained now", "data", "scored", "anomalies", "new"):
        table.add_column(column)
    for p in prepared:
        table.add_row(
            p.module.value,
            p.model_name,
            p.version,
            "yes" if p.trained_now else "no",
            p.data_source,
            str(p.scored),
            str(p.anomalies),
            str(p.new_anomalies),
        )
    return table


def run(
    host: HostOption = "127.0.0.1",
    port: PortOption = 8000,
    serve: Annotated[bool, typer.Option("--serve/--no-serve", help="Serve the API when ready.")] = True,
    epochs: Annotated[
        int, typer.Option(min=1, help="Most epochs of a quick torch model (early stopping may end sooner).")
    ] = QUICK_EPOCHS,
) -> None:
    """Train quick models where none exist, then serve the API (the embedded default)."""
    settings = get_settings()
    engine, repository = sql_store(settings)
    incidents, _ = incident_store(settings, engine)
    drift = drift_monitor(settings, SqlDriftEventStore(engine))
    prepared: list[PreparedModule] = []
    # Modules beyond the seed's need data of their own: run prepares those that have a file in datasets/.
    modules = [
        module
        for module in known_modules()
        if module in SAMPLE_FILES or find_real_dataset(module, settings.datasets_dir) is not None
    ]
    skipped = [module.value for module in known_modules() if module not in modules]
    if skipped:
        console.print(
            f"[dim]no data in {settings.datasets_dir} for {', '.join(skipped)}: "
            "train them with `plantwatch train NAME --data FILE`[/]"
        )
    try:
        for module in modules:
            try:
                prepared.append(prepare_module(module, settings, repository, epochs, incidents, drift))
            except PlantwatchError as error:
                # one module's bad data must not keep the others from being served
                console.print(f"[red]error:[/] {module.value}: {error}")
    finally:
        engine.dispose()
    console.print(prepared_table(prepared))
    if len(prepared) < len(modules):
        console.print("[yellow]some modules have no model; /health says which and what to run[/]")
    if serve:
        serve_api(settings, host, port)
