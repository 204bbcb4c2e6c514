"""Smoke tests of the benchmark commands at tiny sizes (the numbers live in BENCHMARKS.md)."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from kamoe.bench.reproduce import CALIFORNIA_REF, CRYPTO_REF
from kamoe.cli import main
from kamoe.nn.kan import native_available

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def test_speed_bench_prints_a_ratio_per_shape(capsys):
    code = main(["bench", "speed", "--shapes", "32,4,4;16,3,2", "--repeats", "3", "--warmup", "1",
                 "--json"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    rows = result["rows"]
    assert [(r["batch"], r["in"], r["out"]) for r in rows] == [(32, 4, 4), (16, 3, 2)]
    assert all(r["ratio"] > 0 and r["kan_ms"] > 0 and r["linear_ms"] > 0 for r in rows)
    assert result["path"] == ("native kernels" if native_available() else "torch path")


def test_speed_bench_can_time_the_torch_path(capsys):
    code = main(["bench", "speed", "--shapes", "16,3,2", "--repeats", "3", "--warmup", "1",
                 "--variant", "torch-path", "--json"])
    assert code == 0
    assert json.loads(capsys.readouterr().out)["path"] == "torch path"


def test_speed_bench_rejects_bad_shapes(capsys):
    assert main(["bench", "speed", "--shapes", "1,2"]) == 2
    assert "--shapes" in capsys.readouterr().err


def test_reference_tables_cover_every_default_cell():
    # 2 families x 3 variants x 5 published widths x 2 depths (the default cells, widths 25 and
    # 100, among them), and 2 assets x 2 horizons x 2 cells x 3 variants.
    assert len(CALIFORNIA_REF) == 60 and len(CRYPTO_REF) == 24
    assert CALIFORNIA_REF[("kan", "kamoe", 100, 1)] == pytest.approx(0.782804)
    assert CRYPTO_REF[("BTC", 6, "lstm", "kamoe")] == pytest.approx(0.087766)


@pytest.mark.skipif(not (SHARED / "sklearn" / "cal_housing_py3.pkz").is_file(),
                    reason="shared California cache file absent (../shared/data/sklearn)")
def test_reproduce_california_runs_one_cell(tmp_path, capsys):
    out = tmp_path / "ca.md"
    code = main(["bench", "reproduce", "california", "--families", "mlp", "--variants",
                 "standard", "--widths", "5", "--depths", "1", "--seeds", "1", "--max-epochs",
                 "2", "--data-home", str(SHARED / "sklearn"), "--out", str(out)])
    assert code == 0
    table = out.read_text()
    assert "| mlp | standard | 5 | 1 | 1 |" in table  # cell, then the number of seeds
    assert json.loads(out.with_suffix(".json").read_text())[0]["epochs"] == 2
    # a second seed in a separate run, then both runs' results joined without refitting
    out2 = tmp_path / "ca2.md"
    assert main(["bench", "reproduce", "california", "--families", "mlp", "--variants",
                 "standard", "--widths", "5", "--depths", "1", "--seeds", "1", "--first-seed",
                 "1", "--max-epochs", "2", "--data-home", str(SHARED / "sklearn"), "--out",
                 str(out2)]) == 0
    assert json.loads(out2.with_suffix(".json").read_text())[0]["seed"] == 1
    capsys.readouterr()
    assert main(["bench", "reproduce", "california", "--from-json",
                 f"{out.with_suffix('.json')},{out2.with_suffix('.json')}"]) == 0
    assert "| mlp | standard | 5 | 1 | 2 |" in capsys.readouterr().out


@pytest.mark.skipif(not (SHARED / "crypto").is_dir(), reason="shared crypto CSVs absent")
def test_reproduce_crypto_runs_one_cell(tmp_path):
    out = tmp_path / "cr.md"
    code = main(["bench", "reproduce", "crypto", "--data", str(SHARED / "crypto"), "--targets",
                 "BTC", "--horizons", "1", "--cells", "gru", "--variants", "kamoe", "--units",
                 "4", "--seeds", "1", "--max-epochs", "1", "--start", "2021-03-01", "--out",
                 str(out)])
    assert code == 0
    assert "| BTC | 1 | gru | kamoe |" in out.read_text()


def test_reproduce_reports_a_missing_data_folder(tmp_path, capsys):
    code = main(["bench", "reproduce", "crypto", "--data", str(tmp_path / "none"), "--seeds", "1"])
    assert code == 2
    assert "kamoe: error:" in capsys.readouterr().err


def test_reproduce_from_json_refuses_files_it_cannot_use(tmp_path, capsys):
    not_json = tmp_path / "a.json"
    not_json.write_text("not json")
    wrong = tmp_path / "b.json"
    wrong.write_text(json.dumps([{"family": "mlp", "r2": 0.7}]))  # California keys, no crypto
    for name, needle in ((tmp_path / "none.json", "cannot read"), (not_json, "is not JSON"),
                         (wrong, "does not hold crypto results")):
        assert main(["bench", "reproduce", "crypto", "--from-json", str(name)]) == 2
        err = capsys.readouterr().err
        assert needle in err and "--out FILE" in err


def test_ecosystem_cv_bench_reports_every_fold(capsys):
    assert main(["bench", "ecosystem", "cv", "--n", "100", "--json"]) == 0  # small: ~3 s
    result = json.loads(capsys.readouterr().out)
    assert len(result["folds"]) == 5 and result["n"] == 100
    assert result["mean_r2"] == pytest.approx(sum(result["folds"]) / 5, abs=1e-5)


def test_feynman_bench_reads_formulas_through_the_kan_path(capsys):
    code = main(["bench", "feynman", "--equations", "I.12.1", "--paths", "kan", "--jobs", "1",
                 "--time-limit", "60", "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    (row,) = out["rows"]
    assert row["id"] == "I.12.1" and row["runner"] == "kamoe" and row["recovered"]
    assert row["method"].startswith("kan")  # --paths kan: the formula is read from a KAN
    assert set(row) >= {"formula", "method", "network_r2", "r2_test", "seconds"}
    assert out["summary"]["kamoe"]["recovered"] == 1
    assert out["summary"]["kamoe"]["by_method"] == {row["method"]: 1}


def test_feynman_bench_splits_tuning_and_holdout_and_refuses_bad_options(capsys):
    from kamoe.bench.feynman import HOLDOUT, equation_ids
    from kamoe.data import feynman_ids

    tuning, holdout = equation_ids("tuning"), equation_ids("holdout")
    assert len(holdout) == 30 and set(holdout) == set(HOLDOUT)  # every held-out ID is real
    assert not set(tuning) & set(holdout) and len(tuning) + len(holdout) == len(feynman_ids())
    assert main(["bench", "feynman", "--equations", "I.12.1", "--paths", "kan,magic"]) == 2
    assert "magic" in capsys.readouterr().err
    assert main(["bench", "feynman", "--equations", "I.12.1", "--peers", "eureqa"]) == 2
    assert "eureqa" in capsys.readouterr().err


# ----------------------------------------------------------------------------- bench feynman peers
def _peer_missing(peer: str) -> str | None:
    from kamoe.bench.peers import available

    return available(peer)


def _not_installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is None


ROW_KEYS = {"id", "runner", "recovered", "r2_test", "network_r2", "seconds", "method", "formula"}


def _check_row(row: dict, peer: str, dataset) -> None:
    """A peer's row has kamoe's keys, and 'recovered' follows kamoe's rule on its formula."""
    import sympy

    from kamoe.symbolic import equivalent, evaluate, r2_score

    assert set(row) == ROW_KEYS
    assert row["id"] == "I.12.1" and row["runner"] == peer
    assert row["method"] in (peer, "error", "timeout")
    assert isinstance(row["recovered"], bool) and row["seconds"] > 0
    if row["method"] == "error":
        assert row["formula"].startswith(f"{peer} failed in ") and not row["recovered"]
        return
    names = list(dataset.feature_names)
    expr = sympy.parse_expr(row["formula"], local_dict={n: sympy.Symbol(n) for n in names})
    r2 = r2_score(evaluate(expr, [sympy.Symbol(n) for n in names], dataset.raw_X("test")),
                  dataset.raw_y("test").ravel())
    assert r2 == pytest.approx(row["r2_test"], abs=1e-9)  # the score is the formula's, raw units
    judged = r2 > 0.5 and equivalent(expr, dataset.formula, ranges=dataset.meta["ranges"])
    assert row["recovered"] == (judged and row["method"] == peer)


def test_peers_available_names_an_unknown_or_missing_peer(monkeypatch):
    from kamoe.bench.feynman import PEERS

    assert "choose from pykan, operon" in _peer_missing("pysr")
    assert set(PEERS) == {"pykan", "operon"}
    # a module set to None in sys.modules raises ImportError on import: the peer is missing
    monkeypatch.setitem(sys.modules, "pyoperon", None)
    monkeypatch.setitem(sys.modules, "pyoperon.sklearn", None)
    msg = _peer_missing("operon")
    assert msg.startswith("operon is not installed")
    assert msg.endswith(": .venv/bin/pip install -e '.[bench]'")


def test_bench_feynman_refuses_a_missing_peer_before_running(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "kan", None)
    code = main(["bench", "feynman", "--equations", "I.12.1", "--peers", "pykan"])
    assert code == 2
    err = capsys.readouterr().err
    assert "pykan is not installed" in err and "[bench]" in err and "Traceback" not in err


def test_pykan_formula_maps_back_to_raw_variables():
    # a formula in pykan's model space (x_i scaled to [-1, 1], y standardised) and its raw form
    # must give the same raw predictions; x_1 * x_2 is not invariant under either affine map
    import numpy as np
    import sympy

    from kamoe.bench.peers import _to_raw
    from kamoe.data import load
    from kamoe.symbolic import evaluate

    ds = load("feynman:I.12.1", seed=0, n=200)
    x1, x2 = sympy.symbols("x_1 x_2")
    model_space = 0.7 * x1 * x2 - 0.2 * sympy.sin(x1) + 0.1
    raw = _to_raw(model_space, ds)
    assert {s.name for s in raw.free_symbols} == set(ds.feature_names)
    pred_model = evaluate(model_space, [x1, x2], ds.X_train)
    want = ds.y_scaling.invert(pred_model.reshape(-1, 1)).ravel()
    got = evaluate(raw, [sympy.Symbol(n) for n in ds.feature_names], ds.raw_X("train"))
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)


def test_operon_infix_parses_into_the_dataset_names():
    import sympy

    from kamoe.bench.peers import _parse_operon, operon_budget

    mu, nn = sympy.symbols("mu Nn")
    text = "(1.5 + ((-2.0) * ((v0 ^ 2) / sqrt(v1)))) - exp((-0.5) * v1)"  # Operon's own style
    got = _parse_operon(text, ["mu", "Nn"])
    assert sympy.simplify(got - (1.5 - 2 * mu**2 / sympy.sqrt(nn) - sympy.exp(-nn / 2))) == 0
    # Operon's max_time leaves time for scoring: 6 s of 60, 30 % of a short budget, never < 1 s
    assert operon_budget(60) == 54 and operon_budget(5) == 3 and operon_budget(0.5) == 1


@pytest.mark.skipif(_not_installed("pyoperon"), reason="pyoperon not installed "
                    "(the bench extra: .venv/bin/pip install -e '.[bench]')")
def test_operon_row_on_an_easy_equation():
    from kamoe.bench.peers import run
    from kamoe.data import load

    ds = load("feynman:I.12.1", seed=0, n=400)
    row = run("operon", ds, 4.0, seed=0)  # 4 s budget: max_time 2 s
    _check_row(row, "operon", ds)
    assert row["method"] == "operon"
    # Operon's own evaluation of its model and the parsed formula agree (the parse is right)
    assert row["network_r2"] == pytest.approx(row["r2_test"], abs=1e-4)


@pytest.mark.skipif(_not_installed("kan"), reason="pykan not installed "
                    "(the bench extra: .venv/bin/pip install -e '.[bench]')")
def test_pykan_row_on_an_easy_equation(monkeypatch):
    import kamoe.bench.peers as peers
    from kamoe.data import load

    # the real recipe at a small size (the benchmark runs the tutorial's): 3 LBFGS steps per fit,
    # one sum and one product node, a two-function library, so the test takes seconds
    monkeypatch.setattr(peers, "PYKAN_STEPS", 3)
    monkeypatch.setattr(peers, "PYKAN_WIDTH_HIDDEN", [1, 1])
    monkeypatch.setattr(peers, "PYKAN_LIB", ["x", "x^2"])
    monkeypatch.setattr(peers, "PYKAN_SYMBOLIC_POINTS", 50)
    ds = load("feynman:I.12.1", seed=0, n=200)
    row = peers.run("pykan", ds, 60.0, seed=0)
    _check_row(row, "pykan", ds)
    assert row["method"] == "pykan", row["formula"]  # every stage ran, the formula was scored
    # the pruned network was scored in raw units: F = mu * Nn is one product node's output
    assert row["network_r2"] > 0.99


def test_run_peer_kills_a_peer_at_the_limit(monkeypatch):
    import kamoe.bench.feynman as fb

    # no allowance to start or to overrun: the child cannot finish
    monkeypatch.setattr(fb, "_GRACE", 0.0)
    monkeypatch.setattr(fb, "_STARTUP", 0.0)
    job = {"id": "I.12.1", "peer": "operon", "limit": 0.05, "seed": 0, "noise": 0.0,
           "paths": ["kan"]}
    row = fb.run_peer(job)
    assert row["method"] == "timeout" and row["recovered"] is False
    assert row["runner"] == "operon" and "did not start within 0 s" in row["formula"]
    assert row["seconds"] < 10  # killed, not waited for


# ---------------------------------------------------------------------------- MLP-KAN (issue #13)


def test_mlpkan_paper_table_is_the_papers_and_maps_to_the_registry():
    from kamoe.bench.mlpkan import MODELS, PAPER_RMSE, PAPER_TABLE2, PYKAN_RANGES, lowest
    from kamoe.data import feynman_equation

    assert len(PAPER_TABLE2) == 30
    counts = dict.fromkeys(MODELS, 0)
    for label, eq_id, *_ in PAPER_TABLE2:
        counts[lowest({m: PAPER_RMSE[(label, m)] for m in MODELS})] += 1
        # every pykan range names exactly the registry's variables of that equation
        assert set(PYKAN_RANGES[eq_id]) == set(feynman_equation(eq_id).names), eq_id
    assert counts == {"mlp-kan": 20, "kan": 10, "mlp": 0}  # the paper's own count (its text)


def test_mlpkan_baselines_match_the_mixture_parameter_count():
    from kamoe.bench.mlpkan import _n_params, model_config
    from kamoe.data import load

    for ds in (load("feynman:I.12.1", n=40), load("digits")):
        target = _n_params(ds, model_config("mlp-kan", ds))
        for model in ("mlp", "kan"):
            cfg = model_config(model, ds)
            assert cfg["n_experts"] == 1 and cfg["n_kan"] == int(model == "kan")
            got = _n_params(ds, cfg)
            assert abs(got - target) / target < 0.01  # "comparable": within 1 %
            for h in (cfg["ffn_hidden"] - 2, cfg["ffn_hidden"] + 2):  # and no even width closer
                assert abs(_n_params(ds, {**cfg, "ffn_hidden": h}) - target) >= abs(got - target)


def _cifar_archive(path: Path, n: int = 12, **override) -> Path:
    rng = np.random.default_rng(0)
    arrays = {"x_train": rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8),
              "y_train": np.arange(n) % 10, "x_test": rng.integers(0, 256, (4, 32, 32, 3),
                                                                   dtype=np.uint8),
              "y_test": np.arange(4) % 10}
    arrays.update(override)
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return path


def test_mlpkan_smoke_json_resume_and_cifar(tmp_path, capsys):
    out = tmp_path / "mk.md"
    archive = _cifar_archive(tmp_path / "cifar.npz")
    args = ["bench", "reproduce", "mlpkan", "--equations", "I.12.1", "--max-epochs", "1",
            "--cifar10", str(archive), "--parts", "function,vision", "--out", str(out), "--json"]
    assert main(args + ["--seeds", "1"]) == 0
    first = json.loads(capsys.readouterr().out)
    saved = json.loads(out.with_suffix(".json").read_text())
    assert len(saved) == 3 + 2 * 3  # 3 Feynman models + 3 models on digits and on CIFAR-10
    assert {r["model"] for r in first["rows"]} == {"kan", "mlp", "mlp-kan"}
    assert {(v["dataset"], v["model"]) for v in first["vision"]} == {
        (d, m) for d in ("digits", "cifar10") for m in ("kan", "mlp", "mlp-kan")}
    # --resume with a second seed: only the 3 new Feynman fits run, the first ones are kept
    resumed = args + ["--seeds", "2", "--parts", "function", "--resume"]
    assert main(resumed) == 0
    captured = capsys.readouterr()
    assert "3 fits asked, 3 already in" in captured.err or "6 fits asked, 3 already" in (
        captured.err)
    result = json.loads(captured.out)
    saved = json.loads(out.with_suffix(".json").read_text())
    assert len(saved) == 9 + 3 and saved[:9] == json.loads(json.dumps(saved[:9]))
    for row in result["rows"]:  # JSON shape asked by issue 13
        assert {"equation", "model", "rmse", "rmse_per_seed", "seeds"} <= set(row)
        assert row["equation"] == "I.12.1" and row["seeds"] == [0, 1]
        assert row["rmse"] == pytest.approx(float(np.mean(row["rmse_per_seed"])))
        old = next(r for r in first["rows"] if r["model"] == row["model"])
        assert row["rmse_per_seed"][0] == old["rmse_per_seed"][0]  # seed 0 reused, not refit
    assert result["counts"]["rows_compared"] == 1
    routing = {r["data"] for r in result["routing"]}
    assert routing == {"feynman"}  # only the function part was asked this time
    table = out.read_text()
    assert "| I.12.1 | I.12.1 |" in table and "9.22e-03" in table  # the paper's KAN value


def test_mlpkan_keeps_finished_fits_when_a_later_fit_fails(tmp_path):
    import argparse

    from kamoe.bench.jobs import _run_jobs
    from kamoe.bench.mlpkan import _fit_one, build_jobs
    from kamoe.data import DataError

    ns = argparse.Namespace(parts="function", equations="I.12.1", ranges="pykan", seeds=1,
                            first_seed=0, max_epochs=1, cifar10=None, jobs=1, backend="loky",
                            address=None,
                            out=str(tmp_path / "cut.md"))
    jobs = build_jobs(ns)[:2]
    jobs[1] = {**jobs[1], "options": {**jobs[1]["options"], "n": 3}}  # fails inside the worker
    with pytest.raises(DataError, match="too small"):
        _run_jobs(ns, jobs, worker=_fit_one)
    kept = json.loads((tmp_path / "cut.json").read_text())
    assert [r["model"] for r in kept] == [jobs[0]["model"]]


def test_mlpkan_user_errors(tmp_path, capsys):
    cases = [(["--equations", "I.99.9"], "not one of the paper's 30"),
             (["--parts", "tables"], "--parts"),
             (["--resume"], "--resume needs --out"),
             (["--cifar10", str(tmp_path / "none.npz")], "no file at")]
    for extra, needle in cases:
        assert main(["bench", "reproduce", "mlpkan", "--seeds", "1", *extra]) == 2
        err = capsys.readouterr().err
        assert err.startswith("kamoe: error:") and needle in err, (extra, err)


def test_cifar10_archive_loads_without_pickle_and_names_every_problem(tmp_path):
    from kamoe.data import DataError, load

    ds = load(f"cifar10:{_cifar_archive(tmp_path / 'ok.npz')}", n_train=10)
    assert ds.X_train.shape == (10, 3, 32, 32) and ds.X_train.dtype == np.float32
    assert 0 <= ds.X_train.min() and ds.X_train.max() <= 1 and ds.output_dim == 10
    channels_first = np.zeros((12, 3, 32, 32), np.uint8)
    assert load(f"cifar10:{_cifar_archive(tmp_path / 'cf.npz', x_train=channels_first)}"
                ).X_train.shape == (12, 3, 32, 32)
    text = tmp_path / "text.npz"
    text.write_text("not an archive")
    single = tmp_path / "single.npy"
    np.save(single, np.zeros((2, 32, 32, 3), np.uint8))
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, x_train=np.array([{"a": 1}], dtype=object), y_train=[0], x_test=[0],
             y_test=[0])
    cases = [
        (text, "is not a NumPy .npz archive"),
        (single, "single array (.npy)"),
        (pickled, "pickled Python objects"),
        (_cifar_archive(tmp_path / "nokey.npz", y_test=None), "lacks y_test"),
        (_cifar_archive(tmp_path / "float.npz", x_train=np.zeros((12, 32, 32, 3))),
         "must be uint8"),
        (_cifar_archive(tmp_path / "shape.npz", x_train=np.zeros((12, 28, 28), np.uint8)),
         "expected (n, 32, 32, 3)"),
        (_cifar_archive(tmp_path / "label.npz", y_train=np.arange(12)), "labels are 0..9"),
        (_cifar_archive(tmp_path / "count.npz", y_test=np.arange(3)), "3 labels for 4 images"),
    ]
    for path, needle in cases:
        with pytest.raises(DataError, match=re.escape(needle)):
            load(f"cifar10:{path}")


def test_gpu_bench_says_it_needs_cuda_without_one(capsys, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(["bench", "gpu"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "needs a CUDA device" in err
    assert main(["bench", "gpu", "--device", "cpu"]) == 2  # the CPU is not what it times
    assert "CUDA devices only" in capsys.readouterr().err


def test_routing_bench_reports_mixtures_and_label_trained_ceilings(capsys):
    """`bench routing` on a short series: both gates' NMI for the mixture, and the ceiling of the
    gates trained with the regime labels, which must tell the regimes apart (far from chance)."""
    assert main(["bench", "routing", "--seeds", "1", "--first-seed", "4", "--epochs", "3",
                 "--json", "--data-option", "n=1500"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    mixture = {r["setting"]: r for r in rows if r["part"] == "mixture"}
    ar, likelihood = "likelihood mixture, GRU + AR(2) experts", "likelihood mixture (GRU-read gate)"
    assert set(mixture) == {"dashboard mixture", likelihood, ar,
                            "squared-error mixture (softmax + MI, per step)", "paper gate"}
    assert mixture["dashboard mixture"]["gate"] == {
        "gate_activation": "softmax", "gate_loss": "none",
        "gate_input": "auto", "mixture_loss": "switching", "units": 2, "expert_lags": 0}
    assert mixture[likelihood]["gate"] == {
        "gate_activation": "softmax", "gate_loss": "mutual_information",
        "gate_input": "recurrent", "mixture_loss": "likelihood", "units": 2, "expert_lags": 0}
    assert mixture[ar]["gate"] == {**mixture[likelihood]["gate"], "expert_lags": 2}
    assert mixture["squared-error mixture (softmax + MI, per step)"]["gate"] == {
        "gate_activation": "softmax", "gate_loss": "mutual_information", "gate_input": "auto",
        "mixture_loss": "mse", "units": 32, "expert_lags": 0}
    assert mixture["paper gate"]["gate"] == {"gate_activation": "sigmoid", "gate_loss": "none",
                                             "gate_input": "auto", "mixture_loss": "mse",
                                             "units": 32, "expert_lags": 0}
    assert all(0 <= r["nmi"] <= 1 and r["epochs"] <= 3 and r["seed"] == 4
               for r in mixture.values())
    ceiling = {r["setting"]: r for r in rows if r["part"] == "ceiling"}
    assert len(ceiling) == 4
    # Trees on the window's values and differences: ~0.85 accuracy on the full series.
    assert ceiling["gradient-boosted trees (values + differences)"]["accuracy"] > 0.6
    assert ceiling["window gate (all values)"]["nmi"] > 0.1
    assert main(["bench", "routing", "--parts", "mixture,nope"]) == 2
    assert "--parts takes" in capsys.readouterr().err
    assert main(["bench", "routing", "--settings", "dashboard,best"]) == 2
    assert "--settings takes dashboard, likelihood" in capsys.readouterr().err
    assert main(["bench", "routing", "--first-seed", "-1"]) == 2
    assert "--first-seed must be >= 0" in capsys.readouterr().err
