"""One entry point per use: load a data-set file for a module, or parse a CSV upload with the same code.

A module's layouts come from its configuration (adapters/modules); cyber's SWaT and BATADAL layouts are
told apart by the header, as every module with several layouts is.
"""

from pathlib import Path

from plantwatch.adapters.datasets.configured import load_module_csv
from plantwatch.adapters.modules.catalog import module_config
from plantwatch.adapters.modules.config import ModuleConfig
from plantwatch.domain.frames import SensorFrame
from plantwatch.domain.modules import Module


def load_dataset(module: Module, path: Path, config: ModuleConfig | None = None) -> SensorFrame:
    """Load a data-set file of `module` in one of its configured layouts."""
    return load_readings_csv(module, path, config=config)


def load_readings_csv(
    module: Module,
    data: bytes | str | Path,
    source_name: str | None = None,
    config: ModuleConfig | None = None,
) -> SensorFrame:
    """Parse readings of `module` from a file (Path), uploaded bytes or CSV text, in the module's layout.

    source_name names the frame's source and, for bytes and text, the upload in error messages. `config`
    defaults to the module's active configuration.
    """
    return load_module_csv(config or module_config(module), data, source_name)
