"""The composition root: builds the adapters from Settings once, for the API, the worker and the CLI."""

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Engine, text

from plantwatch.domain.errors import ModelIntegrityError, NotFoundError, PlantwatchError
from plantwatch.domain.modules import Module
from plantwatch.domain.ports import AnomalyRepository, ModelCard, ModelRegistry, TrainedModel
from plantwatch.infrastructure.api.feed import AnomalyFeed
from plantwatch.infrastructure.registry import FileModelRegistry
from plantwatch.infrastructure.settings import Settings
from plantwatch.infrastructure.storage.engine import create_engine_from_url, create_schema
from plantwatch.infrastructure.storage.sql_repository import SqlAnomalyRepository
from plantwatch.services.ingest import ReadingContext

log = logging.getLogger(__name__)


class ModelUnavailableError(PlantwatchError):
    """A module has no loaded model, so its readings cannot be scored (HTTP 503)."""


def _database_reachable() -> None:
    """Health check of a store with nothing to reach (the in-memory fake)."""


@dataclass
class Container:
    """Everything a request or a worker needs, built once per process."""

    settings: Settings
    repository: AnomalyRepository
    models: dict[Module, TrainedModel]
    model_problems: dict[Module, str] = field(default_factory=dict)
    """Why a module has no model, e.g. none trained yet."""
    registry: ModelRegistry | None = None
    check_database: Callable[[], None] = _database_reachable
    """Raises when the store cannot be reached."""
    context: ReadingContext = field(default_factory=ReadingContext)
    feed: AnomalyFeed = field(default_factory=AnomalyFeed)
    engine: Engine | None = None

    def model(self, module: Module) -> TrainedModel:
        try:
            return self.models[module]
        except KeyError:
            raise ModelUnavailableError(self.model_problem(module)) from None

    def model_problem(self, module: Module) -> str:
        """Why `module` has no model, and what to run about it."""
        return self.model_problems.get(module) or missing_model_message(self.settings, module)

    def cards(self) -> list[ModelCard]:
        return [self.models[m].card for m in Module if m in self.models]

    def close(self) -> None:
        if self.engine is not None:
            self.engine.dispose()


def missing_model_message(settings: Settings, module: Module) -> str:
    name = settings.model_for(module)
    return (
        f"no trained {name} model for the {module.value} module; "
        f"run `plantwatch train {module.value} --model {name}` (or `plantwatch run`)"
    )


def load_models(
    registry: ModelRegistry, settings: Settings, modules: list[Module] | None = None
) -> tuple[dict[Module, TrainedModel], dict[Module, str]]:
    """The latest version of each module's configured model, and why a module has none."""
    models: dict[Module, TrainedModel] = {}
    problems: dict[Module, str] = {}
    for module in modules or list(Module):
        try:
            models[module] = registry.load(module, settings.model_for(module))
        except NotFoundError:
            problems[module] = missing_model_message(settings, module)
        except ModelIntegrityError as error:
            problems[module] = f"the {module.value} model failed its integrity check: {error}"
        if module in problems:
            log.warning("%s", problems[module])
    return models, problems


def sql_store(settings: Settings) -> tuple[Engine, SqlAnomalyRepository]:
    engine = create_engine_from_url(settings.database_url)
    create_schema(engine)
    return engine, SqlAnomalyRepository(engine)


def build_container(settings: Settings, modules: list[Module] | None = None) -> Container:
    """The real adapters: the SQL store at settings.database_url, the file registry at settings.models_dir."""
    engine, repository = sql_store(settings)
    registry = FileModelRegistry(settings.models_dir)
    models, problems = load_models(registry, settings, modules)

    def check_database() -> None:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    return Container(
        settings=settings,
        repository=repository,
        models=models,
        model_problems=problems,
        registry=registry,
        check_database=check_database,
        engine=engine,
    )
