"""Tests for kamoe.symbolic: library fits, composition, pipeline, equivalence, exports, CLI."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import sympy
import torch

from kamoe.data import load
from kamoe.models import build_for
from kamoe.symbolic import (
    LIBRARY,
    SymbolicKAN,
    equivalent,
    extract_formula,
    fix,
    suggest,
    to_python,
    to_sympy_string,
)
from kamoe.symbolic.fit import Candidate
from kamoe.symbolic.library import LibraryFunction

# Inputs that keep a*x + b = 1.3 x + 0.4 inside each function's domain (away from poles).
_DOMAIN = {"log": (0.5, 3.0), "sqrt": (0.5, 3.0), "1/sqrt": (0.5, 3.0), "1/x": (0.5, 3.0),
           "1/x^2": (0.5, 3.0), "arcsin": (-0.6, 0.3), "tan": (-0.8, 0.5)}
# Pairs a clean sample cannot tell apart (same family up to the affine placement).
_ALIASES = {"cos": {"sin"}, "sin": {"cos"}, "sigmoid": {"tanh"}, "tanh": {"sigmoid"}}
# Functions that lose the ranking to a simpler near-fit under pykan's default weight 0.8.
_NOT_RANKED_FIRST = {"0", "arcsin", "arctan"}


@pytest.mark.parametrize("name", [n for n in LIBRARY if n != "0"])
def test_suggest_recovers_each_library_function(name: str) -> None:
    rng = np.random.default_rng(0)
    lo, hi = _DOMAIN.get(name, (-2.0, 2.0))
    x = rng.uniform(lo, hi, 800)
    y = 1.7 * LIBRARY[name].numpy(1.3 * x + 0.4) - 0.5
    cands = suggest(x, y, top=len(LIBRARY), weight_simple=0.0)  # rank by R^2 only
    own = [c for c in cands if c.name == name]
    assert own, f"{name} missing from the candidates"
    assert own[0].r2 > 0.999  # the refitted curve of the true family must match clean data
    assert np.allclose(own[0](x), y, atol=1e-2 * (np.abs(y).max() + 1))  # and evaluate so
    if name not in _NOT_RANKED_FIRST:
        best = suggest(x, y, top=1)[0]  # default pykan weighting
        assert best.name in {name} | _ALIASES.get(name, set()) or best.complexity < LIBRARY[
            name].complexity, f"{name}: picked {best.name}"


def test_suggest_rejects_out_of_domain_placements() -> None:
    x = np.linspace(-2, 2, 200)
    cands = suggest(x, np.log(x + 3.0), lib=["log"], top=1)
    assert cands[0].r2 > 0.999  # log(x + 3) is valid on [-2, 2]: found with a shift
    assert np.all(np.isfinite(cands[0](x)))  # no NaN-driven fit


def test_candidate_expr_is_sympy() -> None:
    c = Candidate("sin", 2.0, 0.5, 3.0, 1.0, 1.0, 2, 0.0)
    s = sympy.Symbol("s")
    want = 3 * sympy.sin(2 * s + 0.5) + 1
    f, g = sympy.lambdify(s, c.expr(s)), sympy.lambdify(s, want)
    assert all(abs(f(v) - g(v)) < 1e-12 for v in (-1.0, 0.3, 2.0))  # same function
    assert isinstance(LIBRARY["exp"], LibraryFunction)


def _two_layer_kan():
    ds = load("feynman:I.12.1", seed=0, n=200)  # 2 inputs mu, Nn scaled by (x - 3)/2
    torch.manual_seed(0)
    model = build_for("kan", ds, hidden=[2])
    return ds, model


def test_compose_hand_fixed_kan_gives_expected_formula() -> None:
    ds, model = _two_layer_kan()
    state = SymbolicKAN(model, ds)
    x = {"mu": ("x", 1.0), "Nn": ("x^2", 1.0)}
    # layer 0: node 0 = u_mu + u_Nn^2, node 1 = 0; layer 1: out = 2*node0 + 0*node1 (+ scaling)
    for i, n in enumerate(ds.feature_names):
        f, _ = x[n]
        state.fix(0, 0, i, Candidate(f, 1.0, 0.0, 1.0, 0.0, 1.0, 1, 0.0))
        state.fix(0, 1, i, Candidate("0", 0.0, 0.0, 0.0, 0.0, 1.0, 0, 0.0))
    state.fix(1, 0, 0, Candidate("x", 1.0, 0.0, 2.0, 0.0, 1.0, 1, 0.0))
    state.fix(1, 0, 1, Candidate("0", 0.0, 0.0, 0.0, 0.0, 1.0, 0, 0.0))
    mu, nn_ = sympy.symbols("mu Nn")
    off, sc = ds.x_scaling.offset, ds.x_scaling.scale
    ys, yo = float(ds.y_scaling.scale[0]), float(ds.y_scaling.offset[0])
    pairs = zip(ds.feature_names, (mu, nn_), strict=True)
    u = {n: (s - off[i]) / sc[i] for i, (n, s) in enumerate(pairs)}
    expected = (2 * (u["mu"] + u["Nn"] ** 2)) * ys + yo
    got = state.formula()
    residual = sympy.Poly(sympy.expand(got - expected), mu, nn_)
    assert got.free_symbols == {mu, nn_}
    assert all(abs(float(c)) < 1e-9 for c in residual.coeffs())  # equal up to float round-off
    assert sympy.Poly(sympy.expand(got), mu, nn_).degree(nn_) == 2  # Nn enters squared
    assert set(state.edges()["function"]) == {"x", "x^2", "0"}


def test_module_level_fix_and_auto_state() -> None:
    ds, model = _two_layer_kan()
    cand = fix(model, "net.layers.0", 0, 0, "x", dataset=ds)
    assert cand.name == "x"
    with pytest.raises(ValueError):
        fix(model, "net.layers.9", 0, 0, "x")  # unknown layer path names the valid ones
    with pytest.raises(ValueError):
        fix(model, 0, 0, 0, "no-such-function")


@pytest.mark.parametrize("eq_id", ["I.6.2a", "I.12.1", "I.14.4", "I.25.13", "II.3.24"])
def test_pipeline_recovers_simple_feynman(eq_id: str) -> None:
    ds = load(f"feynman:{eq_id}", seed=0, n=1000)
    res = extract_formula(ds, time_limit=20.0, paths=("monomial", "index"))  # 20 s: ample
    assert res.recovered, f"{eq_id}: {res.expr}"
    assert res.r2_test > 0.9999  # an exact formula fits noiseless data
    assert res.seconds < 25.0  # time limit honoured (+ a few seconds slack)


def test_pipeline_kan_path_reports_edges_and_network_r2() -> None:
    ds = load("feynman:I.12.1", seed=0, n=600)
    progress = []
    res = extract_formula(ds, time_limit=60.0, paths=("kan",),
                          progress=lambda f, m: progress.append(f))
    assert res.method.startswith("kan") and res.from_kan  # read from a KAN, not a data search
    assert res.recovered and res.r2_test > 1 - 1e-9
    assert res.network_r2 is not None and res.network_r2 > 0.999  # the KAN fits mu*Nn
    # The edges are named by the variables they read (Nn and mu, or the symmetry's mu*Nn).
    assert all(any(v in e for e in res.edges["edge"]) for v in ("Nn", "mu")), res.edges
    assert res.edges["exact"].all() and not res.blame
    assert res.steps and res.steps[0].startswith("surrogate: KAN")
    assert progress and progress[-1] == 1.0
    assert res.seconds < 65.0  # the 60 s limit holds (+ slack for a busy machine)


def test_equivalent_rule() -> None:
    x, y = sympy.symbols("x y")
    truth = x**2 * sympy.exp(-y) / (4 * sympy.pi)
    assert equivalent(2 * truth, truth)  # a constant factor is allowed
    assert equivalent(truth + 3, truth)  # so is a constant offset
    assert equivalent(sympy.Float(0.0795775) * x**2 * sympy.exp(-y), truth)  # 1/(4 pi) as float
    assert not equivalent(truth + x, truth)
    assert not equivalent(truth**2, truth)
    assert not equivalent(sympy.Float(2.0), truth)  # a constant is never a solution
    assert not equivalent(x**2 * sympy.exp(-1.01 * y), truth)  # 1.01 survives 3-dp rounding


def test_equivalent_accepts_identities_that_need_the_ranges() -> None:
    # I.34.14 (relativistic Doppler): omega_0 (1 + v/c) / sqrt(1 - v^2/c^2) equals
    # omega_0 sqrt((c + v)/(c - v)) for c > v, which sympy.simplify does not prove
    c, v, w = sympy.symbols("c v omega_0")
    truth = w * (1 + v / c) / sympy.sqrt(1 - v**2 / c**2)
    ranges = {"c": (3.0, 10.0), "v": (1.0, 2.0), "omega_0": (1.0, 5.0)}
    assert equivalent(w * sympy.sqrt((c + v) / (c - v)), truth, ranges=ranges)
    assert not equivalent(w * sympy.sqrt((c + 1.01 * v) / (c - v)), truth, ranges=ranges)
    assert not equivalent(w * (c + v) / (c - v), truth, ranges=ranges)


@pytest.mark.parametrize("names", [["I", "beta", "gamma", "lambda"], ["E", "S", "N", "Q"],
                                   ["pi", "x", "y", "z"]])
def test_sympy_string_round_trips_awkward_names(names: list[str]) -> None:
    s = [sympy.Symbol(n) for n in names]
    expr = (sympy.Float(1.25) * s[0] * sympy.sin(s[1]) / s[2] + sympy.pi * s[3] ** 2
            + sympy.E * s[1] + sympy.sqrt(s[0] + 2))
    text = to_sympy_string(expr)
    back = sympy.parse_expr(text, local_dict={n: sympy.Symbol(n) for n in names})
    assert sympy.simplify(back - expr) == 0, text
    src = to_python(expr, names)
    ns: dict = {}
    exec(src, ns)  # noqa: S102 - our own generated code
    vals = [1.5, 0.7, 2.0, 1.1]
    want = float(expr.subs(dict(zip(s, vals, strict=False))))
    assert abs(ns["formula"](*vals) - want) < 1e-9  # same value as sympy


def test_cli_json(capsys) -> None:
    from kamoe.symbolic import command

    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    args = parser.parse_args(["--dataset", "feynman:I.12.1", "--time-limit", "10", "--json"])
    assert command.run(args) == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("formula", "latex", "r2_test", "network_r2", "seconds", "truth", "recovered"):
        assert key in out
    expr = sympy.parse_expr(out["formula"], local_dict={n: sympy.Symbol(n) for n in ("mu", "Nn")})
    assert equivalent(expr, sympy.parse_expr("mu*Nn")) and out["recovered"] is True


def test_cli_bad_input() -> None:
    from kamoe.data import DataError
    from kamoe.symbolic import command

    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    with pytest.raises((DataError, ValueError)):
        command.run(parser.parse_args(["--dataset", "feynman:NOPE.1"]))
    with pytest.raises(ValueError):
        command.run(parser.parse_args(["--csv", "x.csv"]))  # --target missing


# ----------------------------------------------------------------------------- the KAN path
def _csv_dataset(columns: dict[str, np.ndarray], target: str, formula=None):
    """A CSV upload of the given columns (the user's path into the pipeline)."""
    import pandas as pd

    data = pd.DataFrame(columns).to_csv(index=False).encode()
    ds = load("csv", data=data, target=target, task="regression", seed=0)
    ds.formula = formula
    return ds


def test_kan_path_reads_a_product_of_signed_inputs() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.uniform(-1, 1, 800), rng.uniform(-1, 1, 800)  # both signs: no log tricks
    X, Y = sympy.symbols("x y")
    ds = _csv_dataset({"x": x, "y": y, "z": x * y}, "z", formula=X * Y)
    res = extract_formula(ds, time_limit=60.0, paths=("kan",), seed=0)
    assert res.from_kan, res.method
    assert res.recovered, (res.expr, res.steps)
    assert sympy.simplify(res.expr - X * Y) == 0  # exactly x*y after rounding


def test_kan_path_recovers_the_pykan_hello_formula() -> None:
    rng = np.random.default_rng(1)
    x, y = rng.uniform(-1, 1, 1000), rng.uniform(-1, 1, 1000)
    X, Y = sympy.symbols("x y")
    truth = sympy.exp(sympy.sin(sympy.pi * X) + Y**2)
    ds = _csv_dataset({"x": x, "y": y, "f": np.exp(np.sin(np.pi * x) + y**2)}, "f",
                      formula=truth)
    res = extract_formula(ds, time_limit=60.0, paths=("kan",), seed=0)
    assert res.method == "kan-tree" and res.recovered, (res.expr, res.steps)
    assert res.edges["exact"].all()  # every edge read exactly: sin and a square


def test_a_formula_is_never_recovered_when_not_equivalent() -> None:
    rng = np.random.default_rng(2)
    x, y = rng.uniform(1, 3, 600), rng.uniform(1, 3, 600)
    X, Y = sympy.symbols("x y")
    ds = _csv_dataset({"x": x, "y": y, "z": x * y}, "z", formula=X * Y + X**2)  # wrong truth
    res = extract_formula(ds, time_limit=60.0, seed=0)
    assert res.r2_test > 1 - 1e-9  # the formula found fits the data exactly (it is x*y)...
    assert res.recovered is False  # ...but it is not the (wrong) ground truth


def test_noisy_data_give_a_formula_at_the_noise_ceiling() -> None:
    rng = np.random.default_rng(3)
    n = 1500
    a, b = rng.uniform(1, 4, n), rng.uniform(-2, 2, n)
    clean = 2.5 * a * np.sin(b)
    sigma = 0.01 * float(np.sqrt(np.mean(clean**2)))  # SRBench's 1 % noise level
    z = clean + rng.normal(0, sigma, n)
    A, B = sympy.symbols("a b")
    ds = _csv_dataset({"a": a, "b": b, "z": z}, "z", formula=2.5 * A * sympy.sin(B))
    res = extract_formula(ds, time_limit=60.0, seed=0)
    yte = ds.raw_y("test").ravel()
    ceiling = 1 - sigma**2 / float(np.var(yte))  # what the exact formula scores on noisy rows
    assert res.r2_test > ceiling - 2e-3, (res.expr, res.r2_test, ceiling)
    assert res.recovered, (res.expr, res.steps)  # rounding kept 2.5 and sin(b) through noise


def test_snapping_an_edge_keeps_the_loss_after_retraining() -> None:
    from kamoe.symbolic.snap import SnapKAN
    from kamoe.train import TrainConfig, evaluate, fit

    rng = np.random.default_rng(4)
    x1, x2 = rng.uniform(-1, 1, 800), rng.uniform(-1, 1, 800)
    ds = _csv_dataset({"x1": x1, "x2": x2, "f": np.sin(np.pi * x1) + x2**2}, "f")
    torch.manual_seed(0)
    model = build_for("kan", ds, hidden=[3])
    cfg = TrainConfig(optimizer="lbfgs", lr=1.0, epochs=40, batch_size=None,
                      grid_update_epochs=10, patience=None, plateau_patience=None)
    fit(model, ds, cfg)
    net = SnapKAN(model)
    before = evaluate(net, ds)["rmse"]
    X = torch.as_tensor(ds.X_train, dtype=torch.float32)
    fits = {k: suggest(*net.edge_samples(X, k), top=1)[0] for k in net.edge_keys("numeric")}
    key = max(fits, key=lambda k: fits[k].r2)
    assert fits[key].r2 > 0.999  # a [2, 3, 1] KAN on this function has a clean edge to snap
    net.layers[key[0]].snap(key[1], key[2], fits[key])
    assert net.layers[key[0]].state(key[1], key[2]) == "symbolic"
    fit(net, ds, TrainConfig(optimizer="lbfgs", lr=1.0, epochs=20, batch_size=None,
                             patience=None, plateau_patience=None))
    after = evaluate(net, ds)["rmse"]
    # the stated bound: retraining around one snapped edge costs at most 50 % of the error
    # (plus float32 round-off); the snapped edge's spline weights stayed at zero
    assert after <= 1.5 * before + 1e-5, (before, after)
    lay = net.layers[key[0]].layer
    assert float(lay.base_weight[key[1], key[2]].detach()) == 0.0
    assert float(lay.spline_weight[key[1], key[2]].detach().abs().sum()) == 0.0


def test_snap_network_makes_every_edge_symbolic_and_composes_the_network() -> None:
    from kamoe.symbolic.snap import snap_network

    ds = load("feynman:I.12.1", seed=0, n=600)
    rep = snap_network(None, ds, deadline=None, seed=0)
    assert not rep.network.edge_keys("numeric")  # the network is all library functions
    syms = [sympy.Symbol(n) for n in ds.feature_names]
    from kamoe.symbolic import evaluate, r2_score

    formula_r2 = r2_score(evaluate(rep.formula, syms, ds.raw_X("test")),
                          ds.raw_y("test").ravel())
    assert abs(formula_r2 - rep.r2_after) < 1e-4  # the formula IS the snapped network
    assert rep.steps[0].startswith("trained KAN") and any("pruned" in s for s in rep.steps)
    table = rep.edges(list(ds.feature_names))
    assert set(table["state"]) <= {"symbolic", "cut"} and table["edge"].str.contains("→").all()


def test_latex_writes_multi_letter_names_upright() -> None:
    from kamoe.symbolic import to_latex

    pwr, r, w0, th1 = sympy.symbols("Pwr r omega_0 theta1")
    tex = to_latex(pwr / (4 * sympy.pi * r**2) + w0 * th1)
    assert r"\mathrm{Pwr}" in tex  # one quantity, not the product P w r
    assert r"\omega_{0}" in tex and r"\theta_{1}" in tex  # Greek names stay Greek
    assert "r^{2}" in tex


def test_shape_text_writes_an_edge_as_its_shape() -> None:
    from kamoe.symbolic.expr import shape_text

    u = sympy.Symbol("_u")
    piece = 3.7 / sympy.sqrt(1.00000012 - 0.99999991 * u**2) + 0.25
    assert shape_text(piece, u, "(v/c)") == "1/sqrt(1.0 - 1.0*(v/c)**2)"  # scale and offset go
    assert shape_text(2.5 * sympy.sin(3.14159 * u), u, "x") == "sin(3.14*x)"
