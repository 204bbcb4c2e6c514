"""Per-edge symbolic state of a trained KAN and the composed formula in original units.

``SymbolicKAN(model, dataset)`` lists every edge with its candidate table, lets a user fix an
edge by hand (``fix``) or all edges automatically (``auto``), and composes the network's formula
(``formula``) with the dataset's input/output scaling substituted, so it reads in raw variables.
The state lives in the wrapper; ``symbolic_state(model, dataset)`` keeps one per model.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import sympy
import torch

from kamoe.errors import FormulaError
from kamoe.models import find_kan_layers
from kamoe.nn.kan import KANLinear
from kamoe.symbolic.fit import Candidate, suggest
from kamoe.symbolic.library import LIBRARY

EdgeKey = tuple[int, int, int]  # (layer index, out, in)


class SymbolicKAN:
    """Symbolic fits for the edges of a B-spline KAN (stacked KANLinear, no other ops)."""

    def __init__(self, model: torch.nn.Module, dataset, max_points: int = 2000, seed: int = 0):
        layers = find_kan_layers(model)
        self.paths = [p for p, m in layers.items() if isinstance(m, KANLinear)]
        if not self.paths or len(self.paths) != len(layers):
            raise FormulaError("symbolic fitting needs a B-spline KAN (kamoe 'kan' model)")
        self.layers: list[KANLinear] = [layers[p] for p in self.paths]
        self.model, self.dataset, self.seed = model, dataset, seed
        rng = np.random.default_rng(seed)
        X = np.asarray(dataset.X_train, dtype=np.float32)
        if len(X) > max_points:
            X = X[rng.choice(len(X), max_points, replace=False)]
        self.X = X
        self.fixed: dict[EdgeKey, Candidate] = {}
        self._suggestions: dict[EdgeKey, list[Candidate]] = {}
        self._acts: list[np.ndarray] | None = None
        self._curves: list[np.ndarray] | None = None

    # -------------------------------------------------------------- activations
    def _forward(self) -> None:
        acts, curves = [], []
        x = torch.as_tensor(self.X)
        with torch.no_grad():
            for layer in self.layers:
                acts.append(x.numpy().astype(float))
                curves.append(layer.edge_curves(x).numpy().astype(float))
                x = layer(x)
        self._acts, self._curves = acts, curves

    def edge_data(self, layer: int, out: int, inp: int) -> tuple[np.ndarray, np.ndarray]:
        """(edge input samples, edge output samples) of one edge."""
        if self._acts is None:
            self._forward()
        return self._acts[layer][:, inp], self._curves[layer][:, out, inp]

    def edge_keys(self) -> list[EdgeKey]:
        return [(li, j, i) for li, lay in enumerate(self.layers)
                for j in range(lay.out_features) for i in range(lay.in_features)]

    # -------------------------------------------------------------- fitting
    def suggest(self, layer: int, out: int, inp: int, lib: list[str] | None = None,
                top: int = 5, weight_simple: float = 0.8) -> list[Candidate]:
        """Candidate functions for one edge, best first (cached for the default library)."""
        key = (layer, out, inp)
        if lib is None and key in self._suggestions and len(self._suggestions[key]) >= top:
            return self._suggestions[key][:top]
        x, y = self.edge_data(*key)
        if np.ptp(y) < 1e-8 * (1 + np.abs(y).max()):
            cands = [Candidate("0", 0.0, 0.0, 0.0, float(y.mean()), 1.0, 0, 0.0)]
        else:
            cands = suggest(x, y, lib=lib, top=top, weight_simple=weight_simple, seed=self.seed)
        if lib is None:
            self._suggestions[key] = cands
        return cands

    def fix(self, layer: int, out: int, inp: int, name_or_candidate: str | Candidate) -> Candidate:
        """Set one edge to a library function (fitted to the edge) or to a given Candidate."""
        key = (layer, out, inp)
        if key not in set(self.edge_keys()):
            raise FormulaError(f"no edge {key}; layers have shapes "
                             f"{[(m.out_features, m.in_features) for m in self.layers]}")
        if isinstance(name_or_candidate, Candidate):
            cand = name_or_candidate
        else:
            if name_or_candidate not in LIBRARY:
                raise FormulaError(f"unknown function {name_or_candidate!r}; choose from "
                                 f"{sorted(LIBRARY)}")
            cand = self.suggest(layer, out, inp, lib=[name_or_candidate], top=1)[0]
        self.fixed[key] = cand
        return cand

    def unfix(self, layer: int, out: int, inp: int) -> None:
        self.fixed.pop((layer, out, inp), None)

    def auto(self, lib: list[str] | None = None, weight_simple: float = 0.8,
             progress: Callable[[float, str], None] | None = None,
             deadline: float | None = None) -> None:
        """Fix every edge not fixed by hand to its best-scoring candidate."""
        import time

        keys = [k for k in self.edge_keys() if k not in self.fixed]
        for n, key in enumerate(keys):
            if deadline is not None and time.time() > deadline:
                break
            self.fixed[key] = self.suggest(*key, lib=lib, top=1, weight_simple=weight_simple)[0]
            if progress:
                progress((n + 1) / len(keys), f"edge {key}: {self.fixed[key].name}")

    def edges(self) -> pd.DataFrame:
        """One row per edge: layer, out, in, function, r2, complexity, fixed (bool)."""
        rows = []
        for key in self.edge_keys():
            cand = self.fixed.get(key)
            fixed = cand is not None
            if cand is None and key in self._suggestions:
                cand = self._suggestions[key][0]
            rows.append({"layer": key[0], "out": key[1], "in": key[2],
                         "function": cand.name if cand else None,
                         "r2": cand.r2 if cand else None,
                         "complexity": cand.complexity if cand else None, "fixed": fixed})
        return pd.DataFrame(rows)

    # -------------------------------------------------------------- formula
    def formula(self, output: int = 0) -> sympy.Expr:
        """The composed formula of one output in raw variables (all edges must be fixed)."""
        missing = [k for k in self.edge_keys() if k not in self.fixed]
        if missing:
            raise FormulaError(f"{len(missing)} edges are not fixed yet (e.g. {missing[0]}); "
                             "run auto() or fix them first")
        ds = self.dataset
        raw = [sympy.Symbol(n) for n in ds.feature_names]
        xs = ds.x_scaling
        nodes: list[sympy.Expr] = [
            (s - sympy.Float(float(o))) / sympy.Float(float(c))
            for s, o, c in zip(raw, np.ravel(xs.offset), np.ravel(xs.scale), strict=False)
        ] if xs is not None else list(raw)
        for li, lay in enumerate(self.layers):
            new = []
            for j in range(lay.out_features):
                total = sympy.Integer(0)
                for i in range(lay.in_features):
                    cand = self.fixed[(li, j, i)]
                    if cand.name != "0":
                        total += cand.expr(nodes[i])
                    else:
                        total += sympy.Float(cand.d)
                if lay.bias is not None:
                    total += sympy.Float(float(lay.bias[j]))
                new.append(total)
            nodes = new
        out = nodes[output]
        ys = ds.y_scaling
        if ys is not None:
            out = out * sympy.Float(float(np.ravel(ys.scale)[output])) + sympy.Float(
                float(np.ravel(ys.offset)[output]))
        return sympy.expand(out) if out.count_ops() < 200 else out


def symbolic_state(model: torch.nn.Module, dataset=None) -> SymbolicKAN:
    """The SymbolicKAN attached to ``model`` (created on first use, which needs the dataset)."""
    state = getattr(model, "_kamoe_symbolic", None)
    if state is None:
        if dataset is None:
            raise ValueError("the first symbolic call on a model needs its dataset")
        state = SymbolicKAN(model, dataset)
        object.__setattr__(model, "_kamoe_symbolic", state)
    return state


def _layer_index(state: SymbolicKAN, layer_path: str | int) -> int:
    if isinstance(layer_path, int):
        return layer_path
    if layer_path not in state.paths:
        raise FormulaError(f"unknown KAN layer {layer_path!r}; layers are {state.paths}")
    return state.paths.index(layer_path)


def fix(model: torch.nn.Module, layer_path: str | int, out_index: int, in_index: int,
        name_or_candidate: str | Candidate, dataset=None) -> Candidate:
    """Set one edge of ``model`` by hand (layer by module path or index)."""
    state = symbolic_state(model, dataset)
    return state.fix(_layer_index(state, layer_path), out_index, in_index, name_or_candidate)


def auto(model: torch.nn.Module, dataset=None, **kw) -> SymbolicKAN:
    """Fix every unfixed edge of ``model`` to its best candidate; returns the state."""
    state = symbolic_state(model, dataset)
    state.auto(**kw)
    return state
