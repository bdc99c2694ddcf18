"""Model registry on the file system: models/<module>/<model>/<version>/ with a checksummed manifest.

A version folder holds the detector's own files (weights as a torch state_dict or .npy arrays, its scaler,
hyper-parameters and feature names as JSON), card.json (threshold, data hash, metrics, ...), the drift profile
of its training data (profile.json), its held-out validation readings (held_out.npz) and manifest.json with
the sha256 of every other file. Nothing is pickled. A version is written to a hidden temporary folder and
renamed into place, so a reader never sees half a model and two trainers never get the same version.

Stages (candidate, production, archived) are in models/<module>/<model>/stages.json beside the versions. It
is changed under an exclusive lock of the model folder and replaced in one rename, so a reader (the API or a
worker watching for a promotion) sees the old record or the new one, never half of one.
"""

import fcntl
import hashlib
import json
import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from plantwatch.adapters.detectors.catalog import DETECTORS
from plantwatch.domain.drift import TrainingProfile
from plantwatch.domain.errors import (
    InvalidInputError,
    ModelIntegrityError,
    NotFoundError,
    require_same_features,
)
from plantwatch.domain.lifecycle import ModelStages, StageChange
from plantwatch.domain.modules import Module, known_modules
from plantwatch.domain.ports import Detector, HeldOut, ModelCard, TrainedModel

CARD_FILE = "card.json"
MANIFEST_FILE = "manifest.json"
PROFILE_FILE = "profile.json"
HELD_OUT_FILE = "held_out.npz"
STAGES_FILE = "stages.json"
_VERSION = re.compile(r"^v(\d{4,})$")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_features(card: ModelCard, feature_names: Iterable[str]) -> None:
    """Refuse readings (or a model file) whose features are not exactly the ones the model was trained on."""
    require_same_features(
        (str(name) for name in feature_names),
        card.feature_names,
        f"features do not match {card.module.value}/{card.model_name} {card.version}",
    )


def _card_to_json(card: ModelCard, detector_name: str) -> dict[str, Any]:
    data = asdict(card)
    data["module"] = card.module.value
    data["created_at"] = card.created_at.isoformat()
    data["detector"] = detector_name
    return data


def _card_from_json(data: dict[str, Any]) -> tuple[ModelCard, str]:
    detector_name = str(data.pop("detector"))
    data["module"] = Module(data["module"])
    data["created_at"] = datetime.fromisoformat(data["created_at"])
    return ModelCard(**data), detector_name


def _stages_to_json(stages: ModelStages) -> dict[str, Any]:
    return {
        "production_history": list(stages.production_history),
        "archived": sorted(stages.archived),
        "changes": [{**asdict(change), "at": change.at.isoformat()} for change in stages.changes],
    }


def _stages_from_json(data: dict[str, Any], versions: tuple[str, ...]) -> ModelStages:
    return ModelStages(
        versions=versions,
        production_history=tuple(str(v) for v in data["production_history"]),
        archived=frozenset(str(v) for v in data["archived"]),
        changes=tuple(
            StageChange(**{**change, "at": datetime.fromisoformat(change["at"])})
            for change in data["changes"]
        ),
    )


class FileModelRegistry:
    """ModelRegistry under `root`; `detectors` maps the detector names written in cards to their classes;
    loaded detectors run on `device` ("auto": CUDA when there is one)."""

    def __init__(
        self, root: Path, detectors: Mapping[str, type[Detector]] | None = None, device: str = "auto"
    ) -> None:
        self.root = Path(root)
        self.device = device
        self.detectors: Mapping[str, type[Detector]] = detectors if detectors is not None else DETECTORS

    def model_dir(self, module: Module, model_name: str) -> Path:
        return self.root / module.value / model_name

    def versions(self, module: Module, model_name: str) -> list[str]:
        """Versions of one model, oldest first."""
        directory = self.model_dir(module, model_name)
        if not directory.is_dir():
            return []
        found = [
            (int(m.group(1)), p.name)
            for p in directory.iterdir()
            if p.is_dir() and (m := _VERSION.match(p.name))
        ]
        return [name for _, name in sorted(found)]

    def save(
        self,
        detector: Detector,
        card: ModelCard,
        profile: TrainingProfile | None = None,
        held_out: HeldOut | None = None,
    ) -> ModelCard:
        if detector.name not in self.detectors:
            raise InvalidInputError(
                f"detector {detector.name!r} is not in the registry catalog: {list(self.detectors)}",
                field="model",
            )
        verify_features(card, detector.feature_names)
        if profile is not None and profile.feature_names != list(card.feature_names):
            raise InvalidInputError("the drift profile's features differ from the card's", field="profile")
        if held_out is not None and list(held_out.feature_names) != list(card.feature_names):
            raise InvalidInputError("the held-out data's features differ from the card's", field="held_out")
        model_dir = self.model_dir(card.module, card.model_name)
        model_dir.mkdir(parents=True, exist_ok=True)
        staging = model_dir / f".staging-{uuid.uuid4().hex}"
        try:
            while True:
                version = self._next_version(card.module, card.model_name)
                saved = replace(card, version=version)
                self._write(staging, detector, saved, profile, held_out)
                try:
                    # rename fails when another trainer took this version first: take the next one
                    staging.rename(model_dir / version)
                    return saved
                except OSError:
                    if not (model_dir / version).exists():
                        raise
                    shutil.rmtree(staging)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def load(self, module: Module, model_name: str, version: str | None = None) -> TrainedModel:
        available = self.versions(module, model_name)
        if not available:
            raise NotFoundError(f"no {model_name!r} model for the {module.value} module under {self.root}")
        chosen = version or available[-1]
        if chosen not in available:
            raise NotFoundError(f"{module.value}/{model_name} has no version {chosen!r}; have {available}")
        directory = self.model_dir(module, model_name) / chosen
        self._verify_checksums(directory)
        card, detector_name = self._read_card(directory)
        try:
            detector_type = self.detectors[detector_name]
        except KeyError:
            raise ModelIntegrityError(
                f"{directory}: unknown detector {detector_name!r} in {CARD_FILE}"
            ) from None
        detector = detector_type.load(directory, device=self.device)
        if list(detector.feature_names) != list(card.feature_names):
            raise ModelIntegrityError(f"{directory}: detector features differ from the card's feature list")
        return TrainedModel(
            detector=detector,
            card=card,
            profile=self._read_profile(directory),
            held_out=self._read_held_out(directory, card.feature_names),
        )

    def stages(self, module: Module, model_name: str) -> ModelStages:
        versions = tuple(self.versions(module, model_name))
        path = self.model_dir(module, model_name) / STAGES_FILE
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            # a registry from before stages: the latest version is what was served, so it stays production
            return ModelStages(versions=versions, production_history=versions[-1:], recorded=False)
        except json.JSONDecodeError as error:
            raise ModelIntegrityError(f"{path}: stages cannot be read ({error})") from None
        try:
            return _stages_from_json(data, versions)
        except (KeyError, TypeError, ValueError) as error:
            raise ModelIntegrityError(f"{path}: stages cannot be read ({error!r})") from None

    def change_stages(
        self, module: Module, model_name: str, change: Callable[[ModelStages], ModelStages]
    ) -> ModelStages:
        model_dir = self.model_dir(module, model_name)
        if not self.versions(module, model_name):
            raise NotFoundError(f"no {model_name!r} model for the {module.value} module under {self.root}")
        with _exclusive(model_dir):
            current = self.stages(module, model_name)
            changed = change(current)
            if changed != current:
                staging = model_dir / f".stages-{uuid.uuid4().hex}.json"
                try:
                    staging.write_text(json.dumps(_stages_to_json(changed), indent=2))
                    os.replace(staging, model_dir / STAGES_FILE)
                finally:
                    staging.unlink(missing_ok=True)
            return changed

    def list_cards(self, module: Module | None = None) -> list[ModelCard]:
        """Cards by module (as configured), model name and version; read without checksum checks."""
        cards: list[ModelCard] = []
        for current in [module] if module is not None else known_modules():
            module_dir = self.root / current.value
            if not module_dir.is_dir():
                continue
            for model_dir in sorted(
                p for p in module_dir.iterdir() if p.is_dir() and not p.name.startswith(".")
            ):
                for version in self.versions(current, model_dir.name):
                    cards.append(self._read_card(model_dir / version)[0])
        return cards

    def _next_version(self, module: Module, model_name: str) -> str:
        existing = self.versions(module, model_name)
        last = int(existing[-1][1:]) if existing else 0
        return f"v{last + 1:04d}"

    def _write(
        self,
        directory: Path,
        detector: Detector,
        card: ModelCard,
        profile: TrainingProfile | None,
        held_out: HeldOut | None,
    ) -> None:
        directory.mkdir()
        detector.save(directory)
        (directory / CARD_FILE).write_text(json.dumps(_card_to_json(card, detector.name), indent=2))
        if profile is not None:
            (directory / PROFILE_FILE).write_text(json.dumps(profile.to_json(), indent=2))
        if held_out is not None:
            with (directory / HELD_OUT_FILE).open("wb") as handle:
                np.savez(
                    handle,
                    values=np.asarray(held_out.values, dtype=np.float64),
                    history=np.int64(held_out.history),
                    normal=np.asarray(held_out.normal, dtype=bool),
                )
        files = sorted(p for p in directory.rglob("*") if p.is_file())
        manifest = {
            "created_at": datetime.now(UTC).isoformat(),
            "files": {p.relative_to(directory).as_posix(): sha256_file(p) for p in files},
        }
        (directory / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2))

    def _verify_checksums(self, directory: Path) -> None:
        manifest_path = directory / MANIFEST_FILE
        try:
            files: dict[str, str] = json.loads(manifest_path.read_text())["files"]
        except FileNotFoundError:
            raise ModelIntegrityError(f"{manifest_path}: manifest is missing") from None
        except (json.JSONDecodeError, KeyError, TypeError) as error:
            raise ModelIntegrityError(f"{manifest_path}: manifest cannot be read ({error})") from None
        on_disk = {
            p.relative_to(directory).as_posix()
            for p in directory.rglob("*")
            if p.is_file() and p.name != MANIFEST_FILE
        }
        if on_disk != set(files):
            raise ModelIntegrityError(
                f"{directory}: files differ from the manifest: missing {sorted(set(files) - on_disk)}, "
                f"unlisted {sorted(on_disk - set(files))}"
            )
        for name, expected in files.items():
            if sha256_file(directory / name) != expected:
                raise ModelIntegrityError(f"{directory / name}: sha256 does not match the manifest")

    def _read_card(self, directory: Path) -> tuple[ModelCard, str]:
        path = directory / CARD_FILE
        try:
            return _card_from_json(json.loads(path.read_text()))
        except FileNotFoundError:
            raise ModelIntegrityError(f"{path}: model card is missing") from None
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
            raise ModelIntegrityError(f"{path}: model card cannot be read ({error})") from None

    def _read_profile(self, directory: Path) -> TrainingProfile | None:
        path = directory / PROFILE_FILE
        if not path.is_file():
            return None
        try:
            return TrainingProfile.from_json(json.loads(path.read_text()))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
            raise ModelIntegrityError(f"{path}: drift profile cannot be read ({error!r})") from None

    def _read_held_out(self, directory: Path, feature_names: list[str]) -> HeldOut | None:
        path = directory / HELD_OUT_FILE
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                return HeldOut(
                    values=data["values"],
                    history=int(data["history"]),
                    normal=data["normal"],
                    feature_names=list(feature_names),
                )
        except (OSError, KeyError, ValueError) as error:
            raise ModelIntegrityError(f"{path}: held-out data cannot be read ({error!r})") from None


@contextmanager
def _exclusive(directory: Path) -> Iterator[None]:
    """Hold an exclusive lock of `directory` (flock: released by the kernel if the process dies)."""
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)
