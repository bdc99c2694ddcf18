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
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
import pandas as pd

from plantwatch.domain.errors import InvalidInputError
from plantwatch.domain.ports import ModelCard, Thresholder
from plantwatch.domain.thresholds import AlarmBudgetThresholder

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

    @property
    def applies_live(self) -> bool:
        """Whether live scoring can apply the rule reading by reading. A minimum gap cannot: it turns readings
        into alarms after the fact, once a later alarm run starts (incidents group nearby alarms live)."""
        return self.min_gap == 0

    @property
    def needs_state(self) -> bool:
        """Whether a reading's alarm depends on earlier readings (smoothing or persistence)."""
        return self.smoothing != "none" or self.n > 1

    @property
    def history_needed(self) -> int:
        """How many of the latest scored readings `state_after` needs to continue the rule exactly."""
        return max(1, self.n - 1) if self.needs_state else 0

    def statistic(self, scores: np.ndarray) -> np.ndarray:
        """The series the threshold applies to. NaN scores (no full window yet) stay NaN and do not reset
        the EWMA or CUSUM state."""
        return self._statistic(np.asarray(scores, dtype=np.float64).ravel(), math.nan)[0]

    def _statistic(self, values: np.ndarray, previous: float) -> tuple[np.ndarray, float]:
        """(the statistic of `values`, its last finite value), continuing from the statistic `previous`
        (NaN: from the start). One recursion for a whole series and for one batch after another, so
        batches reproduce the whole series bit for bit."""
        if self.smoothing == "none":
            finite = values[~np.isnan(values)]
            return values.copy(), float(finite[-1]) if finite.size else previous
        if self.smoothing == "cusum" and math.isnan(self.reference):
            raise InvalidInputError("a CUSUM rule needs calibrate() on normal scores first", "reference")
        out = np.full(values.shape, np.nan)
        last = previous
        if self.smoothing == "ewma":
            # pandas' ewm(alpha, adjust=False, ignore_na=True) step by step, same operations in the same
            # order, so the statistic equals what evaluation computed before it was written as a recursion
            keep, take = 1.0 - self.ewma_alpha, self.ewma_alpha
            total_weight = keep + take
            for t, value in enumerate(values.tolist()):
                if math.isnan(value):
                    continue
                if math.isnan(last):
                    last = value
                elif last != value:
                    last = (keep * last + take * value) / total_weight
                out[t] = last
        else:
            # one-sided upper CUSUM (Page 1954): C_t = max(0, C_{t-1} + s_t - reference)
            reference = self.reference
            for t, value in enumerate(values.tolist()):
                if math.isnan(value):
                    continue
                last = max(0.0, (0.0 if math.isnan(last) else last) + value - reference)
                out[t] = last
        return out, last

    def calibrate(self, normal_scores: np.ndarray, thresholder: Thresholder) -> tuple["AlarmRule", float]:
        """(this rule with its reference set, its statistic's threshold), both from normal scores only.

        An alarm budget counts the alarms of the whole rule (persistence and gap included), not only the
        readings whose statistic is over the threshold."""
        values = np.asarray(normal_scores, dtype=np.float64).ravel()
        rule = self
        if self.smoothing == "cusum":
            finite = values[np.isfinite(values)]
            if finite.size == 0:
                raise InvalidInputError("no finite normal scores to calibrate a CUSUM on", "normal_scores")
            rule = replace(self, reference=float(np.quantile(finite, self.cusum_quantile)))
        statistic = rule.statistic(values)
        if isinstance(thresholder, AlarmBudgetThresholder) and (rule.n > 1 or rule.min_gap > 0):
            return rule, float(
                thresholder.calibrate(statistic, alarms=lambda level: rule._alarms_of(statistic, level))
            )
        return rule, float(thresholder.calibrate(statistic))

    def run(self, scores: np.ndarray, threshold: float, state: "AlarmState | None" = None) -> "RuleRun":
        """Statistic and alarm of each reading of `scores`, continuing from `state` (where the rule stood
        after the readings before them; None: the start of the series), and the state after them.

        Batch after batch, each continuing from the state the one before it left, gives the same alarms as
        `alarms` over the whole series (the minimum gap aside: see `applies_live`)."""
        start = state or AlarmState()
        values = np.asarray(scores, dtype=np.float64).ravel()
        statistic, last = self._statistic(values, start.statistic)
        over = np.nan_to_num(statistic, nan=-np.inf) > threshold
        alarms = over
        recent: tuple[bool, ...] = ()
        if self.n > 1:
            prior = np.array(start.recent_over[-(self.n - 1) :], dtype=bool)
            joined = np.concatenate([prior, over])
            count = pd.Series(joined.astype(np.int32)).rolling(self.n, min_periods=1).sum().to_numpy()
            alarms = count[len(prior) :] >= self.k
            recent = tuple(bool(flag) for flag in joined[-(self.n - 1) :])
        return RuleRun(statistic=statistic, alarms=alarms, state=AlarmState(last, recent))

    def state_after(self, statistics: Sequence[float], threshold: float) -> "AlarmState":
        """Where the rule stands after readings whose statistics were `statistics` (oldest first, e.g. the
        latest stored score points of a source): enough to continue with `run`."""
        values = [float(value) for value in statistics if not math.isnan(float(value))]
        recent = tuple(value > threshold for value in values[-(self.n - 1) :]) if self.n > 1 else ()
        return AlarmState(values[-1] if values else math.nan, recent)

    def alarms(self, scores: np.ndarray, threshold: float) -> np.ndarray:
        """Boolean alarm per reading."""
        return self._alarms_of(self.statistic(scores), threshold)

    def _alarms_of(self, statistic: np.ndarray, threshold: float) -> np.ndarray:
        over = np.nan_to_num(statistic, nan=-np.inf) > threshold
        if self.n > 1:
            count = pd.Series(over.astype(np.int32)).rolling(self.n, min_periods=1).sum().to_numpy()
            over = count >= self.k
        if self.min_gap > 0:
            over = _bridge_gaps(over, self.min_gap)
        return over


@dataclass(frozen=True)
class AlarmState:
    """Where a rule stands after some readings: all the next reading's alarm depends on."""

    statistic: float = math.nan
    """The last statistic (EWMA or CUSUM value, or score); NaN before the first scored reading."""
    recent_over: tuple[bool, ...] = ()
    """Whether each of the last n - 1 readings' statistic was over the threshold, oldest first."""


@dataclass(frozen=True)
class RuleRun:
    """A rule applied to a stretch of readings: per reading its statistic and alarm, and the state after."""

    statistic: np.ndarray
    alarms: np.ndarray
    state: AlarmState


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


def rule_of_card(card: ModelCard) -> AlarmRule:
    """The alarm rule a model was calibrated with, its CUSUM reference included ("none" for a card saved
    before models had rules)."""
    rule = parse_alarm_rule(card.alarm_rule)
    if card.alarm_reference is not None:
        rule = replace(rule, reference=card.alarm_reference)
    return rule
