"""pykan's recipe in kamoe's rooms: sparsify, prune, extend the grid, snap, retrain (kan-snap).

``snap_network(model, dataset)`` reads the formula out of one KAN the way pykan's tutorials do
(KAN paper, arXiv 2404.19756, section 2.5.2; ``fix_symbolic`` then ``fit``):

1. a fresh ``kan`` is trained with the L1 + entropy sparsity penalty (a given model is copied,
   never changed);
2. hidden nodes and edges that carry almost nothing are pruned (``kamoe.interpret.prune``)
   and the smaller network retrained;
3. the grid is extended so that the edges become accurate curves;
4. every numeric edge is fitted with the function library; the confident ones are *snapped*:
   the edge becomes ``c * f(a * x + b) + d`` with (a, b, c, d) trainable and its spline weights
   zeroed, and the network is retrained around them. This repeats until every edge is
   symbolic; an edge whose best fit is poor is snapped last and reported by name;
5. the network, now made of library functions only, is the formula: ``SnapKAN.formula``
   composes it in the dataset's raw variables.

``SnapKAN`` is the torch module of step 4: the KAN's layers plus, per edge, a library function
index and its four affine parameters.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import sympy
import torch
from torch import nn

from kamoe.errors import FormulaError
from kamoe.nn.kan import KANLinear
from kamoe.symbolic.fit import Candidate, suggest
from kamoe.symbolic.library import LIBRARY

_NAMES = list(LIBRARY)  # function index -> name (the buffer stores indices)
SNAP_R2 = 0.9999  # an edge whose best library fit reaches this R^2 is snapped in the first rounds
POOR_R2 = 0.99  # below this, a snapped edge is reported as a poor fit


class SnappableLayer(nn.Module):
    """One KANLinear whose edges can each be numeric, symbolic (a library function) or cut."""

    def __init__(self, layer: KANLinear):
        super().__init__()
        self.layer = layer
        out, inn = layer.out_features, layer.in_features
        self.affine = nn.Parameter(torch.zeros(out, inn, 4))  # a, b, c, d per edge
        self.register_buffer("function", torch.full((out, inn), -1, dtype=torch.long))
        self.register_buffer("numeric", torch.ones(out, inn))  # 1 where the spline edge lives
        self.register_buffer("fit_r2", torch.full((out, inn), float("nan")))
        # keep the numeric weights of snapped or cut edges at exactly zero while training
        layer.base_weight.register_hook(lambda g: g * self.numeric)
        layer.spline_weight.register_hook(lambda g: g * self.numeric.unsqueeze(-1))
        self.affine.register_hook(lambda g: g * (self.function >= 0).unsqueeze(-1))
        with torch.no_grad():  # edges the pruning already cut are not numeric
            dead = (layer.base_weight == 0) & (layer.spline_weight == 0).all(-1)
            self.numeric[dead] = 0.0

    @property
    def in_features(self) -> int:
        return self.layer.in_features

    @property
    def out_features(self) -> int:
        return self.layer.out_features

    def state(self, j: int, i: int) -> str:
        """'numeric', 'symbolic' or 'cut'."""
        if int(self.function[j, i]) >= 0:
            return "symbolic"
        return "numeric" if bool(self.numeric[j, i]) else "cut"

    @torch.no_grad()
    def snap(self, j: int, i: int, cand: Candidate) -> None:
        """Edge i -> j becomes ``cand`` (its spline weights zeroed, its affine trainable)."""
        self.layer.base_weight[j, i] = 0.0
        self.layer.spline_weight[j, i] = 0.0
        self.numeric[j, i] = 0.0
        self.function[j, i] = _NAMES.index(cand.name)
        self.affine[j, i] = torch.tensor([cand.a, cand.b, cand.c, cand.d])
        self.fit_r2[j, i] = float(cand.r2)

    def _symbolic(self, x: torch.Tensor):
        """(output indices, input indices, values (N, edges)) of the symbolic edges."""
        sym = self.function >= 0
        for k in torch.unique(self.function[sym]).tolist():
            js, is_ = torch.nonzero(self.function == k, as_tuple=True)
            a, b, c, d = self.affine[js, is_].unbind(-1)
            yield js, is_, c * LIBRARY[_NAMES[k]].torch(a * x[:, is_] + b) + d

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.layer(x)
        for js, _, v in self._symbolic(x):
            y = y.index_add(1, js, v)
        return y

    # the KAN-layer reading protocol of kamoe.interpret (curves, importances, drawings)
    def edge_coordinate(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(-1, self.in_features)

    def edge_function(self, u: torch.Tensor) -> torch.Tensor:
        """Every edge's value (N, out, in): the spline edges' and the snapped functions'."""
        phi = self.layer.edge_curves(u).clone()
        for js, is_, v in self._symbolic(u):
            phi[:, js, is_] += v
        return phi

    def control_points(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.layer.control_points()

    def cut_edges(self) -> np.ndarray:
        """(out, in) True where the edge is neither numeric nor symbolic."""
        return ((self.numeric == 0) & (self.function < 0)).numpy()

    def functions(self) -> dict[tuple[int, int], str]:
        """{(out, in): library function name} of the symbolic edges."""
        return {(int(j), int(i)): _NAMES[int(self.function[j, i])]
                for j, i in torch.nonzero(self.function >= 0).tolist()}


class SnapKAN(nn.Module):
    """A stack of snappable layers (a plain ``kan`` model's layers, copied)."""

    def __init__(self, kan_model: nn.Module):
        super().__init__()
        layers = kan_model.net.layers
        self.layers = nn.ModuleList(SnappableLayer(copy.deepcopy(layer)) for layer in layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x

    @property
    def widths(self) -> list[int]:
        return [self.layers[0].in_features] + [lay.out_features for lay in self.layers]

    def edge_keys(self, state: str | None = None) -> list[tuple[int, int, int]]:
        """(layer, out, in) of every edge, or of those in ``state``."""
        return [(li, j, i) for li, lay in enumerate(self.layers)
                for j in range(lay.out_features) for i in range(lay.in_features)
                if state is None or lay.state(j, i) == state]

    @torch.no_grad()
    def layer_inputs(self, X: torch.Tensor) -> list[torch.Tensor]:
        ins, x = [], X
        for layer in self.layers:
            ins.append(x)
            x = layer(x)
        return ins

    @torch.no_grad()
    def edge_samples(self, X: torch.Tensor, key: tuple[int, int, int]
                     ) -> tuple[np.ndarray, np.ndarray]:
        """(inputs, numeric edge outputs) of one edge over the samples X (model space)."""
        li, j, i = key
        x = self.layer_inputs(X)[li]
        phi = self.layers[li].layer.edge_curves(x)[:, j, i]
        return x[:, i].double().numpy(), phi.double().numpy()

    def formula(self, dataset) -> sympy.Expr:
        """The network as a formula in the dataset's raw variables (every live edge symbolic)."""
        left = self.edge_keys("numeric")
        if left:
            raise FormulaError(f"{len(left)} edges are still numeric (e.g. {left[0]}); snap "
                             "them first")
        xs = dataset.x_scaling
        nodes = [(sympy.Symbol(n) - sympy.Float(float(o))) / sympy.Float(float(c))
                 for n, o, c in zip(dataset.feature_names, np.ravel(xs.offset),
                                    np.ravel(xs.scale), strict=True)]
        for lay in self.layers:
            new = []
            for j in range(lay.out_features):
                total = sympy.Integer(0)
                for i in range(lay.in_features):
                    if lay.state(j, i) != "symbolic":
                        continue
                    a, b, c, d = (float(v) for v in lay.affine[j, i].detach())
                    name = _NAMES[int(lay.function[j, i])]
                    cand = Candidate(name, a, b, c, d, float("nan"), 0, 0.0)
                    total += cand.expr(nodes[i])
                if lay.layer.bias is not None:
                    total += sympy.Float(float(lay.layer.bias[j]))
                new.append(total)
            nodes = new
        out = nodes[0]
        ys = dataset.y_scaling
        if ys is not None:
            out = out * sympy.Float(float(np.ravel(ys.scale)[0])) + sympy.Float(
                float(np.ravel(ys.offset)[0]))
        return out

    def edge_functions(self) -> dict[tuple[int, int, int], str]:
        """{(layer, out, in): function name} of every symbolic edge (for the drawing)."""
        return {(li, j, i): name for li, lay in enumerate(self.layers)
                for (j, i), name in lay.functions().items()}

    def edges(self, inputs: list[str] | None = None,
              outputs: list[str] | None = None) -> pd.DataFrame:
        """One row per edge: layer, out, in, its name, state, function and fit R^2."""
        rows = []
        for li, j, i in self.edge_keys():
            lay = self.layers[li]
            st = lay.state(j, i)
            rows.append({"layer": li, "out": j, "in": i,
                         "edge": edge_label(self.widths, (li, j, i), inputs, outputs),
                         "state": st,
                         "function": _NAMES[int(lay.function[j, i])] if st == "symbolic"
                         else None,
                         "r2": float(lay.fit_r2[j, i]) if st == "symbolic" else None})
        return pd.DataFrame(rows)


def _register() -> None:
    from kamoe.interpret.edges import register_edge_layer

    register_edge_layer(SnappableLayer, SnapKAN)


_register()


def edge_label(widths: list[int], key: tuple[int, int, int], inputs: list[str] | None = None,
               outputs: list[str] | None = None) -> str:
    """An edge's name in the one naming scheme of every page: 'r → h1.2', 'h1.0 → flux'."""
    from kamoe.interpret.names import edge_name, node_names

    return edge_name(node_names(widths, inputs, outputs), *key)


@dataclass
class SnapReport:
    """What ``snap_network`` did: the snapped network, its formula and the steps taken."""

    network: SnapKAN
    formula: sympy.Expr
    steps: list[str] = field(default_factory=list)
    poor: list[str] = field(default_factory=list)  # edges snapped with a poor fit, by name
    widths_trained: list[int] = field(default_factory=list)
    widths_pruned: list[int] = field(default_factory=list)
    r2_before: float = float("nan")  # the network's test R^2 before snapping
    r2_after: float = float("nan")  # the snapped network's test R^2 (= the formula's, raw)
    seconds: float = 0.0

    def edges(self, inputs: list[str] | None = None,
              outputs: list[str] | None = None) -> pd.DataFrame:
        return self.network.edges(inputs, outputs)


def _train_config(epochs: int, seed: int, seconds: float | None, sparsity: float = 0.0,
                  grid: bool = False):
    """The recipes' formula schedule for one stage (grid updates only while training fresh)."""
    from kamoe.recipes import formula_schedule

    return formula_schedule(epochs=epochs, patience=10, plateau_patience=None, seed=seed,
                            sparsity=sparsity, grid_update_epochs=10 if grid else 0,
                            max_seconds=None if seconds is None else max(0.2, seconds))


# A fit whose scale or offset is this many times the edge's largest value is a cancellation
# (2e8*cos(1e-4*u - pi) + 2e8 for a parabola): float32 cannot carry it through the network.
_MAX_GAIN = 1e3


def _well_posed(cands: list[Candidate], y: np.ndarray) -> Candidate:
    """The best-scored fit whose scale and offset stay within _MAX_GAIN of the edge's values."""
    size = float(np.abs(y).max()) + 1e-12
    for c in cands:
        if max(abs(c.c), abs(c.d)) <= _MAX_GAIN * size:
            return c
    return cands[0]


def snap_network(model, dataset, *, deadline: float | None = None, seed: int = 0,
                 lib: list[str] | None = None, sparsity: float = 1e-3, grid: int = 10,
                 prune: bool = True, progress=None) -> SnapReport:
    """Read the formula out of a KAN by pruning and snapping (see the module docstring).

    ``model``: a trained plain ``kan`` registry model on ``dataset`` (copied), or None to
    train a fresh [d, 5, 1] with the sparsity penalty. Raises TimeoutError when the
    ``deadline`` passes before every edge is symbolic (a half-snapped network is no formula).
    """
    from kamoe.interpret.prune import extend_grid
    from kamoe.interpret.prune import prune as prune_kan
    from kamoe.models import build_for
    from kamoe.train import evaluate, fit, set_seed

    t0 = time.time()
    steps: list[str] = []
    total = None if deadline is None else max(1.0, deadline - t0)

    def budget(share: float) -> float | None:
        """Seconds for a stage: its share of the whole budget, never past the deadline."""
        if deadline is None:
            return None
        return max(0.0, min(share * total, deadline - time.time()))

    def say(frac: float, text: str) -> None:
        steps.append(text)
        if progress:
            progress(frac, text)

    if model is None:
        set_seed(seed)
        model = build_for("kan", dataset, hidden=[5])
        fit(model, dataset, _train_config(60, seed, budget(0.3), sparsity=sparsity, grid=True))
        say(0.1, f"trained KAN {list(model.net.widths)} with sparsity {sparsity:g}: test R^2 "
                 f"{evaluate(model, dataset)['r2']:.6f}")
    else:
        model = copy.deepcopy(model)
        say(0.1, f"read the given KAN {list(model.net.widths)}: test R^2 "
                 f"{evaluate(model, dataset)['r2']:.6f}")
    widths_trained = list(model.net.widths)
    if prune and (deadline is None or time.time() < deadline - 0.5 * total):
        rep = prune_kan(model, dataset, retrain=True,
                        train_config=_train_config(30, seed, budget(0.15)))
        model = rep.model
        say(0.25, f"pruned to {rep.widths_after} ({len(rep.removed_edges)} edges cut) and "
                  f"retrained: test R^2 {rep.metrics_retrained['r2']:.6f}")
    if grid and grid > model.config["grid_size"] and (deadline is None
                                                      or time.time() < deadline - 0.4 * total):
        finer = extend_grid(model, grid, dataset.X_train)
        fit(finer, dataset, _train_config(30, seed, budget(0.15)))
        if evaluate(finer, dataset)["r2"] >= evaluate(model, dataset)["r2"]:
            say(0.35, f"grid extended {model.config['grid_size']} -> {grid}: test R^2 "
                      f"{evaluate(finer, dataset)['r2']:.6f}")
            model = finer
    r2_before = float(evaluate(model, dataset)["r2"])
    net = SnapKAN(model)
    X = torch.as_tensor(dataset.X_train[:1500], dtype=torch.float32)
    poor: list[str] = []
    names, targets = list(dataset.feature_names), list(dataset.target_names)
    rounds = 0
    while net.edge_keys("numeric"):
        rounds += 1
        # out of time: the rest is snapped at once, with no retraining
        late = deadline is not None and time.time() > deadline - 0.15 * total
        fits = {}
        for key in net.edge_keys("numeric"):
            if deadline is not None and time.time() > deadline:
                raise TimeoutError(f"kan-snap ran out of time with {len(fits)} of "
                                   f"{len(net.edge_keys('numeric'))} edges fitted in round "
                                   f"{rounds}")
            x, y = net.edge_samples(X, key)
            if np.ptp(y) < 1e-8 * (1 + np.abs(y).max()):
                fits[key] = Candidate("0", 0.0, 0.0, 0.0, float(y.mean()), 1.0, 0, 0.0)
            else:  # '0' only for a flat edge: pykan's simplicity weight zeroes real edges
                funcs = [n for n in (lib or LIBRARY) if n != "0"]
                fits[key] = _well_posed(suggest(x, y, lib=funcs, top=6, weight_simple=0.5,
                                                seed=seed), y)
        confident = [k for k, c in fits.items() if c.r2 >= SNAP_R2]
        chosen = confident if (confident and not late and rounds < 6) else list(fits)
        if not confident and not late and rounds < 6:  # none sure yet: the single best one
            chosen = [max(fits, key=lambda k: fits[k].r2)]
        for key in chosen:
            net.layers[key[0]].snap(key[1], key[2], fits[key])
            if fits[key].r2 < POOR_R2:
                poor.append(f"{edge_label(net.widths, key, names, targets)}: best fit "
                            f"{fits[key].name} with R^2 {fits[key].r2:.4f}")
        if not late:
            fit(net, dataset, _train_config(20, seed, budget(0.1)))
        left = len(net.edge_keys("numeric"))
        say(0.4 + 0.5 * (1 - left / max(1, left + len(chosen))),
            f"round {rounds}: snapped {len(chosen)} edge(s) "
            f"({', '.join(sorted({fits[k].name for k in chosen}))}), {left} numeric left; "
            f"retrained: test R^2 {evaluate(net, dataset)['r2']:.6f}")
    r2_after = float(evaluate(net, dataset)["r2"])
    formula = net.formula(dataset)
    say(1.0, f"formula composed from {len(net.edge_keys('symbolic'))} symbolic edges")
    return SnapReport(network=net, formula=formula, steps=steps, poor=poor,
                      widths_trained=widths_trained, widths_pruned=list(model.net.widths),
                      r2_before=r2_before, r2_after=r2_after, seconds=time.time() - t0)
