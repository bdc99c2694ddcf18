"""Serve each module's production version, and follow promotions and rollbacks without a restart.

`ProductionModels` owns the dict of models the API and the workers score with. `refresh()` reads the
registry's stages and, for a module whose production version changed, loads the new version first and
then replaces the dict entry in one assignment. A batch takes its model from the dict once, when it starts,
so every batch is scored by exactly one version: the one before the swap or the one after. Nothing is
dropped while the new version loads, and nothing is scored twice (the swap does not touch readings). A
version that fails to load (a failed checksum) leaves the served one in place.
"""

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from plantwatch.domain.errors import ModelIntegrityError, NotFoundError
from plantwatch.domain.modules import Module
from plantwatch.domain.ports import ModelRegistry, TrainedModel

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelSwap:
    module: Module
    model_name: str
    previous: str | None
    current: str


class ProductionModels:
    """Keeps `models` on each module's production version of its configured model (`model_names`)."""

    def __init__(
        self,
        registry: ModelRegistry,
        model_names: Mapping[Module, str],
        missing_message: Callable[[Module], str],
        unfit: Callable[[TrainedModel], str | None] = lambda _model: None,
    ) -> None:
        """`unfit` says why a loaded version must not serve (e.g. its module configuration changed)."""
        self.registry = registry
        self.unfit = unfit
        self.model_names = dict(model_names)
        self.missing_message = missing_message
        self.models: dict[Module, TrainedModel] = {}
        self.problems: dict[Module, str] = {}
        self._refreshing = threading.Lock()
        self._stop = threading.Event()

    def refresh(self) -> list[ModelSwap]:
        """Load what changed since the last refresh; returns the swaps made."""
        swaps = []
        with self._refreshing:  # one refresh at a time, so two never load the same version
            for module, model_name in self.model_names.items():
                swap = self._refresh_module(module, model_name)
                if swap is not None:
                    swaps.append(swap)
        return swaps

    def _refresh_module(self, module: Module, model_name: str) -> ModelSwap | None:
        served = self.models.get(module)
        try:
            stages = self.registry.stages(module, model_name)
            version = stages.production
            if version is None:
                if served is None:
                    self.problems[module] = self._no_production(module, model_name, list(stages.versions))
                return None
            if served is not None and served.card.model_name == model_name and served.card.version == version:
                return None
            loaded = self.registry.load(module, model_name, version)
        except NotFoundError:
            if served is None:
                self.problems[module] = self.missing_message(module)
            return None
        except ModelIntegrityError as error:
            if served is None:
                self.problems[module] = f"the {module.value} model failed its integrity check: {error}"
            log.error("%s/%s: keeping the served version: %s", module.value, model_name, error)
            return None
        problem = self.unfit(loaded)
        if problem is not None:
            self.problems[module] = problem
            self.models.pop(module, None)
            log.error("%s", problem)
            return None
        self.models[module] = loaded
        self.problems.pop(module, None)
        previous = served.card.version if served is not None else None
        if served is not None:
            log.info("%s now serves %s %s (was %s)", module.value, model_name, version, previous)
        return ModelSwap(module, model_name, previous, version)

    def _no_production(self, module: Module, model_name: str, versions: list[str]) -> str:
        if not versions:
            return self.missing_message(module)
        return (
            f"no {module.value}/{model_name} version is in production; promote one of {versions} "
            f"with `plantwatch models promote {module.value} VERSION`"
        )

    def watch(self, interval_s: float) -> threading.Thread:
        """Refresh every `interval_s` seconds on a daemon thread until `stop()`."""

        def loop() -> None:
            while not self._stop.wait(interval_s):
                try:
                    self.refresh()
                except Exception:  # a bad registry read must not end hot reload for good
                    log.exception("refreshing the served models failed; trying again")

        thread = threading.Thread(target=loop, name="model-reload", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self._stop.set()
