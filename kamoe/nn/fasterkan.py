"""FasterKAN layer: edges built from RSWAF bumps 1 - tanh^2((u - g_k) / h) on a fixed grid.

As in FasterKAN (AthanasiosDelis/faster-kan, the version vendored by MLP-KAN): 8 grid points on
[-2, 2], h = 0.33, a bias-free linear map over the basis, no base branch. The paper's code puts a
LayerNorm in front, which mixes all inputs of a sample (an edge is then no longer a function of
its own raw input); ``norm="batchnorm"`` or ``"none"`` keep edges univariate.
"""

from __future__ import annotations

import torch
from torch import nn

from kamoe.errors import ModelError

NORMS = ("layernorm", "batchnorm", "none")


class FasterKANLinear(nn.Module):
    """Edges phi_ji(u_i) = sum_k W[j, i, k] * (1 - tanh^2((u_i - g_k) / h))."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        num_grids: int = 8,
        grid_range: tuple[float, float] = (-2.0, 2.0),
        denominator: float = 0.33,
        norm: str = "layernorm",
    ) -> None:
        super().__init__()
        if in_features <= 0 or out_features <= 0:
            raise ModelError(
                f"in_features and out_features must be positive, got {in_features}, {out_features}"
            )
        if num_grids < 1:
            raise ModelError(f"num_grids must be >= 1, got {num_grids}")
        if denominator <= 0:
            raise ModelError(f"denominator (h) must be > 0, got {denominator}")
        if norm not in NORMS:
            raise ModelError(f"norm must be one of {NORMS}, got {norm!r}")
        self.in_features = in_features
        self.out_features = out_features
        self.num_grids = num_grids
        self.norm_kind = norm
        self.inv_denominator = 1.0 / denominator
        self.register_buffer("grid", torch.linspace(grid_range[0], grid_range[1], num_grids))
        if norm == "layernorm":
            self.norm = nn.LayerNorm(in_features)
        elif norm == "batchnorm":
            self.norm = nn.BatchNorm1d(in_features)
        else:
            self.norm = nn.Identity()
        self.weight = nn.Parameter(torch.empty(out_features, in_features * num_grids))
        nn.init.xavier_uniform_(self.weight)

    def extra_repr(self) -> str:
        return (
            f"in={self.in_features}, out={self.out_features}, grids={self.num_grids}, "
            f"norm={self.norm_kind}"
        )

    def edge_coordinate(self, x: torch.Tensor) -> torch.Tensor:
        """The normalised input u each edge is a function of, shape (N, in)."""
        x = x.reshape(-1, self.in_features)
        if isinstance(self.norm, nn.BatchNorm1d) and self.training and x.size(0) < 2:
            # A routed expert may receive a single token: fall back to the running statistics.
            bn = self.norm
            return nn.functional.batch_norm(x, bn.running_mean, bn.running_var, bn.weight,
                                            bn.bias, False, 0.0, bn.eps)
        return self.norm(x)

    def basis(self, u: torch.Tensor) -> torch.Tensor:
        """RSWAF basis values, shape (N, in, num_grids)."""
        return 1.0 - torch.tanh((u.unsqueeze(-1) - self.grid) * self.inv_denominator) ** 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[:-1]
        u = self.edge_coordinate(x)
        y = self.basis(u).reshape(u.size(0), -1) @ self.weight.t()
        return y.reshape(*lead, self.out_features)

    def edge_function(self, u: torch.Tensor) -> torch.Tensor:
        """phi_ji evaluated at edge coordinates u (N, in) -> (N, out, in)."""
        w = self.weight.reshape(self.out_features, self.in_features, self.num_grids)
        return torch.einsum("nik,oik->noi", self.basis(u), w)

    def edge_curves(self, x: torch.Tensor) -> torch.Tensor:
        """Every edge's own value for inputs x (..., in), shape (N, out, in)."""
        return self.edge_function(self.edge_coordinate(x))

    def control_points(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Bump centres (in, num_grids) and their weights (out, in, num_grids)."""
        w = self.weight.reshape(self.out_features, self.in_features, self.num_grids)
        return self.grid.expand(self.in_features, -1), w


class FasterKAN(nn.Module):
    """A stack of FasterKANLinear layers with widths [in, hidden..., out]."""

    def __init__(self, widths: list[int], **layer_kwargs) -> None:
        super().__init__()
        if len(widths) < 2:
            raise ModelError(f"widths needs at least [in, out], got {widths}")
        self.widths = list(widths)
        self.layers = nn.ModuleList(
            FasterKANLinear(a, b, **layer_kwargs)
            for a, b in zip(widths[:-1], widths[1:], strict=True)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x
