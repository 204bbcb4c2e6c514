"""`kamoe bench reproduce mlpkan`: the MLP-KAN paper's experiments (arXiv 2410.03027) beside its
numbers, at the scale of a 2-core CPU.

Room: ``kamoe/bench`` (benchmark commands that print tables; the results live in BENCHMARKS.md).
Contract: ``add_arguments(parser)`` fills the ``mlpkan`` sub-command of ``bench reproduce`` and
``run(args)`` runs it; every fit is one job for ``reproduce._run_jobs`` (one process, one torch
thread each), saved to ``--out``'s JSON as soon as it finishes, so a cut-short run keeps what it
has and ``--resume`` runs only what is missing. The paper's numbers are those transcribed in
shared/reference/papers.md section 5.3 (Table 2, Table 3's CIFAR-10 column, Tables 4-5).

Three claims are tested:

1. Function learning (Table 2): on the paper's 30 Feynman equations MLP-KAN has the lowest test
   RMSE on 20, KAN on 10 and the MLP on none.
2. Routing: function-learning inputs go to the KAN experts, representation inputs to the MLP
   experts. Measured as the share of routed token slots that go to KAN experts, per layer, on
   the Feynman tasks against digits (from the same MLP-KAN fits).
3. Representation learning and ablations (Tables 3-5): MLP ~ MLP-KAN > KAN; 10 experts best
   (4 < 6 < 8 < 10); top-1 = top-2 > top-3. Run on ``digits`` (8x8 images, 2x2 patches as
   tokens) and, when the user passes ``--cifar10 ARCHIVE``, on CIFAR-10 (4x4 patches).

The protocol, where the paper leaves it open, and why each choice:

* Equations and sampling: the paper's 30 labels are the first 30 entries of pykan's
  ``kan/feynman.py`` (KindXiaoming/pykan), in its order and spelling (its "I.18.5" is pykan's
  second "I.18.4", r F sin(theta)). So ``--ranges pykan`` (default) samples each variable
  uniformly in pykan's ranges (``PYKAN_RANGES``, copied from that file), our registry's formula
  (the correct one: pykan's I.16.6 lambda computes u*v/(1 + uv/c^2), not (u + v)/(...));
  ``--ranges registry`` keeps the AI Feynman CSV ranges of ``kamoe.data.feynman``.
  2,000 samples, half for testing: 1,000 train / 1,000 test, pykan's ``create_dataset``
  defaults. 20 % of the training half is the validation split.
* RMSE scale: reported in the target's raw units on the 1,000 test samples, which is the
  paper's scale if it trained on pykan's unnormalised data: its MLP column is close to the
  standard deviation of y in pykan's ranges on most rows (e.g. I.12.1: std 0.334, its MLP
  0.334; I.6.20a: 0.139 vs 0.137), i.e. it behaves like a constant prediction on raw targets.
  Also reported: the RMSE divided by the standard deviation of the test targets (``nrmse``,
  scale-free), and the paper's values divided by the same standard deviation. Models train on
  standardised targets (MSE), as every Feynman fit in kamoe does.
* Models: all three are the registry's ``mlp-kan-transformer`` and differ only in the
  feed-forward: ``mlp-kan`` = the paper's mixture (8 experts, 4 MLP + 4 FasterKAN, top-2,
  FasterKAN with LayerNorm as in the paper's code); ``mlp`` = one MLP feed-forward; ``kan`` =
  one FasterKAN feed-forward. The one-expert models' ``ffn_hidden`` is chosen so their
  trainable parameter count is the closest to the mixture's (``matched_ffn_hidden``):
  "comparable parameter counts" read as equal total parameters. Backbone ``BACKBONE``: width
  32, 2 blocks, 4 heads, feed-forward hidden 64, no dropout; the paper's 12 layers, 8 heads and
  dropout 0.1 do not fit the CPU budget (a fit would cost ~6x more).
* Tokens of a tabular row: one per variable, v * w_i + b_i (the registry's ``tabular``
  tokenizer, as FT-Transformer), plus a learned [CLS] token that the head reads.
* Training (``FUNCTION_TRAIN``): Adam lr 1e-3, batch 64, MSE, at most 80 epochs, early stopping
  on the validation MSE (patience 20, best weights restored: "the lowest test RMSE from
  validation"), learning rate x0.5 after 8 epochs without improvement. The paper's batch 4 and
  lr 5e-5 "until convergence" would take ~16x more steps per epoch; at batch 64 a larger lr
  is the usual counterpart.
* Images (``VISION_TRAIN``): same backbone, patches of 2x2 (digits, 16 tokens) or 4x4
  (CIFAR-10, 64 tokens), Adam 1e-3, batch 64, cross-entropy, at most 40 epochs (CIFAR-10: 10),
  patience 10, x0.5 after 5; accuracy on the test split. Ablations vary only ``n_experts``
  (half of them KAN, as in the paper's 4 + 4) or ``k``; their parameter counts grow with the
  number of experts, as the paper's must.
* Seeds: seed s draws the data sample/split, the initial weights and the batch order (3 seeds
  by default); every table shows the mean and the sample standard deviation over seeds.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from kamoe.bench.reproduce import _common, _list, _load_results, _run_jobs, _seeds
from kamoe.errors import UserError

# The paper's Table 2 (papers.md 5.3): label, registry ID, test RMSE of KAN, MLP, MLP-KAN.
PAPER_TABLE2: list[tuple[str, str, float, float, float]] = [
    ("I.6.20a", "I.6.2a", 8.82e-4, 1.37e-1, 3.87e-4),
    ("I.6.20", "I.6.2", 1.42e-2, 1.20e-1, 8.44e-3),
    ("I.6.20b", "I.6.2b", 1.59e-2, 1.16e-1, 4.99e-3),
    ("I.8.4", "I.8.14", 4.58e-3, 1.91e-1, 1.23e-2),
    ("I.9.18", "I.9.18", 4.87e-3, 1.40e-2, 3.13e-3),
    ("I.10.7", "I.10.7", 2.04e-2, 3.22e-1, 1.46e-1),
    ("I.11.19", "I.11.19", 3.37e-2, 9.89e-2, 2.65e-2),
    ("I.12.1", "I.12.1", 9.22e-3, 3.34e-1, 7.17e-3),
    ("I.12.2", "I.12.2", 6.75e-3, 4.75e-2, 3.06e-3),
    ("I.12.4", "I.12.4", 5.62e-3, 4.87e-2, 3.86e-3),
    ("I.12.5", "I.12.5", 2.93e-3, 3.25e-1, 3.61e-3),
    ("I.12.11", "I.12.11", 6.38e-2, 1.85e-1, 3.56e-2),
    ("I.13.4", "I.13.4", 2.10e-2, 1.26e-1, 9.68e-3),
    ("I.13.12", "I.13.12", 8.69e-3, 3.87e-2, 9.78e-3),
    ("I.14.3", "I.14.3", 8.98e-3, 1.64e-1, 2.80e-3),
    ("I.14.4", "I.14.4", 5.13e-3, 1.11e-1, 6.79e-3),
    ("I.15.3x", "I.15.3x", 3.50e-2, 3.48e-1, 8.52e-2),
    ("I.15.3t", "I.15.3t", 3.69e-2, 3.44e-1, 7.18e-2),
    ("I.15.10", "I.15.1", 2.36e-2, 2.27e-1, 1.47e-2),
    ("I.16.6", "I.16.6", 8.73e-3, 1.45e-1, 1.06e-2),
    ("I.18.4", "I.18.4", 6.18e-3, 2.33e-1, 2.26e-2),
    ("I.18.5", "I.18.12", 5.67e-2, 2.03e-1, 4.93e-2),
    ("I.18.16", "I.18.14", 6.88e-2, 1.02e-1, 3.40e-2),
    ("I.24.6", "I.24.6", 7.99e-3, 6.20e-2, 5.87e-3),
    ("I.25.13", "I.25.13", 1.07e-2, 5.17e-1, 8.33e-3),
    ("I.26.2", "I.26.2", 2.74e-2, 4.45e-1, 1.15e-2),
    ("I.27.6", "I.27.6", 5.97e-3, 1.42e-1, 6.18e-3),
    ("I.29.4", "I.29.4", 5.27e-3, 2.26e-1, 3.45e-3),
    ("I.29.16", "I.29.16", 8.48e-2, 2.91e-1, 5.31e-2),
    ("I.30.3", "I.30.3", 2.24e-1, 4.07e-1, 1.99e-1),
]
MODELS = ("kan", "mlp", "mlp-kan")
PAPER_RMSE = {(label, m): v for label, _, *vals in PAPER_TABLE2 for m, v in zip(MODELS, vals,
                                                                                 strict=True)}
PAPER_ID = {label: eq_id for label, eq_id, *_ in PAPER_TABLE2}

_2PI = 2 * math.pi
# pykan kan/feynman.py (KindXiaoming/pykan), entries 1-30, keyed by our variable names.
PYKAN_RANGES: dict[str, dict[str, tuple[float, float]]] = {
    "I.6.2a": {"theta": (-3, 3)},
    "I.6.2": {"theta": (-1, 1), "sigma": (0.5, 2)},
    "I.6.2b": {"theta": (-1.5, 1.5), "theta1": (-1.5, 1.5), "sigma": (0.5, 2)},
    "I.8.14": {"x1": (-1, 1), "x2": (-1, 1), "y1": (-1, 1), "y2": (-1, 1)},
    "I.9.18": {"G": (-1, 1), "m1": (-1, 1), "m2": (-1, 1), "x1": (-1, -0.5), "x2": (0.5, 1),
               "y1": (-1, -0.5), "y2": (0.5, 1), "z1": (-1, -0.5), "z2": (0.5, 1)},
    "I.10.7": {"m_0": (0, 1), "v": (0, 1), "c": (1, 2)},
    "I.11.19": {name: (-1, 1) for name in ("x1", "x2", "x3", "y1", "y2", "y3")},
    "I.12.1": {"mu": (-1, 1), "Nn": (-1, 1)},
    "I.12.2": {"q1": (-1, 1), "q2": (-1, 1), "epsilon": (0.5, 2), "r": (0.5, 2)},
    "I.12.4": {"q1": (-1, 1), "epsilon": (0.5, 2), "r": (0.5, 2)},
    "I.12.5": {"q2": (-1, 1), "Ef": (-1, 1)},
    "I.12.11": {"q": (-1, 1), "Ef": (-1, 1), "B": (-1, 1), "v": (-1, 1), "theta": (0, _2PI)},
    "I.13.4": {"m": (-1, 1), "v": (-1, 1), "u": (-1, 1), "w": (-1, 1)},
    "I.13.12": {"G": (0, 1), "m1": (0, 1), "m2": (0, 1), "r1": (0.5, 2), "r2": (0.5, 2)},
    "I.14.3": {"m": (0, 1), "g": (0, 1), "z": (-1, 1)},
    "I.14.4": {"k_spring": (0, 1), "x": (-1, 1)},
    "I.15.3x": {"x": (-1, 1), "u": (-1, 1), "t": (-1, 1), "c": (1, 2)},
    "I.15.3t": {"t": (-1, 1), "u": (-1, 1), "x": (-1, 1), "c": (1, 2)},
    "I.15.1": {"m_0": (-1, 1), "v": (-0.9, 0.9), "c": (1.1, 2)},
    "I.16.6": {"u": (-0.8, 0.8), "v": (-0.8, 0.8), "c": (1, 2)},
    "I.18.4": {"m1": (0.5, 1), "r1": (-1, 1), "m2": (0.5, 1), "r2": (-1, 1)},
    "I.18.12": {"r": (-1, 1), "F": (-1, 1), "theta": (0, _2PI)},
    "I.18.14": {"m": (-1, 1), "r": (-1, 1), "v": (-1, 1), "theta": (0, _2PI)},
    "I.24.6": {"m": (0, 1), "omega": (-1, 1), "omega_0": (-1, 1), "x": (-1, 1)},
    "I.25.13": {"q": (-1, 1), "C": (0.5, 2)},
    "I.26.2": {"n": (0, 0.99), "theta2": (0, _2PI)},
    "I.27.6": {"d1": (0.5, 2), "d2": (1, 2), "n": (0.5, 2)},
    "I.29.4": {"omega": (0, 1), "c": (0.5, 2)},
    "I.29.16": {"x1": (-1, 1), "x2": (-1, 1), "theta1": (0, _2PI), "theta2": (0, _2PI)},
    "I.30.3": {"Int_0": (0, 1), "n": (0, 4), "theta": (0.4 * math.pi, 1.6 * math.pi)},
}

# Table 3 (CIFAR-10 top-1) and the ablations of Tables 4-5 (CIFAR-10 top-1), papers.md 5.3.
PAPER_CIFAR10 = {"kan": 0.904, "mlp": 0.922, "mlp-kan": 0.920}
PAPER_EXPERTS = {4: 0.908, 6: 0.914, 8: 0.920, 10: 0.928}
PAPER_TOPK = {1: 0.920, 2: 0.920, 3: 0.908}

BACKBONE: dict[str, Any] = {"d_model": 32, "depth": 2, "n_heads": 4, "ffn_hidden": 64,
                            "n_experts": 8, "n_kan": None, "k": 2, "routing": "topk",
                            "kan_norm": "layernorm", "load_balance": False}
FUNCTION_DATA = {"n": 2000, "test_size": 0.5}
FUNCTION_TRAIN: dict[str, Any] = {"epochs": 80, "optimizer": "adam", "lr": 1e-3,
                                  "batch_size": 64, "val_fraction": 0.2, "patience": 20,
                                  "plateau_patience": 8, "plateau_factor": 0.5, "min_lr": 1e-5}
VISION_TRAIN: dict[str, Any] = {**FUNCTION_TRAIN, "epochs": 40, "patience": 10,
                                "plateau_patience": 5}
VISION_EPOCHS = {"digits": 40, "cifar10": 10}
PATCH = {"digits": 2, "cifar10": 4}
EXPERTS = (4, 6, 8, 10)
TOPK = (1, 2, 3)
PARTS = ("function", "vision", "ablation")
# What makes two fits the same fit (used by --resume).
IDENTITY = ("part", "dataset", "model", "n_experts", "k", "seed", "setting")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``bench reproduce mlpkan``."""
    p.add_argument("--parts", default=",".join(PARTS),
                   help="function (Table 2), vision (Table 3), ablation (Tables 4-5); the "
                        "routing claim is read from the MLP-KAN fits of the first two")
    p.add_argument("--equations", default="all",
                   help="'all' (the paper's 30) or comma-separated labels, the paper's "
                        "(I.6.20a) or the registry's (I.6.2a)")
    p.add_argument("--ranges", choices=("pykan", "registry"), default="pykan",
                   help="sampling ranges: pykan's (the paper's, default) or the registry's")
    p.add_argument("--cifar10", default=None, metavar="ARCHIVE",
                   help="CIFAR-10 as a NumPy .npz (uint8 x_train, x_test; labels y_train, "
                        "y_test): the vision part and the ablations run on it too")
    p.add_argument("--cifar-train", type=int, default=None,
                   help="use a seeded subset of this many CIFAR-10 training images")
    p.add_argument("--resume", action="store_true",
                   help="keep the fits already saved in --out's JSON and run only the missing")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object (rows: equation, model, rmse, per-seed values)")
    _common(p)
    p.set_defaults(max_epochs=None)  # None: the protocol's own (80 Feynman, 40 digits)


# ---------------------------------------------------------------------------- models


def model_config(model: str, dataset: Any, n_experts: int = 8, k: int = 2) -> dict[str, Any]:
    """The mlp-kan-transformer settings of ``model`` (kan, mlp, mlp-kan) for this dataset.

    ``n_experts`` and ``k`` are the mixture's; the one-expert ``mlp`` and ``kan`` are sized to
    match that mixture's parameter count.
    """
    base = {**BACKBONE, "n_experts": n_experts, "k": k}
    if dataset.kind == "image":
        base["patch"] = PATCH.get(dataset.name, 2)
    if model == "mlp-kan":
        return base
    if model not in MODELS:
        raise ValueError(f"model must be one of {', '.join(MODELS)}, got {model!r}")
    one = {**base, "n_experts": 1, "n_kan": int(model == "kan"), "k": 1}
    return {**one, "ffn_hidden": matched_ffn_hidden(one, dataset, base)}


def _n_params(dataset: Any, config: dict[str, Any]) -> int:
    from kamoe.models import build_for

    return build_for("mlp-kan-transformer", dataset, **dict(config)).n_params()


def matched_ffn_hidden(one: dict[str, Any], dataset: Any, reference: dict[str, Any]) -> int:
    """ffn_hidden giving the one-expert config ``one`` the parameter count closest to ``reference``.

    The count is affine in ffn_hidden (in ffn_hidden // 2 for a KAN expert, hence even steps).
    """
    target = _n_params(dataset, reference)

    def count(h: int) -> int:
        return _n_params(dataset, {**one, "ffn_hidden": h})

    c2, c4 = count(2), count(4)
    guess = max(2, 2 + 2 * round((target - c2) / (c4 - c2)))
    candidates = [h for h in (guess - 2, guess, guess + 2) if h >= 2]
    return min(candidates, key=lambda h: abs(count(h) - target))


# ---------------------------------------------------------------------------- jobs


def equation_labels(text: str) -> list[str]:
    """The paper's labels for 'all' or a comma-separated list of paper or registry labels."""
    from kamoe.data.feynman import resolve_feynman_id

    if str(text).strip().lower() == "all":
        return [row[0] for row in PAPER_TABLE2]
    by_id = {eq_id: label for label, eq_id in PAPER_ID.items()}
    out = []
    for item in _list(text):
        label = item if item in PAPER_ID else None
        if label is None:
            try:
                label = by_id.get(resolve_feynman_id(item))
            except ValueError:
                label = None
        if label is None:
            raise UserError(f"--equations: {item!r} is not one of the paper's 30 equations; "
                             f"use 'all' or some of {', '.join(PAPER_ID)}")
        if label not in out:
            out.append(label)
    if not out:
        raise UserError("--equations: give 'all' or at least one of the paper's labels")
    return out


def _vision_data(args) -> list[tuple[str, str, dict[str, Any]]]:
    """(name, spec, options) of every image dataset of this run."""
    data = [("digits", "digits", {})]
    if args.cifar10:
        opts = {} if args.cifar_train is None else {"n_train": args.cifar_train}
        data.append(("cifar10", f"cifar10:{args.cifar10}", opts))
    return data


def build_jobs(args) -> list[dict[str, Any]]:
    """Every fit of this run, seed outermost (a cut-short run covers each row with its first
    seeds), each fit once even when several parts use it."""
    parts = _list(args.parts)
    bad = [p for p in parts if p not in PARTS]
    if bad or not parts:
        raise UserError(f"--parts: {', '.join(bad) or 'nothing'} is not a part; choose among "
                         f"{', '.join(PARTS)}")
    labels = equation_labels(args.equations) if "function" in parts else []
    jobs: dict[tuple, dict[str, Any]] = {}

    def add(job: dict[str, Any]) -> None:
        jobs.setdefault(tuple(job[k] for k in IDENTITY), job)

    for seed in _seeds(args):
        epochs = args.max_epochs or FUNCTION_TRAIN["epochs"]
        for label in labels:
            eq_id = PAPER_ID[label]
            options = dict(FUNCTION_DATA)
            if args.ranges == "pykan":
                options["ranges"] = {k: list(v) for k, v in PYKAN_RANGES[eq_id].items()}
            for model in MODELS:
                n_experts, k = (8, 2) if model == "mlp-kan" else (1, 1)
                add({"part": "function", "dataset": eq_id, "equation": label, "model": model,
                     "n_experts": n_experts, "k": k, "seed": seed, "epochs": epochs,
                     "setting": f"ranges={args.ranges} epochs={epochs}",
                     "spec": f"feynman:{eq_id}", "options": options})
        for name, spec, options in _vision_data(args):
            epochs = args.max_epochs or VISION_EPOCHS[name]
            setting = f"epochs={epochs} n_train={options.get('n_train', 'all')}"
            cells = []
            if "vision" in parts:
                cells += [("kan", 1, 1), ("mlp", 1, 1), ("mlp-kan", 8, 2)]
            if "ablation" in parts:
                cells += [("mlp-kan", e, 2) for e in EXPERTS]
                cells += [("mlp-kan", 8, k) for k in TOPK]
            for model, n_experts, k in cells:
                add({"part": "vision", "dataset": name, "model": model, "n_experts": n_experts,
                     "k": k, "seed": seed, "epochs": epochs, "setting": setting, "spec": spec,
                     "options": options})
    return list(jobs.values())


def _fit_one(job: dict[str, Any]) -> dict[str, Any]:
    """One fit in a worker: the test metric, routing shares, CPU seconds, epochs, parameters."""
    import torch

    from kamoe.data import load
    from kamoe.interpret.routing import kind_shares, router_stats
    from kamoe.models import build_for
    from kamoe.train import TrainConfig, fit, set_seed

    torch.set_num_threads(1)
    ds = load(job["spec"], seed=job["seed"], **job["options"])
    mixture = job["model"] == "mlp-kan"  # the one-expert models match the default mixture
    config = model_config(job["model"], ds, *((job["n_experts"], job["k"]) if mixture else ()))
    set_seed(job["seed"])
    model = build_for("mlp-kan-transformer", ds, **config)
    train = FUNCTION_TRAIN if job["part"] == "function" else VISION_TRAIN
    cpu0 = time.process_time()
    hist = fit(model, ds, TrainConfig(**{**train, "epochs": job["epochs"], "seed": job["seed"]}))
    row = {k: job[k] for k in IDENTITY}
    if "equation" in job:
        row["equation"] = job["equation"]
    row.update(cpu_s=time.process_time() - cpu0, epochs=len(hist.epochs),
               best_epoch=hist.best_epoch, params=model.n_params(),
               ffn_hidden=config["ffn_hidden"])
    if ds.task == "regression":
        y_std = float(ds.raw_y("test").std())
        row.update(rmse=hist.metrics["rmse"], r2=hist.metrics["r2"], y_std=y_std,
                   nrmse=hist.metrics["rmse"] / y_std if y_std > 0 else math.nan)
    else:
        row.update(accuracy=hist.metrics["accuracy"], log_loss=hist.metrics["log_loss"])
    if job["model"] == "mlp-kan":
        stats = router_stats(model, ds.X_test, max_rows=2000)
        for key, skip in (("kan_share", 0), ("kan_share_data", 1)):
            shares = kind_shares(stats, skip_tokens=skip)
            kan = shares[shares["kind"] == "kan"]
            row[key] = [float(v) for v in kan["selected_share"]]
            if skip:
                row["kan_prob_data"] = [float(v) for v in kan["mean_prob"]]
    return row


# ---------------------------------------------------------------------------- summaries


def _mean_std(values: list[float]) -> tuple[float, float]:
    values = [v for v in values if v is not None and math.isfinite(v)]
    if not values:
        return math.nan, math.nan
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def welch_t(a: list[float], b: list[float]) -> float:
    """Welch's t of mean(b) - mean(a) (NaN with fewer than 2 values on a side)."""
    if len(a) < 2 or len(b) < 2:
        return math.nan
    se = math.sqrt(statistics.variance(a) / len(a) + statistics.variance(b) / len(b))
    diff = statistics.fmean(b) - statistics.fmean(a)
    return math.inf if se == 0 and diff > 0 else (diff / se if se else 0.0)


def lowest(values: dict[str, float]) -> str:
    """The model with the lowest value."""
    return min(values, key=lambda m: values[m])


def _group(rows: list[dict[str, Any]], keys: tuple[str, ...]) -> dict[tuple, list[dict]]:
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault(tuple(r[k] for k in keys), []).append(r)
    for rs in groups.values():
        rs.sort(key=lambda r: r["seed"])
    return groups


def function_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Table 2 rows (equation x model: mean and per-seed RMSE) and the lowest-RMSE counts."""
    rows = [r for r in rows if r["part"] == "function"]
    settings = sorted({r["setting"] for r in rows})
    if len(settings) > 1:
        raise UserError(f"the results mix function-learning settings ({'; '.join(settings)}); "
                         "pass files from one setting")
    pykan = bool(settings) and settings[0].startswith("ranges=pykan")
    groups = _group(rows, ("equation", "model"))
    table, per_eq = [], {}
    for label, *_ in PAPER_TABLE2:
        for model in MODELS:
            rs = groups.get((label, model))
            if not rs:
                continue
            rmse = [r["rmse"] for r in rs]
            nrmse = [r["nrmse"] for r in rs]
            y_std = statistics.fmean(r["y_std"] for r in rs)
            mean, std = _mean_std(rmse)
            paper = PAPER_RMSE[(label, model)]
            table.append({
                "equation": label, "id": PAPER_ID[label], "model": model, "rmse": mean,
                "rmse_std": std, "seeds": [r["seed"] for r in rs], "rmse_per_seed": rmse,
                "nrmse": _mean_std(nrmse)[0], "nrmse_per_seed": nrmse, "paper_rmse": paper,
                "paper_nrmse": paper / y_std if pykan and y_std > 0 else None,
                "params": rs[0]["params"], "cpu_s": statistics.fmean(r["cpu_s"] for r in rs),
                "epochs": statistics.fmean(r["epochs"] for r in rs)})
            per_eq.setdefault(label, {})[model] = rmse
    ours = dict.fromkeys(MODELS, 0)
    clear = dict.fromkeys(MODELS, 0)
    paper = dict.fromkeys(MODELS, 0)
    agree, winners = 0, {}
    for label, got in per_eq.items():
        if set(got) != set(MODELS):
            continue
        means = {m: statistics.fmean(v) for m, v in got.items()}
        best = lowest(means)
        second = lowest({m: v for m, v in means.items() if m != best})
        t = welch_t(got[best], got[second])
        paper_best = lowest({m: PAPER_RMSE[(label, m)] for m in MODELS})
        ours[best] += 1
        paper[paper_best] += 1
        clear[best] += int(t >= 2)
        agree += int(best == paper_best)
        winners[label] = {"ours": best, "runner_up": second, "welch_t": t, "paper": paper_best}
    return {"rows": table, "setting": settings[0] if settings else None,
            "counts": {"ours": ours, "ours_clear": clear, "paper": paper,
                       "rows_compared": sum(ours.values()), "same_winner": agree},
            "winners": winners}


def vision_summary(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Accuracy per (dataset, model, experts, top-k), mean and per seed, with the paper's."""
    out = []
    groups = _group([r for r in rows if r["part"] == "vision"],
                    ("dataset", "model", "n_experts", "k"))
    for (name, model, n_experts, k), rs in sorted(groups.items(), key=lambda g: (
            g[0][0], MODELS.index(g[0][1]), g[0][2], g[0][3])):
        acc = [r["accuracy"] for r in rs]
        mean, std = _mean_std(acc)
        base = model != "mlp-kan" or (n_experts, k) == (8, 2)
        out.append({"dataset": name, "model": model, "n_experts": n_experts, "k": k,
                    "accuracy": mean, "accuracy_std": std, "seeds": [r["seed"] for r in rs],
                    "accuracy_per_seed": acc, "params": rs[0]["params"],
                    "cpu_s": statistics.fmean(r["cpu_s"] for r in rs),
                    "epochs": statistics.fmean(r["epochs"] for r in rs),
                    "paper_table3": PAPER_CIFAR10[model] if base else None,
                    "paper_experts": PAPER_EXPERTS.get(n_experts) if model == "mlp-kan"
                    and k == 2 else None,
                    "paper_topk": PAPER_TOPK.get(k) if model == "mlp-kan" and n_experts == 8
                    else None})
    return out


def routing_summary(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """KAN share of routed token slots per layer: Feynman tasks (seed means over equations)
    against each image dataset, from the 8-expert top-2 MLP-KAN fits."""
    mix = [r for r in rows if r["model"] == "mlp-kan" and (r["n_experts"], r["k"]) == (8, 2)
           and "kan_share" in r]
    out = []
    sources = [("feynman", [r for r in mix if r["part"] == "function"])]
    sources += [(name, [r for r in mix if r["part"] == "vision" and r["dataset"] == name])
                for name in sorted({r["dataset"] for r in mix if r["part"] == "vision"})]
    for name, rs in sources:
        if not rs:
            continue
        depth = min(len(r["kan_share"]) for r in rs)
        n_data = len({r["dataset"] for r in rs})
        for layer in range(depth):
            entry: dict[str, Any] = {"data": name, "datasets": n_data, "layer": layer}
            for key in ("kan_share_data", "kan_share", "kan_prob_data"):
                by_seed: dict[int, list[float]] = {}
                for r in rs:
                    by_seed.setdefault(r["seed"], []).append(r[key][layer])
                per_seed = [statistics.fmean(v) for _, v in sorted(by_seed.items())]
                entry[key], entry[f"{key}_std"] = _mean_std(per_seed)
                entry[f"{key}_per_seed"] = per_seed
            per_ds: dict[str, list[float]] = {}
            for r in rs:
                per_ds.setdefault(r["dataset"], []).append(r["kan_share_data"][layer])
            means = [statistics.fmean(v) for v in per_ds.values()]
            entry["kan_share_data_min"], entry["kan_share_data_max"] = min(means), max(means)
            entry["seeds"] = sorted({r["seed"] for r in rs})
            out.append(entry)
    return out


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The whole reproduction as one JSON-ready object."""
    fn = function_summary(rows)
    return {"rows": fn["rows"], "counts": fn["counts"], "winners": fn["winners"],
            "function_setting": fn["setting"], "vision": vision_summary(rows),
            "routing": routing_summary(rows)}


# ---------------------------------------------------------------------------- tables


def _e(v: float | None) -> str:
    return "" if v is None or not math.isfinite(v) else f"{v:.2e}"


def _pm(mean: float, std: float, fmt: str = ".2e") -> str:
    if not math.isfinite(mean):
        return ""
    return f"{mean:{fmt}} ± {std:{fmt}}"


def tables(summary: dict[str, Any]) -> str:
    """Markdown tables of a summary."""
    out: list[str] = []
    rows = {(r["equation"], r["model"]): r for r in summary["rows"]}
    if rows:
        seeds = max(len(r["seeds"]) for r in rows.values())
        out += [f"### Function learning (Table 2): test RMSE, mean ± std over {seeds} seed(s); "
                f"{summary['function_setting']}", "",
                "| paper eq. | ID | KAN | paper | MLP | paper | MLP-KAN | paper | lowest | "
                "paper's lowest | Welch t |", "|" + "---|" * 11]
        names = {"kan": "KAN", "mlp": "MLP", "mlp-kan": "MLP-KAN"}
        for label, eq_id, *_ in PAPER_TABLE2:
            got = [rows.get((label, m)) for m in MODELS]
            if not any(got):
                continue
            cells = []
            for m, r in zip(MODELS, got, strict=True):
                cells += [_pm(r["rmse"], r["rmse_std"]) if r else "", _e(PAPER_RMSE[(label, m)])]
            w = summary["winners"].get(label)
            t = "" if not w or math.isnan(w["welch_t"]) else f"{w['welch_t']:.1f}"
            win = (names[w["ours"]], names[w["paper"]], t) if w else ("",) * 3
            out.append(f"| {label} | {eq_id} | " + " | ".join(cells) + " | " + " | ".join(win)
                       + " |")
        c = summary["counts"]
        out += ["", f"Lowest mean RMSE on {c['rows_compared']} rows: " + ", ".join(
            f"{names[m]} {c['ours'][m]} (clear, Welch t >= 2: {c['ours_clear'][m]})"
            for m in ("mlp-kan", "kan", "mlp")) + "; the paper on the same rows: " + ", ".join(
            f"{names[m]} {c['paper'][m]}" for m in ("mlp-kan", "kan", "mlp"))
            + f". Same winner as the paper on {c['same_winner']} rows.", "",
            "Normalised RMSE (RMSE / std of the test targets); the paper's values divided by "
            "the same std (pykan ranges only):", "",
            "| paper eq. | KAN | MLP | MLP-KAN | paper KAN | paper MLP | paper MLP-KAN | "
            "params (K/M/MK) | CPU s/fit (K/M/MK) |", "|" + "---|" * 9]
        for label, *_ in PAPER_TABLE2:
            got = [rows.get((label, m)) for m in MODELS]
            if not any(got):
                continue
            ours = [f"{r['nrmse']:.3f}" if r else "" for r in got]
            paper = [f"{r['paper_nrmse']:.3f}" if r and r["paper_nrmse"] is not None else ""
                     for r in got]
            params = "/".join(str(r["params"]) if r else "-" for r in got)
            cpu = "/".join(f"{r['cpu_s']:.1f}" if r else "-" for r in got)
            out.append(f"| {label} | " + " | ".join(ours + paper) + f" | {params} | {cpu} |")
    vision = summary["vision"]
    if vision:
        out += ["", "### Representation learning and ablations: test accuracy, mean ± std", "",
                "| data | model | experts | top-k | params | seeds | accuracy | paper CIFAR-10 "
                "top-1 | CPU s/fit | epochs |", "|" + "---|" * 10]
        for r in vision:
            paper = r["paper_table3"]
            if paper is None:
                paper = r["paper_experts"] if r["k"] == 2 else r["paper_topk"]
            out.append(f"| {r['dataset']} | {r['model']} | {r['n_experts']} | {r['k']} | "
                       f"{r['params']} | {len(r['seeds'])} | "
                       f"{_pm(r['accuracy'], r['accuracy_std'], '.4f')} | "
                       f"{'' if paper is None else f'{paper:.3f}'} | {r['cpu_s']:.1f} | "
                       f"{r['epochs']:.0f} |")
    routing = summary["routing"]
    if routing:
        out += ["", "### Routing: share of routed token slots sent to KAN experts (uniform "
                "routing: 0.5), mean ± std over seeds", "",
                "| data | layer | seeds | data tokens | all tokens (with [CLS]) | KAN router "
                "probability, data tokens | range over equations |", "|" + "---|" * 7]
        for r in routing:
            span = (f"{r['kan_share_data_min']:.3f}..{r['kan_share_data_max']:.3f}"
                    if r["datasets"] > 1 else "")
            out.append(f"| {r['data']} | {r['layer']} | {len(r['seeds'])} | "
                       f"{_pm(r['kan_share_data'], r['kan_share_data_std'], '.3f')} | "
                       f"{_pm(r['kan_share'], r['kan_share_std'], '.3f')} | "
                       f"{_pm(r['kan_prob_data'], r['kan_prob_data_std'], '.3f')} | {span} |")
    return "\n".join(out)


# ---------------------------------------------------------------------------- run


def _identity(r: dict[str, Any]) -> tuple:
    return tuple(r[k] for k in IDENTITY)


def run(args: argparse.Namespace) -> int:
    """Fit what is asked (or read --from-json), print the tables or one JSON object."""
    if args.seeds < 1 or args.jobs < 1 or args.first_seed < 0 or (
            args.max_epochs is not None and args.max_epochs < 1):
        raise UserError("--seeds, --max-epochs and --jobs must be positive integers and "
                         "--first-seed >= 0")
    keys = ("part", "dataset", "model", "seed")
    t0, wall = time.time(), None
    if args.from_json:
        rows = _load_results(_list(args.from_json), keys, "mlpkan", metrics=())
    else:
        jobs = build_jobs(args)
        done: list[dict[str, Any]] = []
        out_json = Path(args.out).with_suffix(".json") if args.out else None
        if args.resume:
            if out_json is None:
                raise UserError("--resume needs --out FILE (the run whose FILE.json to extend)")
            if out_json.is_file():
                done = _load_results([str(out_json)], keys, "mlpkan", metrics=())
        have = {_identity(r) for r in done}
        todo = [j for j in jobs if _identity(j) not in have]
        if args.cifar10:  # a wrong archive fails here, in one line, before any fit
            from kamoe.data import load

            load(f"cifar10:{args.cifar10}", n_train=2, n_test=1)
        print(f"{len(jobs)} fits asked, {len(jobs) - len(todo)} already in {out_json}, "
              f"{len(todo)} to run", file=sys.stderr)
        rows = _run_jobs(args, todo, worker=_fit_one, done=done) if todo else done
        wanted = {_identity(j) for j in jobs}
        rows = [r for r in rows if _identity(r) in wanted]
        wall = time.time() - t0
    summary = summarise(rows)
    table = tables(summary)
    if args.json:
        print(json.dumps(summary))
    else:
        print(table)
        if wall is not None:
            print(f"\n{len(rows)} fits shown, run in {wall:.0f} s wall with {args.jobs} "
                  "worker(s)")
    if args.out:
        Path(args.out).write_text(table + "\n")
    return 0
