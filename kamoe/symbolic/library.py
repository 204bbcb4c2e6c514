"""The univariate function library: each entry has numpy, sympy and torch functions and a cost.

Numpy functions return NaN outside their domain (log of a negative, arcsin beyond +-1, ...), so
the fitter can mask and reject an affine placement that leaves the domain instead of fitting
through NaN-driven nonsense. Torch functions are the singularity-avoiding versions a snapped
edge trains with (pykan does the same): the argument is clamped into the domain, so a step of
the optimiser that strays there gives a large, finite value instead of NaN.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import sympy
import torch

from kamoe.errors import FormulaError

_EPS = 1e-6  # how close a torch edge function may come to a pole or a branch point


@dataclass(frozen=True)
class LibraryFunction:
    """One library entry: ``numpy(x)``, ``sympy(x)`` and its complexity (pykan's scale)."""

    name: str
    numpy: Callable[[np.ndarray], np.ndarray]
    sympy: Callable[[sympy.Expr], sympy.Expr]
    complexity: int
    torch: Callable[[torch.Tensor], torch.Tensor] | None = None


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


def _away(x: torch.Tensor) -> torch.Tensor:
    """x kept at least _EPS away from 0, sign preserved (for 1/x-like functions)."""
    return torch.where(x >= 0, x.clamp_min(_EPS), x.clamp_max(-_EPS))


_TORCH: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "0": torch.zeros_like, "x": lambda x: x, "x^2": lambda x: x**2, "x^3": lambda x: x**3,
    "x^4": lambda x: x**4, "1/x": lambda x: 1 / _away(x), "1/x^2": lambda x: _away(x) ** -2,
    "sqrt": lambda x: torch.sqrt(x.clamp_min(_EPS)),
    "1/sqrt": lambda x: torch.rsqrt(x.clamp_min(_EPS)),
    "exp": lambda x: torch.exp(x.clamp_max(50.0)), "log": lambda x: torch.log(x.clamp_min(_EPS)),
    "sin": torch.sin, "cos": torch.cos, "tan": lambda x: torch.sin(x) / _away(torch.cos(x)),
    "tanh": torch.tanh, "cosh": lambda x: torch.cosh(x.clamp(-50.0, 50.0)),
    "sigmoid": torch.sigmoid, "abs": torch.abs,
    "arcsin": lambda x: torch.asin(x.clamp(-1 + _EPS, 1 - _EPS)), "arctan": torch.atan,
    "gaussian": lambda x: torch.exp(-(x**2)),
}

LIBRARY: dict[str, LibraryFunction] = {
    f.name: LibraryFunction(f.name, f.numpy, f.sympy, f.complexity, _TORCH[f.name])
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
    """Library entries by name (all when None); unknown names raise FormulaError."""
    if names is None:
        return list(LIBRARY.values())
    bad = [n for n in names if n not in LIBRARY]
    if bad:
        raise FormulaError(f"unknown library function(s) {bad}; choose from {sorted(LIBRARY)}")
    return [LIBRARY[n] for n in names]
