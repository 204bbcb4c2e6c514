"""Tests for `python -m kamoe` (run as a real subprocess where the exit status matters)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from kamoe.cli import main


def run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kamoe", *args], capture_output=True,
                          text=True, timeout=timeout)


def test_train_json_reports_required_fields(tmp_path):
    out = run_cli("train", "--dataset", "feynman:I.12.1", "--model", "kan", "--epochs", "15",
                  "--json", "--save", str(tmp_path / "model"))
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    for key in ("dataset", "model", "params", "seconds", "metrics"):
        assert key in result
    assert {"r2", "rmse"} <= set(result["metrics"])
    assert result["metrics"]["r2"] > 0.9  # 15 LBFGS epochs already fit this smooth product
    assert (tmp_path / "model" / "config.json").is_file()
    assert "Traceback" not in out.stderr


def test_classification_json_reports_accuracy(capsys):
    code = main(["train", "--dataset", "moons", "--model", "mlp", "--epochs", "3", "--json"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert "accuracy" in result["metrics"]


def test_user_errors_exit_2_with_one_line_and_no_traceback():
    cases = [
        ("train", "--dataset", "feynman:I.6.2x", "--model", "kan"),
        ("train", "--dataset", "diabetes", "--model", "nope"),
        ("train", "--dataset", "diabetes", "--model", "kan", "--config", '{"grid_size": 0}'),
        ("train", "--dataset", "diabetes", "--model", "kan", "--config", "not json"),
        ("train", "--dataset", "csv:/no/such/file.csv", "--model", "mlp"),
        ("train", "--dataset", "diabetes", "--model", "gru"),
    ]
    for args in cases:
        out = run_cli(*args, timeout=120)
        assert out.returncode == 2, (args, out.stderr)
        lines = [line for line in out.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("kamoe: error:"), (args, out.stderr)


def test_datasets_lists_the_catalog(capsys):
    assert main(["datasets"]) == 0
    text = capsys.readouterr().out
    for name in ("feynman", "california", "regimes", "crypto", "csv", "digits"):
        assert name in text
    assert main(["datasets", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data["feynman_ids"]) == 100


def test_same_seed_gives_identical_results(capsys):
    results = []
    for _ in range(2):
        assert main(["train", "--dataset", "diabetes", "--model", "mlp", "--epochs", "2",
                     "--seed", "7", "--json"]) == 0
        results.append(json.loads(capsys.readouterr().out)["metrics"])
    assert results[0] == results[1]


def test_train_json_reports_routing_specialisation_for_mixtures(capsys):
    code = main(["train", "--dataset", "regimes", "--model", "kamoe-gru", "--epochs", "1",
                 "--json", "--data-option", "n=300", "--data-option", "window=8"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    routing = out["routing"]
    assert "starts" not in out  # one initialisation
    assert routing["group_by"] == "regime" and routing["split"] == "test"
    assert 0 <= routing["nmi"] <= 1 and routing["verdict"]
    assert routing["gates"]["net.0"]["nmi"] == routing["nmi"]
    assert main(["train", "--dataset", "regimes", "--model", "kamoe-gru", "--epochs", "1",
                 "--data-option", "n=300", "--data-option", "window=8", "--no-store"]) == 0
    text = capsys.readouterr().out  # the text report says the same, in words
    assert f"routing of the test regimes: {routing['verdict']}" in text
    assert main(["train", "--dataset", "regimes", "--model", "kamoe-gru", "--epochs", "1",
                 "--data-option", "n=300", "--data-option", "window=8", "--no-store",
                 "--train-config", '{"starts": 2}', "--json"]) == 0
    out = json.loads(capsys.readouterr().out)  # several initialisations: each one's best
    assert [s["start"] for s in out["starts"]] == [1, 2] and out["kept_start"] in (1, 2)
    assert main(["train", "--dataset", "regimes", "--model", "kamoe-gru", "--epochs", "1",
                 "--data-option", "n=300", "--data-option", "window=8", "--no-store",
                 "--train-config", '{"starts": 2}']) == 0
    assert "of 2 initialisations (best validation loss of each: " in capsys.readouterr().out
    assert main(["train", "--dataset", "moons", "--model", "mlp", "--epochs", "1", "--json"]) == 0
    assert "routing" not in json.loads(capsys.readouterr().out)  # no gate, no routing block


def test_device_option_trains_on_the_cpu_and_refuses_an_absent_gpu(capsys):
    import torch

    assert main(["train", "--dataset", "friedman1", "--model", "kan", "--epochs", "2",
                 "--device", "cpu", "--no-store", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["metrics"]["r2"] > 0  # it trained
    if torch.cuda.is_available():
        return  # the refusal below needs a machine without CUDA
    out = run_cli("train", "--dataset", "friedman1", "--model", "kan", "--device", "cuda",
                  "--no-store", timeout=120)
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert out.returncode == 2 and len(lines) == 1, out.stderr
    assert "'cuda' is not present" in lines[0] and "'cpu'" in lines[0]


def test_formula_reads_the_kan_with_paths_kan_and_refuses_an_unknown_path(capsys):
    # --paths kan: the formula must come from a trained KAN (method kan-*), not a data search
    assert main(["formula", "--dataset", "feynman:I.12.1", "--paths", "kan", "--time-limit",
                 "60", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["method"].startswith("kan") and out["recovered"], out
    assert main(["formula", "--dataset", "feynman:I.12.1", "--paths", "kan,magic"]) == 2
    err = capsys.readouterr().err
    assert "magic" in err and "choose from kan, monomial, index" in err


def test_runs_prune_and_extend_grid_store_a_derived_run(capsys, tmp_path, monkeypatch):
    """`kamoe runs prune` / `runs extend-grid` make a new stored run from a stored KAN (the
    parent is kept), report the change, and refuse a bad setting or a non-KAN run with exit 2."""
    from kamoe.store import RunStore

    monkeypatch.setenv("KAMOE_HOME", str(tmp_path))
    assert main(["train", "--dataset", "feynman:I.12.1", "--model", "kan", "--epochs", "15",
                 "--json"]) == 0
    parent = json.loads(capsys.readouterr().out)["run_id"]
    assert main(["runs", "prune", parent[:6], "--edge-threshold", "0.2", "--json"]) == 0
    pruned = json.loads(capsys.readouterr().out)
    assert pruned["parent"] == parent and pruned["step"] == "prune"
    assert pruned["params_after"] <= pruned["params_before"]
    assert main(["runs", "extend-grid", parent, "--grid", "10", "--json"]) == 0
    finer = json.loads(capsys.readouterr().out)
    assert finer["settings"] == {"grid_before": 5, "grid_size": 10}
    assert finer["params_after"] > finer["params_before"]
    store = RunStore()
    ids = {r.id for r in store.list()}
    assert {parent, pruned["run_id"], finer["run_id"]} <= ids
    assert store.get(finer["run_id"]).derivation["parent"] == parent

    assert main(["train", "--dataset", "moons", "--model", "mlp", "--epochs", "2",
                 "--json"]) == 0
    mlp = json.loads(capsys.readouterr().out)["run_id"]
    env = {"KAMOE_HOME": str(tmp_path)}
    for args, words in ((("runs", "extend-grid", parent, "--grid", "4"), "more intervals"),
                        (("runs", "prune", parent, "--edge-threshold", "-1"), ">= 0"),
                        (("runs", "prune", mlp), "plain B-spline KAN")):
        out = subprocess.run([sys.executable, "-m", "kamoe", *args], capture_output=True,
                             text=True, timeout=300, env={**os.environ, **env})
        assert out.returncode == 2, out.stderr
        assert words in out.stderr and "Traceback" not in out.stderr
    assert {r.id for r in store.list()} == ids | {mlp}  # nothing stored by the refusals
