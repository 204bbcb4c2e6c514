"""Tests for kamoe.data: Feynman registry, loaders, CSV error policy, crypto preprocessing."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sympy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kamoe.data import (
    FEYNMAN,
    DataError,
    Dataset,
    catalog,
    feynman_equation,
    feynman_ids,
    load,
    parse_formula,
    read_cdd_csv,
    rolling_normalise,
)
from kamoe.data.sequence import lagged_median

ROOT = Path(__file__).resolve().parents[1]  # tests/ -> repository root
SHARED = ROOT.parent / "shared" / "data"
FEYNMAN_CSV = SHARED / "feynman" / "FeynmanEquations.csv"
SKLEARN_HOME = SHARED / "sklearn"
CRYPTO_DIR = SHARED / "crypto"


def _csv(tmp_path: Path, text: str, name: str = "data.csv") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def _regression_csv(rows: int = 30) -> str:
    # A clean 2-feature regression table; `rows` rows of data below the header.
    # Arbitrary non-constant values: b cycles through 0..4, y is linear in the row index.
    lines = ["a,b,y"] + [f"{i},{(i * 7) % 5},{i * 0.5 + 1}" for i in range(rows)]
    return "\n".join(lines) + "\n"


def _assert_valid(ds: Dataset) -> None:
    assert len(ds.X_train) > 0 and len(ds.X_test) > 0
    assert len(ds.X_train) == len(ds.y_train) and len(ds.X_test) == len(ds.y_test)
    assert ds.X_train.shape[1:] == ds.X_test.shape[1:]
    for arr in (ds.X_train, ds.X_test, ds.y_train, ds.y_test):
        assert np.isfinite(np.asarray(arr, float)).all()
    if ds.task == "classification":
        assert ds.y_train.dtype.kind == "i"
        k = len(ds.class_names)
        assert ds.y_train.min() >= 0 and max(ds.y_train.max(), ds.y_test.max()) < k
    else:
        assert ds.y_train.ndim == 2 and ds.y_train.shape[1] == len(ds.target_names)


# ------------------------------------------------------------------------------ Feynman registry
def test_registry_has_100_unique_ids_and_parses():
    ids = feynman_ids()
    assert len(ids) == 100  # the AI Feynman database has exactly 100 equations
    assert len(set(ids)) == 100  # all unique
    assert ids[0] == "I.6.2a" and ids[-1] == "III.21.20"  # benchmark order, first and last
    for eq in FEYNMAN.values():
        assert {str(s) for s in eq.expr.free_symbols} == set(eq.names)
        assert all(lo < hi for _, lo, hi in eq.variables)


def test_lecture_aliases_resolve_to_csv_ids():
    for alias, csv_id in {"I.15.10": "I.15.1", "I.34.10": "I.34.1",
                          "I.39.10": "I.39.1", "I.48.20": "I.48.2"}.items():
        assert feynman_equation(alias).id == csv_id


def test_symbol_names_that_clash_with_sympy_stay_symbols():
    # I (imaginary unit), gamma and beta (functions) must be plain variables.
    expr = feynman_equation("II.13.17").expr
    assert sympy.Symbol("I") in expr.free_symbols and sympy.I not in expr.atoms()
    assert sympy.Symbol("gamma") in feynman_equation("I.39.11").expr.free_symbols
    assert sympy.Symbol("beta") in feynman_equation("III.17.37").expr.free_symbols


@pytest.mark.skipif(not FEYNMAN_CSV.is_file(),
                    reason=f"oracle {FEYNMAN_CSV} absent (shared data not mounted)")
def test_registry_matches_feynman_csv():
    df = pd.read_csv(FEYNMAN_CSV)
    assert len(df) == 100  # one row per equation
    rng = np.random.default_rng(123)  # arbitrary fixed seed for the comparison points
    for _, row in df.iterrows():
        eq = feynman_equation(str(row["Filename"]))
        assert eq.id == row["Filename"]
        # The CSV has slots v1..v10; unused slots are empty.
        names = [row[f"v{i}_name"] for i in range(1, 11) if isinstance(row[f"v{i}_name"], str)]
        assert eq.names == names, eq.id
        assert eq.output == row["Output"], eq.id
        for i, name in enumerate(names, start=1):
            assert eq.ranges[name] == (float(row[f"v{i}_low"]), float(row[f"v{i}_high"])), eq.id
        oracle = parse_formula(str(row["Formula"]), names)  # explicit locals: I/gamma/beta safe
        f = sympy.lambdify([sympy.Symbol(n) for n in names], oracle, "numpy")
        X = eq.sample_inputs(20, rng)  # ~20 random points per equation
        with np.errstate(all="ignore"):
            expected = np.broadcast_to(np.asarray(f(*X.T), float), (20,))  # 20 points
            got = eq.func(X)
        ok = np.isfinite(expected)
        assert ok.sum() >= 18, eq.id  # singular points are measure-zero
        # 1e-9 relative: equivalent algebraic forms differ only by float rounding.
        np.testing.assert_allclose(got[ok], expected[ok], rtol=1e-9, atol=1e-12, err_msg=eq.id)


def test_feynman_sampling_seeded_scaled_and_round_trips():
    # I.9.18 has 9 variables with mixed ranges; seeds 3/4 and n=400 are arbitrary small values.
    a = load("feynman:I.9.18", seed=3, n=400)
    b = load("feynman:I.9.18", seed=3, n=400)
    c = load("feynman:I.9.18", seed=4, n=400)
    np.testing.assert_array_equal(a.X_train, b.X_train)
    np.testing.assert_array_equal(a.y_test, b.y_test)
    assert not np.array_equal(a.X_train, c.X_train)
    assert len(a.X_train) == 300 and len(a.X_test) == 100  # default test_size 0.25 of 400
    assert np.abs(a.X_train).max() <= 1.0  # exact min-max from the known ranges
    raw = a.raw_X("train")
    for j, name in enumerate(a.feature_names):
        lo, hi = a.meta["ranges"][name]
        # 1e-12: float round-off of the affine round trip
        assert raw[:, j].min() >= lo - 1e-12 and raw[:, j].max() <= hi + 1e-12
    # The attached formula reproduces the raw targets (no noise by default).
    f = sympy.lambdify([sympy.Symbol(n) for n in a.feature_names], a.formula, "numpy")
    np.testing.assert_allclose(f(*raw.T), a.raw_y("train")[:, 0], rtol=1e-9)  # round-off only
    assert a.meta["feynman_id"] == "I.9.18" and a.meta["output"] == "F"
    assert abs(a.y_train.mean()) < 1e-9  # standardised on train


def test_feynman_noise_changes_targets_not_inputs():
    # n=200 keeps it fast; noise 0.1 = 10 % of std(y), far above round-off.
    clean = load("feynman:I.12.1", n=200)
    noisy = load("feynman:I.12.1", n=200, noise=0.1)
    np.testing.assert_array_equal(clean.raw_X(), noisy.raw_X())
    assert not np.allclose(clean.raw_y(), noisy.raw_y())


def test_unknown_feynman_id_suggests_closest():
    with pytest.raises(DataError) as err:
        load("feynman:I.6.2x")
    msg = str(err.value)
    assert "I.6.2x" in msg and "closest" in msg and "I.6.2a" in msg


# ----------------------------------------------------------------------------- dispatch, catalog
def test_catalog_and_dispatch_errors():
    names = [c["name"] for c in catalog()]
    for expected in ("feynman", "california", "diabetes", "friedman1", "digits", "regimes",
                     "crypto", "csv"):
        assert expected in names
    for entry in catalog():
        assert {"name", "description", "task", "kind", "needs_file", "needs_download",
                "options"} <= set(entry)
    with pytest.raises(DataError, match="available: feynman"):
        load("nope")
    with pytest.raises(DataError, match="unknown option.*bogus"):
        load("friedman1", bogus=1)  # any value: the name is what is wrong
    with pytest.raises(DataError, match="must be of type int"):
        load("friedman1", n="many")
    assert len(load("friedman1", n="100").X_train) == 75  # CLI strings coerced; 25 % held out


# --------------------------------------------------------------------------------------- tabular
@pytest.mark.skipif(not (SKLEARN_HOME / "cal_housing_py3.pkz").is_file(),
                    reason=f"{SKLEARN_HOME}/cal_housing_py3.pkz absent (shared data not mounted)")
def test_california_reference_split():
    ds = load("california", data_home=str(SKLEARN_HOME))
    assert len(ds.X_train) == 16512 and len(ds.X_test) == 4128  # 20,640 rows split 80/20
    assert ds.X_train.shape[1] == 8  # 8 census features
    np.testing.assert_array_equal(ds.y_scaling.scale, [1.0])  # y unscaled (protocol)
    np.testing.assert_allclose(ds.X_train.mean(axis=0), 0, atol=1e-9)  # StandardScaler on X
    again = load("california", data_home=str(SKLEARN_HOME), seed=99)  # any seed other than 0
    np.testing.assert_array_equal(ds.X_test, again.X_test)  # random_state 42 regardless of seed


def test_california_missing_data_explains_fix(tmp_path, monkeypatch):
    monkeypatch.delenv("KAMOE_DATA_HOME", raising=False)
    with pytest.raises(DataError) as err:
        load("california", data_home=str(tmp_path))
    msg = str(err.value)
    assert "--data-home" in msg and "KAMOE_DATA_HOME" in msg and "--download" in msg


def test_small_sklearn_loaders_shapes_and_seeds():
    dia = load("diabetes")
    assert dia.X_train.shape[1] == 10 and len(dia.X_train) + len(dia.X_test) == 442  # sklearn
    fr = load("friedman1", n=500, seed=1)  # small n for speed; seeds 1/2 arbitrary
    assert fr.X_train.shape == (375, 10)  # 75 % of 500
    raw = fr.raw_X()
    assert raw.min() >= 0 and raw.max() <= 1  # make_friedman1 samples U[0, 1]
    f = sympy.lambdify([sympy.Symbol(n) for n in fr.feature_names], fr.formula, "numpy")
    np.testing.assert_allclose(f(*raw.T), fr.raw_y()[:, 0], rtol=1e-9)  # noise 0: exact
    assert not np.array_equal(fr.X_train, load("friedman1", n=500, seed=2).X_train)
    dig = load("digits", seed=5)  # arbitrary seed
    assert dig.X_train.shape[1:] == (8, 8) and dig.kind == "image"  # 8x8 pixel images
    assert len(dig.X_train) + len(dig.X_test) == 1797  # the full scikit-learn digits set
    assert dig.X_train.min() >= 0 and dig.X_train.max() <= 1  # pixels 0..16 divided by 16
    assert dig.raw_X().max() == 16  # x_scaling inverts to raw pixel values
    _assert_valid(dig)
    np.testing.assert_array_equal(dig.y_test, load("digits", seed=5).y_test)
    _assert_valid(load("moons", n=200))  # small n for speed


# ------------------------------------------------------------------------------------------ CSV
def test_csv_regression_classification_and_upload(tmp_path):
    ds = load("csv:" + _csv(tmp_path, _regression_csv(40)))
    assert ds.task == "regression" and ds.feature_names == ["a", "b"]
    assert len(ds.X_train) == 32 and len(ds.X_test) == 8  # 20 % of 40 rows
    _assert_valid(ds)
    # 40 rows (enough for a split) with a text label alternating cat/dog.
    text = "x1,x2,label\n" + "".join(f"{i},{i % 7},{'cat' if i % 2 else 'dog'}\n"
                                       for i in range(40))
    cls = load("csv", data=text.encode(), seed=1)
    assert cls.task == "classification" and cls.class_names == ["cat", "dog"]
    _assert_valid(cls)
    # Integer target with 3 values in 60 rows -> classification by the auto rule.
    ints = "u,v\n" + "".join(f"{i * 0.1},{i % 3}\n" for i in range(60))
    assert load("csv", data=ints).task == "classification"
    assert load("csv", data=ints, task="regression").task == "regression"


def test_csv_semicolon_one_hot_and_missing_rows(tmp_path):
    # 30 rows, ';'-separated, a two-category text column (one-hot), y linear in the row index.
    rows = ["a;colour;y"] + [f"{i};{['red', 'blue'][i % 2]};{i * 1.5}" for i in range(30)]
    rows[5] = "4;;6.0"  # one row with a missing category -> dropped with a note
    ds = load("csv:" + _csv(tmp_path, "\n".join(rows)))
    assert ds.feature_names == ["a", "colour=blue", "colour=red"]
    assert len(ds.X_train) + len(ds.X_test) == 29  # 30 rows minus the incomplete one
    assert any("dropped 1 of 30 rows" in n for n in ds.notes)


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("", "is empty"),
        ("   \n\n", "is empty"),
        ("a,b,y\n", "no data rows"),
        ("a,a,y\n1,2,3\n", "duplicate column name 'a'"),
        # 40 distinct IDs: more than the 20 categories one-hot encoding allows.
        ("name,y\n" + "".join(f"id{i},{i}\n" for i in range(40)), "distinct values"),
        # 20 rows: enough rows, so the missing features / constant target is what fails.
        ("y\n" + "".join(f"{i}\n" for i in range(20)), "no numeric feature columns"),
        ("a,y\n" + "".join(f"{i},5\n" for i in range(20)), "same value"),
        # 3 rows < the 10-row minimum.
        ("a,y\n1,2\n2,3\n3,4\n", r"too few usable rows \(3\); at least 10"),
        # 12 of 13 rows lack the target: dropping them would lose more than half.
        ("a,y\n" + "".join(f"{i},\n" for i in range(12)) + "1,2\n", "more than half"),
        ("a,y\n1,2\n2,inf\n" + "".join(f"{i},{i}\n" for i in range(20)), "finite"),
        ("a,y\n1,2,3,4\n", "line 2 has 4 fields"),  # header is line 1: 2 columns
        ("a,y\n1,2\n\x00\n", "NUL"),
    ],
)
def test_csv_error_messages(tmp_path, text, pattern):
    with pytest.raises(DataError, match=pattern):
        load("csv:" + _csv(tmp_path, text))


def test_csv_bad_value_names_column_and_line(tmp_path):
    lines = ["a,b,y"] + [f"{i},{i * 2},{i}" for i in range(20)]  # 20 clean rows
    lines[7] = "6,oops,6"  # file line 8: header is line 1, data row i is line i + 2
    with pytest.raises(DataError) as err:
        load("csv:" + _csv(tmp_path, "\n".join(lines)))
    msg = str(err.value)
    assert "'b'" in msg and "line 8" in msg and "'oops'" in msg


def test_csv_missing_target_lists_columns(tmp_path):
    with pytest.raises(DataError) as err:
        load("csv:" + _csv(tmp_path, _regression_csv()), target="price")
    assert "'price'" in str(err.value) and "'a', 'b', 'y'" in str(err.value)


def test_csv_size_limit(tmp_path):
    big = b"a,y\n" + b"1,2\n" * (25 * 2**20 // 4 + 10)  # just over 25 MB of 4-byte lines
    with pytest.raises(DataError, match="25 MB limit"):
        load("csv", data=big)


def test_csv_time_column_makes_sequences(tmp_path):
    # 60 daily rows (arbitrary start); temp is a smooth sine, load cycles through 0..8.
    dates = pd.date_range("2021-01-01", periods=60, freq="D")
    rows = ["date,temp,load"] + [f"{d.date()},{np.sin(i / 5):.4f},{i % 9}"
                                 for i, d in enumerate(dates)]
    shuffled = [rows[0]] + rows[1:][::-1]  # newest first: the loader must sort by time
    ds = load("csv:" + _csv(tmp_path, "\n".join(shuffled)), time_column="date", target="temp",
              window=5)
    assert ds.kind == "sequence" and ds.X_train.shape[1:] == (5, 2)  # window 5, load + temp
    assert len(ds.X_train) + len(ds.X_test) == 55  # 60 rows minus window 5
    # Chronological: the first train window is the first 5 days' temp, in order.
    first = ds.raw_X("train")[0, :, ds.feature_names.index("temp")]
    expected_first = [round(np.sin(i / 5), 4) for i in range(5)]  # days 0..4, as written
    np.testing.assert_allclose(first, expected_first, atol=1e-9)  # 1e-9: scaling round-off
    with pytest.raises(DataError, match="not a date"):
        load("csv:" + _csv(tmp_path, rows[0] + "\nyesterday,1,2\n" + "\n".join(rows[2:])),
             time_column="date")


# Cell values for the fuzzer: numbers, special floats, and odd text.
_CELL = st.one_of(
    st.integers(-10**6, 10**6).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["", "NA", "nan", "inf", "-inf", "1e308", "1e999", "x", "a b", '"q,"', "?",
                     "0", "1", "1,5", "\"", "é", " "]),
    st.text(max_size=6),
)


_ODD = st.sampled_from(["", "NA", "nan", "inf", "1e308", "1e999", "x", "?", "1,5", '"', " "])


@st.composite
def _csv_bytes(draw) -> bytes:
    mode = draw(st.integers(0, 9))
    if mode == 0:  # 10 %: arbitrary bytes
        return draw(st.binary(max_size=200))
    chaos = mode <= 3  # 30 %: random cells everywhere; 60 %: mostly numbers with odd cells
    delim = draw(st.sampled_from([",", ";", "\t", "|", " "]) if chaos else st.just(","))
    n_cols = draw(st.integers(1, 4))
    n_rows = draw(st.integers(0, 2) | st.integers(3, 40))  # 0-2 rows are a case of their own
    if chaos:
        header = [draw(st.sampled_from(["a", "b", "y", "", "x y", "1"])) for _ in range(n_cols)]
    else:
        header = ["a", "b", "c", "y"][:n_cols]
    lines = [delim.join(header)]
    const_col = draw(st.integers(-1, n_cols - 1))  # -1: no constant column
    numbers = st.integers(-1000, 1000).map(str) | st.floats(-1e6, 1e6).map(repr)
    for _ in range(n_rows):
        width = n_cols + (draw(st.sampled_from([0, 0, 0, -1, 1])) if chaos else 0)
        cells = []
        for j in range(max(width, 0)):
            if j == const_col:
                cells.append("7")
            elif chaos:
                cells.append(draw(_CELL))
            else:
                cells.append(draw(_ODD) if draw(st.integers(0, 49)) == 0 else draw(numbers))
        lines.append(delim.join(cells))
    return "\n".join(lines).encode("utf-8", errors="replace")


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=_csv_bytes(), task=st.sampled_from(["auto", "regression", "classification"]))
def test_csv_fuzz_returns_dataset_or_data_error(raw, task):
    try:
        ds = load("csv", data=raw, task=task)
    except DataError:
        return
    _assert_valid(ds)


@settings(max_examples=40, deadline=None)
@given(n_rows=st.integers(0, 40), window=st.integers(1, 6),
       gap=st.sampled_from(["", "NA", "x"]))
def test_csv_time_fuzz(n_rows, window, gap):
    # v is a non-constant pseudo-random cycle; row 2 (t=1) optionally gets a missing/bad value.
    rows = ["t,v"] + [f"{i},{(i * 37) % 11}" for i in range(n_rows)]
    if n_rows > 3:  # leave tiny tables alone: they test the too-few-rows path
        rows[2] = f"1,{gap}" if gap else rows[2]
    try:
        ds = load("csv", data="\n".join(rows), time_column="t", window=window)
    except DataError:
        return
    _assert_valid(ds)
    assert ds.X_train.shape[1] == window


# -------------------------------------------------------------------------------------- regimes
def test_regimes_shapes_groups_and_seed():
    # n=1000 (fast, still ~30 regime switches at stay 0.97), window 16, arbitrary seeds 2/3.
    ds = load("regimes", n=1000, window=16, seed=2)
    assert ds.kind == "sequence" and ds.X_train.shape[1:] == (16, 1)
    assert len(ds.X_train) + len(ds.X_test) == 984  # n - window windows
    assert len(ds.X_test) == round(0.2 * 984)  # chronological 80/20
    assert set(np.unique(np.r_[ds.groups_train, ds.groups_test])) == {0, 1, 2}
    assert ds.group_name == "regime" and len(ds.meta["regime_names"]) == 3  # 3 regimes
    np.testing.assert_array_equal(ds.X_train, load("regimes", n=1000, window=16, seed=2).X_train)
    assert not np.array_equal(ds.X_train, load("regimes", n=1000, window=16, seed=3).X_train)
    # The target of window i is the last input of window i + 1 (no gap, no overlap).
    np.testing.assert_allclose(ds.raw_y()[:-1, 0], ds.raw_X()[1:, -1, 0], atol=1e-9)  # round-off
    # Regimes differ in level (0, -1, +2 by construction): per-regime means span > 1 unit.
    means = [ds.raw_y()[ds.groups_train == r].mean() for r in range(3)]
    assert max(means) - min(means) > 1.0


def test_regimes_stay_sets_how_long_regimes_last_and_rejects_a_non_probability():
    def switches(stay):
        ds = load("regimes", n=3000, seed=0, stay=stay)
        return int(np.count_nonzero(np.diff(np.r_[ds.groups_train, ds.groups_test])))

    # 2,976 labelled steps: about 2976 * (1 - stay) switches (89 at 0.97, 30 at 0.99).
    assert switches(0.99) < 0.5 * switches(0.97)
    assert 50 < switches(0.97) < 130 and 10 < switches(0.99) < 55
    assert load("regimes", n=1000, seed=0, stay=0.99).meta["stay_probability"] == 0.99
    for bad in (1.0, -0.1, float("nan"), "often"):
        with pytest.raises(DataError, match="stay="):
            load("regimes", n=1000, stay=bad)


# --------------------------------------------------------------------------------------- crypto
def test_lagged_median_has_no_look_ahead():
    rng = np.random.default_rng(0)  # arbitrary seed for a synthetic frame
    frame = pd.DataFrame({"A": rng.random(60) + 1, "B": rng.random(60) + 1})
    h, w, t = 3, 10, 40  # horizon, median window, a time inside the frame
    base = lagged_median(frame, h, w)
    changed = frame.copy()
    changed.iloc[t - h + 1:] *= 100.0  # alter everything after t - h
    np.testing.assert_array_equal(lagged_median(changed, h, w).iloc[: t + 1], base.iloc[: t + 1])
    # And it uses exactly rows t-h-w+1 .. t-h.
    assert base["A"].iloc[t] == frame["A"].iloc[t - h - w + 1: t - h + 1].median()
    norm = rolling_normalise(frame, h, w)
    assert len(norm) == 60 - w - h  # first window + h rows dropped
    assert math.isclose(norm["A"].iloc[0], frame["A"].iloc[w + h] / base["A"].iloc[w + h])


def test_read_cdd_csv_banner_mixed_units_duplicates(tmp_path):
    text = (
        "https://www.CryptoDataDownload.com\n"
        "unix,date,symbol,open,high,low,close,Volume XYZ,Volume USDT,tradecount\n"
        "1598666400000,2020-08-29 02:00:00,XYZ/USDT,1,1,1,1,1,10.0,5\n"
        "1598666400.0,2020-08-29 02-AM,XYZ/USDT,1,1,1,1,1,99.0,NULL\n"
        "1598662800,2020-08-29 01-AM,XYZ/USDT,1,1,1,1,1,20.0,NULL\n"
    )
    series, info = read_cdd_csv(_csv(tmp_path, text, "Binance_XYZUSDT_1h.csv"))
    assert info["banner"] and info["duplicate_hours"] == 1
    assert list(series.to_numpy()) == [20.0, 10.0]  # ascending; duplicate keeps the tradecount row
    assert series.index[1] - series.index[0] == pd.Timedelta(hours=1)


def test_crypto_errors(tmp_path):
    with pytest.raises(DataError, match="no Binance_<ASSET>USDT_1h.csv files"):
        load(f"crypto:{tmp_path}")
    with pytest.raises(DataError, match="needs an argument"):
        load("crypto")


@pytest.mark.skipif(not (CRYPTO_DIR / "Binance_BTCUSDT_1h.csv").is_file(),
                    reason=f"{CRYPTO_DIR} absent (shared data not mounted)")
def test_crypto_real_files():
    for path in sorted(CRYPTO_DIR.glob("Binance_*USDT_1h.csv")):
        series, _ = read_cdd_csv(path)
        diffs = np.diff(series.index.to_numpy()).astype("timedelta64[s]").astype(np.int64)
        assert (diffs > 0).all()  # strictly increasing, hence no duplicate hours
        assert (diffs % 3600 == 0).all()  # whole hours after the ms/s fix
    # horizon 3 (so y has 3 columns) on the 2020 slice: ~8.8k hours keeps it fast.
    ds = load(f"crypto:{CRYPTO_DIR}", horizon=3, start="2020-01-01", end="2021-01-01")
    assert ds.feature_names == ["BTC", "ETH"] and ds.X_train.shape[1:] == (45, 2)  # max(45, 15)
    assert ds.y_train.shape[1] == 3  # next h = 3 hours
    np.testing.assert_allclose(ds.X_train.min(axis=(0, 1)), 0, atol=1e-12)  # min-max on train
    np.testing.assert_allclose(ds.X_train.max(axis=(0, 1)), 1, atol=1e-12)
    t_train, t_test = ds.meta["time_train"], ds.meta["time_test"]
    assert (np.diff(t_train) > np.timedelta64(0)).all() and t_train[-1] < t_test[0]
    assert t_train[0] >= np.datetime64("2020-01-01")  # crop applied before windowing
    assert abs(len(ds.X_test) / (len(ds.X_train) + len(ds.X_test)) - 0.2) < 0.01  # 80/20


# ------------------------------------------------------------------ arrays (kamoe.data.arrays)
def test_from_arrays_names_scalings_and_round_trip():
    from kamoe.data import from_arrays

    rng = np.random.default_rng(0)
    df = pd.DataFrame({"mass": rng.uniform(1, 5, 50), "speed": rng.uniform(-3, 3, 50)})
    y = pd.Series(0.5 * df["mass"] * df["speed"] ** 2, name="energy")
    ds = from_arrays(df, y)
    assert ds.feature_names == ["mass", "speed"] and ds.target_names == ["energy"]
    np.testing.assert_allclose(ds.X_train.mean(0), 0, atol=1e-12)  # standardised
    np.testing.assert_allclose(ds.raw_X(), df.to_numpy())
    np.testing.assert_allclose(ds.raw_y().ravel(), y)
    assert ds.meta["test"] == "train" and len(ds.X_test) == 50  # no test given
    mm = from_arrays(df.to_numpy(), y.to_numpy(), x_scaling="minmax",
                     test=(df.to_numpy()[:5], y.to_numpy()[:5]))
    assert mm.feature_names == ["x1", "x2"] and mm.target_names == ["y"]
    np.testing.assert_allclose(mm.X_train.min(0), -1)  # observed range onto [-1, 1]
    np.testing.assert_allclose(mm.X_train.max(0), 1)
    assert len(mm.X_test) == 5 and mm.meta["test"] == "given"


def test_from_arrays_classification_labels_and_errors():
    from kamoe.data import from_arrays

    X = np.arange(12.0).reshape(6, 2)
    ds = from_arrays(X, np.array(["b", "a", "c", "a", "b", "c"]), task="classification")
    assert ds.class_names == ["a", "b", "c"] and ds.y_train.tolist() == [1, 0, 2, 0, 1, 2]
    assert ds.output_dim == 3 and ds.y_scaling is None
    for kwargs, needle in (({"X": X[:, 0], "y": X[:, 0]}, "must be 2-D"),
                           ({"X": X, "y": X[:5, 0]}, "y has 5 rows but its X has 6"),
                           ({"X": np.where(X > 10, np.nan, X), "y": X[:, 0]}, "NaN"),
                           ({"X": X, "y": X[:, 0], "feature_names": ["a", "a"]}, "unique"),
                           ({"X": X, "y": X[:, 0], "x_scaling": "log"}, "choose one of"),
                           ({"X": X, "y": X[:, 0], "task": "ranking"}, "task=")):
        with pytest.raises(DataError, match=needle):
            from_arrays(**kwargs)

# --------------------------------------------------------------------------------- CSV sniffing
def _eu_rows(sep: str, n: int = 30) -> str:
    # a = i + 0.5 and y = 3i + 0.75, written with decimal commas (European spreadsheets).
    return f"a{sep}b{sep}y\n" + "".join(f"{i},5{sep}{i % 4}{sep}{3 * i},75\n" for i in range(n))


@pytest.mark.parametrize("sep", [";", "\t", "|"])
def test_csv_decimal_commas_are_detected_when_the_delimiter_is_not_a_comma(sep):
    ds = load("csv", data=_eu_rows(sep), target="y")
    assert ds.meta["delimiter"] == sep and ds.meta["decimal"] == ","
    raw = ds.raw_X("train")
    np.testing.assert_allclose(np.sort(np.r_[raw[:, 0], ds.raw_X("test")[:, 0]]),
                               np.arange(30) + 0.5, atol=1e-9)  # 1e-9: scaling round-off
    np.testing.assert_allclose(np.sort(np.r_[ds.raw_y("train")[:, 0], ds.raw_y("test")[:, 0]]),
                               3 * np.arange(30) + 0.75, atol=1e-9)
    assert any("decimal comma" in n for n in ds.notes)


def test_csv_thousands_dots_and_an_explicit_decimal_option():
    # '3.037.000,5' is 3037000.5: dots group thousands, the comma marks the decimals.
    text = "price;y\n" + "".join(f"{i + 1}.{(37 * i) % 1000:03d}.000,5;{i}\n" for i in range(20))
    ds = load("csv", data=text)
    prices = np.sort(np.r_[ds.raw_X("train")[:, 0], ds.raw_X("test")[:, 0]])
    expected = np.sort([(i + 1) * 1e6 + (37 * i) % 1000 * 1e3 + 0.5 for i in range(20)])
    np.testing.assert_allclose(prices, expected, rtol=1e-12)  # 1e-12: scaling round-off
    assert ds.meta["decimal"] == ","
    with pytest.raises(DataError, match="decimal=','") as err:  # forced wrong: names the fix
        load("csv", data=_eu_rows(";"), decimal=".", target="y")
    assert "Decimal separator" in str(err.value)  # and where the Data page offers it
    with pytest.raises(DataError, match="must be '.' or ','"):
        load("csv", data=_eu_rows(";"), decimal="x")


def test_csv_quoted_decimal_commas_in_a_comma_file_name_the_option():
    quoted = "a,y\n" + "".join(f'"{i},5",{i}\n' for i in range(30))
    with pytest.raises(DataError, match="Decimal separator") as err:
        load("csv", data=quoted)
    assert "decimal=','" in str(err.value) and "line 2" in str(err.value)
    ds = load("csv", data=quoted, decimal=",")
    assert ds.raw_X("train").max() == 29.5  # row 29: '29,5'
    tabs = "a\ty\n" + "".join(f"{i},5\t{i}\n" for i in range(30))
    ds = load("csv", data=tabs, sep="\\t", decimal=",")  # sep typed as the two characters \t
    assert ds.meta["delimiter"] == "\t" and ds.raw_X("train").max() == 29.5


def test_csv_many_valued_text_column_names_the_features_option_everywhere():
    text = "name,a,y\n" + "".join(f"id{i},{i},{2 * i}\n" for i in range(40))
    with pytest.raises(DataError, match="features=") as err:
        load("csv", data=text)
    assert "Input columns" in str(err.value)  # the Data page's control for that option
    assert load("csv", data=text, features="a").feature_names == ["a"]


def test_feynman_ranges_option_replaces_sampling_ranges():
    ds = load("feynman:I.12.1", n=400, ranges={"mu": [-1, 1]})  # Nn keeps its range, 1..5
    raw = ds.raw_X("train")
    assert raw[:, 0].min() < 0 < raw[:, 0].max() and raw[:, 1].min() >= 1
    assert ds.meta["ranges"]["mu"] == (-1.0, 1.0) and ds.meta["ranges"]["Nn"] == (1.0, 5.0)
    np.testing.assert_allclose(np.abs(ds.X_train).max(0), 1, atol=0.02)  # still scaled to [-1, 1]
    with pytest.raises(DataError, match="does not have; its variables are mu, Nn"):
        load("feynman:I.12.1", ranges={"theta": [0, 1]})
    with pytest.raises(DataError, match="needs finite low < high"):
        load("feynman:I.12.1", ranges={"mu": [1, -1]})


def test_arrays_archive_rebuilds_the_same_dataset_and_refuses_bad_bytes():
    import io

    from kamoe.data import from_arrays
    from kamoe.data.arrays import arrays_bytes

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(30, 2)), rng.normal(size=30)
    direct = from_arrays(X, y, feature_names=["a", "b"], x_scaling="minmax")
    again = load("arrays", data=arrays_bytes(X, y), feature_names="a,b", x_scaling="minmax")
    assert np.array_equal(direct.X_train, again.X_train)
    assert np.array_equal(direct.y_train, again.y_train) and again.feature_names == ["a", "b"]
    with pytest.raises(DataError, match="not a readable .npz"):
        load("arrays", data=b"not an archive")
    buf = io.BytesIO()
    np.savez(buf, x_train=X, y_train=np.array([{"a": 1}] * 30, dtype=object))
    with pytest.raises(DataError, match="not a readable .npz archive without pickles"):
        load("arrays", data=buf.getvalue())
    with pytest.raises(DataError, match="cannot be stored without pickling"):
        arrays_bytes(X, np.array([object()] * 30, dtype=object))
    with pytest.raises(DataError, match="needs the archive's bytes"):
        load("arrays")
