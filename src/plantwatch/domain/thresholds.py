"""Thresholds without labels: a high quantile of normal scores, peaks-over-threshold (extreme values), or an
alarm budget (false alarms per day an operator accepts).

POT follows Siffer et al., "Anomaly Detection in Streams with Extreme Value Theory" (KDD 2017): the excesses
over a high initial threshold t follow a generalized Pareto distribution, which gives the score exceeded with
probability `risk` even where the data hold too few points for an empirical quantile that far out. On a
calibration set too short (or too tied) for the Pareto fit, POT falls back to the empirical (1 - risk)
quantile and logs a warning, instead of failing the whole training run.
"""

import logging
import math
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.stats import genpareto

from plantwatch.domain.errors import InvalidInputError

# Below this many peaks the Pareto fit says more about noise than about the tail.
MIN_PEAKS = 10
# An initial threshold lower than this is no longer in the tail, and the Pareto model does not hold there.
LOWEST_INITIAL_QUANTILE = 0.9
# Candidate thresholds the alarm budget tries: this many quantile levels of the normal scores between the
# median and the maximum. Fine enough that neighbouring candidates differ by a fraction of a false alarm.
BUDGET_LEVELS = 2001

log = logging.getLogger(__name__)


def _finite_scores(normal_scores: np.ndarray) -> np.ndarray:
    scores = np.asarray(normal_scores, dtype=np.float64).ravel()
    finite = scores[np.isfinite(scores)]
    if finite.size == 0:
        raise InvalidInputError("no finite normal scores to calibrate a threshold on", field="normal_scores")
    return finite


class QuantileThresholder:
    """Threshold at the q-quantile of normal scores: about (1 - q) of normal readings raise a false alarm."""

    method = "quantile"

    def __init__(self, q: float = 0.995) -> None:
        if not 0.5 <= q < 1.0:
            raise InvalidInputError(f"quantile q must be in [0.5, 1), got {q}", field="q")
        self.q = q

    def calibrate(self, normal_scores: np.ndarray) -> float:
        return float(np.quantile(_finite_scores(normal_scores), self.q))


class PotThresholder:
    """Peaks-over-threshold: fit a generalized Pareto to the excesses over the `initial_quantile` of normal
    scores and return the score a normal reading exceeds with probability `risk`."""

    method = "pot"

    def __init__(self, risk: float = 1e-3, initial_quantile: float = 0.98) -> None:
        if not 0.5 <= initial_quantile < 1.0:
            raise InvalidInputError(
                f"initial_quantile must be in [0.5, 1), got {initial_quantile}", field="initial_quantile"
            )
        if not 0.0 < risk < 1.0 - initial_quantile:
            raise InvalidInputError(
                f"risk must be in (0, 1 - initial_quantile = {1.0 - initial_quantile:g}), got {risk}",
                field="risk",
            )
        self.risk = risk
        self.initial_quantile = initial_quantile
        # whether the last calibration had to use the empirical quantile instead of the Pareto tail
        self.fell_back = False

    def calibrate(self, normal_scores: np.ndarray) -> float:
        scores = _finite_scores(normal_scores)
        # short validation runs: start the tail lower (not below LOWEST_INITIAL_QUANTILE) to keep enough peaks
        level = min(self.initial_quantile, 1.0 - (MIN_PEAKS + 1) / scores.size)
        if level < LOWEST_INITIAL_QUANTILE:
            needed = math.ceil(round((MIN_PEAKS + 1) / (1 - LOWEST_INITIAL_QUANTILE), 9))
            return self._fall_back(scores, f"POT needs at least {needed} normal scores, got {scores.size}")
        initial = float(np.quantile(scores, level))
        excesses = scores[scores > initial] - initial
        if excesses.size < MIN_PEAKS:
            return self._fall_back(
                scores,
                f"POT needs at least {MIN_PEAKS} distinct peaks above the {level:g} quantile, got "
                f"{excesses.size} from {scores.size} scores (too many ties)",
            )
        self.fell_back = False
        if float(np.ptp(excesses)) == 0.0:
            # every peak is the same value: the tail is a point mass, nothing is ever larger
            return initial + float(excesses[0])
        shape, _, scale = genpareto.fit(excesses, floc=0.0)
        # P(score > initial) estimated empirically; the Pareto tail carries it the rest of the way to `risk`.
        ratio = self.risk * scores.size / excesses.size
        if abs(shape) < 1e-8:
            return initial - scale * math.log(ratio)
        return float(initial + scale / shape * (ratio ** (-shape) - 1.0))

    def _fall_back(self, scores: np.ndarray, reason: str) -> float:
        """The empirical (1 - risk) quantile: on so few scores it is close to their maximum, a cautious
        threshold, and a model still gets one instead of failing to train."""
        self.fell_back = True
        log.warning(
            "%s; falling back to the empirical %.4g quantile of the normal scores. Give more normal "
            "calibration data for an extreme-value threshold.",
            reason,
            1.0 - self.risk,
        )
        return float(np.quantile(scores, 1.0 - self.risk))


class AlarmBudgetThresholder:
    """The lowest threshold at which normal data raise at most `alarms_per_day` false alarms.

    An operator states what they can live with ("two false alarms a day") instead of a per-reading risk. A
    false alarm is a run of consecutive readings above the threshold (one alarm to acknowledge, however long),
    counted on the normal calibration scores in time order, which cover `len(scores) / readings_per_day`
    days. When the calibration data cover less than the time between two budgeted alarms, the threshold is
    the largest normal score (none of them alarms).
    """

    method = "budget"

    def __init__(self, alarms_per_day: float = 1.0, readings_per_day: float = 1440.0) -> None:
        if not alarms_per_day >= 0.0:
            raise InvalidInputError(
                f"alarms_per_day must be >= 0, got {alarms_per_day}", field="alarms_per_day"
            )
        if not readings_per_day > 0.0:
            raise InvalidInputError(
                f"readings_per_day must be > 0, got {readings_per_day}", field="readings_per_day"
            )
        self.alarms_per_day = alarms_per_day
        self.readings_per_day = readings_per_day

    def calibrate(
        self, normal_scores: np.ndarray, alarms: Callable[[float], np.ndarray] | None = None
    ) -> float:
        """`alarms`: the alarm flags at a candidate threshold, when an alarm is more than the score over it
        (an alarm rule's persistence and gap, domain/alarms.py); default: score > threshold."""
        scores = np.asarray(normal_scores, dtype=np.float64).ravel()
        _finite_scores(scores)  # refuses a calibration set with nothing finite in it
        # NaN readings (no full window yet) are no alarm and still watched time
        filled = np.nan_to_num(scores, nan=-np.inf)
        flags = alarms or (lambda level: filled > level)
        days = len(scores) / self.readings_per_day
        allowed = math.floor(self.alarms_per_day * days + 1e-9)
        candidates = np.unique(np.quantile(scores[np.isfinite(scores)], np.linspace(0.5, 1.0, BUDGET_LEVELS)))
        # raising the threshold can split one alarm run into two, so the count is not monotone: scan from
        # the lowest candidate and keep the first that fits the budget
        for candidate in candidates:
            if alarm_runs(flags(float(candidate))) <= allowed:
                return float(candidate)
        return float(candidates[-1])


def alarm_runs(alarms: np.ndarray) -> int:
    """Number of maximal runs of True (separate alarms an operator sees) in a boolean series."""
    flags = np.asarray(alarms, dtype=bool)
    if flags.size == 0:
        return 0
    return int(flags[0]) + int(np.count_nonzero(flags[1:] & ~flags[:-1]))


THRESHOLD_METHODS = ("pot", "quantile", "budget")
ThresholderType = QuantileThresholder | PotThresholder | AlarmBudgetThresholder


def build_thresholder(method: str = "pot", **params: Any) -> ThresholderType:
    """A thresholder by method name; `params` go to its constructor (quantile: q; pot: risk, initial_quantile;
    budget: alarms_per_day, readings_per_day)."""
    try:
        if method == "pot":
            return PotThresholder(**params)
        if method == "quantile":
            return QuantileThresholder(**params)
        if method == "budget":
            return AlarmBudgetThresholder(**params)
    except TypeError as error:
        raise InvalidInputError(
            f"bad parameters for the {method} threshold: {error}", field="params"
        ) from None
    raise InvalidInputError(
        f"unknown threshold method {method!r}; expected one of: {', '.join(THRESHOLD_METHODS)}",
        field="method",
    )


def calibrate_threshold(scores: np.ndarray, method: str = "pot", **params: Any) -> float:
    """Threshold from normal scores (NaN ignored) by `method`: "pot", "quantile" or "budget"."""
    return build_thresholder(method, **params).calibrate(scores)


def parse_threshold(spec: str, readings_per_day: float | None = None) -> ThresholderType:
    """A thresholder from "METHOD" or "METHOD:VALUE": pot[:RISK], quantile[:Q], budget[:ALARMS_PER_DAY].
    The budget needs `readings_per_day` (the data's sampling rate)."""
    method, _, value = spec.strip().partition(":")
    params: dict[str, float] = {}
    if value:
        key = {"pot": "risk", "quantile": "q", "budget": "alarms_per_day"}.get(method)
        if key is None:
            raise InvalidInputError(
                f"unknown threshold method {method!r}; expected one of: {', '.join(THRESHOLD_METHODS)}",
                field="method",
            )
        try:
            params[key] = float(value)
        except ValueError:
            raise InvalidInputError(f"threshold {spec!r}: {value!r} is not a number", field=key) from None
    if method == "budget" and readings_per_day is not None:
        params["readings_per_day"] = readings_per_day
    return build_thresholder(method, **params)
