"""Small models shared by several test modules."""

from __future__ import annotations

import torch
from torch import nn


class BNNet(nn.Module):
    """An MLP with a BatchNorm layer (its running statistics are buffers a pass must restore)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc1 = nn.Linear(3, 5)
        self.bn = nn.BatchNorm1d(5, momentum=0.3)
        self.fc2 = nn.Linear(5, 2)

    def forward(self, x):
        return self.fc2(torch.tanh(self.bn(self.fc1(x))))
