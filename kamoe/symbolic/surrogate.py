"""A trained KAN standing in for the data: the surrogate that structure tests query.

``train_surrogate(X, y)`` fits a kamoe ``kan`` model to raw arrays and wraps it so that it can
be evaluated anywhere in the data's box, in raw units. When the target keeps one sign and
never reaches zero, the KAN models ``log|y|`` instead of ``y``: products then become sums, and
the surrogate's error is relative, which is what multiplicative tests and log transforms need.

The surrogate reports its own accuracy on held-out rows (``rmse``, in the units it models), so
callers can tell structure from the surrogate's error. Trained through ``kamoe.train.fit``,
seeded, one torch thread is the caller's business.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from kamoe.data.dataset import Affine, Dataset
from kamoe.symbolic.expr import r2_score


def one_signed(y: np.ndarray) -> bool:
    """True when y keeps one sign and is never zero (so log|y| is defined)."""
    y = np.asarray(y, float)
    return bool(len(y) and np.all(np.isfinite(y)) and (np.all(y > 0) or np.all(y < 0)))


@dataclass
class Surrogate:
    """A KAN fitted to (X, y) in raw units; ``value(X)`` is the surrogate's y."""

    model: torch.nn.Module
    x_scaling: Affine
    t_scaling: Affine
    log_target: bool
    sign: float
    rmse: float  # held-out RMS error in the modelled target's units (log|y| or y)
    r2: float  # held-out R^2 in those units
    rmse_value: float  # held-out RMS error of the surrogate's y, in y's units
    seconds: float
    widths: list[int] = field(default_factory=list)
    lo: np.ndarray | None = None  # the data box the surrogate may be queried in
    hi: np.ndarray | None = None

    def target(self, X: np.ndarray) -> np.ndarray:
        """The modelled quantity at raw inputs X: log|y| when ``log_target``, else y."""
        Xs = self.x_scaling.apply(np.asarray(X, float)).astype(np.float32)
        out = []
        with torch.no_grad():
            for s in range(0, len(Xs), 8192):
                out.append(self.model(torch.from_numpy(Xs[s:s + 8192])).double().numpy())
        t = np.concatenate(out)[:, 0] if out else np.zeros(0)
        return self.t_scaling.invert(t[:, None])[:, 0]

    def value(self, X: np.ndarray) -> np.ndarray:
        """The surrogate's y at raw inputs X."""
        t = self.target(X)
        return self.sign * np.exp(np.minimum(t, 700.0)) if self.log_target else t

    @property
    def describe(self) -> str:
        space = "log|y|" if self.log_target else "y"
        return (f"KAN {self.widths} on {space}, held-out R^2 {self.r2:.6f} "
                f"(RMSE {self.rmse:.2e}), {self.seconds:.1f} s")


def arrays_dataset(X: np.ndarray, t: np.ndarray, names: list[str], seed: int,
                   val_fraction: float = 0.2) -> tuple[Dataset, Affine, Affine]:
    """A regression Dataset from raw arrays: X mapped to [-1, 1] per column, t standardised.

    The held-out part (``val_fraction`` of the rows, at random) is the Dataset's test split.
    """
    X = np.asarray(X, float)
    t = np.asarray(t, float).reshape(-1, 1)
    n = len(X)
    perm = np.random.default_rng(seed).permutation(n)
    n_val = max(1, int(round(val_fraction * n))) if n >= 10 else 0
    va, tr = (perm[:n_val], perm[n_val:]) if n_val else (perm, perm)
    xs = Affine.minmax(X[tr])
    ts = Affine.standard(t[tr])
    ds = Dataset(name="surrogate", task="regression", kind="tabular",
                 X_train=xs.apply(X[tr]).astype(np.float32),
                 y_train=ts.apply(t[tr]).astype(np.float32),
                 X_test=xs.apply(X[va]).astype(np.float32),
                 y_test=ts.apply(t[va]).astype(np.float32),
                 feature_names=list(names), target_names=["y"], x_scaling=xs, y_scaling=ts)
    return ds, xs, ts


def train_surrogate(
    X: np.ndarray,
    y: np.ndarray,
    names: list[str] | None = None,
    *,
    hidden: list[int] | None = None,
    grid_size: int = 5,
    refine_to: tuple[int, ...] = (),
    log_target: bool | None = None,
    epochs: int = 80,
    seed: int = 0,
    deadline: float | None = None,
) -> Surrogate:
    """Fit a KAN [d, hidden..., 1] to raw (X, y) with LBFGS, grid updates and optional grid
    extension (``refine_to``: finer grid sizes, each retrained).

    ``log_target=None`` chooses: log|y| when y is one-signed, and y as well when the log fit
    is poor (y close to zero somewhere); the one with the smaller error in y's units wins.
    """
    kw = dict(hidden=hidden, grid_size=grid_size, refine_to=refine_to, epochs=epochs,
              seed=seed, deadline=deadline)
    if log_target is not None:
        return _train(X, y, names, use_log=bool(log_target), **kw)
    if not one_signed(y):
        return _train(X, y, names, use_log=False, **kw)
    s_log = _train(X, y, names, use_log=True, **kw)
    if s_log.r2 > 1 - 1e-4 or (deadline is not None and time.time() > deadline - 1):
        return s_log
    s_raw = _train(X, y, names, use_log=False, **kw)
    return s_log if s_log.rmse_value <= s_raw.rmse_value else s_raw


def _train(X, y, names, *, use_log, hidden, grid_size, refine_to, epochs, seed, deadline
           ) -> Surrogate:
    from kamoe.interpret.prune import extend_grid
    from kamoe.models import build_for
    from kamoe.recipes import formula_schedule
    from kamoe.train import evaluate, fit, set_seed

    t0 = time.time()
    X = np.asarray(X, float)
    y = np.asarray(y, float).ravel()
    d = X.shape[1]
    names = list(names) if names is not None else [f"x{i}" for i in range(d)]
    sign = float(np.sign(y[0])) if use_log else 1.0
    with np.errstate(divide="ignore"):
        t = np.log(np.abs(y)) if use_log else y
    ds, xs, ts = arrays_dataset(X, t, names, seed)
    hidden = list(hidden) if hidden else [max(5, min(2 * d + 1, 10))]
    set_seed(seed)
    model = build_for("kan", ds, hidden=hidden, grid_size=grid_size)

    def budget() -> float | None:
        return None if deadline is None else max(0.2, deadline - time.time())

    # the held-out rows are the dataset's test split: no second validation split inside fit
    cfg = dict(patience=20, seed=seed, plateau_patience=None, val_fraction=0.0)
    fit(model, ds, formula_schedule(epochs=epochs, max_seconds=budget(), **cfg))
    for g in refine_to:
        if deadline is not None and time.time() > deadline - 0.5:
            break
        finer = extend_grid(model, g, ds.X_train)
        fit(finer, ds, formula_schedule(epochs=max(20, epochs // 2), grid_update_epochs=0,
                                        max_seconds=budget(), **cfg))
        if evaluate(finer, ds, "test")["rmse"] < evaluate(model, ds, "test")["rmse"]:
            model = finer
    model.eval()
    pred = ts.invert(_predict(model, ds.X_test))[:, 0]
    truth = ts.invert(ds.y_test)[:, 0]
    rmse = float(math.sqrt(np.mean((pred - truth) ** 2)))
    if use_log:
        with np.errstate(over="ignore"):
            err_value = sign * (np.exp(np.minimum(pred, 700.0)) - np.exp(truth))
    else:
        err_value = pred - truth
    lo, hi = X.min(0), X.max(0)
    return Surrogate(model=model, x_scaling=xs, t_scaling=ts, log_target=use_log, sign=sign,
                     rmse=rmse, r2=float(r2_score(pred, truth)),
                     rmse_value=float(np.sqrt(np.mean(err_value**2))),
                     seconds=time.time() - t0, widths=[d, *hidden, 1], lo=lo, hi=hi)


def _predict(model: torch.nn.Module, X: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.as_tensor(X, dtype=torch.float32)).double().numpy()
