"""Tabular loaders: California Housing, scikit-learn classics, generated sets, and user CSV files.

A CSV is read by :mod:`kamoe.data.csvtable` (delimiter and decimal sniffing, column typing, the
refusals); ``load_csv`` turns that table into a Dataset:

* ``task="auto"``: classification when the target is text, or when it holds only integers with
  between 2 and 20 distinct values and no more distinct values than max(2, 5 % of the rows);
  otherwise regression;
* a constant target is refused; at least 10 usable rows;
* X standardised on the train split; regression y standardised on the train split;
* with ``time_column`` the table becomes sequences (``sequence.sequence_from_table``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from kamoe.data.csvtable import (
    MAX_CATEGORIES,
    MIN_ROWS,
    build_features,
    check_test_size,
    drop_missing,
    numeric_column,
    read_table,
    require_rows,
    select_columns,
)
from kamoe.data.dataset import Affine, DataError, Dataset
from kamoe.data.sequence import sequence_from_table

MAX_CLASSES = 200
CALIFORNIA_FILE = "cal_housing_py3.pkz"


# ---------------------------------------------------------------------------------------- helpers
def random_split(
    n: int, test_size: float, seed: int, stratify: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded (optionally stratified) split of range(n) into non-empty train and test indices."""
    from sklearn.model_selection import train_test_split

    n_test = min(n - 1, max(1, int(round(n * test_size))))
    idx = np.arange(n)
    if stratify is not None:
        _, counts = np.unique(stratify, return_counts=True)
        if counts.min() < 2 or n_test < len(counts) or n - n_test < len(counts):
            stratify = None
    train, test = train_test_split(idx, test_size=n_test, random_state=seed, stratify=stratify)
    return np.sort(train), np.sort(test)


def _standard_split(X: np.ndarray, train: np.ndarray, test: np.ndarray):
    scaling = Affine.standard(X[train])
    return scaling, scaling.apply(X[train]), scaling.apply(X[test])


# ------------------------------------------------------------------------------ california housing
def resolve_data_home(data_home: str | None) -> str | None:
    """data_home argument, else $KAMOE_DATA_HOME, else None (scikit-learn's default folder)."""
    return data_home or os.environ.get("KAMOE_DATA_HOME") or None


def load_california(
    *, seed: int = 0, data_home: str | None = None, allow_download: bool = False,
    split_seed: int | None = None, scale_y: str = "none", test_size: float = 0.2,
) -> Dataset:
    """California Housing with the KAMoE protocol: 80/20 split (random_state 42), X standardised."""
    from sklearn.datasets import fetch_california_housing

    if scale_y not in ("none", "standard"):
        raise DataError(f"scale_y={scale_y!r} is not valid; use 'none' (default) or 'standard'.")
    test_size = check_test_size(test_size)
    home = resolve_data_home(data_home)
    how = (
        f"pass --data-home DIR (data_home=DIR) or set KAMOE_DATA_HOME to a folder holding "
        f"{CALIFORNIA_FILE}, or allow the download with --download (allow_download=True)"
    )
    if not allow_download:
        if home is not None and not Path(home).is_dir():
            raise DataError(f"California Housing: data folder {home!r} does not exist; {how}.")
        folder = home if home is not None else _sklearn_home()
        if not (Path(folder) / CALIFORNIA_FILE).is_file():
            raise DataError(
                f"California Housing is not downloaded ({CALIFORNIA_FILE} not found in "
                f"{folder}); {how}."
            )
    try:
        bunch = fetch_california_housing(data_home=home, download_if_missing=allow_download)
    except OSError as err:
        raise DataError(f"California Housing could not be loaded ({err}); {how}.") from None
    except Exception as err:  # network errors surface as many types
        raise DataError(
            f"California Housing download failed ({type(err).__name__}: {err}); check the "
            f"network or {how.split(', or allow')[0]}."
        ) from None
    X = np.asarray(bunch.data, dtype=float)
    y = np.asarray(bunch.target, dtype=float).reshape(-1, 1)
    rs = 42 if split_seed is None else int(split_seed)
    from sklearn.model_selection import train_test_split

    train, test = train_test_split(np.arange(len(X)), test_size=test_size, random_state=rs)
    x_scaling, X_train, X_test = _standard_split(X, train, test)
    y_scaling = Affine.standard(y[train]) if scale_y == "standard" else Affine.identity(1)
    return Dataset(
        name="california", task="regression", kind="tabular",
        X_train=X_train, y_train=y_scaling.apply(y[train]),
        X_test=X_test, y_test=y_scaling.apply(y[test]),
        feature_names=list(bunch.feature_names), target_names=list(bunch.target_names),
        x_scaling=x_scaling, y_scaling=y_scaling,
        description="California Housing (1990 census blocks): median house value in $100k.",
        notes=[f"split: train_test_split(test_size={test_size}, random_state={rs}); "
               f"StandardScaler on X; y {'standardised' if scale_y == 'standard' else 'unscaled'}"],
        meta={"split_random_state": rs, "protocol": "KAMoE california.ipynb"},
    )


def _sklearn_home() -> str:
    # scikit-learn's default, computed without creating the folder (get_data_home() would).
    return os.path.expanduser(
        os.environ.get("SCIKIT_LEARN_DATA", os.path.join("~", "scikit_learn_data"))
    )


# ----------------------------------------------------------------------------- scikit-learn sets
def load_diabetes(*, seed: int = 0, test_size: float = 0.2) -> Dataset:
    """Diabetes progression (442 x 10, raw units); X and y standardised on a seeded 80/20 split."""
    from sklearn.datasets import load_diabetes as sk_diabetes

    test_size = check_test_size(test_size)
    bunch = sk_diabetes(scaled=False)
    X = np.asarray(bunch.data, float)
    y = np.asarray(bunch.target, float).reshape(-1, 1)
    train, test = random_split(len(X), test_size, seed)
    x_scaling, X_train, X_test = _standard_split(X, train, test)
    y_scaling = Affine.standard(y[train])
    return Dataset(
        name="diabetes", task="regression", kind="tabular",
        X_train=X_train, y_train=y_scaling.apply(y[train]),
        X_test=X_test, y_test=y_scaling.apply(y[test]),
        feature_names=list(bunch.feature_names), target_names=["progression"],
        x_scaling=x_scaling, y_scaling=y_scaling,
        description="Diabetes: disease progression one year after baseline (Efron et al. 2004).",
    )


def friedman1_formula(names: list[str] | None = None):
    """10*sin(pi*x1*x2) + 20*(x3 - 1/2)**2 + 10*x4 + 5*x5 over Symbols named as the features."""
    import sympy

    names = names or [f"x{i}" for i in range(1, 11)]
    x1, x2, x3, x4, x5 = (sympy.Symbol(n) for n in names[:5])
    return (10 * sympy.sin(sympy.pi * x1 * x2) + 20 * (x3 - sympy.Rational(1, 2)) ** 2
            + 10 * x4 + 5 * x5)


def load_friedman1(
    *, seed: int = 0, n: int = 2000, noise: float = 0.0, test_size: float = 0.25
) -> Dataset:
    """Friedman #1 (make_friedman1): 10 uniform inputs, 5 used; X scaled exactly to [-1, 1]."""
    from sklearn.datasets import make_friedman1

    test_size = check_test_size(test_size)
    n = int(n)
    if n < MIN_ROWS:
        raise DataError(f"n={n} is too small; pass n >= {MIN_ROWS} (default 2000).")
    if not (np.isfinite(noise) and noise >= 0):
        raise DataError(f"noise={noise} must be a finite number >= 0 (std of added noise).")
    X, y = make_friedman1(n_samples=n, n_features=10, noise=float(noise), random_state=seed)
    y = y.reshape(-1, 1)
    names = [f"x{i}" for i in range(1, 11)]
    train, test = random_split(n, test_size, seed)
    x_scaling = Affine(np.full(10, 0.5), np.full(10, 0.5))
    y_scaling = Affine.standard(y[train])
    return Dataset(
        name="friedman1", task="regression", kind="tabular",
        X_train=x_scaling.apply(X[train]), y_train=y_scaling.apply(y[train]),
        X_test=x_scaling.apply(X[test]), y_test=y_scaling.apply(y[test]),
        feature_names=names, target_names=["y"], x_scaling=x_scaling, y_scaling=y_scaling,
        formula=friedman1_formula(names),
        description="Friedman #1: y = 10 sin(pi x1 x2) + 20 (x3 - 0.5)^2 + 10 x4 + 5 x5 "
                    "(+ noise); x6..x10 are irrelevant.",
        notes=[f"noise: Gaussian with std {noise} added to y (scikit-learn semantics)"]
        if noise > 0 else [],
        meta={"ranges": {name: (0.0, 1.0) for name in names}, "noise": float(noise)},
    )


def load_digits(*, seed: int = 0, test_size: float = 0.2) -> Dataset:
    """8x8 handwritten digits (1797 images, 10 classes) scaled to [0, 1]; stratified split."""
    from sklearn.datasets import load_digits as sk_digits

    test_size = check_test_size(test_size)
    bunch = sk_digits()
    X = np.asarray(bunch.images, float)
    y = np.asarray(bunch.target, dtype=np.int64)
    train, test = random_split(len(X), test_size, seed, stratify=y)
    x_scaling = Affine(np.zeros(8), np.full(8, 16.0))
    return Dataset(
        name="digits", task="classification", kind="image",
        X_train=x_scaling.apply(X[train]), y_train=y[train],
        X_test=x_scaling.apply(X[test]), y_test=y[test],
        feature_names=[f"px_{r}_{c}" for r in range(8) for c in range(8)],
        target_names=["digit"], x_scaling=x_scaling, class_names=[str(d) for d in range(10)],
        description="Handwritten digits 0-9 as 8x8 grey images (pixel values 0..16 -> 0..1).",
    )


def load_moons(
    *, seed: int = 0, n: int = 1000, noise: float = 0.2, test_size: float = 0.25
) -> Dataset:
    """Two interleaving half-moons (make_moons), 2-D binary classification; X standardised."""
    from sklearn.datasets import make_moons

    test_size = check_test_size(test_size)
    n = int(n)
    if n < MIN_ROWS:
        raise DataError(f"n={n} is too small; pass n >= {MIN_ROWS} (default 1000).")
    if not (np.isfinite(noise) and noise >= 0):
        raise DataError(f"noise={noise} must be a finite number >= 0.")
    X, y = make_moons(n_samples=n, noise=float(noise), random_state=seed)
    y = y.astype(np.int64)
    train, test = random_split(n, test_size, seed, stratify=y)
    x_scaling, X_train, X_test = _standard_split(X, train, test)
    return Dataset(
        name="moons", task="classification", kind="tabular",
        X_train=X_train, y_train=y[train], X_test=X_test, y_test=y[test],
        feature_names=["x1", "x2"], target_names=["moon"], x_scaling=x_scaling,
        class_names=["0", "1"],
        description="Two interleaving half-moons in 2-D (make_moons), binary classification.",
    )


def load_iris(*, seed: int = 0, test_size: float = 0.2) -> Dataset:
    """Fisher's iris (150 x 4, 3 classes); X standardised; stratified split."""
    from sklearn.datasets import load_iris as sk_iris

    test_size = check_test_size(test_size)
    bunch = sk_iris()
    X = np.asarray(bunch.data, float)
    y = np.asarray(bunch.target, dtype=np.int64)
    train, test = random_split(len(X), test_size, seed, stratify=y)
    x_scaling, X_train, X_test = _standard_split(X, train, test)
    return Dataset(
        name="iris", task="classification", kind="tabular",
        X_train=X_train, y_train=y[train], X_test=X_test, y_test=y[test],
        feature_names=[str(f) for f in bunch.feature_names], target_names=["species"],
        x_scaling=x_scaling, class_names=[str(c) for c in bunch.target_names],
        description="Iris flowers: 4 measurements, 3 species.",
    )


# ------------------------------------------------------------------------------------- CSV files
def _auto_is_classification(y: np.ndarray) -> bool:
    distinct = np.unique(y)
    integral = bool(np.all(np.equal(np.mod(distinct, 1), 0)))
    return integral and 2 <= len(distinct) <= MAX_CATEGORIES and len(distinct) <= max(
        2, 0.05 * len(y)
    )


def load_csv(
    path: Any = None, *, seed: int = 0, data: Any = None, target: str | None = None,
    task: str = "auto", features: Any = None, test_size: float = 0.2, sep: str | None = None,
    decimal: str | None = None, time_column: str | None = None, window: int = 24,
) -> Dataset:
    """A user CSV (path, bytes or file-like) as a tabular Dataset; see the module docstring."""
    if task not in ("auto", "regression", "classification"):
        raise DataError(
            f"task={task!r} is not valid; use 'auto', 'regression' or 'classification'."
        )
    test_size = check_test_size(test_size)
    table = read_table(path, data, sep, decimal)
    if time_column is not None:
        return sequence_from_table(table, time_column=str(time_column), target=target, task=task,
                                   features=features, test_size=test_size, window=window)
    target, cols = select_columns(table, target, features)
    block = build_features(table, cols)
    y_num = numeric_column(table, target)
    y_missing = table.missing(target)
    if y_num is None and task == "regression":
        raise DataError(
            f"{table.label}: target {target!r} is not numeric, so it cannot be regressed; use "
            "task='classification' or choose a numeric target."
        )
    if y_missing.all():
        raise DataError(f"{table.label}: target column {target!r} is empty; choose another target.")
    keep = drop_missing(table, block.missing | y_missing)
    X = block.X[keep]
    require_rows(table, len(X), MIN_ROWS)
    if y_num is None:
        labels = np.array([str(c) for c in table.cells[target][keep]], dtype=object)
        classification = True
    else:
        labels = y_num[keep]
        classification = task == "classification" or (
            task == "auto" and _auto_is_classification(labels)
        )
    classes = np.unique(labels)
    if len(classes) < 2:
        raise DataError(
            f"{table.label}: target {target!r} has the same value ({classes[0]!s:.30}) in every "
            "usable row, so there is nothing to learn; choose another target column."
        )
    notes = list(table.notes)
    if block.one_hot:
        notes.append("one-hot encoded: " + ", ".join(
            f"{k} ({len(v)} categories)" for k, v in block.one_hot.items()))
    if classification:
        if len(classes) > MAX_CLASSES:
            raise DataError(
                f"{table.label}: target {target!r} has {len(classes)} classes (limit "
                f"{MAX_CLASSES}); use task='regression' or a target with fewer classes."
            )
        y = np.searchsorted(classes, labels).astype(np.int64)
        if y_num is not None:
            class_names = [_fmt_number(c) for c in classes]
        else:
            class_names = [str(c) for c in classes]
        train, test = random_split(len(X), test_size, seed, stratify=y)
        y_scaling = None
        y_train, y_test = y[train], y[test]
    else:
        y = labels.astype(float).reshape(-1, 1)
        train, test = random_split(len(X), test_size, seed)
        y_scaling = Affine.standard(y[train])
        y_train, y_test = y_scaling.apply(y[train]), y_scaling.apply(y[test])
        class_names = None
    x_scaling, X_train, X_test = _standard_split(X, train, test)
    arrays = [X_train, X_test] + ([] if classification else [y_train, y_test])
    if not all(np.isfinite(a).all() for a in arrays):
        raise DataError(
            f"{table.label}: values are too large or too spread out to standardise; rescale the "
            "columns (e.g. change units) and try again."
        )
    rule = ("classification: target is text" if y_num is None else
            "classification (integer target with few distinct values)" if classification and
            task == "auto" else f"{'classification' if classification else 'regression'}"
            + (" (auto: numeric target)" if task == "auto" else " (requested)"))
    return Dataset(
        name=f"csv:{table.label}", task="classification" if classification else "regression",
        kind="tabular", X_train=X_train, y_train=y_train, X_test=X_test, y_test=y_test,
        feature_names=block.names, target_names=[target], x_scaling=x_scaling,
        y_scaling=y_scaling, class_names=class_names,
        description=f"CSV file {table.label}: {len(X)} rows, {len(block.names)} features, "
                    f"target {target!r}.",
        notes=notes,
        meta={"source": table.label, "delimiter": table.sep, "decimal": table.decimal,
              "columns": table.columns,
              "rows_used": int(len(X)), "rows_dropped": int((~keep).sum()),
              "one_hot": block.one_hot, "task_rule": rule},
    )


def _fmt_number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))
