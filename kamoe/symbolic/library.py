"""The univariate function library: each entry has a numpy function, a sympy function and a cost.

Numpy functions return NaN outside their domain (log of a negative, arcsin beyond +-1, ...), so
the fitter can mask and reject an affine placement that leaves the domain instead of fitting
through NaN-driven nonsense.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import sympy


@dataclass(frozen=True)
class LibraryFunction:
    """One library entry: ``numpy(x)``, ``sympy(x)`` and its complexity (pykan's scale)."""

    name: str
    numpy: Callable[[np.ndarray], np.ndarray]
    sympy: Callable[[sympy.Expr], sympy.Expr]
    complexity: int


def _pos(f: Callable[[np.ndarray], np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
    def g(x: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            return np.where(x > 0, f(np.where(x > 0, x, 1.0)), np.nan)

    return g


def _nonzero(f: Callable[[np.ndarray], np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
    def g(x: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            ok = np.abs(x) > 1e-6
            return np.where(ok, f(np.where(ok, x, 1.0)), np.nan)

    return g


def _unit(f: Callable[[np.ndarray], np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
    def g(x: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            ok = np.abs(x) <= 1.0
            return np.where(ok, f(np.where(ok, x, 0.0)), np.nan)

    return g


def _exp(x: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        return np.where(x < 50, np.exp(np.minimum(x, 50)), np.nan)


def _cosh(x: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        return np.where(np.abs(x) < 50, np.cosh(np.clip(x, -50, 50)), np.nan)


def _tan(x: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        ok = np.abs(np.cos(x)) > 1e-3
        return np.where(ok, np.tan(x), np.nan)


LIBRARY: dict[str, LibraryFunction] = {
    f.name: f
    for f in [
        LibraryFunction("0", lambda x: np.zeros_like(x), lambda x: sympy.Integer(0), 0),
        LibraryFunction("x", lambda x: x, lambda x: x, 1),
        LibraryFunction("x^2", lambda x: x**2, lambda x: x**2, 2),
        LibraryFunction("x^3", lambda x: x**3, lambda x: x**3, 3),
        LibraryFunction("x^4", lambda x: x**4, lambda x: x**4, 3),
        LibraryFunction("1/x", _nonzero(lambda x: 1.0 / x), lambda x: 1 / x, 2),
        LibraryFunction("1/x^2", _nonzero(lambda x: 1.0 / x**2), lambda x: x**-2, 2),
        LibraryFunction("sqrt", _pos(np.sqrt), sympy.sqrt, 2),
        LibraryFunction("1/sqrt", _pos(lambda x: 1.0 / np.sqrt(x)), lambda x: 1 / sympy.sqrt(x), 2),
        LibraryFunction("exp", _exp, sympy.exp, 2),
        LibraryFunction("log", _pos(np.log), sympy.log, 2),
        LibraryFunction("sin", np.sin, sympy.sin, 2),
        LibraryFunction("cos", np.cos, sympy.cos, 2),
        LibraryFunction("tan", _tan, sympy.tan, 3),
        LibraryFunction("tanh", np.tanh, sympy.tanh, 3),
        LibraryFunction("cosh", _cosh, sympy.cosh, 3),
        LibraryFunction("sigmoid", lambda x: 0.5 * (1.0 + np.tanh(0.5 * x)),
                        lambda x: 1 / (1 + sympy.exp(-x)), 3),
        LibraryFunction("abs", np.abs, sympy.Abs, 3),
        LibraryFunction("arcsin", _unit(np.arcsin), sympy.asin, 4),
        LibraryFunction("arctan", np.arctan, sympy.atan, 4),
        LibraryFunction("gaussian", lambda x: np.exp(-(x**2)), lambda x: sympy.exp(-(x**2)), 3),
    ]
}


def get_library(names: list[str] | tuple[str, ...] | None = None) -> list[LibraryFunction]:
    """Library entries by name (all when None); unknown names raise ValueError."""
    if names is None:
        return list(LIBRARY.values())
    bad = [n for n in names if n not in LIBRARY]
    if bad:
        raise ValueError(f"unknown library function(s) {bad}; choose from {sorted(LIBRARY)}")
    return [LIBRARY[n] for n in names]
