"""The generated sample files shipped in datasets/samples: where they are, how they are written and read back.

Each sample is a CSV in its source's real layout plus a `<name>.root_causes.csv` sidecar (timestamp, feature)
naming the feature each injected anomaly was put on, since the real layouts have no column for it.
"""

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from plantwatch.adapters.datasets.csv_table import read_csv_table
from plantwatch.adapters.datasets.energy import write_energy_csv
from plantwatch.adapters.datasets.loading import load_dataset
from plantwatch.adapters.datasets.machine import write_machine_csv
from plantwatch.adapters.datasets.swat import write_swat_csv
from plantwatch.adapters.datasets.synthetic_energy import generate_energy
from plantwatch.adapters.datasets.synthetic_machine import generate_machine, generated_fault_classes
from plantwatch.adapters.datasets.synthetic_swat import generate_swat
from plantwatch.domain.errors import DataFileError
from plantwatch.domain.frames import SensorFrame
from plantwatch.domain.modules import Module

SAMPLE_FILES = {
    Module.ENERGY: "energy_sample.csv",
    Module.MACHINE: "machine_sample.csv",
    Module.CYBER: "swat_sample.csv",
}
GENERATORS: dict[Module, Callable[..., SensorFrame]] = {
    Module.ENERGY: generate_energy,
    Module.MACHINE: generate_machine,
    Module.CYBER: generate_swat,
}
DEFAULT_DATASETS_DIR = Path("datasets")
_SIDECAR_SUFFIX = ".root_causes.csv"
_SIDECAR_COLUMNS = ("timestamp", "feature")
_SIDECAR_DATE_FORMAT = "%Y-%m-%d %H:%M:%S"
# Where the samples sit when the package runs from a source checkout (src/plantwatch/adapters/datasets).
_CHECKOUT_ROOT = Path(__file__).resolve().parents[4]


def samples_dir(datasets_dir: Path | None = None) -> Path:
    """datasets_dir/samples (./datasets by default), else the checkout's datasets/samples."""
    configured = (datasets_dir or DEFAULT_DATASETS_DIR) / "samples"
    if configured.is_dir() or datasets_dir is not None:
        return configured
    return _CHECKOUT_ROOT / "datasets" / "samples"


def sample_path(module: Module, datasets_dir: Path | None = None) -> Path:
    return samples_dir(datasets_dir) / SAMPLE_FILES[module]


def root_causes_path(sample: Path) -> Path:
    return sample.with_name(sample.name.removesuffix(".csv") + _SIDECAR_SUFFIX)


def generate_sample(module: Module, seed: int = 7) -> SensorFrame:
    """The sample of `module` at its shipped size."""
    return GENERATORS[module](seed=seed)


def write_sample(frame: SensorFrame, path: Path) -> None:
    """Write a generated frame in its module's raw layout, and its root causes beside it."""
    if frame.module is Module.ENERGY:
        write_energy_csv(frame, path)
    elif frame.module is Module.MACHINE:
        write_machine_csv(frame, path, classes=generated_fault_classes(frame))
    else:
        write_swat_csv(frame, path)
    write_root_causes(frame, root_causes_path(path))


def write_samples(out_dir: Path, seed: int = 7) -> dict[Module, Path]:
    """Regenerate every shipped sample into out_dir."""
    written = {}
    for module, name in SAMPLE_FILES.items():
        path = out_dir / name
        write_sample(generate_sample(module, seed), path)
        written[module] = path
    return written


def load_sample(module: Module, path: Path | None = None) -> SensorFrame:
    """A sample file loaded through the real loader, with root_causes (and, where the layout has no label
    column, labels) from its sidecar when there is one."""
    path = path or sample_path(module)
    frame = load_dataset(module, path)
    sidecar = root_causes_path(path)
    if not sidecar.exists():
        return frame
    causes = read_root_causes(sidecar).reindex(frame.values.index).fillna("").rename("root_cause")
    labels = frame.labels
    if labels is None:
        # The energy layout has no label column: the sidecar is the sample's ground truth.
        labels = (causes != "").astype(np.float64).rename("label")
    return SensorFrame(frame.module, frame.source, frame.values, labels, causes)


def write_root_causes(frame: SensorFrame, path: Path) -> None:
    causes = frame.root_causes if frame.root_causes is not None else pd.Series(dtype=object)
    flagged = causes[causes != ""]
    table = pd.DataFrame(
        {
            _SIDECAR_COLUMNS[0]: pd.DatetimeIndex(flagged.index).strftime(_SIDECAR_DATE_FORMAT),
            _SIDECAR_COLUMNS[1]: flagged.to_numpy(),
        }
    )
    table.to_csv(path, index=False, lineterminator="\n")


def read_root_causes(path: Path) -> pd.Series:
    """The sidecar as a Series of feature names indexed by timestamp."""
    if path.read_text(encoding="utf-8").strip() == ",".join(_SIDECAR_COLUMNS):
        return pd.Series([], index=pd.DatetimeIndex([], name="timestamp"), dtype=object, name="root_cause")
    table = read_csv_table(path)
    table.require_columns(_SIDECAR_COLUMNS)
    index = table.timestamps("timestamp", [_SIDECAR_DATE_FORMAT])
    features = table.text("feature")
    if index.has_duplicates:
        position = int(np.argmax(index.duplicated()))
        raise DataFileError(table.name, "timestamp listed twice", table.line_of(position), "timestamp")
    return pd.Series(features.to_numpy(), index=index, name="root_cause")
