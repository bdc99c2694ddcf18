"""Fusion: several catalog detectors scored together, their per-feature contributions averaged.

Every plantwatch detector gives contributions of about 1 per feature on normal data (each feature's error over
its usual error), so the members are on one scale without any extra calibration, and the fused contributions
still add up to the fused score and still name a root cause. The default pairs the multivariate PCA T²+Q,
which sees broken correlations, with the robust univariate z-score, which sees a single sensor walking off
even where PCA's subspace absorbs it: each covers what the other misses.
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import numpy as np

from plantwatch.adapters.detectors.base import STATE_FILE, DetectorConfig, WindowDetector
from plantwatch.domain.errors import InvalidInputError, ModelIntegrityError
from plantwatch.domain.ports import Explanation


@dataclass
class FusionConfig(DetectorConfig):
    window: int = 1  # not used: the fused window is the longest member's
    # comma-separated catalog names, each at most once; their own defaults
    members: str = "pca,robust_z"


class FusionDetector(WindowDetector):
    """Score = mean over members of their scores (and contributions), row by row."""

    name = "fusion"
    Config = FusionConfig
    config: FusionConfig

    def __init__(self, device: str | None = None, **hyper: Any) -> None:
        super().__init__(device=device, **hyper)
        # imported here: the catalog imports this module
        from plantwatch.adapters.detectors.catalog import detector_class

        names = [n.strip() for n in self.config.members.split(",") if n.strip()]
        if not names or len(set(names)) != len(names) or self.name in names:
            raise InvalidInputError(
                "members must name distinct catalog detectors other than fusion, got "
                f"{self.config.members!r}",
                field="members",
            )
        # the members make the contributions; these options of a single detector would silently do nothing
        defaults = FusionConfig()
        for option in ("aggregation", "adaptive_window"):
            if getattr(self.config, option) != getattr(defaults, option):
                raise InvalidInputError(
                    f"fusion does not take {option}: it averages its members' contributions", field=option
                )
        seed = {"seed": self.config.seed}
        self.members: list[WindowDetector] = [detector_class(n)(device=device, **seed) for n in names]
        self.window = max(member.window for member in self.members)

    @property
    def is_fitted(self) -> bool:
        return bool(self.members) and all(member.is_fitted for member in self.members)

    def fit(self, values: np.ndarray, feature_names: Sequence[str]) -> Self:
        for member in self.members:
            member.fit(values, feature_names)
        self.feature_names = list(self.members[0].feature_names)
        self.training_history = {
            "train_windows": len(values) - self.window + 1,
            **{
                f"{member.name}.{key}": value
                for member in self.members
                for key, value in member.training_metrics().items()
            },
        }
        return self

    def score(self, values: np.ndarray, history: np.ndarray | None = None) -> np.ndarray:
        return self._fused_contributions(values, history)[0].mean(axis=1)

    def explain(self, values: np.ndarray, history: np.ndarray | None = None) -> Explanation:
        contributions, expected = self._fused_contributions(values, history)
        return Explanation(contributions=contributions, expected=expected)

    def _fused_contributions(
        self, values: np.ndarray, history: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        self._require_fitted()
        explanations = [member.explain(values, history) for member in self.members]
        contributions = np.mean([e.contributions for e in explanations], axis=0)
        # what the model expects is the first member's view (PCA's reconstruction by default)
        return contributions, explanations[0].expected

    def state(self) -> dict[str, Any]:
        self._require_fitted()
        return {
            "detector": self.name,
            "hyper_params": self.hyper_params(),
            "feature_names": self.feature_names,
            "members": [member.state() for member in self.members],
            "training_history": self.training_history,
        }

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / STATE_FILE).write_text(json.dumps(self.state(), indent=2))
        # members of different kinds write differently named arrays, so they share the directory
        for member in self.members:
            member._save_model(directory)

    @classmethod
    def from_state(
        cls, state: dict[str, Any], directory: Path, device: str | None = None, where: Path | None = None
    ) -> Self:
        if state.get("detector") != cls.name:
            raise ModelIntegrityError(
                f"{where or directory}: holds a {state.get('detector')!r} detector, not {cls.name!r}"
            )
        fused = cls(device=device, **state["hyper_params"])
        members = state.get("members", [])
        if [m.get("detector") for m in members] != [member.name for member in fused.members]:
            raise ModelIntegrityError(
                f"{where or directory}: fusion members do not match its hyper-parameters"
            )
        fused.members = [
            type(member).from_state(member_state, directory, device, where)
            for member, member_state in zip(fused.members, members, strict=True)
        ]
        fused.feature_names = list(state["feature_names"])
        fused.training_history = dict(state.get("training_history", {}))
        return fused

    # the members own their models: the fusion has none of its own
    def _fit_model(self, windows: np.ndarray) -> None:
        raise NotImplementedError

    def _window_errors(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def _save_model(self, directory: Path) -> None:
        raise NotImplementedError

    def _load_model(self, directory: Path) -> None:
        raise NotImplementedError
