"""Sequential data: embedded regime-switching series, CryptoDataDownload volume, time-series CSV.

All sequence datasets have ``kind="sequence"``, ``X`` of shape (n, T, d) and ``y`` of shape
(n, n_targets), and are split chronologically (the test windows come after the train windows).
Scaling is always fitted on the train windows only.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from kamoe.data.csvtable import (
    MIN_ROWS,
    Table,
    build_features,
    cell_error,
    check_test_size,
    drop_missing,
    numeric_column,
    require_rows,
    select_columns,
)
from kamoe.data.dataset import Affine, DataError, Dataset

REGIME_NAMES = ["persistent AR(1)", "oscillating AR(2)", "noisy mean-reverting"]
REGIMES_STAY = 0.97  # default chance a step keeps its regime (mean regime length ~33 steps)
MEDIAN_WINDOW = 24 * 14  # 336 hours: the KAMoE notebook's rolling-median normaliser
_CDD_PATTERN = re.compile(r"^Binance_([A-Za-z0-9]+)USDT_1h\.csv$", re.IGNORECASE)


def _check_window(window: Any, name: str = "window") -> int:
    try:
        value = int(window)
    except (TypeError, ValueError):
        raise DataError(f"{name}={window!r} is not an integer; pass e.g. {name}=24.") from None
    if value < 1 or value != float(window):
        raise DataError(f"{name}={window!r} must be a whole number >= 1, e.g. 24.")
    return value


def _chrono_split(n: int, test_size: float) -> tuple[np.ndarray, np.ndarray]:
    n_test = min(n - 1, max(1, int(round(n * test_size))))
    return np.arange(n - n_test), np.arange(n - n_test, n)


# -------------------------------------------------------------------------------------- regimes
def simulate_regimes(n: int, seed: int = 0,
                     stay: float = REGIMES_STAY) -> tuple[np.ndarray, np.ndarray]:
    """A univariate series of length n and its regime labels (0, 1, 2) from a sticky Markov chain.

    Regime 0: persistent AR(1) around 0 (phi 0.97, small noise); regime 1: oscillating AR(2)
    around -1 (period about 11 steps); regime 2: noisy, fast mean reversion around +2.
    """
    rng = np.random.default_rng(seed)
    burn = 200
    total = n + burn
    P = np.full((3, 3), (1 - stay) / 2)
    np.fill_diagonal(P, stay)
    regimes = np.empty(total, dtype=np.int64)
    regimes[0] = rng.integers(3)
    u = rng.random(total)
    cum = P.cumsum(axis=1)
    for t in range(1, total):
        regimes[t] = min(int(np.searchsorted(cum[regimes[t - 1]], u[t])), 2)
    eps = rng.standard_normal(total)
    x = np.zeros(total)
    for t in range(2, total):
        r = regimes[t]
        if r == 0:
            x[t] = 0.97 * x[t - 1] + 0.1 * eps[t]
        elif r == 1:
            x[t] = -1 + 1.6 * (x[t - 1] + 1) - 0.9 * (x[t - 2] + 1) + 0.1 * eps[t]
        else:
            x[t] = 2 + 0.3 * (x[t - 1] - 2) + 0.5 * eps[t]
    return x[burn:], regimes[burn:]


def _check_stay(stay: Any) -> float:
    try:
        value = float(stay)
    except (TypeError, ValueError):
        raise DataError(f"stay={stay!r} is not a number; pass a probability such as "
                        f"stay={REGIMES_STAY}") from None
    if not 0 <= value < 1:  # NaN fails too
        raise DataError(f"stay={stay!r} must be a probability in [0, 1): the chance that a "
                        f"step keeps the regime of the step before ({REGIMES_STAY}: regimes last "
                        f"about {1 / (1 - REGIMES_STAY):.0f} steps; 0.99: about 100)")
    return value


def load_regimes(
    *, seed: int = 0, n: int = 4000, window: int = 24, test_size: float = 0.2,
    stay: float = REGIMES_STAY,
) -> Dataset:
    """Regime-switching synthetic series: `window` steps -> next value (true regime kept).

    ``stay`` is the chance that a step keeps the previous step's regime (mean regime length
    1 / (1 - stay) steps).
    """
    window = _check_window(window)
    n = _check_window(n, "n")
    test_size = check_test_size(test_size)
    stay = _check_stay(stay)
    if n - window < MIN_ROWS:
        raise DataError(
            f"n={n} with window={window} leaves {max(n - window, 0)} windows; at least "
            f"{MIN_ROWS} are needed, so use n >= window + {MIN_ROWS}."
        )
    x, regimes = simulate_regimes(n, seed, stay)
    X = sliding_window_view(x[:-1], window)[:, :, None].copy()  # (n - window, window, 1)
    y = x[window:].reshape(-1, 1)
    groups = regimes[window:]
    train, test = _chrono_split(len(X), test_size)
    x_scaling = Affine.standard(X[train])
    y_scaling = Affine.standard(y[train])
    return Dataset(
        name="regimes", task="regression", kind="sequence",
        X_train=x_scaling.apply(X[train]), y_train=y_scaling.apply(y[train]),
        X_test=x_scaling.apply(X[test]), y_test=y_scaling.apply(y[test]),
        feature_names=["x"], target_names=["x_next"], x_scaling=x_scaling, y_scaling=y_scaling,
        groups_train=groups[train], groups_test=groups[test], group_name="regime",
        description="Synthetic series switching between 3 regimes (persistent, oscillating, "
                    "noisy mean-reverting); predict the next value from the last "
                    f"{window} values.",
        meta={"regime_names": list(REGIME_NAMES), "window": window, "series_length": n,
              "stay_probability": stay},
    )


# --------------------------------------------------------------------------------------- crypto
def read_cdd_csv(path: str | Path) -> tuple[pd.Series, dict[str, Any]]:
    """One CryptoDataDownload hourly file -> `Volume USDT` indexed by hour (sorted, unique)."""
    path = Path(path)
    with open(path, encoding="utf-8-sig", errors="replace") as handle:
        first = handle.readline()
    banner = "cryptodatadownload" in first.lower()
    try:
        df = pd.read_csv(path, skiprows=1 if banner else 0, low_memory=False)
    except Exception as err:
        raise DataError(f"{path.name} could not be read as CSV ({err}); re-download it.") from None
    cols = {str(c).strip().lower(): c for c in df.columns}
    unix_col = cols.get("unix") or cols.get("unix timestamp")
    vol_col = cols.get("volume usdt")
    if unix_col is None or vol_col is None:
        raise DataError(
            f"{path.name} lacks a 'unix' and/or 'Volume USDT' column (found {list(df.columns)}); "
            "use CryptoDataDownload's Binance hourly USDT files."
        )
    unix = pd.to_numeric(df[unix_col], errors="coerce").to_numpy(float)
    volume = pd.to_numeric(df[vol_col], errors="coerce").to_numpy(float)
    trade_col = cols.get("tradecount")
    has_trades = (pd.to_numeric(df[trade_col], errors="coerce").notna().to_numpy()
                  if trade_col is not None else np.zeros(len(df), dtype=bool))
    ok = np.isfinite(unix) & np.isfinite(volume)
    seconds = np.where(unix > 1e11, unix / 1000.0, unix)  # mixed ms and s timestamps
    hour = np.floor(seconds / 3600.0)
    frame = pd.DataFrame({"hour": hour, "volume": volume, "trades": has_trades})[ok]
    # Prefer the row with a tradecount (CDD's newer format) when an hour appears twice.
    frame = frame.sort_values(["hour", "trades"], ascending=[True, False], kind="stable")
    unique = frame.drop_duplicates("hour", keep="first")
    index = pd.to_datetime(unique["hour"].to_numpy() * 3600, unit="s")
    series = pd.Series(unique["volume"].to_numpy(), index=index, name=path.name)
    info = {"rows": int(len(df)), "unparseable_rows": int((~ok).sum()),
            "duplicate_hours": int(len(frame) - len(unique)), "banner": banner}
    return series, info


def find_cdd_files(folder: str | Path) -> dict[str, Path]:
    """Asset name -> file for every Binance_<ASSET>USDT_1h.csv in folder."""
    found = {}
    for p in sorted(Path(folder).iterdir()):
        m = _CDD_PATTERN.match(p.name)
        if m and p.is_file():
            found[m.group(1).upper()] = p
    return found


def lagged_median(frame: pd.DataFrame, horizon: int, window: int = MEDIAN_WINDOW) -> pd.DataFrame:
    """Rolling median over `window` rows ending `horizon` rows earlier (uses data up to t - h)."""
    return frame.shift(horizon).rolling(window).median()


def rolling_normalise(
    frame: pd.DataFrame, horizon: int, window: int = MEDIAN_WINDOW
) -> pd.DataFrame:
    """KAMoE normaliser: divide by the lagged rolling median, drop the first window + h rows."""
    out = frame / lagged_median(frame, horizon, window)
    out = out.iloc[window + horizon:]
    return out.replace([np.inf, -np.inf], np.nan).fillna(0.0)


def _parse_time(value: Any, name: str) -> pd.Timestamp | None:
    if value is None or value == "":
        return None
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError):
        raise DataError(
            f"{name}={value!r} is not a date; use ISO format, e.g. 2020-01-01."
        ) from None
    return ts.tz_convert(None) if ts.tzinfo is not None else ts


def load_crypto(
    path: str | None = None, *, seed: int = 0, horizon: int = 1, assets: Any = None,
    target: str | None = None, start: str | None = None, end: str | None = None,
    test_size: float = 0.2,
) -> Dataset:
    """Hourly notional volume (KAMoE protocol): all assets, max(45, 5h) hours -> next h values."""
    del seed  # deterministic: no randomness in this loader
    if path is None or str(path).strip() == "":
        raise DataError("crypto needs a folder: use `crypto:/path/to/folder` with "
                        "Binance_<ASSET>USDT_1h.csv files from CryptoDataDownload.")
    folder = Path(str(path)).expanduser()
    if not folder.is_dir():
        raise DataError(f"crypto folder {str(folder)!r} does not exist; give a folder holding "
                        "Binance_<ASSET>USDT_1h.csv files.")
    horizon = _check_window(horizon, "horizon")
    test_size = check_test_size(test_size)
    files = find_cdd_files(folder)
    if not files:
        raise DataError(
            f"{str(folder)!r} has no Binance_<ASSET>USDT_1h.csv files; download hourly Binance "
            "files from CryptoDataDownload into it (e.g. Binance_BTCUSDT_1h.csv)."
        )
    if assets is None:
        order = (["BTC"] if "BTC" in files else []) + sorted(a for a in files if a != "BTC")
    else:
        order = [a.strip().upper() for a in (assets.split(",") if isinstance(assets, str)
                                             else assets) if str(a).strip()]
        missing = [a for a in order if a not in files]
        if missing or not order:
            raise DataError(f"asset(s) {missing or order} not found in {str(folder)!r}; "
                            f"available: {', '.join(sorted(files))}.")
    target = (target or order[0]).strip().upper()
    if target not in order:
        raise DataError(f"target={target!r} is not among the assets {order}; pick one of them.")
    series, infos = [], {}
    for asset in order:
        s, info = read_cdd_csv(files[asset])
        series.append(s.rename(asset))
        infos[asset] = info
    frame = pd.concat(series, axis=1, join="inner").sort_index()
    t0, t1 = _parse_time(start, "start"), _parse_time(end, "end")
    if t0 is not None:
        frame = frame[frame.index >= t0]
    if t1 is not None:
        frame = frame[frame.index < t1]
    length = max(45, 5 * horizon)
    norm = rolling_normalise(frame, horizon)
    n = len(norm) - length - horizon + 1
    if n < MIN_ROWS:
        raise DataError(
            f"only {len(frame)} common hours after cropping; with horizon={horizon} at least "
            f"{MEDIAN_WINDOW + horizon + length + horizon - 1 + MIN_ROWS} are needed "
            f"({MEDIAN_WINDOW} for the rolling median, {length} per window); widen start/end."
        )
    V = norm.to_numpy(dtype=float)
    X = sliding_window_view(V, length, axis=0).transpose(0, 2, 1)[:n].copy()  # (n, L, assets)
    col = order.index(target)
    y = sliding_window_view(V[length:, col], horizon)[:n].copy()  # (n, h)
    times = norm.index[length:length + n].to_numpy()
    train, test = _chrono_split(n, test_size)
    x_scaling = Affine.minmax(X[train], 0.0, 1.0)
    y_scaling = Affine.minmax(y[train], 0.0, 1.0)
    expected = pd.date_range(frame.index[0], frame.index[-1], freq="h") if len(frame) else []
    notes = [f"{a}: {i['duplicate_hours']} duplicate hours dropped" for a, i in infos.items()
             if i["duplicate_hours"]]
    if len(frame) and len(expected) > len(frame):
        notes.append(f"{len(expected) - len(frame)} hours missing in the common range "
                     "(windows run across the gaps)")
    return Dataset(
        name=f"crypto:{folder.name}", task="regression", kind="sequence",
        X_train=x_scaling.apply(X[train]), y_train=y_scaling.apply(y[train]),
        X_test=x_scaling.apply(X[test]), y_test=y_scaling.apply(y[test]),
        feature_names=list(order),
        target_names=[f"{target}_t+{k}" for k in range(1, horizon + 1)],
        x_scaling=x_scaling, y_scaling=y_scaling,
        description=f"Hourly Binance notional volume (USDT) of {', '.join(order)}, each divided "
                    f"by its lagged 14-day median; predict the next {horizon} hour(s) of "
                    f"{target} from the last {length} hours.",
        notes=notes,
        meta={"horizon": horizon, "window": length, "assets": list(order), "target": target,
              "time_train": times[train], "time_test": times[test],
              "start": str(frame.index[0]) if len(frame) else None,
              "end": str(frame.index[-1]) if len(frame) else None, "files": infos,
              "protocol": "KAMoE volume_prediction.ipynb"},
    )


# -------------------------------------------------------------------------- time-series CSV
def _time_values(table: Table, name: str) -> np.ndarray:
    numeric = numeric_column(table, name)
    if numeric is not None:
        return numeric
    cells = pd.Series(table.cells[name], dtype=object)
    missing = table.missing(name)
    parsed = None
    for fmt in ("ISO8601", "mixed"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                attempt = pd.to_datetime(cells.where(~missing, None), errors="coerce", format=fmt)
            except (ValueError, TypeError, OverflowError):
                continue
        if parsed is None or attempt.notna().sum() > parsed.notna().sum():
            parsed = attempt
    if parsed is None:
        parsed = pd.Series(pd.NaT, index=cells.index)
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_convert(None)
    bad = parsed.isna().to_numpy() & ~missing
    if bad.any():
        raise cell_error(table, name, bad, "that is not a date or a number, so fix it or empty "
                                           "the cell of this time column")
    secs = (parsed - pd.Timestamp(0)).dt.total_seconds().to_numpy(dtype=float, na_value=np.nan)
    return secs


def sequence_from_table(
    table: Table, *, time_column: str, target: str | None, task: str, features: Any,
    test_size: float, window: int,
) -> Dataset:
    """Windows of `window` rows (sorted by time) of the numeric columns -> next target value."""
    window = _check_window(window)
    if time_column not in table.columns:
        raise DataError(
            f"{table.label} has no time column {time_column!r}; available columns: "
            f"{', '.join(map(repr, table.columns))}. Fix time_column=..."
        )
    if task == "classification":
        raise DataError("a CSV with time_column is forecast as regression only; drop "
                        "task='classification' or time_column.")
    target, cols = select_columns(table, target, features, exclude=(time_column,))
    y_values = numeric_column(table, target)
    if y_values is None:
        raise DataError(f"{table.label}: target {target!r} is not numeric, so it cannot be "
                        "forecast; choose a numeric target column.")
    inputs = cols + [target]
    block = build_features(table, inputs)
    times = _time_values(table, time_column)
    keep = drop_missing(table, block.missing | np.isnan(times))
    F, t = block.X[keep], times[keep]
    order = np.argsort(t, kind="stable")
    F, t = F[order], t[order]
    lines = table.lines[keep][order]
    dup = np.flatnonzero(np.diff(t) == 0)
    if len(dup):
        raise DataError(
            f"{table.label}: time column {time_column!r} repeats a value (lines "
            f"{lines[dup[0]]} and {lines[dup[0] + 1]}); keep one row per time step, e.g. by "
            "averaging duplicates."
        )
    target_col = block.names.index(target)
    n_windows = len(F) - window
    require_rows(table, max(n_windows, 0), MIN_ROWS,
                 what=f"windows ({len(F)} rows minus window={window})")
    y = F[window:, target_col].reshape(-1, 1)
    if np.ptp(y) == 0:
        raise DataError(f"{table.label}: target {target!r} never changes, so there is nothing to "
                        "forecast; choose another target column.")
    X = sliding_window_view(F[:-1], window, axis=0).transpose(0, 2, 1).copy()
    train, test = _chrono_split(len(X), test_size)
    x_scaling = Affine.standard(X[train])
    y_scaling = Affine.standard(y[train])
    arrays = [x_scaling.apply(X[train]), x_scaling.apply(X[test]),
              y_scaling.apply(y[train]), y_scaling.apply(y[test])]
    if not all(np.isfinite(a).all() for a in arrays):
        raise DataError(f"{table.label}: values are too large to standardise; rescale the "
                        "columns (e.g. change units) and try again.")
    notes = list(table.notes)
    notes.append(f"inputs include the target's own history; windows of {window} rows")
    return Dataset(
        name=f"csv:{table.label}", task="regression", kind="sequence",
        X_train=arrays[0], y_train=arrays[2], X_test=arrays[1], y_test=arrays[3],
        feature_names=block.names, target_names=[target], x_scaling=x_scaling,
        y_scaling=y_scaling,
        description=f"Time-series CSV {table.label}: {len(F)} time steps sorted by "
                    f"{time_column!r}; predict the next {target!r} from the last {window} rows.",
        notes=notes,
        meta={"source": table.label, "time_column": time_column, "window": window,
              "delimiter": table.sep, "decimal": table.decimal, "one_hot": block.one_hot,
              "rows_dropped": int((~keep).sum())},
    )
