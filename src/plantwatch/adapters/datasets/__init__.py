"""Data-set loaders (real public layouts) and generated samples, all returning SensorFrame."""

from plantwatch.adapters.datasets.batadal import BATADAL_TAGS, load_batadal_csv
from plantwatch.adapters.datasets.energy import ENERGY_FEATURES, load_energy_csv, write_energy_csv
from plantwatch.adapters.datasets.injection import AnomalyEvent, EventKind, EventSpec
from plantwatch.adapters.datasets.loading import load_dataset, load_readings_csv
from plantwatch.adapters.datasets.machine import (
    FAULT_CLASS_NAMES,
    MACHINE_FEATURES,
    fault_classes,
    load_machine_csv,
    write_machine_csv,
)
from plantwatch.adapters.datasets.samples import (
    SAMPLE_FILES,
    generate_sample,
    load_sample,
    read_root_causes,
    root_causes_path,
    sample_path,
    samples_dir,
    write_sample,
    write_samples,
)
from plantwatch.adapters.datasets.swat import SWAT_TAGS, load_swat_csv, write_swat_csv
from plantwatch.adapters.datasets.synthetic_energy import generate_energy
from plantwatch.adapters.datasets.synthetic_machine import generate_machine, generated_fault_classes
from plantwatch.adapters.datasets.synthetic_swat import generate_swat

__all__ = [
    "BATADAL_TAGS",
    "ENERGY_FEATURES",
    "FAULT_CLASS_NAMES",
    "MACHINE_FEATURES",
    "SAMPLE_FILES",
    "SWAT_TAGS",
    "AnomalyEvent",
    "EventKind",
    "EventSpec",
    "fault_classes",
    "generate_energy",
    "generate_machine",
    "generate_sample",
    "generate_swat",
    "generated_fault_classes",
    "load_batadal_csv",
    "load_dataset",
    "load_energy_csv",
    "load_machine_csv",
    "load_readings_csv",
    "load_sample",
    "load_swat_csv",
    "read_root_causes",
    "root_causes_path",
    "sample_path",
    "samples_dir",
    "write_energy_csv",
    "write_machine_csv",
    "write_sample",
    "write_samples",
    "write_swat_csv",
]
