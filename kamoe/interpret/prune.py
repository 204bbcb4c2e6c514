"""Pruning of plain KAN models, as pykan's ``prune()`` (anchors-kan 1.6), in its own room.

1. Hidden nodes whose attribution score (``edges.attribution``: the pykan ``attribute()``
   scores, dimensionless) is below ``node_threshold`` are removed: a new, narrower ``kan`` model
   is built with the same layer settings and the kept edges' weights and grids are copied.
2. Scores are recomputed on the smaller model and edges scoring below ``edge_threshold`` are
   cut by zeroing their base and spline weights, so a cut edge contributes exactly 0. Zeros
   survive ``save_model``/``load_model`` as they are ordinary weights; while ``prune`` retrains
   (``retrain=True``) gradient hooks keep them at zero.

Removing a node is exact when it carries nothing downstream; a node that is constant over the
data but whose outgoing edges are not zero at that constant shifts the outputs by a constant.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from kamoe.interpret.edges import _layer_stats, attribution, kan_chain, layer_inputs
from kamoe.models import Model, build
from kamoe.nn.kan import KAN, KANLinear


@dataclass
class PruneReport:
    """The pruned model and what pruning did.

    ``removed_nodes``: (level, index) of removed hidden nodes, level 1..L-1 in the original
    widths. ``removed_edges``: (layer, out j, in i) of zeroed edges, indices in the *pruned*
    model. ``widths_before``/``widths_after``: [in, hidden..., out]. ``params_*``: parameter
    counts; ``active_params_*``: non-zero ones. ``metrics_*``: test metrics (original units);
    ``metrics_retrained`` and ``history`` only when ``retrain=True``.
    """

    model: Model
    removed_nodes: list[tuple[int, int]]
    removed_edges: list[tuple[int, int, int]]
    widths_before: list[int]
    widths_after: list[int]
    params_before: int
    params_after: int
    active_params_before: int
    active_params_after: int
    metrics_before: dict[str, float]
    metrics_after: dict[str, float]
    metrics_retrained: dict[str, float] | None = None
    history: Any = None
    node_scores: list[np.ndarray] = field(default_factory=list)
    edge_scores: list[np.ndarray] = field(default_factory=list)


def _active(model: nn.Module) -> int:
    return int(sum(int((p != 0).sum()) for p in model.parameters()))


def _scores(model: nn.Module, X: np.ndarray, max_rows: int
            ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    chain = kan_chain(model)
    assert chain is not None
    ins = layer_inputs(model, X, [p for p, _ in chain], max_rows=max_rows)
    stats = [_layer_stats(layer, ins[p]) for p, layer in chain]
    return attribution([s.edge_std for s in stats], [s.node_std for s in stats])


def _check(model: nn.Module) -> KAN:
    net = getattr(model, "net", None)
    if not (isinstance(model, Model) and model.config.get("name") == "kan"
            and isinstance(net, KAN)):
        name = model.config.get("name") if isinstance(model, Model) else type(model).__name__
        raise ValueError(
            f"pruning supports 'kan' models (a stack of B-spline KAN layers, head 'kan'); "
            f"got {name!r}"
        )
    return net


@torch.no_grad()
def _copy_layer(src: KANLinear, dst: KANLinear, outs: list[int], ins: list[int]) -> None:
    o, i = torch.as_tensor(outs), torch.as_tensor(ins)
    dst.base_weight.copy_(src.base_weight[o][:, i])
    dst.spline_weight.copy_(src.spline_weight[o][:, i])
    if src.spline_scaler is not None:
        dst.spline_scaler.copy_(src.spline_scaler[o][:, i])
    if src.bias is not None:
        dst.bias.copy_(src.bias[o])
    dst.grid.copy_(src.grid[i])
    dst.grid_uniform.copy_(src.grid_uniform)


def remove_nodes(model: Model, keep: list[list[int]]) -> Model:
    """A new ``kan`` model keeping, per hidden level, the node indices in ``keep``."""
    net = _check(model)
    conf = dict(model.config)
    name, shape, out_dim = conf.pop("name"), conf.pop("input_shape"), conf.pop("output_dim")
    conf["hidden"] = [len(k) for k in keep]
    new = build(name, shape, out_dim, **conf)
    levels = [list(range(net.widths[0]))] + [list(k) for k in keep] + [
        list(range(net.widths[-1]))]
    for li, (src, dst) in enumerate(zip(net.layers, new.net.layers, strict=True)):
        _copy_layer(src, dst, levels[li + 1], levels[li])
    new.train(model.training)
    return new


@torch.no_grad()
def zero_edges(model: Model, edges: list[tuple[int, int, int]]) -> None:
    """Cut edges (layer, j, i) in place: base and spline weights set to 0 (the edge is then 0)."""
    layers = _check(model).layers
    for li, j, i in edges:
        layers[li].base_weight[j, i] = 0.0
        layers[li].spline_weight[j, i] = 0.0


def _edge_masks(model: Model) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Parameter/mask pairs that keep currently-cut edges at zero during retraining."""
    pairs = []
    for layer in _check(model).layers:
        dead = (layer.base_weight == 0) & (layer.spline_weight == 0).all(-1)
        if dead.any():
            pairs.append((layer.base_weight, (~dead).float()))
            pairs.append((layer.spline_weight, (~dead).float().unsqueeze(-1)))
    return pairs


def prune(model: Model, dataset: Any, edge_threshold: float = 0.03,
          node_threshold: float = 0.01, retrain: bool = False, train_config: Any = None,
          max_rows: int = 2000) -> PruneReport:
    """Remove unimportant hidden nodes and cut unimportant edges of a ``kan`` model.

    Scores are computed on ``dataset.X_train``; the input model is left untouched.
    """
    from kamoe.train import evaluate

    net = _check(model)
    if edge_threshold < 0 or node_threshold < 0:
        raise ValueError("edge_threshold and node_threshold must be >= 0")
    X = dataset.X_train
    widths_before = list(net.widths)
    edge_sc, node_sc = _scores(model, X, max_rows)
    keep, removed_nodes = [], []
    for level in range(1, len(widths_before) - 1):
        score = node_sc[level]
        kept = [int(i) for i in np.flatnonzero(score >= node_threshold)]
        if not kept:  # a level cannot be empty: keep its best node
            kept = [int(np.argmax(score))]
        keep.append(kept)
        removed_nodes += [(level, i) for i in range(len(score)) if i not in kept]
    pruned = remove_nodes(model, keep)
    edge_sc2, node_sc2 = _scores(pruned, X, max_rows)
    cut = [(li, int(j), int(i)) for li, s in enumerate(edge_sc2)
           for j, i in zip(*np.nonzero(s < edge_threshold), strict=True)]
    zero_edges(pruned, cut)
    report = PruneReport(
        model=pruned, removed_nodes=removed_nodes, removed_edges=cut,
        widths_before=widths_before, widths_after=list(pruned.net.widths),
        params_before=sum(p.numel() for p in model.parameters()),
        params_after=sum(p.numel() for p in pruned.parameters()),
        active_params_before=_active(model), active_params_after=_active(pruned),
        metrics_before=evaluate(model, dataset, "test"),
        metrics_after=evaluate(pruned, dataset, "test"),
        node_scores=node_sc, edge_scores=edge_sc,
    )
    if retrain:
        report.history = fit_keeping_cuts(pruned, dataset, train_config)
        report.metrics_retrained = evaluate(pruned, dataset, "test")
        report.active_params_after = _active(pruned)
    return report


def cut_edges(model: Model) -> list[tuple[int, int, int]]:
    """(layer, out j, in i) of every edge whose base and spline weights are all zero."""
    return [(li, int(j), int(i)) for li, layer in enumerate(_check(model).layers)
            for j, i in zip(*np.nonzero(((layer.base_weight == 0)
                                         & (layer.spline_weight == 0).all(-1)).numpy()),
                            strict=True)]


def fit_keeping_cuts(model: Model, dataset: Any, train_config: Any = None,
                     callback: Any = None, stop: Any = None) -> Any:
    """``kamoe.train.fit`` of a ``kan`` model whose cut edges stay exactly zero; the History.

    Gradient hooks mask the cut edges' weights while training and the weights are zeroed again
    afterwards (an optimiser's weight decay or momentum cannot revive them).
    """
    from kamoe.train import fit

    cut = cut_edges(model)
    handles = [p.register_hook(lambda g, m=m: g * m) for p, m in _edge_masks(model)]
    try:
        history = fit(model, dataset, train_config, callback=callback, stop=stop)
    finally:
        for h in handles:
            h.remove()
    zero_edges(model, cut)
    return history


def extend_grid(model: Model, grid_size: int, X: np.ndarray) -> Model:
    """A new ``kan`` model on a finer grid, each edge fitted to ``model``'s on X (pykan refine).

    X is in model space (``dataset.X_train``); every layer's knots are spread evenly over the
    inputs that layer receives from X. The input model is left untouched.
    """
    net = _check(model)
    if int(grid_size) < 1:
        raise ValueError(f"grid_size must be an integer >= 1, got {grid_size!r}")
    conf = dict(model.config)
    name, shape, out_dim = conf.pop("name"), conf.pop("input_shape"), conf.pop("output_dim")
    conf["grid_size"] = int(grid_size)
    new = build(name, shape, out_dim, **conf)
    chain = kan_chain(model)
    ins = layer_inputs(model, X, [p for p, _ in chain], max_rows=None)
    with torch.no_grad():
        for (path, _), src, dst in zip(chain, net.layers, new.net.layers, strict=True):
            dst.refine_from(src, torch.as_tensor(ins[path], dtype=dst.grid.dtype))
    new.train(model.training)
    return new
