"""`plantwatch evaluate`: detection quality of each detector beside the PCA baseline, per data set (the data
sets and their splits are in adapters/datasets/benchmark_splits.py)."""

import functools
import math
import os
import platform
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import torch
import typer
from rich.console import Console
from rich.table import Table

from plantwatch.adapters.datasets.benchmark_splits import (
    DATASETS,
    DatasetMissingError,
    EvaluationSplit,
    load_split,
)
from plantwatch.adapters.detectors import DETECTORS, TorchDetector, build_detector, detector_class
from plantwatch.domain.errors import InvalidInputError
from plantwatch.domain.metrics import DetectionReport
from plantwatch.domain.thresholds import THRESHOLD_METHODS, build_thresholder
from plantwatch.services.evaluation import evaluate_detector
from plantwatch.settings import Settings

BASELINE = "pca"
# Marks the generated part of a markdown file, so hand-written commentary around it survives a re-run.
BEGIN_MARK = "<!-- plantwatch evaluate: begin -->"
END_MARK = "<!-- plantwatch evaluate: end -->"


@dataclass(frozen=True)
class DatasetResult:
    split: EvaluationSplit
    reports: list[DetectionReport]


def evaluate_split(
    split: EvaluationSplit,
    models: Sequence[str],
    threshold_method: str,
    seed: int,
    epochs: int | None = None,
    on_model: Callable[[str], None] | None = None,
) -> DatasetResult:
    reports = []
    for name in models:
        if on_model is not None:
            on_model(name)
        hyper: dict[str, object] = {"seed": seed}
        if epochs is not None and issubclass(detector_class(name), TorchDetector):
            hyper["epochs"] = epochs
        detector = build_detector(name, **hyper)
        thresholder = build_thresholder(threshold_method)
        reports.append(evaluate_detector(split.train, split.test, detector, thresholder))
    return DatasetResult(split, reports)


def with_baseline(models: Sequence[str]) -> list[str]:
    """Catalog names from repeated or comma-separated options, PCA first, each once."""
    names = [part.strip() for entry in models for part in entry.split(",") if part.strip()]
    for name in names:
        detector_class(name)  # an unknown name fails here, listing the known ones
    return list(dict.fromkeys([BASELINE, *names]))


# --- presentation -------------------------------------------------------------------------------------------

COLUMNS = (
    "model",
    "P",
    "R",
    "F1",
    "event recall",
    "FA/day",
    "AUC-PR",
    "ROC-AUC",
    "RC@1",
    "RC@3",
    "fit s",
    "ms/1k",
    "PA-F1 †",
)
LEGEND = (
    "P/R/F1: point-wise precision, recall, F1 (alarm = score > threshold). event recall: events with an "
    "alarm (found/all). FA/day: alarm runs outside every event per day. AUC-PR, ROC-AUC: threshold-free. "
    "RC@1, RC@3: share of found events whose injected feature the root cause ranks first / in the top 3 "
    "(generated data only). fit s: fitting seconds. ms/1k: scoring milliseconds per 1,000 readings."
)
PA_NOTE = (
    "† PA-F1 (point-adjusted: a whole event counts as found once one reading of it alarms) is for comparison "
    "with published numbers only: it inflates every detector, random scores included."
)


def _number(value: float, digits: int = 3) -> str:
    return "–" if math.isnan(value) else f"{value:.{digits}f}"


def report_row(report: DetectionReport) -> list[str]:
    return [
        report.model_name,
        _number(report.precision),
        _number(report.recall),
        _number(report.f1),
        f"{_number(report.event_recall)} ({report.detected_events}/{report.events})",
        _number(report.false_alarms_per_day, 2),
        _number(report.auc_pr),
        _number(report.roc_auc),
        _number(report.root_cause_top1, 2),
        _number(report.root_cause_top3, 2),
        _number(report.fit_seconds, 2),
        _number(report.score_ms_per_1k, 1),
        _number(report.pa_f1),
    ]


def summary_line(result: DatasetResult) -> str:
    first = result.reports[0]
    return (
        f"{len(result.split.test)} test readings, {first.readings} labelled, {first.events} events, "
        f"prevalence {first.prevalence:.3f} (the AUC-PR of random scores); threshold "
        f"{first.threshold_method} on held-out normal training scores. {result.split.note}."
    )


def rich_table(result: DatasetResult) -> Table:
    table = Table(
        title=result.split.name, caption=summary_line(result) + "\n" + PA_NOTE, caption_justify="left"
    )
    for column in COLUMNS:
        table.add_column(column, justify="left" if column == "model" else "right")
    for report in result.reports:
        table.add_row(*report_row(report))
    return table


def markdown_tables(
    results: Sequence[DatasetResult],
    command: str,
    threshold_method: str,
    settings: Settings,
    epochs: int | None,
) -> str:
    epochs_note = (
        "each deep model's default epochs" if epochs is None else f"{epochs} epochs for the deep models"
    )
    lines = [
        BEGIN_MARK,
        "",
        f"Command: `{command}`  ",
        f"Machine: {os.cpu_count()} CPU cores ({platform.machine()}, {platform.python_implementation()} "
        f"{platform.python_version()}), torch {torch.__version__} on {torch.get_num_threads()} thread(s), "
        f"device setting `{settings.device}`  ",
        f"Seed: {settings.seed}; {epochs_note} (early stopping on a validation slice); threshold: "
        f"`{threshold_method}` calibrated on held-out normal training scores only; "
        "alarm = score > threshold; no point adjustment except in the PA-F1 column.",
        "",
    ]
    for result in results:
        lines += [f"### {result.split.name}", "", summary_line(result), ""]
        lines.append("| " + " | ".join(COLUMNS) + " |")
        lines.append("|" + "|".join("---" if c == "model" else "---:" for c in COLUMNS) + "|")
        lines += ["| " + " | ".join(report_row(report)) + " |" for report in result.reports]
        lines.append("")
    lines += [LEGEND, "", PA_NOTE, "", END_MARK]
    return "\n".join(lines) + "\n"


def write_markdown(path: Path, generated: str) -> None:
    """Replace the generated part of `path` (between the marks) or write the file when it has none."""
    if path.is_file():
        text = path.read_text()
        begin, end = text.find(BEGIN_MARK), text.find(END_MARK)
        if 0 <= begin < end:
            path.write_text(text[:begin] + generated.rstrip("\n") + text[end + len(END_MARK) :])
            return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("# Detection benchmarks\n\n" + generated)


def _announce(console: Console, dataset: str, model: str) -> None:
    console.print(f"[dim]{dataset}: fitting and scoring {model}[/dim]")


def evaluate(
    dataset: Annotated[
        str, typer.Option(help=f"One of: all, {', '.join(DATASETS)}.", show_default=True)
    ] = "all",
    models: Annotated[
        list[str],
        typer.Option(
            "--models",
            "--model",
            "-m",
            help="Detectors to evaluate (repeat or comma-separate); the PCA baseline is always added.",
        ),
    ] = list(DETECTORS),  # noqa: B006 -- never mutated; a real list so --help shows the catalog
    epochs: Annotated[
        int | None,
        typer.Option(min=1, help="Training epochs of the deep models (their default when omitted)."),
    ] = None,
    threshold: Annotated[
        str, typer.Option(help=f"Threshold method: {', '.join(THRESHOLD_METHODS)}.", show_default=True)
    ] = "pot",
    output: Annotated[
        Path | None, typer.Option(help="Also write the tables as markdown (between marks, keeping the rest).")
    ] = None,
) -> None:
    console = Console()
    if not console.is_terminal:  # a log file: no terminal width to fit, keep the table's columns readable
        console = Console(width=180)
    settings = Settings()
    if dataset != "all" and dataset not in DATASETS:
        raise typer.BadParameter(
            f"unknown data set {dataset!r}; expected all, {', '.join(DATASETS)}", param_hint="--dataset"
        )
    if threshold not in THRESHOLD_METHODS:
        raise typer.BadParameter(f"expected one of {', '.join(THRESHOLD_METHODS)}", param_hint="--threshold")
    try:
        names = with_baseline(models)
    except InvalidInputError as error:
        raise typer.BadParameter(str(error), param_hint="--models") from None

    results = []
    for name in DATASETS if dataset == "all" else (dataset,):
        try:
            split = load_split(name, settings.shared_datasets_dir, settings.seed)
        except DatasetMissingError as error:
            if dataset != "all":
                console.print(f"[red]{error}[/red]")
                raise typer.Exit(2) from None
            console.print(f"[yellow]skipping {name}: {error}[/yellow]")
            continue
        announce = functools.partial(_announce, console, name)
        result = evaluate_split(split, names, threshold, settings.seed, epochs, on_model=announce)
        console.print(rich_table(result))
        results.append(result)

    if output is not None and results:
        options = ["--dataset", dataset, "--models", ",".join(names), "--threshold", threshold]
        if epochs is not None:
            options += ["--epochs", str(epochs)]
        command = shlex.join(["plantwatch", "evaluate", *options, "--output", str(output)])
        write_markdown(output, markdown_tables(results, command, threshold, settings, epochs))
        console.print(f"tables written to {output}")
