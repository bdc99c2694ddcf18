"""Thresholds without labels: a high quantile of normal scores, or peaks-over-threshold (extreme values).

POT follows Siffer et al., "Anomaly Detection in Streams with Extreme Value Theory" (KDD 2017): the excesses
over a high initial threshold t follow a generalized Pareto distribution, which gives the score exceeded with
probability `risk` even where the data hold too few points for an empirical quantile that far out.
"""

import math
from typing import Any

import numpy as np
from scipy.stats import genpareto

from plantwatch.domain.errors import InvalidInputError

# Below this many peaks the Pareto fit says more about noise than about the tail.
MIN_PEAKS = 10
# An initial threshold lower than this is no longer in the tail, and the Pareto model does not hold there.
LOWEST_INITIAL_QUANTILE = 0.9


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

    def calibrate(self, normal_scores: np.ndarray) -> float:
        scores = _finite_scores(normal_scores)
        # short validation runs: start the tail lower (not below LOWEST_INITIAL_QUANTILE) to keep enough peaks
        level = min(self.initial_quantile, 1.0 - (MIN_PEAKS + 1) / scores.size)
        if level < LOWEST_INITIAL_QUANTILE:
            needed = math.ceil(round((MIN_PEAKS + 1) / (1 - LOWEST_INITIAL_QUANTILE), 9))
            raise InvalidInputError(
                f"POT needs at least {needed} normal scores, got {scores.size}; "
                "give more normal data or use the quantile method",
                field="normal_scores",
            )
        initial = float(np.quantile(scores, level))
        excesses = scores[scores > initial] - initial
        if excesses.size < MIN_PEAKS:
            raise InvalidInputError(
                f"POT needs at least {MIN_PEAKS} distinct peaks above the {level:g} quantile, got "
                f"{excesses.size} from {scores.size} scores (too many ties); use the quantile method",
                field="normal_scores",
            )
        if float(np.ptp(excesses)) == 0.0:
            # every peak is the same value: the tail is a point mass, nothing is ever larger
            return initial + float(excesses[0])
        shape, _, scale = genpareto.fit(excesses, floc=0.0)
        # P(score > initial) estimated empirically; the Pareto tail carries it the rest of the way to `risk`.
        ratio = self.risk * scores.size / excesses.size
        if abs(shape) < 1e-8:
            return initial - scale * math.log(ratio)
        return float(initial + scale / shape * (ratio ** (-shape) - 1.0))


THRESHOLD_METHODS = ("pot", "quantile")


def build_thresholder(method: str = "pot", **params: Any) -> QuantileThresholder | PotThresholder:
    """A thresholder by method name; `params` go to its constructor (quantile: q; pot: risk)."""
    try:
        if method == "pot":
            return PotThresholder(**params)
        if method == "quantile":
            return QuantileThresholder(**params)
    except TypeError as error:
        raise InvalidInputError(
            f"bad parameters for the {method} threshold: {error}", field="params"
        ) from None
    raise InvalidInputError(
        f"unknown threshold method {method!r}; expected one of: {', '.join(THRESHOLD_METHODS)}",
        field="method",
    )


def calibrate_threshold(scores: np.ndarray, method: str = "pot", **params: Any) -> float:
    """Threshold from normal scores (NaN ignored) by `method`: "pot" or "quantile"."""
    return build_thresholder(method, **params).calibrate(scores)
