"""Tennessee Eastman Process benchmark files (Braatz group release of Downs & Vogel's simulated plant).

52 variables per 3-minute sample: XMEAS(1)-XMEAS(41) measured, XMV(1)-XMV(11) manipulated. Whitespace-
separated floats, no header, no timestamps. d00.dat (normal training run) is stored TRANSPOSED (52 rows of
500 samples); every other file has one sample per row. In dNN_te.dat fault N starts after sample 160 (8 h); in
dNN.dat after sample 20 (1 h).
"""

from pathlib import Path

import numpy as np
import pandas as pd

from plantwatch.domain.errors import InvalidInputError
from plantwatch.domain.frames import SensorFrame
from plantwatch.domain.modules import Module

N_MEASURED = 41
N_MANIPULATED = 11
TEP_FEATURES = [
    *(f"xmeas_{n}" for n in range(1, N_MEASURED + 1)),
    *(f"xmv_{n}" for n in range(1, N_MANIPULATED + 1)),
]
SAMPLE_INTERVAL = pd.Timedelta(minutes=3)
# 1-based index of the first faulty sample in the test files (dNN_te.dat) and training files (dNN.dat)
TEST_FAULT_START = 161
TRAIN_FAULT_START = 21
FAULTS = tuple(range(1, 22))
# Known in the literature to leave no trace a data-driven monitor can see (Chiang, Russell & Braatz 2001).
UNOBSERVABLE_FAULTS = (3, 9, 15)
# The process variables a fault acts on directly, where it acts on one loop of measured/manipulated variables
# (Downs & Vogel 1993, Table 8): the disturbed stream's flow or the cooling loop whose inlet is disturbed, as
# its measurement and its valve. A root cause is right when it names either. Faults on compositions,
# kinetics, unmeasured temperatures or of unknown type are left out.
FAULT_VARIABLES: dict[int, tuple[str, ...]] = {
    4: ("xmv_10", "xmeas_21"),  # reactor cooling water inlet temperature, step
    5: ("xmv_11", "xmeas_22"),  # condenser cooling water inlet temperature, step
    6: ("xmeas_1", "xmv_3"),  # A feed loss (stream 1)
    7: ("xmeas_4", "xmv_4"),  # C header pressure loss, reduced availability (stream 4)
    11: ("xmv_10", "xmeas_21"),  # reactor cooling water inlet temperature, random variation
    12: ("xmv_11", "xmeas_22"),  # condenser cooling water inlet temperature, random variation
    14: ("xmv_10", "xmeas_21"),  # reactor cooling water valve sticking
    15: ("xmv_11", "xmeas_22"),  # condenser cooling water valve sticking
    21: ("xmv_4", "xmeas_4"),  # the valve of stream 4 fixed at its steady-state position
}


def read_tep_file(path: Path) -> np.ndarray:
    """(samples, 52) float64 from one TEP .dat file, transposing d00.dat's variables-as-rows layout."""
    try:
        values = np.loadtxt(path, dtype=np.float64, ndmin=2)
    except ValueError as error:
        raise InvalidInputError(
            f"{path}: not a whitespace-separated TEP file: {error}", field="path"
        ) from None
    n_features = len(TEP_FEATURES)
    if values.shape[1] != n_features and values.shape[0] == n_features:
        values = values.T
    if values.shape[1] != n_features:
        raise InvalidInputError(
            f"{path}: {values.shape[1]} columns, a TEP file has {n_features} variables", field="path"
        )
    return values


def tep_frame(path: Path, fault_start: int | None = None, start: str = "2000-01-01") -> SensorFrame:
    """A TEP file as a SensorFrame at 3-minute steps. With `fault_start` (1-based), samples from it on are
    labelled 1 and earlier ones 0; without it every sample is labelled normal (0)."""
    values = read_tep_file(path)
    index = pd.date_range(start, periods=len(values), freq=SAMPLE_INTERVAL, name="timestamp")
    labels = np.zeros(len(values))
    if fault_start is not None:
        labels[fault_start - 1 :] = 1.0
    return SensorFrame(
        module=Module.MACHINE,
        source=path.name,
        values=pd.DataFrame(values, index=index, columns=TEP_FEATURES),
        labels=pd.Series(labels, index=index, name="label"),
    )
