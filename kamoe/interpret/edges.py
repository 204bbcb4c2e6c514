"""Edge curves, edge and node importance, and network-graph data for KAN layers.

Everything here reads a (trained) model and inputs in model space and returns plain data:
numpy arrays, pandas frames and the dataclasses below. Nothing is drawn here; ``kamoe.viz``
turns :class:`LayerCurves` and :class:`NetworkGraph` into figures.

Importance (the definition used everywhere in this module)
----------------------------------------------------------
For a layer with edges phi_ji and observed edge coordinates u (the samples),

* ``edge_std[j, i] = std_n phi_ji(u_ni)``: how much edge i -> j moves over the data
  (pykan's ``edge_actscale``, the ``forward_u`` metric);
* ``node_std[j] = std_n sum_i phi_ji(u_ni)``: how much output node j moves (bias excluded).

Inside a plain KAN stack (a ``kan`` / ``fasterkan`` registry model, or a bare ``KAN`` /
``FasterKAN``) scores are back-propagated from the outputs as pykan's ``attribute()`` does
(KAN 2.0, arXiv 2408.10205): every output node has score 1 / n_outputs (pykan: identity over
outputs, averaged), then, layer by layer from the top,

    edge_score[j, i] = edge_std[j, i] / (node_std[j] + 1e-4) * node_score_out[j]
    node_score_in[i] = sum_j edge_score[j, i]

so an edge scores high when it carries a large share of a node that matters downstream. These
raw scores are dimensionless (``edge_score``, ``in_node_score``, ``out_node_score``) and are what
pruning thresholds apply to. For KAN layers anywhere else (experts, gates) the score is the
per-layer ``edge_std`` itself, node scores being ``sum_j edge_std`` (inputs) and ``node_std``
(outputs); ``LayerCurves.score_kind`` says which definition was used. The ``importance`` fields
are the raw scores divided by their maximum within the layer (max = 1; all zero if dead), ready
to drive pykan-style transparency ``alpha = tanh(beta * importance)``.

Raw units and parts
-------------------
The first layer of a plain KAN stack sees the model-space inputs ``x = (raw - offset) / scale``
(``Dataset.x_scaling``). Given that scaling, its curves also carry the same grid, samples,
control points and density bins in the user's raw units (``raw_*`` fields); its grid spans the
whole of X, not only the subsampled rows. A B-spline edge is
phi(x) = w_base * act(x) + sum_m c_m B_m(x); ``base_y`` is the first term and
``spline_y = y - base_y`` the second, on which the control points (Greville abscissae, c_m) lie.
Nodes and edges are named by ``kamoe.interpret.names`` (one scheme for every page).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from kamoe.interpret.names import ARROW, input_names, node_names, output_names
from kamoe.nn.fasterkan import FasterKAN, FasterKANLinear
from kamoe.nn.kan import KAN, KANLinear

_EPS_NODE = 1e-4  # pykan's guard in edge_std / (node_std + eps)


# ---------------------------------------------------------------------------- dataclasses


class _PartsAndUnits:
    """What EdgeCurve and LayerCurves share: the spline part and whether raw units exist."""

    y: np.ndarray
    base_y: np.ndarray | None
    raw_x: np.ndarray | None

    @property
    def spline_y(self) -> np.ndarray | None:
        """The spline part sum_m c_m B_m(x) on the grid (None for RSWAF layers: no base)."""
        return None if self.base_y is None else self.y - self.base_y

    @property
    def has_raw(self) -> bool:
        """Whether the abscissae are also given in the input's raw units."""
        return self.raw_x is not None


@dataclass
class EdgeCurve(_PartsAndUnits):
    """One edge phi_ji (input i -> output j) of one layer, ready to plot.

    ``x``/``y``: the curve on a dense grid over the observed input range; ``samples``: the
    observed edge coordinates u_i; ``sample_y``: phi_ji at those samples; ``density_counts`` /
    ``density_edges``: histogram of the samples; ``control_x``/``control_y``: spline control
    points (None when the layer has none); ``importance`` in [0, 1] (max of the layer = 1).
    ``base_y`` (B-spline edges): w_base * act(x) on the grid, ``spline_y`` the spline part.
    ``raw_x``/``raw_samples``/``raw_control_x``/``raw_density_edges``: the same abscissae in
    the input's raw units (None unless the edge reads a dataset input and the scaling was given).
    """

    path: str
    out_index: int
    in_index: int
    label: str
    x: np.ndarray
    y: np.ndarray
    samples: np.ndarray
    sample_y: np.ndarray
    density_counts: np.ndarray
    density_edges: np.ndarray
    control_x: np.ndarray | None
    control_y: np.ndarray | None
    importance: float
    score: float
    coordinate: str
    in_name: str = ""
    out_name: str = ""
    base_y: np.ndarray | None = None
    raw_x: np.ndarray | None = None
    raw_samples: np.ndarray | None = None
    raw_control_x: np.ndarray | None = None
    raw_density_edges: np.ndarray | None = None

    @property
    def raw_range(self) -> tuple[float, float]:
        """(min, max) of the grid in raw units (model coordinate when there is no raw view)."""
        x = self.raw_x if self.raw_x is not None else self.x
        return float(x[0]), float(x[-1])


@dataclass
class LayerCurves(_PartsAndUnits):
    """Every edge curve of one KAN layer, with the data it saw and its importances.

    Shapes (``in`` = in_features, ``out`` = out_features, ``P`` = n_points, ``N`` = samples):

    - ``x`` (in, P): dense grid over each input's observed range, in the edge's own coordinate;
    - ``y`` (out, in, P): phi_ji on that grid; ``y[j, i]`` is the curve of edge i -> j;
    - ``samples`` (N, in): observed edge coordinates; ``sample_y`` (N, out, in): phi at them;
    - ``density_counts`` (in, B) and ``density_edges`` (in, B + 1): per-input histograms;
    - ``control_x`` (in, m) / ``control_y`` (out, in, m): spline control points (or bump
      centres and weights for RSWAF layers); None when not available;
    - ``edge_std`` (out, in), ``node_std`` (out,): spreads over the samples;
    - ``edge_score`` (out, in), ``in_node_score`` (in,), ``out_node_score`` (out,): raw
      importance scores (see the module docstring, ``score_kind`` = "attribution" or "std");
    - ``importance`` (out, in), ``in_node_importance`` (in,), ``out_node_importance`` (out,):
      the same divided by their layer maximum (max = 1).

    ``kind`` is "bspline" (KANLinear) or "rswaf" (FasterKANLinear). ``coordinate`` is "raw" when
    edges see the layer input itself, "normalised" when they see a normalised input (FasterKAN's
    LayerNorm/BatchNorm); ``univariate`` is False when that normalisation mixes the inputs of a
    sample (LayerNorm), so an edge is then not a function of its raw input alone.
    """

    path: str
    kind: str
    coordinate: str
    univariate: bool
    in_features: int
    out_features: int
    x: np.ndarray
    y: np.ndarray
    samples: np.ndarray
    sample_y: np.ndarray
    density_counts: np.ndarray
    density_edges: np.ndarray
    control_x: np.ndarray | None
    control_y: np.ndarray | None
    edge_std: np.ndarray
    node_std: np.ndarray
    edge_score: np.ndarray
    in_node_score: np.ndarray
    out_node_score: np.ndarray
    importance: np.ndarray
    in_node_importance: np.ndarray
    out_node_importance: np.ndarray
    score_kind: str = "std"
    in_names: list[str] = field(default_factory=list)
    out_names: list[str] = field(default_factory=list)
    base_y: np.ndarray | None = None
    raw_x: np.ndarray | None = None
    raw_samples: np.ndarray | None = None
    raw_control_x: np.ndarray | None = None
    raw_density_edges: np.ndarray | None = None

    def edge_label(self, j: int, i: int) -> str:
        """``"<input> → <output>"`` of edge i -> j (``kamoe.interpret.names``)."""
        return f"{self.in_names[i]} {ARROW} {self.out_names[j]}"

    @property
    def density(self) -> tuple[np.ndarray, np.ndarray]:
        """(counts (in, B), bin edges (in, B + 1)) of the observed edge coordinates."""
        return self.density_counts, self.density_edges

    def edge(self, j: int, i: int) -> EdgeCurve:
        """The curve of edge i -> j (output j, input i)."""
        if not (0 <= j < self.out_features and 0 <= i < self.in_features):
            raise IndexError(
                f"edge (out={j}, in={i}) outside layer {self.path!r} of shape "
                f"(out={self.out_features}, in={self.in_features})"
            )
        def row(a: np.ndarray | None, k: int) -> np.ndarray | None:
            return None if a is None else a[k]

        return EdgeCurve(
            path=self.path, out_index=j, in_index=i, label=self.edge_label(j, i),
            x=self.x[i], y=self.y[j, i], samples=self.samples[:, i],
            sample_y=self.sample_y[:, j, i],
            density_counts=self.density_counts[i], density_edges=self.density_edges[i],
            control_x=None if self.control_x is None else self.control_x[i],
            control_y=None if self.control_y is None else self.control_y[j, i],
            importance=float(self.importance[j, i]), score=float(self.edge_score[j, i]),
            coordinate=self.coordinate, in_name=self.in_names[i], out_name=self.out_names[j],
            base_y=None if self.base_y is None else self.base_y[j, i],
            raw_x=row(self.raw_x, i),
            raw_samples=None if self.raw_samples is None else self.raw_samples[:, i],
            raw_control_x=row(self.raw_control_x, i),
            raw_density_edges=row(self.raw_density_edges, i),
        )

    def ranked(self) -> list[tuple[int, int]]:
        """Edges (j, i) from most to least important."""
        order = np.argsort(-self.importance, axis=None, kind="stable")
        return [tuple(int(v) for v in np.unravel_index(k, self.importance.shape)) for k in order]

    def to_frame(self) -> pd.DataFrame:
        """One row per edge: layer, out, in, names, importance, score, std, input range."""
        jj, ii = np.meshgrid(np.arange(self.out_features), np.arange(self.in_features),
                             indexing="ij")
        jj, ii = jj.ravel(), ii.ravel()
        frame = pd.DataFrame({
            "layer": self.path, "out": jj, "in": ii,
            "out_name": [self.out_names[j] for j in jj],
            "in_name": [self.in_names[i] for i in ii],
            "label": [self.edge_label(j, i) for j, i in zip(jj, ii, strict=True)],
            "importance": self.importance.ravel(), "score": self.edge_score.ravel(),
            "std": self.edge_std.ravel(),
            "x_min": self.x[ii, 0], "x_max": self.x[ii, -1],
        })
        if self.raw_x is not None:
            frame["raw_min"], frame["raw_max"] = self.raw_x[ii, 0], self.raw_x[ii, -1]
        return frame


@dataclass
class NetworkGraph:
    """Plain data for a pykan-style drawing of a KAN stack (inputs at the bottom, y = 0).

    ``widths``: nodes per level ([in, hidden..., out]). ``nodes`` frame: level, index, x, y
    (both in [0, 1]), importance, label. ``edges`` frame (row r): layer (0-based), i (input
    node at level ``layer``), j (output node at level ``layer + 1``), label (the edge's name),
    importance, alpha (= tanh(beta * importance)), cut (True when its weights are all zero,
    as ``prune`` leaves a cut edge), x0, y0, x1, y1 (end positions), raw_min / raw_max (the
    input's raw range for first-layer edges when a scaling was given, else NaN).
    ``curve_x`` / ``curve_y`` (n_edges, n_curve_points): each edge's curve on its observed input
    range, rescaled to [0, 1] in both axes for an inset (row r belongs to edges row r);
    ``curve_range`` (n_edges, 4): the unscaled (x_min, x_max, y_min, y_max) of that curve.
    ``layer_paths``: module path of each layer.
    """

    widths: list[int]
    nodes: pd.DataFrame
    edges: pd.DataFrame
    curve_x: np.ndarray
    curve_y: np.ndarray
    curve_range: np.ndarray
    layer_paths: list[str]
    beta: float


# ---------------------------------------------------------------------------- inputs


# Other rooms' modules that behave as KAN layers (edge_coordinate, edge_function,
# control_points, in_features, out_features) and stacks of them (a ``layers`` ModuleList):
# kamoe.symbolic.snap registers its partly symbolic network here so it can be drawn too.
_EDGE_LAYERS: list[type] = []
_EDGE_STACKS: list[type] = []


def register_edge_layer(layer_type: type, stack_type: type | None = None) -> None:
    """Let this room read ``layer_type`` (and stacks ``stack_type``) like a B-spline layer."""
    if layer_type not in _EDGE_LAYERS:
        _EDGE_LAYERS.append(layer_type)
    if stack_type is not None and stack_type not in _EDGE_STACKS:
        _EDGE_STACKS.append(stack_type)


def _kan_types() -> tuple[type, ...]:
    return (KANLinear, FasterKANLinear, *_EDGE_LAYERS)


def _all_kan_layers(model: nn.Module) -> dict[str, nn.Module]:
    return {n: m for n, m in model.named_modules() if isinstance(m, _kan_types())}


def _select(model: nn.Module, paths: list[str] | str | None) -> dict[str, nn.Module]:
    layers = _all_kan_layers(model)
    if paths is None:
        return layers
    if isinstance(paths, str):
        paths = [paths]
    missing = [p for p in paths if p not in layers]
    if missing:
        raise ValueError(f"no KAN layer at {missing}; KAN layers are: {', '.join(layers)}")
    return {p: layers[p] for p in paths}


def _even_rows(n: int, max_rows: int | None) -> np.ndarray:
    """Deterministic, evenly spread subsample of range(n) of at most max_rows indices."""
    if max_rows is None or n <= max_rows:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, max_rows).round().astype(int))


def layer_inputs(model: nn.Module, X: np.ndarray | torch.Tensor,
                 paths: list[str] | str | None = None,
                 max_rows: int | None = 2000) -> dict[str, np.ndarray]:
    """Every selected KAN layer's real inputs over X (model space), each flattened to (N, in).

    Rows of X are subsampled evenly to ``max_rows`` before the forward pass, and each layer's
    rows again after flattening (tokens, time steps). A layer that received nothing (an expert
    no token was routed to) gets an empty (0, in) array.
    """
    layers = _select(model, paths)
    X = torch.as_tensor(np.asarray(X)[_even_rows(len(X), max_rows)], dtype=torch.float32)
    seen: dict[str, list[torch.Tensor]] = {p: [] for p in layers}
    handles = []
    for p, layer in layers.items():
        def hook(module, args, p=p):
            seen[p].append(args[0].detach().reshape(-1, module.in_features))
        handles.append(layer.register_forward_pre_hook(hook))
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            for s in range(0, len(X), 4096):
                model(X[s:s + 4096])
    finally:
        for h in handles:
            h.remove()
        model.train(was)
    out = {}
    for p, layer in layers.items():
        rows = (torch.cat(seen[p]).numpy() if seen[p]
                else np.zeros((0, layer.in_features), dtype=np.float32))
        out[p] = rows[_even_rows(len(rows), max_rows)]
    return out


# ---------------------------------------------------------------------------- stats


@dataclass
class _Stats:
    u: np.ndarray  # (N, in) edge coordinates
    phi: np.ndarray  # (N, out, in)
    edge_std: np.ndarray
    node_std: np.ndarray


@torch.no_grad()
def _layer_stats(layer: nn.Module, inputs: np.ndarray) -> _Stats:
    was = layer.training
    layer.eval()
    try:
        x = torch.as_tensor(inputs, dtype=torch.float32)
        if len(x) == 0:
            u = x.reshape(0, layer.in_features)
            phi = torch.zeros(0, layer.out_features, layer.in_features)
        else:
            u = layer.edge_coordinate(x)
            phi = layer.edge_function(u)
    finally:
        layer.train(was)
    phi_np = phi.double().numpy()
    if len(phi_np) > 1:
        edge_std = phi_np.std(0)
        node_std = phi_np.sum(-1).std(0)
    else:
        edge_std = np.zeros(phi_np.shape[1:])
        node_std = np.zeros(phi_np.shape[1])
    return _Stats(u.numpy(), phi.numpy(), edge_std, node_std)


def kan_chain(model: nn.Module) -> list[tuple[str, nn.Module]] | None:
    """The layers of a plain KAN stack in forward order (None if model is not one)."""
    for name, m in model.named_modules():
        # Only the model itself or a registry Model's ``net`` (not a stack inside an expert).
        if isinstance(m, (KAN, FasterKAN, *_EDGE_STACKS)) and name in ("", "net"):
            # The stack must be the whole model (possibly wrapped by a registry Model).
            others = [n for n, mm in _all_kan_layers(model).items()
                      if not n.startswith(f"{name}.layers." if name else "layers.")]
            if others:
                return None
            prefix = f"{name}.layers" if name else "layers"
            return [(f"{prefix}.{i}", layer) for i, layer in enumerate(m.layers)]
    return None


def attribution(edge_stds: list[np.ndarray], node_stds: list[np.ndarray]
                ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """pykan-style scores of a KAN stack from per-layer spreads (see the module docstring).

    Returns (edge_scores: one (out, in) per layer, node_scores: one per level, inputs first,
    outputs last with 1 / n_outputs each).
    """
    n_out = edge_stds[-1].shape[0]
    node_scores: list[np.ndarray] = [np.full(n_out, 1.0 / n_out)]
    edge_scores: list[np.ndarray] = []
    for e_std, n_std in zip(reversed(edge_stds), reversed(node_stds), strict=True):
        score = e_std / (n_std[:, None] + _EPS_NODE) * node_scores[0][:, None]
        edge_scores.insert(0, score)
        node_scores.insert(0, score.sum(0))
    return edge_scores, node_scores


def _normalise(a: np.ndarray) -> np.ndarray:
    m = float(np.max(a)) if a.size else 0.0
    return a / m if m > 0 else np.zeros_like(a)


def _grid(u: np.ndarray, fallback: tuple[np.ndarray, np.ndarray], n_points: int,
          span: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """(in, n_points) grid over each column's observed range (``span`` if given, else the
    samples' range, else the fallback range)."""
    if span is not None:
        lo, hi = (np.asarray(v, dtype=float) for v in span)
    elif len(u):
        lo, hi = u.min(0).astype(float), u.max(0).astype(float)
    else:
        lo, hi = fallback
    flat = hi - lo <= 1e-12
    pad = 0.1 * np.maximum(1.0, np.abs(lo))
    lo, hi = np.where(flat, lo - pad, lo), np.where(flat, hi + pad, hi)
    t = np.linspace(0.0, 1.0, n_points)
    return lo[:, None] + (hi - lo)[:, None] * t[None, :]


def _layer_kind(layer: nn.Module) -> tuple[str, str, bool]:
    if isinstance(layer, (KANLinear, *_EDGE_LAYERS)):
        return "bspline", "raw", True
    norm = getattr(layer, "norm_kind", "none")
    return "rswaf", ("raw" if norm == "none" else "normalised"), norm != "layernorm"


@dataclass
class _InputView:
    """What the first layer of a stack knows about the dataset inputs it reads."""

    data: np.ndarray  # (N_all, in): every row of X, flattened (model space)
    offset: np.ndarray | None  # (in,) raw = x * scale + offset; None without a scaling
    scale: np.ndarray | None


def _input_view(X: np.ndarray | torch.Tensor, in_features: int,
                x_scaling: Any | None) -> _InputView | None:
    """The flattened model inputs and their per-column scaling (None if widths differ)."""
    data = np.asarray(X, dtype=float)
    data = data.reshape(len(data), -1)
    if data.shape[1] != in_features:
        return None
    if x_scaling is None:
        return _InputView(data, None, None)
    offset = np.asarray(x_scaling.offset, dtype=float).reshape(-1)
    scale = np.asarray(x_scaling.scale, dtype=float).reshape(-1)
    if in_features % len(offset):  # the scaling acts on the last axis of X, tiled when flat
        return _InputView(data, None, None)
    reps = in_features // len(offset)
    return _InputView(data, np.tile(offset, reps), np.tile(scale, reps))


@torch.no_grad()
def _curves_for(path: str, layer: nn.Module, st: _Stats, n_points: int, bins: int,
                edge_score: np.ndarray, in_score: np.ndarray, out_score: np.ndarray,
                score_kind: str, in_names: list[str], out_names: list[str],
                view: _InputView | None = None) -> LayerCurves:
    kind, coordinate, univariate = _layer_kind(layer)
    cx, cy = layer.control_points()
    cx = cx.detach().double().numpy()
    cy = cy.detach().double().numpy()
    reads_inputs = view is not None and coordinate == "raw" and len(view.data) > 0
    span = (view.data.min(0), view.data.max(0)) if reads_inputs else None
    x = _grid(st.u, (cx.min(1), cx.max(1)), n_points, span)  # (in, P)
    was = layer.training
    layer.eval()
    try:  # one vectorised evaluation of every edge on the whole grid
        xt = torch.as_tensor(x.T, dtype=torch.float32)
        y = layer.edge_function(xt).numpy()
        base_y = None
        if isinstance(layer, KANLinear):
            act = (layer.base_activation(xt) if layer.base_activation is not None
                   else torch.zeros_like(xt))  # (P, in)
            base_y = (layer.base_weight[:, :, None] * act.T[None]).double().numpy()
    finally:
        layer.train(was)
    y = np.ascontiguousarray(y.transpose(1, 2, 0))  # (out, in, P)
    density_u = view.data if reads_inputs else st.u
    counts = np.zeros((layer.in_features, bins))
    edges = np.zeros((layer.in_features, bins + 1))
    for i in range(layer.in_features):  # per input, not per edge
        counts[i], edges[i] = np.histogram(density_u[:, i], bins=bins,
                                           range=(x[i, 0], x[i, -1]))
    raw: dict[str, np.ndarray | None] = {"raw_x": None, "raw_samples": None,
                                         "raw_control_x": None, "raw_density_edges": None}
    if reads_inputs and view.scale is not None:
        sc, off = view.scale, view.offset
        raw = {"raw_x": x * sc[:, None] + off[:, None], "raw_samples": st.u * sc + off,
               "raw_control_x": cx * sc[:, None] + off[:, None],
               "raw_density_edges": edges * sc[:, None] + off[:, None]}
    return LayerCurves(
        path=path, kind=kind, coordinate=coordinate, univariate=univariate,
        in_features=layer.in_features, out_features=layer.out_features,
        x=x, y=y, samples=st.u, sample_y=st.phi, density_counts=counts, density_edges=edges,
        control_x=cx, control_y=cy, edge_std=st.edge_std, node_std=st.node_std,
        edge_score=edge_score, in_node_score=in_score, out_node_score=out_score,
        importance=_normalise(edge_score), in_node_importance=_normalise(in_score),
        out_node_importance=_normalise(out_score), score_kind=score_kind,
        in_names=in_names, out_names=out_names, base_y=base_y, **raw,
    )


def edge_curves(model: nn.Module, X: np.ndarray | torch.Tensor,
                paths: list[str] | str | None = None, n_points: int = 200,
                max_rows: int | None = 2000, bins: int = 30,
                feature_names: list[str] | None = None,
                target_names: list[str] | None = None,
                x_scaling: Any | None = None) -> dict[str, LayerCurves]:
    """Curves, samples, densities and importances of every (selected) KAN layer over X.

    X is in model space (``dataset.X_train``). ``feature_names``/``target_names`` label the
    first/last level of a plain KAN stack, hidden nodes are ``h{level}.{index}``
    (``kamoe.interpret.names``). With ``x_scaling`` (``dataset.x_scaling``) the stack's first
    layer also gets its abscissae in raw units. ``dataset_edge_curves`` fills all three.
    """
    chain = kan_chain(model)
    chain_paths = [p for p, _ in chain] if chain else []
    wanted = _select(model, paths)
    need = dict(wanted)
    if chain and any(p in chain_paths for p in wanted):
        need.update(dict(chain))  # attribution needs every layer of the stack
    inputs = layer_inputs(model, X, list(need), max_rows=max_rows)
    stats = {p: _layer_stats(need[p], inputs[p]) for p in need}

    scores: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, str]] = {}
    names: dict[str, tuple[list[str], list[str]]] = {}
    if chain and any(p in chain_paths for p in wanted):
        e_sc, n_sc = attribution([stats[p].edge_std for p in chain_paths],
                                 [stats[p].node_std for p in chain_paths])
        widths = [need[chain_paths[0]].in_features] + [need[p].out_features
                                                       for p in chain_paths]
        levels = node_names(widths, feature_names, target_names)
        for li, p in enumerate(chain_paths):
            scores[p] = (e_sc[li], n_sc[li], n_sc[li + 1], "attribution")
            names[p] = (levels[li], levels[li + 1])
    result = {}
    for p, layer in wanted.items():
        st = stats[p]
        if p not in scores:
            scores[p] = (st.edge_std, st.edge_std.sum(0), st.node_std, "std")
            names[p] = ([f"in{i}" for i in range(layer.in_features)],
                        [f"out{j}" for j in range(layer.out_features)])
        e, ni, no, kind = scores[p]
        view = (_input_view(X, layer.in_features, x_scaling)
                if chain_paths and p == chain_paths[0] else None)
        result[p] = _curves_for(p, layer, st, n_points, bins, e, ni, no, kind, *names[p],
                                view=view)
    return result


def dataset_edge_curves(model: nn.Module, dataset: Any, paths: list[str] | str | None = None,
                        split: str = "train", **kwargs: Any) -> dict[str, LayerCurves]:
    """``edge_curves`` over a dataset split, with its names and raw units filled in."""
    X = dataset.X_train if split == "train" else dataset.X_test
    chain = kan_chain(model)
    n_in = chain[0][1].in_features if chain else None
    n_out = chain[-1][1].out_features if chain else 1
    return edge_curves(model, X, paths, feature_names=input_names(dataset, n_in),
                       target_names=output_names(dataset, n_out),
                       x_scaling=dataset.x_scaling, **kwargs)


def importance_frame(curves: dict[str, LayerCurves]) -> pd.DataFrame:
    """All layers' ``to_frame()`` stacked into one long frame."""
    frames = [c.to_frame() for c in curves.values()]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


# ---------------------------------------------------------------------------- graph


def _cut_edges(layer: nn.Module) -> np.ndarray:
    """(out, in) True where a B-spline edge's base and spline weights are all zero."""
    if hasattr(layer, "cut_edges"):  # a registered layer knows its own cut edges
        return np.asarray(layer.cut_edges())
    if not isinstance(layer, KANLinear):
        return np.zeros((layer.out_features, layer.in_features), dtype=bool)
    with torch.no_grad():
        dead = (layer.base_weight == 0) & (layer.spline_weight == 0).all(-1)
    return dead.numpy()


def network_graph(model: nn.Module, X: np.ndarray | torch.Tensor, n_curve_points: int = 30,
                  beta: float = 3.0, max_rows: int | None = 2000,
                  feature_names: list[str] | None = None,
                  target_names: list[str] | None = None, x_scaling: Any | None = None,
                  node_labels: list[list[str]] | None = None) -> NetworkGraph:
    """Node positions, edge list with importances and small curves of a plain KAN stack.

    ``node_labels`` (one list per level) overrides the names, e.g. to keep a pruned network's
    hidden nodes named as before pruning (``kamoe.interpret.names.kept_node_names``).
    """
    chain = kan_chain(model)
    if not chain:
        raise ValueError(
            "network_graph needs a plain KAN stack (registry models 'kan' with head 'kan' or "
            "'fasterkan'); use edge_curves for KAN layers inside other models"
        )
    curves = edge_curves(model, X, [p for p, _ in chain], n_points=n_curve_points,
                         max_rows=max_rows, feature_names=feature_names,
                         target_names=target_names, x_scaling=x_scaling)
    layers = [curves[p] for p, _ in chain]
    widths = [layers[0].in_features] + [c.out_features for c in layers]
    if node_labels is not None:
        if [len(v) for v in node_labels] != widths:
            raise ValueError(f"node_labels has level sizes {[len(v) for v in node_labels]}, "
                             f"the network {widths}")
        for li, c in enumerate(layers):
            c.in_names, c.out_names = list(node_labels[li]), list(node_labels[li + 1])
    node_rows = []
    pos: list[np.ndarray] = []
    for level, w in enumerate(widths):
        xs = (np.arange(w) + 0.5) / w
        pos.append(xs)
        y = level / (len(widths) - 1)
        if level < len(layers):
            imp, labels = layers[level].in_node_importance, layers[level].in_names
        else:
            imp, labels = layers[-1].out_node_importance, layers[-1].out_names
        for i in range(w):
            node_rows.append({"level": level, "index": i, "x": float(xs[i]), "y": y,
                              "importance": float(imp[i]), "label": labels[i]})
    edge_rows, cxs, cys, rng = [], [], [], []
    for li, c in enumerate(layers):
        y0, y1 = li / (len(widths) - 1), (li + 1) / (len(widths) - 1)
        cut = _cut_edges(chain[li][1])
        for j in range(c.out_features):
            for i in range(c.in_features):
                imp = float(c.importance[j, i])
                raw = (float(c.raw_x[i, 0]), float(c.raw_x[i, -1])) if c.raw_x is not None \
                    else (np.nan, np.nan)
                edge_rows.append({"layer": li, "i": i, "j": j, "label": c.edge_label(j, i),
                                  "importance": imp, "alpha": float(np.tanh(beta * imp)),
                                  "cut": bool(cut[j, i]),
                                  "x0": float(pos[li][i]), "y0": y0,
                                  "x1": float(pos[li + 1][j]), "y1": y1,
                                  "raw_min": raw[0], "raw_max": raw[1]})
        # Rescale every curve of the layer to [0, 1] x [0, 1] at once.
        x, y = c.x, c.y  # (in, P), (out, in, P)
        xlo, xhi = x[:, :1], x[:, -1:]
        ylo, yhi = y.min(-1, keepdims=True), y.max(-1, keepdims=True)
        xn = np.broadcast_to((x - xlo) / np.where(xhi > xlo, xhi - xlo, 1.0), y.shape)
        yn = np.where(yhi > ylo, (y - ylo) / np.where(yhi > ylo, yhi - ylo, 1.0), 0.5)
        cxs.append(xn.reshape(-1, x.shape[1]))
        cys.append(yn.reshape(-1, x.shape[1]))
        xr = np.broadcast_to(np.concatenate([xlo, xhi], 1)[None], (c.out_features, c.in_features,
                                                                   2))
        rng.append(np.concatenate([xr, ylo, yhi], -1).reshape(-1, 4))
    return NetworkGraph(
        widths=widths, nodes=pd.DataFrame(node_rows), edges=pd.DataFrame(edge_rows),
        curve_x=np.concatenate(cxs), curve_y=np.concatenate(cys),
        curve_range=np.concatenate(rng), layer_paths=[p for p, _ in chain], beta=beta,
    )


def kan_node_names(model: nn.Module, dataset: Any) -> list[list[str]]:
    """Every node's label of a plain KAN stack on ``dataset``, level by level.

    The Formula page names an edge key (layer, out, in) with
    ``names.edge_name(kan_node_names(model, ds), *key)``: the same label the Splines page shows.
    """
    chain = kan_chain(model)
    if not chain:
        raise ValueError("node names need a plain KAN stack (registry model 'kan' or "
                         "'fasterkan')")
    widths = [chain[0][1].in_features] + [layer.out_features for _, layer in chain]
    return node_names(widths, input_names(dataset, widths[0]),
                      output_names(dataset, widths[-1]))


def dataset_network_graph(model: nn.Module, dataset: Any, split: str = "train",
                          **kwargs: Any) -> NetworkGraph:
    """``network_graph`` over a dataset split, with its names and raw units filled in."""
    chain = kan_chain(model)
    if not chain:
        return network_graph(model, dataset.X_train, **kwargs)  # raises the explanation
    X = dataset.X_train if split == "train" else dataset.X_test
    return network_graph(model, X, feature_names=input_names(dataset, chain[0][1].in_features),
                         target_names=output_names(dataset, chain[-1][1].out_features),
                         x_scaling=dataset.x_scaling, **kwargs)
