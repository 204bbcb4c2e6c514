"""Symbolic regression for kamoe: library fits per KAN edge, composed formulas, Feynman recovery.

``extract_formula(dataset)`` is the entry point; ``SymbolicKAN``/``fix``/``auto`` expose the
per-edge workflow of a trained KAN; ``equivalent`` is SRBench's "symbolic solution" rule.
No streamlit here: sympy, numpy, scipy and torch only.
"""

from kamoe.symbolic.compose import SymbolicKAN, auto, fix, symbolic_state
from kamoe.symbolic.expr import (
    equivalent,
    evaluate,
    r2_score,
    refine_constants,
    round_constants,
    round_floats,
    to_latex,
    to_python,
    to_sympy_string,
)
from kamoe.symbolic.fit import Candidate, suggest
from kamoe.symbolic.library import LIBRARY, LibraryFunction, get_library
from kamoe.symbolic.pipeline import FormulaResult, extract_formula

__all__ = [
    "LIBRARY", "Candidate", "FormulaResult", "LibraryFunction", "SymbolicKAN", "auto",
    "equivalent", "evaluate", "extract_formula", "fix", "get_library", "r2_score",
    "refine_constants", "round_constants", "round_floats", "suggest", "symbolic_state",
    "to_latex", "to_python", "to_sympy_string",
]
