"""``extract_formula(dataset)``: the best closed-form formula for a regression dataset.

Paths, tried in order until one fits the training data to machine precision:

1. ``monomial``: with positive inputs and a one-signed target, log|y| is regressed on log x;
   a (near) exact fit gives y = C * prod x_i^p_i with p_i rounded to simple rationals.
2. ``index``: y = C * prod x_i^p_i * g(u) with u = prod x_i^q_i a small monomial (single
   variables, ratios, products, ...). Every u candidate is scored by a linear least-squares fit
   of log|y| on [1, log x, polynomial(log u)]; for the best u's, the powers p are rounded and g
   is read off the library with ``suggest`` (c * f(a u^k + b) + d).
3. ``kan``: a kamoe KAN [d, 5, 1] is trained (or the given model used), every edge is fitted
   from the library and the network's formula composed in raw units.

Every candidate's constants are refined end-to-end against the training data (least squares),
rounded to simple values where that costs no accuracy, and the best candidate (R^2, then size)
wins. The formula is compared with the dataset's ground truth with SRBench's rule.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np
import pandas as pd
import sympy

from kamoe.symbolic.expr import (
    _with_timeout,
    equivalent,
    evaluate,
    r2_score,
    refine_constants,
    round_constants,
    snap_floats,
    to_latex,
)
from kamoe.symbolic.fit import suggest

EXACT = 1e-9  # 1 - R^2 below this on training data counts as an exact fit: stop searching


@dataclass
class FormulaResult:
    """What ``extract_formula`` found."""

    expr: sympy.Expr
    latex: str
    r2_test: float
    r2_train: float
    network_r2: float | None
    seconds: float
    truth: sympy.Expr | None
    recovered: bool | None
    method: str
    log: list[str] = field(default_factory=list)
    edges: pd.DataFrame | None = None
    variables: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        from kamoe.symbolic.expr import to_sympy_string

        return {
            "formula": to_sympy_string(self.expr), "latex": self.latex,
            "r2_test": self.r2_test, "r2_train": self.r2_train, "network_r2": self.network_r2,
            "seconds": self.seconds, "method": self.method, "variables": self.variables,
            "truth": None if self.truth is None else to_sympy_string(self.truth),
            "recovered": self.recovered, "log": self.log,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FormulaResult:
        """The result ``as_dict`` wrote (``edges`` is not stored: None).

        The formula strings are parsed only after checking that they are plain arithmetic on
        the listed variables, numbers and sympy's functions and constants (no attributes, no
        other calls), so a tampered file cannot run code. Raises ValueError or TypeError.
        """
        import ast

        if not isinstance(d, dict):
            raise TypeError(f"a formula must be an object, not {type(d).__name__}")
        variables = d.get("variables", [])
        if not (isinstance(variables, list) and all(isinstance(v, str) for v in variables)):
            raise TypeError("variables must be a list of names")
        local = {n: sympy.Symbol(n) for n in variables}
        ops = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow, ast.USub, ast.UAdd, ast.Load)
        numbers = {"Float", "Integer", "Rational", "Symbol"}
        # Elementary functions only: none evaluates a huge number from a small integer (as
        # factorial(10**9) or gamma would), so parsing stays quick.
        functions = {"exp", "log", "sqrt", "root", "cbrt", "sin", "cos", "tan", "cot", "sec",
                     "csc", "asin", "acos", "atan", "atan2", "acot", "sinh", "cosh", "tanh",
                     "coth", "asinh", "acosh", "atanh", "Abs", "sign", "Heaviside", "erf",
                     "erfc", "Max", "Min", "floor", "ceiling", "re", "im", "arg", *numbers}
        constants = {"pi", "E", "I", "oo", "zoo", "nan", "EulerGamma", "GoldenRatio"}

        def allowed_name(name: str) -> bool:
            return name in local or name in functions or name in constants

        def has_name(node: ast.AST) -> bool:
            return any(isinstance(n, ast.Name) and n.id in local for n in ast.walk(node))

        def check(node: ast.AST) -> None:
            if isinstance(node, ast.Call):
                if not (isinstance(node.func, ast.Name) and allowed_name(node.func.id)
                        and not node.keywords):
                    raise ValueError("a formula may only call sympy functions")
                strings = [a for a in node.args if isinstance(a, ast.Constant)
                           and isinstance(a.value, str)]
                if strings and node.func.id not in numbers:
                    raise ValueError("text arguments are only allowed in Symbol(...)")
                for a in node.args:
                    if not (isinstance(a, ast.Constant) and isinstance(a.value, str)):
                        check(a)
                return
            if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
                e = node.right.operand if isinstance(node.right, ast.UnaryOp) else node.right
                big = isinstance(e, ast.Constant) and abs(e.value) > 64
                nested = any(isinstance(n, ast.BinOp) and isinstance(n.op, ast.Pow)
                             for n in ast.walk(node.left))
                if isinstance(e, ast.BinOp) and isinstance(e.op, ast.Pow) or (
                        not has_name(node.left) and (big or nested)):
                    raise ValueError("a number raised to a large or nested power")
            if isinstance(node, ast.Name):
                if not allowed_name(node.id):
                    raise ValueError(f"unknown name {node.id!r} in a formula")
                return
            if isinstance(node, ast.Constant):
                if not isinstance(node.value, (int, float)) or isinstance(node.value, bool):
                    raise ValueError("a formula may only hold numbers and names")
                return
            if not isinstance(node, (ast.Expression, ast.BinOp, ast.UnaryOp, *ops)):
                raise ValueError(f"{type(node).__name__} is not allowed in a formula")
            for child in ast.iter_child_nodes(node):
                check(child)

        def parse(text: Any) -> sympy.Expr | None:
            if text is None:
                return None
            if not isinstance(text, str) or len(text) > 100_000:
                raise TypeError("a formula must be text (at most 100,000 characters)")
            check(ast.parse(text, mode="eval"))
            return sympy.parse_expr(text, local_dict=dict(local))

        def number(key: str, optional: bool = False) -> float | None:
            v = d.get(key)
            if v is None and optional:
                return None
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise TypeError(f"{key} must be a number")
            return float(v)

        expr = parse(d["formula"])
        if expr is None:
            raise ValueError("the formula is missing")
        log, latex, method = d.get("log", []), d.get("latex"), d.get("method", "")
        recovered = d.get("recovered")
        if not (isinstance(log, list) and all(isinstance(x, str) for x in log)):
            raise TypeError("log must be a list of text lines")
        if not isinstance(latex, str) or not isinstance(method, str):
            raise TypeError("latex and method must be text")
        if recovered is not None and not isinstance(recovered, bool):
            raise TypeError("recovered must be true, false or null")
        return cls(expr=expr, latex=latex, r2_test=number("r2_test"), r2_train=number("r2_train"),
                   network_r2=number("network_r2", optional=True), seconds=number("seconds"),
                   truth=parse(d.get("truth")), recovered=recovered, method=method,
                   log=list(log), edges=None, variables=list(variables))


class _Search:
    """Candidate bookkeeping shared by the paths: refine, score, keep the best."""

    def __init__(self, symbols, X, y, deadline, log):
        self.symbols, self.X, self.y, self.deadline, self.log = symbols, X, y, deadline, log
        self.best: tuple[float, int, sympy.Expr, str] | None = None  # (1-R^2, size, expr, method)

    def time_left(self) -> float:
        return self.deadline - time.time()

    def consider(self, expr: sympy.Expr, method: str, refine: bool = True) -> float:
        """Refine and score one candidate; returns its 1 - R^2 on the training data."""
        try:
            if refine:
                expr = refine_constants(expr, self.symbols, self.X, self.y, max_nfev=100,
                                        deadline=self.deadline)
            r2 = r2_score(evaluate(expr, self.symbols, self.X), self.y)
        except Exception as exc:  # noqa: BLE001 - a broken candidate is skipped, not fatal
            self.log.append(f"{method}: candidate failed ({type(exc).__name__})")
            return math.inf
        if not np.isfinite(r2):
            return math.inf
        loss = max(1.0 - r2, 0.0)
        size = int(sympy.count_ops(expr))
        key = (max(loss, EXACT), size)
        if self.best is None or key < (max(self.best[0], EXACT), self.best[1]):
            self.best = (loss, size, expr, method)
        return loss

    @property
    def exact(self) -> bool:
        return self.best is not None and self.best[0] < EXACT


# ----------------------------------------------------------------------------- paths
def _rational(v: float, dens=(1, 2, 3)) -> list[sympy.Rational]:
    out = []
    for den in dens:
        q = Fraction(round(v * den), den)
        r = sympy.Rational(q.numerator, q.denominator)
        if r not in out:
            out.append(r)
    return out


def _monomial(S: _Search) -> None:
    X, y = S.X, S.y
    if np.any(X <= 0) or not (np.all(y > 0) or np.all(y < 0)):
        S.log.append("monomial: skipped (needs positive inputs and a one-signed target)")
        return
    Z = np.column_stack([np.ones(len(X)), np.log(X)])
    t = np.log(np.abs(y))
    coef, *_ = np.linalg.lstsq(Z, t, rcond=None)
    r2_log = r2_score(Z @ coef, t)
    S.log.append(f"monomial: log-log fit R^2 = {r2_log:.8f}, powers {np.round(coef[1:], 3)}")
    if r2_log < 0.999:
        return
    sign = 1.0 if y[0] > 0 else -1.0
    for dens in ((1,), (2,), (3,)):
        p = [_rational(v, dens)[0] for v in coef[1:]]
        mono = sympy.Mul(*[s**pi for s, pi in zip(S.symbols, p, strict=False)])
        logc = float(np.mean(t - np.log(X) @ np.array([float(v) for v in p])))
        S.consider(sympy.Float(sign * math.exp(logc)) * mono, "monomial")
        if S.exact:
            return


def _index_supports(d: int, budget: int = 1500) -> list[np.ndarray]:
    """Exponent vectors q of u = prod x^q: single variables, pairs, then larger +-1 products."""
    qs: list[np.ndarray] = []
    for i in range(d):
        q = np.zeros(d)
        q[i] = 1
        qs.append(q)
    for i, j in itertools.combinations(range(d), 2):
        for a, b in ((1, 1), (1, -1), (1, 2), (1, -2), (2, 1), (2, -1)):
            q = np.zeros(d)
            q[i], q[j] = a, b
            qs.append(q)
    for k in range(3, min(d, 5) + 1):
        for sub in itertools.combinations(range(d), k):
            for signs in itertools.product((1, -1), repeat=k - 1):
                q = np.zeros(d)
                q[sub[0]] = 1
                q[list(sub[1:])] = signs
                qs.append(q)
                if len(qs) >= budget:
                    return qs
    return qs


def _index(S: _Search, max_u: int = 3) -> None:
    X, y = S.X, S.y
    if np.any(X <= 0):
        S.log.append("index: skipped (needs positive inputs)")
        return
    ay = np.abs(y)
    keep = ay > 1e-2 * np.median(ay)
    Z, t = np.log(X[keep]), np.log(ay[keep])
    base = np.column_stack([np.ones(len(Z)), Z])
    scored = []
    for q in _index_supports(X.shape[1]):
        s = Z @ q
        s = (s - s.mean()) / (s.std() + 1e-12)
        A = np.column_stack([base] + [s**k for k in range(2, 8)])
        coef, *_ = np.linalg.lstsq(A, t, rcond=None)
        rss = float(((A @ coef - t) ** 2).mean())
        scored.append((rss, int((q != 0).sum()), q, coef[1:1 + X.shape[1]]))
        if S.time_left() < 0:
            break
    scored.sort(key=lambda r: (r[0] * (1 + 0.05 * r[1]), r[1]))
    S.log.append("index: best u exponents " + "; ".join(
        f"{np.round(r[2], 2).tolist()} (rms {math.sqrt(r[0]):.2e})" for r in scored[:max_u]))
    for _rss, _n, q, p in scored[:max_u]:
        supp = np.flatnonzero(q)
        alphas = [0.0] + [-p[i] / q[i] for i in supp]
        p_cands = []
        for alpha in alphas:
            pr = tuple(_rational(v, (2,))[0] for v in p + alpha * q)
            if pr not in p_cands:
                p_cands.append(pr)
        sq = zip(S.symbols, q, strict=True)
        u_expr = sympy.Mul(*[s ** sympy.Rational(int(v)) for s, v in sq if v])
        u_val = np.prod(X ** q, axis=1)
        for pr in p_cands:
            mono = sympy.Mul(*[s**v for s, v in zip(S.symbols, pr, strict=False)])
            m_val = np.prod(X ** np.array([float(v) for v in pr]), axis=1)
            r = y / m_val
            for k in (1, 2):
                if S.time_left() < 0:
                    return
                for cand in suggest(u_val**k, r, top=2, seed=0):
                    if cand.r2 < 0.99:
                        continue
                    expr = mono * cand.expr(u_expr**k)
                    loss = S.consider(expr, "index")
                    if loss < EXACT:
                        S.log.append(f"index: exact with u = {u_expr**k}, g = {cand.name}")
                        return


def _kan(S: _Search, dataset, model, seed: int, progress) -> tuple[Any, float | None]:
    """Train (or reuse) a KAN, fit its edges, compose; returns (SymbolicKAN, network R^2)."""
    import torch

    from kamoe.models import build_for
    from kamoe.symbolic.compose import SymbolicKAN
    from kamoe.train import TrainConfig, fit
    from kamoe.train import evaluate as evaluate_model

    if model is None:
        if S.time_left() < 5:
            S.log.append("kan: skipped (no time left)")
            return None, None
        torch.manual_seed(seed)
        model = build_for("kan", dataset, hidden=[5])
        budget = max(2.0, min(20.0, 0.4 * S.time_left()))
        fit(model, dataset, TrainConfig(optimizer="lbfgs", lr=1.0, epochs=60, batch_size=None,
                                        grid_update_epochs=10, max_seconds=budget, seed=seed,
                                        patience=None, plateau_patience=None))
    net_r2 = float(evaluate_model(model, dataset, "test").get("r2", float("nan")))
    S.log.append(f"kan: network test R^2 = {net_r2:.6f}")
    state = SymbolicKAN(model, dataset, seed=seed)
    if progress:
        progress(0.7, "fitting KAN edges")
    state.auto(deadline=S.deadline - 2)
    if len(state.fixed) < len(state.edge_keys()):
        S.log.append("kan: ran out of time while fitting edges")
        return state, net_r2
    expr = state.formula()
    n_const = len(expr.atoms(sympy.Float))
    S.consider(expr, "kan", refine=n_const <= 40 and S.time_left() > 10)
    return state, net_r2


# ----------------------------------------------------------------------------- entry point
def _simplify(expr: sympy.Expr, seconds: float) -> sympy.Expr:
    res = _with_timeout(lambda: sympy.simplify(expr), seconds)
    if res is not None and sympy.count_ops(res) <= sympy.count_ops(expr):
        return res
    return expr


def extract_formula(
    dataset,
    *,
    model=None,
    time_limit: float = 60.0,
    seed: int = 0,
    progress: Callable[[float, str], None] | None = None,
    paths: tuple[str, ...] = ("monomial", "index", "kan"),
    max_points: int = 1000,
) -> FormulaResult:
    """Search for a closed-form formula of ``dataset``'s target in its raw variables."""
    t0 = time.time()
    # Reserve the end of the budget for scoring on the test set and the equivalence check.
    reserve = 1.5 + (2.0 if getattr(dataset, "formula", None) is not None else 0.0)
    deadline = t0 + float(time_limit) - min(reserve, 0.3 * float(time_limit))
    if getattr(dataset, "task", "regression") != "regression" or dataset.output_dim != 1:
        raise ValueError("extract_formula needs a regression dataset with one target")
    log: list[str] = []

    def report(frac: float, msg: str) -> None:
        if progress:
            progress(float(min(max(frac, 0.0), 1.0)), msg)

    names = list(dataset.feature_names)
    symbols = [sympy.Symbol(n) for n in names]
    rng = np.random.default_rng(seed)
    Xtr, ytr = dataset.raw_X("train").astype(float), dataset.raw_y("train").astype(float).ravel()
    if len(Xtr) > max_points:
        idx = rng.choice(len(Xtr), max_points, replace=False)
        Xtr, ytr = Xtr[idx], ytr[idx]
    S = _Search(symbols, Xtr, ytr, deadline, log)
    # baseline: a linear model in the raw variables, so there is always an answer
    coef, *_ = np.linalg.lstsq(np.column_stack([np.ones(len(Xtr)), Xtr]), ytr, rcond=None)
    cs = zip(coef[1:], symbols, strict=True)
    S.consider(sympy.Float(coef[0]) + sum(sympy.Float(c) * s for c, s in cs),
               "linear", refine=False)
    state, net_r2 = None, None
    steps = [p for p in paths if p in ("monomial", "index", "kan")]
    for n, path in enumerate(steps):
        if S.exact or S.time_left() < 1:
            break
        report(n / (len(steps) + 1), f"trying the {path} path")
        t_path = time.time()
        if path == "monomial":
            _monomial(S)
        elif path == "index":
            keep = S.deadline
            if "kan" in steps:  # leave the KAN path a share of the time
                S.deadline = time.time() + 0.6 * S.time_left()
            _index(S)
            S.deadline = keep
        else:
            state, net_r2 = _kan(S, dataset, model, seed, progress)
        log.append(f"{path}: {time.time() - t_path:.1f} s, best so far 1-R^2 = "
                   f"{S.best[0] if S.best else float('nan'):.3g}")
    if S.best is None:
        raise ValueError("no formula could be fitted to this dataset")
    loss, _, expr, method = S.best
    report(0.85, "rounding constants")
    if loss < 1e-7:  # rounding only pays (and is only safe) for (near) exact fits
        expr = round_constants(expr, symbols, Xtr, ytr, tol=max(EXACT, 2 * loss),
                               deadline=deadline)
    if S.time_left() > 4 and sympy.count_ops(expr) < 150:
        expr = _simplify(expr, min(3.0, S.time_left() - 1))
    expr = snap_floats(expr)
    Xte, yte = dataset.raw_X("test").astype(float), dataset.raw_y("test").astype(float).ravel()
    r2_test = r2_score(evaluate(expr, symbols, Xte), yte)
    r2_train = r2_score(evaluate(expr, symbols, Xtr), ytr)
    truth = getattr(dataset, "formula", None)
    recovered = None
    if truth is not None:
        ranges = (getattr(dataset, "meta", None) or {}).get("ranges")
        budget = max(0.5, min(3.0, t0 + float(time_limit) - time.time() - 0.5))
        recovered = bool(r2_test > 0.5 and equivalent(expr, truth, ranges=ranges, timeout=budget))
    report(1.0, "done")
    return FormulaResult(
        expr=expr, latex=to_latex(expr), r2_test=float(r2_test), r2_train=float(r2_train),
        network_r2=net_r2, seconds=time.time() - t0, truth=truth, recovered=recovered,
        method=method, log=log, edges=state.edges() if state is not None else None,
        variables=names,
    )
