"""FastAPI dependencies: the process's Container, its page cache, a module path parameter, and time bounds
in plant time.

Role checks live in access.py (ViewerDep, OperatorDep, AdminDep)."""

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Path, Request

from plantwatch.adapters.modules.catalog import module_config
from plantwatch.adapters.wire import to_plant_time
from plantwatch.bootstrap import Container
from plantwatch.domain.errors import InvalidInputError
from plantwatch.domain.modules import Module, known_modules, parse_module
from plantwatch.entrypoints.api.page_cache import PageCache


def container_of(request: Request) -> Container:
    container: Container | None = getattr(request.app.state, "container", None)
    if container is None:
        raise RuntimeError("the app has no container: it is built in the lifespan, use the app as a context")
    return container


# The dependencies below are `async def` though they never await: FastAPI runs a plain `def` dependency on
# the thread pool, a hand-over that cost more CPU than a cached page itself (five of them per request).
async def get_container(request: Request) -> Container:
    return container_of(request)


ContainerDep = Annotated[Container, Depends(get_container)]


async def get_page_cache(request: Request) -> PageCache:
    cache: PageCache = request.app.state.page_cache
    return cache


PageCacheDep = Annotated[PageCache, Depends(get_page_cache)]


# Documented as an enum so clients (and schema-driven fuzzers) see the valid modules, but validated here
# rather than by FastAPI, so an unknown module is a 404 like any unknown resource, not a 422. The app's
# OpenAPI document replaces the seed modules listed here by the modules it serves (api/app.py).
MODULE_SCHEMA: dict[str, Any] = {"enum": [module.value for module in Module]}


def module_or_404(module: str) -> Module:
    """The module named `module`; UnknownModuleError (404) names the valid ones."""
    return parse_module(module)


async def module_from_path(
    module: Annotated[
        str, Path(description="A configured module (GET /modules)", json_schema_extra=MODULE_SCHEMA)
    ],
) -> Module:
    return module_or_404(module)


ModuleDep = Annotated[Module, Depends(module_from_path)]


def plant_time(value: datetime | None, field: str, module: Module | None = None) -> datetime | None:
    """A time bound (`since`, `until`) in the plant local time the store keeps: as sent when it has no
    offset, else converted to `module`'s time zone. A query over every module converts it when all modules
    share one zone; otherwise an offset is ambiguous there and is refused (422 naming `field`)."""
    if value is None or value.tzinfo is None:
        return value
    modules: Sequence[Module] = [module] if module is not None else known_modules()
    zones = {m.value: module_config(m).timezone for m in modules}
    if len(set(zones.values())) > 1:
        listed = ", ".join(f"{name} {zone}" for name, zone in sorted(zones.items()))
        raise InvalidInputError(
            f"{field}: a time with an offset needs a module here, since the modules keep different time "
            f"zones ({listed}); or send plant local time without an offset",
            field=field,
        )
    return to_plant_time(value, module_config(modules[0]).zone, field)
