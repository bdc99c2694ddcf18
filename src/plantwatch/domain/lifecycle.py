"""Model stages: every registered version is a candidate until promoted; one version per model is production
(what the API and the workers serve); a version replaced by a promotion or left by a rollback is archived.

`ModelStages` is the whole record of one model's stages and the transitions between them, with no I/O: the
registry stores it beside the versions.
"""

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from plantwatch.domain.errors import NotFoundError, PromotionRefusedError


class Stage(StrEnum):
    CANDIDATE = "candidate"
    PRODUCTION = "production"
    ARCHIVED = "archived"


@dataclass(frozen=True)
class StageChange:
    """One entry of a model's stage history."""

    at: datetime
    action: str
    """promote, rollback or adopt (the registry pinned the version it served before stages were recorded)."""
    version: str
    previous: str | None
    forced: bool = False
    note: str = ""


@dataclass(frozen=True)
class ModelStages:
    """Stages of the versions of one model.

    production_history: the versions that were production, oldest first; the last one is production now.
        A rollback goes back one entry.
    recorded: False when nothing is stored yet (a registry from before stages): the latest version serves.
    """

    versions: tuple[str, ...]
    production_history: tuple[str, ...] = ()
    archived: frozenset[str] = frozenset()
    changes: tuple[StageChange, ...] = ()
    recorded: bool = True

    @property
    def production(self) -> str | None:
        return self.production_history[-1] if self.production_history else None

    def stage_of(self, version: str) -> Stage:
        if version == self.production:
            return Stage.PRODUCTION
        if version in self.archived:
            return Stage.ARCHIVED
        return Stage.CANDIDATE

    def candidates(self) -> list[str]:
        return [v for v in self.versions if self.stage_of(v) is Stage.CANDIDATE]

    def promote(self, version: str, at: datetime, *, forced: bool = False, note: str = "") -> "ModelStages":
        """`version` becomes production; the one it replaces is archived."""
        self._require_known(version)
        previous = self.production
        if version == previous:
            raise PromotionRefusedError(f"{version} is already production")
        archived = (self.archived | {previous}) - {version} if previous else self.archived - {version}
        return replace(
            self,
            production_history=(*self.production_history, version),
            archived=frozenset(archived),
            changes=(*self.changes, StageChange(at, "promote", version, previous, forced, note)),
            recorded=True,
        )

    def adopt(self, version: str, at: datetime) -> "ModelStages":
        """Record `version` as production without a gate: what an unrecorded registry already served."""
        self._require_known(version)
        return replace(
            self,
            production_history=(version,),
            changes=(*self.changes, StageChange(at, "adopt", version, None)),
            recorded=True,
        )

    def rollback(self, at: datetime) -> "ModelStages":
        """Production goes back to the version that was production before it; the current one is archived."""
        current = self.production
        if current is None:
            raise PromotionRefusedError("no version is production, so there is nothing to roll back")
        history = list(self.production_history[:-1])
        # a version deleted from disk since it served cannot come back: skip it
        while history and (history[-1] not in self.versions or history[-1] == current):
            history.pop()
        if not history:
            raise PromotionRefusedError(
                f"no version was production before {current}: nothing to roll back to"
            )
        target = history[-1]
        return replace(
            self,
            production_history=tuple(history),
            archived=frozenset((self.archived | {current}) - {target}),
            changes=(*self.changes, StageChange(at, "rollback", target, current)),
            recorded=True,
        )

    def _require_known(self, version: str) -> None:
        if version not in self.versions:
            raise NotFoundError(f"no version {version!r}; have {list(self.versions)}")


@dataclass(frozen=True)
class GateResult:
    """The promotion gate's comparison of a candidate with production on the same held-out normal windows."""

    passed: bool
    reason: str
    windows: int = 0
    candidate_false_alarm_rate: float | None = None
    production_false_alarm_rate: float | None = None
    candidate_only_alarms: int = 0
    """Windows where the candidate alarms and production does not."""
    production_only_alarms: int = 0
    p_value: float | None = None
    """One-sided exact McNemar test that the candidate alarms more often than production."""
