"""``extract_formula(dataset)``: the best closed-form formula for a regression dataset.

Paths (``paths``, tried in order while time is left and no candidate is good enough):

- ``kan``: the formula read from a KAN (``kamoe.symbolic.kanpath``): ``kan-tree`` splits the
  problem with structure tests on a surrogate KAN (the given model when there is one) down to
  single edges; ``kan-snap`` snaps the edges of one pruned KAN to library functions and
  retrains it until the network is the formula.
- ``monomial``: with positive inputs and a one-signed target, log|y| regressed on log x; a (near)
  exact fit gives y = C * prod x_i^p_i with p_i rounded to simple rationals. A search on the
  raw data, not a reading of any network.
- ``index``: y = C * prod x_i^p_i * g(u) with u = prod x_i^q_i a small monomial, scored by
  least squares of log|y| on [1, log x, polynomial(log u)], g read off the library. Also a
  search on the raw data.

Every candidate's constants are refitted end-to-end on the training data, the best candidate
(error on held-out training rows, then size) wins, and its constants are rounded to simple
values where the data allow it (a likelihood-ratio test, so noisy data work too). The result
says which path produced it (``method``), how (``steps``), and, when it is less accurate than
the network, which pieces are to blame. The formula is compared with the dataset's ground
truth with SRBench's rule.
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

from kamoe.errors import FormulaError
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
GOOD = 0.5  # a candidate whose held-out error is below this share of the network's is exact
PATHS = ("kan", "monomial", "index")  # every path, in the default order
# every method a result can name, and what it means in words (the pages and the CLI say this)
METHODS = {
    "kan-tree": "read from the KAN: its structure tests split the problem down to single "
                "edges, each read as a library function",
    "kan-snap": "read from the KAN: its edges snapped to library functions and the network "
                "retrained until it is the formula",
    "monomial": "found by a log-log search on the raw data, not read from any network",
    "index": "found by a search for C * prod x^p * g(u) on the raw data, not read from any "
             "network",
    "linear": "a linear fit of the raw inputs: no path found a better formula",
}
# the choices of where a formula may come from, for the pages
PATH_CHOICES = {"the KAN only": ("kan",), "the KAN, then searches on the data": PATHS}
_SIMPLER_BAND = 1.02  # candidates within 2 % of the best held-out error: the simplest wins
MIN_ROWS = 10  # training rows: 4/5 to refit constants on, 1/5 (at least 2) to score them
ROUNDING_SHARE = 0.15  # of the budget kept for rounding and simplifying the chosen formula


@dataclass
class FormulaResult:
    """What ``extract_formula`` found, where it came from and how it was derived."""

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
    steps: list[str] = field(default_factory=list)
    blame: list[str] = field(default_factory=list)
    graph: dict | None = None  # kan-tree: the derivation as a tree of plain dicts
    network: Any = None  # kan-snap: the snapped network (SnapKAN), kept in memory only

    @property
    def from_kan(self) -> bool:
        """Whether the formula was read from a KAN (``kan-tree`` or ``kan-snap``)."""
        return self.method.startswith("kan")

    def as_dict(self) -> dict[str, Any]:
        from kamoe.symbolic.expr import to_sympy_string

        return {
            "formula": to_sympy_string(self.expr), "latex": self.latex,
            "r2_test": self.r2_test, "r2_train": self.r2_train, "network_r2": self.network_r2,
            "seconds": self.seconds, "method": self.method, "variables": self.variables,
            "truth": None if self.truth is None else to_sympy_string(self.truth),
            "recovered": self.recovered, "steps": self.steps, "blame": self.blame,
            "graph": self.graph, "log": self.log,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FormulaResult:
        """The result ``as_dict`` wrote (``edges`` and ``graph`` are not stored: None).

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
        steps, blame = d.get("steps", []), d.get("blame", [])
        for key, lines in (("steps", steps), ("blame", blame)):
            if not (isinstance(lines, list) and all(isinstance(x, str) for x in lines)):
                raise TypeError(f"{key} must be a list of text lines")
        graph = d.get("graph")
        if graph is not None:
            _check_graph(graph)
        return cls(expr=expr, latex=latex, r2_test=number("r2_test"), r2_train=number("r2_train"),
                   network_r2=number("network_r2", optional=True), seconds=number("seconds"),
                   truth=parse(d.get("truth")), recovered=recovered, method=method,
                   log=list(log), edges=None, variables=list(variables), steps=list(steps),
                   blame=list(blame), graph=graph)


_GRAPH_KINDS = {"edge", "sum", "product", "symmetry", "transform"}


def _check_graph(node: Any, depth: int = 0) -> None:
    """A stored derivation must be plain data: nested dicts of text, booleans and lists of
    such dicts, of a known kind, not too deep (it is only ever displayed, never evaluated)."""
    if depth > 40 or not isinstance(node, dict) or node.get("kind") not in _GRAPH_KINDS:
        raise TypeError("a derivation must be a tree of known steps")
    for key, value in node.items():
        if key == "children":
            if not isinstance(value, list):
                raise TypeError("a derivation's children must be a list")
            for child in value:
                _check_graph(child, depth + 1)
        elif key == "child":
            _check_graph(value, depth + 1)
        elif not isinstance(value, (str, bool)) or (isinstance(value, str) and len(value) > 500):
            raise TypeError(f"a derivation step holds text or flags only ({key!r})")


@dataclass
class _Best:
    val_rmse: float
    size: int
    expr: sympy.Expr
    method: str
    origin: str


class _Search:
    """Candidate bookkeeping shared by the paths: refine, score on held-out rows, keep the best.

    Constants are refitted on (X, y); the candidate is scored on (X_val, y_val), rows the
    refit never saw. ``target_rmse`` (the network's held-out error, once a path knows it) lets
    a candidate end the search early: well below the network's error means exact.
    """

    def __init__(self, symbols, X, y, X_val, y_val, deadline, log):
        self.symbols, self.X, self.y, self.deadline, self.log = symbols, X, y, deadline, log
        self.X_val, self.y_val = X_val, y_val
        # below this held-out error a candidate is the function itself (float64 round-off of
        # refitted constants); candidates are not told apart there
        self.floor = 1e-9 * float(np.std(y_val) or 1.0)
        self.cands: list[_Best] = []
        self.target_rmse: float | None = None

    def time_left(self) -> float:
        return self.deadline - time.time()

    def consider(self, expr: sympy.Expr, method: str, refine: bool = True,
                 origin: str | None = None) -> bool:
        """Refine and score one candidate; True when the search can stop (exact enough)."""
        origin = str(expr) if origin is None else origin
        try:
            if refine:
                expr = refine_constants(expr, self.symbols, self.X, self.y, max_nfev=100,
                                        deadline=self.deadline)
            pred = evaluate(expr, self.symbols, self.X_val)
        except Exception as exc:  # noqa: BLE001 - a broken candidate is skipped, not fatal
            self.log.append(f"{method}: candidate failed ({type(exc).__name__})")
            return self.good_enough
        if not np.all(np.isfinite(pred)):
            return self.good_enough
        rmse = float(np.sqrt(np.mean((pred - self.y_val) ** 2)))
        self.cands.append(_Best(rmse, int(sympy.count_ops(expr)), expr, method, origin))
        return self.good_enough

    @property
    def best(self) -> _Best | None:
        """The simplest candidate whose held-out error is within 2 % of the best one's."""
        if not self.cands:
            return None
        low = min(c.val_rmse for c in self.cands)
        band = max(low * _SIMPLER_BAND, self.floor)
        return min((c for c in self.cands if c.val_rmse <= band),
                   key=lambda c: (c.size, c.val_rmse))

    @property
    def good_enough(self) -> bool:
        b = self.best
        if b is None:
            return False
        if b.val_rmse <= self.floor:
            return True
        return self.target_rmse is not None and b.val_rmse <= GOOD * self.target_rmse


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
        if S.consider(sympy.Float(sign * math.exp(logc)) * mono, "monomial"):
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
                    if S.consider(expr, "index"):
                        S.log.append(f"index: exact with u = {u_expr**k}, g = {cand.name}")
                        return


SNAP_SECONDS = 15.0  # kan-snap runs after kan-tree when at least this much time is left


def _kan(S: _Search, dataset, model, seed: int, progress, reading) -> None:
    """The KAN path: ``kan-tree`` first, then (if not exact) ``kan-snap``."""
    from kamoe.symbolic.kanpath import model_surrogate, read_snap, read_tree

    surrogate = None
    if model is not None:
        surrogate = model_surrogate(model, dataset, S.X_val, S.y_val)
        S.log.append(f"kan: the given network as the surrogate, held-out RMSE "
                     f"{surrogate.rmse_value:.3g}")
    budget_end = S.deadline if model is not None else time.time() + 0.75 * S.time_left()

    read_tree(S.X, S.y, S.symbols, [s.name for s in S.symbols], S.consider, budget_end, seed,
              surrogate, reading, progress)
    if reading.surrogate is not None:
        sur = reading.surrogate
        pred = sur.value(S.X_val)
        S.target_rmse = float(np.sqrt(np.mean((pred - S.y_val) ** 2)))
        Xte = dataset.raw_X("test").astype(float)
        reading.network_r2 = float(r2_score(sur.value(Xte),
                                            dataset.raw_y("test").astype(float).ravel()))
        S.log.append(f"kan: network {sur.describe}; test R^2 {reading.network_r2:.6f}")
    if not S.good_enough and S.time_left() > SNAP_SECONDS and dataset.kind == "tabular":
        try:
            read_snap(dataset, model, S.consider, S.deadline, seed, reading, progress)
        except (ValueError, TimeoutError) as err:  # not a plain kan, or out of time: go on
            reading.log.append(f"kan-snap: skipped ({err})")
    S.log.extend(reading.log)


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
    paths: tuple[str, ...] = PATHS,
    max_points: int = 1500,
) -> FormulaResult:
    """Search for a closed-form formula of ``dataset``'s target in its raw variables.

    ``model``: a trained plain KAN on this dataset, read instead of a fresh one (``kan``
    path). ``paths``: which paths to try, in order (see the module docstring).
    """
    from kamoe.symbolic.kanpath import KanReading

    t0 = time.time()
    # Reserve the end of the budget for scoring on the test set and the equivalence check.
    reserve = 1.5 + (2.0 if getattr(dataset, "formula", None) is not None else 0.0)
    deadline = t0 + float(time_limit) - min(reserve, 0.3 * float(time_limit))
    if getattr(dataset, "task", "regression") != "regression" or dataset.output_dim != 1:
        raise FormulaError("extract_formula needs a regression dataset with one target")
    unknown = [p for p in paths if p not in PATHS]
    if unknown or not paths:
        raise FormulaError(f"unknown formula path(s) {unknown or list(paths)}; choose from "
                         f"{', '.join(PATHS)}")
    log: list[str] = []

    def report(frac: float, msg: str) -> None:
        if progress:
            progress(float(min(max(frac, 0.0), 1.0)), msg)

    names = list(dataset.feature_names)
    symbols = [sympy.Symbol(n) for n in names]
    rng = np.random.default_rng(seed)
    Xall, yall = dataset.raw_X("train").astype(float), dataset.raw_y("train").astype(float).ravel()
    if len(Xall) < MIN_ROWS:
        raise FormulaError(f"extract_formula needs at least {MIN_ROWS} training rows to fit and "
                         f"check a formula, got n_samples={len(Xall)}; give it more data")
    perm = rng.permutation(len(Xall))[:max_points]
    n_val = max(2, len(perm) // 5)
    Xval, yval = Xall[perm[:n_val]], yall[perm[:n_val]]
    Xtr, ytr = Xall[perm[n_val:]], yall[perm[n_val:]]
    # the search stops early enough to leave the rounding its share of the budget
    search_end = deadline - ROUNDING_SHARE * max(0.0, deadline - time.time())
    S = _Search(symbols, Xtr, ytr, Xval, yval, search_end, log)
    # baseline: a linear model in the raw variables, so there is always an answer
    coef, *_ = np.linalg.lstsq(np.column_stack([np.ones(len(Xtr)), Xtr]), ytr, rcond=None)
    cs = zip(coef[1:], symbols, strict=True)
    S.consider(sympy.Float(coef[0]) + sum(sympy.Float(c) * s for c, s in cs),
               "linear", refine=False)
    reading = KanReading()
    for n, path in enumerate(paths):
        if S.good_enough or S.time_left() < 1:
            break
        report(n / (len(paths) + 1), f"trying the {path} path")
        t_path = time.time()
        if path == "monomial":
            _monomial(S)
        elif path == "index":
            _index(S)
        else:
            _kan(S, dataset, model, seed, progress, reading)
        b = S.best
        log.append(f"{path}: {time.time() - t_path:.1f} s, best so far {b.method} with "
                   f"held-out RMSE {b.val_rmse:.3g}" if b else f"{path}: nothing")
    best = S.best
    if best is None:
        raise FormulaError("no formula could be fitted to this dataset")
    expr, method = best.expr, best.method
    report(0.85, "rounding constants")
    expr = round_constants(expr, symbols, Xtr, ytr, tol=EXACT, deadline=deadline)
    left = deadline - time.time()
    if left > 4 and sympy.count_ops(expr) < 150:
        expr = _simplify(expr, min(3.0, left - 1))
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
    steps = _derivation(method, reading, best.origin)
    if method == "kan-snap" and reading.state is not None:
        reading.network_r2 = reading.network_r2 or reading.state.r2_before
    blame = []
    net_r2 = reading.network_r2
    if net_r2 is not None and method.startswith("kan") and r2_test < net_r2 - 1e-3:
        blame = reading.weak.get(best.origin) or _weakest_edges(method, reading, names) or [
            "no single piece is fitted worse than its tolerance: the structure found does not "
            "match the network"]
    report(1.0, "done")
    edges = None
    if method == "kan-tree" and reading.pieces.get(best.origin):
        edges = pd.DataFrame(reading.pieces[best.origin])
    elif method == "kan-snap" and reading.state is not None:
        edges = reading.state.edges(names, list(dataset.target_names))
    return FormulaResult(
        expr=expr, latex=to_latex(expr), r2_test=float(r2_test), r2_train=float(r2_train),
        network_r2=net_r2, seconds=time.time() - t0, truth=truth, recovered=recovered,
        method=method, log=log, edges=edges, variables=names, steps=steps, blame=blame,
        graph=reading.graphs.get(best.origin) if method == "kan-tree" else None,
        network=reading.state.network if method == "kan-snap" and reading.state else None,
    )


def _weakest_edges(method: str, reading, names: list[str], k: int = 3) -> list[str]:
    """kan-snap: the snapped edges with the lowest library-fit R^2, by name."""
    if method != "kan-snap" or reading.state is None:
        return []
    table = reading.state.edges(names)
    table = table[table["state"] == "symbolic"].sort_values("r2").head(k)
    return [f"edge {r.edge}: snapped to {r.function} with fit R^2 {r.r2:.5f}"
            for r in table.itertuples()]


def _derivation(method: str, reading, origin: str) -> list[str]:
    """The steps that led to the chosen formula, in words."""
    if method == "kan-tree":
        head = []
        if reading.surrogate is not None:
            head.append(f"surrogate: {reading.surrogate.describe}")
        return head + reading.steps.get(origin, [])
    if method == "kan-snap":
        return reading.steps.get(origin, [])
    return [METHODS[method]] if method in METHODS else []
