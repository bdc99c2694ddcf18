"""BATADAL (battle of the attack detection algorithms): hourly SCADA readings of a water distribution network.

Three files: dataset03 (all normal), dataset04 (attacks partly labelled, -999 = unknown) and the test period
(no label column). dataset04's header has a space after each comma.
"""

from pathlib import Path

from plantwatch.adapters.datasets.configured import layout_frame
from plantwatch.adapters.datasets.csv_table import CsvTable, read_csv_table, source_label
from plantwatch.adapters.modules.catalog import builtin_config
from plantwatch.domain.frames import SensorFrame
from plantwatch.domain.modules import Module

BATADAL_TAGS = [
    *(f"L_T{n}" for n in range(1, 8)),
    *(f"{kind}_PU{n}" for n in range(1, 12) for kind in ("F", "S")),
    "F_V2",
    "S_V2",
    *("P_J280", "P_J269", "P_J300", "P_J256", "P_J289", "P_J415", "P_J302", "P_J306", "P_J307", "P_J317"),
    *("P_J14", "P_J422"),
]
TIMESTAMP_COLUMN = "DATETIME"
LABEL_COLUMN = "ATT_FLAG"


def load_batadal_csv(data: bytes | str | Path, source_name: str | None = None) -> SensorFrame:
    """Load a BATADAL CSV. labels: ATT_FLAG 1 -> 1.0, 0 -> 0.0, -999 -> NaN; None without ATT_FLAG."""
    table = read_csv_table(data, source_name, header_markers=[TIMESTAMP_COLUMN])
    return batadal_frame(table, source_label(data, source_name))


def batadal_frame(table: CsvTable, source: str) -> SensorFrame:
    """The readings as the built-in cyber configuration's batadal layout reads them."""
    layout = next(layout for layout in builtin_config("cyber").layouts if layout.name == "batadal")
    return layout_frame(Module.CYBER, layout, table, source)
