"""kamoe: train, look inside, and extract formulas from Kolmogorov-Arnold mixtures of experts.

``import kamoe`` stays light: the scikit-learn estimators (``kamoe.KANRegressor``,
``kamoe.KANClassifier``, ``kamoe.FormulaRegressor``) are imported from ``kamoe.sklearn`` on
first use.
"""

import time as _time

__version__ = "0.1.0"
STARTED = _time.time()  # when the package was first imported (CLI time budgets count from here)

_LAZY = {"KANRegressor": "kamoe.sklearn", "KANClassifier": "kamoe.sklearn",
         "FormulaRegressor": "kamoe.sklearn"}
__all__ = ["STARTED", "__version__", *_LAZY]


def __getattr__(name: str):
    """Import the estimators on first access (PEP 562)."""
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'kamoe' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
