"""One entry point per use: load a data-set file for a module, or parse a CSV upload with the same code."""

from collections.abc import Callable
from pathlib import Path

from plantwatch.adapters.datasets import batadal, energy, machine, swat
from plantwatch.adapters.datasets.csv_table import CsvTable, read_csv_table, source_label
from plantwatch.domain.errors import DataFileError
from plantwatch.domain.frames import SensorFrame
from plantwatch.domain.modules import Module

# Marker column of each raw layout, sniffed from the header.
_LAYOUTS: dict[Module, list[tuple[str, Callable[[CsvTable, str], SensorFrame]]]] = {
    Module.ENERGY: [(energy.DATE_COLUMN, energy.energy_frame)],
    Module.MACHINE: [
        (machine.TIMESTAMP_COLUMN, lambda table, source: machine.machine_frame(table, source)[0])
    ],
    Module.CYBER: [
        (batadal.TIMESTAMP_COLUMN, batadal.batadal_frame),
        (swat.TIMESTAMP_COLUMN, swat.swat_frame),
    ],
}


def load_dataset(module: Module, path: Path) -> SensorFrame:
    """Load a data-set file of `module` in its real public layout (cyber: SWaT or BATADAL, sniffed)."""
    return load_readings_csv(module, path)


def load_readings_csv(
    module: Module, data: bytes | str | Path, source_name: str | None = None
) -> SensorFrame:
    """Parse readings of `module` from a file (Path), uploaded bytes or CSV text, in the module's raw layout.

    source_name names the frame's source and, for bytes and text, the upload in error messages.
    """
    layouts = _LAYOUTS[module]
    table = read_csv_table(data, source_name, header_markers=[marker for marker, _ in layouts])
    for marker, build in layouts:
        if table.has_column(marker):
            return build(table, source_label(data, source_name))
    markers = " or ".join(repr(marker) for marker, _ in layouts)
    raise DataFileError(
        table.name,
        f"not a {module.value} readings file: the header has no {markers} column",
        column=layouts[0][0],
    )
