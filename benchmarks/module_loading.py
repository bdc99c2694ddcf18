"""How fast the configured CSV loader reads the real data sets and how long `modules add` inference takes.

Prints rows per second for each file (best of --repeat runs). Real files come from
PLANTWATCH_SHARED_DATASETS_DIR (default ../shared/datasets) and are skipped when absent; the valve file is
generated (tests/own_plant.py layout: ';', decimal commas, day-first dates, words as codes).
"""

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.own_plant import valve_readings, write_valve_csv

from plantwatch.adapters.datasets import load_dataset
from plantwatch.adapters.modules.inference import infer_module
from plantwatch.domain.modules import Module


def best_of(repeat: int, run: Callable[[], int]) -> tuple[int, float]:
    best = float("inf")
    rows = 0
    for _ in range(repeat):
        started = time.perf_counter()
        rows = run()
        best = min(best, time.perf_counter() - started)
    return rows, best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--valve-rows", type=int, default=100_000)
    args = parser.parse_args()
    shared = Path(os.environ.get("PLANTWATCH_SHARED_DATASETS_DIR", "../shared/datasets"))
    real = [
        ("energy", shared / "Steel_industry_data.csv"),
        ("cyber", shared / "batadal" / "BATADAL_dataset03.csv"),
        ("process", shared / "tep" / "d00.dat"),
        ("process", shared / "tep" / "d01_te.dat"),
    ]
    print(f"{'file':<40} {'rows':>8} {'seconds':>8} {'rows/s':>10}")
    for module, path in real:
        if not path.is_file():
            print(f"{path.name:<40} skipped: not found")
            continue
        rows, seconds = best_of(args.repeat, lambda m=module, p=path: len(load_dataset(Module(m), p)))
        print(f"{path.name:<40} {rows:>8} {seconds:>8.3f} {rows / seconds:>10.0f}")
    with tempfile.TemporaryDirectory() as folder:
        valve = write_valve_csv(Path(folder) / "valve.csv", valve_readings(rows=args.valve_rows))
        rows, seconds = best_of(
            args.repeat, lambda: infer_module("valve", valve, ignore_columns=["Operator"]).rows
        )
        print(f"{'infer + read back ' + valve.name:<40} {rows:>8} {seconds:>8.3f} {rows / seconds:>10.0f}")


if __name__ == "__main__":
    main()
