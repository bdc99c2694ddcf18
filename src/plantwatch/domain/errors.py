"""Domain errors. The API maps each to one HTTP status in a single handler."""

from collections.abc import Iterable
from dataclasses import dataclass


class PlantwatchError(Exception):
    """Base of every error the domain and services raise on purpose."""


class NotFoundError(PlantwatchError):
    """A thing asked for by id or name does not exist (HTTP 404)."""


class UnknownModuleError(NotFoundError):
    """A module name that is not one of the configured modules (HTTP 404)."""


class UnauthorizedError(PlantwatchError):
    """A protected endpoint was called without the right X-API-Key (HTTP 401)."""


class ForbiddenError(PlantwatchError):
    """A valid key whose role does not allow the endpoint, or that may not do what a field asks (HTTP 403);
    `field` names that field."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class RateLimitedError(PlantwatchError):
    """Too many requests from one key or client; `retry_after_s` says when to try again (HTTP 429)."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class StoreUnavailableError(PlantwatchError):
    """The anomaly store cannot be reached or is not answering (HTTP 503). The message stays generic: the
    driver's error, with hosts and users in it, goes to the log only."""


class ModelUnavailableError(PlantwatchError):
    """A module has no loaded model, so its readings cannot be scored (HTTP 503)."""


class InvalidInputError(PlantwatchError):
    """Input failed validation; `field` names what was wrong (HTTP 422)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class FeatureMismatchError(InvalidInputError):
    """Readings or a model file do not carry the features a model was trained on."""


def require_same_features(have: Iterable[str], want: Iterable[str], subject: str) -> None:
    """Raise FeatureMismatchError unless `have` and `want` name the same features, in any order.

    The message lists, after `subject`, the missing and the unexpected features; the field names the first.
    """
    have_set, want_set = set(have), set(want)
    if have_set == want_set:
        return
    missing, extra = sorted(want_set - have_set), sorted(have_set - want_set)
    parts = []
    if missing:
        parts.append(f"missing features {missing}")
    if extra:
        parts.append(f"unexpected features {extra}")
    raise FeatureMismatchError(f"{subject}: " + "; ".join(parts), field=(missing or extra)[0])


class InvalidTransitionError(PlantwatchError):
    """An incident's state does not allow the action asked for (HTTP 409)."""

    def __init__(self, incident_id: str, state: str, action: str) -> None:
        super().__init__(f"incident {incident_id!r} is {state}: {action} is not allowed in that state")
        self.incident_id, self.state, self.action = incident_id, state, action


class ConflictError(PlantwatchError):
    """The request contradicts the current state of a resource (HTTP 409)."""


class PromotionRefusedError(ConflictError):
    """A model version may not become production as asked (worse on false alarms, unknown stage, ...)."""


@dataclass
class ModuleConfigError(PlantwatchError):
    """A module configuration is not valid. Names the file and the field (e.g. `features[2].codes`)."""

    path: str
    message: str
    field: str | None = None

    def __post_init__(self) -> None:
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.path if self.field is None else f"{self.path}, field {self.field}"
        return f"{where}: {self.message}"


class ModelIntegrityError(PlantwatchError):
    """A model file's checksum does not match its manifest."""


@dataclass
class DataFileError(PlantwatchError):
    """A data file could not be loaded. Names the file, and the row and column where known.

    `row` is the 1-based line number in the file (the header is line 1).
    """

    path: str
    message: str
    row: int | None = None
    column: str | None = None

    def __post_init__(self) -> None:
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.path
        if self.row is not None:
            where += f", row {self.row}"
        if self.column is not None:
            where += f", column {self.column!r}"
        return f"{where}: {self.message}"
