"""Closed forms for one-variable functions: the leaves of a decomposed problem, one KAN edge.

``fit_univariate(u, t, tol)`` tries, on samples (u, t) of a curve:

- every library function placed as ``c * f(a * u**k + b) + d`` (k = 1, and 2, -1 where u allows:
  ``kamoe.symbolic.fit.suggest``);
- a power law ``c * u**p + d`` with p fitted, then snapped to a simple fraction;
- polynomials of degree 2 and 3;
- the same on a transform of t (log|t|, 1/t, t**2, sqrt(t)), the result mapped back.

Each candidate carries its sympy expression in a placeholder symbol, its RMS error on the
samples and a complexity. A candidate is *exact* when its error is within ``EXACT_FACTOR`` of
``tol``, the error the samples themselves carry (a surrogate's, or the noise); the simplest exact
candidate ranks first, and without one the ranking trades error against complexity like pykan.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import sympy
from scipy.optimize import least_squares

from kamoe.symbolic.fit import suggest
from kamoe.symbolic.structure import simple_fraction

U = sympy.Symbol("_u")  # the placeholder every candidate is written in
EXACT_FACTOR = 3.0
# Library entries that are not powers cost one more here: on a short stretch, c*cos(a*u + b)
# with a small a is a parabola too, and the parabola is then the honest answer.
_POWERS = {"0", "x", "x^2", "x^3", "x^4", "1/x", "1/x^2", "sqrt", "1/sqrt"}
_TRANSFORMS = ("log", "inverse", "square", "sqrt", "times u", "times u^2", "over u", "over u^2")


@dataclass
class UniCandidate:
    """``expr`` (in the placeholder ``U``) fitted to (u, t) with RMS error ``rmse``."""

    expr: sympy.Expr
    rmse: float
    complexity: int
    how: str

    def at(self, arg: sympy.Expr) -> sympy.Expr:
        """The candidate applied to ``arg`` (an expression of the problem's variables)."""
        return self.expr.xreplace({U: arg})


def _rmse(pred: np.ndarray, t: np.ndarray) -> float:
    if not np.all(np.isfinite(pred)):
        return math.inf
    return float(np.sqrt(np.mean((pred - t) ** 2)))


def _power_law(u: np.ndarray, t: np.ndarray, tol: float) -> list[UniCandidate]:
    """c * u**p + d on positive u, p snapped to a fraction with denominator <= 3 when it fits."""
    if not np.all(u > 0):
        return []
    lu = np.log(u)
    best = (math.inf, None)
    for p in np.arange(-6.0, 6.01, 0.25):
        if abs(p) < 1e-9:
            continue
        A = np.column_stack([np.exp(p * lu), np.ones_like(u)])
        coef, *_ = np.linalg.lstsq(A, t, rcond=None)
        r = _rmse(A @ coef, t)
        if r < best[0]:
            best = (r, (coef[0], p, coef[1]))
    if best[1] is None:
        return []

    def resid(q):
        with np.errstate(all="ignore"):
            return q[0] * np.exp(q[1] * lu) + q[2] - t

    try:
        sol = least_squares(resid, np.array(best[1], float), method="lm", max_nfev=200)
        c, p, d = sol.x
    except Exception:  # noqa: BLE001 - keep the grid's placement
        c, p, d = best[1]
    out = []
    r_free = _rmse(resid(np.array([c, p, d])), t)
    q = simple_fraction(p, tol=max(0.02, 0.02 * abs(p)))
    if q is not None and q != 0:
        A = np.column_stack([u ** float(q), np.ones_like(u)])
        coef, *_ = np.linalg.lstsq(A, t, rcond=None)
        r_q = _rmse(A @ coef, t)
        if r_q <= max(EXACT_FACTOR * tol, 1.5 * r_free):
            expr = sympy.Float(coef[0]) * U ** sympy.Rational(q.numerator, q.denominator) \
                + sympy.Float(coef[1])
            out.append(UniCandidate(expr, r_q, 2 + (q.denominator > 1), f"power u^{q}"))
    if math.isfinite(r_free):
        expr = sympy.Float(c) * U ** sympy.Float(p) + sympy.Float(d)
        out.append(UniCandidate(expr, r_free, 4, "power u^p"))
    return out


def _polynomials(u: np.ndarray, t: np.ndarray) -> list[UniCandidate]:
    out = []
    for deg in (2, 3):
        coef = np.polynomial.polynomial.polyfit(u, t, deg)
        pred = np.polynomial.polynomial.polyval(u, coef)
        expr = sum(sympy.Float(c) * U**k for k, c in enumerate(coef))
        out.append(UniCandidate(expr, _rmse(pred, t), 2 * deg, f"polynomial degree {deg}"))
    return out


def _library(u: np.ndarray, t: np.ndarray, top: int, seed: int, powers: bool = True,
             first: bool = True) -> list[UniCandidate]:
    """Library fits of t against u (``first``) and, with ``powers``, against 1/u and u^2."""
    out = []
    inner = [(1, u, U)] if first else []
    if powers and np.all(np.abs(u) > 1e-9):
        inner.append((-1, 1.0 / u, 1 / U))
    if powers:
        inner.append((2, u**2, U**2))
    for k, v, sym in inner:
        for c in suggest(v, t, top=top, weight_simple=0.5, seed=seed):
            pred = c(v)
            extra = (0 if k == 1 else 1) + (c.name not in _POWERS)
            arg = "u" if k == 1 else f"u^{k}"
            how = f"linear in {arg}" if c.name == "x" else f"c*{c.name}(a*{arg}+b)+d"
            out.append(UniCandidate(c.expr(sym), _rmse(pred, t), c.complexity + 1 + extra, how))
    return out


def _direct(u: np.ndarray, t: np.ndarray, tol: float, top: int, seed: int,
            powers: bool = True) -> list[UniCandidate]:
    out = _power_law(u, t, tol) + _library(u, t, top, seed, False) + _polynomials(u, t)
    if powers and not any(c.rmse <= _machine(t) for c in out):
        out += _library(u, t, top, seed, True, first=False)
    return out


def _machine(t: np.ndarray) -> float:
    """An error this small is round-off: the candidate is the function itself."""
    return 1e-9 * float(np.std(t) + abs(np.mean(t)))


def _transformed(u: np.ndarray, t: np.ndarray, tol: float, top: int, seed: int,
                 stop: float | None = None) -> list[UniCandidate]:
    """Fits of a transform of t, mapped back (errors measured on t itself); the transforms
    are tried simplest first until a candidate's error is below ``stop``."""
    stop = EXACT_FACTOR * tol if stop is None else stop
    out = []
    one_signed = bool(np.all(t > 0) or np.all(t < 0))
    sign = float(np.sign(t[0])) if len(t) else 1.0
    for name in _TRANSFORMS:
        with np.errstate(all="ignore"):
            if name == "log" and one_signed:
                tt, slope, back = np.log(np.abs(t)), 1 / np.abs(t), (lambda e: sign * sympy.exp(e))
            elif name == "inverse" and one_signed:
                tt, slope, back = 1.0 / t, 1 / t**2, (lambda e: 1 / e)
            elif name == "square" and np.all(t >= 0):
                tt, slope, back = t**2, 2 * t, sympy.sqrt
            elif name == "sqrt" and np.all(t > 0):
                tt, slope, back = np.sqrt(t), 0.5 / np.sqrt(t), (lambda e: e**2)
            elif name.startswith(("times", "over")) and np.all(np.abs(u) > 1e-9):
                k = (2 if name.endswith("^2") else 1) * (1 if name.startswith("times") else -1)
                tt, slope = t * u**k, np.abs(u) ** k
                back = (lambda e, k=k: e * U ** (-k))
            else:
                continue
        if not np.all(np.isfinite(tt)) or np.ptp(tt) <= 0:
            continue
        ttol = tol * float(np.median(np.abs(slope)))  # the transformed error, to first order
        for cand in _direct(u, tt, ttol, top, seed, powers=False):
            expr = back(cand.expr)
            f = sympy.lambdify(U, expr, "numpy")
            with np.errstate(all="ignore"):
                pred = np.broadcast_to(np.asarray(f(u), float), t.shape)
            out.append(UniCandidate(expr, _rmse(pred, t), cand.complexity + 2,
                                    f"{name}: {cand.how}"))
        if any(c.rmse <= stop for c in out):
            break
    return out


def _n_constants(expr: sympy.Expr) -> int:
    return len(expr.atoms(sympy.Float))


def tidy(cand: UniCandidate, u: np.ndarray, t: np.ndarray, tol: float) -> UniCandidate:
    """Drop the constants an exact candidate does not need: each set to 0, else to 1 or -1
    (the rest refitted), while it stays exact.

    An intercept of 1e-4 is noise on its own, but it spoils a residual computed from the
    candidate (t / (a*u + b) is no longer free of u), so exact pieces are kept pure; and
    c / sqrt(a*u**2 + b) has one constant too many, so b becomes 1.
    """
    from kamoe.symbolic.expr import refine_constants

    thr = EXACT_FACTOR * tol
    if cand.rmse > thr:
        return cand
    best = cand
    for fl in sorted(cand.expr.atoms(sympy.Float), key=lambda f: abs(float(f))):
        if fl not in best.expr.atoms(sympy.Float):
            continue
        for value in (0, 1, -1):
            trial = best.expr.xreplace({fl: sympy.Integer(value)})
            if not trial.has(U) or trial.has(sympy.zoo, sympy.nan):
                continue
            trial = refine_constants(trial, [U], u[:, None], t, max_nfev=40)
            f = sympy.lambdify(U, trial, "numpy")
            with np.errstate(all="ignore"):
                r = _rmse(np.broadcast_to(np.asarray(f(u), float), t.shape), t)
            if r <= max(thr, 1.05 * best.rmse):
                best = UniCandidate(trial, r, best.complexity, best.how)
                break
    return best


def rank(cands: list[UniCandidate], tol: float, floor: float = 0.0) -> list[UniCandidate]:
    """Exact candidates (error within EXACT_FACTOR * tol) first, then the rest; each group by
    complexity plus half a unit per halving of the error (fewest constants on a tie).

    Within the tolerance a simpler candidate usually wins; one whose error is orders of
    magnitude below it (the samples are cleaner than the tolerance says) wins anyway.
    ``floor`` is the round-off level below which errors are not told apart.
    """
    thr = EXACT_FACTOR * max(tol, 1e-300)

    def key(c: UniCandidate):
        err = max(c.rmse, floor, 1e-300)
        return (err > thr, c.complexity + 0.5 * math.log2(err / thr), _n_constants(c.expr),
                c.rmse)

    return sorted(cands, key=key)


def fit_univariate(u: np.ndarray, t: np.ndarray, tol: float, top: int = 5, seed: int = 0,
                   max_points: int = 1000, thorough: bool = False) -> list[UniCandidate]:
    """Ranked closed-form candidates for samples of one curve (see the module docstring).

    Transforms of t are tried when no direct fit is exact; with ``thorough`` (samples that
    may be cleaner than ``tol`` says, e.g. the data themselves) unless one fits to round-off.
    """
    u = np.asarray(u, float).ravel()
    t = np.asarray(t, float).ravel()
    keep = np.isfinite(u) & np.isfinite(t)
    u, t = u[keep], t[keep]
    if len(u) > max_points:
        idx = np.random.default_rng(seed).choice(len(u), max_points, replace=False)
        u, t = u[idx], t[idx]
    if len(u) < 5:
        raise ValueError("fit_univariate needs at least 5 finite samples")
    spread = float(np.std(t))
    if spread <= max(tol, 1e-12 * (1 + abs(float(np.mean(t))))):
        return [UniCandidate(sympy.Float(float(np.mean(t))), spread, 0, "constant")]
    cands = _direct(u, t, tol, top, seed)
    if thorough:
        if not any(c.rmse <= _machine(t) for c in cands):
            cands += _transformed(u, t, tol, top, seed, stop=_machine(t))
    elif not any(c.rmse <= EXACT_FACTOR * tol for c in cands):
        cands += _transformed(u, t, tol, top, seed)
    floor = _machine(t)
    ranked = rank(cands, tol, floor)
    # tidying may cost a little error within the tolerance: it keeps the ranking it tidies
    return [tidy(c, u, t, tol) for c in ranked[:3]] + ranked[3:]


