"""`plantwatch samples`: regenerate the generated sample data sets shipped in datasets/samples."""

from pathlib import Path

import typer

from plantwatch.adapters.datasets.samples import load_sample, write_samples


def samples(
    out_dir: Path = typer.Option(Path("datasets/samples"), help="Folder to write the sample CSV files into."),
    seed: int = typer.Option(7, help="Random seed; the same seed always gives the same files."),
) -> None:
    for module, path in write_samples(out_dir, seed).items():
        frame = load_sample(module, path)
        anomalous = 0 if frame.labels is None else int(frame.labels.sum())
        typer.echo(f"{module.value}: {path} ({len(frame)} rows, {anomalous} anomalous)")
