"""Fit ``y ~ c * f(a * x + b) + d`` for every library function f and rank the fits.

Search: x is standardised, a vectorised grid over (a, b) scores every placement by the squared
correlation of f(a x + b) with y (= R^2 of the best linear (c, d), so c and d need no search),
the best few placements are refined with scipy's least_squares over (a, b, c, d), and the result
is mapped back to the original x. Placements that leave f's domain on any sample are rejected.
Ranking follows pykan: score = w * complexity + (1 - w) * log2(1 + 1e-5 - R^2) (lower is better).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import sympy
from scipy.optimize import least_squares

from kamoe.symbolic.library import LIBRARY, LibraryFunction, get_library

_A_GRID = np.concatenate([-np.logspace(-1.0, 1.3, 12)[::-1], np.logspace(-1.0, 1.3, 12)])
_B_GRID = np.linspace(-4.0, 4.0, 33)
_GRID_POINTS = 200
_REFINE_POINTS = 400
_REFINE_FUNCTIONS = 8  # functions refined after the grid (at least ``top``)
_LOW, _HIGH = np.array([-100.0, -40.0]), np.array([100.0, 40.0])  # (a, b) on standardised x


@dataclass
class Candidate:
    """One fitted edge function ``c * f(a * x + b) + d`` with its R^2, complexity and score."""

    name: str
    a: float
    b: float
    c: float
    d: float
    r2: float
    complexity: int
    score: float

    def expr(self, symbol: sympy.Expr) -> sympy.Expr:
        """The sympy expression of this fit applied to ``symbol``."""
        f = LIBRARY[self.name].sympy
        if self.name == "0":
            return sympy.Float(self.d)
        inner = sympy.Float(self.a) * symbol + sympy.Float(self.b)
        return sympy.Float(self.c) * f(inner) + sympy.Float(self.d)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        f = LIBRARY[self.name].numpy
        with np.errstate(all="ignore"):
            return self.c * f(self.a * np.asarray(x, float) + self.b) + self.d

    def as_dict(self) -> dict[str, float | str | int]:
        return {"function": self.name, "a": self.a, "b": self.b, "c": self.c, "d": self.d,
                "r2": self.r2, "complexity": self.complexity, "score": self.score}


def score_of(r2: float, complexity: float, weight_simple: float = 0.8) -> float:
    """pykan's ranking: weight * complexity + (1 - weight) * log2(1 + 1e-5 - R^2)."""
    r2 = min(float(r2), 1.0) if np.isfinite(r2) else -1e6
    return weight_simple * complexity + (1 - weight_simple) * math.log2(1 + 1e-5 - r2)


def _r2(pred: np.ndarray, y: np.ndarray) -> float:
    sst = float(((y - y.mean()) ** 2).sum())
    if not np.all(np.isfinite(pred)):
        return -np.inf
    sse = float(((pred - y) ** 2).sum())
    return 1.0 - sse / sst if sst > 0 else (1.0 if sse < 1e-20 else -np.inf)


def _linear_cd(f: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    fm, ym = f.mean(), y.mean()
    var = float(((f - fm) ** 2).sum())
    if var <= 1e-300:
        return 0.0, float(ym)
    c = float(((f - fm) * (y - ym)).sum() / var)
    return c, float(ym - c * fm)


def _grid_best(fn: LibraryFunction, xs: np.ndarray, y: np.ndarray, k: int) -> list[tuple]:
    """The k best (a, b) grid placements by squared correlation."""
    u = _A_GRID[:, None, None] * xs[None, None, :] + _B_GRID[None, :, None]
    with np.errstate(all="ignore"):
        F = fn.numpy(u)
    ok = np.all(np.isfinite(F), axis=-1) & (np.abs(np.nan_to_num(F)).max(-1) < 1e10)
    F = np.where(ok[..., None], F, 0.0)
    Fc = F - F.mean(-1, keepdims=True)
    yc = y - y.mean()
    num = (Fc * yc).sum(-1) ** 2
    den = (Fc**2).sum(-1) * (yc**2).sum()
    with np.errstate(all="ignore"):
        r2 = np.where(ok & (den > 1e-300), num / np.maximum(den, 1e-300), -1.0)
    flat = np.argsort(r2.ravel())[::-1][:k]
    ia, ib = np.unravel_index(flat, r2.shape)
    pairs = zip(ia, ib, strict=True)
    return [(float(_A_GRID[i]), float(_B_GRID[j]), float(r2[i, j])) for i, j in pairs]


def _refine(fn: LibraryFunction, xs: np.ndarray, y: np.ndarray, a: float, b: float):
    """Least squares over (a, b) from a grid placement, (c, d) solved in closed form at every
    step (variable projection); returns ((a, b, c, d), R^2), or (None, -inf) off the domain."""
    with np.errstate(all="ignore"):
        f0 = fn.numpy(a * xs + b)
    if not np.all(np.isfinite(f0)):
        return None, -np.inf
    c0, d0 = _linear_cd(f0, y)
    penalty = 10.0 * (np.abs(y).max() + 1.0)

    def resid(p: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            f = fn.numpy(p[0] * xs + p[1])
        if not np.all(np.isfinite(f)):
            return np.full_like(y, penalty)
        c, d = _linear_cd(f, y)
        return c * f + d - y

    p0 = np.array([a, b])
    try:
        p = least_squares(resid, p0, method="lm", max_nfev=60).x
        if np.any(p < _LOW) or np.any(p > _HIGH):
            # some families are flat along (a, b) (exp absorbs b into c) and drift: bound them
            p = least_squares(resid, p0, method="trf", max_nfev=60, bounds=(_LOW, _HIGH)).x
    except Exception:  # noqa: BLE001 - a failed refinement keeps the grid placement
        p = p0
    with np.errstate(all="ignore"):
        f = fn.numpy(p[0] * xs + p[1])
    r2_0 = _r2(c0 * f0 + d0, y)
    if not np.all(np.isfinite(f)):
        return (a, b, c0, d0), r2_0
    c, d = _linear_cd(f, y)
    r2 = _r2(c * f + d, y)
    if not r2 >= r2_0:
        return (a, b, c0, d0), r2_0
    return (float(p[0]), float(p[1]), c, d), r2


def suggest(
    x: np.ndarray,
    y: np.ndarray,
    lib: list[str] | None = None,
    top: int = 5,
    weight_simple: float = 0.8,
    max_points: int = 2000,
    seed: int = 0,
) -> list[Candidate]:
    """Fit ``c * f(a x + b) + d`` for each library function; the ``top`` best by score."""
    x = np.asarray(x, dtype=float).ravel()
    y = np.asarray(y, dtype=float).ravel()
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same length, got {x.shape} and {y.shape}")
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if len(x) < 3:
        raise ValueError("suggest needs at least 3 finite (x, y) samples")
    rng = np.random.default_rng(seed)
    if len(x) > max_points:
        idx = rng.choice(len(x), max_points, replace=False)
        x, y = x[idx], y[idx]
    m, s = float(x.mean()), float(x.std())
    s = s if s > 1e-12 else 1.0
    xs = (x - m) / s
    gidx = rng.choice(len(xs), min(_GRID_POINTS, len(xs)), replace=False)
    ridx = gidx if len(xs) <= 2 * _REFINE_POINTS else rng.choice(len(xs), _REFINE_POINTS, False)
    fns = get_library(lib)
    # the grid ranks every function; only the promising ones are refined (the cost is there)
    grids = {fn.name: _grid_best(fn, xs[gidx], y[gidx], 2) for fn in fns
             if fn.name not in ("0", "x")}
    ranked = sorted(grids, key=lambda n: -max((g[2] for g in grids[n]), default=-1.0))
    refine = set(ranked[:max(top, _REFINE_FUNCTIONS)]) | {
        n for n, g in grids.items() if g and g[0][2] > 0.99}
    out: list[Candidate] = []
    for fn in fns:
        if fn.name == "0":
            a, b, c, d, r2 = 0.0, 0.0, 0.0, float(y.mean()), _r2(np.full_like(y, y.mean()), y)
            r2 = 0.0 if not np.isfinite(r2) else r2
        elif fn.name == "x":
            c, d = _linear_cd(xs, y)
            a, b, r2 = 1.0, 0.0, _r2(c * xs + d, y)
        else:
            best = (None, -np.inf)
            for a0, b0, r0 in grids[fn.name]:
                if r0 < 0:
                    continue
                if fn.name in refine:
                    p, r2 = _refine(fn, xs[ridx], y[ridx], a0, b0)
                else:
                    with np.errstate(all="ignore"):
                        f0 = fn.numpy(a0 * xs[ridx] + b0)
                    p, r2 = (a0, b0, *_linear_cd(f0, y[ridx])), r0
                if p is not None and r2 > best[1]:
                    best = (p, r2)
            if best[0] is None:
                continue
            a, b, c, d = best[0]
            with np.errstate(all="ignore"):
                r2 = _r2(c * fn.numpy(a * xs + b) + d, y)
            if not np.isfinite(r2):
                continue
        a_raw, b_raw = a / s, b - a * m / s
        cand = Candidate(fn.name, float(a_raw), float(b_raw), float(c), float(d), float(r2),
                         fn.complexity, score_of(r2, fn.complexity, weight_simple))
        out.append(cand)
    out.sort(key=lambda c: c.score)
    return out[:top]
