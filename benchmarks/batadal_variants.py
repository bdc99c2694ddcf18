"""BATADAL dataset04 (7 windows): detector option variants under alarm rules, every part reported.

Unlike detection_sweep.py (tuning runs only, for choosing), this prints the tuning part (attacks 1-3), the
held-back part (attacks 4-7) and the whole run for each (variant, rule), to measure a choice already made
on the tuning part. Thresholds come from dataset03's normal rows only, as in `plantwatch evaluate`.

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/batadal_variants.py --model gru \
        --variants "aggregation=mean;aggregation=max;adaptive_window=168" --rules ewma:0.2,ewma:0.3

`--seeds 7,8,9` runs every (variant, rule) once per seed and prints each part's mean and range over the seeds,
with the fit time (seconds of wall clock per detector fit, one thread per fit).
"""

import argparse
import time
from pathlib import Path

from plantwatch.adapters.datasets.benchmark_splits import BATADAL_WINDOWS, load_split
from plantwatch.adapters.detectors import build_detector
from plantwatch.domain.alarms import parse_alarm_rule
from plantwatch.domain.metrics import DetectionReport
from plantwatch.domain.thresholds import build_thresholder
from plantwatch.services.evaluation import calibrate_detector, evaluate_runs, judge


def parsed(value: str) -> object:
    """A hyper-parameter value from the command line: int, float or the text itself."""
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="gru")
    parser.add_argument(
        "--variants", default="aggregation=mean", help="KEY=VALUE,... per variant, ';' between"
    )
    parser.add_argument("--rules", default="ewma:0.2")
    parser.add_argument("--quantile", type=float, default=0.99)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--seeds", default="", help="comma-separated model seeds; overrides --seed")
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/datasets"))
    args = parser.parse_args()
    split = load_split(BATADAL_WINDOWS, args.data_dir, seed=7)
    seeds = [int(seed) for seed in args.seeds.split(",")] if args.seeds else [args.seed]
    for variant in args.variants.split(";"):
        hyper = {
            key: parsed(value) for key, value in (pair.split("=", 1) for pair in variant.split(",") if pair)
        }
        for spec in args.rules.split(","):
            by_seed: dict[int, dict[str, DetectionReport]] = {}
            for seed in seeds:
                started = time.perf_counter()
                calibrated = calibrate_detector(
                    split.train,
                    build_detector(args.model, seed=seed, **hyper),
                    build_thresholder("quantile", q=args.quantile),
                    alarm_rule=parse_alarm_rule(spec),
                )
                fit_seconds = time.perf_counter() - started
                reports = {"all 7": judge(calibrated, split.test), **evaluate_runs(calibrated, split.runs)}
                by_seed[seed] = reports
                print(
                    f"{args.model} {variant:45s} {spec:9s} seed {seed} fit {fit_seconds:.0f} s  "
                    + "  ".join(
                        f"{name.split(' (')[0]}: S {r.s_score:.3f} FAR {r.far:.4f} R {r.recall:.3f} "
                        f"TTD {r.mean_time_to_detection:.1f} {r.detected_events}/{r.events}"
                        for name, r in reports.items()
                    ),
                    flush=True,
                )
            if len(seeds) > 1:
                print(f"{args.model} {variant:45s} {spec:9s} over seeds {args.seeds}: " + summary(by_seed))


def summary(by_seed: dict[int, dict[str, DetectionReport]]) -> str:
    """Mean and range of S (and the largest FAR) of each part over the seeds."""
    parts = next(iter(by_seed.values()))
    out = []
    for name in parts:
        s_scores = [reports[name].s_score for reports in by_seed.values()]
        worst_far = max(reports[name].far for reports in by_seed.values())
        out.append(
            f"{name.split(' (')[0]}: S mean {sum(s_scores) / len(s_scores):.3f} "
            f"min {min(s_scores):.3f} max {max(s_scores):.3f} worst FAR {worst_far:.4f}"
        )
    return "  ".join(out)


if __name__ == "__main__":
    main()
