"""GRU forecaster: reads the first window - 1 readings of a window and predicts the last one."""

from dataclasses import dataclass

import torch
from torch import nn

from plantwatch.adapters.detectors.torch_base import TorchConfig, TorchDetector
from plantwatch.domain.errors import InvalidInputError


class _GruForecasterNetwork(nn.Module):
    def __init__(self, n_features: int, hidden: int) -> None:
        super().__init__()
        self.gru = nn.GRU(n_features, hidden, batch_first=True)
        self.head = nn.Linear(hidden, n_features)

    def forward(self, history: torch.Tensor) -> torch.Tensor:
        _, hidden_state = self.gru(history)
        forecast: torch.Tensor = self.head(hidden_state[-1])
        return forecast


@dataclass
class GruConfig(TorchConfig):
    # The score is the feature whose forecast missed most (relative to its usual miss), not the mean over
    # features: an ICS attack often moves a few of dozens of tags. Chosen on BATADAL attacks 1-3 with an
    # ewma:0.3 alarm rule (S 0.989 vs 0.948 for the mean; docs/benchmarks.md, "Defaults").
    aggregation: str = "max"
    # Five networks (seeds seed ... seed + 4), their standardised errors averaged: one GRU's S on the 7
    # BATADAL windows moved between 0.887 and 0.907 with its seed, five together stay within 0.906-0.910,
    # also over disjoint seeds (docs/benchmarks.md, "Defaults"), for five times the fit and scoring time.
    ensemble: int = 5


class GruForecasterDetector(TorchDetector):
    """Score = error of the one-step forecast of the window's last reading."""

    name = "gru"
    Config = GruConfig
    config: GruConfig

    def _check_config(self) -> None:
        super()._check_config()
        if self.config.window < 2:
            raise InvalidInputError("the gru forecaster needs window >= 2 (history + target)", field="window")

    def _build_network(self, n_features: int) -> nn.Module:
        return _GruForecasterNetwork(n_features, self.config.hidden)

    def _training_loss(self, network: nn.Module, batch: torch.Tensor) -> torch.Tensor:
        return nn.functional.mse_loss(network(batch[:, :-1, :]), batch[:, -1, :])

    def _predict(self, network: nn.Module, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        forecast = network(batch[:, :-1, :])
        return (forecast - batch[:, -1, :]) ** 2, forecast
