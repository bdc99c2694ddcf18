"""Do readings, or the module's configuration now, fit what a model was trained on?

A model's card keeps the layout of the module configuration it was trained on (ModelCard.module_config).
Readings whose coded features (binary, categorical) carry a value outside the codes are refused, naming the
feature; a configuration whose features changed since training makes the model unfit to serve, naming the
columns that changed.
"""

from collections.abc import Mapping
from typing import Any

import numpy as np

from plantwatch.domain.errors import InvalidInputError
from plantwatch.domain.frames import SensorFrame
from plantwatch.domain.ports import ModelCard

# What of a feature's configuration a trained model depends on.
_FEATURE_KEYS = ("name", "column", "aliases", "unit", "kind", "codes")


def _features(snapshot: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    layout = snapshot.get("layout") or {}
    return {
        feature["name"]: {key: feature.get(key) for key in _FEATURE_KEYS}
        for feature in layout.get("features", [])
    }


def changed_columns(card: ModelCard, current: Mapping[str, Any]) -> list[str]:
    """Features whose configuration differs between the card's snapshot and `current` (a snapshot of the
    module's configuration now for the same features); none when the card predates snapshots."""
    if not card.module_config:
        return []
    trained, now = _features(card.module_config), _features(current)
    if not now:
        return sorted(trained)
    return sorted(name for name in set(trained) | set(now) if trained.get(name) != now.get(name))


def check_codes(frame: SensorFrame, card: ModelCard) -> None:
    """Refuse a reading whose coded feature is not one of its codes (InvalidInputError naming the feature)."""
    for name, feature in _features(card.module_config).items():
        codes = feature.get("codes")
        if not codes or name not in frame.values.columns:
            continue
        allowed = np.array(sorted(set(codes.values())), dtype=np.float64)
        column = frame.values[name].to_numpy(dtype=np.float64)
        bad = ~np.isin(column, allowed)
        if bad.any():
            position = int(np.argmax(bad))
            stamp = frame.values.index[position]
            raise InvalidInputError(
                f"values.{name}: {column[position]!r} at {stamp.isoformat()} is not one of the "
                f"{frame.module.value} module's codes for {name} ({codes})",
                field=f"values.{name}",
            )
