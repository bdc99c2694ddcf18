"""The `plantwatch` command. Each sub-command lives in a module of its own."""

import typer

from plantwatch.entrypoints.cli import evaluate, keys, models, replay, run, samples, serve, train

app = typer.Typer(help="plantwatch: industrial anomaly intelligence", no_args_is_help=True)
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


def main() -> None:
    app()
