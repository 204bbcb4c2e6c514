"""Structure tests on a surrogate KAN: separability and symmetries (AI Feynman's ideas).

Every test queries the trained surrogate (``kamoe.symbolic.surrogate.Surrogate``) at points of
the data's box and compares what it sees with the surrogate's own held-out error, so that a
structure is only claimed when the surrogate shows it far more clearly than it errs. Results
are plain dataclasses with a ``z`` statistic: the discrepancy from the structure divided by
what the surrogate's error alone would produce (z of a few: the structure holds; hundreds: it
does not).

- ``interactions(S, X, space)``: for every pair of variables, whether they interact
  additively (``space="value"``: d^2 f / dx_i dx_j = 0) or multiplicatively (``"log"``:
  d^2 log|f| / dx_i dx_j = 0); ``blocks`` then groups the variables into separable blocks
  (connected components of the interaction graph).
- ``symmetries(S, X)``: pairs (i, j) on which f depends only through x_i - x_j, x_i + x_j,
  x_i / x_j or x_i * x_j, up to a known factor or term (a power x_i^p, a slope c * x_j).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from kamoe.symbolic.surrogate import Surrogate

SEPARABLE_Z = 5.0  # a pair is separable when its interaction is below this many error units
SYMMETRY_Z = 8.0
SYMMETRY_SHARE = 0.25  # ... and below this share of what moving one variable alone does
MIN_EFFECT = 5.0  # a test only counts when moving the variables changes f by this many units


@dataclass
class Interaction:
    """How strongly variables i and j interact in one space ("value", "log" or "product")."""

    i: int
    j: int
    space: str
    z: float  # RMS mixed difference / what the surrogate's error alone gives
    offset: float = 0.0  # "product": the c for which f - c is tested


@dataclass
class Symmetry:
    """f depends on (x_i, x_j) only through ``kind`` (minus, plus, ratio, product).

    ``power``: for ratio/product, f = x_i**power * h(u); ``slope``: for minus/plus,
    f = slope * x_i + h(u) (minus: u = x_i - x_j, plus: u = x_i + x_j).
    """

    i: int
    j: int
    kind: str
    z: float
    power: Fraction = Fraction(0)
    slope: float = 0.0
    effect: float = 0.0  # how much the tested move changes f, in error units


def _rows(X: np.ndarray, m: int, rng: np.random.Generator) -> np.ndarray:
    idx = rng.choice(len(X), size=min(m, len(X)), replace=len(X) < m)
    return np.array(X[idx], dtype=float)


def _error_scale(S: Surrogate, space: str, *values: np.ndarray) -> np.ndarray:
    """Per-point standard error of a signed sum of surrogate values in ``space``."""
    if space == "log" and not S.log_target:
        raise ValueError("log-space tests need a surrogate of log|y|")
    if space == "log" or not S.log_target:
        return np.full(len(values[0]), S.rmse * np.sqrt(len(values)))
    # value-space test on a log surrogate: errors are relative, |f| * rmse each
    return S.rmse * np.sqrt(sum(v**2 for v in values))


def interactions(S: Surrogate, X: np.ndarray, space: str = "value", m: int = 400,
                 seed: int = 0, offset: float | None = 0.0) -> list[Interaction]:
    """For every pair, how far f is from separable: additively (``value``: mixed second
    difference of f), or multiplicatively (``log``: of log|f|, needs a log surrogate;
    ``product``: (f(x) - c)(f(x') - c) - (f(x_i') - c)(f(x_j') - c), for any sign, with
    c = ``offset``, or fitted when ``offset`` is None)."""
    rng = np.random.default_rng(seed)
    d = X.shape[1]
    base = _rows(X, m, rng)
    alt = _rows(X, m, rng)
    evaluate = S.target if (space == "log") else S.value
    f0 = evaluate(base)
    single = []
    for i in range(d):
        xi = base.copy()
        xi[:, i] = alt[:, i]
        single.append(evaluate(xi))
    pairs = list(itertools.combinations(range(d), 2))
    both = {}
    for i, j in pairs:
        xij = base.copy()
        xij[:, [i, j]] = alt[:, [i, j]]
        both[i, j] = evaluate(xij)
    if space != "product":
        offset = 0.0
    elif offset is None:
        offset = _product_offset(f0, single, both)
    out = []
    for i, j in pairs:
        fij = both[i, j]
        if space == "product":  # (f - c) multiplicatively separable, for any sign
            a, b, ci, cj = f0 - offset, fij - offset, single[i] - offset, single[j] - offset
            mixed = a * b - ci * cj
            e0, ei, ej, eij = (_error_scale(S, "value", v) for v in (f0, single[i],
                                                                      single[j], fij))
            err = np.sqrt((e0 * b) ** 2 + (eij * a) ** 2 + (ei * cj) ** 2 + (ej * ci) ** 2)
        else:
            mixed = f0 - single[i] - single[j] + fij
            err = _error_scale(S, space, f0, single[i], single[j], fij)
        z = float(np.sqrt(np.mean(mixed**2)) / max(np.sqrt(np.mean(err**2)), 1e-300))
        out.append(Interaction(i, j, space, z, offset))
    return out


def _product_offset(f0: np.ndarray, single: list[np.ndarray],
                    both: dict[tuple[int, int], np.ndarray]) -> float:
    """The c that makes f - c most nearly a product over all pairs (linear least squares).

    (f - c)(f_ij - c) - (f_i - c)(f_j - c) = [f f_ij - f_i f_j] - c [f + f_ij - f_i - f_j],
    so c comes from one regression; a piece of an additive split is only known up to such c.
    """
    num = den = 0.0
    for (i, j), fij in both.items():
        prod = f0 * fij - single[i] * single[j]
        add = f0 + fij - single[i] - single[j]
        num += float(np.dot(prod, add))
        den += float(np.dot(add, add))
    return num / den if den > 0 else 0.0


def blocks(d: int, pairs: list[Interaction], z_max: float = SEPARABLE_Z) -> list[list[int]]:
    """Connected components of the graph whose edges are the interacting pairs."""
    parent = list(range(d))

    def root(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for p in pairs:
        if p.z > z_max:
            parent[root(p.i)] = root(p.j)
    groups: dict[int, list[int]] = {}
    for v in range(d):
        groups.setdefault(root(v), []).append(v)
    return sorted(groups.values(), key=lambda g: (len(g), g))


def simple_fraction(v: float, tol: float, max_den: int = 3) -> Fraction | None:
    """The simplest fraction (denominator <= max_den) within tol of v, or None."""
    best = None
    for den in range(1, max_den + 1):
        q = Fraction(round(v * den), den)
        if abs(float(q) - v) <= tol and (best is None or q.denominator < best.denominator):
            best = q
    return best


def _feasible(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Uniform draws inside per-point intervals [lo, hi] (lo <= 0 <= hi)."""
    return lo + (hi - lo) * np.random.default_rng(1).random(len(lo))


def symmetries(S: Surrogate, X: np.ndarray, m: int = 400, seed: int = 0,
               z_max: float = SYMMETRY_Z) -> list[Symmetry]:
    """Every pair symmetry the surrogate shows, best (lowest z) first."""
    rng = np.random.default_rng(seed)
    d = X.shape[1]
    lo, hi = S.lo, S.hi
    base = _rows(X, m, rng)
    positive, negative = np.all(X > 0, axis=0), np.all(X < 0, axis=0)
    found: list[Symmetry] = []
    t0 = S.target(base)
    v0 = S.value(base)
    for i, j in itertools.combinations(range(d), 2):
        xi, xj = base[:, i], base[:, j]
        # translations: x_i + delta, x_j +/- delta, kept inside the box
        for kind, sgn in (("minus", 1.0), ("plus", -1.0)):
            dlo = np.maximum(lo[i] - xi, (lo[j] - xj) if sgn > 0 else (xj - hi[j]))
            dhi = np.minimum(hi[i] - xi, (hi[j] - xj) if sgn > 0 else (xj - lo[j]))
            delta = _feasible(np.minimum(dlo, 0), np.maximum(dhi, 0))
            moved = base.copy()
            moved[:, i] += delta
            moved[:, j] += sgn * delta
            one = base.copy()
            one[:, i] += delta
            dv = S.value(moved) - v0
            err = _error_scale(S, "value", v0, dv + v0)
            effect = _rms(S.value(one) - v0) / _rms(err)
            slope = float(np.dot(dv, delta) / max(np.dot(delta, delta), 1e-300))
            for c in (0.0, slope):
                z = _rms(dv - c * delta) / _rms(err)
                if z < min(z_max, SYMMETRY_SHARE * effect) and effect > MIN_EFFECT:
                    found.append(Symmetry(i, j, kind, z, slope=c, effect=effect))
                    break
        # scalings: x_i * s, x_j * s (ratio) or x_j / s (product), s > 0, kept inside the box
        for kind, e in (("ratio", 1.0), ("product", -1.0)):
            if kind == "ratio" and not (positive[j] or negative[j]):
                continue  # x_i / x_j needs a denominator that keeps one sign
            ai, bi = _log_scale_interval(xi, lo[i], hi[i])
            aj, bj = _log_scale_interval(xj, lo[j], hi[j])
            if e < 0:
                aj, bj = -bj, -aj
            ls = _feasible(np.minimum(np.maximum(ai, aj), 0), np.maximum(np.minimum(bi, bj), 0))
            moved = base.copy()
            moved[:, i] *= np.exp(ls)
            moved[:, j] *= np.exp(e * ls)
            one = base.copy()
            one[:, i] *= np.exp(ls)
            test = _scaling_test(S, moved, one, ls, t0, v0)
            if test is None:
                continue
            effect, residual, p_hat, se = test
            for p in (Fraction(0), simple_fraction(p_hat, max(4 * se, 1e-3))):
                if p is None:
                    continue
                z = residual(float(p))
                if z < min(z_max, SYMMETRY_SHARE * effect) and effect > MIN_EFFECT:
                    found.append(Symmetry(i, j, kind, z, power=p, effect=effect))
                    break
    found.sort(key=lambda s: (s.power != 0 or s.slope != 0, s.z))
    return found


def _log_scale_interval(x: np.ndarray, lo: float, hi: float) -> tuple[np.ndarray, np.ndarray]:
    """Per point, the log s for which s * x stays inside [lo, hi] (s > 0 keeps the sign)."""
    far = 1.0  # no more than a factor e either way: the surrogate was trained on this box
    with np.errstate(divide="ignore", invalid="ignore"):
        top = np.where(x > 0, np.log(hi / x) if hi > 0 else -np.inf,
                       np.where(x < 0, np.log(lo / x) if lo < 0 else -np.inf, far))
        bottom = np.where(x > 0, np.log(lo / x) if lo > 0 else -far,
                          np.where(x < 0, np.log(hi / x) if hi < 0 else -far, -far))
    return np.clip(bottom, -far, far), np.clip(top, -far, far)


def _scaling_test(S: Surrogate, moved: np.ndarray, one: np.ndarray, ls: np.ndarray,
                  t0: np.ndarray, v0: np.ndarray):
    """(effect, residual(p) -> z, p estimate, its standard error) of f(moved) = s^p f(base).

    On a log|y| surrogate the test is linear in log space; on a surrogate of y itself it is
    made on the values (f(moved) - s^p f), with p estimated from the points where |f| stands
    well above the surrogate's error; None when f is too close to zero for either.
    """
    if S.log_target:
        dt = S.target(moved) - t0
        err = S.rmse * np.sqrt(2)
        effect = _rms(S.target(one) - t0) / err
        p_hat = float(np.dot(dt, ls) / max(np.dot(ls, ls), 1e-300))
        se = err / max(np.sqrt(np.dot(ls, ls)), 1e-300)
        return effect, (lambda p: _rms(dt - p * ls) / err), p_hat, se
    v1 = S.value(moved)
    err = S.rmse_value
    clear = (np.abs(v0) > 20 * err) & (np.abs(v1) > 20 * err) & (np.sign(v0) == np.sign(v1))
    if clear.sum() < 20:
        return None
    lr = np.log(np.abs(v1[clear]) / np.abs(v0[clear]))
    lsc = ls[clear]
    p_hat = float(np.dot(lr, lsc) / max(np.dot(lsc, lsc), 1e-300))
    rel = err / np.abs(v0[clear])
    se = float(np.sqrt(np.mean(rel**2)) * np.sqrt(2) / max(np.sqrt(np.dot(lsc, lsc)), 1e-300))
    effect = _rms(S.value(one) - v0) / (err * np.sqrt(2))

    def residual(p: float) -> float:
        scale = np.exp(p * ls)
        return _rms(v1 - scale * v0) / (err * float(np.sqrt(np.mean(1 + scale**2))))

    return effect, residual, p_hat, se


def _rms(v: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.asarray(v, float) ** 2)))
