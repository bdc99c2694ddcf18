"""FastAPI dependencies: the process's Container, the API key check, a module path parameter."""

import secrets
from typing import Annotated, Any

from fastapi import Depends, Path, Request, Security
from fastapi.security import APIKeyHeader

from plantwatch.bootstrap import Container
from plantwatch.domain.errors import UnauthorizedError
from plantwatch.domain.modules import Module, parse_module


def get_container(request: Request) -> Container:
    container: Container | None = getattr(request.app.state, "container", None)
    if container is None:
        raise RuntimeError("the app has no container: it is built in the lifespan, use the app as a context")
    return container


ContainerDep = Annotated[Container, Depends(get_container)]


# A security scheme rather than a plain header parameter, so the OpenAPI document (and the docs page's
# Authorize button) shows which endpoints need it; auto_error=False leaves the 401 to require_api_key.
API_KEY_HEADER = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="Needed when the server has an API key set"
)


def require_api_key(
    container: ContainerDep, x_api_key: Annotated[str | None, Security(API_KEY_HEADER)]
) -> None:
    expected = container.settings.api_key
    if expected is None:
        return
    if x_api_key is None or not secrets.compare_digest(x_api_key.encode(), expected.encode()):
        raise UnauthorizedError("a valid X-API-Key header is needed for this endpoint")


ApiKeyDep = Annotated[None, Depends(require_api_key)]


# Documented as an enum so clients (and schema-driven fuzzers) see the valid modules, but validated here
# rather than by FastAPI, so an unknown module is a 404 like any unknown resource, not a 422. The app's
# OpenAPI document replaces the seed modules listed here by the modules it serves (api/app.py).
MODULE_SCHEMA: dict[str, Any] = {"enum": [module.value for module in Module]}


def module_or_404(module: str) -> Module:
    """The module named `module`; UnknownModuleError (404) names the valid ones."""
    return parse_module(module)


def module_from_path(
    module: Annotated[
        str, Path(description="A configured module (GET /modules)", json_schema_extra=MODULE_SCHEMA)
    ],
) -> Module:
    return module_or_404(module)


ModuleDep = Annotated[Module, Depends(module_from_path)]
