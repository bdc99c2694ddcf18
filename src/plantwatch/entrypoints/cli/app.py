"""The `plantwatch` command. Each sub-command lives in a module of its own."""

import typer
from rich.console import Console

from plantwatch.bootstrap import module_catalog
from plantwatch.domain.errors import ModuleConfigError
from plantwatch.entrypoints.cli import (
    evaluate,
    keys,
    models,
    modules,
    opcua,
    replay,
    run,
    samples,
    serve,
    train,
)
from plantwatch.settings import get_settings

app = typer.Typer(help="plantwatch: industrial anomaly intelligence", no_args_is_help=True)


@app.callback()
def configure_modules() -> None:
    # Every command works with the configured modules: the built-in ones and PLANTWATCH_MODULES_DIR's.
    try:
        module_catalog(get_settings())
    except ModuleConfigError as error:
        Console(stderr=True).print(f"[red]error:[/] {error}")
        raise typer.Exit(code=2) from None


app.command("run", help="Train quick models where none exist, then serve the API (the embedded default).")(
    run.run
)
app.command("serve", help="Serve the API with the models in the registry.")(serve.serve)
app.command("worker", help="Score readings from MQTT and store anomalies.")(serve.worker)
app.command("train", help="Train a detector for a module and register it as a candidate version.")(
    train.train
)
app.command("evaluate", help="Evaluate detectors on labelled data beside the PCA baseline.")(
    evaluate.evaluate
)
app.command("replay", help="Publish a data file as a live plant would.")(replay.replay)
app.command("api-key", help="Make an API key for a role and print the digest the server is set with.")(
    keys.api_key
)
app.command("samples", help="Write the generated sample data sets.")(samples.samples)
app.add_typer(models.app, name="models", help="List, promote and roll back model versions (stages).")
app.add_typer(modules.app, name="modules", help="Add, list and show module configurations.")
app.command("opcua", help="Score readings from OPC UA nodes and store anomalies.")(opcua.opcua)


def main() -> None:
    app()
