"""`python -m kamoe ...`: the dashboard's work without a browser.

Progress goes to stderr; with ``--json`` results are one JSON object on stdout. A user error
(any :data:`kamoe.errors.USER_ERRORS`) exits with status 2 and one line on stderr, never a
traceback. ``kamoe train`` saves every finished run in the run store (``$KAMOE_HOME``), where the
dashboard lists it; ``kamoe runs ...`` lists, shows, exports, imports and deletes stored runs.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
from typing import Any

from kamoe.errors import USER_ERRORS, UserError

BENCHES = {
    "speed": ("kamoe.bench.speed", "KANLinear vs nn.Linear forward+backward timings"),
    "reproduce": ("kamoe.bench.reproduce",
                  "the seed papers' experiments (california, crypto, mlpkan)"),
    "feynman": ("kamoe.bench.feynman", "formula recovery on the AI Feynman equations"),
    "dashboard": ("kamoe.bench.dashboard", "dashboard timings in a real browser"),
    "ecosystem": ("kamoe.bench.ecosystem", "scikit-learn estimators, dispatch engine timings"),
    "gpu": ("kamoe.bench.gpu", "KANLinear forward+backward and a small training on CUDA"),
    "routing": ("kamoe.bench.routing", "how far a KAMoE's experts split the regimes, and the "
                "ceiling of gates trained with the labels"),
}


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


def data_options(items: list[str] | None) -> dict[str, Any]:
    """Repeated --data-option KEY=VALUE as a dict (VALUE read as JSON when it parses)."""
    options: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            raise UserError(f"--data-option must look like key=value, got {item!r}")
        key, value = item.split("=", 1)
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return options


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


def _dataset_request(args: argparse.Namespace):
    """The run's DatasetRequest: the spec, seed and options (a CSV file's bytes kept)."""
    from pathlib import Path

    from kamoe.runs import DatasetRequest

    options: dict[str, Any] = data_options(args.data_option)
    if args.data_home:
        options["data_home"] = args.data_home
    if args.download:
        options["allow_download"] = True
    spec, data, data_name = args.dataset, None, None
    name, _, path = spec.partition(":")
    if name.strip().lower() == "csv" and path.strip() and Path(path).expanduser().is_file():
        file = Path(path).expanduser()  # keep the bytes: the stored run rebuilds without it
        spec, data, data_name = "csv", file.read_bytes(), file.name
    return DatasetRequest(spec=spec, seed=args.seed, options=options, data=data,
                          data_name=data_name, label=args.dataset)


def cmd_train(args: argparse.Namespace) -> int:
    from kamoe import recipes
    from kamoe.runs import new_run, train_run
    from kamoe.store import RunStore
    from kamoe.train import save_model

    model_cfg = _parse_config(args.config, "--config")
    train_cfg = _parse_config(args.train_config, "--train-config")
    if args.device is not None:
        from kamoe.train import resolve_device

        resolve_device(args.device)  # an absent device fails before any data is loaded
        train_cfg["device"] = args.device
    request = _dataset_request(args)
    dataset = request.load()
    if args.epochs is not None:
        train_cfg["epochs"] = args.epochs
    train_cfg["seed"] = args.seed
    cfg = recipes.training_config(args.model, dataset, **train_cfg)
    config = {**recipes.model_config(args.model, dataset), **model_cfg}
    run = new_run(request, dataset, args.model, config, cfg, source="cli")
    model = run.model
    history = train_run(run, dataset, callback=_progress_printer(sys.stderr.isatty()))
    if sys.stderr.isatty():
        sys.stderr.write("\n")
    if history.message:
        print(history.message, file=sys.stderr)
    if args.save:
        try:
            save_model(model, args.save, dataset=dataset, history=history, train_config=cfg)
        except OSError as err:
            raise UserError(f"cannot save the model in {args.save} ({err.strerror})") from None
    run_id = None
    if not args.no_store:
        RunStore().save(run)
        run_id = run.id
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
        "run_id": run_id,
    }
    if history.starts:  # several initialisations: each one's best validation loss, and the kept
        result["starts"] = history.starts
        result["kept_start"] = history.kept_start
    from kamoe.interpret import routing_report  # mixtures: how far the experts split the groups

    routing = routing_report(model, dataset, "test")
    if routing is not None:
        result["routing"] = routing
    if args.json:
        print(json.dumps(result))
    else:
        metrics = ", ".join(f"{k}={v:.6g}" for k, v in history.metrics.items())
        print(f"{args.model} on {dataset.name}: {model.n_params()} parameters, "
              f"{len(history.epochs)} epochs in {history.seconds:.2f} s ({history.stopped})")
        print(f"test: {metrics}")
        if history.starts:
            print(history.starts_text())
        if routing is not None:
            print(f"routing of the test {routing['group_by']}s: {routing['verdict']}")
        if args.save:
            print(f"saved to {args.save}")
        if run_id:
            print(f"stored as run {run_id} (`kamoe runs show {run_id[:6]}`)")
    return 0


# ---------------------------------------------------------------------------- runs


def _run_row(run) -> dict[str, Any]:
    h = run.history
    return {"id": run.id, "name": run.name, "model": run.model_name,
            "dataset": run.request.label or run.request.spec, "source": run.source,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(run.created)),
            "epochs": len(h.epochs) if h else 0, "metrics": h.metrics if h else {},
            "formulas": [f.as_dict()["formula"] for f in run.formulas]}


def cmd_runs(args: argparse.Namespace) -> int:
    from pathlib import Path

    from kamoe.store import RunStore

    store = RunStore()
    action = args.action
    if action == "list":
        runs = store.list()
        if args.json:
            print(json.dumps({"home": str(store.home), "runs": [_run_row(r) for r in runs],
                              "problems": store.problems}))
            return 0
        for problem in store.problems:
            print(f"warning: {problem}", file=sys.stderr)
        if not runs:
            print(f"no stored runs in {store.home}")
        for r in runs:
            row = _run_row(r)
            score = ", ".join(f"{k}={v:.4g}" for k, v in row["metrics"].items())
            print(f"{r.id}  {row['created']}  {r.name:<40} {score}")
        return 0
    if action == "show":
        run = store.get(args.run)
        if args.json:
            print(json.dumps({**_run_row(run), "model_config": run.model_config,
                              "train_config": run.train_config.__dict__,
                              "dataset_request": run.request.to_dict()}, default=str))
        else:
            for key, value in _run_row(run).items():
                print(f"{key:<10} {value}")
        return 0
    if action == "export":
        run_id = store.resolve(args.run)
        out = Path(args.output or f"kamoe-run-{run_id}.zip")
        try:
            out.write_bytes(store.export(run_id))
        except OSError as err:
            raise UserError(f"cannot write {out} ({err.strerror})") from None
        print(json.dumps({"run_id": run_id, "archive": str(out)}) if args.json
              else f"exported run {run_id} to {out}")
        return 0
    if action == "import":
        try:
            data = Path(args.archive).read_bytes()
        except OSError as err:
            raise UserError(f"cannot read {args.archive} ({err.strerror})") from None
        run = store.import_archive(data)
        print(json.dumps({"run_id": run.id, "name": run.name}) if args.json
              else f"imported run {run.id} ({run.name})")
        return 0
    if action in ("prune", "extend-grid"):
        return _derive(store, args)
    run_id = store.resolve(args.run)  # delete
    store.delete(run_id)
    print(json.dumps({"deleted": run_id}) if args.json else f"deleted run {run_id}")
    return 0


def _derive(store, args: argparse.Namespace) -> int:
    """`runs prune` / `runs extend-grid`: a new stored run derived from a stored KAN (the
    dashboard's Splines controls, through the same ``kamoe.derive`` functions)."""
    from kamoe import derive

    parent = store.get(args.run)
    store.load_model(parent)
    dataset = parent.request.load()
    progress = _progress_printer(sys.stderr.isatty())
    if args.action == "prune":
        child = derive.prune_run(parent, dataset, args.edge_threshold, args.node_threshold,
                                 retrain=args.retrain, callback=progress)
    else:
        child = derive.extend_grid_run(parent, dataset, args.grid, callback=progress)
    if sys.stderr.isatty():
        sys.stderr.write("\n")
    store.save(child)
    d = child.derivation
    if args.json:
        keys = ("step", "settings", "metrics_before", "metrics_after", "widths_before",
                "widths_after", "params_before", "params_after")
        print(json.dumps({"run_id": child.id, "name": child.name, "parent": parent.id,
                          **{k: d[k] for k in keys}, "message": child.history.message},
                         default=str))
        return 0
    print(child.history.message or f"{d['step']} done")
    before, after = d["metrics_before"] or {}, d["metrics_after"] or {}
    for key in sorted(set(before) & set(after)):
        print(f"test {key}: {before[key]:.6g} -> {after[key]:.6g}")
    print(f"widths {d['widths_before']} -> {d['widths_after']}, parameters "
          f"{d['params_before']} -> {d['params_after']}")
    print(f"stored as run {child.id} (`kamoe runs show {child.id[:6]}`)")
    return 0


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
    p.add_argument("--device", help="where to train: auto (CUDA, else MPS, else the CPU), cpu, "
                   "cuda, cuda:N or mps (default: the recipe's, auto)")
    p.add_argument("--config", help="model settings as JSON, e.g. '{\"hidden\": [5]}'")
    p.add_argument("--train-config", help="training settings as JSON, e.g. '{\"lr\": 0.01}'")
    p.add_argument("--data-option", action="append", metavar="KEY=VALUE",
                   help="dataset option (repeatable), e.g. n=1000 or target=price")
    p.add_argument("--save", help="folder to save the trained model in")
    p.add_argument("--data-home", default=os.environ.get("KAMOE_DATA_HOME"),
                   help="folder with downloaded datasets (default $KAMOE_DATA_HOME)")
    p.add_argument("--download", action="store_true", help="allow downloading missing data")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument("--no-store", action="store_true",
                   help="do not keep the run in the run store ($KAMOE_HOME)")
    p.set_defaults(func=cmd_train)

    runs = sub.add_parser("runs", help="the stored runs ($KAMOE_HOME, default ~/.kamoe)")
    runs_sub = runs.add_subparsers(dest="action", required=True)
    for action, text in (("list", "list stored runs"), ("show", "show one run"),
                         ("export", "write a run as one archive (.zip)"),
                         ("import", "store a run from an archive"),
                         ("delete", "remove a stored run")):
        p = runs_sub.add_parser(action, help=text)
        if action == "import":
            p.add_argument("archive", help="a .zip written by `kamoe runs export`")
        elif action != "list":
            p.add_argument("run", help="run id (or a unique prefix of it)")
        if action == "export":
            p.add_argument("-o", "--output", help="archive path (default kamoe-run-<id>.zip)")
        p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
        p.set_defaults(func=cmd_runs)
    p = runs_sub.add_parser("prune", help="prune a stored KAN by importance (a new run)")
    p.add_argument("run", help="run id (or a unique prefix of it) of a plain KAN")
    p.add_argument("--edge-threshold", type=float,
                   help="cut edges scoring below this (default: the dashboard's, "
                        "kamoe.recipes.PRUNE_DEFAULTS)")
    p.add_argument("--node-threshold", type=float,
                   help="remove hidden nodes scoring below this (default: the dashboard's)")
    p.add_argument("--retrain", action="store_true",
                   help="train the pruned network again (cut edges kept at zero)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(func=cmd_runs)
    p = runs_sub.add_parser("extend-grid",
                            help="put a stored KAN on a finer grid and retrain (a new run)")
    p.add_argument("run", help="run id (or a unique prefix of it) of a plain KAN")
    p.add_argument("--grid", type=int, required=True,
                   help="intervals of the new grid, more than the run's (a wrong value is "
                        "answered with the choices)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(func=cmd_runs)

    p = sub.add_parser("datasets", help="list available datasets")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_datasets)

    p = sub.add_parser("models", help="list registry models")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_models)

    sweep = _lazy("kamoe.sweep")
    if sweep is not None:
        p = sub.add_parser("sweep", help="a grid of models x settings x seeds, local or on a "
                                         "Dask/Ray cluster, streamed to a JSONL file")
        sweep.add_arguments(p)
        p.set_defaults(func=sweep.run)

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
    except USER_ERRORS as err:
        message = " ".join(str(err).split()) or type(err).__name__
        print(f"kamoe: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
