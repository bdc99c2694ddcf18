"""`plantwatch evaluate`: detection quality of each detector beside the PCA baseline, per data set (the data
sets and their splits are in adapters/datasets/benchmark_splits.py), or on any labelled CSV pair given with
--train/--test (entrypoints/cli/evaluate_files.py)."""

import functools
import math
import os
import platform
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import numpy as np
import pandas as pd
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
from plantwatch.adapters.datasets.labelled_csv import LabelledCsv
from plantwatch.adapters.datasets.loading import load_dataset
from plantwatch.adapters.datasets.tep import UNOBSERVABLE_FAULTS
from plantwatch.adapters.detectors import DETECTORS, TorchDetector, build_detector, detector_class
from plantwatch.domain.alarms import AlarmRule, parse_alarm_rule
from plantwatch.domain.errors import DataFileError, InvalidInputError
from plantwatch.domain.metrics import DetectionReport
from plantwatch.domain.modules import UnknownModuleError, parse_module
from plantwatch.domain.thresholds import THRESHOLD_METHODS, parse_threshold
from plantwatch.entrypoints.cli.evaluate_files import evaluate_files, load_pair, write_json
from plantwatch.services.evaluation import calibrate_detector, evaluate_runs, judge
from plantwatch.settings import Settings

BASELINE = "pca"
# Marks the generated part of a markdown file, so hand-written commentary around it survives a re-run.
BEGIN_MARK = "<!-- plantwatch evaluate: begin -->"
END_MARK = "<!-- plantwatch evaluate: end -->"


# Published PCA detection rates on TEP (99 % limits, samples 161-960 of dNN_te.dat): 1 - the missed
# detection rates of Chiang, Russell & Braatz, "Fault Detection and Diagnosis in Industrial Systems"
# (Springer 2001), Table 8.4 (also Russell, Chiang & Braatz, Chemometr. Intell. Lab. 51 (2000) 81-93).
# Transcribed from the literature, not re-run here. fault: (T², Q)
PUBLISHED_PCA_TEP: dict[int, tuple[float, float]] = {
    1: (0.992, 0.997),
    2: (0.980, 0.986),
    3: (0.002, 0.009),
    4: (0.044, 0.962),
    5: (0.225, 0.254),
    6: (0.989, 1.000),
    7: (0.915, 1.000),
    8: (0.966, 0.976),
    9: (0.006, 0.019),
    10: (0.334, 0.341),
    11: (0.206, 0.644),
    12: (0.971, 0.975),
    13: (0.940, 0.955),
    14: (0.842, 1.000),
    15: (0.012, 0.027),
    16: (0.166, 0.245),
    17: (0.741, 0.892),
    18: (0.887, 0.899),
    19: (0.004, 0.127),
    20: (0.299, 0.450),
    21: (0.264, 0.430),
}


@dataclass(frozen=True)
class DatasetResult:
    split: EvaluationSplit
    reports: list[DetectionReport]
    # model -> run name -> report, for splits with runs (TEP faults, BATADAL parts)
    run_reports: dict[str, dict[str, DetectionReport]] = field(default_factory=dict)


def evaluate_split(
    split: EvaluationSplit,
    models: Sequence[str],
    threshold: str,
    seed: int,
    epochs: int | None = None,
    on_model: Callable[[str], None] | None = None,
    alarm_rule: AlarmRule | None = None,
) -> DatasetResult:
    reports = []
    run_reports: dict[str, dict[str, DetectionReport]] = {}
    for name in models:
        if on_model is not None:
            on_model(name)
        hyper: dict[str, object] = {"seed": seed}
        if epochs is not None and issubclass(detector_class(name), TorchDetector):
            hyper["epochs"] = epochs
        detector = build_detector(name, **hyper)
        thresholder = parse_threshold(threshold, readings_per_day(split))
        calibrated = calibrate_detector(split.train, detector, thresholder, alarm_rule=alarm_rule)
        reports.append(judge(calibrated, split.test))
        if split.runs:
            run_reports[name] = evaluate_runs(calibrated, split.runs)
    return DatasetResult(split, reports, run_reports)


def readings_per_day(split: EvaluationSplit) -> float:
    return readings_per_day_of(pd.DatetimeIndex(split.train.values.index))


def readings_per_day_of(index: pd.DatetimeIndex) -> float:
    step = pd.Series(index).diff().median()
    return pd.Timedelta(days=1).total_seconds() / pd.Timedelta(step).total_seconds()


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
    "FAR",
    "event recall",
    "S",
    "TTD",
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
    "P/R/F1: point-wise precision, recall, F1 (alarm as the alarm rule decides). FAR: false alarm rate, "
    "FP/(FP+TN). event recall: events with an alarm (found/all). S: BATADAL's score ½·S_TTD + "
    "½·(TPR+TNR)/2. TTD: mean readings from an event's start to its first alarm. "
    "FA/day: alarm runs outside every event per day. AUC-PR, ROC-AUC: threshold-free. "
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
        _number(report.far),
        f"{_number(report.event_recall)} ({report.detected_events}/{report.events})",
        _number(report.s_score),
        _number(report.mean_time_to_detection, 1),
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
        f"{first.threshold_method} on normal training scores, alarm rule `{first.alarm_rule}`. "
        f"{result.split.note}."
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
    alarm_rule: str = "none",
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
        f"`{threshold_method}` calibrated on normal training scores only (held out, or cross-fitted when "
        f"the training run is short); alarm rule `{alarm_rule}`; no point adjustment except in the PA-F1 "
        "column.",
        "",
    ]
    for result in results:
        lines += [f"### {result.split.name}", "", summary_line(result), ""]
        lines.append("| " + " | ".join(COLUMNS) + " |")
        lines.append("|" + "|".join("---" if c == "model" else "---:" for c in COLUMNS) + "|")
        lines += ["| " + " | ".join(report_row(report)) + " |" for report in result.reports]
        lines.append("")
        lines += run_tables(result)
    lines += [LEGEND, "", PA_NOTE, "", END_MARK]
    return "\n".join(lines) + "\n"


def run_tables(result: DatasetResult) -> list[str]:
    """Markdown for the runs of a split: TEP per fault beside the published PCA rates, else per run."""
    if not result.run_reports:
        return []
    models = list(result.run_reports)
    if result.split.name == "tep":
        return tep_table(result, models)
    lines = [
        "| model | run | P | R | FAR | events | S | TTD |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for model in models:
        for run, report in result.run_reports[model].items():
            lines.append(
                f"| {model} | {run} | {_number(report.precision)} | {_number(report.recall)} | "
                f"{_number(report.far)} | {report.detected_events}/{report.events} | "
                f"{_number(report.s_score)} | {_number(report.mean_time_to_detection, 1)} |"
            )
    return [*lines, ""]


def tep_table(result: DatasetResult, models: list[str]) -> list[str]:
    """Detection rate per fault on the held-back dNN_te.dat runs, the published PCA T² and Q beside them;
    then means over the 18 observable faults, the tuning runs' mean, FAR on d00_te.dat and root cause."""
    header = ["fault", "published PCA T²", "published PCA Q", *models]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    for fault, (t2, q) in PUBLISHED_PCA_TEP.items():
        rates = [result.run_reports[m][f"test fault {fault}"].recall for m in models]
        lines.append(f"| {fault} | {t2:.3f} | {q:.3f} | " + " | ".join(_number(r) for r in rates) + " |")

    def mean_over(prefix: str, model: str, attribute: str = "recall") -> float:
        values = [
            getattr(report, attribute)
            for run, report in result.run_reports[model].items()
            if run.startswith(prefix) and int(run.rsplit(" ", 1)[1]) not in UNOBSERVABLE_FAULTS
        ]
        values = [v for v in values if not math.isnan(v)]
        return float(np.mean(values)) if values else math.nan

    observable = [f for f in PUBLISHED_PCA_TEP if f not in UNOBSERVABLE_FAULTS]
    published = [float(np.mean([PUBLISHED_PCA_TEP[f][i] for f in observable])) for i in (0, 1)]
    rows = [
        ("**mean, 18 faults (held back)**", published, lambda m: mean_over("test", m)),
        ("mean, 18 faults, tuning runs dNN.dat", [math.nan] * 2, lambda m: mean_over("tuning", m)),
        ("FAR on d00_te.dat", [math.nan] * 2, lambda m: result.reports[models.index(m)].far),
        (
            "root cause top-1 at first alarm (held back)",
            [math.nan] * 2,
            lambda m: mean_over("test", m, "root_cause_first_top1"),
        ),
        (
            "root cause top-3 at first alarm (held back)",
            [math.nan] * 2,
            lambda m: mean_over("test", m, "root_cause_first_top3"),
        ),
        (
            "root cause top-3 at peak (held back)",
            [math.nan] * 2,
            lambda m: mean_over("test", m, "root_cause_top3"),
        ),
    ]
    for label, reference, value in rows:
        cells = [_number(v) for v in reference] + [_number(value(m)) for m in models]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return [*lines, ""]


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


def module_pair(module_name: str, train: Path, test: Path) -> tuple[LabelledCsv, LabelledCsv]:
    """Two files of a configured module, read with its configuration; the test file needs its labels."""
    module = parse_module(module_name)
    pair = []
    for path in (train, test):
        frame = load_dataset(module, path)
        if frame.labels is None:
            raise InvalidInputError(
                f"{path}: no label column, so detections cannot be scored; the {module.value} configuration "
                "names the label column and its codes",
                field="label",
            )
        pair.append(LabelledCsv(frame=frame, has_time=True, skipped_columns=[]))
    return pair[0], pair[1]


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
        str,
        typer.Option(
            help=f"Threshold method {', '.join(THRESHOLD_METHODS)}, optionally with its value: pot:RISK, "
            "quantile:Q, budget:FALSE_ALARMS_PER_DAY.",
            show_default=True,
        ),
    ] = "pot",
    alarm_rule: Annotated[
        str,
        typer.Option(
            help="How scores become alarms: none, ewma:ALPHA, cusum[:Q], KofN, gap:READINGS, joined by +.",
            show_default=True,
        ),
    ] = "none",
    output: Annotated[
        Path | None, typer.Option(help="Also write the tables as markdown (between marks, keeping the rest).")
    ] = None,
    train: Annotated[
        Path | None,
        typer.Option(help="Labelled training CSV (rows with a non-zero label are not fitted on)."),
    ] = None,
    test: Annotated[
        Path | None, typer.Option(help="Labelled test CSV with the same feature columns.")
    ] = None,
    label_column: Annotated[
        str | None, typer.Option(help="Label column of --train/--test: 0 normal, non-zero anomaly.")
    ] = None,
    time_column: Annotated[
        str | None, typer.Option(help="Time column of --train/--test (a running index without one).")
    ] = None,
    sep: Annotated[str, typer.Option(help="Field separator of --train/--test.")] = ",",
    ignore_columns: Annotated[
        str, typer.Option(help="Comma-separated columns of --train/--test that are not features.")
    ] = "",
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write per-model metrics of --train/--test as JSON.")
    ] = None,
    scores_out: Annotated[
        Path | None,
        typer.Option(help="Write DIR/MODEL.csv (timestamp, score, threshold, alarm) for --train/--test."),
    ] = None,
    module: Annotated[
        str | None,
        typer.Option(
            help="Read --train/--test as this configured module lays its files out (no --label-column)."
        ),
    ] = None,
) -> None:
    console = Console()
    if not console.is_terminal:  # a log file: no terminal width to fit, keep the table's columns readable
        console = Console(width=180)
    settings = Settings()
    try:
        names = with_baseline(models)
    except InvalidInputError as error:
        raise typer.BadParameter(str(error), param_hint="--models") from None
    try:
        rule = parse_alarm_rule(alarm_rule)
        parse_threshold(threshold, readings_per_day=1440.0)
    except InvalidInputError as error:
        hint = "--alarm-rule" if error.field in ("alarm_rule", "k", "min_gap") else "--threshold"
        raise typer.BadParameter(str(error), param_hint=hint) from None

    if train is not None or test is not None:
        _evaluate_files(
            console,
            module,
            train,
            test,
            label_column,
            time_column,
            sep,
            ignore_columns,
            names,
            threshold,
            rule,
            settings.seed,
            json_out,
            scores_out,
        )
        return
    if dataset != "all" and dataset not in DATASETS:
        raise typer.BadParameter(
            f"unknown data set {dataset!r}; expected all, {', '.join(DATASETS)}", param_hint="--dataset"
        )

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
        result = evaluate_split(split, names, threshold, settings.seed, epochs, announce, rule)
        console.print(rich_table(result))
        for line in run_tables(result):
            console.print(line, markup=False, highlight=False)
        results.append(result)

    if output is not None and results:
        options = ["--dataset", dataset, "--models", ",".join(names), "--threshold", threshold]
        if alarm_rule != "none":
            options += ["--alarm-rule", rule.spec]
        if epochs is not None:
            options += ["--epochs", str(epochs)]
        command = shlex.join(["plantwatch", "evaluate", *options, "--output", str(output)])
        write_markdown(output, markdown_tables(results, command, threshold, settings, epochs, rule.spec))
        console.print(f"tables written to {output}")


def _evaluate_files(
    console: Console,
    module: str | None,
    train: Path | None,
    test: Path | None,
    label_column: str | None,
    time_column: str | None,
    sep: str,
    ignore_columns: str,
    names: list[str],
    threshold: str,
    rule: AlarmRule,
    seed: int,
    json_out: Path | None,
    scores_out: Path | None,
) -> None:
    if train is None or test is None:
        raise typer.BadParameter("give both --train and --test", param_hint="--train/--test")
    if label_column is None and module is None:
        raise typer.BadParameter(
            "--train/--test need --label-column (or --module)", param_hint="--label-column"
        )
    ignored = [c.strip() for c in ignore_columns.split(",") if c.strip()]
    try:
        if module is not None:
            train_csv, test_csv = module_pair(module, train, test)
        else:
            assert label_column is not None
            train_csv, test_csv = load_pair(train, test, label_column, time_column, sep, ignored)
        per_day = readings_per_day_of(pd.DatetimeIndex(train_csv.frame.values.index))
        evaluation = evaluate_files(
            train_csv,
            test_csv,
            names,
            lambda: parse_threshold(threshold, per_day),
            rule,
            seed,
            scores_out,
        )
    except UnknownModuleError as error:
        raise typer.BadParameter(str(error), param_hint="--module") from None
    except (DataFileError, InvalidInputError) as error:
        console.print(f"[red]error:[/red] {error}", markup=True, highlight=False)
        raise typer.Exit(2) from None
    if train_csv.skipped_columns:
        console.print(f"[dim]not numeric, left out: {', '.join(train_csv.skipped_columns)}[/dim]")
    table = Table(
        title=f"{train.name} -> {test.name}",
        caption=f"features: {', '.join(train_csv.frame.feature_names)}; threshold {threshold}, "
        f"alarm rule {rule.spec}",
        caption_justify="left",
    )
    for column in COLUMNS:
        table.add_column(column, justify="left" if column == "model" else "right")
    for report in evaluation.reports.values():
        table.add_row(*report_row(report))
    console.print(table)
    if json_out is not None:
        write_json(json_out, evaluation)
        console.print(f"metrics written to {json_out}")
    if scores_out is not None:
        console.print(f"scores written to {scores_out}/")
