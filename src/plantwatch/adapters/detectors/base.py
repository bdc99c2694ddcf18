"""What every plantwatch detector shares (the template of PyOD's BaseDeepLearningDetector / Merlion's models).

A subclass says only how a batch of scaled windows turns into per-feature errors and expected values; this
base owns input checks, scaling fitted on normal training data, sliding windows, the per-feature error each
feature shows on normal data, score and explanation assembly, and JSON persistence of everything but weights.

Score of a window = mean over features of (squared scaled error / that feature's mean error on normal training
data). That is a weighted mean of squared normalised errors with weights the inverse of each feature's usual
error, so the score is the mean of the explanation's contributions: about 1 on normal data, 10 when the errors
are ten times their usual size, and comparable between models and modules.

Two options change how contributions become the score, for every detector built on this base:

- `aggregation="max"`: the score is the largest contribution (the one feature furthest from its usual error)
  instead of the mean, so an attack that moves one sensor of forty is not diluted by the thirty-nine that
  did not move. The contributions are rescaled in proportion so that they still average to the score.
- `adaptive_window=N`: each feature's contribution is divided by how far that feature's recent errors sit
  above its training level (a trailing median over N readings that ends `adaptive_guard` readings before the
  scored one, divided by the feature's median on training windows; never below 1, so it only ever removes a
  rise). Reference readings in alarm against the reference itself (plain score over its median score times
  the ratio of training scores' `adaptive_exclude_quantile` to their median) are left out, and so are the
  `adaptive_guard` newest readings: an attack in progress is not part of its own reference and does not
  normalise itself away, while a drift that lifts every score is still followed. The score then depends on
  the last window + adaptive_guard + adaptive_window - 1 readings, which is the detector's `window` (the
  span `history` must cover); the model itself still reads `config.window` readings.
"""

import json
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
from sklearn.preprocessing import RobustScaler, StandardScaler

from plantwatch.domain.errors import FeatureMismatchError, InvalidInputError, ModelIntegrityError
from plantwatch.domain.ports import Explanation

STATE_FILE = "detector.json"
# Windows are pushed through a model this many at a time so long series do not build one huge tensor.
SCORE_CHUNK = 4096
# A feature the model reproduces (almost) perfectly on normal data, e.g. one that never moved, must not turn
# rounding noise into huge contributions: its usual error is floored at this share of the mean usual error.
USUAL_ERROR_FLOOR = 1e-2
# Scaled inputs are clipped to this many standard deviations: a reading of 1e300 would otherwise overflow
# the squared errors to inf and go unscored, the one reading that most needs an alarm.
SCALED_LIMIT = 1e6
# A feature whose error is usually (almost) zero, e.g. a pump that never switched in training, has a median
# contribution near 0: the adaptive normaliser compares recent levels with at least this much (contribution
# units, 1 = the feature's usual mean error) so a few small errors do not read as a huge rise.
ADAPTIVE_MEDIAN_FLOOR = 0.1
AGGREGATIONS = ("mean", "max")
# The adaptive normaliser gathers (rows, features, reference readings) blocks of about this many values at a
# time (16 MB of float64), so a long reference on many features does not build one huge array.
ADAPTIVE_BLOCK_VALUES = 2_000_000


@dataclass
class DetectorConfig:
    """Hyper-parameters every detector has. Subclasses extend it; all of it is saved as JSON."""

    window: int = 16
    seed: int = 7
    # Share of the per-feature error taken from the window's last reading, the rest is the window's mean:
    # weighting the last step makes a score (and its root cause) about the reading that was just flagged.
    last_step_weight: float = 0.5
    # Long series are trained on at most this many windows, evenly spaced, to keep training time bounded.
    max_train_windows: int = 20_000
    # "standard": mean and standard deviation; "robust": median and interquartile range, so the spikes and
    # slow excursions a normal training period holds do not stretch each feature's scale
    scaling: str = "standard"
    # how per-feature contributions become the score: "mean" or "max" (see the module docstring)
    aggregation: str = "mean"
    # adaptive normalisation over a trailing window of readings (0: off; see the module docstring)
    adaptive_window: int = 0
    adaptive_guard: int = 24
    # 0.5: a reference reading counts only when its score is at most the reference's median score (chosen on
    # BATADAL attacks 1-3 among 0.5, 0.75, 0.9, 0.95: the lower half of the reference is the safest level)
    adaptive_exclude_quantile: float = 0.5


class WindowDetector(ABC):
    """Base of all detectors: raw (T, F) arrays in, (T,) scores out; entry t scores the window ending at t."""

    name: ClassVar[str]
    Config: ClassVar[type[DetectorConfig]] = DetectorConfig

    def __init__(self, device: str | None = None, **hyper: Any) -> None:
        # where it runs is the deployment's choice (PLANTWATCH_DEVICE, passed in by bootstrap), not part of
        # the model: "auto" picks CUDA when there is one. Detectors without a network ignore it.
        self.device_setting = device or "auto"
        known = {f.name for f in fields(self.Config)}
        unknown = sorted(set(hyper) - known)
        if unknown:
            raise InvalidInputError(
                f"{self.name} has no hyper-parameter(s) {unknown}; known: {sorted(known)}", field=unknown[0]
            )
        self.config = self.Config(**hyper)
        self._check_config()
        # readings the model reads per window, and readings a score depends on (more with the adaptive
        # normaliser: its trailing reference comes before the model's window)
        self.model_window = self.config.window
        self.window = self.model_window
        if self.config.adaptive_window:
            self.window += self.config.adaptive_guard + self.config.adaptive_window - 1
        self.feature_names: list[str] = []
        self.mean_: np.ndarray | None = None
        self.std_: np.ndarray | None = None
        self.usual_error_: np.ndarray | None = None
        # per-feature median contribution on training windows, and how many times the median score of its
        # reference a reading's plain score may reach and still count in that reference (set by fit)
        self.usual_median_: np.ndarray | None = None
        self.exclude_ratio_: float | None = None
        self.training_history: dict[str, Any] = {}

    def _check_config(self) -> None:
        if self.config.window < 1:
            raise InvalidInputError(f"window must be at least 1, got {self.config.window}", field="window")
        if not 0.0 <= self.config.last_step_weight <= 1.0:
            raise InvalidInputError("last_step_weight must be in [0, 1]", field="last_step_weight")
        if self.config.scaling not in ("standard", "robust"):
            raise InvalidInputError(
                f"scaling must be standard or robust, got {self.config.scaling!r}", field="scaling"
            )
        if self.config.aggregation not in AGGREGATIONS:
            raise InvalidInputError(
                f"aggregation must be one of {', '.join(AGGREGATIONS)}, got {self.config.aggregation!r}",
                field="aggregation",
            )
        if self.config.adaptive_window < 0:
            raise InvalidInputError(
                f"adaptive_window must be >= 0 readings (0: off), got {self.config.adaptive_window}",
                field="adaptive_window",
            )
        if self.config.adaptive_guard < 1:
            # a reference that holds the scored reading would shrink every rise it is meant to show
            raise InvalidInputError(
                f"adaptive_guard must be >= 1 reading, got {self.config.adaptive_guard}",
                field="adaptive_guard",
            )
        if not 0.0 < self.config.adaptive_exclude_quantile <= 1.0:
            raise InvalidInputError(
                f"adaptive_exclude_quantile must be in (0, 1], got {self.config.adaptive_exclude_quantile}",
                field="adaptive_exclude_quantile",
            )

    @abstractmethod
    def _fit_model(self, windows: np.ndarray) -> None:
        """Train on scaled windows (N, window, F) of normal data."""

    @abstractmethod
    def _window_errors(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For scaled windows (N, window, F): squared scaled error per feature (N, F) and the scaled value the
        model expected at each window's last reading (N, F)."""

    @abstractmethod
    def _save_model(self, directory: Path) -> None: ...

    @abstractmethod
    def _load_model(self, directory: Path) -> None: ...

    @property
    def is_fitted(self) -> bool:
        return self.usual_error_ is not None

    def hyper_params(self) -> dict[str, Any]:
        return asdict(self.config)

    def fit(self, values: np.ndarray, feature_names: Sequence[str]) -> Self:
        names = [str(name) for name in feature_names]
        if len(set(names)) != len(names):
            raise InvalidInputError("feature names must be unique", field="feature_names")
        raw = self._checked(values, names)
        if len(raw) < self.model_window + 1:
            raise InvalidInputError(
                f"{self.name} needs more than window={self.model_window} rows to fit, got {len(raw)}",
                field="values",
            )
        self.feature_names = names
        # both scalers leave a zero-spread feature's scale at 1: a constant sensor does not divide by 0
        if self.config.scaling == "robust":
            robust = RobustScaler().fit(raw)
            self.mean_ = np.asarray(robust.center_, dtype=np.float64)
            self.std_ = np.asarray(robust.scale_, dtype=np.float64)
        else:
            scaler = StandardScaler().fit(raw)
            self.mean_ = np.asarray(scaler.mean_, dtype=np.float64)
            self.std_ = np.asarray(scaler.scale_, dtype=np.float64)
        windows = self._windows(self._scale(raw))
        if len(windows) > self.config.max_train_windows:
            keep = np.linspace(0, len(windows) - 1, self.config.max_train_windows).round().astype(int)
            windows = windows[keep]
        self._fit_model(windows)
        errors = np.concatenate([self._window_errors(chunk)[0] for _, chunk in _chunk_offsets(windows)])
        usual = errors.mean(axis=0)
        self.usual_error_ = np.maximum(usual, max(float(usual.mean()) * USUAL_ERROR_FLOOR, 1e-12))
        training_contributions = errors / self.usual_error_
        self.usual_median_ = np.maximum(np.median(training_contributions, axis=0), ADAPTIVE_MEDIAN_FLOOR)
        training_scores = training_contributions.mean(axis=1)
        # how far over the median a training score reaches at the exclusion quantile (at least 1)
        self.exclude_ratio_ = max(
            1.0,
            float(np.quantile(training_scores, self.config.adaptive_exclude_quantile))
            / max(float(np.median(training_scores)), 1e-12),
        )
        return self

    def score(self, values: np.ndarray, history: np.ndarray | None = None) -> np.ndarray:
        contributions, _ = self._contributions_and_expected(values, history)
        return contributions.mean(axis=1)

    def explain(self, values: np.ndarray, history: np.ndarray | None = None) -> Explanation:
        contributions, expected_scaled = self._contributions_and_expected(values, history)
        assert self.mean_ is not None and self.std_ is not None
        return Explanation(contributions=contributions, expected=expected_scaled * self.std_ + self.mean_)

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / STATE_FILE).write_text(json.dumps(self.state(), indent=2))
        self._save_model(directory)

    def state(self) -> dict[str, Any]:
        """Everything but the model's arrays or weights, as JSON-ready values."""
        self._require_fitted()
        assert self.mean_ is not None and self.std_ is not None and self.usual_error_ is not None
        return {
            "detector": self.name,
            "hyper_params": self.hyper_params(),
            "feature_names": self.feature_names,
            "scaler": {"mean": self.mean_.tolist(), "std": self.std_.tolist()},
            "usual_error": self.usual_error_.tolist(),
            "adaptive_reference": self._adaptive_reference_state(),
            "training_history": self.training_history,
        }

    def _adaptive_reference_state(self) -> dict[str, Any] | None:
        if self.usual_median_ is None or self.exclude_ratio_ is None:
            return None
        return {"usual_median": self.usual_median_.tolist(), "exclude_ratio": self.exclude_ratio_}

    @classmethod
    def load(cls, directory: Path, device: str | None = None) -> Self:
        path = directory / STATE_FILE
        try:
            state = json.loads(path.read_text())
        except FileNotFoundError:
            raise ModelIntegrityError(f"{path}: detector state file is missing") from None
        except json.JSONDecodeError as error:
            raise ModelIntegrityError(f"{path}: not valid JSON ({error})") from None
        return cls.from_state(state, directory, device, path)

    @classmethod
    def from_state(
        cls, state: dict[str, Any], directory: Path, device: str | None = None, where: Path | None = None
    ) -> Self:
        """A detector from `state()` and the arrays `_save_model` wrote into `directory`."""
        where = where or directory
        if state.get("detector") != cls.name:
            raise ModelIntegrityError(
                f"{where}: holds a {state.get('detector')!r} detector, not {cls.name!r}"
            )
        # a model saved before `aggregation` existed scored with the mean, whatever today's default
        detector = cls(device=device, **{"aggregation": "mean", **state["hyper_params"]})
        detector.feature_names = list(state["feature_names"])
        detector.mean_ = np.asarray(state["scaler"]["mean"], dtype=np.float64)
        detector.std_ = np.asarray(state["scaler"]["std"], dtype=np.float64)
        detector.usual_error_ = np.asarray(state["usual_error"], dtype=np.float64)
        detector._load_adaptive_reference(state.get("adaptive_reference"), where)
        detector.training_history = dict(state.get("training_history", {}))
        detector._load_model(directory)
        return detector

    def _load_adaptive_reference(self, reference: dict[str, Any] | None, where: Path) -> None:
        # models saved before the adaptive normaliser existed have no reference; they never use one
        if reference is None:
            if self.config.adaptive_window:
                raise ModelIntegrityError(
                    f"{where}: adaptive_window is set but the adaptive reference is missing"
                )
            return
        self.usual_median_ = np.asarray(reference["usual_median"], dtype=np.float64)
        self.exclude_ratio_ = float(reference["exclude_ratio"])

    def training_metrics(self) -> dict[str, float]:
        """Scalar facts about the last fit (losses, epochs run) for the model card."""
        return {k: v for k, v in self.training_history.items() if isinstance(v, int | float)}

    def _contributions_and_expected(
        self, values: np.ndarray, history: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Rows for `values` only; the last `window - 1` rows of `history` complete their first windows."""
        self._require_fitted()
        raw = self._checked(values, self.feature_names)
        if history is not None and self.window > 1:
            before = self._checked(history, self.feature_names)
            before = before[len(before) - min(self.window - 1, len(before)) :]
            if len(before):
                contributions, expected = self._contributions_and_expected(
                    np.concatenate([before, raw]), None
                )
                return contributions[len(before) :], expected[len(before) :]
        contributions, expected = self._model_contributions(raw)
        if self.config.adaptive_window:
            contributions = self._adaptively_normalised(contributions)
        if self.config.aggregation == "max":
            contributions = _rescaled_to_their_max(contributions)
        return contributions, expected

    def _model_contributions(self, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each feature's error over its usual error, and the expected readings, of each full model window."""
        assert self.usual_error_ is not None
        n_rows, n_features = raw.shape
        contributions = np.full((n_rows, n_features), np.nan)
        expected = np.full((n_rows, n_features), np.nan)
        if n_rows >= self.model_window:
            windows = self._windows(self._scale(raw))
            start = self.model_window - 1
            for offset, chunk in _chunk_offsets(windows):
                errors, chunk_expected = self._window_errors(chunk)
                rows = slice(start + offset, start + offset + len(chunk))
                contributions[rows] = errors / self.usual_error_
                expected[rows] = chunk_expected
        return contributions, expected

    def _adaptively_normalised(self, contributions: np.ndarray) -> np.ndarray:
        """Contributions over each feature's recent level relative to training (see the module docstring)."""
        assert self.usual_median_ is not None and self.exclude_ratio_ is not None
        guard, span = self.config.adaptive_guard, self.config.adaptive_window
        normalised = np.full(contributions.shape, np.nan)
        first = self.window - 1  # the first row whose reference rows all have a model score
        if len(contributions) <= first:
            return normalised
        # reference of row t: rows t - guard - span + 1 ... t - guard, i.e. window k = t - guard - span + 1
        reference = np.lib.stride_tricks.sliding_window_view(contributions, span, axis=0)  # (K, F, span)
        reference_scores = reference.mean(axis=1)  # (K, span): the plain score of each reference row
        rows_per_block = max(1, ADAPTIVE_BLOCK_VALUES // (span * contributions.shape[1]))
        for start in range(first, len(contributions), rows_per_block):
            rows = np.arange(start, min(start + rows_per_block, len(contributions)))
            k = rows - guard - span + 1
            scores = reference_scores[k]
            # readings in alarm against the reference itself stay out (ratio >= 1: at least half stay in)
            kept = scores <= self.exclude_ratio_ * np.median(scores, axis=1, keepdims=True)
            level = np.nanmedian(np.where(kept[:, None, :], reference[k], np.nan), axis=2)
            normalised[rows] = contributions[rows] / np.maximum(1.0, level / self.usual_median_)
        return normalised

    def _weighted_error(self, squared_error: np.ndarray) -> np.ndarray:
        """(N, window, F) squared errors -> (N, F): blend of the last step and the window mean."""
        weight = self.config.last_step_weight
        return weight * squared_error[:, -1, :] + (1.0 - weight) * squared_error.mean(axis=1)

    def _scale(self, raw: np.ndarray) -> np.ndarray:
        assert self.mean_ is not None and self.std_ is not None
        return np.clip((raw - self.mean_) / self.std_, -SCALED_LIMIT, SCALED_LIMIT)

    def _windows(self, scaled: np.ndarray) -> np.ndarray:
        # sliding_window_view gives (N, F, window); the models read (N, window, F)
        view = np.lib.stride_tricks.sliding_window_view(scaled, self.model_window, axis=0)
        return view.transpose(0, 2, 1)

    def _checked(self, values: np.ndarray, feature_names: list[str]) -> np.ndarray:
        raw = np.asarray(values, dtype=np.float64)
        if raw.ndim != 2:
            raise InvalidInputError(
                f"values must be a 2-D array (rows, features), got shape {raw.shape}", "values"
            )
        if raw.shape[1] != len(feature_names):
            raise FeatureMismatchError(
                f"values have {raw.shape[1]} features, {self.name} expects {len(feature_names)}: "
                + ", ".join(feature_names),
                field="values",
            )
        bad = ~np.isfinite(raw)
        if bad.any():
            row, column = (int(i) for i in np.argwhere(bad)[0])
            name = feature_names[column]
            raise InvalidInputError(
                f"values hold {int(bad.sum())} non-finite entries, first at row {row}, feature {name!r}",
                field=name,
            )
        return raw

    def _require_fitted(self) -> None:
        if not self.is_fitted:
            raise InvalidInputError(f"{self.name} detector is not fitted yet", field="detector")


def _rescaled_to_their_max(contributions: np.ndarray) -> np.ndarray:
    """Contributions scaled row by row so they average to their largest entry: the score is the max, and the
    explanation still splits it between features in proportion to their errors."""
    mean = contributions.mean(axis=1, keepdims=True)
    peak = contributions.max(axis=1, keepdims=True)
    factor = np.divide(peak, mean, out=np.ones_like(mean), where=mean > 0)
    return contributions * factor


def _chunk_offsets(windows: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    for offset in range(0, len(windows), SCORE_CHUNK):
        yield offset, windows[offset : offset + SCORE_CHUNK]
