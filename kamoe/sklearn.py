"""scikit-learn estimators: ``KANRegressor``, ``KANClassifier`` and ``FormulaRegressor``.

Room: the Python API over the library (no streamlit). Each estimator follows scikit-learn's
conventions: the constructor only stores its parameters; ``fit(X, y)`` takes NumPy arrays or
pandas frames (a frame's column names become the variable names), turns them into the project's
``Dataset`` with ``kamoe.data.from_arrays``, builds the model through the registry
(``kamoe.models.build_for``), trains it with the one training loop (``kamoe.train.fit``) and
returns ``self``; what was learned sits in attributes ending in ``_``:

* ``model_`` (the registry ``Model``), ``config_`` (its config dict), ``train_config_``
  (the resolved ``TrainConfig``), ``history_`` (the ``History``) and ``dataset_`` (the training
  ``Dataset`` with its scalings), so ``kamoe.train.save_model(est.model_, path,
  dataset=est.dataset_, history=est.history_, train_config=est.train_config_)`` and the
  interpretation functions take a fitted estimator's parts as they are;
* ``save(store=None, name=None)`` puts a fitted KAN estimator into the run store (a run of
  dataset kind ``arrays`` holding the training arrays) and returns its id;
  ``KANRegressor.load(run_id)`` / ``KANClassifier.load(run_id)`` give it back, fitted;
* ``FormulaRegressor``: ``result_`` (what ``kamoe.symbolic.extract_formula`` returned),
  ``formula_`` (a picklable numpy function), ``sympy()`` and ``latex()``.

Parameters left at ``None`` take the project's defaults for the model and the data: the registry's
model settings (``kamoe.models.default_config``) and the training recipe of ``kamoe train``
(full-batch LBFGS with early grid updates for a KAN on up to 10 features, Adam otherwise).
``random_state`` seeds the initial weights, the validation split and the batches: the same seed
gives the same predictions. The default is 0 (kamoe seeds everything); ``None`` draws a fresh
seed from NumPy's global generator at every fit. Fitting leaves the caller's ``random``, NumPy
and torch global generators as they were.

scikit-learn's ``check_estimator`` (run by tests/test_sklearn.py): every check passes for the
three estimators, except ``check_array_api_input``, which scikit-learn itself skips unless
``SCIPY_ARRAY_API`` is set (no array-API support is claimed).

Predictions evaluate the trained float32 weights in float64, so a row's prediction does not
depend on the other rows of the batch (scikit-learn's subset-invariance checks ask for 1e-7).
"""

from __future__ import annotations

import contextlib
import random
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

__all__ = ["Formula", "FormulaRegressor", "KANClassifier", "KANRegressor"]


@contextlib.contextmanager
def _own_rng() -> Iterator[None]:
    """Restore the global random, NumPy and torch generators on exit (fit seeds them)."""
    import torch

    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        with torch.random.fork_rng(devices=[]):
            yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)


def _seed(random_state: Any) -> int:
    """An int seed from ``random_state`` (int, None or a RandomState)."""
    if isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool):
        if random_state < 0:
            raise ValueError(f"random_state must be >= 0, got {random_state}")
        return int(random_state)
    return int(check_random_state(random_state).randint(0, 2**31 - 1))


def _target_names(y: Any) -> list[str] | None:
    """A pandas target's name(s), read before validation turns it into an array."""
    if hasattr(y, "columns"):
        return [str(c) for c in y.columns]
    name = getattr(y, "name", None)
    return None if name is None else [str(name)]


def _variable_names(est: BaseEstimator, n: int) -> list[str]:
    names = getattr(est, "feature_names_in_", None)
    return [str(v) for v in names] if names is not None else [f"x{i}" for i in range(1, n + 1)]


# ---------------------------------------------------------------------------- KAN estimators


class _KANEstimator(BaseEstimator):
    """Shared parameters and fit of the KAN estimators (any tabular registry model works)."""

    def __init__(
        self,
        model: str = "kan",
        *,
        hidden: Sequence[int] | int | None = None,
        grid_size: int | None = None,
        spline_order: int | None = None,
        model_params: dict[str, Any] | None = None,
        epochs: int | None = None,
        optimizer: str | None = None,
        lr: float | None = None,
        batch_size: int | str | None = "auto",
        sparsity: float | None = None,
        max_seconds: float | None = None,
        train_params: dict[str, Any] | None = None,
        x_scaling: str = "standard",
        random_state: int | np.random.RandomState | None = 0,
    ) -> None:
        self.model = model
        self.hidden = hidden
        self.grid_size = grid_size
        self.spline_order = spline_order
        self.model_params = model_params
        self.epochs = epochs
        self.optimizer = optimizer
        self.lr = lr
        self.batch_size = batch_size
        self.sparsity = sparsity
        self.max_seconds = max_seconds
        self.train_params = train_params
        self.x_scaling = x_scaling
        self.random_state = random_state

    # -- the settings that go to the registry and to TrainConfig
    def _model_settings(self) -> dict[str, Any]:
        settings = dict(self.model_params or {})
        for key in ("hidden", "grid_size", "spline_order"):
            value = getattr(self, key)
            if value is not None:
                settings[key] = list(value) if isinstance(value, (tuple, list)) else value
        return settings

    def _train_config(self, dataset, seed: int):
        from kamoe import recipes  # the recipe `kamoe train` and the dashboard use
        from kamoe.train import TrainConfig

        given = dict(self.train_params or {})
        allowed = set(TrainConfig.__dataclass_fields__) - {"seed"}
        unknown = set(given) - allowed
        if unknown:
            raise ValueError(f"unknown train_params key(s) {sorted(unknown)}; allowed: "
                             f"{', '.join(sorted(allowed))}")
        for key in ("epochs", "optimizer", "lr", "sparsity", "max_seconds"):
            if getattr(self, key) is not None:
                given[key] = getattr(self, key)
        if self.batch_size != "auto":
            given["batch_size"] = self.batch_size
        return recipes.training_config(self.model, dataset, **{**given, "seed": seed})

    def _fit_dataset(self, dataset) -> None:
        from kamoe.models import build_for
        from kamoe.train import fit, set_seed

        seed = _seed(self.random_state)
        cfg = self._train_config(dataset, seed).validate()
        with _own_rng():
            set_seed(seed)  # the initial weights follow the seed too
            model = build_for(self.model, dataset, **self._model_settings())
            history = fit(model, dataset, cfg)
        if history.stopped == "diverged":
            warnings.warn(history.message, ConvergenceWarning, stacklevel=3)
        self.model_ = model
        self.config_ = dict(model.config)
        self.train_config_ = cfg
        self.history_ = history
        self.dataset_ = dataset

    # -- the run store
    def save(self, store: Any = None, name: str | None = None) -> str:
        """Store the fitted estimator as a run (listed by `kamoe runs list`); returns its id.

        The run holds the model, history and settings, and the training arrays (``data.bin``,
        dataset kind ``arrays``), so the dashboard's Runs page opens it like any other run.
        ``store`` is a ``kamoe.store.RunStore`` (default: the one under ``$KAMOE_HOME``).
        """
        from kamoe.data.arrays import arrays_bytes
        from kamoe.runs import DatasetRequest, Run, new_run_id
        from kamoe.store import RunStore

        check_is_fitted(self, "model_")
        X, y = self._fit_arrays
        ds = self.dataset_
        options = {"task": ds.task, "feature_names": list(ds.feature_names),
                   "target_names": list(ds.target_names), "x_scaling": ds.meta["x_scaling"],
                   "name": ds.name}
        label = f"{ds.name} arrays ({X.shape[0]} x {X.shape[1]})"
        request = DatasetRequest(spec="arrays", seed=0, options=options,
                                 data=arrays_bytes(X, y), data_name="arrays.npz", label=label)
        params = self.get_params(deep=False)
        if not isinstance(params["random_state"], (int, type(None))):
            params["random_state"] = self.train_config_.seed  # the seed this fit drew
        run = Run(id=new_run_id(), name=name or f"{type(self).__name__} ({self.model}) on "
                  f"{label}", request=request, model_name=self.model,
                  model_config=self._model_settings(), train_config=self.train_config_,
                  model=self.model_, history=self.history_, source="sklearn",
                  params_hint=self.model_.n_params(), architecture=dict(self.model_.config),
                  estimator={"class": type(self).__name__, "params": params,
                             "frame": hasattr(self, "feature_names_in_"),
                             **self._saved_state()})
        (store if store is not None else RunStore()).save(run)
        return run.id

    @classmethod
    def load(cls, run_id: str, store: Any = None) -> Any:
        """The fitted estimator a run saved by ``save`` holds (an id or a unique prefix).

        Raises ``kamoe.store.StoreError`` naming the problem for a run saved otherwise.
        """
        import io

        from kamoe.store import RunStore, StoreError

        store = store if store is not None else RunStore()
        run = store.get(run_id)
        saved = run.estimator or {}
        if saved.get("class") != cls.__name__ or run.request.spec != "arrays":
            what = saved.get("class") or f"a {run.source} run"
            raise StoreError(f"run {run.id} was not saved by {cls.__name__}.save (it is "
                             f"{what}); open it with kamoe.store.RunStore().load_model")
        try:
            est = cls(**saved["params"])
        except TypeError as err:
            raise StoreError(f"run {run.id}: the stored {cls.__name__} parameters do not fit "
                             f"this version ({err})") from None
        dataset = run.request.load()
        est.model_ = store.load_model(run)
        est.config_ = dict(est.model_.config)
        est.train_config_ = run.train_config
        est.history_ = run.history
        est.dataset_ = dataset
        est.n_features_in_ = dataset.n_features
        if saved.get("frame"):
            est.feature_names_in_ = np.asarray(dataset.feature_names, dtype=object)
        with np.load(io.BytesIO(run.request.data), allow_pickle=False) as archive:
            est._fit_arrays = (archive["x_train"], archive["y_train"])
        est._restore_state(saved, dataset)
        return est

    def _saved_state(self) -> dict[str, Any]:
        """What a subclass's fit sets beyond the shared attributes (JSON values)."""
        return {}

    def _restore_state(self, saved: dict[str, Any], dataset: Any) -> None:
        """Set what ``_saved_state`` kept, on a loaded estimator."""

    def _outputs(self, X: Any, batch_size: int = 4096) -> np.ndarray:
        """Model outputs (scaled targets or logits) for raw X, computed in float64.

        The trained float32 weights are evaluated in double precision on a copy of the model,
        so a row's prediction does not depend on the other rows of the batch (float32 batched
        matrix products differ by ~1e-7 with the batch size).
        """
        import copy

        import torch

        check_is_fitted(self, "model_")
        X = validate_data(self, X, reset=False, dtype=np.float64)
        Xs = torch.as_tensor(self.dataset_.x_scaling.apply(X), dtype=torch.float64)
        net = copy.deepcopy(self.model_).double().eval()
        with torch.no_grad():
            out = [net(Xs[i:i + batch_size]).numpy() for i in range(0, len(Xs), batch_size)]
        return np.concatenate(out)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = self.random_state is None
        return tags


class KANRegressor(RegressorMixin, _KANEstimator):
    """A Kolmogorov-Arnold network (or any tabular registry model) as a scikit-learn regressor.

    ``y`` may hold several targets (2-D); predictions then have one column per target.
    """

    def fit(self, X: Any, y: Any) -> KANRegressor:
        """Train on (X, y); returns self."""
        from kamoe.data import from_arrays

        targets = _target_names(y)
        X, y = validate_data(self, X, y, multi_output=True, y_numeric=True, dtype=np.float64)
        self._y_1d = np.ndim(y) == 1
        ds = from_arrays(X, y, feature_names=_variable_names(self, X.shape[1]),
                         target_names=targets, x_scaling=self.x_scaling,
                         name=type(self).__name__)
        self._fit_dataset(ds)
        self._fit_arrays = (X, y)  # what save() stores (references, not copies)
        self.n_outputs_ = ds.output_dim
        return self

    def _saved_state(self) -> dict[str, Any]:
        return {"y_1d": bool(self._y_1d)}

    def _restore_state(self, saved: dict[str, Any], dataset: Any) -> None:
        self._y_1d = bool(saved.get("y_1d", True))
        self.n_outputs_ = dataset.output_dim

    def predict(self, X: Any) -> np.ndarray:
        """Predicted targets in the units of y."""
        y = self._outputs(X)  # checks that the estimator is fitted first
        y = self.dataset_.to_raw_y(y)
        return y.ravel() if self._y_1d else y

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


class KANClassifier(ClassifierMixin, _KANEstimator):
    """A Kolmogorov-Arnold network (or any tabular registry model) as a scikit-learn classifier.

    Trained with cross-entropy on one logit per class; labels may be of any sortable kind.
    """

    def fit(self, X: Any, y: Any) -> KANClassifier:
        """Train on (X, y); returns self."""
        from kamoe.data import from_arrays

        targets = _target_names(y)
        X, y = validate_data(self, X, y, dtype=np.float64)
        y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        self.classes_ = np.unique(y)
        ds = from_arrays(X, y, task="classification",
                         feature_names=_variable_names(self, X.shape[1]),
                         target_names=targets, x_scaling=self.x_scaling,
                         name=type(self).__name__)
        self._fit_dataset(ds)
        self._fit_arrays = (X, y)  # what save() stores (references, not copies)
        return self

    def _restore_state(self, saved: dict[str, Any], dataset: Any) -> None:
        self.classes_ = dataset.meta["classes"]

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities (softmax of the logits), columns in ``classes_`` order."""
        logits = self._outputs(X)
        z = np.exp(logits - logits.max(axis=1, keepdims=True))
        return z / z.sum(axis=1, keepdims=True)

    def predict(self, X: Any) -> np.ndarray:
        """Predicted class labels."""
        logits = self._outputs(X)  # checks that the estimator is fitted first
        return self.classes_[np.argmax(logits, axis=1)]


# ---------------------------------------------------------------------------- formulas


class Formula:
    """A closed-form formula as a numpy function of its named variables (picklable).

    ``f(X)`` evaluates on a 2-D array or frame (columns in ``names`` order, or by name for a
    frame); ``f(mass=m, speed=v)`` or ``f(m, v)`` on one array per variable.
    """

    def __init__(self, expr: Any, names: Sequence[str]) -> None:
        self.expr = expr
        self.names = list(names)
        self._fn = None

    def __getstate__(self) -> dict[str, Any]:
        return {"expr": self.expr, "names": self.names, "_fn": None}

    def _columns(self, args: tuple, named: dict[str, Any]) -> list[np.ndarray]:
        if named:
            missing = [n for n in self.names if n not in named]
            if args or missing:
                raise ValueError(f"give every variable by name: {', '.join(self.names)}")
            return [np.asarray(named[n], dtype=float) for n in self.names]
        if len(args) == 1 and np.ndim(args[0]) == 2:
            X = args[0]
            if hasattr(X, "columns") and all(n in X.columns for n in self.names):
                X = X[self.names]
            X = np.asarray(X, dtype=float)
            if X.shape[1] != len(self.names):
                raise ValueError(f"X has {X.shape[1]} columns; the formula takes "
                                 f"{len(self.names)} ({', '.join(self.names)})")
            return [X[:, i] for i in range(X.shape[1])]
        if len(args) != len(self.names):
            raise ValueError(f"the formula takes {len(self.names)} variables "
                             f"({', '.join(self.names)}), got {len(args)}")
        return [np.asarray(a, dtype=float) for a in args]

    def __call__(self, *args: Any, **named: Any) -> np.ndarray:
        import sympy

        cols = self._columns(args, named)
        if self._fn is None:
            self._fn = sympy.lambdify([sympy.Symbol(n) for n in self.names], self.expr, "numpy")
        with np.errstate(all="ignore"):
            out = np.asarray(self._fn(*cols), dtype=float)
        shape = np.broadcast_shapes(*(c.shape for c in cols)) if cols else ()
        return np.broadcast_to(out, shape).copy()

    def __repr__(self) -> str:
        return f"Formula({self.expr}, names={self.names})"


class FormulaRegressor(RegressorMixin, BaseEstimator):
    """Symbolic regression: the best closed-form formula for y in X's variables.

    Wraps ``kamoe.symbolic.extract_formula`` under ``time_limit`` seconds per fit; ``paths``
    None means the pipeline's default paths (``kamoe.symbolic.pipeline.PATHS``: the KAN path
    first). The formula reads in the frame's column names (``x1..xd`` for arrays).
    """

    def __init__(self, time_limit: float = 60.0, *, paths: Sequence[str] | None = None,
                 random_state: int | np.random.RandomState | None = 0) -> None:
        self.time_limit = time_limit
        self.paths = paths
        self.random_state = random_state

    def fit(self, X: Any, y: Any) -> FormulaRegressor:
        """Search a formula for y(X) within ``time_limit`` seconds; returns self."""
        import sympy

        from kamoe.data import from_arrays
        from kamoe.symbolic import extract_formula
        from kamoe.symbolic.pipeline import PATHS

        if not (isinstance(self.time_limit, (int, float)) and self.time_limit > 0):
            raise ValueError(f"time_limit must be a positive number of seconds, got "
                             f"{self.time_limit!r}")
        targets = _target_names(y)
        X, y = validate_data(self, X, y, y_numeric=True, dtype=np.float64)
        y = column_or_1d(y, warn=True)
        names = _variable_names(self, X.shape[1])
        # minmax: the KAN path's B-spline grid spans [-1, 1], as for the Feynman loader
        ds = from_arrays(X, y, feature_names=names, target_names=targets,
                         x_scaling="minmax", name=type(self).__name__)
        seed = _seed(self.random_state)
        with _own_rng():
            result = extract_formula(ds, time_limit=float(self.time_limit), seed=seed,
                                     paths=PATHS if self.paths is None else tuple(self.paths))
        self.result_ = result
        self.expr_ = sympy.sympify(result.expr)
        self.latex_ = result.latex
        self.method_ = result.method
        self.variables_ = names
        self.formula_ = Formula(self.expr_, names)
        return self

    def predict(self, X: Any) -> np.ndarray:
        """The formula evaluated on X (NaN where it is undefined)."""
        check_is_fitted(self, "formula_")
        X = validate_data(self, X, reset=False, dtype=np.float64)
        return self.formula_(X)

    def sympy(self) -> Any:
        """The fitted formula as a sympy expression in the variable names."""
        check_is_fitted(self, "formula_")
        return self.expr_

    def latex(self) -> str:
        """The fitted formula in LaTeX."""
        check_is_fitted(self, "formula_")
        return self.latex_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = self.random_state is None
        return tags
