"""Divide and conquer on a KAN surrogate: the formula as a tree of small, readable pieces.

AI Feynman's recursion (Udrescu & Tegmark, arXiv 1905.11481) with a KAN as the network that
stands in for the data. A ``Problem`` (variables, samples, the error the samples carry) is
solved by the first of these that works, each tested on a surrogate KAN trained on it:

1. **additive separability**: f = g(A) + h(B) (variables that do not interact, found as the
   connected components of the interaction graph); each block becomes a problem whose samples
   are the surrogate's slice through a reference point;
2. **multiplicative separability**: f = g(A) * h(B), the same in log|f| (or with products);
3. **symmetries**: f depends on x_i, x_j only through x_i - x_j, x_i + x_j, x_i / x_j or
   x_i * x_j (up to a power x_i**p or a term c * x_i); the pair becomes one new variable
   computed from the real samples;
4. **transforms**: f**2, 1/f, sqrt(f), log f additively separable;
5. a one-variable problem is a single KAN edge: its closed form comes from
   ``fit_univariate``.

Every piece is scored on its own problem's samples; a piece is *exact* when its error is within
a few times the error its samples carry. Problems without any structure that fits are handed
back as not solved (the caller falls back to reading a KAN's edges directly).
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass, field
from functools import partial

import numpy as np
import sympy

from kamoe.symbolic.expr import shape_text
from kamoe.symbolic.structure import (
    SEPARABLE_Z,
    Symmetry,
    blocks,
    interactions,
    symmetries,
)
from kamoe.symbolic.surrogate import Surrogate, one_signed, train_surrogate
from kamoe.symbolic.univariate import EXACT_FACTOR, U, fit_univariate

_uid = itertools.count()
STRONG_SHARE = 0.4  # a split is clear when every cut pair's z is below this share of the threshold


@dataclass
class Problem:
    """Find t = f(X): ``symbols[k]`` names column k of X; ``tol`` is the RMS error t carries."""

    X: np.ndarray
    t: np.ndarray
    symbols: list[sympy.Symbol]
    labels: list[str]
    tol: float
    surrogate: Surrogate | None = None
    depth: int = 0
    real: bool = False  # t is the data itself (or exactly computed from it), not a slice

    @property
    def k(self) -> int:
        return self.X.shape[1]


@dataclass
class Solution:
    """A formula for a problem, in the problem's symbols, with its RMS error on the samples.

    ``pieces``: one record per edge (one-variable piece): its input, function, error,
    tolerance and whether it is exact. ``graph``: the derivation as a tree of plain dicts
    (kind "edge", "sum", "product", "symmetry" or "transform"), for drawing.
    """

    expr: sympy.Expr
    rmse: float
    steps: list[str]
    exact: bool
    pieces: list[dict] = field(default_factory=list)
    graph: dict = field(default_factory=dict)

    @property
    def size(self) -> int:
        return int(sympy.count_ops(self.expr))


@dataclass
class Context:
    """What the whole search shares: the deadline, the seed, the log and surrogate settings."""

    deadline: float
    seed: int = 0
    log: list[str] = field(default_factory=list)
    max_depth: int = 8
    surrogates: int = 0
    accept: callable | None = None  # at the top problem: decides when a solution is good enough
    tried: set = field(default_factory=set)  # splits and reductions already tried, per problem

    def first_time(self, *key) -> bool:
        """True the first time this (problem, move) comes up: a move is never made twice."""
        if key in self.tried:
            return False
        self.tried.add(key)
        return True

    def time_left(self) -> float:
        return self.deadline - time.time()


def _symbols(n: int) -> list[sympy.Symbol]:
    return [sympy.Symbol(f"_z{next(_uid)}") for _ in range(n)]


def _evaluate(expr: sympy.Expr, symbols: list[sympy.Symbol], X: np.ndarray) -> np.ndarray:
    from kamoe.symbolic.expr import evaluate

    try:
        return evaluate(expr, symbols, X)
    except Exception:  # noqa: BLE001 - an expression numpy cannot evaluate scores as broken
        return np.full(len(X), np.nan)


def _rmse(pred: np.ndarray, t: np.ndarray) -> float:
    if not np.all(np.isfinite(pred)):
        return math.inf
    return float(np.sqrt(np.mean((pred - t) ** 2)))


def _score(P: Problem, expr: sympy.Expr, steps: list[str], parts: list[Solution],
           graph: dict) -> Solution:
    r = _rmse(_evaluate(expr, P.symbols, P.X), P.t)
    return Solution(expr, r, steps, r <= EXACT_FACTOR * P.tol,
                    [p for s in parts for p in s.pieces], graph)


def _fit_linear(P: Problem, parts: list[sympy.Expr], mode: str) -> sympy.Expr | None:
    """c0 + sum_b c_b * g_b (mode "sum") or c0 * prod_b g_b ("product"), c's by least squares."""
    vals = [_evaluate(e, P.symbols, P.X) for e in parts]
    if any(not np.all(np.isfinite(v)) for v in vals):
        return None
    if mode == "sum":
        A = np.column_stack([np.ones(len(P.t)), *vals])
        coef, *_ = np.linalg.lstsq(A, P.t, rcond=None)
        return sympy.Float(coef[0]) + sum(sympy.Float(c) * e for c, e in
                                          zip(coef[1:], parts, strict=True))
    prod = np.prod(np.column_stack(vals), axis=1)
    den = float(np.dot(prod, prod))
    if den <= 0:
        return None
    c0 = float(np.dot(prod, P.t) / den)
    return sympy.Float(c0) * sympy.Mul(*parts)


def _reference(S: Surrogate, X: np.ndarray) -> np.ndarray:
    """A real sample where |f| sits near its upper quartile (clear of zeros of any factor)."""
    v = np.abs(S.value(X))
    order = np.argsort(v)
    return np.array(X[order[int(0.75 * (len(order) - 1))]], dtype=float)


# ----------------------------------------------------------------------------- solving
def solve(P: Problem, ctx: Context) -> list[Solution]:
    """Ranked solutions for P (the best first); empty when nothing could be fitted."""
    if P.k == 1:
        return _leaf(P, ctx)
    if ctx.time_left() < 1.0 or P.depth > ctx.max_depth:
        return []
    S = P.surrogate
    if S is None:
        S = train_surrogate(P.X, P.t, P.labels, seed=ctx.seed,
                            deadline=time.time() + min(20.0, 0.5 * ctx.time_left()))
        ctx.surrogates += 1
        P.surrogate = S
    ctx.log.append(f"{'  ' * P.depth}[{', '.join(P.labels)}] surrogate {S.describe}")
    found: list[Solution] = []
    # clear separability first, then symmetries, then separability the surrogate shows only
    # faintly (a poor surrogate blurs interactions, while a symmetry stands out even then)
    attempts = [partial(_additive, strong=True), partial(_multiplicative, strong=True),
                _symmetric, partial(_additive, strong=False),
                partial(_multiplicative, strong=False), _transformed]
    for attempt in attempts:
        if ctx.time_left() < 1.0:
            break
        sols = attempt(P, S, ctx)
        found += sols
        done = (ctx.accept(sols) if (P.depth == 0 and ctx.accept is not None)
                else any(s.exact for s in sols))
        if done:
            break
    return _rank(found)


def _rank(sols: list[Solution]) -> list[Solution]:
    return sorted(sols, key=lambda s: (not s.exact, s.size if s.exact else s.rmse, s.rmse))[:4]


def _leaf(P: Problem, ctx: Context) -> list[Solution]:
    cands = fit_univariate(P.X[:, 0], P.t, P.tol, seed=ctx.seed, thorough=P.real)
    out = []
    for c in cands[:4]:
        exact = c.rmse <= EXACT_FACTOR * P.tol
        note = "" if exact else f", error {c.rmse:.2g} above tolerance {P.tol:.2g} (not exact)"
        text = shape_text(c.expr, U, P.labels[0])
        piece = {"edge": P.labels[0], "function": c.how, "shape": text,
                 "error": c.rmse, "tolerance": P.tol, "exact": exact}
        out.append(Solution(c.at(P.symbols[0]), c.rmse,
                            [f"edge {P.labels[0]}: {c.how}{note}"], exact, [piece],
                            {"kind": "edge", "input": P.labels[0], "function": c.how,
                             "text": text, "exact": exact}))
    if out:
        ctx.log.append(f"{'  ' * P.depth}[{P.labels[0]}] edge: {cands[0].how}, error "
                       f"{cands[0].rmse:.2e} (tolerance {P.tol:.2e})")
    return out


def _split(P: Problem, S: Surrogate, groups: list[list[int]], mode: str, ctx: Context,
           transform: tuple[str, callable, callable] | None = None) -> list[Solution]:
    """Solve each block, then combine them (sum or product) and score on P's samples.

    One-variable blocks are fitted on the surrogate's slice through a reference point. When
    a single block of several variables remains, its samples are what the real targets leave
    after the other blocks are taken out (t / prod g or t - sum g), so that piece keeps the
    data's own accuracy; the surrogate's slice is the fallback.
    """
    tname, forward, back = transform or ("", (lambda v: v), (lambda e: e))
    if not ctx.first_time(tuple(map(str, P.symbols)), mode, tname,
                          tuple(tuple(g) for g in groups)):
        return []  # the same split of the same problem (e.g. found in log and in product space)
    ref = _reference(S, P.X)
    child_tol = S.rmse_value  # a transformed view of the surrogate carries the transformed error
    with np.errstate(all="ignore"):
        target_t = forward(P.t)
    if not np.all(np.isfinite(target_t)):
        return []
    target = Problem(P.X, target_t, P.symbols, P.labels, P.tol)

    def sliced(g: list[int]) -> Problem | None:
        Xs = np.tile(ref, (len(P.X), 1))
        Xs[:, g] = P.X[:, g]
        with np.errstate(all="ignore"):
            t = S.value(Xs)
        if not np.all(np.isfinite(t)):
            return None
        return Problem(P.X[:, g], t, [P.symbols[i] for i in g], [P.labels[i] for i in g],
                       tol=child_tol, depth=P.depth + 1)

    children: dict[int, list[Solution]] = {}
    singles = [b for b, g in enumerate(groups) if len(g) == 1]
    for b in sorted(range(len(groups)), key=lambda b: len(groups[b])):
        if len(groups[b]) > 1 and len(groups) - len(singles) == 1:
            sols = _residual_block(P, target, groups, b, children, mode, ctx)
            if sols and sols[0].exact:
                children[b] = sols
                continue
        child = sliced(groups[b])
        sols = solve(child, ctx) if child is not None else []
        if not sols:
            return []
        children[b] = sols
    _refit_singles(P, target, groups, children, mode, ctx)
    what = " + " if mode == "sum" else " * "
    ctx.log.append(f"{'  ' * P.depth}{tname + ' ' if tname else ''}separable as "
                   + what.join("{" + ", ".join(P.labels[i] for i in g) + "}" for g in groups))
    order = list(range(len(groups)))
    choices = [[0] * len(order)]  # the best piece of every block, then each runner-up in turn
    for b in order:
        for alt in range(1, min(len(children[b]), 4)):
            choice = [0] * len(order)
            choice[b] = alt
            choices.append(choice)
    out = []
    for choice in choices:  # all of them: cheap, and the final refit may prefer a runner-up
        parts = [children[b][c].expr for b, c in zip(order, choice, strict=True)]
        inner = _fit_linear(target, parts, mode)
        if inner is None:
            continue
        parts_used = [children[b][c] for b, c in zip(order, choice, strict=True)]
        steps = [f"{tname} {mode} of blocks".strip()] + [st for p in parts_used
                                                         for st in p.steps]
        graph = {"kind": mode if mode == "sum" else "product",
                 "children": [p.graph for p in parts_used]}
        if tname:
            graph = {"kind": "transform", "name": tname, "child": graph}
        out.append(_score(P, back(inner), steps, parts_used, graph))
    return out


def _refit_singles(P: Problem, target: Problem, groups: list[list[int]],
                   children: dict[int, list[Solution]], mode: str, ctx: Context) -> None:
    """Refit every one-variable block on what P's own targets leave once the other blocks are
    taken out (backfitting): a slice carries the surrogate's error, P's samples do not, so
    an edge that the slice could not tell from a look-alike (exp(u^2) from 1/(a-u^2)^2) is
    read again on cleaner samples. The new fits join the block's candidates."""
    if len(groups) < 2:
        return
    parts = [children[b][0].expr for b in range(len(groups))]
    inner = _fit_linear(target, parts, mode)
    if inner is not None and _rmse(_evaluate(inner, P.symbols, P.X),
                                   target.t) <= 1e-9 * (np.std(target.t) + 1e-300):
        return  # already exact to round-off
    for b, g in enumerate(groups):
        if len(g) != 1 or ctx.time_left() < 2.0:
            continue
        sols = _residual_block(P, target, groups, b, children, mode, ctx)
        if sols:
            old = {str(s.expr) for s in children[b]}
            fresh = [s for s in sols if str(s.expr) not in old]
            children[b] = (fresh[:1] + children[b] + fresh[1:])[:4] if fresh and fresh[0].exact \
                else children[b] + fresh[:2]


def _residual_block(P: Problem, target: Problem, groups: list[list[int]], b: int,
                    children: dict[int, list[Solution]], mode: str, ctx: Context
                    ) -> list[Solution]:
    """Solve block b on the real targets with the (solved) other blocks taken out."""
    others = [children[o][0].expr for o in range(len(groups)) if o != b]
    vals = [_evaluate(e, P.symbols, P.X) for e in others]
    if any(not np.all(np.isfinite(v)) for v in vals):
        return []
    g = groups[b]
    if mode == "sum":
        t = target.t - sum(vals)
        tol = target.tol
    else:
        den = np.prod(np.column_stack(vals), axis=1) if vals else np.ones(len(P.t))
        if np.any(np.abs(den) < 1e-12 * (np.abs(den).max() + 1e-300)):
            return []
        t = target.t / den
        tol = target.tol / float(np.median(np.abs(den)))
    child = Problem(P.X[:, g], t, [P.symbols[i] for i in g], [P.labels[i] for i in g],
                    tol=tol, depth=P.depth + 1, real=P.real)
    ctx.log.append(f"{'  ' * (P.depth + 1)}[{', '.join(child.labels)}] from the real targets "
                   "with the other blocks taken out")
    return solve(child, ctx)


def _median_slope(f: np.ndarray, forward) -> float:
    """Median |d forward / df| over the targets f (central differences; 1 when undefined)."""
    h = 1e-6 * (np.abs(f) + 1e-12)
    with np.errstate(all="ignore"):
        slope = np.abs((forward(f + h) - forward(f - h)) / (2 * h))
    slope = slope[np.isfinite(slope)]
    return float(np.median(slope)) if len(slope) else 1.0


def _transformed_tol(S: Surrogate, P: Problem, forward) -> float:
    """The error of forward(f) given the surrogate's error in f (first order)."""
    return float(S.rmse_value * _median_slope(P.t, forward))


def _separable(d: int, pairs: list, strong: bool) -> list[list[int]]:
    """Blocks of the interaction graph; ``strong``: only when every cut pair is clearly below
    the threshold, otherwise only when one is not (the faint case)."""
    groups = blocks(d, pairs)
    if len(groups) < 2:
        return groups
    where = {v: b for b, g in enumerate(groups) for v in g}
    cut = max((p.z for p in pairs if where[p.i] != where[p.j]), default=0.0)
    clear = cut <= STRONG_SHARE * SEPARABLE_Z
    return groups if clear == strong else [list(range(d))]


def _additive(P: Problem, S: Surrogate, ctx: Context, strong: bool) -> list[Solution]:
    groups = _separable(P.k, interactions(S, P.X, "value", seed=ctx.seed), strong)
    return _split(P, S, groups, "sum", ctx) if len(groups) > 1 else []


def _multiplicative(P: Problem, S: Surrogate, ctx: Context, strong: bool) -> list[Solution]:
    if S.log_target:
        groups = _separable(P.k, interactions(S, P.X, "log", seed=ctx.seed), strong)
        if len(groups) > 1:
            return _split(P, S, groups, "product", ctx)
    groups = _separable(P.k, interactions(S, P.X, "product", seed=ctx.seed), strong)
    if len(groups) > 1:
        return _split(P, S, groups, "product", ctx)
    # a piece of an additive split is a product only up to a constant: f - c
    pairs = interactions(S, P.X, "product", seed=ctx.seed, offset=None)
    groups = _separable(P.k, pairs, strong)
    if len(groups) < 2:
        return []
    c = pairs[0].offset
    shifted = _Shifted(S, c)  # f - c is the product; c is added back at the end
    return _split(P, shifted, groups, "product", ctx,
                  transform=(f"minus {c:.4g},", lambda v, c=c: v - c,
                             lambda e, c=c: e + sympy.Float(c)))


def _symmetric(P: Problem, S: Surrogate, ctx: Context, tries: int = 3) -> list[Solution]:
    """Reduce a symmetric pair to one variable. A power factor can sit on either variable
    (x_i**p * h(x_i/x_j) = x_j**p * h'(x_i/x_j)), and one of the two h is often the simpler:
    both are tried when the reduced problem is one edge, the second only when needed else."""
    out = []
    for sym in symmetries(S, P.X, seed=ctx.seed)[:tries]:
        for on in ("i", "j") if sym.power else ("i",):
            if ctx.time_left() < 1.0:
                break
            if on == "j" and P.k > 2 and any(s.exact for s in out):
                break
            k, p = _factor(sym, on)
            if not p.is_integer and not np.all(P.X[:, k] > 0):
                continue  # a fractional power of a variable that is not positive
            if not ctx.first_time(tuple(map(str, P.symbols)), sym.kind, sym.i, sym.j, on,
                                  str(p), round(sym.slope, 6)):
                continue
            child, outer = _reduce(P, sym, on)
            what = _describe(P, sym, on)
            ctx.log.append(f"{'  ' * P.depth}symmetry: {what} (z {sym.z:.2g})")
            for s in solve(child, ctx)[:2]:
                out.append(_score(P, outer(s.expr), [f"symmetry {what}"] + s.steps, [s],
                                  {"kind": "symmetry", "label": what,
                                   "variable": child.labels[0], "child": s.graph}))
        if any(s.exact for s in out):
            break
    return out


def _factor(s: Symmetry, on: str) -> tuple[int, sympy.Rational]:
    """Which variable carries the power factor, and its exponent."""
    p = sympy.Rational(s.power.numerator, s.power.denominator)
    if on == "i":
        return s.i, p
    return s.j, (p if s.kind == "ratio" else -p)  # x_i^p h(x_i x_j) = x_j^-p h'(x_i x_j)


def _describe(P: Problem, s: Symmetry, on: str = "i") -> str:
    a, b = P.labels[s.i], P.labels[s.j]
    u = {"minus": f"{a} - {b}", "plus": f"{a} + {b}", "ratio": f"{a}/{b}",
         "product": f"{a}*{b}"}[s.kind]
    k, p = _factor(s, on)
    extra = (f", factor {P.labels[k]}^{p}" if s.power else "") + (
        f", term {s.slope:.3g}*{a}" if s.slope else "")
    return f"depends on {u}{extra}"


def _reduce(P: Problem, s: Symmetry, on: str = "i") -> tuple[Problem, callable]:
    """The problem in (u, other variables) and how to lift its solution back (``on``: the
    variable, "i" or "j", that carries a power factor)."""
    xi, xj = P.X[:, s.i], P.X[:, s.j]
    zi, zj = P.symbols[s.i], P.symbols[s.j]
    if s.kind == "minus":
        u, ue = xi - xj, zi - zj
    elif s.kind == "plus":
        u, ue = xi + xj, zi + zj
    elif s.kind == "ratio":
        u, ue = xi / xj, zi / zj
    else:
        u, ue = xi * xj, zi * zj
    k, p = _factor(s, on)
    if s.kind in ("ratio", "product"):
        factor = P.X[:, k] ** float(p)
        t = P.t / factor
        tol = P.tol / float(np.median(np.abs(factor)))
    else:
        t = P.t - s.slope * xi
        tol = P.tol
    keep = [k for k in range(P.k) if k not in (s.i, s.j)]
    (zu,) = _symbols(1)
    label = {"minus": "-", "plus": "+", "ratio": "/", "product": "*"}[s.kind]
    child = Problem(np.column_stack([u, P.X[:, keep]]), t, [zu] + [P.symbols[k] for k in keep],
                    [f"({P.labels[s.i]}{label}{P.labels[s.j]})"] + [P.labels[k] for k in keep],
                    tol=tol, depth=P.depth + 1, real=P.real)

    def outer(e: sympy.Expr) -> sympy.Expr:
        inner = e.xreplace({zu: ue})
        if s.kind in ("ratio", "product"):
            return P.symbols[k] ** p * inner
        return sympy.Float(s.slope) * zi + inner if s.slope else inner

    return child, outer


_OUTPUT_TRANSFORMS = [
    ("squared", lambda v: v**2, lambda e: sympy.sqrt(e), "nonnegative"),
    ("inverted", lambda v: 1.0 / v, lambda e: 1 / e, "nonzero"),
    ("square root of", lambda v: np.sqrt(v), lambda e: e**2, "positive"),
    ("log of", lambda v: np.log(v), lambda e: sympy.exp(e), "positive"),
    ("sine of", np.sin, sympy.asin, "half-turn"),  # an angle out of arcsin: sin f is separable
    ("exp of", lambda v: np.exp(v), lambda e: sympy.log(e), "moderate"),
]


class _Transformed:
    """A surrogate seen through a transform of its output (for the separability tests)."""

    def __init__(self, S: Surrogate, forward, tol_value: float):
        self.S, self.forward = S, forward
        self.log_target = False
        self.rmse = tol_value
        self.rmse_value = tol_value
        self.lo, self.hi = S.lo, S.hi

    def value(self, X: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            return self.forward(self.S.value(X))

    target = value


class _Shifted(_Transformed):
    """f - c, keeping the surrogate's error model (relative for a log surrogate)."""

    def __init__(self, S: Surrogate, c: float):
        super().__init__(S, lambda v, c=c: v - c, S.rmse_value)
        self.log_target, self.rmse = False, S.rmse_value


def _transformed(P: Problem, S: Surrogate, ctx: Context) -> list[Solution]:
    """T(f) separable (a sum or a product) for an output transform T: solve T(t) as its own
    problem.

    The surrogate seen through T says whether T is worth trying; the transformed problem then
    gets its own surrogate, trained on T of the real targets (a transform that untangles f
    is usually much easier for a KAN than f itself).
    """
    out = []
    f = P.t
    for name, forward, back, needs in _OUTPUT_TRANSFORMS:
        if ctx.time_left() < 2.0:
            break
        ok = {"nonnegative": np.all(f >= 0) or np.all(f <= 0), "nonzero": one_signed(f),
              "positive": np.all(f > 0), "half-turn": np.all(np.abs(f) <= np.pi / 2),
              "moderate": np.ptp(f) < 30 and np.max(f) < 50}[needs]
        if not ok:
            continue
        sgn = -1.0 if (needs == "nonnegative" and np.all(f <= 0)) else 1.0
        fwd = (lambda v, fw=forward, sg=sgn: fw(sg * v))
        bk = (lambda e, b=back, sg=sgn: sg * b(e))
        tol = _transformed_tol(S, P, fwd)
        T = _Transformed(S, fwd, tol)
        if (len(blocks(P.k, interactions(T, P.X, "value", seed=ctx.seed))) < 2
                and len(blocks(P.k, interactions(T, P.X, "product", seed=ctx.seed))) < 2):
            continue  # T(f) is neither a sum nor a product of smaller pieces
        with np.errstate(all="ignore"):
            tt = fwd(P.t)
        if not np.all(np.isfinite(tt)):
            continue
        ctx.log.append(f"{'  ' * P.depth}output transform: {name} f")
        child = Problem(P.X, tt, P.symbols, P.labels, tol=_transformed_tol_data(P, fwd),
                        depth=P.depth + 1, real=P.real)
        for sol in solve(child, ctx)[:3]:
            out.append(_score(P, bk(sol.expr), [f"{name} f"] + sol.steps, [sol],
                              {"kind": "transform", "name": f"{name} f",
                               "child": sol.graph}))
        if any(s.exact for s in out):
            break
    return out


def _transformed_tol_data(P: Problem, forward) -> float:
    """P.tol carried through a transform of the targets (first order, median slope)."""
    return float(P.tol * _median_slope(P.t, forward))
