"""LSTM autoencoder: encodes a window into the last hidden state and decodes the whole window back from it."""

import torch
from torch import nn

from plantwatch.adapters.detectors.torch_base import TorchDetector


class _LstmAutoencoderNetwork(nn.Module):
    def __init__(self, n_features: int, hidden: int) -> None:
        super().__init__()
        self.encoder = nn.LSTM(n_features, hidden, batch_first=True)
        self.decoder = nn.LSTM(hidden, hidden, batch_first=True)
        self.output = nn.Linear(hidden, n_features)

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        _, (hidden_state, _) = self.encoder(windows)
        # the code is repeated at every step: the decoder must rebuild the window from it alone
        code = hidden_state[-1].unsqueeze(1).expand(-1, windows.shape[1], -1)
        decoded, _ = self.decoder(code)
        reconstruction: torch.Tensor = self.output(decoded)
        return reconstruction


class LstmAutoencoderDetector(TorchDetector):
    """Score = reconstruction error of the window, weighted towards its last reading."""

    name = "lstm_ae"

    def _build_network(self, n_features: int) -> nn.Module:
        return _LstmAutoencoderNetwork(n_features, self.config.hidden)

    def _training_loss(self, network: nn.Module, batch: torch.Tensor) -> torch.Tensor:
        return nn.functional.mse_loss(network(batch), batch)

    def _predict(self, network: nn.Module, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        reconstruction = network(batch)
        return (reconstruction - batch) ** 2, reconstruction[:, -1, :]
