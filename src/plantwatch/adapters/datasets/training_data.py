"""Which data a module trains on when the user names no file: a real data set found on disk, else a sample."""

from pathlib import Path

from plantwatch.adapters.datasets.loading import load_dataset
from plantwatch.adapters.datasets.samples import SAMPLE_FILES, generate_sample, load_sample, sample_path
from plantwatch.domain.errors import DataFileError, NotFoundError
from plantwatch.domain.frames import SensorFrame
from plantwatch.domain.modules import Module


def find_real_dataset(module: Module, datasets_dir: Path) -> Path | None:
    """The first CSV under `datasets_dir` (samples excluded, names in order) that loads as `module` data."""
    if not datasets_dir.is_dir():
        return None
    candidates = sorted(
        p for p in datasets_dir.rglob("*.csv") if "samples" not in p.relative_to(datasets_dir).parts
    )
    for path in candidates:
        try:
            load_dataset(module, path)
        except DataFileError:
            continue
        return path
    return None


def load_training_frame(module: Module, data: Path | None, datasets_dir: Path, seed: int) -> SensorFrame:
    """The given file, else a real data set in `datasets_dir`, else the module's generated sample (the shipped
    one, or generated with `seed` when it is missing). A module without a sample needs a file."""
    if data is not None:
        return load_dataset(module, data)
    real = find_real_dataset(module, datasets_dir)
    if real is not None:
        return load_dataset(module, real)
    if module not in SAMPLE_FILES:
        raise NotFoundError(
            f"no data for the {module.value} module: no CSV under {datasets_dir} loads as its configuration "
            "says, and it has no generated sample; give a file with --data"
        )
    sample = sample_path(module, datasets_dir)
    if not sample.exists():
        sample = sample_path(module)
    if sample.exists():
        return load_sample(module, sample)
    return generate_sample(module, seed=seed)
