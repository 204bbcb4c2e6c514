"""The KAN path of ``extract_formula``: formulas read from a trained KAN, never from a search
on the raw data alone.

Two readings, both reported with their own ``method``:

- ``kan-tree``: the KAN is the surrogate of AI Feynman's recursion (``kamoe.symbolic.tree``):
  its structure tests split the problem into separable blocks, symmetric pairs and output
  transforms, down to one-variable pieces that are single KAN edges read with the function
  library. The user's own KAN is the surrogate when one is given.
- ``kan-snap``: pykan's recipe on one network (``kamoe.symbolic.snap``): sparsify, prune,
  extend the grid, snap edges to library functions and retrain until every edge is symbolic.

Both hand their candidates to the pipeline's search, which refits every constant on the data
and keeps the best; this module only produces candidates, steps and the per-piece report.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sympy

from kamoe.symbolic.surrogate import Surrogate, train_surrogate
from kamoe.symbolic.tree import Context, Problem, Solution, solve


@dataclass
class KanReading:
    """What the KAN path found: the surrogate, its test R^2 and the derivation of the best."""

    surrogate: Surrogate | None = None
    network_r2: float | None = None
    steps: dict[str, list[str]] = field(default_factory=dict)  # per candidate (sympy string)
    weak: dict[str, list[str]] = field(default_factory=dict)  # pieces fitted worse than tol
    pieces: dict[str, list[dict]] = field(default_factory=dict)  # per candidate: its edges
    graphs: dict[str, dict] = field(default_factory=dict)  # per candidate: the derivation
    state: Any = None  # the snapped network (kan-snap), for the per-edge table
    log: list[str] = field(default_factory=list)


def model_surrogate(model, dataset, X_val: np.ndarray, y_val: np.ndarray) -> Surrogate:
    """A user's trained KAN (registry model on ``dataset``) as a surrogate in raw units."""
    from kamoe.train import predict

    pred = dataset.to_raw_y(predict(model, dataset.x_scaling.apply(X_val).astype(np.float32)))
    err = pred[:, 0] - y_val
    var = float(np.var(y_val)) or 1.0
    rmse = float(np.sqrt(np.mean(err**2)))
    raw = dataset.raw_X("train")
    return Surrogate(model=model, x_scaling=dataset.x_scaling, t_scaling=dataset.y_scaling,
                     log_target=False, sign=1.0, rmse=rmse, r2=1 - rmse**2 / var,
                     rmse_value=rmse, seconds=0.0,
                     widths=list(getattr(model.net, "widths", [])) or [raw.shape[1], "?", 1],
                     lo=raw.min(0), hi=raw.max(0))


def read_tree(X: np.ndarray, y: np.ndarray, symbols: list[sympy.Symbol], names: list[str],
              consider, deadline: float, seed: int, surrogate: Surrogate | None,
              reading: KanReading, progress=None) -> None:
    """Run the recursion on (X, y); every candidate goes to ``consider(expr, method)``, which
    returns True when the candidate is good enough to stop."""
    if surrogate is None:
        if progress:
            progress(0.1, "training the surrogate KAN")
        surrogate = train_surrogate(X, y, names, seed=seed,
                                    deadline=time.time() + 0.4 * (deadline - time.time()))
    reading.surrogate = surrogate
    tol = surrogate.rmse_value

    def accept(sols: list[Solution]) -> bool:
        done = False
        for s in sols:
            key = str(s.expr)
            reading.steps[key] = list(s.steps)
            reading.pieces[key] = list(s.pieces)
            reading.graphs[key] = s.graph
            reading.weak[key] = [
                f"edge {p['edge']}: best fit {p['function']} misses by {p['error']:.2g} "
                f"(tolerance {p['tolerance']:.2g})" for p in s.pieces if not p["exact"]]
            done = consider(s.expr, "kan-tree") or done
        return done

    if progress:
        progress(0.3, "testing the surrogate for separability and symmetries")
    ctx = Context(deadline=deadline, seed=seed, accept=accept, log=reading.log)
    sols = solve(Problem(X, y, symbols, names, tol=tol, surrogate=surrogate, real=True), ctx)
    if X.shape[1] == 1:  # a one-variable problem is one edge: no structure step called accept
        accept(sols)
    reading.log.append(f"kan-tree: {len(sols)} candidate(s), {ctx.surrogates} further "
                       f"surrogate(s) trained")


def read_snap(dataset, model, consider, deadline: float, seed: int, reading: KanReading,
              progress=None) -> None:
    """pykan's recipe on one KAN (the given one, or a fresh sparse one): ``kan-snap``."""
    from kamoe.symbolic.snap import snap_network

    report = snap_network(model, dataset, deadline=deadline, seed=seed, progress=progress)
    key = str(report.formula)
    reading.state = report
    reading.steps[key] = list(report.steps)
    reading.weak[key] = list(report.poor)
    reading.log.append(f"kan-snap: {len(report.network.edge_keys('symbolic'))} edges snapped "
                       f"in {report.seconds:.1f} s, snapped network test R^2 "
                       f"{report.r2_after:.6f}")
    consider(report.formula, "kan-snap")
