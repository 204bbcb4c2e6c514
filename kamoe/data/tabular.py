"""Tabular loaders: California Housing, scikit-learn classics, generated sets, and user CSV files.

CSV policy (every refusal is a ``DataError`` naming the problem and the fix):

* size limit 25 MB; text decoded as UTF-8 (with or without BOM), else Latin-1 (with a note);
* delimiter: option ``sep``, else sniffed among ``, ; TAB |`` (the one splitting the header and
  nearly every line into the same number of fields), else ``,``;
* the first non-blank line is the header; duplicate column names are refused; blank names become
  ``column_<k>``; columns with no value at all are dropped (with a note);
* missing cells (empty, ``NA``, ``N/A``, ``NaN``, ``null``, ``None``, ``?``): rows with a missing
  value in any used column are dropped with a note; refused if that would drop more than half;
* a column whose non-missing cells are all numbers is numeric; one where most (> 50 %) are numbers
  but some are not is refused, naming the column, the file line (header = line 1) and the value;
  infinite values and magnitudes above 1e100 are refused the same way;
* other (text) feature columns are one-hot encoded when they have at most 20 distinct values and
  refused otherwise (pass ``features=[...]`` to leave them out);
* ``task="auto"``: classification when the target is text, or when it holds only integers with
  between 2 and 20 distinct values and no more distinct values than max(2, 5 % of the rows);
  otherwise regression;
* at least 10 usable rows; a constant target is refused;
* X standardised on the train split; regression y standardised on the train split.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kamoe.data.dataset import Affine, DataError, Dataset

MAX_CSV_BYTES = 25 * 1024 * 1024
MIN_ROWS = 10
MAX_CATEGORIES = 20
MAX_CLASSES = 200
MAX_ABS_VALUE = 1e100
MISSING_TOKENS = frozenset({"", "na", "n/a", "nan", "null", "none", "?", "#n/a"})
_DELIMITERS = (",", ";", "\t", "|")
CALIFORNIA_FILE = "cal_housing_py3.pkz"


# ---------------------------------------------------------------------------------------- helpers
def check_test_size(test_size: float) -> float:
    """Validate a test fraction in (0, 1)."""
    try:
        value = float(test_size)
    except (TypeError, ValueError):
        raise DataError(f"test_size={test_size!r} is not a number; pass e.g. 0.2.") from None
    if not 0.0 < value < 1.0:
        raise DataError(f"test_size={value} must lie strictly between 0 and 1; pass e.g. 0.2.")
    return value


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
@dataclass
class Table:
    """A CSV parsed to stripped strings, with the file line of every data row (header = line 1)."""

    label: str
    columns: list[str]
    cells: dict[str, np.ndarray]
    lines: np.ndarray
    sep: str
    notes: list[str] = field(default_factory=list)

    @property
    def n_rows(self) -> int:
        return len(self.lines)

    def missing(self, name: str) -> np.ndarray:
        return np.array([c.lower() in MISSING_TOKENS for c in self.cells[name]], dtype=bool)


def _read_source(path: Any, data: Any) -> tuple[bytes, str]:
    if data is not None:
        label = Path(str(getattr(data, "name", "upload"))).name or "upload"
        if isinstance(data, str):
            raw = data.encode("utf-8")
        elif isinstance(data, (bytes, bytearray, memoryview)):
            raw = bytes(data)
        elif hasattr(data, "getvalue"):
            raw = data.getvalue()
        elif hasattr(data, "read"):
            raw = data.read()
        else:
            raise DataError(
                f"data= must be bytes, text or a file-like object, not {type(data).__name__}; "
                "pass the uploaded file or its bytes."
            )
        if isinstance(raw, str):
            raw = raw.encode("utf-8")
        raw = bytes(raw)
        if len(raw) > MAX_CSV_BYTES:
            _too_big(len(raw), label)
        return raw, label
    if path is None or str(path).strip() == "":
        raise DataError("No CSV given; use `csv:/path/to/file.csv` or pass path=... or data=....")
    p = Path(str(path)).expanduser()
    if not p.exists():
        raise DataError(f"CSV file {str(p)!r} does not exist; check the path.")
    if not p.is_file():
        raise DataError(f"{str(p)!r} is not a file; give the path of a .csv file.")
    size = p.stat().st_size
    if size > MAX_CSV_BYTES:
        _too_big(size, p.name)
    return p.read_bytes(), p.name


def _too_big(size: int, label: str) -> None:
    raise DataError(
        f"{label} is {size / 2**20:.1f} MB, above the 25 MB limit for CSV files; "
        "keep fewer rows or columns (e.g. a sample or a date range) and try again."
    )


def _decode(raw: bytes, notes: list[str]) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        notes.append("file is not valid UTF-8; it was read as Latin-1")
        return raw.decode("latin-1")


def sniff_delimiter(text: str) -> str:
    """Pick the delimiter among , ; TAB | that splits the header and most lines alike."""
    lines = [ln for ln in text.splitlines()[:200] if ln.strip()][:50]
    if not lines:
        return ","
    best, best_count = ",", 0
    for delim in _DELIMITERS:
        counts = [ln.count(delim) for ln in lines]
        head = counts[0]
        if head == 0:
            continue
        agree = sum(c == head for c in counts) / len(counts)
        if agree >= 0.9 and head > best_count:
            best, best_count = delim, head
    return best


def read_table(path: Any = None, data: Any = None, sep: str | None = None) -> Table:
    """Read a CSV (path or bytes/file-like) into a Table of strings; DataError on any problem."""
    raw, label = _read_source(path, data)
    notes: list[str] = []
    text = _decode(raw, notes)
    if not text.strip():
        raise DataError(f"{label} is empty; give a CSV with a header line and data rows.")
    if "\x00" in text:
        raise DataError(
            f"{label} contains NUL bytes, so it is not a text CSV; export it as CSV (UTF-8) again."
        )
    if sep is None or sep == "auto":
        sep = sniff_delimiter(text)
    elif not isinstance(sep, str) or len(sep) != 1:
        raise DataError(f"sep={sep!r} must be a single character such as ',' or ';'.")
    rows: list[list[str]] = []
    lines: list[int] = []
    try:
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep)
        for row in reader:
            cells = [c.strip() for c in row]
            if not any(cells):
                continue
            rows.append(cells)
            lines.append(reader.line_num)
    except csv.Error as err:
        raise DataError(
            f"{label} could not be parsed as CSV ({err}); check quoting and the delimiter."
        ) from None
    if not rows:
        raise DataError(f"{label} is empty; give a CSV with a header line and data rows.")
    header, body, body_lines = rows[0], rows[1:], lines[1:]
    if not body:
        raise DataError(f"{label} has a header but no data rows; add rows below the header.")
    while header and not header[-1] and all(len(r) < len(header) or not r[len(header) - 1]
                                            for r in body):
        header = header[:-1]  # trailing delimiter at the end of every line
    names = [h if h else f"column_{k}" for k, h in enumerate(header, start=1)]
    seen: dict[str, int] = {}
    for k, name in enumerate(names, start=1):
        if name in seen:
            raise DataError(
                f"{label} has duplicate column name {name!r} (columns {seen[name]} and {k}); "
                "rename the columns so every header is unique."
            )
        seen[name] = k
    width = len(names)
    grid = []
    for row, line in zip(body, body_lines, strict=True):
        if len(row) > width:
            if any(row[width:]):
                raise DataError(
                    f"{label}: line {line} has {len(row)} fields but the header has {width}; "
                    f"check the delimiter ({sep!r} was used) or quote values containing it."
                )
            row = row[:width]
        elif len(row) < width:
            row = row + [""] * (width - len(row))
        grid.append(row)
    arr = np.array(grid, dtype=object).reshape(len(grid), width)
    if all(_is_number(n) for n in names):
        notes.append("the first line looks like data but was used as the header (column names)")
    cells = {name: arr[:, k] for k, name in enumerate(names)}
    return Table(label, names, cells, np.asarray(body_lines, dtype=np.int64), sep, notes)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def numeric_column(table: Table, name: str) -> np.ndarray | None:
    """Float values (NaN where missing) if the column is numeric, None if it is text.

    Raises DataError when the column looks numeric but holds text, inf or absurd magnitudes.
    """
    missing = table.missing(name)
    values = pd.to_numeric(pd.Series(table.cells[name], dtype=object), errors="coerce")
    values = np.array(values.to_numpy(dtype=float, na_value=np.nan), dtype=float)
    present = ~missing
    ok = present & ~np.isnan(values)
    n_present = int(present.sum())
    if n_present == 0:
        return values
    bad = present & np.isnan(values)
    if bad.any():
        if ok.sum() / n_present > 0.5:
            i = int(np.argmax(bad))
            raise DataError(
                f"{table.label}: column {name!r} looks numeric but line {table.lines[i]} "
                f"(the header is line 1) holds {str(table.cells[name][i])[:40]!r}; fix that "
                "value or empty the cell (rows with empty cells are dropped)."
            )
        return None
    values[missing] = np.nan
    extreme = np.isinf(values) | (np.abs(values) > MAX_ABS_VALUE)
    if extreme.any():
        i = int(np.argmax(extreme))
        raise DataError(
            f"{table.label}: column {name!r} has the value {table.cells[name][i]!r} on line "
            f"{table.lines[i]} (the header is line 1); values must be finite and below 1e100 "
            "in size, so fix it or empty that cell."
        )
    return values


def _parse_list(value: Any, what: str) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    raise DataError(f"{what}={value!r} must be a list of names or a comma-separated string.")


@dataclass
class FeatureBlock:
    """Numeric feature matrix built from table columns (text columns one-hot encoded)."""

    X: np.ndarray
    names: list[str]
    missing: np.ndarray
    one_hot: dict[str, list[str]]


def build_features(table: Table, columns: list[str]) -> FeatureBlock:
    """Numeric columns as they are; text columns one-hot (<= 20 categories) or refused."""
    blocks, names, one_hot = [], [], {}
    missing = np.zeros(table.n_rows, dtype=bool)
    for name in columns:
        values = numeric_column(table, name)
        miss = table.missing(name)
        missing |= miss
        if values is not None:
            blocks.append(values.reshape(-1, 1))
            names.append(name)
            continue
        cats = sorted({str(c) for c, m in zip(table.cells[name], miss, strict=True) if not m})
        if len(cats) > MAX_CATEGORIES:
            raise DataError(
                f"{table.label}: column {name!r} is text with {len(cats)} distinct values (more "
                f"than {MAX_CATEGORIES}), so it cannot be one-hot encoded; remove it or list the "
                "columns to use with features=[...]."
            )
        codes = np.array([str(c) for c in table.cells[name]], dtype=object)
        for cat in cats:
            blocks.append((codes == cat).astype(float).reshape(-1, 1))
            names.append(f"{name}={cat}")
        one_hot[name] = cats
    X = np.hstack(blocks) if blocks else np.zeros((table.n_rows, 0))
    return FeatureBlock(X, names, missing, one_hot)


def select_columns(
    table: Table, target: str | None, features: Any, exclude: tuple[str, ...] = ()
) -> tuple[str, list[str]]:
    """Resolve the target (default: last column) and the feature columns; DataError if absent."""
    available = ", ".join(repr(c) for c in table.columns)
    if target is None:
        candidates = [c for c in table.columns if c not in exclude]
        if not candidates:
            raise DataError(f"{table.label} has no column to predict; add a target column.")
        target = candidates[-1]
    target = str(target)
    if target not in table.columns:
        raise DataError(
            f"{table.label} has no target column {target!r}; available columns: {available}. "
            "Pass target=<one of them>."
        )
    wanted = _parse_list(features, "features")
    if wanted is None:
        cols = [c for c in table.columns if c != target and c not in exclude]
    else:
        absent = [c for c in wanted if c not in table.columns]
        if absent:
            raise DataError(
                f"{table.label} has no column(s) {', '.join(map(repr, absent))}; available "
                f"columns: {available}. Fix features=[...]."
            )
        cols = [c for c in wanted if c != target and c not in exclude]
    # Columns with no value at all carry nothing; drop them with a note.
    empty = [c for c in cols if table.missing(c).all()]
    if empty:
        table.notes.append(f"dropped empty column(s): {', '.join(empty)}")
        cols = [c for c in cols if c not in empty]
    if not cols:
        raise DataError(
            f"{table.label} has no numeric feature columns besides the target {target!r}; "
            "add at least one input column."
        )
    return target, cols


def drop_missing(table: Table, missing: np.ndarray) -> np.ndarray:
    """Row mask to keep; DataError when more than half the rows have missing values."""
    n_drop = int(missing.sum())
    if n_drop * 2 > table.n_rows:
        raise DataError(
            f"{table.label}: {n_drop} of {table.n_rows} rows have missing values (empty, NA, NaN, "
            "?); dropping them would lose more than half the data, so fill them in or remove "
            "the mostly empty columns."
        )
    if n_drop:
        table.notes.append(f"dropped {n_drop} of {table.n_rows} rows with missing values")
    return ~missing


def require_rows(table: Table, n: int, minimum: int, what: str = "rows") -> None:
    """DataError when fewer than `minimum` usable rows remain."""
    if n < minimum:
        raise DataError(
            f"{table.label} has too few usable {what} ({n}); at least {minimum} are needed "
            "for a train/test split, so add more rows."
        )


def _auto_is_classification(y: np.ndarray) -> bool:
    distinct = np.unique(y)
    integral = bool(np.all(np.equal(np.mod(distinct, 1), 0)))
    return integral and 2 <= len(distinct) <= MAX_CATEGORIES and len(distinct) <= max(
        2, 0.05 * len(y)
    )


def load_csv(
    path: Any = None, *, seed: int = 0, data: Any = None, target: str | None = None,
    task: str = "auto", features: Any = None, test_size: float = 0.2, sep: str | None = None,
    time_column: str | None = None, window: int = 24,
) -> Dataset:
    """A user CSV (path, bytes or file-like) as a tabular Dataset; see the module docstring."""
    if task not in ("auto", "regression", "classification"):
        raise DataError(
            f"task={task!r} is not valid; use 'auto', 'regression' or 'classification'."
        )
    test_size = check_test_size(test_size)
    table = read_table(path, data, sep)
    if time_column is not None:
        from kamoe.data.sequence import sequence_from_table

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
        meta={"source": table.label, "delimiter": table.sep, "columns": table.columns,
              "rows_used": int(len(X)), "rows_dropped": int((~keep).sum()),
              "one_hot": block.one_hot, "task_rule": rule},
    )


def _fmt_number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))
