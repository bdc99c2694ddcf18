"""Which detector, alarm rule and threshold to run by default: a sweep judged on TUNING data only.

Prints, per data set, every (model, alarm rule) pair's figures on the runs that may be used for choosing
(TEP dNN.dat fault runs, BATADAL attacks 1-3, the generated sets) and the false alarm rate on normal data.
Held-back runs (TEP dNN_te.dat, BATADAL attacks 4-7) are never printed here: `plantwatch evaluate` reports
them for the choice made from this output.

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/detection_sweep.py [--models pca,robust_z] \
        [--rules none,ewma:0.2] [--datasets tep,batadal-windows] [--threshold quantile:0.99]
"""

import argparse
import math
from pathlib import Path

import numpy as np

from plantwatch.adapters.datasets.benchmark_splits import DATASETS, DatasetMissingError, load_split
from plantwatch.adapters.detectors import build_detector
from plantwatch.domain.alarms import parse_alarm_rule
from plantwatch.domain.thresholds import build_thresholder
from plantwatch.services.evaluation import calibrate_detector, evaluate_runs, judge

DEFAULT_RULES = "none,3of5,ewma:0.2,ewma:0.05,cusum,cusum:0.99"


def threshold_from(text: str) -> tuple[str, dict[str, float]]:
    method, _, value = text.partition(":")
    params = {"quantile": "q", "pot": "risk", "budget": "alarms_per_day"}
    return method, ({params[method]: float(value)} if value else {})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", default="pca,robust_z,hbos,iforest")
    parser.add_argument("--rules", default=DEFAULT_RULES)
    parser.add_argument("--datasets", default="tep,batadal-windows,generated-energy,generated-machine")
    parser.add_argument("--threshold", default="quantile:0.99")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/datasets"))
    parser.add_argument("--hyper", default="", help="KEY=VALUE,... for every model, e.g. scaling=robust")
    args = parser.parse_args()
    method, params = threshold_from(args.threshold)
    for dataset in args.datasets.split(","):
        assert dataset in DATASETS, dataset
        try:
            split = load_split(dataset, args.data_dir, seed=7)
        except DatasetMissingError as error:
            print(f"skip {dataset}: {error}")
            continue
        print(f"\n## {dataset} (threshold {args.threshold}; tuning runs only)")
        tuning = {name: run for name, run in split.runs.items() if name not in split.held_back}
        for model in args.models.split(","):
            hyper: dict[str, object] = {"seed": 7}
            hyper.update(pair.split("=", 1) for pair in args.hyper.split(",") if pair)
            if args.epochs is not None and model in ("lstm_ae", "gru", "vae"):
                hyper["epochs"] = args.epochs
            for spec in args.rules.split(","):
                detector = build_detector(model, **hyper)
                calibrated = calibrate_detector(
                    split.train,
                    detector,
                    build_thresholder(method, **params),
                    alarm_rule=parse_alarm_rule(spec),
                )
                if split.runs:  # runs: the main test frame is the normal run (TEP) or a whole period
                    reports = evaluate_runs(calibrated, tuning)
                    normal = judge(calibrated, split.test) if dataset == "tep" else None
                    rates = [r.recall for name, r in reports.items() if not _unobservable(name)]
                    s_scores = [r.s_score for r in reports.values() if not math.isnan(r.s_score)]
                    rc = [
                        r.root_cause_first_top3
                        for r in reports.values()
                        if not math.isnan(r.root_cause_first_top3)
                    ]
                    far = normal.far if normal is not None else np.mean([r.far for r in reports.values()])
                    events = sum(r.detected_events for r in reports.values())
                    total = sum(r.events for r in reports.values())
                    print(
                        f"{model:9s} {spec:14s} FAR {far:.3f}  mean recall {np.mean(rates):.3f}  "
                        f"events {events}/{total}  S {np.mean(s_scores) if s_scores else math.nan:.3f}  "
                        f"RC@3 {np.mean(rc) if rc else math.nan:.2f}  fit {calibrated.fit_seconds:.1f}s",
                        flush=True,
                    )
                else:
                    r = judge(calibrated, split.test)
                    print(
                        f"{model:9s} {spec:14s} FAR {r.far:.3f}  P {r.precision:.3f} R {r.recall:.3f} "
                        f"F1 {r.f1:.3f} events {r.detected_events}/{r.events} FA/day "
                        f"{r.false_alarms_per_day:.2f} RC@3 {r.root_cause_top3:.2f}",
                        flush=True,
                    )


def _unobservable(run_name: str) -> bool:
    return run_name.endswith((" fault 3", " fault 9", " fault 15"))


if __name__ == "__main__":
    main()
