"""Peers for ``bench feynman --peers``: pykan's MultKAN recipe and Operon on kamoe's data.

Contract (what ``kamoe.bench.feynman`` calls, in a child process killed at the limit):
``available(peer)`` is None when the peer can run, else one line naming what is missing and
the install command; ``run(peer, dataset, limit, seed)`` returns the row of one equation with
the keys of kamoe's rows (``id``, ``runner``, ``recovered``, ``r2_test``, ``network_r2``,
``seconds``, ``method``, ``formula``). Both peers see the same training split as kamoe, their
formulas are mapped to the dataset's raw variables and judged by the same rule: test R^2 > 0.5
and ``kamoe.symbolic.equivalent`` (SRBench's symbolic solution). A peer still running at
``limit`` seconds counts as a miss (method ``timeout``).

pykan (KindXiaoming/pykan, MultKAN tutorial "Interp 1: Hello, MultKAN"): width
``[d, [5, 2], 1]``, ``base_fun='identity'``, ``fit(steps=20, lamb=0.01, lamb_coef=1.0)``,
``prune()``, ``fit(steps=20)``, ``auto_symbolic`` (default library, edge by edge so that the
budget is checked between edges), ``fit(steps=20)``, then ``nsimplify(ex_round(ex_round(f, 3),
3))``. Operon (pyoperon's scikit-learn ``SymbolicRegressor``): SRBench's OperonRegressor
settings (cavalab/srbench, experiment/methods/OperonRegressor.py) with ``max_time`` from the
budget and one thread.
"""

from __future__ import annotations

import contextlib
import io
import math
import tempfile
import time
from typing import Any

import numpy as np
import sympy

INSTALL = ".venv/bin/pip install -e '.[bench]'"
SCORING_RESERVE = 6.0  # seconds kept for the formula's test score and the equivalence check

# pykan's MultKAN recipe (the tutorial's numbers; see the module docstring).
PYKAN_WIDTH_HIDDEN = [5, 2]  # 5 sum nodes and 2 multiplication nodes
PYKAN_STEPS = 20  # LBFGS steps of each of the three fits, as in the tutorial
PYKAN_LIB: list[str] | None = None  # auto_symbolic's library: None is pykan's default (29)
PYKAN_SYMBOLIC_POINTS = 200  # training rows the edge fits see (pykan: N x 101 x 101 per function)

# SRBench's OperonRegressor (population 500, LM local search of 5 iterations, 5e5 evaluations)
# with the function set of its later ground-truth variant (add, sub, mul, div and unary
# functions instead of the analytic quotient, so that quotients can be read as quotients).
OPERON_SETTINGS: dict[str, Any] = {
    "allowed_symbols": "add,sub,mul,div,exp,log,sin,cos,sqrt,square,constant,variable",
    "optimizer_iterations": 5,
    "population_size": 500,
    "pool_size": 500,
    "max_length": 50,
    "tournament_size": 5,
    "offspring_generator": "basic",
    "reinserter": "keep-best",
    "max_evaluations": 500_000,
    "generations": 1_000_000,  # never the binding limit: evaluations or time are
    "n_threads": 1,
}


def _import_check(peer: str) -> None:
    if peer == "pykan":
        import kan  # noqa: F401  (pykan imports matplotlib, yaml, tqdm, pandas itself)
        import kan.utils  # noqa: F401
    else:
        import pyoperon.sklearn  # noqa: F401


def available(peer: str) -> str | None:
    """None when ``peer`` can run here, else one line: what is missing and how to install it."""
    from kamoe.bench.feynman import PEERS

    if peer not in PEERS:
        return f"unknown peer {peer!r}; choose from {', '.join(PEERS)}"
    try:
        _import_check(peer)
    except ImportError as exc:
        return f"{peer} is not installed ({exc}): {INSTALL}"
    return None


def run(peer: str, dataset, limit: float, seed: int) -> dict[str, Any]:
    """The row of one equation solved by ``peer`` within ``limit`` seconds."""
    missing = available(peer)
    if missing:
        raise ValueError(missing)
    t0 = time.time()
    runner = _run_pykan if peer == "pykan" else _run_operon
    row = runner(dataset, float(limit), int(seed), t0)
    row["seconds"] = time.time() - t0
    if row["seconds"] > limit and row["method"] != "error":
        row["recovered"] = False  # an overrun is a miss, whatever it found
        row["method"] = "timeout"
    return row


def _row(dataset, peer: str, expr: sympy.Expr | None, network_r2: float | None,
         method: str | None = None, note: str = "") -> dict[str, Any]:
    """Score ``expr`` (raw variables) on the test split and judge it with kamoe's rule."""
    from kamoe.symbolic.expr import equivalent, evaluate, r2_score, to_sympy_string

    row = {"id": dataset.meta["feynman_id"], "runner": peer, "recovered": False,
           "r2_test": float("nan"), "network_r2": network_r2, "seconds": 0.0,
           "method": method or peer, "formula": note}
    if expr is None:
        return row
    names = [sympy.Symbol(n) for n in dataset.feature_names]
    r2 = r2_score(evaluate(expr, names, dataset.raw_X("test")), dataset.raw_y("test").ravel())
    row["r2_test"] = r2
    row["formula"] = to_sympy_string(expr)
    row["recovered"] = bool(r2 > 0.5 and dataset.formula is not None and equivalent(
        expr, dataset.formula, ranges=dataset.meta.get("ranges")))
    return row


def _error(dataset, peer: str, stage: str, exc: BaseException | str,
           network_r2: float | None = None) -> dict[str, Any]:
    text = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"
    return _row(dataset, peer, None, network_r2, method="error",
                note=f"{peer} failed in {stage}: {text}")


# ----------------------------------------------------------------------------- pykan
def _to_raw(expr: sympy.Expr, dataset) -> sympy.Expr:
    """A formula in model space (x_1..x_d scaled, y standardised) in the raw variables."""
    xs, ys = dataset.x_scaling, dataset.y_scaling
    off, scale = np.ravel(xs.offset), np.ravel(xs.scale)
    sub = {sympy.Symbol(f"x_{i + 1}"): (sympy.Symbol(n) - float(off[i])) / float(scale[i])
           for i, n in enumerate(dataset.feature_names)}
    return (expr.xreplace(sub) * float(np.ravel(ys.scale)[0])
            + float(np.ravel(ys.offset)[0]))


def _pykan_round(expr: sympy.Expr, dataset) -> sympy.Expr:
    """The tutorial's ``nsimplify(ex_round(ex_round(f, 3), 3))``, kept when it scores as well."""
    from kan.utils import ex_round

    from kamoe.symbolic.expr import evaluate, r2_score

    try:
        rounded = sympy.nsimplify(ex_round(ex_round(expr, 3), 3))
    except Exception:  # noqa: BLE001 - pykan users report ZeroDivisionError here (#174, #134)
        return expr
    names = [sympy.Symbol(n) for n in dataset.feature_names]
    X, y = dataset.raw_X("train"), dataset.raw_y("train").ravel()
    before = r2_score(evaluate(expr, names, X), y)
    after = r2_score(evaluate(rounded, names, X), y)
    # rounding that costs accuracy on the training data is not the formula pykan found
    return rounded if after >= before - 1e-6 else expr


def _network_r2(model, dataset, torch) -> float:
    from kamoe.symbolic.expr import r2_score

    with torch.no_grad():
        pred = model(torch.tensor(dataset.X_test, dtype=torch.float32)).numpy()
    raw = dataset.y_scaling.invert(pred).ravel()
    return r2_score(raw, dataset.raw_y("test").ravel())


def _run_pykan(dataset, limit: float, seed: int, t0: float) -> dict[str, Any]:
    import torch
    from kan import KAN

    deadline = t0 + limit - min(SCORING_RESERVE, 0.3 * limit)
    d = dataset.n_features
    rng = np.random.default_rng(seed)
    X = torch.tensor(dataset.X_train, dtype=torch.float32)
    Y = torch.tensor(dataset.y_train, dtype=torch.float32)
    # pykan's fit logs a "test" loss on whatever it is given, and its last forward pass is the
    # one auto_symbolic reads: give it training rows only, so that no test row shapes a formula.
    data = {"train_input": X, "train_label": Y, "test_input": X, "test_label": Y}
    sym_rows = torch.tensor(np.sort(rng.choice(len(X), min(len(X), PYKAN_SYMBOLIC_POINTS),
                                               replace=False)))
    quiet = io.StringIO()  # pykan prints progress bars and every fixed edge
    stage, network_r2 = "construction", None
    with tempfile.TemporaryDirectory() as ckpt, contextlib.redirect_stdout(quiet), \
            contextlib.redirect_stderr(quiet):
        try:
            torch.manual_seed(seed)
            # prune() builds its new model with auto_save=True (pykan 0.2.8), so it writes
            # checkpoints: point them at a temporary folder and switch saving off again.
            model = KAN(width=[d, PYKAN_WIDTH_HIDDEN, 1], base_fun="identity", seed=seed,
                        auto_save=False, ckpt_path=ckpt)
            stage = "fit (sparsity)"
            model.fit(data, steps=PYKAN_STEPS, lamb=0.01, lamb_coef=1.0)
            if time.time() > deadline:
                return _error(dataset, "pykan", stage, "out of budget after the first fit")
            stage = "prune"
            model = model.prune()
            model.auto_save = False
            stage = "fit (pruned)"
            model.fit(data, steps=PYKAN_STEPS)
            network_r2 = _network_r2(model, dataset, torch)
            stage = "auto_symbolic"
            model(X[sym_rows])  # the activations the edge fits read
            left = _auto_symbolic(model, deadline)
            if left:
                return _error(dataset, "pykan", stage, f"out of budget with {left} edges "
                              "not yet symbolic", network_r2)
            stage = "fit (symbolic)"
            model.fit(data, steps=PYKAN_STEPS)
            stage = "symbolic_formula"
            out = model.symbolic_formula()
            if out is None:
                return _error(dataset, "pykan", stage, "an edge is not symbolic", network_r2)
            expr = _to_raw(out[0][0], dataset)
        except Exception as exc:  # noqa: BLE001 - pykan's own errors are the peer's result
            return _error(dataset, "pykan", stage, exc, network_r2)
    return _row(dataset, "pykan", _pykan_round(expr, dataset), network_r2)


def _auto_symbolic(model, deadline: float) -> int:
    """pykan's ``auto_symbolic()`` edge by edge; returns how many edges the budget left over."""
    todo = []
    for layer in range(len(model.width_in) - 1):
        for i in range(model.width_in[layer]):
            for j in range(model.width_out[layer + 1]):
                symbolic = model.symbolic_fun[layer].mask[j, i] > 0.0
                numeric = model.act_fun[layer].mask[i][j] > 0.0
                if symbolic and not numeric:
                    continue  # already symbolic
                todo.append((layer, i, j, numeric))
    for k, (layer, i, j, numeric) in enumerate(todo):
        if time.time() > deadline:
            return len(todo) - k
        if not numeric:  # a pruned edge: pykan fixes it to 0
            model.fix_symbolic(layer, i, j, "0", verbose=False, log_history=False)
            continue
        name, _, _, _ = model.suggest_symbolic(layer, i, j, lib=PYKAN_LIB, verbose=False)
        model.fix_symbolic(layer, i, j, name, verbose=False, log_history=False)
    return 0


# ----------------------------------------------------------------------------- Operon
_OPERON_FUNCTIONS = {
    "exp": sympy.exp, "log": sympy.log, "sin": sympy.sin, "cos": sympy.cos,
    "sqrt": sympy.sqrt, "square": lambda a: a**2, "tanh": sympy.tanh, "abs": sympy.Abs,
}


def operon_budget(limit: float) -> int:
    """Operon's ``max_time`` (whole seconds) for a budget of ``limit`` seconds."""
    return max(1, math.floor(limit - min(SCORING_RESERVE, 0.3 * limit)))


def _parse_operon(text: str, names: list[str]) -> sympy.Expr:
    """Operon's infix string (variables ``v0``..) as a sympy expression in ``names``."""
    local = {f"v{i}": sympy.Symbol(n) for i, n in enumerate(names)}
    local.update(_OPERON_FUNCTIONS)
    from sympy.parsing.sympy_parser import convert_xor, standard_transformations

    # Operon writes powers as a ^ b
    return sympy.parse_expr(text, local_dict=local, evaluate=True,
                            transformations=standard_transformations + (convert_xor,))


def _run_operon(dataset, limit: float, seed: int, t0: float) -> dict[str, Any]:
    from pyoperon.sklearn import SymbolicRegressor

    stage = "fit"
    try:
        reg = SymbolicRegressor(**OPERON_SETTINGS, max_time=operon_budget(limit),
                                random_state=seed)
        reg.fit(dataset.raw_X("train"), dataset.raw_y("train").ravel())
        stage = "model string"
        names = list(dataset.feature_names)
        text = reg.get_model_string(reg.model_, 12, names=[f"v{i}" for i in range(len(names))])
        expr = _parse_operon(text, names)
        from kamoe.symbolic.expr import r2_score

        network_r2 = r2_score(reg.predict(dataset.raw_X("test")), dataset.raw_y("test").ravel())
    except Exception as exc:  # noqa: BLE001 - a failing fit is the peer's result
        return _error(dataset, "operon", stage, exc)
    return _row(dataset, "operon", expr, network_r2)
