"""The composition root: the one place that builds adapters from Settings (the store, the model registry,
detectors, the chatbot, the MQTT publisher) for the API, the worker and the CLI.

Adapters take what they need as arguments; nothing below this module reads Settings.
"""

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, text

from plantwatch.adapters.broker.publisher import ReadingPublisher
from plantwatch.adapters.chatbot.embedding import shared_embedding_classifier
from plantwatch.adapters.chatbot.llm import OpenAICompatibleRephraser
from plantwatch.adapters.detectors import WindowDetector, build_detector
from plantwatch.adapters.feed import AnomalyFeed
from plantwatch.adapters.modules.catalog import ModuleCatalog, activate_catalog, load_catalog, module_config
from plantwatch.adapters.notify import IncidentTopicNotifier, WebhookNotifier
from plantwatch.adapters.registry import FileModelRegistry
from plantwatch.adapters.storage.drift_events import SqlDriftEventStore
from plantwatch.adapters.storage.engine import create_engine_from_url, create_incident_schema, create_schema
from plantwatch.adapters.storage.read_cache import RevisionCachedRepository
from plantwatch.adapters.storage.sql_incidents import SqlIncidentRepository
from plantwatch.adapters.storage.sql_repository import SqlAnomalyRepository
from plantwatch.domain.drift import DriftLevels
from plantwatch.domain.errors import ModelUnavailableError
from plantwatch.domain.incidents import IncidentPolicy
from plantwatch.domain.modules import Module, known_modules
from plantwatch.domain.ports import (
    MQTT_TARGET,
    AnomalyRepository,
    DriftEventStore,
    IncidentRepository,
    ModelCard,
    ModelRegistry,
    NotificationOutbox,
    TrainedModel,
)
from plantwatch.services.chatbot import (
    ChatbotService,
    CombinedIntentClassifier,
    RuleBasedIntentClassifier,
    TimeAnchor,
)
from plantwatch.services.conformance import changed_columns
from plantwatch.services.drift import DriftMonitor
from plantwatch.services.incidents import IncidentTracking
from plantwatch.services.ingest import ReadingContext
from plantwatch.services.notifications import NotificationDispatcher, RetryPolicy
from plantwatch.services.serving import ProductionModels
from plantwatch.settings import Settings

log = logging.getLogger(__name__)


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
    check_database: Callable[[], None] = _database_reachable
    """Raises when the store cannot be reached."""
    context: ReadingContext = field(default_factory=ReadingContext)
    feed: AnomalyFeed = field(default_factory=AnomalyFeed)
    engine: Engine | None = None
    registry: ModelRegistry | None = None
    """Where the models come from, for listing versions and stages (None: only `models` is known)."""
    served: ProductionModels | None = None
    """Keeps `models` on the production versions (hot reload); None: `models` stays as given."""
    drift: DriftMonitor = field(default_factory=DriftMonitor)
    drift_events: DriftEventStore | None = None
    incidents: IncidentTracking | None = None
    """Where ingest groups anomalies into incidents; None in tests that need none."""
    outbox: NotificationOutbox | None = None
    """The notification outbox a dispatcher sends from (the incident store, in the real wiring)."""

    def incident_repository(self) -> IncidentRepository:
        if self.incidents is None:
            raise RuntimeError("this container tracks no incidents: give it an IncidentTracking")
        return self.incidents.repository

    modules: list[Module] = field(default_factory=lambda: list(Module))
    """The modules served: the configured ones (the seed modules when not built from a catalog)."""

    def model(self, module: Module) -> TrainedModel:
        try:
            return self.models[module]
        except KeyError:
            raise ModelUnavailableError(self.model_problem(module)) from None

    def model_problem(self, module: Module) -> str:
        """Why `module` has no model, and what to run about it."""
        return self.model_problems.get(module) or missing_model_message(self.settings, module)

    def model_expected(self, module: Module) -> bool:
        """Whether a missing model of `module` is a problem: for a seed module always, for another module
        only when it has one that failed to load (one never trained is simply not in service yet)."""
        if module in self.models or module in Module:
            return True
        problem = self.model_problems.get(module)
        return problem is not None and problem != missing_model_message(self.settings, module)

    def cards(self) -> list[ModelCard]:
        return [self.models[m].card for m in self.modules if m in self.models]

    def close(self) -> None:
        if self.served is not None:
            self.served.stop()
        if self.engine is not None:
            self.engine.dispose()


def missing_model_message(settings: Settings, module: Module) -> str:
    name = settings.model_for(module)
    return (
        f"no trained {name} model for the {module.value} module; "
        f"run `plantwatch train {module.value} --model {name}` (or `plantwatch run`)"
    )


def production_models(
    registry: ModelRegistry, settings: Settings, modules: list[Module] | None = None
) -> ProductionModels:
    """The production version of each module's configured model, loaded; `.problems` says why one has none."""
    served = ProductionModels(
        registry,
        {module: settings.model_for(module) for module in modules or known_modules()},
        lambda module: missing_model_message(settings, module),
        unfit=configuration_changed,
    )
    served.refresh()
    for problem in served.problems.values():
        log.warning("%s", problem)
    return served


def configuration_changed(trained: TrainedModel) -> str | None:
    """Why a model must not serve: its module's configuration changed since it was trained (columns named)."""
    card = trained.card
    changed = changed_columns(card, module_config(card.module).snapshot(card.feature_names))
    if not changed:
        return None
    return (
        f"the {card.module.value} model {card.model_name} {card.version} was trained on another "
        f"configuration of the module (columns {changed} changed since); retrain: "
        f"`plantwatch train {card.module.value} --data FILE`"
    )


def drift_monitor(settings: Settings, events: DriftEventStore | None) -> DriftMonitor:
    levels = DriftLevels(
        psi=settings.drift_psi_warning,
        out_of_range_share=settings.drift_out_of_range_warning,
        min_readings=settings.drift_min_readings,
    )
    return DriftMonitor(levels, settings.drift_window_readings, events)


def module_catalog(settings: Settings) -> ModuleCatalog:
    """The built-in module configurations and settings.modules_dir's, made the process's modules."""
    return activate_catalog(load_catalog(settings.modules_dir))


def model_registry(settings: Settings) -> FileModelRegistry:
    """The file registry at settings.models_dir; loaded detectors run on settings.device."""
    return FileModelRegistry(settings.models_dir, device=settings.device)


def new_detector(settings: Settings, model: str, **hyper: Any) -> WindowDetector:
    """A fresh detector from the catalog, seeded and placed as the settings say; `hyper` overrides."""
    return build_detector(model, **{"seed": settings.seed, "device": settings.device, **hyper})


def reading_publisher(settings: Settings, client_id: str | None = None) -> ReadingPublisher:
    """An MQTT publisher of reading batches to the broker and topic prefix in the settings."""
    password = settings.mqtt_password.get_secret_value() if settings.mqtt_password else None
    return ReadingPublisher(
        settings.mqtt_host,
        settings.mqtt_port,
        settings.mqtt_topic_prefix,
        client_id,
        username=settings.mqtt_username,
        password=password,
    )


def sql_store(settings: Settings) -> tuple[Engine, SqlAnomalyRepository]:
    engine = create_engine_from_url(settings.database_url)
    create_schema(engine)
    return engine, SqlAnomalyRepository(engine)


def incident_policies(settings: Settings) -> dict[Module, IncidentPolicy]:
    return {
        module: IncidentPolicy(
            gap=settings.incident_gap_for(module), on_delay_windows=settings.incident_on_delay_windows
        )
        for module in known_modules()
    }


def notify_targets(settings: Settings) -> list[str]:
    """Where new and escalated incidents go: the webhooks, and the MQTT topic when enabled."""
    return [*settings.incident_webhooks, *([MQTT_TARGET] if settings.incident_mqtt else [])]


def incident_store(settings: Settings, engine: Engine) -> tuple[IncidentTracking, SqlIncidentRepository]:
    """Incident tracking on the SQL store's engine, and the store (also the notification outbox)."""
    create_incident_schema(engine)
    store = SqlIncidentRepository(engine)
    return IncidentTracking(store, incident_policies(settings), notify_targets(settings)), store


def notification_dispatcher(settings: Settings, outbox: NotificationOutbox) -> NotificationDispatcher:
    """Sends the outbox to webhooks and, when enabled, the MQTT topic, with the settings' back-off."""
    mqtt = (
        IncidentTopicNotifier(settings.mqtt_host, settings.mqtt_port, settings.mqtt_topic_prefix)
        if settings.incident_mqtt
        else None
    )
    retry = RetryPolicy(
        first_delay=timedelta(seconds=settings.notify_first_retry_s),
        max_delay=timedelta(seconds=settings.notify_max_retry_s),
        max_attempts=settings.notify_max_attempts,
    )
    return NotificationDispatcher(outbox, WebhookNotifier(settings.webhook_timeout_s), mqtt, retry)


def build_container(settings: Settings, modules: list[Module] | None = None) -> Container:
    """The real adapters: the SQL store at settings.database_url, the file registry at settings.models_dir;
    each module's production model, kept current by `container.served.watch()` (the API and workers start
    it). The modules are the built-in configurations and settings.modules_dir's."""
    catalog = module_catalog(settings)
    engine, repository = sql_store(settings)
    incidents, outbox = incident_store(settings, engine)
    registry = model_registry(settings)
    served = production_models(registry, settings, modules)
    drift_events = SqlDriftEventStore(engine)

    def check_database() -> None:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    return Container(
        settings=settings,
        repository=RevisionCachedRepository(repository),
        models=served.models,
        model_problems=served.problems,
        check_database=check_database,
        engine=engine,
        incidents=incidents,
        outbox=outbox,
        registry=registry,
        served=served,
        drift=drift_monitor(settings, drift_events),
        drift_events=drift_events,
        modules=[Module(name) for name in catalog.names],
    )


def build_chatbot_service(
    settings: Settings, feature_names: Mapping[Module, Sequence[str]]
) -> ChatbotService:
    """A service answering with the keyword rules at once; with settings.chatbot_embeddings, a background
    thread adds the embedding classifier once it is loaded."""
    rephraser = None
    if settings.llm_url:
        rephraser = OpenAICompatibleRephraser(
            settings.llm_url, settings.llm_model, settings.llm_api_key, settings.llm_timeout_s
        )
    service = ChatbotService(
        RuleBasedIntentClassifier(),
        feature_names,
        anchor=TimeAnchor(settings.chatbot_time_anchor),
        rephraser=rephraser,
    )
    service.warm_up()
    if settings.chatbot_embeddings:
        threading.Thread(
            target=enable_embeddings, args=(service,), name="chatbot-embeddings", daemon=True
        ).start()
    return service


def enable_embeddings(service: ChatbotService) -> bool:
    """Load the embedding classifier (once per process) and switch `service` to rules + embeddings."""
    try:
        model_classifier = shared_embedding_classifier()
    except Exception:  # a broken model install must not take the chatbot down: the rules still answer
        log.exception("could not load the chatbot's embedding model; answering with keyword rules only")
        return False
    service.classifier = CombinedIntentClassifier(RuleBasedIntentClassifier(), model_classifier)
    log.info("chatbot intent matching uses the embedding model")
    return True
