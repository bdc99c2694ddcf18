"""The PyTorch half of the detector base: device, seeding, the training loop and weights on disk.

Networks train in float32 for speed and are turned to float64 once trained, so scores do not depend on how
many windows go through the network at once (a stream scoring one window agrees with a batch of thousands).

`ensemble=k` trains k networks of the same kind with seeds seed, seed + 1, ..., seed + k - 1 and averages
their standardised per-feature errors (each network's error over its own mean error on the training windows)
before the score is aggregated: one unlucky initialisation no longer decides which tag looks anomalous, at k
times the fit and scoring time. `ensemble=1` is the single network, unchanged.
"""

import copy
import math
import os
import pickle
import random
from abc import abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from plantwatch.adapters.detectors.base import SCORE_CHUNK, DetectorConfig, WindowDetector
from plantwatch.domain.errors import InvalidInputError, ModelIntegrityError

WEIGHTS_FILE = "weights.pt"


def resolve_device(setting: str = "auto") -> torch.device:
    """ "auto" picks CUDA when available, else CPU; anything else is passed to torch ("cpu", "cuda:1")."""
    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(setting)
    except RuntimeError as error:
        raise InvalidInputError(f"unknown torch device {setting!r}: {error}", field="device") from None


def seed_everything(seed: int) -> None:
    """Same seed, same data, same device -> the same weights."""
    # cuBLAS needs this set before its first call to be deterministic
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    # warn_only: a few CUDA kernels have no deterministic version; they warn instead of failing the fit
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True


@contextmanager
def cpu_threads(device: torch.device, threads: int | None) -> Iterator[None]:
    """Run torch CPU ops on `threads` threads for the duration, then restore the process setting.

    These networks are small: splitting each op over several threads costs more in synchronisation than it
    saves, and on a busy machine spinning threads slow training down ten times or more.
    """
    if device.type != "cpu" or threads is None or threads == torch.get_num_threads():
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@dataclass
class TorchConfig(DetectorConfig):
    hidden: int = 32
    epochs: int = 20
    batch_size: int = 64
    learning_rate: float = 1e-3
    # epochs without a better validation loss before training stops and the best weights are restored
    patience: int = 3
    # last share of the training windows (in time order) used for early stopping
    validation_fraction: float = 0.1
    # networks trained with seeds seed, seed + 1, ...; their standardised errors are averaged (see the top)
    ensemble: int = 1


@dataclass(frozen=True)
class EpochReport:
    epoch: int
    epochs: int
    train_loss: float
    val_loss: float | None
    best_val_loss: float | None
    # which network of an ensemble is training (0-based), and how many there are
    member: int = 0
    members: int = 1


EpochCallback = Callable[[EpochReport], None]


class TorchDetector(WindowDetector):
    """A window detector whose model is a torch network. Subclasses define the network, its training loss and
    how a batch of windows turns into per-feature squared errors and expected last readings."""

    Config = TorchConfig
    config: TorchConfig

    def __init__(
        self,
        device: str | None = None,
        on_epoch: EpochCallback | None = None,
        threads: int | None = 1,
        **hyper: Any,
    ) -> None:
        super().__init__(device=device, **hyper)
        self.device = resolve_device(self.device_setting)
        self.threads = threads
        # not a hyper-parameter: a progress bar is how this run reports, not part of the model
        self.on_epoch = on_epoch
        # one network per ensemble member (one without an ensemble), in seed order
        self.networks: list[nn.Module] = []
        # each member's mean squared error per feature on the training windows, (members, F); set by fit
        self.member_usual_error_: npt.NDArray[np.float64] | None = None

    def _check_config(self) -> None:
        super()._check_config()
        config = self.config
        for name in ("hidden", "epochs", "batch_size", "patience", "ensemble"):
            if getattr(config, name) < 1:
                raise InvalidInputError(f"{name} must be at least 1, got {getattr(config, name)}", field=name)
        if config.learning_rate <= 0:
            raise InvalidInputError("learning_rate must be positive", field="learning_rate")
        if not 0.0 <= config.validation_fraction < 1.0:
            raise InvalidInputError("validation_fraction must be in [0, 1)", field="validation_fraction")

    @abstractmethod
    def _build_network(self, n_features: int) -> nn.Module: ...

    @abstractmethod
    def _training_loss(self, network: nn.Module, batch: torch.Tensor) -> torch.Tensor:
        """Mean loss of a batch of scaled windows (N, window, F); called in train and in eval mode."""

    @abstractmethod
    def _predict(self, network: nn.Module, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Squared scaled error, (N, window, F) or (N, F), and the expected last reading (N, F)."""

    def _fit_model(self, windows: np.ndarray) -> None:
        with cpu_threads(self.device, self.threads):
            members = [self._train(windows, self.config.seed + k) for k in range(self.config.ensemble)]
        self.networks = [network for network, _ in members]
        self.training_history = members[0][1]
        if len(members) > 1:
            self.training_history["ensemble_members"] = [
                {key: history[key] for key in ("epochs_run", "best_epoch", "best_val_loss") if key in history}
                for _, history in members
            ]
            # each member's usual error, so that no member's scale dominates the average
            usual = [
                np.concatenate(list(self._member_errors(windows, member))).mean(axis=0)
                for member in range(len(self.networks))
            ]
            self.member_usual_error_ = np.maximum(np.asarray(usual), 1e-12)

    def _train(self, windows: np.ndarray, seed: int) -> tuple[nn.Module, dict[str, Any]]:
        """One network trained from `seed`, with the best validation weights, and its training history."""
        config = self.config
        seed_everything(seed)
        network = self._build_network(len(self.feature_names)).to(self.device)
        data = torch.tensor(windows, dtype=torch.float32, device=self.device)
        n_val = int(len(data) * config.validation_fraction)
        train, val = data[: len(data) - n_val], data[len(data) - n_val :]
        optimiser = torch.optim.Adam(network.parameters(), lr=config.learning_rate)
        shuffler = torch.Generator().manual_seed(seed)

        train_losses: list[float] = []
        val_losses: list[float] = []
        best_loss, best_epoch, best_state = math.inf, 0, copy.deepcopy(network.state_dict())
        for epoch in range(1, config.epochs + 1):
            network.train()
            order = torch.randperm(len(train), generator=shuffler).to(self.device)
            total = 0.0
            for start in range(0, len(train), config.batch_size):
                batch = train[order[start : start + config.batch_size]]
                optimiser.zero_grad()
                loss = self._training_loss(network, batch)
                loss.backward()
                optimiser.step()
                total += float(loss.detach()) * len(batch)
            train_losses.append(total / len(train))
            val_loss = self._evaluate(network, val) if len(val) else None
            if val_loss is not None:
                val_losses.append(val_loss)
            monitored = val_loss if val_loss is not None else train_losses[-1]
            if monitored < best_loss:
                best_loss, best_epoch, best_state = monitored, epoch, copy.deepcopy(network.state_dict())
            if self.on_epoch is not None:
                self.on_epoch(
                    EpochReport(
                        epoch=epoch,
                        epochs=config.epochs,
                        train_loss=train_losses[-1],
                        val_loss=val_loss,
                        best_val_loss=best_loss if val_loss is not None else None,
                        member=seed - config.seed,
                        members=config.ensemble,
                    )
                )
            if epoch - best_epoch >= config.patience:
                break

        network.load_state_dict(best_state)
        history: dict[str, Any] = {
            "epochs_run": len(train_losses),
            "best_epoch": best_epoch,
            "stopped_early": len(train_losses) < config.epochs,
            "first_train_loss": train_losses[0],
            "final_train_loss": train_losses[-1],
            "best_train_loss": min(train_losses),
            "train_loss": train_losses,
            "val_loss": val_losses,
            "train_windows": len(train),
            "val_windows": len(val),
        }
        if val_losses:
            history["best_val_loss"] = min(val_losses)
        return network.double().eval(), history

    def _evaluate(self, network: nn.Module, windows: torch.Tensor) -> float:
        network.eval()
        total = 0.0
        with torch.no_grad():
            for start in range(0, len(windows), 1024):
                batch = windows[start : start + 1024]
                total += float(self._training_loss(network, batch)) * len(batch)
        return total / len(windows)

    def _window_errors(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if not self.networks:
            raise InvalidInputError(f"{self.name} detector is not fitted yet", field="detector")
        if len(self.networks) == 1:
            return self._network_errors(self.networks[0], windows)
        assert self.member_usual_error_ is not None
        errors = np.zeros((len(windows), len(self.feature_names)))
        expected = np.zeros((len(windows), len(self.feature_names)))
        for network, usual in zip(self.networks, self.member_usual_error_, strict=True):
            member_errors, member_expected = self._network_errors(network, windows)
            errors += member_errors / usual
            expected += member_expected
        return errors / len(self.networks), expected / len(self.networks)

    def _member_errors(self, windows: np.ndarray, member: int) -> Iterator[np.ndarray]:
        """One member's squared errors on `windows`, a chunk at a time."""
        for start in range(0, len(windows), SCORE_CHUNK):
            yield self._network_errors(self.networks[member], windows[start : start + SCORE_CHUNK])[0]

    def _network_errors(self, network: nn.Module, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        batch = torch.tensor(windows, dtype=torch.float64, device=self.device)
        with cpu_threads(self.device, self.threads), torch.no_grad():
            squared_error, expected = self._predict(network, batch)
        errors = squared_error.cpu().numpy()
        if errors.ndim == 3:
            errors = self._weighted_error(errors)
        return errors, expected.cpu().numpy()

    def state(self) -> dict[str, Any]:
        state = super().state()
        if self.member_usual_error_ is not None:
            state["member_usual_error"] = self.member_usual_error_.tolist()
        return state

    @classmethod
    def from_state(
        cls, state: dict[str, Any], directory: Path, device: str | None = None, where: Path | None = None
    ) -> Self:
        # a model saved before ensembles existed is one network, whatever today's default
        state = {**state, "hyper_params": {"ensemble": 1, **state["hyper_params"]}}
        detector = super().from_state(state, directory, device, where)
        if detector.config.ensemble > 1:
            usual = state.get("member_usual_error")
            if usual is None or np.shape(usual) != (detector.config.ensemble, len(detector.feature_names)):
                raise ModelIntegrityError(
                    f"{where or directory}: an ensemble of {detector.config.ensemble} needs each member's "
                    f"usual error per feature (member_usual_error), got shape "
                    f"{np.shape(usual) if usual else None}"
                )
            detector.member_usual_error_ = np.asarray(usual, dtype=np.float64)
        return detector

    def _save_model(self, directory: Path) -> None:
        assert self.networks
        for member, network in enumerate(self.networks):
            torch.save(network.state_dict(), directory / weights_file(member))

    def _load_model(self, directory: Path) -> None:
        self.networks = [self._load_network(directory / weights_file(m)) for m in range(self.config.ensemble)]

    def _load_network(self, path: Path) -> nn.Module:
        network = self._build_network(len(self.feature_names)).double()
        try:
            state = torch.load(path, map_location=self.device, weights_only=True)
            network.load_state_dict(state)
        except FileNotFoundError:
            raise ModelIntegrityError(f"{path}: weights file is missing") from None
        except (RuntimeError, KeyError, EOFError, pickle.UnpicklingError) as error:
            raise ModelIntegrityError(
                f"{path}: weights do not fit the {self.name} network: {error}"
            ) from None
        return network.to(self.device).eval()


def weights_file(member: int) -> str:
    """The first (or only) network keeps the name models saved before ensembles have."""
    return WEIGHTS_FILE if member == 0 else f"weights-{member}.pt"
