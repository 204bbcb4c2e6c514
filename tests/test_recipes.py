"""Recipes (kamoe/recipes.py): every default written once and taken by every entry point."""

from __future__ import annotations

import json

import numpy as np
import pytest

from kamoe import recipes
from kamoe.data import load
from kamoe.data.arrays import from_arrays
from kamoe.models import DEFAULTS, build, model_names
from kamoe.nn.fasterkan import NORMS
from kamoe.nn.gates import GATES
from kamoe.nn.kan import ACTIVATIONS
from kamoe.train import TrainingError


def test_setting_choices_come_from_the_modules_and_every_choice_builds():
    assert recipes.SETTING_CHOICES["base_activation"] == list(ACTIVATIONS)  # elu, zero too
    assert {"elu", "zero"} <= set(recipes.SETTING_CHOICES["base_activation"])
    assert recipes.SETTING_CHOICES["gate"] == list(GATES)
    assert recipes.SETTING_CHOICES["kan_norm"] == list(NORMS)
    shapes = {"tokenizer": None}  # the tokenizer's choices depend on the input; checked below
    for key, choices in recipes.SETTING_CHOICES.items():
        if key in shapes:
            continue
        name = next(n for n in model_names() if key in DEFAULTS[n] and "transformer" not in n)
        shape = (6, 2) if name.endswith(("gru", "lstm")) else (4,)
        # the experts of a likelihood mixture predict the target: one recurrent layer
        extra = {"layers": 1} if key == "mixture_loss" else {}
        for choice in choices:
            # a switching mixture models one series whose next value is the target
            shape = (6, 1) if choice == "switching" else shape
            build(name, shape, 1, **{key: choice}, **extra)  # ModelError if a choice is invalid
    for tokenizer, shape in (("auto", (4,)), ("tabular", (4,)), ("sequence", (6, 2)),
                             ("image", (4, 4))):
        assert tokenizer in recipes.SETTING_CHOICES["tokenizer"]
        build("mlp-kan-transformer", shape, 1, tokenizer=tokenizer, d_model=8, n_heads=2,
              ffn_hidden=8, depth=1)


def test_training_schedules():
    feynman, diabetes, regimes = load("feynman:II.3.24"), load("diabetes"), load("regimes")
    kan = recipes.training_config("kan", feynman, seed=4)
    assert (kan.optimizer, kan.lr, kan.epochs, kan.batch_size, kan.grid_update_epochs,
            kan.patience, kan.seed) == ("lbfgs", 1.0, 60, None, 10, 15, 4)
    # A small table (diabetes: 10 features, 354 training rows) gets the same full-batch schedule;
    # a large one (6000 rows) or another model gets Adam. And `kamoe train --dataset regimes
    # --model kamoe-gru` keeps the schedule it had before the recipes existed (Adam 3e-3,
    # 200 epochs, batch 128, patience 30).
    assert recipes.training_config("kan", diabetes).optimizer == "lbfgs"
    rng = np.random.default_rng(0)
    large = from_arrays(rng.normal(size=(8000, 3)), rng.normal(size=8000))
    assert len(large.X_train) > recipes.SMALL_TABLE["max_rows"]
    for name, ds in (("kan", large), ("mlp", feynman), ("kamoe-gru", regimes)):
        cfg = recipes.training_config(name, ds)
        assert (cfg.optimizer, cfg.lr, cfg.epochs, cfg.batch_size, cfg.patience) == (
            "adam", 3e-3, 200, 128, 30), name
    assert recipes.training_config("kan", feynman, epochs=7, max_seconds=2.0).epochs == 7
    with pytest.raises(TrainingError, match="unknown training setting"):
        recipes.training_config("kan", feynman, epoch=3)


def test_the_cli_trains_with_the_recipe_and_stores_the_run(capsys):
    from kamoe.cli import main
    from kamoe.store import RunStore

    assert main(["train", "--dataset", "feynman:II.3.24", "--model", "kan", "--epochs", "2",
                 "--seed", "3", "--data-option", "n=200", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    stored = RunStore().get(result["run_id"])  # KAMOE_HOME: the test session's store
    ds = load("feynman:II.3.24", seed=3, n=200)
    assert stored.train_config == recipes.training_config("kan", ds, epochs=2, seed=3)
    assert stored.source == "cli" and stored.request.options == {"n": 200}
    assert stored.history.metrics == result["metrics"]
    assert main(["train", "--dataset", "moons", "--model", "mlp", "--epochs", "1", "--no-store",
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["run_id"] is None


def test_one_reference_table_for_the_compare_page_and_the_benchmark():
    from kamoe.bench import reproduce

    assert reproduce.CALIFORNIA_REF is recipes.CALIFORNIA_REF
    assert reproduce.CRYPTO_REF is recipes.CRYPTO_REF
    table = recipes.california_reference_table()
    assert len(table) == 10  # 5 published widths x 2 base models
    row = table[(table.units == 25) & (table.base == "KANLinear")].iloc[0]
    assert row["KAMoE L2"] == recipes.CALIFORNIA_REF[("kan", "kamoe", 25, 2)] == 0.769552
    bars = recipes.california_reference(100)
    assert len(bars) == 6 and bars.r2.tolist()[2] == recipes.CALIFORNIA_REF[("mlp", "kamoe",
                                                                              100, 1)]


def test_comparison_grid():
    tab, seq = load("moons"), load("regimes", n=400)
    names = [n for n, _ in recipes.compare_variants(tab, ["mlp", "kan"], 10)]
    assert names == ["mlp", "moe-mlp", "kamoe-mlp", "kan", "moe-kan", "kamoe-kan"]
    assert dict(recipes.compare_variants(tab, ["kan"], 5))["kan"] == {"hidden": [5],
                                                                       "head": "linear"}
    assert recipes.compare_bases(seq) == ["gru", "lstm"] and recipes.compare_epochs(seq) == 5
    assert [recipes.gate_label(n) for n in ("mlp", "moe-mlp", "kamoe-gru", "mlp-kan")] == [
        "-", "GRN", "GRKAN", "-"]
    cfg = recipes.compare_training_config(15, 10.0, seed=2)
    assert (cfg.optimizer, cfg.lr, cfg.epochs, cfg.max_seconds, cfg.patience) == (
        "adam", 1e-2, 15, 10.0, None)


def test_device_choices_appear_only_with_a_gpu(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert recipes.device_choices() == []  # the Train form then shows no device setting
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert recipes.device_choices() == ["auto", "cpu", "cuda"]
    assert recipes.training_config("kan", load("friedman1", seed=0)).device == "auto"
