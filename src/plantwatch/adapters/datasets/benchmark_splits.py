"""The labelled train/test splits `plantwatch evaluate` measures detectors on.

Data sets:
- batadal: fit on BATADAL dataset03 (2014, normal operation), test on dataset04 (2016, attacks). dataset04
  labels only attacks (ATT_FLAG 1); every other hour is -999 ("unknown"). Keeping labelled rows only would
  leave no normal reading to judge false alarms on, so -999 is read as normal here. The file is partly
  labelled, so an alarm on an unlabelled attack counts as false: precision and false alarms per day are
  pessimistic.
- generated-energy / generated-machine / generated-cyber: the generated samples (seeded), fitted on the clean
  prefix before the first injected anomaly and tested on the rest, whose injected root-cause features are
  known.
"""

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from plantwatch.adapters.datasets.loading import load_dataset
from plantwatch.adapters.datasets.synthetic_energy import generate_energy
from plantwatch.adapters.datasets.synthetic_machine import generate_machine
from plantwatch.adapters.datasets.synthetic_swat import generate_swat
from plantwatch.domain.frames import SensorFrame
from plantwatch.domain.modules import Module

BATADAL = "batadal"
BATADAL_TRAIN_FILE = "BATADAL_dataset03.csv"
BATADAL_TEST_FILE = "BATADAL_dataset04.csv"
# Generated sizes: enough held-out normal rows after the clean prefix's 80 % fit part for a POT threshold.
GENERATED: dict[str, tuple[Module, Callable[..., SensorFrame], int]] = {
    "generated-energy": (Module.ENERGY, generate_energy, 8064),
    "generated-machine": (Module.MACHINE, generate_machine, 6000),
    "generated-cyber": (Module.CYBER, generate_swat, 7200),
}
DATASETS = (BATADAL, *GENERATED)


@dataclass(frozen=True)
class EvaluationSplit:
    name: str
    train: SensorFrame
    test: SensorFrame
    note: str


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
    return generated_split(name, seed)
