"""Datasets for kamoe: ``load("name[:arg]", seed=..., **options)`` returns a :class:`Dataset`.

``catalog()`` describes every name and its options (for the CLI and the dashboard's picker).
Errors a user can cause raise :class:`DataError` with a message naming the problem and the fix.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kamoe.data.arrays import SCALINGS, load_arrays
from kamoe.data.arrays import from_arrays as from_arrays
from kamoe.data.csvtable import MAX_CSV_BYTES, read_table
from kamoe.data.dataset import Affine, DataError, Dataset
from kamoe.data.feynman import (
    ALIASES as FEYNMAN_ALIASES,
)
from kamoe.data.feynman import (
    FEYNMAN,
    FeynmanEquation,
    feynman_equation,
    feynman_ids,
    load_feynman,
    parse_formula,
)
from kamoe.data.images import load_cifar10
from kamoe.data.sequence import (
    REGIMES_STAY,
    load_crypto,
    load_regimes,
    read_cdd_csv,
    rolling_normalise,
)
from kamoe.data.tabular import (
    load_california,
    load_csv,
    load_diabetes,
    load_digits,
    load_friedman1,
    load_iris,
    load_moons,
)

__all__ = [
    "Affine", "Dataset", "DataError", "FEYNMAN", "FEYNMAN_ALIASES", "FeynmanEquation",
    "MAX_CSV_BYTES", "catalog", "dataset_names", "feynman_equation", "feynman_ids", "load",
    "parse_formula", "read_cdd_csv", "read_table", "rolling_normalise",
]


@dataclass(frozen=True)
class _Option:
    type: str  # "int" | "float" | "str" | "bool" | "list" | "any"
    default: Any
    help: str
    choices: tuple[str, ...] | None = None


@dataclass(frozen=True)
class _Entry:
    name: str
    description: str
    task: str
    kind: str
    loader: Callable[..., Dataset]
    options: dict[str, _Option]
    arg: str | None = None  # what NAME:ARG means ("id", "path"); also accepted as an option
    arg_required: bool = False
    needs_file: bool = False
    needs_download: bool = False
    example: str = ""
    takes_data_home: bool = False


_TEST_SIZE = {
    0.2: _Option("float", 0.2, "fraction of samples held out for testing"),
    0.25: _Option("float", 0.25, "fraction of samples held out for testing"),
}

_ENTRIES: dict[str, _Entry] = {
    e.name: e for e in [
        _Entry(
            "feynman", "AI Feynman benchmark equation sampled uniformly in its ranges "
            "(100 equations; ground-truth formula attached)", "regression", "tabular",
            load_feynman,
            {"n": _Option("int", 2000, "number of samples (train + test)"),
             "noise": _Option("float", 0.0, "SRBench target noise: training y += "
                              "N(0, noise*RMS(y)); test y exact"),
             "test_size": _TEST_SIZE[0.25],
             "ranges": _Option("any", None, "sampling ranges replacing the registry's, "
                               "{name: [low, high]} for some variables")},
            arg="eq_id", arg_required=True, example="feynman:I.6.2a",
        ),
        _Entry(
            "california", "California Housing (20,640 blocks, 8 features), KAMoE protocol: "
            "80/20 split with random_state 42, X standardised, y in $100k", "regression",
            "tabular", load_california,
            {"split_seed": _Option("int", None, "split random_state (default 42, as the paper)"),
             "scale_y": _Option("str", "none", "target scaling", ("none", "standard")),
             "test_size": _TEST_SIZE[0.2]},
            needs_download=True, example="california", takes_data_home=True,
        ),
        _Entry(
            "diabetes", "Diabetes progression (442 x 10, ships with scikit-learn)",
            "regression", "tabular", load_diabetes, {"test_size": _TEST_SIZE[0.2]},
            example="diabetes",
        ),
        _Entry(
            "friedman1", "Friedman #1: 10*sin(pi*x1*x2) + 20*(x3-0.5)^2 + 10*x4 + 5*x5, "
            "5 irrelevant inputs (formula attached)", "regression", "tabular", load_friedman1,
            {"n": _Option("int", 2000, "number of samples (train + test)"),
             "noise": _Option("float", 0.0, "std of Gaussian noise added to y (absolute)"),
             "test_size": _TEST_SIZE[0.25]},
            example="friedman1",
        ),
        _Entry(
            "digits", "Handwritten digits as 8x8 images (1,797 samples, 10 classes)",
            "classification", "image", load_digits, {"test_size": _TEST_SIZE[0.2]},
            example="digits",
        ),
        _Entry(
            "cifar10", "CIFAR-10 from your own NumPy archive (.npz with uint8 x_train/x_test "
            "and labels y_train/y_test, read without pickle; never downloaded)",
            "classification", "image", load_cifar10,
            {"n_train": _Option("int", None, "keep a seeded random subset of training images"),
             "n_test": _Option("int", None, "keep a seeded random subset of test images")},
            arg="path", arg_required=True, needs_file=True, example="cifar10:/data/cifar10.npz",
        ),
        _Entry(
            "moons", "Two interleaving half-moons (2-D binary classification)",
            "classification", "tabular", load_moons,
            {"n": _Option("int", 1000, "number of samples"),
             "noise": _Option("float", 0.2, "std of Gaussian noise on the points"),
             "test_size": _TEST_SIZE[0.25]},
            example="moons",
        ),
        _Entry(
            "iris", "Iris flowers (150 x 4, 3 species)", "classification", "tabular", load_iris,
            {"test_size": _TEST_SIZE[0.2]}, example="iris",
        ),
        _Entry(
            "regimes", "Synthetic series switching between 3 regimes (persistent, oscillating, "
            "noisy mean-reverting); predict the next value (true regime kept)", "regression",
            "sequence", load_regimes,
            {"n": _Option("int", 4000, "series length"),
             "window": _Option("int", 24, "input window length T"),
             "test_size": _TEST_SIZE[0.2],
             "stay": _Option("float", REGIMES_STAY, "chance a step keeps the regime "
                             f"({REGIMES_STAY}: regimes last ~{1 / (1 - REGIMES_STAY):.0f} "
                             "steps, 0.99: ~100)")},
            example="regimes",
        ),
        _Entry(
            "crypto", "Hourly Binance notional volume (CryptoDataDownload CSVs in a folder), "
            "KAMoE protocol: lagged 14-day median normalisation, max(45, 5h)-hour windows",
            "regression", "sequence", load_crypto,
            {"horizon": _Option("int", 1, "hours ahead to predict (h)"),
             "assets": _Option("list", None, "assets to use, e.g. BTC,ETH (default: all files)"),
             "target": _Option("str", None, "asset to predict (default: first asset, BTC)"),
             "start": _Option("str", None, "first hour kept, ISO date (inclusive)"),
             "end": _Option("str", None, "end of the range, ISO date (exclusive)"),
             "test_size": _TEST_SIZE[0.2]},
            arg="path", arg_required=True, needs_file=True, example="crypto:/data/crypto",
        ),
        _Entry(
            "csv", "Your own CSV file (<= 25 MB): regression or classification, or a time "
            "series with time_column", "auto", "tabular", load_csv,
            {"data": _Option("any", None, "file contents (bytes or file-like) instead of a path"),
             "target": _Option("str", None, "target column (default: last column)"),
             "task": _Option("str", "auto", "auto: text target or few integer values -> "
                             "classification", ("auto", "regression", "classification")),
             "features": _Option("list", None, "input columns (default: all but the target)"),
             "test_size": _TEST_SIZE[0.2],
             "sep": _Option("str", None, "delimiter (default: sniffed among , ; TAB |)"),
             "decimal": _Option("str", None, "decimal separator, '.' or ',' (default: a "
                                "decimal comma is detected in files not separated by ',')"),
             "time_column": _Option("str", None, "makes it a sequence: sort by this column"),
             "window": _Option("int", 24, "window length when time_column is given")},
            arg="path", needs_file=True, example="csv:/path/to/file.csv",
        ),
        _Entry(
            "arrays", "Arrays given from Python (kamoe.data.from_arrays), kept as an .npz "
            "archive: how an estimator's saved run rebuilds its data", "auto", "tabular",
            load_arrays,
            {"data": _Option("any", None, "the archive's bytes (kamoe.data.arrays.arrays_bytes)"),
             "task": _Option("str", "regression", "what y holds",
                             ("regression", "classification")),
             "feature_names": _Option("list", None, "variable names (default x1..xd)"),
             "target_names": _Option("list", None, "target names (default y)"),
             "x_scaling": _Option("str", "standard", "scaling of X", SCALINGS),
             "name": _Option("str", "arrays", "the dataset's name")},
            needs_file=True, example="arrays (from Python: KANRegressor.save)",
        ),
    ]
}


def dataset_names() -> list[str]:
    """Names accepted by load() (before the optional ':ARG')."""
    return list(_ENTRIES)


def catalog() -> list[dict[str, Any]]:
    """One dict per dataset: name, description, task, kind, needs, arg and options."""
    out = []
    for e in _ENTRIES.values():
        out.append({
            "name": e.name, "description": e.description, "task": e.task, "kind": e.kind,
            "needs_file": e.needs_file, "needs_download": e.needs_download,
            "arg": e.arg, "arg_required": e.arg_required, "example": e.example,
            "options": {k: {"type": o.type, "default": o.default, "help": o.help,
                            **({"choices": list(o.choices)} if o.choices else {})}
                        for k, o in e.options.items()},
            **({"choices": feynman_ids()} if e.name == "feynman" else {}),
        })
    return out


def _coerce(name: str, option: _Option, value: Any) -> Any:
    if value is None or option.type == "any":
        return value
    try:
        if option.type == "int":
            if isinstance(value, bool) or float(value) != int(float(value)):
                raise ValueError
            value = int(float(value))
        elif option.type == "float":
            value = float(value)
        elif option.type == "bool":
            if isinstance(value, str):
                if value.lower() not in ("1", "0", "true", "false", "yes", "no"):
                    raise ValueError
                value = value.lower() in ("1", "true", "yes")
            value = bool(value)
        elif option.type == "str":
            value = str(value)
        elif option.type == "list":
            if isinstance(value, str):
                value = [v.strip() for v in value.split(",") if v.strip()]
            value = [str(v) for v in value]
    except (TypeError, ValueError):
        raise DataError(f"option {name}={value!r} must be of type {option.type} "
                        f"(default {option.default!r}).") from None
    if option.choices and value not in option.choices:
        raise DataError(f"option {name}={value!r} is not valid; choose one of "
                        f"{', '.join(option.choices)}.")
    return value


def load(
    spec: str, *, seed: int = 0, data_home: str | None = None, allow_download: bool = False,
    **options: Any,
) -> Dataset:
    """Load a dataset by spec ``NAME`` or ``NAME:ARG`` (e.g. ``feynman:I.6.2a``, ``csv:f.csv``)."""
    if not isinstance(spec, str) or not spec.strip():
        raise DataError(f"dataset spec {spec!r} is empty; use one of: "
                        f"{', '.join(_ENTRIES)} (e.g. feynman:I.6.2a).")
    name, sep, arg = spec.strip().partition(":")
    name = name.strip().lower()
    entry = _ENTRIES.get(name)
    if entry is None:
        raise DataError(f"unknown dataset {name!r}; available: {', '.join(_ENTRIES)} "
                        "(e.g. feynman:I.6.2a, csv:/path/file.csv).")
    unknown = sorted(k for k in options if k not in entry.options and k != entry.arg
                     and not (entry.arg == "path" and k == "path"))
    if unknown:
        accepted = ", ".join(entry.options) or "none"
        raise DataError(f"unknown option(s) {', '.join(unknown)} for {name!r}; it accepts: "
                        f"{accepted}.")
    kwargs = {k: _coerce(k, entry.options[k], v) for k, v in options.items()
              if k in entry.options}
    arg = arg.strip()
    if entry.arg is not None:
        given = options.get(entry.arg, options.get("path")) if not arg else arg
        if arg and entry.arg in options:
            raise DataError(f"{name}: give the {entry.arg} either in the spec or as an option, "
                            "not both.")
        needs = entry.arg_required or (name == "csv" and kwargs.get("data") is None)
        if needs and (given is None or str(given).strip() == ""):
            raise DataError(f"{name} needs an argument: use e.g. `{entry.example}`.")
        if given is not None:
            kwargs[entry.arg] = given
    elif sep:
        raise DataError(f"{name!r} takes no ':ARG' (got {arg!r}); use `{name}` with options.")
    if entry.takes_data_home:
        kwargs["data_home"] = data_home
        kwargs["allow_download"] = bool(allow_download)
    try:
        seed = int(seed)
    except (TypeError, ValueError):
        raise DataError(f"seed={seed!r} must be an integer, e.g. 0.") from None
    return entry.loader(seed=seed, **kwargs)
