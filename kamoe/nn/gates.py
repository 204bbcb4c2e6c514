"""Gating networks: GRN (dense), GRKAN (KAN), a linear gate, and token routers for MLP-KAN.

GRN and GRKAN follow the KAMoE reference code (remigenet/KAMoE, grkan.py): a dense skip
projection, two hidden layers, dropout, a GLU, LayerNorm(skip + GLU) and an optional output
activation. GRKAN replaces the two dense hidden layers by KAN layers (ELU base, then a second
base activation: ReLU in the reference code, SiLU in the paper's text).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from kamoe.errors import ModelError
from kamoe.nn.kan import KANLinear

GATE_ACTIVATIONS = ("sigmoid", "softmax", "none")


def gate_activation(z: torch.Tensor, name: str | None) -> torch.Tensor:
    """Apply a gate's output activation over the last (expert) axis."""
    if name is None or name == "none":
        return z
    if name == "sigmoid":
        return torch.sigmoid(z)
    if name == "softmax":
        return torch.softmax(z, dim=-1)
    raise ModelError(f"gate activation must be one of {GATE_ACTIVATIONS}, got {name!r}")


class GLU(nn.Module):
    """Gated linear unit: (W_a h + b_a) * sigmoid(W_b h + b_b)."""

    def __init__(self, d_in: int, d_out: int) -> None:
        super().__init__()
        self.value = nn.Linear(d_in, d_out)
        self.gate = nn.Linear(d_in, d_out)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.value(h) * torch.sigmoid(self.gate(h))


class GRN(nn.Module):
    """Gated residual network: LayerNorm(Dense(x) + GLU(Dense(ELU(Dense(x))))), then activation."""

    def __init__(
        self,
        d_in: int,
        hidden: int,
        d_out: int | None = None,
        activation: str | None = None,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        d_out = hidden if d_out is None else d_out
        self.activation = activation
        self.skip = nn.Linear(d_in, d_out)
        self.hidden2 = nn.Linear(d_in, hidden)  # eta_2 = ELU(W_2 x + b_2)
        self.hidden1 = nn.Linear(hidden, hidden)  # eta_1 = W_1 eta_2 + b_1
        self.dropout = nn.Dropout(dropout)
        self.glu = GLU(hidden, d_out)
        self.norm = nn.LayerNorm(d_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        eta2 = F.elu(self.hidden2(x))
        eta1 = self.dropout(self.hidden1(eta2))
        z = self.norm(self.skip(x) + self.glu(eta1))
        return gate_activation(z, self.activation)


class GRKAN(nn.Module):
    """Gated residual KAN: GRN with both hidden layers replaced by KANLinear layers."""

    def __init__(
        self,
        d_in: int,
        hidden: int,
        d_out: int | None = None,
        activation: str | None = None,
        dropout: float = 0.0,
        second_activation: str = "relu",
        grid_size: int = 3,
        spline_order: int = 3,
        spline_scaler: bool = False,
        kan_bias: bool = False,
    ) -> None:
        super().__init__()
        d_out = hidden if d_out is None else d_out
        self.activation = activation
        kan = dict(
            grid_size=grid_size, spline_order=spline_order, spline_scaler=spline_scaler,
            bias=kan_bias,
        )
        self.skip = nn.Linear(d_in, d_out)
        self.kan2 = KANLinear(d_in, hidden, base_activation="elu", **kan)  # eta_2
        self.kan1 = KANLinear(hidden, hidden, base_activation=second_activation, **kan)  # eta_1
        self.dropout = nn.Dropout(dropout)
        self.glu = GLU(hidden, d_out)
        self.norm = nn.LayerNorm(d_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        eta2 = self.dropout(self.kan2(x))
        eta1 = self.dropout(self.kan1(eta2))
        z = self.norm(self.skip(x) + self.glu(eta1))
        return gate_activation(z, self.activation)


class LinearGate(nn.Module):
    """The simplest gate: activation(W h + b)."""

    def __init__(self, d_in: int, hidden: int, d_out: int | None = None,
                 activation: str | None = None, dropout: float = 0.0) -> None:
        super().__init__()
        self.activation = activation
        self.linear = nn.Linear(d_in, hidden if d_out is None else d_out)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return gate_activation(self.linear(self.dropout(x)), self.activation)


GATES = {"grkan": GRKAN, "grn": GRN, "linear": LinearGate}


class TopKRouter(nn.Module):
    """Mixtral-style token router: linear logits, softmax, keep the top k, renormalise."""

    def __init__(self, d_in: int, n_experts: int, k: int = 2) -> None:
        super().__init__()
        if not 1 <= k <= n_experts:
            raise ModelError(f"k must be between 1 and n_experts={n_experts}, got {k}")
        self.k = k
        self.n_experts = n_experts
        self.linear = nn.Linear(d_in, n_experts, bias=False)

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """tokens (N, d) -> (probs (N, E), top-k indices (N, k), renormalised weights (N, k))."""
        probs = torch.softmax(self.linear(tokens).float(), dim=-1)
        top_w, top_i = probs.topk(self.k, dim=-1)
        top_w = top_w / top_w.sum(-1, keepdim=True)
        return probs, top_i, top_w.to(tokens.dtype)


class SlotRouter(nn.Module):
    """Soft-MoE router (Puigcerver et al. 2023): learnable slots, dispatch and combine weights."""

    def __init__(self, d_in: int, n_experts: int, slots_per_expert: int = 1) -> None:
        super().__init__()
        self.n_experts = n_experts
        self.slots_per_expert = slots_per_expert
        self.slots = nn.Parameter(torch.randn(d_in, n_experts * slots_per_expert) / d_in**0.5)

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """tokens (B, n, d) -> dispatch (softmax over tokens), combine (softmax over slots)."""
        logits = tokens @ self.slots
        return torch.softmax(logits, dim=1), torch.softmax(logits, dim=-1)
