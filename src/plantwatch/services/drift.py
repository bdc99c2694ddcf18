"""Live drift per module: the last `window` readings scored, measured against the served model's training
profile after every batch; crossing a level stores a DriftEvent once (until the drift goes away again, or
another version serves), which is what an incident can be made of.

Each process (the API, every worker) watches the readings it scores itself.
"""

import logging
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from plantwatch.domain.drift import DriftEvent, DriftLevels, DriftReport, DriftWindow, TrainingProfile
from plantwatch.domain.frames import SensorFrame
from plantwatch.domain.modules import Module
from plantwatch.domain.ports import DriftEventStore, TrainedModel

log = logging.getLogger(__name__)

DEFAULT_WINDOW = 1000
DRIFT_EVENT_NAMESPACE = uuid.UUID("2b7d9c3e-51a4-4f0e-8d6b-9e3f0a1c7b58")


def _utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class DriftMonitor:
    """Drift of the last `window` readings of each module; thread-safe (the API scores in a thread pool)."""

    def __init__(
        self,
        levels: DriftLevels | None = None,
        window: int = DEFAULT_WINDOW,
        events: DriftEventStore | None = None,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        if window < 1:
            raise ValueError("the drift window must hold at least 1 reading")
        self.levels = levels or DriftLevels()
        self.window = window
        self.events = events
        self.clock = clock
        self._windows: dict[Module, DriftWindow] = {}
        self._warned: dict[Module, str] = {}
        """The model version each module has an open warning for."""
        self._lock = threading.Lock()

    def observe(self, frame: SensorFrame, model: TrainedModel) -> DriftEvent | None:
        """Add scored readings; returns the DriftEvent raised now, if the drift just crossed a level."""
        if model.profile is None or len(frame) == 0:
            return None
        values = frame.values[model.profile.feature_names].to_numpy(dtype=np.float64)
        timestamps = list(pd.DatetimeIndex(frame.values.index).to_pydatetime())
        with self._lock:
            window = self._window_for(frame.module, model.profile)
            window.add(values, timestamps)
            event = self._update_warning(frame.module, model, window.report(self.levels))
        if event is not None:
            log.warning(
                "drift warning for %s (%s %s): %s",
                event.module.value,
                event.model_name,
                event.model_version,
                ", ".join(event.features),
            )
            if self.events is not None:
                try:
                    self.events.add_drift_event(event)
                except Exception:  # the readings are stored already; a lost warning must not fail them
                    log.exception("could not store the drift event %s", event.id)
        return event

    def report(self, module: Module, model: TrainedModel) -> DriftReport | None:
        """Drift of the readings seen so far against `model` (None without a profile)."""
        if model.profile is None:
            return None
        with self._lock:
            return self._window_for(module, model.profile).report(self.levels)

    def warning_open(self, module: Module) -> bool:
        with self._lock:
            return module in self._warned

    def _window_for(self, module: Module, profile: TrainingProfile) -> DriftWindow:
        """The module's window measured against `profile`: after a model swap, the readings seen so far are
        measured again against the new profile (when it has the same features)."""
        window = self._windows.get(module)
        if window is not None and (window.profile is profile or window.profile == profile):
            return window
        rebased = DriftWindow(profile, self.window)
        if window is not None and window.profile.feature_names == profile.feature_names:
            rebased.add(window.values, window.timestamps)
        self._windows[module] = rebased
        return rebased

    def _update_warning(self, module: Module, model: TrainedModel, report: DriftReport) -> DriftEvent | None:
        version = model.card.version
        if report.readings < self.levels.min_readings:
            return None
        if not report.warning:
            self._warned.pop(module, None)
            return None
        if self._warned.get(module) == version:
            return None
        self._warned[module] = version
        return DriftEvent(
            # the same window crossing a level for the same version is the same event: re-scoring the same
            # readings (a redelivered message, `plantwatch run` again) stores it once
            id=str(
                uuid.uuid5(
                    DRIFT_EVENT_NAMESPACE,
                    f"{module.value}|{model.card.model_name}|{version}|{report.first_reading}|{report.last_reading}",
                )
            ),
            module=module,
            model_name=model.card.model_name,
            model_version=version,
            raised_at=self.clock(),
            first_reading=report.first_reading,
            last_reading=report.last_reading,
            readings=report.readings,
            max_psi=report.max_psi,
            max_out_of_range_share=report.max_out_of_range_share,
            features=tuple(report.drifted_features),
        )
