"""The labelled train/test splits `plantwatch evaluate` measures detectors on.

Data sets:
- batadal: fit on BATADAL dataset03 (2014, normal operation), test on dataset04 (2016, attacks). dataset04
  labels only attacks (ATT_FLAG 1); every other hour is -999 ("unknown"). Keeping labelled rows only would
  leave no normal reading to judge false alarms on, so -999 is read as normal here. The file is partly
  labelled, so an alarm on an unlabelled attack counts as false: precision and false alarms per day are
  pessimistic.
- batadal-windows: the same files, fully labelled by the organisers' 7 published attack windows
  (batadal/dataset04_attack_windows.csv, inclusive hours): every hour inside a window is an attack, every
  other hour normal. Also judged in two chronological parts: attacks 1-3 (before TUNING_CUT, where alarm
  rules and thresholds may be compared) and attacks 4-7 (after it, held back: never used to choose anything).
- tep: Tennessee Eastman, the classic protocol: fit on d00.dat (500 normal samples, stored transposed),
  threshold on normal data only, false alarm rate on d00_te.dat, detection rate per fault on samples 161-960
  of dNN_te.dat (the held-back runs); dNN.dat (fault from sample 21) are the tuning runs.
- generated-energy / generated-machine / generated-cyber: the generated samples (seeded), fitted on the clean
  prefix before the first injected anomaly and tested on the rest, whose injected root-cause features are
  known.
"""

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from plantwatch.adapters.datasets.loading import load_dataset
from plantwatch.adapters.datasets.synthetic_energy import generate_energy
from plantwatch.adapters.datasets.synthetic_machine import generate_machine
from plantwatch.adapters.datasets.synthetic_swat import generate_swat
from plantwatch.adapters.datasets.tep import (
    FAULT_VARIABLES,
    FAULTS,
    TEST_FAULT_START,
    TRAIN_FAULT_START,
    tep_frame,
)
from plantwatch.domain.frames import SensorFrame
from plantwatch.domain.modules import Module

BATADAL = "batadal"
BATADAL_TRAIN_FILE = "BATADAL_dataset03.csv"
BATADAL_TEST_FILE = "BATADAL_dataset04.csv"
BATADAL_WINDOWS = "batadal-windows"
BATADAL_WINDOWS_FILE = "dataset04_attack_windows.csv"
# dataset04 is judged in two parts: attacks 1-3 before this hour (tuning), attacks 4-7 after it (held back)
TUNING_CUT = pd.Timestamp("2016-10-20 00:00")
TEP = "tep"
# Generated sizes: enough held-out normal rows after the clean prefix's 80 % fit part for a POT threshold.
GENERATED: dict[str, tuple[Module, Callable[..., SensorFrame], int]] = {
    "generated-energy": (Module.ENERGY, generate_energy, 8064),
    "generated-machine": (Module.MACHINE, generate_machine, 6000),
    "generated-cyber": (Module.CYBER, generate_swat, 7200),
}
DATASETS = (BATADAL, BATADAL_WINDOWS, TEP, *GENERATED)


@dataclass(frozen=True)
class EvaluationSplit:
    """train: what detectors are fitted and thresholded on (normal rows only). test: the main labelled test.
    runs: further labelled frames judged by the same fitted detector (per-fault runs, chronological parts);
    held_back: the names of the runs nothing may be chosen on."""

    name: str
    train: SensorFrame
    test: SensorFrame
    note: str
    runs: dict[str, SensorFrame] = field(default_factory=dict)
    held_back: tuple[str, ...] = ()


class DatasetMissingError(Exception):
    """A real data set's files are not where the settings say."""


def batadal_split(datasets_dir: Path) -> EvaluationSplit:
    folder = datasets_dir / "batadal"
    train_path, test_path = folder / BATADAL_TRAIN_FILE, folder / BATADAL_TEST_FILE
    missing = [str(path) for path in (train_path, test_path) if not path.is_file()]
    if missing:
        raise DatasetMissingError(
            f"BATADAL files not found: {', '.join(missing)}. Point PLANTWATCH_SHARED_DATASETS_DIR at the "
            "folder holding batadal/ (see ../shared/datasets/README.md)."
        )
    train = load_dataset(Module.CYBER, train_path)
    test = load_dataset(Module.CYBER, test_path)
    assert test.labels is not None
    unknown = int(test.labels.isna().sum())
    test = dataclasses.replace(test, labels=test.labels.fillna(0.0))
    note = (
        f"train {BATADAL_TRAIN_FILE} (normal), test {BATADAL_TEST_FILE}: {unknown} of {len(test)} hours are "
        "-999 (unknown) and read as normal, so alarms on unlabelled attacks count as false"
    )
    return EvaluationSplit(BATADAL, train, test, note)


def batadal_windows_split(datasets_dir: Path) -> EvaluationSplit:
    split = batadal_split(datasets_dir)
    windows_path = datasets_dir / "batadal" / BATADAL_WINDOWS_FILE
    if not windows_path.is_file():
        raise DatasetMissingError(f"BATADAL attack windows not found: {windows_path}")
    windows = pd.read_csv(windows_path, parse_dates=["start", "end"])
    index = split.test.values.index
    labels = np.zeros(len(index))
    for start, end in zip(windows["start"], windows["end"], strict=True):
        labels[(index >= start) & (index <= end)] = 1.0
    test = dataclasses.replace(split.test, labels=pd.Series(labels, index=index, name="label"))
    early = np.asarray(index < TUNING_CUT)
    before = int(sum(windows["end"] < TUNING_CUT))
    runs = {
        f"attacks 1-{before} (tuning)": test.slice_mask(early),
        f"attacks {before + 1}-{len(windows)} (held back)": test.slice_mask(~early),
    }
    note = (
        f"train {BATADAL_TRAIN_FILE} (normal), test {BATADAL_TEST_FILE} labelled by the {len(windows)} "
        f"published attack windows ({int(labels.sum())} attack hours)"
    )
    return EvaluationSplit(BATADAL_WINDOWS, split.train, test, note, runs, held_back=(list(runs)[1],))


def tep_split(datasets_dir: Path) -> EvaluationSplit:
    folder = datasets_dir / "tep"
    needed = [folder / "d00.dat", folder / "d00_te.dat"]
    needed += [folder / f"d{n:02d}{part}.dat" for n in FAULTS for part in ("", "_te")]
    missing = [str(path) for path in needed if not path.is_file()]
    if missing:
        raise DatasetMissingError(
            f"TEP files not found: {', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}. Point "
            "PLANTWATCH_SHARED_DATASETS_DIR at the folder holding tep/."
        )
    train = tep_frame(folder / "d00.dat")
    normal_test = tep_frame(folder / "d00_te.dat")
    runs: dict[str, SensorFrame] = {}
    for n in FAULTS:
        for part, start, kind in (("_te", TEST_FAULT_START, "test"), ("", TRAIN_FAULT_START, "tuning")):
            frame = tep_frame(folder / f"d{n:02d}{part}.dat", fault_start=start)
            if n in FAULT_VARIABLES:
                assert frame.labels is not None
                cause = "|".join(FAULT_VARIABLES[n])
                causes = np.where(frame.labels.to_numpy() == 1.0, cause, "")
                frame = dataclasses.replace(frame, root_causes=pd.Series(causes, index=frame.values.index))
            runs[f"{kind} fault {n}"] = frame
    note = (
        "fit d00.dat (500 normal samples), FAR on d00_te.dat; detection rate on samples 161-960 of each "
        "dNN_te.dat (held back) and 21-480 of each dNN.dat (tuning)"
    )
    held_back = tuple(name for name in runs if name.startswith("test"))
    return EvaluationSplit(TEP, train, normal_test, note, runs, held_back)


def generated_split(name: str, seed: int) -> EvaluationSplit:
    _, generate, n_rows = GENERATED[name]
    frame = generate(n_rows=n_rows, seed=seed)
    assert frame.labels is not None
    anomalous = np.flatnonzero(frame.labels.to_numpy() == 1.0)
    clean = int(anomalous[0]) if anomalous.size else len(frame)
    head = np.arange(len(frame)) < clean
    train, test = frame.slice_mask(head), frame.slice_mask(~head)
    note = f"generated, seed {seed}: {len(train)} clean readings to fit, {len(test)} with injected faults"
    return EvaluationSplit(name, train, test, note)


def load_split(name: str, shared_datasets_dir: Path, seed: int) -> EvaluationSplit:
    if name == BATADAL:
        return batadal_split(shared_datasets_dir)
    if name == BATADAL_WINDOWS:
        return batadal_windows_split(shared_datasets_dir)
    if name == TEP:
        return tep_split(shared_datasets_dir)
    return generated_split(name, seed)
