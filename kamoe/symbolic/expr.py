"""Formula utilities: refine and round constants, SRBench equivalence, exports.

All functions take sympy expressions in named variables; data come as (X, y) numpy arrays whose
columns follow the ``symbols`` order.
"""

from __future__ import annotations

import keyword
import math
import threading
import time
import warnings
from collections.abc import Sequence
from fractions import Fraction

import numpy as np
import sympy
from scipy.optimize import least_squares
from sympy.printing.str import StrPrinter


# ----------------------------------------------------------------------------- evaluation
def evaluate(expr: sympy.Expr, symbols: Sequence[sympy.Symbol], X: np.ndarray) -> np.ndarray:
    """Evaluate ``expr`` on the rows of X (NaN where undefined), shape (N,)."""
    if expr.has(sympy.zoo, sympy.nan, sympy.oo, -sympy.oo):
        return np.full(X.shape[0], np.nan)  # 1/0 and friends: undefined everywhere
    f = sympy.lambdify(list(symbols), expr, modules="numpy")
    with np.errstate(all="ignore"):
        out = f(*[X[:, i] for i in range(X.shape[1])])
    out = np.asarray(out, dtype=complex if np.iscomplexobj(out) else float)
    if np.iscomplexobj(out):
        out = np.where(np.abs(out.imag) < 1e-9 * (1 + np.abs(out.real)), out.real, np.nan)
    return np.broadcast_to(out, (X.shape[0],)).astype(float)


def r2_score(pred: np.ndarray, y: np.ndarray) -> float:
    """Coefficient of determination; -inf when a prediction is not finite."""
    if not np.all(np.isfinite(pred)):
        return -math.inf
    sst = float(((y - y.mean()) ** 2).sum())
    sse = float(((pred - y) ** 2).sum())
    return 1.0 - sse / sst if sst > 0 else (1.0 if sse < 1e-24 else -math.inf)


def _floats(expr: sympy.Expr) -> list[sympy.Float]:
    return sorted(expr.atoms(sympy.Float), key=lambda f: sympy.default_sort_key(f))


# ----------------------------------------------------------------------------- refinement
def refine_constants(
    expr: sympy.Expr,
    symbols: Sequence[sympy.Symbol],
    X: np.ndarray,
    y: np.ndarray,
    max_nfev: int = 200,
    deadline: float | None = None,
) -> sympy.Expr:
    """Least-squares refit of every Float in ``expr`` against (X, y); keeps the old on failure.

    With a ``deadline`` (a ``time.time()`` value) the fit stops there and keeps the best
    constants it has seen so far.
    """
    floats = _floats(expr)
    if not floats:
        return expr
    params = sympy.symbols(f"_c0:{len(floats)}")
    templ = expr.xreplace(dict(zip(floats, params, strict=False)))
    try:
        f = sympy.lambdify(list(symbols) + list(params), templ, modules="numpy")
    except Exception:  # noqa: BLE001 - an unprintable expression is left as it is
        return expr
    cols = [X[:, i] for i in range(X.shape[1])]
    scale = float(np.std(y)) or 1.0

    best: dict[str, object] = {"sse": math.inf, "p": None}

    def resid(p: np.ndarray) -> np.ndarray:
        if deadline is not None and time.time() > deadline and best["p"] is not None:
            raise _OutOfTime
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            v = np.asarray(f(*cols, *p))
            v = (np.where(np.abs(v.imag) > 0, np.nan, v.real) if np.iscomplexobj(v) else v) - y
        v = np.broadcast_to(v, y.shape)
        r = np.where(np.isfinite(v), v, 1e3 * scale) / scale
        sse = float((r**2).sum())
        if sse < best["sse"]:
            best["sse"], best["p"] = sse, np.array(p, dtype=float)
        return r

    p0 = np.array([float(v) for v in floats])
    try:
        before = float((resid(p0) ** 2).sum())
        # MINPACK's Levenberg-Marquardt: a QR per step where trf needs an SVD (5-10x faster
        # on these small dense problems); it needs at least as many residuals as constants
        method = "lm" if len(y) >= len(p0) else "trf"
        least_squares(resid, p0, max_nfev=max_nfev, method=method, x_scale="jac")
    except _OutOfTime:
        pass
    except Exception:  # noqa: BLE001 - keep the unrefined constants
        return expr
    if best["p"] is None or not best["sse"] < before:
        return expr
    values = best["p"]
    return templ.xreplace({p: sympy.Float(v) for p, v in zip(params, values, strict=False)})


class _OutOfTime(Exception):
    """Raised inside a least-squares residual when the caller's deadline has passed."""


_SPECIAL = [b1 * b2 for b1 in (sympy.Integer(1), sympy.pi, sympy.pi**2, sympy.sqrt(sympy.pi))
            for b2 in (sympy.Integer(1), sympy.sqrt(2), sympy.sqrt(3))][1:] + [sympy.E]


_SPECIAL_TERMS = 8  # largest numerator and denominator of a fraction times pi, sqrt(2), ...


def simple_values(v: float, max_den: int = 12) -> list[sympy.Expr]:
    """Simple closed forms near v: integers, small fractions, rational multiples of pi etc."""
    out: list[tuple[float, sympy.Expr]] = []
    for base in [sympy.Integer(1), *_SPECIAL]:  # noqa: B007
        b = float(base)
        for mult in (b, 1.0 / b):
            # beside pi, sqrt(2), ...: small fractions only (3/(8 pi^2) reads as physics,
            # 37 sqrt(2)/(14 sqrt(pi)) is a float written badly)
            den = max_den if base == 1 else min(max_den, _SPECIAL_TERMS)
            q = Fraction(v / mult).limit_denominator(den)
            if q.numerator == 0 or abs(q.numerator) > (64 if base == 1 else _SPECIAL_TERMS):
                continue
            cand = sympy.Rational(q.numerator, q.denominator) * (base if mult == b else 1 / base)
            err = abs(float(cand) - v) / max(abs(v), 1e-12)
            if err < 2e-2:
                out.append((err, cand))
    out.sort(key=lambda t: (t[0], sympy.count_ops(t[1])))
    seen, res = set(), []
    for _, c in out:
        if c not in seen:
            seen.add(c)
            res.append(c)
    return res[:4]


def round_constants(
    expr: sympy.Expr,
    symbols: Sequence[sympy.Symbol],
    X: np.ndarray,
    y: np.ndarray,
    tol: float = 1e-9,
    deadline: float | None = None,
) -> sympy.Expr:
    """Replace Floats by simple values (0, 1, 1/2, pi, sqrt(2), ...) where the data allow it.

    After each trial replacement the other constants are refitted. A replacement is kept when
    the sum of squared errors grows by no more than chance would make it grow if the simple
    value were the true one: a likelihood-ratio test, SSE_new <= SSE_old * (1 + 6 / n), with a
    floor of ``tol`` (a fraction of the target's variance) below which errors are round-off.
    So exact data admit only exact values, and noisy data the values within their error bars
    (the budget grows by 6 / n for every constant already replaced, as a chi-square would).
    """
    n = max(len(y), 1)
    floor = float(tol) * float(np.var(y)) * n

    def sse(e: sympy.Expr) -> float:
        v = evaluate(e, symbols, X)
        return float(((v - y) ** 2).sum()) if np.all(np.isfinite(v)) else math.inf

    base = sse(expr)
    if not np.isfinite(base):
        return expr
    start, accepted = base, 0
    # largest first: exponents and integer factors settle before the small corrections
    for fl in sorted(_floats(expr), key=lambda f: -abs(float(f))):
        if deadline is not None and time.time() > deadline:
            break
        cur_floats = _floats(expr)
        if not cur_floats:
            break
        # the float may have moved during refits: match the closest current one
        target = min(cur_floats, key=lambda g: abs(float(g) - float(fl)))
        v = float(target)
        # 0 and +-1 first: affine degeneracies (c*log(a*u) + d, c/sqrt(a*u + b)) let them win
        cands: list[sympy.Expr] = [sympy.Integer(0), sympy.Integer(1), sympy.Integer(-1)]
        if abs(v) > 1e-8:
            cands += [c for c in simple_values(v) if c not in (1, -1)]
        limit = max(start * (1.0 + 6.0 * (accepted + 1) / n), floor)
        # the same constant may appear twice (c/sqrt(a - a*u**2)): replace its copies together
        same = [f for f in cur_floats
                if abs(abs(float(f)) - abs(v)) <= 1e-9 * max(abs(v), 1e-300)]
        for cand in cands:
            trial = expr.xreplace({f: cand if (float(f) > 0) == (v > 0) else -cand
                                   for f in same})
            if trial.has(sympy.zoo, sympy.nan) or not trial.free_symbols:
                continue
            trial = refine_constants(trial, symbols, X, y, max_nfev=50, deadline=deadline)
            s_new = sse(trial)
            if s_new <= limit:
                expr, accepted = trial, accepted + 1
                break
    return expr


def snap_floats(expr: sympy.Expr, rtol: float = 1e-9) -> sympy.Expr:
    """Replace Floats that equal a simple closed form to ``rtol`` (e.g. 0.1013211836 -> 1/pi^2)."""
    reps = {}
    for f in expr.atoms(sympy.Float):
        v = float(f)
        if abs(v - round(v)) <= rtol * max(1.0, abs(v)):
            reps[f] = sympy.Integer(round(v))
            continue
        for c in simple_values(v):
            if abs(float(c) - v) <= rtol * abs(v):
                reps[f] = c
                break
    return expr.xreplace(reps)


def round_floats(expr: sympy.Expr, digits: int = 3, zero: float = 1e-4) -> sympy.Expr:
    """SRBench's rounding: |v| < zero -> 0, other Floats rounded to ``digits`` decimals."""
    reps = {}
    for f in expr.atoms(sympy.Float):
        v = float(f)
        reps[f] = sympy.Integer(0) if abs(v) < zero else sympy.Float(round(v, digits))
    return expr.xreplace(reps)


# ----------------------------------------------------------------------------- equivalence
def _with_timeout(fn, seconds: float):
    """Run fn() in a daemon thread; None when it does not finish in time (it is abandoned)."""
    box: list = []
    t = threading.Thread(target=lambda: box.append(fn()), daemon=True)
    t.start()
    t.join(seconds)
    return box[0] if box else None


def _is_const_numeric(v: np.ndarray, rtol: float = 1e-6) -> bool:
    v = v[np.isfinite(v)]
    if len(v) < 10:
        return False
    return float(np.ptp(v)) <= rtol * max(float(np.abs(v).max()), 1e-12) + 1e-12


def equivalent(
    found: sympy.Expr,
    truth: sympy.Expr,
    ranges: dict[str, tuple[float, float]] | None = None,
    timeout: float = 5.0,
    seed: int = 0,
) -> bool:
    """SRBench's "symbolic solution": found - truth or found / truth is a constant, found is not.

    Floats are rounded first (3 decimals, |v| < 1e-4 -> 0). The constant test is numeric on
    random points within ``ranges`` (default [1, 5] per variable), then confirmed symbolically by
    ``sympy.simplify`` under ``timeout`` seconds (a timed-out simplify, or a pair larger than
    ``_SYMBOLIC_OPS`` operations, trusts the numeric test).
    """
    found = round_floats(sympy.sympify(found))
    truth = sympy.sympify(truth)
    syms = sorted(found.free_symbols | truth.free_symbols, key=lambda s: s.name)
    # (sympy's is_constant can run simplify for minutes even with simplify=False; a constant
    # formula is caught numerically below)
    if not found.free_symbols:
        return False
    rng = np.random.default_rng(seed)
    ranges = ranges or {}
    cols = []
    for s in syms:
        lo, hi = ranges.get(s.name, (1.0, 5.0))
        cols.append(rng.uniform(lo, hi, 400))
    X = np.stack(cols, axis=1) if cols else np.zeros((400, 0))
    try:
        fv = evaluate(found, syms, X)
        tv = evaluate(truth, syms, X)
    except Exception:  # noqa: BLE001 - an unevaluable formula is not a solution
        return False
    ok = np.isfinite(fv) & np.isfinite(tv)
    if ok.sum() < 50 or _is_const_numeric(fv[ok]):
        return False
    diff_const = _is_const_numeric(fv[ok] - tv[ok])
    with np.errstate(all="ignore"):
        frac_const = _is_const_numeric(fv[ok] / tv[ok]) and not np.allclose(fv[ok], 0)
    if not (diff_const or frac_const):
        return False

    # the variables are positive on their sampled ranges: tell sympy (sqrt(a)*sqrt(b) = sqrt(ab))
    pos = {s: sympy.Symbol(s.name, positive=True) for s in syms
           if ranges.get(s.name, (1.0, 5.0))[0] >= 0}
    found, truth = found.xreplace(pos), truth.xreplace(pos)

    def symbolic() -> bool:
        d = round_floats(sympy.simplify(truth - found, ratio=1))
        if d == 0 or d.is_constant(simplify=False) or not d.free_symbols:
            return True
        q = round_floats(sympy.simplify(found / truth, ratio=1))
        if not q.free_symbols or q.is_constant(simplify=False):
            return True
        # simplify proves no identity that needs the ranges (sqrt((c+v)/(c-v)) is
        # (1+v/c)/sqrt(1-v^2/c^2) only for c > v): 50-digit arithmetic on the sampled points
        return _constant_to_50_digits(found, truth, [pos.get(s, s) for s in syms],
                                      X[ok][:_PRECISE_POINTS])

    if sympy.count_ops(found) + sympy.count_ops(truth) > _SYMBOLIC_OPS:
        return True  # simplify of a large pair can outlive any timeout in its abandoned thread
    res = _with_timeout(symbolic, timeout)
    return True if res is None else bool(res)


_PRECISE_POINTS = 12  # sample points of the 50-digit check


def _constant_to_50_digits(found: sympy.Expr, truth: sympy.Expr, syms: list, X: np.ndarray
                           ) -> bool:
    """found - truth or found / truth constant to 1e-30 at X's points, in 50-digit arithmetic."""
    diffs, ratios = [], []
    for row in X:
        at = {s: sympy.Float(repr(float(v)), 50) for s, v in zip(syms, row, strict=True)}
        f, t = found.evalf(50, subs=at), truth.evalf(50, subs=at)
        if not (f.is_real and t.is_real) or t == 0:
            return False
        diffs.append(f - t)
        ratios.append(f / t)

    def flat(vals: list) -> bool:
        scale = max(abs(v) for v in vals) + sympy.Float("1e-40", 50)
        return all(abs(v - vals[0]) <= sympy.Float("1e-30", 50) * scale for v in vals)

    return len(diffs) >= 3 and (flat(diffs) or flat(ratios))


_SYMBOLIC_OPS = 80  # operations in found + truth above which only the numeric test is used


# ----------------------------------------------------------------------------- exports
def shape_text(expr: sympy.Expr, placeholder: sympy.Symbol, label: str, digits: int = 3,
               width: int = 40) -> str:
    """A one-variable piece as short text: its shape c*g(u) + d written as g(u), constants at
    ``digits`` significant digits, the placeholder named ``label`` ('1/sqrt(1 - 1.0*(v/c)**2)').

    The piece's own scale and offset are not the formula's (the composed formula refits them),
    so they are left out.
    """
    if isinstance(expr, sympy.Add):
        expr = sympy.Add(*[a for a in expr.args if not a.is_number]) or expr
    coeff, rest = expr.as_coeff_Mul()
    if coeff.is_number and rest.free_symbols:
        expr = rest
    text = str(with_digits(expr, digits).xreplace({placeholder: sympy.Symbol(label)}))
    return text if len(text) <= width else text[:width - 3] + "..."


_GREEK = {"alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa",
          "lambda", "mu", "nu", "xi", "omicron", "pi", "rho", "sigma", "tau", "upsilon", "phi",
          "chi", "psi", "omega"}


_ALIASES = {"lambd": "lambda"}  # Python keywords spelt around in variable names


def _latex_part(text: str) -> str:
    """One part of a variable name: Greek letters and single letters as sympy writes them,
    longer words upright (Pwr is one quantity, not P * w * r)."""
    text = _ALIASES.get(text, text)
    if text.lower() in _GREEK or (len(text) == 1 and text.isalpha()):
        return sympy.latex(sympy.Symbol(text))
    if text.isdigit():
        return text
    head = text.rstrip("0123456789")
    digits = text[len(head):]
    if digits and (len(head) == 1 or head.lower() in _GREEK):
        return f"{sympy.latex(sympy.Symbol(head))}_{{{digits}}}"
    return rf"\mathrm{{{text}}}" if text else ""


def latex_name(name: str) -> str:
    """A variable name in LaTeX: ``Pwr`` -> \\mathrm{Pwr}, ``omega_0`` -> \\omega_{0},
    ``mu_drift`` -> \\mu_{\\mathrm{drift}}, ``x1`` -> x_{1}."""
    base, _, sub = name.partition("_")
    out = _latex_part(base) if base else ""
    if sub:
        out += "_{" + ",".join(_latex_part(p) for p in sub.split("_") if p) + "}"
    return out or sympy.latex(sympy.Symbol(name))


def with_digits(expr: sympy.Expr, digits: int) -> sympy.Expr:
    """expr with every float constant shown at ``digits`` significant digits."""
    return expr.xreplace({f: sympy.Float(f, digits) for f in expr.atoms(sympy.Float)})


def to_latex(expr: sympy.Expr, digits: int | None = None) -> str:
    """LaTeX of the formula, multi-letter variable names upright; with ``digits``, float
    constants at that many significant digits."""
    if digits is not None:
        expr = with_digits(expr, digits)
    names = {s: latex_name(s.name) for s in expr.free_symbols if isinstance(s, sympy.Symbol)}
    return sympy.latex(expr, symbol_names=names)


class _RoundTripPrinter(StrPrinter):
    """str() that parse_expr reads back with local_dict {name: Symbol(name)} for any name."""

    def __init__(self, names: set[str]):
        super().__init__({"full_prec": True})
        self._names = names

    def _print_Symbol(self, expr):  # noqa: N802 - sympy printer protocol
        n = expr.name
        if n.isidentifier() and not keyword.iskeyword(n):
            return n
        return f"Symbol({n!r})"

    def _print_Pi(self, expr):  # noqa: N802
        return "(4*atan(1))" if "pi" in self._names else "pi"

    def _print_Exp1(self, expr):  # noqa: N802
        return "exp(1)" if "E" in self._names else "E"

    def _print_ImaginaryUnit(self, expr):  # noqa: N802
        return "sqrt(-1)" if "I" in self._names else "I"

    def _print_Float(self, expr):  # noqa: N802
        return repr(float(expr))


def to_sympy_string(expr: sympy.Expr) -> str:
    """A string that ``sympy.parse_expr(s, local_dict={n: Symbol(n)})`` parses back to expr."""
    names = {s.name for s in expr.free_symbols}
    return _RoundTripPrinter(names).doprint(expr)


def to_python(expr: sympy.Expr, names: Sequence[str], func_name: str = "formula") -> str:
    """Source of a numpy function ``def formula(<names>)`` evaluating expr."""
    from sympy.printing.numpy import NumPyPrinter

    args, reps = [], {}
    for i, n in enumerate(names):
        arg = n if n.isidentifier() and not keyword.iskeyword(n) and n != "numpy" else f"x{i}"
        args.append(arg)
        reps[sympy.Symbol(n)] = sympy.Symbol(arg)
    body = NumPyPrinter({"fully_qualified_modules": True}).doprint(expr.xreplace(reps))
    return (f"import numpy\n\n\ndef {func_name}({', '.join(args)}):\n"
            f"    return {body}\n")
