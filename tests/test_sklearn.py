"""The scikit-learn estimators: check_estimator, the ecosystem's tools, seeds, names, formulas."""

from __future__ import annotations

import pickle
import random
import time

import numpy as np
import pandas as pd
import pytest
import sympy
import torch
from sklearn.base import clone
from sklearn.datasets import make_friedman1
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

import kamoe
from kamoe.sklearn import Formula, FormulaRegressor, KANClassifier, KANRegressor


# FormulaRegressor runs with the monomial path only: the API contract checked here does not
# depend on which search paths run, and the full search (BENCHMARKS.md) takes ~50 s for the
# ~50 checks. The KAN estimators run with their defaults.
@parametrize_with_checks([KANRegressor(), KANClassifier(),
                          FormulaRegressor(time_limit=2, paths=("monomial",))])
def test_check_estimator(estimator, check):
    torch.set_num_threads(1)
    check(estimator)


@pytest.fixture(scope="module")
def friedman():
    X, y = make_friedman1(n_samples=300, random_state=0)  # small: a few seconds per fit
    return X, y


def test_import_kamoe_stays_light_and_exports_estimators():
    import subprocess
    import sys

    code = ("import sys, kamoe; light = not ({'torch', 'sklearn'} & set(sys.modules)); "
            "from kamoe import KANRegressor, FormulaRegressor; print(light, KANRegressor())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "KANRegressor()"]
    assert kamoe.KANClassifier is KANClassifier
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        kamoe.nope  # noqa: B018


def test_cross_val_score_pipeline_and_grid_search(friedman):
    torch.set_num_threads(1)
    X, y = make_friedman1(n_samples=500, random_state=0)  # 333 training rows per fold
    linear = cross_val_score(LinearRegression(), X, y, cv=3).mean()
    kan = cross_val_score(make_pipeline(StandardScaler(), KANRegressor()), X, y, cv=3).mean()
    # friedman1 has sin(pi x1 x2) and (x3 - 0.5)^2: a linear fit explains ~0.74 of it; the KAN
    # must find the curvature (measured 0.99 here, 0.9999 with 1000 samples: BENCHMARKS.md).
    assert linear < 0.8 and kan > 0.9
    X, y = friedman
    search = GridSearchCV(KANRegressor(epochs=5), {"hidden": [(2,), (5,)]}, cv=2).fit(X, y)
    assert search.best_params_["hidden"] in [(2,), (5,)]
    assert search.best_estimator_.config_["hidden"] == list(search.best_params_["hidden"])


def test_same_seed_same_predictions_and_global_rngs_untouched(friedman):
    X, y = friedman
    random.seed(7)
    np.random.seed(7)
    torch.manual_seed(7)
    before = (random.random(), np.random.rand(), torch.rand(1).item())
    random.seed(7)
    np.random.seed(7)
    torch.manual_seed(7)
    a = KANRegressor(epochs=5, random_state=3).fit(X, y).predict(X)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == before
    b = clone(KANRegressor(epochs=5, random_state=3)).fit(X, y).predict(X)
    c = KANRegressor(epochs=5, random_state=4).fit(X, y).predict(X)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 1e-3  # another seed: other initial weights and batches
    fresh = [KANRegressor(epochs=2, random_state=None).fit(X, y).history_.train_loss[0]
             for _ in range(2)]
    assert fresh[0] != fresh[1]  # None draws a new seed per fit


def test_dataframe_names_reach_the_model_and_parts_round_trip(friedman, tmp_path):
    from kamoe.train import load_model, save_model
    from kamoe.train import predict as model_predict

    X, y = friedman
    cols = [f"f_{i}" for i in range(X.shape[1])]
    df = pd.DataFrame(X, columns=cols)
    est = KANRegressor(epochs=5).fit(df, pd.Series(y, name="target"))
    assert list(est.feature_names_in_) == cols
    assert est.dataset_.feature_names == cols and est.dataset_.target_names == ["target"]
    assert est.config_["name"] == "kan" and est.train_config_.optimizer == "lbfgs"
    assert est.n_features_in_ == 10 and est.predict(df).shape == (300,)
    # the fitted parts are the library's own values: save and load them as any run
    save_model(est.model_, tmp_path / "m", dataset=est.dataset_, history=est.history_,
               train_config=est.train_config_)
    model, meta = load_model(tmp_path / "m")
    assert meta["dataset"]["feature_names"] == cols
    raw = est.dataset_.to_raw_y(model_predict(model, est.dataset_.x_scaling.apply(X))).ravel()
    np.testing.assert_allclose(raw, est.predict(df), rtol=1e-5, atol=1e-5)  # float32 vs 64


def test_regressor_multioutput_and_any_registry_model(friedman):
    X, y = friedman
    X2, y2 = make_friedman1(n_samples=300, random_state=1)  # held-out draw
    est = KANRegressor("mlp").fit(X, np.column_stack([y, 1 - 2 * y]))
    assert est.predict(X2).shape == (300, 2) and est.config_["name"] == "mlp"
    # measured 0.92 on the held-out draw; a linear fit gets 0.75 there
    assert est.score(X2, np.column_stack([y2, 1 - 2 * y2])) > 0.8


def test_classifier_labels_probabilities_and_score():
    from sklearn.datasets import make_moons

    X, y = make_moons(n_samples=300, noise=0.1, random_state=0)
    labels = np.array(["left", "right"])[y]
    clf = KANClassifier().fit(X, labels)
    assert list(clf.classes_) == ["left", "right"]
    proba = clf.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert set(clf.predict(X)) <= {"left", "right"}
    assert (clf.predict(X) == clf.classes_[proba.argmax(1)]).all()
    assert clf.score(X, labels) > 0.95  # two half-moons at noise 0.1 are nearly separable


def test_bad_parameters_fail_at_fit_with_the_allowed_values(friedman):
    X, y = friedman
    KANRegressor(train_params={"nope": 1})  # the constructor only stores
    with pytest.raises(ValueError, match="unknown train_params key.*allowed: .*epochs"):
        KANRegressor(train_params={"nope": 1}).fit(X, y)
    with pytest.raises(ValueError, match="unknown model 'kann'.*Did you mean kan"):
        KANRegressor("kann").fit(X, y)
    with pytest.raises(ValueError, match="unknown setting.*grid_size.*'mlp'"):
        KANRegressor("mlp", grid_size=3).fit(X, y)


def _kinetic():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"mass": rng.uniform(1, 5, 300), "speed": rng.uniform(1, 5, 300)})
    return df, 0.5 * df["mass"] * df["speed"] ** 2


def test_formula_regressor_finds_kinetic_energy_in_column_names():
    df, y = _kinetic()
    est = FormulaRegressor(time_limit=20).fit(df, y)
    mass, speed = sympy.symbols("mass speed")
    assert sympy.simplify(est.sympy() - sympy.Rational(1, 2) * mass * speed**2) == 0
    assert "mass" in est.latex() and "speed" in est.latex()
    np.testing.assert_allclose(est.predict(df), y, rtol=1e-9)
    np.testing.assert_allclose(est.formula_(df), y, rtol=1e-9)
    np.testing.assert_allclose(est.formula_(mass=2.0, speed=3.0), 9.0)
    np.testing.assert_allclose(est.formula_(df["mass"], df["speed"]), y, rtol=1e-9)
    again = pickle.loads(pickle.dumps(est))
    np.testing.assert_allclose(again.predict(df), y, rtol=1e-9)
    assert est.score(df, y) == pytest.approx(1.0)


def test_formula_regressor_honours_its_time_limit():
    rng = np.random.default_rng(1)
    X = rng.uniform(0.5, 2, (600, 6))
    y = (np.tanh(X[:, 0] * X[:, 3]) * np.cos(2 * X[:, 1]) + np.log(X[:, 2] + X[:, 4])
         + 0.3 * rng.standard_normal(600))  # noisy: no exact formula ends the search early
    t0 = time.perf_counter()
    est = FormulaRegressor(time_limit=6).fit(X, y)
    # Measured: 33 s with the default 60 s limit, 8.6 s with 6 s (the search overshoots its
    # deadline by a few seconds); 20 s tells the two apart with room for a busy machine.
    assert time.perf_counter() - t0 < 20
    assert est.variables_ == [f"x{i}" for i in range(1, 7)] and est.sympy().free_symbols
    with pytest.raises(ValueError, match="time_limit must be a positive number"):
        FormulaRegressor(time_limit=0).fit(X, y)


def test_formula_callable_checks_its_arguments():
    x, v = sympy.symbols("x v")
    f = Formula(x * v, ["x", "v"])
    np.testing.assert_allclose(f(np.array([[2.0, 3.0]])), [6.0])
    np.testing.assert_allclose(f(2.0, 3.0), 6.0)
    with pytest.raises(ValueError, match="takes 2 variables"):
        f(1.0)
    with pytest.raises(ValueError, match="give every variable by name: x, v"):
        f(x=1.0)
    assert pickle.loads(pickle.dumps(f))(x=2.0, v=5.0) == 10.0


def test_fitted_regressor_saves_into_the_run_store_and_loads_back(friedman, tmp_path,
                                                                  monkeypatch, capsys):
    import json

    from kamoe.cli import main

    monkeypatch.setenv("KAMOE_HOME", str(tmp_path / "home"))  # the default store is this one
    X, y = friedman
    cols = [f"f_{i}" for i in range(X.shape[1])]
    df = pd.DataFrame(X, columns=cols)
    est = KANRegressor(hidden=(3,), epochs=4, random_state=5).fit(df, pd.Series(y, name="t"))
    run_id = est.save(name="friedman by script")
    assert main(["runs", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    rows = listed["runs"] if isinstance(listed, dict) else listed
    row = next(r for r in rows if r["id"] == run_id)
    assert row["name"] == "friedman by script" and row["source"] == "sklearn"
    loaded = KANRegressor.load(run_id[:6])  # a unique prefix, as `kamoe runs show` takes
    assert np.array_equal(loaded.predict(df), est.predict(df))  # the same weights and scalings
    assert list(loaded.feature_names_in_) == cols and loaded.n_features_in_ == 10
    assert loaded.get_params()["hidden"] == [3] and loaded.random_state == 5
    assert loaded.history_.metrics == est.history_.metrics
    assert loaded.dataset_.target_names == ["t"] and loaded.predict(df).shape == (300,)
    with pytest.raises(ValueError, match="feature names"):  # still checks names like sklearn
        loaded.predict(df.rename(columns={"f_0": "other"}))
    again = loaded.save()  # a loaded estimator saves again, to a new run
    assert again != run_id and np.array_equal(KANRegressor.load(again).predict(df.iloc[:5]),
                                              est.predict(df.iloc[:5]))


def test_fitted_classifier_round_trips_through_an_explicit_store(tmp_path):
    from sklearn.datasets import make_moons

    from kamoe.store import RunStore, StoreError

    store = RunStore(tmp_path / "store")
    X, y = make_moons(n_samples=200, noise=0.1, random_state=0)
    labels = np.array(["left", "right"], dtype=object)[y]  # object labels are stored as text
    clf = KANClassifier(epochs=3).fit(X, labels)
    run_id = clf.save(store=store)
    back = KANClassifier.load(run_id, store=store)
    assert list(back.classes_) == ["left", "right"]
    assert (back.predict(X) == clf.predict(X)).all()
    assert np.array_equal(back.predict_proba(X), clf.predict_proba(X))
    with pytest.raises(StoreError, match="not saved by KANRegressor.save.*KANClassifier"):
        KANRegressor.load(run_id, store=store)
    with pytest.raises(StoreError, match="no stored run"):
        KANClassifier.load("feedbeef", store=store)
