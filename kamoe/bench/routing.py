"""`kamoe bench routing`: how far a KAMoE's experts split the regimes, and how far any gate could.

Part ``mixture``: a kamoe-gru (or kamoe-lstm) trained on ``regimes`` the way ``kamoe train``
does, per seed, with up to five settings (``--settings``): the dashboard's mixture for this
dataset (``kamoe.recipes.REGIMES_MIXTURE``: small GRU experts in a Markov-switching mixture,
whose gate filters the experts' likelihoods over the window); the likelihood mixture the
dashboard used before it (``LIKELIHOOD``: the same experts competing for the target alone, a
gate that reads a GRU over the window, the mutual-information term); that with GRU + AR(2)
experts (``AR_SKIP``: each expert's head also reads the window's last two values,
``expert_lags=2``); the squared-error mixture used before that (``SQUARED_ERROR``: the
registry's experts, a softmax gate with the mutual-information term, per step); and the
paper's gate (the registry's defaults).
Each row gives ``routing.nmi`` on the test split (the strongest expert at a window's last step
against the regime of the value it predicts, as ``kamoe train --json`` reports it), the routing
entropy, the test R^2, epochs and seconds.

Part ``ceiling``: the same gate networks trained *with the regime labels* (cross-entropy on the
gate's softmax output, Adam, early stopping on the last 15 % of the training windows), then the
NMI of their argmax on the test split. An unsupervised gate cannot be expected to beat the
same network told the answer, so this bounds what any routing term can reach with that input:
the per-step gate at the last step sees the last value only (``gate_input="last"``, which is
what a per-step gate decides from at that step); the window gate sees all the window's values
(``"flatten"``); the recurrent gate reads them in order through a GRU (``"recurrent"``, judged at
the last step). A gradient-boosted tree classifier on the window's values and differences
(scikit-learn's HistGradientBoostingClassifier) is the reference for a strong classifier.

Seeds: seed S is the data seed and the training seed, as ``kamoe train --seed S``; seeds run
from ``--first-seed`` (so seeds kept aside while tuning can be measured on their own).
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np

from kamoe.errors import UserError

PARTS = ("mixture", "ceiling")
MODELS = ("kamoe-gru", "kamoe-lstm")
CEILING_GATES = {"per-step gate (last value)": "last", "window gate (all values)": "flatten",
                 "recurrent gate (GRU over the window)": "recurrent"}
DASHBOARD = "dashboard mixture"
# The dashboard's mixture before the switching one: experts competing for the target alone.
LIKELIHOOD = "likelihood mixture (GRU-read gate)"
# That mixture with GRU + AR(2) experts (heads that also read the last 2 values).
AR_SKIP = "likelihood mixture, GRU + AR(2) experts"
# The dashboard's gate before the likelihood mixture: the registry's experts, squared error.
SQUARED_ERROR = "squared-error mixture (softmax + MI, per step)"
PAPER = "paper gate"
TREES = "gradient-boosted trees (values + differences)"
# --settings: a short name for each mixture setting, in the order they are trained.
SETTINGS = {"dashboard": DASHBOARD, "likelihood": LIKELIHOOD, "ar": AR_SKIP,
            "squared": SQUARED_ERROR, "paper": PAPER}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="kamoe-gru", choices=MODELS)
    parser.add_argument("--parts", default=",".join(PARTS),
                        help=f"comma-separated, of {', '.join(PARTS)} (default: both)")
    parser.add_argument("--seeds", type=int, default=3,
                        help="how many seeds, from --first-seed on (default 3)")
    parser.add_argument("--first-seed", type=int, default=0,
                        help="the first seed (default 0; e.g. 3 for seeds kept aside)")
    parser.add_argument("--settings", default=",".join(SETTINGS),
                        help=f"part mixture: comma-separated, of {', '.join(SETTINGS)} "
                             "(default: all)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="at most this many epochs for every training (default: the "
                             "recipe's for the mixtures, 200 for the label-trained gates)")
    parser.add_argument("--data-option", action="append", metavar="KEY=VALUE",
                        help="regimes option (repeatable), e.g. n=2000")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def _choices(text: str, option: str, allowed: Any) -> list[str]:
    chosen = [p.strip() for p in text.split(",") if p.strip()]
    if not chosen or any(p not in allowed for p in chosen):
        raise UserError(f"{option} takes {', '.join(allowed)} (comma-separated); got {text!r}")
    return chosen


def mixture_rows(model: str, seed: int, epochs: int | None, options: dict[str, Any],
                 settings: list[str] | None = None) -> list[dict[str, Any]]:
    """The mixture settings named in ``settings`` (keys of :data:`SETTINGS`; default all),
    trained on regimes with one seed."""
    import torch

    from kamoe import recipes
    from kamoe.data import load
    from kamoe.interpret import routing_report
    from kamoe.models import build, default_config
    from kamoe.train import fit

    dataset = load("regimes", seed=seed, **options)
    overrides = {} if epochs is None else {"epochs": epochs}
    rows = []
    paper = default_config(model)
    dashboard = recipes.model_config(model, dataset)
    likelihood = {**dashboard, "mixture_loss": "likelihood", "gate_units": 16,
                  "gate_input": "recurrent", "gate_loss": "mutual_information"}
    configs = {DASHBOARD: dashboard, LIKELIHOOD: likelihood,
               AR_SKIP: {**likelihood, "expert_lags": 2},
               SQUARED_ERROR: {**paper, "gate_activation": "softmax",
                               "gate_loss": "mutual_information"},
               PAPER: paper}
    for key in settings or SETTINGS:
        setting, config = SETTINGS[key], configs[SETTINGS[key]]
        torch.manual_seed(seed)
        net = build(model, dataset.X_train.shape[1:], dataset.y_train.shape[1], **config)
        cfg = recipes.training_config(model, dataset, seed=seed, **overrides)
        start = time.perf_counter()
        history = fit(net, dataset, cfg)
        report = routing_report(net, dataset, "test")
        rows.append({"part": "mixture", "setting": setting, "seed": seed,
                     "gate": {k: config[k] for k in ("gate_activation", "gate_loss",
                                                     "gate_input", "mixture_loss", "units",
                                                     "expert_lags")},
                     "aux_weight": cfg.aux_weight if config["gate_loss"] != "none" else 0.0,
                     "nmi": report["nmi"], "entropy": report["entropy"],
                     "max_entropy": report["max_entropy"],
                     "r2": float(history.metrics["r2"]), "epochs": len(history.epochs),
                     "seconds": round(time.perf_counter() - start, 1)})
    return rows


def _label_trained_gate(dataset, gate_input: str, seed: int, epochs: int) -> np.ndarray:
    """Test-split argmax of a KAMoE gate (the registry's GRKAN, softmax output) trained with
    cross-entropy on the regime labels; early stopping on the last 15 % of the train windows."""
    import torch

    from kamoe.models import build
    from kamoe.nn.moe import KAMoE

    torch.manual_seed(seed)
    net = build("kamoe-gru", dataset.X_train.shape[1:], 1, gate_activation="softmax",
                gate_input=gate_input)
    gate = next(m for m in net.modules() if isinstance(m, KAMoE))
    params = [p for n, p in gate.named_parameters() if not n.startswith("experts.")]
    X = torch.as_tensor(np.asarray(dataset.X_train), dtype=torch.float32)
    g = torch.as_tensor(np.asarray(dataset.groups_train), dtype=torch.long)
    n_fit = int(len(X) * 0.85)
    opt = torch.optim.Adam(params, lr=3e-3)
    gen = torch.Generator().manual_seed(seed)

    def log_p(x: torch.Tensor) -> torch.Tensor:
        weights = gate.gate_weights(x * gate.input_weight)
        if weights.dim() == 3:  # a recurrent gate decides at every step: the last is the window's
            weights = weights[:, -1]
        return torch.log(weights.clamp_min(1e-12))

    best, best_state, bad = np.inf, None, 0
    for _ in range(epochs):
        gate.train()
        for idx in torch.randperm(n_fit, generator=gen).split(128):
            loss = torch.nn.functional.nll_loss(log_p(X[idx]), g[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        gate.eval()
        with torch.no_grad():
            val = float(torch.nn.functional.nll_loss(log_p(X[n_fit:]), g[n_fit:]))
        if val < best - 1e-4:
            best, bad = val, 0
            best_state = {k: v.clone() for k, v in gate.state_dict().items()}
        else:
            bad += 1
            if bad >= 20:
                break
    gate.load_state_dict(best_state)
    with torch.no_grad():
        Xt = torch.as_tensor(np.asarray(dataset.X_test), dtype=torch.float32)
        return log_p(Xt).argmax(-1).numpy()


def ceiling_rows(seed: int, epochs: int | None, options: dict[str, Any]) -> list[dict[str, Any]]:
    """NMI of regime classifiers trained with the labels (the bound for unsupervised gates)."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    from kamoe.data import load
    from kamoe.interpret.routing import normalised_mutual_information

    dataset = load("regimes", seed=seed, **options)
    truth = np.asarray(dataset.groups_test)

    def features(X: np.ndarray) -> np.ndarray:
        values = np.asarray(X)[:, :, 0]
        return np.column_stack([values, np.diff(values, axis=1)])

    def trees() -> np.ndarray:
        model = HistGradientBoostingClassifier(random_state=seed)
        return model.fit(features(dataset.X_train), dataset.groups_train).predict(
            features(dataset.X_test))

    classifiers = {setting: (lambda g=gate_input: _label_trained_gate(dataset, g, seed,
                                                                      epochs or 200))
                   for setting, gate_input in CEILING_GATES.items()}
    classifiers[TREES] = trees
    rows = []
    for setting, classify in classifiers.items():
        start = time.perf_counter()
        pred = classify()
        rows.append({"part": "ceiling", "setting": setting, "seed": seed,
                     "nmi": round(normalised_mutual_information(pred, truth), 4),
                     "accuracy": float(np.mean(pred == truth)),
                     "seconds": round(time.perf_counter() - start, 1)})
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    """Markdown: one line per (part, setting) with the per-seed values and their mean."""
    lines = []
    for part, columns in (("mixture", ("nmi", "entropy", "r2")), ("ceiling", ("nmi", "accuracy"))):
        chosen = [r for r in rows if r["part"] == part]
        if not chosen:
            continue
        head = "trained on the task (no labels)" if part == "mixture" else \
            "trained with the regime labels (the ceiling)"
        lines += [f"{head}:", "", "| setting | " + " | ".join(
            f"{c} per seed | {c} mean" for c in columns) + " |",
            "|---|" + "---|---|" * len(columns)]
        for setting in dict.fromkeys(r["setting"] for r in chosen):
            mine = [r for r in chosen if r["setting"] == setting]
            cells = []
            for c in columns:
                values = [float(r[c]) for r in mine]
                cells += [" / ".join(f"{v:.3f}" for v in values), f"{np.mean(values):.3f}"]
            lines.append(f"| {setting} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from kamoe.cli import data_options

    parts = _choices(args.parts, "--parts", PARTS)
    settings = _choices(args.settings, "--settings", SETTINGS)
    if args.seeds < 1:
        raise UserError(f"--seeds must be >= 1, got {args.seeds}")
    if args.first_seed < 0:
        raise UserError(f"--first-seed must be >= 0, got {args.first_seed}")
    if args.epochs is not None and args.epochs < 1:
        raise UserError(f"--epochs must be >= 1, got {args.epochs}")
    options = data_options(args.data_option)
    rows: list[dict[str, Any]] = []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        if "mixture" in parts:
            rows += mixture_rows(args.model, seed, args.epochs, options, settings)
        if "ceiling" in parts:
            rows += ceiling_rows(seed, args.epochs, options)
    if args.json:
        print(json.dumps({"model": args.model, "rows": rows}))
    else:
        print(table(rows))
    return 0
