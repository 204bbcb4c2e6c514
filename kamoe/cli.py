"""`python -m kamoe ...`: the dashboard's work without a browser.

Progress goes to stderr; with ``--json`` results are one JSON object on stdout. A user error
exits with status 2 and one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
from typing import Any

BENCHES = {
    "speed": ("kamoe.bench.speed", "KANLinear vs nn.Linear forward+backward timings"),
    "reproduce": ("kamoe.bench.reproduce",
                  "the seed papers' experiments (california, crypto, mlpkan)"),
    "feynman": ("kamoe.bench.feynman", "formula recovery on the AI Feynman equations"),
    "dashboard": ("kamoe.bench.dashboard", "dashboard timings in a real browser"),
}


class UserError(Exception):
    """Raised for problems the user can fix; printed as one line, exit status 2."""


def _user_error_types() -> tuple[type[BaseException], ...]:
    from kamoe.data import DataError
    from kamoe.train import TrainingError

    return (UserError, DataError, TrainingError, ValueError, FileNotFoundError)


# ---------------------------------------------------------------------------- train


def _parse_config(text: str | None, what: str) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        example = '{"hidden": [5]}'
        raise UserError(f"{what} must be a JSON object, e.g. '{example}' ({err})") from err
    if not isinstance(value, dict):
        raise UserError(f"{what} must be a JSON object, got {type(value).__name__}")
    return value


def _progress_printer(enabled: bool):
    if not enabled:
        return None
    last = [0.0]

    def show(p) -> None:
        now = time.perf_counter()
        if now - last[0] < 0.1 and p.epoch != p.epochs:
            return
        last[0] = now
        width = 30
        done = int(width * p.epoch / p.epochs)
        sys.stderr.write(
            f"\r[{'#' * done}{'.' * (width - done)}] epoch {p.epoch}/{p.epochs} "
            f"train {p.train_loss:.3g} val {p.val_loss:.3g}"
        )
        sys.stderr.flush()

    return show


def cmd_train(args: argparse.Namespace) -> int:
    from kamoe.data import load
    from kamoe.models import build_for
    from kamoe.train import TrainConfig, fit, save_model, set_seed

    model_cfg = _parse_config(args.config, "--config")
    train_cfg = _parse_config(args.train_config, "--train-config")
    options = {}
    for item in args.data_option or []:
        if "=" not in item:
            raise UserError(f"--data-option must look like key=value, got {item!r}")
        key, value = item.split("=", 1)
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    dataset = load(args.dataset, seed=args.seed, data_home=args.data_home,
                   allow_download=args.download, **options)
    set_seed(args.seed)  # the initial weights depend on the seed too
    model = build_for(args.model, dataset, **model_cfg)
    defaults = _default_training(args.model, dataset)
    allowed = set(TrainConfig.__dataclass_fields__)
    unknown = set(train_cfg) - allowed
    if unknown:
        raise UserError(f"unknown --train-config key(s) {sorted(unknown)}; allowed: "
                        f"{', '.join(sorted(allowed))}")
    cfg = TrainConfig(**{**defaults, **train_cfg, "seed": args.seed})
    if args.epochs is not None:
        cfg.epochs = args.epochs
    history = fit(model, dataset, cfg, callback=_progress_printer(sys.stderr.isatty()))
    if sys.stderr.isatty():
        sys.stderr.write("\n")
    if history.message:
        print(history.message, file=sys.stderr)
    if args.save:
        save_model(model, args.save, dataset=dataset, history=history, train_config=cfg)
    result = {
        "dataset": dataset.name,
        "model": args.model,
        "params": model.n_params(),
        "seconds": round(history.seconds, 3),
        "epochs": len(history.epochs),
        "stopped": history.stopped,
        "metrics": history.metrics,
        "config": model.config,
        "saved": str(args.save) if args.save else None,
    }
    if args.json:
        print(json.dumps(result))
    else:
        metrics = ", ".join(f"{k}={v:.6g}" for k, v in history.metrics.items())
        print(f"{args.model} on {dataset.name}: {model.n_params()} parameters, "
              f"{len(history.epochs)} epochs in {history.seconds:.2f} s ({history.stopped})")
        print(f"test: {metrics}")
        if args.save:
            print(f"saved to {args.save}")
    return 0


def _default_training(model: str, dataset) -> dict[str, Any]:
    """Training defaults that work out of the box for each kind of model and data."""
    if model == "kan" and dataset.kind == "tabular" and dataset.n_features <= 10:
        # Small KANs on smooth functions: full-batch LBFGS with early grid updates.
        return {"optimizer": "lbfgs", "lr": 1.0, "epochs": 60, "grid_update_epochs": 10,
                "patience": 15, "batch_size": None}
    return {"optimizer": "adam", "lr": 3e-3, "epochs": 200, "batch_size": 128}


# ---------------------------------------------------------------------------- datasets


def cmd_datasets(args: argparse.Namespace) -> int:
    from kamoe.data import catalog, feynman_ids

    entries = catalog()
    if args.json:
        print(json.dumps({"datasets": entries, "feynman_ids": feynman_ids()}, default=str))
        return 0
    for e in entries:
        name = e.get("name")
        print(f"{name:<12} {e.get('description', '')}")
        opts = e.get("options")
        if opts:
            text = ", ".join(opts) if isinstance(opts, (list, tuple, dict)) else str(opts)
            print(f"{'':<12}   options: {text}")
    ids = feynman_ids()
    print(f"\nfeynman:<ID> accepts {len(ids)} AI Feynman equations, e.g. "
          f"{', '.join(ids[:6])}, ... (`--json` lists all)")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from kamoe.models import MODEL_DESCRIPTIONS, default_config, model_names

    if args.json:
        print(json.dumps({n: default_config(n) for n in model_names()}))
        return 0
    for n in model_names():
        print(f"{n:<20} {MODEL_DESCRIPTIONS.get(n, '')}")
    return 0


# ---------------------------------------------------------------------------- parser


def _lazy(module: str):
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as err:
        if err.name and (module == err.name or module.startswith(err.name + ".")):
            return None  # that part of the project is not installed/built yet
        raise


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kamoe", description="Train, inspect and extract formulas from KAN mixtures.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a registry model on a dataset")
    p.add_argument("--dataset", required=True, help="NAME[:ARG], e.g. feynman:I.6.2a, regimes")
    p.add_argument("--model", required=True, help="registry name, e.g. kan, kamoe-mlp")
    p.add_argument("--epochs", type=int)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--config", help="model settings as JSON, e.g. '{\"hidden\": [5]}'")
    p.add_argument("--train-config", help="training settings as JSON, e.g. '{\"lr\": 0.01}'")
    p.add_argument("--data-option", action="append", metavar="KEY=VALUE",
                   help="dataset option (repeatable), e.g. n=1000 or target=price")
    p.add_argument("--save", help="folder to save the trained model in")
    p.add_argument("--data-home", default=os.environ.get("KAMOE_DATA_HOME"),
                   help="folder with downloaded datasets (default $KAMOE_DATA_HOME)")
    p.add_argument("--download", action="store_true", help="allow downloading missing data")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("datasets", help="list available datasets")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_datasets)

    p = sub.add_parser("models", help="list registry models")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_models)

    formula = _lazy("kamoe.symbolic.command")
    if formula is not None:
        p = sub.add_parser("formula", help="extract a symbolic formula from data")
        formula.add_arguments(p)
        p.set_defaults(func=formula.run)

    bench = sub.add_parser("bench", help="benchmarks that print tables")
    bench_sub = bench.add_subparsers(dest="bench", required=True)
    for name, (module, text) in BENCHES.items():
        mod = _lazy(module)
        if mod is None:
            continue
        p = bench_sub.add_parser(name, help=text)
        mod.add_arguments(p)
        p.set_defaults(func=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    import kamoe

    parser = build_parser()
    args = parser.parse_args(argv)
    args.started = kamoe.STARTED if argv is None else time.time()
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except _user_error_types() as err:
        message = " ".join(str(err).split()) or type(err).__name__
        print(f"kamoe: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
