"""Access control: which key has which role, the role each route needs, and per-key rate limits.

Three ways to run, from the settings:
- no key configured: the API is open (the embedded default on a workstation);
- only `api_key` (the original single key): it is an admin key and only writes (operator and admin routes)
  need it, reads stay open;
- `api_keys` (SHA-256 digests of keys, each with a role): every route except /health needs a key whose role
  allows it, and `api_key`, if also set, is one more admin key.

Each key has a name, the actor its incident actions are recorded under: the `name` of its api_keys entry,
or else `key-` and the first 12 hex digits of its digest (the single `api_key` too).

Keys are compared by digest only, so neither the settings nor memory hold a key the server could leak. Every
key gets `api_rate_limit` requests; a client sending wrong keys gets `api_auth_failure_limit` tries and then a
429 until the window passes, so keys cannot be guessed at speed. Limits are kept per process: with
`plantwatch serve --workers N` a key may make N times as many requests.

A route states what it needs with a dependency, e.g. `_: OperatorDep` as a parameter or
`dependencies=[role_dependency(Role.OPERATOR)]` on the route or router. The OpenAPI document lists the role
as the key scheme's role name (OpenAPI 3.1 allows role names in a non-OAuth requirement).
"""

import hmac
import math
import threading
import time
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Request, Security
from fastapi.security import APIKeyHeader
from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from limits.strategies import SlidingWindowCounterRateLimiter

from plantwatch.domain.access import Role, default_key_name, hash_api_key
from plantwatch.domain.errors import ForbiddenError, RateLimitedError, UnauthorizedError
from plantwatch.entrypoints.api.dependencies import container_of
from plantwatch.settings import ApiKeyGrant, Settings

# A security scheme rather than a plain header parameter, so the OpenAPI document (and the docs page's
# Authorize button) shows which endpoints need it; auto_error=False leaves the 401 to the role check.
API_KEY_HEADER = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="Needed when the server has API keys set"
)


@dataclass(frozen=True)
class Caller:
    """Who made a request: their role, the digest of their key and the key's name (both None when no key
    was needed)."""

    role: Role
    key_digest: str | None
    name: str | None = None


def _grant(digest: str, entry: Role | ApiKeyGrant) -> ApiKeyGrant:
    if isinstance(entry, ApiKeyGrant):
        return entry
    return ApiKeyGrant(role=entry, name=default_key_name(digest))


class AccessControl:
    """The key book and the rate limiters of one API process."""

    def __init__(self, settings: Settings) -> None:
        self.grants_by_digest: dict[str, ApiKeyGrant] = {
            digest: _grant(digest, entry) for digest, entry in settings.api_keys.items()
        }
        if settings.api_key:
            single = hash_api_key(settings.api_key)
            self.grants_by_digest[single] = _grant(single, Role.ADMIN)
        self.keys_configured = bool(self.grants_by_digest)
        # with only the original single key, reads stay open as they always were and writes need the key
        self.has_roles = bool(settings.api_keys)
        self.lowest_guarded = Role.VIEWER if self.has_roles else Role.OPERATOR
        self._limiter = SlidingWindowCounterRateLimiter(MemoryStorage())
        self._per_key: RateLimitItem = parse(settings.api_rate_limit)
        self._per_failing_client: RateLimitItem = parse(settings.api_auth_failure_limit)

    def guards(self, role: Role) -> bool:
        """Whether a route needing `role` needs a key in this configuration."""
        return self.keys_configured and role.rank >= self.lowest_guarded.rank

    def check(self, needed: Role, key: str | None, client: str) -> Caller:
        """The caller of a route needing `needed`; raises 401, 403 or 429 as a domain error."""
        if not self.guards(needed):
            return Caller(role=Role.ADMIN, key_digest=None)
        failing = ("auth-failures", client)
        if key is None:
            raise UnauthorizedError("a valid X-API-Key header is needed for this endpoint")
        if not self._limiter.test(self._per_failing_client, *failing):
            raise RateLimitedError(
                "too many wrong keys from this client", self._retry_after(self._per_failing_client, failing)
            )
        digest = hash_api_key(key)
        grant = self._grant_of(digest)
        if grant is None:
            self._limiter.hit(self._per_failing_client, *failing)
            raise UnauthorizedError("a valid X-API-Key header is needed for this endpoint")
        per_key = ("key", digest)
        if not self._limiter.hit(self._per_key, *per_key):
            raise RateLimitedError(
                "too many requests with this key", self._retry_after(self._per_key, per_key)
            )
        if not grant.role.allows(needed):
            raise ForbiddenError(
                f"this endpoint needs the {needed.value} role; the key has {grant.role.value}"
            )
        return Caller(role=grant.role, key_digest=digest, name=grant.name)

    def _grant_of(self, digest: str) -> ApiKeyGrant | None:
        # constant-time over every configured digest, so timing tells nothing about how close a guess was
        found = None
        for known, grant in self.grants_by_digest.items():
            if hmac.compare_digest(known, digest):
                found = grant
        return found

    def _retry_after(self, item: RateLimitItem, identifiers: tuple[str, str]) -> int:
        reset_at = self._limiter.get_window_stats(item, *identifiers).reset_time
        return max(1, math.ceil(reset_at - time.time()))


_install_lock = threading.Lock()


def get_access(request: Request) -> AccessControl:
    """The app's access control; an app made of routers alone gets one from its container's settings."""
    access: AccessControl | None = getattr(request.app.state, "access", None)
    if access is None:
        with _install_lock:
            access = getattr(request.app.state, "access", None)
            if access is None:
                access = AccessControl(container_of(request).settings)
                request.app.state.access = access
    return access


class RoleRequirement:
    """A dependency that lets a request through when its key's role allows `role` (or no key is needed)."""

    def __init__(self, role: Role) -> None:
        self.role = role

    async def __call__(
        self, request: Request, x_api_key: Annotated[str | None, Security(API_KEY_HEADER)]
    ) -> Caller:
        # async though it never awaits: a plain `def` would cost every guarded request a thread hand-over
        client = request.client.host if request.client else "unknown"
        caller = get_access(request).check(self.role, x_api_key, client)
        request.state.caller = caller
        return caller


_REQUIREMENTS = {role: RoleRequirement(role) for role in Role}


def requires(role: Role) -> RoleRequirement:
    """The dependency for `role`; one instance per role, so FastAPI runs it once per request."""
    return _REQUIREMENTS[role]


def role_dependency(role: Role) -> Any:
    """`Security(...)` for `role`: the check, with the role named in the route's OpenAPI requirement."""
    return Security(requires(role), scopes=[role.value])


ViewerDep = Annotated[Caller, role_dependency(Role.VIEWER)]
OperatorDep = Annotated[Caller, role_dependency(Role.OPERATOR)]
AdminDep = Annotated[Caller, role_dependency(Role.ADMIN)]
