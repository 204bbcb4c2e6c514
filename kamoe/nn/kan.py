"""B-spline Kolmogorov-Arnold layer: every edge is its own learnable univariate function.

Edge (input i -> output j), as in the KAN paper (arXiv 2404.19756) and efficient-kan:

    phi_ji(x) = w_base[j, i] * act(x) + w_spline[j, i] * sum_m c[j, i, m] * B_m(x)

with order-k B-splines B_m on a per-input-feature knot vector of G intervals extended by k knots
on each side (G + k basis functions). Output j is ``sum_i phi_ji(x_i)`` (+ an optional bias).

The whole layer runs as one matrix product: the features ``[act(x_i), B_1(x_i) .. B_{G+k}(x_i)]``
of every input are laid side by side (width ``in * (G + k + 1)``) and multiplied by the stacked
edge weights. Only the k + 1 B-splines that are non-zero at each sample are computed (local de
Boor recursion), with a closed form and an analytic gradient when the grid is uniform.

On the CPU, with uniform knots, orders 1-5 and a built-in base activation, the whole layer runs
as one autograd function on the native kernels of ``_kanfast.c`` (optional, built at install
time); :mod:`kamoe.nn.native` decides when and runs them. Without the extension, or on other
devices, the layer runs on the torch path; both give the same numbers to float round-off (tested).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from kamoe.errors import ModelError
from kamoe.nn import native  # the kernels' dispatch (kamoe/nn/native.py)
from kamoe.nn.native import NATIVE_ORDERS, NativePlan, native_available, torch_path

__all__ = ["ACTIVATIONS", "KAN", "KANLinear", "NATIVE_ORDERS", "make_activation",
           "native_available", "torch_path"]

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "silu": nn.SiLU,
    "relu": nn.ReLU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "identity": nn.Identity,
    "zero": None,  # type: ignore[dict-item]  # no base branch at all
}


def make_activation(name: str | nn.Module | type | None) -> nn.Module | None:
    """Turn an activation name (or module/class) into a module; 'zero'/None means no base branch."""
    if name is None or name == "zero":
        return None
    if isinstance(name, nn.Module):
        return name
    if isinstance(name, type) and issubclass(name, nn.Module):
        return name()
    if isinstance(name, str) and name.lower() in ACTIVATIONS:
        return ACTIVATIONS[name.lower()]()
    raise ModelError(f"base_activation must be one of {sorted(ACTIVATIONS)}, got {name!r}")


def _cardinal_matrix(k: int) -> torch.Tensor:
    """Matrix M (k+1, k+1) with [B_{j-k}(x) .. B_j(x)] = [1, f, .., f^k] @ M on a uniform grid.

    Here f in [0, 1) is the position inside knot interval j. Built numerically from the
    Cox-de Boor recursion on integer knots (exact up to float64 round-off).
    """
    # Sample the k+1 non-zero cardinal B-splines on interval [k, k+1) of integer knots 0..2k+1.
    knots = torch.arange(0, 2 * k + 2, dtype=torch.float64)
    f = torch.linspace(0.05, 0.95, k + 1, dtype=torch.float64)
    x = k + f
    basis = ((x[:, None] >= knots[None, :-1]) & (x[:, None] < knots[None, 1:])).double()
    for p in range(1, k + 1):
        left = (x[:, None] - knots[None, : -(p + 1)]) / p * basis[:, :-1]
        right = (knots[None, p + 1 :] - x[:, None]) / p * basis[:, 1:]
        basis = left + right
    vander = torch.stack([f**p for p in range(k + 1)], dim=1)  # (k+1, k+1)
    return torch.linalg.solve(vander, basis[:, : k + 1])


def _slope_matrix(k: int) -> torch.Tensor:
    """D (k, k+1), float64: [1, f, .., f^(k-1)] @ D are the slopes d/du of B_{j-k} .. B_j.

    The derivative of _cardinal_matrix's polynomials; the torch path's backward and the native
    input-gradient kernel both evaluate it.
    """
    return _cardinal_matrix(k)[1:] * torch.arange(1, k + 1, dtype=torch.float64)[:, None]


class _UniformBSpline(torch.autograd.Function):
    """Dense B-spline features on a uniform grid with a hand-written gradient (few tensor ops)."""

    @staticmethod
    def forward(ctx, u, mat, dmat, n_basis: int, k: int):  # type: ignore[override]
        # u: position in units of knot steps measured from the first knot, shape (N, in).
        cell = torch.floor(u)
        frac = u - cell
        powers = torch.stack([frac**p for p in range(k + 1)], dim=-1)  # (N, in, k+1)
        local = powers @ mat  # values of B_{cell-k} .. B_cell
        idx = cell.long().unsqueeze(-1) - k + torch.arange(k + 1, device=u.device)
        valid = (idx >= 0) & (idx < n_basis)
        local = local * valid
        idx = idx.clamp(0, n_basis - 1)
        out = u.new_zeros(*u.shape, n_basis)
        out.scatter_add_(-1, idx, local)
        ctx.save_for_backward(frac, idx, valid, dmat)
        ctx.k = k
        return out

    @staticmethod
    def backward(ctx, grad_out):  # type: ignore[override]
        frac, idx, valid, dmat = ctx.saved_tensors
        k = ctx.k
        grad_u = None
        if ctx.needs_input_grad[0]:
            powers = torch.stack([frac**p for p in range(k)], dim=-1)  # derivative basis
            dlocal = (powers @ dmat) * valid  # d/du of each local value
            grad_u = (grad_out.gather(-1, idx) * dlocal).sum(-1)
        return grad_u, None, None, None, None


class KANLinear(nn.Module):
    """A layer of in_features x out_features learnable edges phi_ji (B-spline + base branch)."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        grid_size: int = 5,
        spline_order: int = 3,
        grid_range: tuple[float, float] = (-1.0, 1.0),
        base_activation: str | nn.Module | type | None = "silu",
        spline_scaler: bool = True,
        bias: bool = False,
        scale_noise: float = 0.1,
        scale_base: float = 1.0,
        grid_eps: float = 1.0,
    ) -> None:
        super().__init__()
        if in_features <= 0 or out_features <= 0:
            raise ModelError(
                f"in_features and out_features must be positive, got {in_features}, {out_features}"
            )
        if grid_size < 1:
            raise ModelError(f"grid_size must be an integer >= 1, got {grid_size}")
        if spline_order < 0:
            raise ModelError(f"spline_order must be an integer >= 0, got {spline_order}")
        lo, hi = float(grid_range[0]), float(grid_range[1])
        if not hi > lo:
            raise ModelError(f"grid_range must be (low, high) with high > low, got {grid_range}")
        self.in_features = in_features
        self.out_features = out_features
        self.grid_size = grid_size
        self.spline_order = spline_order
        self.grid_eps = grid_eps
        self.base_activation = make_activation(base_activation)
        self.base_activation_name = (
            base_activation if isinstance(base_activation, str) or base_activation is None
            else type(self.base_activation).__name__.lower()
        )

        h = (hi - lo) / grid_size
        knots = lo + h * torch.arange(-spline_order, grid_size + spline_order + 1)
        self.register_buffer("grid", knots.expand(in_features, -1).contiguous().float())
        # Whether every feature's knots are evenly spaced (enables the closed-form fast path).
        self.register_buffer("grid_uniform", torch.tensor(True))
        k = spline_order
        self.register_buffer("_mat", _cardinal_matrix(k).float(), persistent=False)
        self.register_buffer("_dmat", _slope_matrix(k).float(), persistent=False)

        self.base_weight = nn.Parameter(torch.empty(out_features, in_features))
        self.spline_weight = nn.Parameter(torch.empty(out_features, in_features, self.n_basis))
        self.spline_scaler = (
            nn.Parameter(torch.empty(out_features, in_features)) if spline_scaler else None
        )
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None
        self._scale_noise = scale_noise
        self._scale_base = scale_base
        self.reset_parameters()

    # ------------------------------------------------------------------ setup
    @property
    def n_basis(self) -> int:
        """Number of B-spline basis functions per input (G + k)."""
        return self.grid_size + self.spline_order

    def reset_parameters(self) -> None:
        """Base weights Kaiming-uniform; splines start as a small random curve; scalers ~ 1."""
        bound = self._scale_base / math.sqrt(self.in_features)
        nn.init.uniform_(self.base_weight, -bound, bound)
        if self.base_activation is None:
            nn.init.zeros_(self.base_weight)
        with torch.no_grad():
            noise = (torch.rand(self.out_features, self.in_features, self.n_basis) - 0.5)
            self.spline_weight.copy_(noise * self._scale_noise / self.grid_size)
            if self.spline_scaler is not None:
                nn.init.uniform_(self.spline_scaler, 0.5, 1.5)
                self.spline_scaler.mul_(1.0 / math.sqrt(self.in_features))
            else:
                self.spline_weight.mul_(1.0 / math.sqrt(self.in_features))

    def extra_repr(self) -> str:
        return (
            f"in={self.in_features}, out={self.out_features}, grid={self.grid_size}, "
            f"k={self.spline_order}, base={self.base_activation_name}, "
            f"scaler={self.spline_scaler is not None}, bias={self.bias is not None}"
        )

    # ------------------------------------------------------------------ basis
    def b_splines(self, x: torch.Tensor) -> torch.Tensor:
        """B-spline values B_m(x_i), shape (N, in, G + k), for x of shape (N, in)."""
        assert x.dim() == 2 and x.size(1) == self.in_features, x.shape
        k = self.spline_order
        if bool(self.grid_uniform):
            step = self.grid[:, 1] - self.grid[:, 0]
            u = (x - self.grid[:, 0]) / step
            return _UniformBSpline.apply(u, self._mat, self._dmat, self.n_basis, k)
        return self._b_splines_local(x)

    def _b_splines_local(self, x: torch.Tensor) -> torch.Tensor:
        """General (non-uniform) grid: de Boor's triangular scheme on the k+1 live splines."""
        k, grid = self.spline_order, self.grid
        n_knots = grid.size(1)
        # interval index j with t_j <= x < t_{j+1}; outside the grid all splines vanish.
        j = torch.searchsorted(grid.contiguous(), x.t().contiguous(), right=True).t() - 1
        inside = (j >= 0) & (j < n_knots - 1)
        j = j.clamp(0, n_knots - 2)
        offs = torch.arange(-k + 1, k + 1, device=x.device)  # knots t_{j-k+1} .. t_{j+k}
        kidx = (j.unsqueeze(-1) + offs).clamp(0, n_knots - 1)
        t = torch.gather(grid.unsqueeze(0).expand(x.size(0), -1, -1), 2, kidx)
        xe = x.unsqueeze(-1)
        left = xe - t[..., :k].flip(-1)  # x - t_{j+1-r}, r = 1..k
        right = t[..., k:] - xe  # t_{j+r} - x, r = 1..k
        vals = [torch.ones_like(x)]
        for p in range(1, k + 1):
            saved = torch.zeros_like(x)
            new = []
            for r in range(p):
                denom = right[..., r] + left[..., p - r - 1]
                temp = vals[r] / torch.where(denom == 0, torch.ones_like(denom), denom)
                new.append(saved + right[..., r] * temp)
                saved = left[..., p - r - 1] * temp
            new.append(saved)
            vals = new
        local = torch.stack(vals, dim=-1) * inside.unsqueeze(-1)  # B_{j-k} .. B_j
        idx = j.unsqueeze(-1) - k + torch.arange(k + 1, device=x.device)
        valid = (idx >= 0) & (idx < self.n_basis)
        out = x.new_zeros(*x.shape, self.n_basis)
        return out.scatter_add(-1, idx.clamp(0, self.n_basis - 1), local * valid)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Per-input features [act(x_i), B_1(x_i), ...], shape (N, in, 1 + G + k)."""
        basis = self.b_splines(x)
        base = self.base_activation(x) if self.base_activation is not None else torch.zeros_like(x)
        return torch.cat([base.unsqueeze(-1), basis], dim=-1)

    def edge_weights(self) -> torch.Tensor:
        """Stacked edge weights (out, in, 1 + G + k): [w_base, w_spline * c_1, ...]."""
        spline = self.spline_weight
        if self.spline_scaler is not None:
            spline = spline * self.spline_scaler.unsqueeze(-1)
        return torch.cat([self.base_weight.unsqueeze(-1), spline], dim=-1)

    # ------------------------------------------------------------------ forward
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """y_j = sum_i phi_ji(x_i) for x of shape (..., in)."""
        x2 = x if x.dim() == 2 else x.reshape(-1, self.in_features)
        plan = native.layer_plan(self, x2)
        if plan is not None:
            y = native.run_layer(self, x2, plan)
        else:
            feats = self.features(x2).reshape(x2.size(0), -1)
            y = F.linear(feats, self.edge_weights().reshape(self.out_features, -1), self.bias)
        return y if x.dim() == 2 else y.reshape(*x.shape[:-1], self.out_features)

    def _native_plan(self, x: torch.Tensor) -> NativePlan | None:
        """The native kernels' plan for this layer on x, or None when it runs on torch."""
        return native.layer_plan(self, x)

    def slope_matrix(self, dtype: torch.dtype) -> torch.Tensor:
        """The live splines' slope polynomials (_slope_matrix) in ``dtype``, built in float64."""
        return _slope_matrix(self.spline_order).to(dtype).contiguous()

    def edge_curves(self, x: torch.Tensor) -> torch.Tensor:
        """Every edge's own value phi_ji(x_i), shape (N, out, in), for x of shape (..., in)."""
        x2 = x.reshape(-1, self.in_features)
        return torch.einsum("nif,oif->noi", self.features(x2), self.edge_weights())

    # Edge coordinate helpers shared with FasterKANLinear (identity here: edges see raw inputs).
    def edge_coordinate(self, x: torch.Tensor) -> torch.Tensor:
        """The coordinate each edge is a function of (the raw input for a B-spline KAN)."""
        return x.reshape(-1, self.in_features)

    def edge_function(self, u: torch.Tensor) -> torch.Tensor:
        """phi_ji evaluated at edge coordinates u (N, in) -> (N, out, in)."""
        return self.edge_curves(u)

    def control_points(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Spline control points per edge: knot-average abscissae (in, G+k), values (out, in, G+k).

        The abscissae are the Greville points (mean of k consecutive inner knots); the values are
        the scaled spline coefficients, so the spline part of the edge passes near them.
        """
        k = self.spline_order
        g = self.grid
        if k == 0:
            xs = 0.5 * (g[:, :-1] + g[:, 1:])
        else:
            xs = torch.stack([g[:, m + 1 : m + k + 1].mean(-1) for m in range(self.n_basis)], -1)
        return xs, self.edge_weights()[..., 1:]

    # ------------------------------------------------------------------ grid update
    @torch.no_grad()
    def update_grid(self, x: torch.Tensor, margin: float = 0.01, grid_eps: float | None = None):
        """Refit each input's knots to the samples x, keeping the layer's outputs.

        New knots = grid_eps * uniform over [min, max] + (1 - grid_eps) * sample quantiles.
        The default grid_eps = 1 keeps knots evenly spaced: refits then preserve outputs best
        (measured: ~1e-5 relative on a trained layer vs ~1e-3 for quantile knots) and training
        keeps the closed-form fast path; pykan and efficient-kan use 0.02 (mostly quantiles).

        The spline part of every edge is re-expressed on the new knots by least squares over
        the samples, so the layer's outputs on x change only by that fit's residual.
        """
        eps = self.grid_eps if grid_eps is None else grid_eps
        x = x.reshape(-1, self.in_features).to(self.grid.dtype)
        if x.size(0) < 2:
            return
        target = self._spline_values(x)
        self._set_knots(x, margin, eps)
        self._fit_spline(x, target)

    @torch.no_grad()
    def refine_from(self, coarse: KANLinear, x: torch.Tensor, margin: float = 0.01) -> KANLinear:
        """Take over ``coarse``'s edges on this layer's (usually finer) grid: grid extension.

        pykan's ``refine``: knots evenly spaced over the samples' range, every edge's spline
        part least-squares fitted to ``coarse``'s on x, base weights, scalers and bias copied.
        Both layers must have the same shape, order and base activation. Returns self.
        """
        if (coarse.in_features, coarse.out_features) != (self.in_features, self.out_features):
            raise ValueError(f"refine_from needs a layer of the same shape, got "
                             f"{coarse.in_features}x{coarse.out_features} for "
                             f"{self.in_features}x{self.out_features}")
        x = x.reshape(-1, self.in_features).to(self.grid.dtype)
        self.base_weight.copy_(coarse.base_weight)
        if self.spline_scaler is not None and coarse.spline_scaler is not None:
            self.spline_scaler.copy_(coarse.spline_scaler)
            target = coarse._spline_values(x)
        else:  # fold the other layer's scaler into the coefficients
            target = torch.einsum("nim,oim->ion", coarse.b_splines(x),
                                  coarse.edge_weights()[..., 1:])
            if self.spline_scaler is not None:
                self.spline_scaler.fill_(1.0)
        if self.bias is not None and coarse.bias is not None:
            self.bias.copy_(coarse.bias)
        if x.size(0) >= 2:
            self._set_knots(x, margin, 1.0)
            self._fit_spline(x, target)
        return self

    def _spline_values(self, x: torch.Tensor) -> torch.Tensor:
        """Unscaled spline part sum_m c_m B_m(x_i) of every edge, shape (in, out, N)."""
        return torch.einsum("nim,oim->ion", self.b_splines(x), self.spline_weight)

    def _set_knots(self, x: torch.Tensor, margin: float, eps: float) -> None:
        """Knots = eps * uniform over the samples' [min, max] + (1 - eps) * their quantiles."""
        k, G, n = self.spline_order, self.grid_size, x.size(0)
        xs = torch.sort(x, dim=0).values
        pos = torch.linspace(0, n - 1, G + 1, device=x.device).round().long()
        adaptive = xs[pos]  # (G+1, in)
        lo, hi = xs[0] - margin, xs[-1] + margin
        step = (hi - lo) / G
        uniform = lo + step * torch.arange(G + 1, device=x.device, dtype=x.dtype)[:, None]
        inner = eps * uniform + (1 - eps) * adaptive
        inner[0], inner[-1] = lo, hi  # keep the ends on the observed range
        ext = torch.arange(1, k + 1, device=x.device, dtype=x.dtype)[:, None]
        grid = torch.cat([inner[:1] - step * ext.flip(0), inner, inner[-1:] + step * ext], dim=0)
        if eps < 1.0:  # quantile knots may tie on repeated sample values: keep them increasing
            grid = torch.cummax(grid + 1e-7 * torch.arange(grid.size(0), device=x.device,
                                                           dtype=x.dtype)[:, None], dim=0).values
        self.grid.copy_(grid.t())
        self.grid_uniform.fill_(bool(eps >= 1.0))

    def _fit_spline(self, x: torch.Tensor, target: torch.Tensor) -> None:
        """Coefficients whose spline part best matches ``target`` (in, out, N) on x.

        Solved in float64: with few distinct sample values (an integer column, a two-level
        flag) most basis functions see no data and the float32 normal equations are singular
        even with the ridge; in float64 the ridge keeps them solvable (unseen coefficients go
        to zero). MPS has no float64, so there the solve runs on the CPU.
        """
        work = torch.device("cpu") if x.device.type == "mps" else x.device
        new_basis = self.b_splines(x).permute(1, 0, 2).to(work, torch.float64)  # (in, N, G+k)
        # Ridge-regularised least squares, batched over inputs: (A^T A + lam I) c = A^T y.
        ata = new_basis.transpose(1, 2) @ new_basis
        lam = 1e-8 * ata.diagonal(dim1=1, dim2=2).mean(-1).clamp_min(1e-12)
        ata = ata + lam[:, None, None] * torch.eye(self.n_basis, device=work, dtype=ata.dtype)
        target = target.to(work, torch.float64).transpose(1, 2)
        aty = new_basis.transpose(1, 2) @ target  # (in, G+k, out)
        sol = torch.linalg.solve(ata, aty)  # (in, G+k, out)
        self.spline_weight.copy_(sol.permute(2, 0, 1).to(self.spline_weight.dtype))

    # ------------------------------------------------------------------ regularisation
    def regularization_loss(
        self,
        x: torch.Tensor | None = None,
        regularize_activation: float = 1.0,
        regularize_entropy: float = 1.0,
    ) -> torch.Tensor:
        """L1 + entropy sparsity penalty of the KAN paper (sec. 2.5.1).

        With samples x, |phi_ji|_1 is the mean absolute edge output over x (the paper's
        definition); without x, the mean absolute scaled spline coefficient stands in for it.
        """
        if x is not None:
            l1 = self.edge_curves(x).abs().mean(0)  # (out, in)
        else:
            w = self.edge_weights()
            l1 = w.abs().mean(-1)
        total = l1.sum()
        p = l1 / (total + 1e-12)
        entropy = -(p * torch.log(p + 1e-12)).sum()
        return regularize_activation * total + regularize_entropy * entropy


class KAN(nn.Module):
    """A stack of KANLinear layers: widths [in, hidden..., out], no nonlinearity in between."""

    def __init__(self, widths: list[int], **layer_kwargs) -> None:
        super().__init__()
        if len(widths) < 2:
            raise ModelError(f"widths needs at least [in, out], got {widths}")
        self.widths = list(widths)
        self.layers = nn.ModuleList(
            KANLinear(a, b, **layer_kwargs) for a, b in zip(widths[:-1], widths[1:], strict=True)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x

    @torch.no_grad()
    def update_grid(self, x: torch.Tensor, margin: float = 0.01) -> None:
        """Refit every layer's grid to the inputs it actually receives from x."""
        for layer in self.layers:
            layer.update_grid(x, margin=margin)
            x = layer(x)

    def regularization_loss(self, x: torch.Tensor | None = None, **kw) -> torch.Tensor:
        """Sum of the layers' sparsity penalties (sample-based when x is given)."""
        total = torch.zeros((), device=self.layers[0].base_weight.device)
        for layer in self.layers:
            total = total + layer.regularization_loss(x, **kw)
            if x is not None:
                x = layer(x)
        return total
