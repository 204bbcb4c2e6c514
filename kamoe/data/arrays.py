"""Arrays from a script to the project's one value: ``from_arrays(X, y)`` returns a ``Dataset``.

Room: kamoe/data (numpy/pandas only). The inputs are NumPy arrays, lists or pandas frames; a
frame's column names (or ``feature_names``) become the variable names, so models, edge plots and
formulas read in the user's own words. ``X`` is scaled per column (``standard``: zero mean and
unit variance, ``minmax``: observed range onto [-1, 1], ``none``) and a regression target is
standardised, both with ``Affine`` scalings that lead back to raw units. Classification labels of
any kind are mapped to indices 0..k-1 in sorted order (``class_names`` keeps them as text).
Without ``test`` the training arrays double as the test split (``meta["test"] == "train"``).
Problems a user can cause raise ``DataError`` naming the fix.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from kamoe.data.dataset import Affine, DataError, Dataset

SCALINGS = ("standard", "minmax", "none")


def _names(X: Any, given: list[str] | None, n: int) -> list[str]:
    if given is not None:
        names = [str(v) for v in given]
    elif hasattr(X, "columns"):
        names = [str(c) for c in X.columns]
    else:
        return [f"x{i}" for i in range(1, n + 1)]
    if len(names) != n:
        raise DataError(f"feature_names has {len(names)} names but X has {n} columns; give one "
                        "name per column.")
    if len(set(names)) != n:
        dup = sorted({v for v in names if names.count(v) > 1})
        raise DataError(f"feature names must be unique; {', '.join(dup)} appear more than once. "
                        "Rename those columns.")
    return names


def _matrix(X: Any, what: str) -> np.ndarray:
    try:
        arr = np.asarray(X, dtype=float)
    except (TypeError, ValueError) as err:
        raise DataError(f"{what} must hold numbers only ({err}); encode text columns first.") \
            from None
    if arr.ndim != 2:
        raise DataError(f"{what} must be 2-D (samples x features), got shape {arr.shape}; "
                        "reshape a single feature with X.reshape(-1, 1).")
    if not np.all(np.isfinite(arr)):
        raise DataError(f"{what} contains NaN or infinite values; drop or impute them first.")
    return arr


def _x_scaling(X: np.ndarray, how: str) -> Affine:
    if how == "standard":
        return Affine.standard(X)
    if how == "minmax":
        return Affine.minmax(X)
    if how == "none":
        return Affine.identity(X.shape[1])
    raise DataError(f"x_scaling={how!r} is not valid; choose one of {', '.join(SCALINGS)}.")


def from_arrays(
    X: Any,
    y: Any,
    *,
    task: Literal["regression", "classification"] = "regression",
    feature_names: list[str] | None = None,
    target_names: list[str] | None = None,
    x_scaling: str = "standard",
    test: tuple[Any, Any] | None = None,
    name: str = "arrays",
) -> Dataset:
    """A tabular ``Dataset`` from arrays or frames (``test=(X_test, y_test)`` is optional)."""
    if task not in ("regression", "classification"):
        raise DataError(f"task={task!r} is not valid; use 'regression' or 'classification'.")
    Xtr = _matrix(X, "X")
    names = _names(X, feature_names, Xtr.shape[1])
    if len(Xtr) == 0:
        raise DataError("X has no rows; give at least one sample.")
    Xte_raw, yte_raw = (X, y) if test is None else test
    Xte = Xtr if test is None else _matrix(Xte_raw, "X_test")
    if Xte.shape[1] != Xtr.shape[1]:
        raise DataError(f"X_test has {Xte.shape[1]} columns but X has {Xtr.shape[1]}.")
    ytr_raw = np.asarray(y)
    yte_raw = ytr_raw if test is None else np.asarray(yte_raw)
    for what, xs, ys in (("y", Xtr, ytr_raw), ("y_test", Xte, yte_raw)):
        if len(ys) != len(xs):
            raise DataError(f"{what} has {len(ys)} rows but its X has {len(xs)}; they must match.")
    xs = _x_scaling(Xtr, x_scaling)
    common: dict[str, Any] = {
        "name": name, "kind": "tabular", "X_train": xs.apply(Xtr), "X_test": xs.apply(Xte),
        "feature_names": names, "x_scaling": xs,
        "meta": {"test": "train" if test is None else "given", "x_scaling": x_scaling},
    }
    target = getattr(y, "name", None)
    if task == "classification":
        if ytr_raw.ndim != 1:
            raise DataError(f"classification y must be 1-D (one label per row), got shape "
                            f"{ytr_raw.shape}.")
        classes = np.unique(ytr_raw)
        unseen = np.setdiff1d(np.unique(yte_raw), classes)
        if len(unseen):
            raise DataError(f"y_test holds labels absent from y: {unseen.tolist()[:5]}.")
        return Dataset(
            task="classification", y_train=np.searchsorted(classes, ytr_raw).astype(np.int64),
            y_test=np.searchsorted(classes, yte_raw).astype(np.int64),
            target_names=list(target_names or [str(target or "y")]),
            class_names=[str(c) for c in classes], y_scaling=None,
            meta={**common.pop("meta"), "classes": classes}, **common)
    Ytr = _matrix(ytr_raw.reshape(len(ytr_raw), -1), "y")
    Yte = _matrix(yte_raw.reshape(len(yte_raw), -1), "y_test")
    if Yte.shape[1] != Ytr.shape[1]:
        raise DataError(f"y_test has {Yte.shape[1]} targets but y has {Ytr.shape[1]}.")
    if target_names is None:
        if hasattr(y, "columns"):
            target_names = [str(c) for c in y.columns]
        elif Ytr.shape[1] == 1:
            target_names = [str(target or "y")]
        else:
            target_names = [f"y{j}" for j in range(1, Ytr.shape[1] + 1)]
    if len(target_names) != Ytr.shape[1]:
        raise DataError(f"target_names has {len(target_names)} names but y has {Ytr.shape[1]} "
                        "columns.")
    ys = Affine.standard(Ytr)
    return Dataset(task="regression", y_train=ys.apply(Ytr), y_test=ys.apply(Yte),
                   target_names=list(target_names), y_scaling=ys,
                   exact_y={"train": Ytr, "test": Yte}, **common)


# ---------------------------------------------------------------------------- arrays as bytes
# The same archive layout as kamoe.data.images (CIFAR-10): a NumPy .npz holding x_train and
# y_train (and x_test, y_test when the test split was given), read with allow_pickle=False.
ARRAY_KEYS = ("x_train", "y_train", "x_test", "y_test")


def arrays_bytes(X: np.ndarray, y: np.ndarray, test: tuple[Any, Any] | None = None) -> bytes:
    """The .npz bytes of training arrays (and a test split) that :func:`load_arrays` reads.

    Labels must be numbers or text (an object array of strings is stored as text): nothing in
    the archive needs pickling.
    """
    import io

    parts = {"x_train": X, "y_train": y}
    if test is not None:
        parts.update(x_test=test[0], y_test=test[1])
    out = {}
    for key, value in parts.items():
        arr = np.asarray(value)
        if arr.dtype == object:
            if not all(isinstance(v, str) for v in arr.ravel()):
                raise DataError(f"{key} holds Python objects that cannot be stored without "
                                "pickling; use numbers or strings as labels.")
            arr = arr.astype(str)
        out[key] = arr
    buf = io.BytesIO()
    np.savez(buf, **out)
    return buf.getvalue()


def load_arrays(data: Any = None, *, seed: int = 0,
                task: Literal["regression", "classification"] = "regression",
                feature_names: list[str] | None = None, target_names: list[str] | None = None,
                x_scaling: str = "standard", name: str = "arrays") -> Dataset:
    """``from_arrays`` on the arrays of an .npz archive (bytes or file-like; ``arrays_bytes``).

    ``seed`` is accepted like every loader's and unused: the split is the archive's own.
    """
    import io
    import zipfile

    how = "write one with kamoe.data.arrays.arrays_bytes(X, y)"
    if data is None:
        raise DataError(f"arrays needs the archive's bytes as data=...; {how}.")
    source = io.BytesIO(data) if isinstance(data, (bytes, bytearray)) else data
    try:
        archive = np.load(source, allow_pickle=False)
        if isinstance(archive, np.ndarray):
            raise DataError(f"arrays: the data is a single array, not an .npz archive; {how}.")
        with archive:
            found = {k: archive[k] for k in ARRAY_KEYS if k in archive.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as err:
        raise DataError(f"arrays: the data is not a readable .npz archive without pickles "
                        f"({type(err).__name__}); {how}.") from None
    if "x_train" not in found or "y_train" not in found or (("x_test" in found)
                                                            != ("y_test" in found)):
        raise DataError(f"arrays: the archive needs x_train and y_train (and x_test with "
                        f"y_test, or neither); it holds {', '.join(found) or 'nothing'}; {how}.")
    test = (found["x_test"], found["y_test"]) if "x_test" in found else None
    return from_arrays(found["x_train"], found["y_train"], task=task,
                       feature_names=feature_names, target_names=target_names,
                       x_scaling=x_scaling, test=test, name=name)
