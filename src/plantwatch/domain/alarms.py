"""Alarm logic apart from the score: smoothing, persistence and a minimum gap between alarms.

A detector's score says how unusual each reading is; whether to wake an operator is a separate decision, made
here from the score series alone (pure numpy/pandas, no model):

1. a statistic of the score: the score itself, its EWMA (Roberts 1959: small sustained shifts add up, single
   noisy readings are damped) or a one-sided CUSUM (Page 1954) against a reference level of normal scores;
2. the threshold, calibrated on that statistic of normal scores only (by any Thresholder);
3. persistence: an alarm only when at least k of the last n readings are over the threshold;
4. a minimum gap: alarm runs less than `min_gap` readings apart are one alarm (the operator acknowledges one,
   not three in a row).

A rule is written as a short spec, e.g. "ewma:0.2+2of3+gap:12" (parts joined by "+", any order, each at most
once): "none", "ewma:ALPHA", "cusum" or "cusum:Q" (reference at the Q-quantile of normal scores, default 0.9),
"KofN", "gap:READINGS".
"""

import math
import re
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
import pandas as pd

from plantwatch.domain.errors import InvalidInputError
from plantwatch.domain.ports import Thresholder

Smoothing = Literal["none", "ewma", "cusum"]
DEFAULT_CUSUM_QUANTILE = 0.9
_PERSISTENCE = re.compile(r"^(\d+)of(\d+)$")


@dataclass(frozen=True)
class AlarmRule:
    """How a score series turns into alarms (see the module docstring). The default rule is the plain one:
    alarm = score > threshold."""

    smoothing: Smoothing = "none"
    ewma_alpha: float = 0.2
    cusum_quantile: float = DEFAULT_CUSUM_QUANTILE
    k: int = 1
    n: int = 1
    min_gap: int = 0
    # CUSUM's reference level, set from normal scores by `calibrate`
    reference: float = field(default=math.nan, compare=False)

    def __post_init__(self) -> None:
        if self.smoothing not in ("none", "ewma", "cusum"):
            raise InvalidInputError(f"unknown smoothing {self.smoothing!r}", field="smoothing")
        if not 0.0 < self.ewma_alpha <= 1.0:
            raise InvalidInputError(
                f"EWMA alpha must be in (0, 1], got {self.ewma_alpha}", field="ewma_alpha"
            )
        if not 0.0 < self.cusum_quantile < 1.0:
            raise InvalidInputError(
                f"CUSUM reference quantile must be in (0, 1), got {self.cusum_quantile}",
                field="cusum_quantile",
            )
        if not 1 <= self.k <= self.n:
            raise InvalidInputError(f"persistence needs 1 <= k <= n, got {self.k}of{self.n}", field="k")
        if self.min_gap < 0:
            raise InvalidInputError(f"min_gap must be >= 0 readings, got {self.min_gap}", field="min_gap")

    @property
    def spec(self) -> str:
        """The rule written back as a spec string ("none" for the plain rule)."""
        parts = []
        if self.smoothing == "ewma":
            parts.append(f"ewma:{self.ewma_alpha:g}")
        elif self.smoothing == "cusum":
            parts.append(f"cusum:{self.cusum_quantile:g}")
        if self.n > 1:
            parts.append(f"{self.k}of{self.n}")
        if self.min_gap:
            parts.append(f"gap:{self.min_gap}")
        return "+".join(parts) or "none"

    def statistic(self, scores: np.ndarray) -> np.ndarray:
        """The series the threshold applies to. NaN scores (no full window yet) stay NaN and do not reset
        the EWMA or CUSUM state."""
        values = np.asarray(scores, dtype=np.float64).ravel()
        if self.smoothing == "ewma":
            smoothed = pd.Series(values).ewm(alpha=self.ewma_alpha, adjust=False, ignore_na=True).mean()
            return np.where(np.isnan(values), np.nan, smoothed.to_numpy())
        if self.smoothing == "cusum":
            if math.isnan(self.reference):
                raise InvalidInputError("a CUSUM rule needs calibrate() on normal scores first", "reference")
            return _cusum(values, self.reference)
        return values

    def calibrate(self, normal_scores: np.ndarray, thresholder: Thresholder) -> tuple["AlarmRule", float]:
        """(this rule with its reference set, its statistic's threshold), both from normal scores only."""
        values = np.asarray(normal_scores, dtype=np.float64).ravel()
        rule = self
        if self.smoothing == "cusum":
            finite = values[np.isfinite(values)]
            if finite.size == 0:
                raise InvalidInputError("no finite normal scores to calibrate a CUSUM on", "normal_scores")
            rule = replace(self, reference=float(np.quantile(finite, self.cusum_quantile)))
        return rule, float(thresholder.calibrate(rule.statistic(values)))

    def alarms(self, scores: np.ndarray, threshold: float) -> np.ndarray:
        """Boolean alarm per reading."""
        over = np.nan_to_num(self.statistic(scores), nan=-np.inf) > threshold
        if self.n > 1:
            count = pd.Series(over.astype(np.int32)).rolling(self.n, min_periods=1).sum().to_numpy()
            over = count >= self.k
        if self.min_gap > 0:
            over = _bridge_gaps(over, self.min_gap)
        return over


def _cusum(values: np.ndarray, reference: float) -> np.ndarray:
    """One-sided upper CUSUM: C_t = max(0, C_{t-1} + s_t - reference)."""
    out = np.full(values.shape, np.nan)
    total = 0.0
    for t, value in enumerate(values):
        if math.isnan(value):
            continue
        total = max(0.0, total + value - reference)
        out[t] = total
    return out


def _bridge_gaps(alarms: np.ndarray, min_gap: int) -> np.ndarray:
    """Fill gaps shorter than `min_gap` readings between two alarm runs."""
    bridged = alarms.copy()
    on = np.flatnonzero(alarms)
    if on.size < 2:
        return bridged
    gaps = np.diff(on) - 1
    for before, gap in zip(on[:-1], gaps, strict=True):
        if 0 < gap < min_gap:
            bridged[before + 1 : before + 1 + gap] = True
    return bridged


def parse_alarm_rule(spec: str) -> AlarmRule:
    """An AlarmRule from its spec string (see the module docstring); errors name the part that is wrong."""
    options: dict[str, object] = {}
    seen: set[str] = set()
    for raw in spec.strip().lower().split("+"):
        part = raw.strip()
        name = part.split(":", 1)[0] if ":" in part else ("kofn" if _PERSISTENCE.match(part) else part)
        if name in seen:
            raise InvalidInputError(f"alarm rule {spec!r} gives {name!r} twice", field="alarm_rule")
        seen.add(name)
        try:
            if part in ("", "none"):
                continue
            if part.startswith("ewma"):
                options["smoothing"] = "ewma"
                if ":" in part:
                    options["ewma_alpha"] = float(part.split(":", 1)[1])
            elif part.startswith("cusum"):
                options["smoothing"] = "cusum"
                if ":" in part:
                    options["cusum_quantile"] = float(part.split(":", 1)[1])
            elif part.startswith("gap:"):
                options["min_gap"] = int(part.split(":", 1)[1])
            elif match := _PERSISTENCE.match(part):
                options["k"], options["n"] = int(match.group(1)), int(match.group(2))
            else:
                raise ValueError(part)
        except ValueError:
            raise InvalidInputError(
                f"alarm rule part {part!r} of {spec!r} is not one of none, ewma:ALPHA, cusum[:Q], KofN, "
                "gap:READINGS",
                field="alarm_rule",
            ) from None
        if "smoothing" in options and {"ewma", "cusum"} <= {n.split(":")[0] for n in seen}:
            raise InvalidInputError(f"alarm rule {spec!r} has both ewma and cusum", field="alarm_rule")
    return AlarmRule(**options)  # type: ignore[arg-type]
