"""`kamoe sweep`: the grid, cells equal to `kamoe train`, the JSONL file, resuming after a kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from kamoe.cli import main
from kamoe.sweep import SweepError, parse_grid, plan, read_results

ROOT = Path(__file__).resolve().parents[1]
DATA = ["--dataset", "feynman:II.3.24", "--data-option", "n=300"]


def test_plan_applies_each_setting_to_the_models_that_have_it():
    grid = parse_grid('{"grid_size": [3, 5], "lr": [0.1, 0.01], "hidden": [[4]]}')
    cells = plan("friedman1", {}, ["kan", "mlp"], grid, range(2))
    kan = [c for c in cells if c["model"] == "kan"]
    mlp = [c for c in cells if c["model"] == "mlp"]
    assert len(kan) == 2 * 2 * 2 and len(mlp) == 2 * 2  # (grid x lr) x seeds; lr x seeds
    assert {json.dumps(c["settings"]) for c in mlp} == {'{"hidden": [4]}'}
    assert kan[0]["train"] == {"lr": 0.1} and kan[0]["settings"] == {"grid_size": 3,
                                                                      "hidden": [4]}
    assert [c["seed"] for c in cells[:6]] == [0] * 6  # seed outermost: all cells, then again
    with pytest.raises(SweepError, match=r"\['grid_sise'\] are neither a training setting"):
        plan("friedman1", {}, ["kan"], {"grid_sise": [3]}, range(1))
    with pytest.raises(SweepError, match="cannot hold 'seed'"):
        plan("friedman1", {}, ["kan"], {"seed": [1]}, range(1))
    with pytest.raises(ValueError, match="unknown model 'kam'"):
        plan("friedman1", {}, ["kam"], {}, range(1))


def test_a_cell_is_the_run_kamoe_train_makes(tmp_path, capsys):
    out = tmp_path / "s.jsonl"
    assert main(["sweep", *DATA, "--models", "kan", "--grid", '{"grid_size": [3]}',
                 "--epochs", "4", "--seeds", "1", "--first-seed", "2", "--out", str(out),
                 "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["cells"], result["ran"], result["skipped"]) == (1, 1, 0)
    row = json.loads(out.read_text())
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # what every sweep cell runs with
    try:
        assert main(["train", *DATA, "--model", "kan", "--config", '{"grid_size": 3}',
                     "--epochs", "4", "--seed", "2", "--json"]) == 0
    finally:
        torch.set_num_threads(before)
    trained = json.loads(capsys.readouterr().out)
    assert row["metrics"] == trained["metrics"] and row["params"] == trained["params"]
    assert result["summary"][0]["r2"] == row["metrics"]["r2"] and row["seed"] == 2


def test_a_killed_sweep_resumes_where_it_stopped(tmp_path, capsys):
    out = tmp_path / "s.jsonl"
    args = [*DATA, "--models", "kan", "--grid", '{"grid_size": [3, 4, 5, 6]}', "--epochs", "10",
            "--seeds", "3", "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "kamoe", "sweep", *args], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None:
            if out.exists() and out.read_text().count("\n") >= 2:
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(10)
    kept = out.read_text().splitlines()
    assert 2 <= len(kept) < 12, "the sweep should be killed part-way through its 12 cells"
    with out.open("a") as fh:
        fh.write(kept[0][:40])  # as if the kill had cut a line in half
    assert main(["sweep", *args, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["skipped"], result["ran"]) == (len(kept), 12 - len(kept))
    lines = out.read_text().splitlines()
    assert lines[:len(kept)] == kept and len(lines) == 12  # the half line is gone
    assert len({(json.loads(r)["settings"]["grid_size"], json.loads(r)["seed"])
                for r in lines}) == 12
    assert main(["sweep", *args, "--json"]) == 0  # all done: nothing runs again
    assert json.loads(capsys.readouterr().out)["ran"] == 0


def test_results_files_it_cannot_use_are_refused(tmp_path, capsys):
    other = tmp_path / "other.jsonl"
    other.write_text(json.dumps({"dataset": "friedman1", "data_options": {}, "model": "kan",
                                 "settings": {}, "train": {}, "seed": 0}) + "\n")
    junk = tmp_path / "junk.jsonl"
    junk.write_text("not json\n")
    for path, needle in ((other, "holds results of a sweep on friedman1"),
                         (junk, "line 1 of")):
        assert main(["sweep", *DATA, "--models", "kan", "--out", str(path)]) == 2
        err = capsys.readouterr().err
        assert needle in err and ("another --out" in err or "new --out" in err)
    assert read_results(tmp_path / "none.jsonl", "friedman1", {}) == {}


def test_user_errors_exit_2_with_one_line(tmp_path, capsys):
    out = str(tmp_path / "s.jsonl")
    cases = [(["--models", "kan", "--grid", "{bad"], "--grid must be a JSON object"),
             (["--models", "kan", "--grid", '{"hidden": [[0]]}'], "positive integer"),
             (["--models", "kan", "--grid", '{"optimizer": ["sgd"]}'], "optimizer must be"),
             (["--models", "kan", "--backend", "loky", "--address", "tcp://127.0.0.1:1"],
              "--address needs --backend dask or ray"),
             (["--models", " ", "--seeds", "1"], "--models is empty"),
             (["--models", "kan", "--device", "tpu"], "device must be one of auto, cpu")]
    for extra, needle in cases:
        assert main(["sweep", *DATA, "--out", out, *extra]) == 2
        err = capsys.readouterr().err
        assert needle in err and err.count("\n") == 1, err
    assert not Path(out).exists()


def test_device_option_reaches_every_cell_and_an_absent_one_is_refused(tmp_path, capsys,
                                                                       monkeypatch):
    out = tmp_path / "s.jsonl"
    assert main(["sweep", *DATA, "--models", "kan", "--epochs", "2", "--device", "cpu",
                 "--out", str(out), "--json"]) == 0
    assert json.loads(out.read_text())["device"] == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # whatever this machine has
    assert main(["sweep", *DATA, "--models", "kan", "--device", "cuda",
                 "--out", str(tmp_path / "t.jsonl")]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "'cuda' is not present" in err and not (tmp_path / "t.jsonl").exists()
