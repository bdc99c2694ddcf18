"""Variational autoencoder over the flattened window (dense encoder and decoder)."""

from dataclasses import dataclass

import torch
from torch import nn

from plantwatch.adapters.detectors.torch_base import TorchConfig, TorchDetector
from plantwatch.domain.errors import InvalidInputError


@dataclass
class VaeConfig(TorchConfig):
    latent: int = 8
    # weight of the KL term per input value; 1.0 is the plain ELBO with unit-variance Gaussian noise
    kl_weight: float = 1.0


class _WindowVaeNetwork(nn.Module):
    def __init__(self, n_inputs: int, hidden: int, latent: int) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(n_inputs, hidden), nn.ReLU())
        self.mean = nn.Linear(hidden, latent)
        self.log_var = nn.Linear(hidden, latent)
        self.decoder = nn.Sequential(nn.Linear(latent, hidden), nn.ReLU(), nn.Linear(hidden, n_inputs))

    def forward(self, windows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        encoded = self.encoder(windows.flatten(1))
        mean, log_var = self.mean(encoded), self.log_var(encoded)
        # sample only while training; scoring decodes the mean so the same window always gets the same score
        code = mean + torch.randn_like(mean) * torch.exp(0.5 * log_var) if self.training else mean
        reconstruction = self.decoder(code).view_as(windows)
        return reconstruction, mean, log_var


class VaeDetector(TorchDetector):
    """Score = reconstruction error of the window decoded from its posterior mean, weighted towards the last
    reading."""

    name = "vae"
    Config = VaeConfig
    config: VaeConfig

    def _check_config(self) -> None:
        super()._check_config()
        if self.config.latent < 1:
            raise InvalidInputError("latent must be at least 1", field="latent")
        if self.config.kl_weight < 0:
            raise InvalidInputError("kl_weight must not be negative", field="kl_weight")

    def _build_network(self, n_features: int) -> nn.Module:
        return _WindowVaeNetwork(self.config.window * n_features, self.config.hidden, self.config.latent)

    def _training_loss(self, network: nn.Module, batch: torch.Tensor) -> torch.Tensor:
        reconstruction, mean, log_var = network(batch)
        squared_error = nn.functional.mse_loss(reconstruction, batch)
        kl = -0.5 * torch.mean(torch.sum(1 + log_var - mean**2 - log_var.exp(), dim=1))
        return squared_error + self.config.kl_weight * kl / batch[0].numel()

    def _predict(self, network: nn.Module, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        reconstruction, _, _ = network(batch)
        return (reconstruction - batch) ** 2, reconstruction[:, -1, :]
