"""`kamoe sweep`: a grid of models x settings x seeds on one dataset, streamed to a JSONL file.

Room: the CLI's work without a browser (plain Python). Every cell is the run that
``kamoe train --dataset D --model M --config SETTINGS --train-config TRAIN --seed S`` makes (the
same dataset split for that seed, the same training recipe, the same numbers); cells run through
``kamoe.parallel.dispatch`` on local processes, a Dask cluster or a Ray cluster.

``--grid`` is one JSON object: each key is a model setting (``hidden``, ``grid_size``, ...) or a
training setting (a ``TrainConfig`` field: ``lr``, ``epochs``, ...), each value a list of values
to try (a single value is fixed). A model setting applies to the listed models that have it and
is left out of the others, so ``--models kan,mlp --grid '{"grid_size": [3, 5]}'`` is 2 KAN cells
and 1 MLP cell per seed. Results go to ``--out`` one JSON line per finished cell, written as each
cell finishes; a sweep started again with the same ``--out`` skips the cells already there, so a
killed sweep resumes where it stopped (a line cut short by the kill is dropped). Progress goes to
stderr; the summary (mean and std over seeds per cell) to stdout, as JSON with ``--json``.
``--device`` sets where every cell trains (checked on this machine unless ``--address`` sends
the cells to a cluster); each result line records the device its cell used.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import itertools
import json
import os
import socket
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from kamoe import parallel
from kamoe.errors import KamoeError


class SweepError(KamoeError, ValueError):
    """A sweep request or results file the user can fix; the message says how."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", required=True, help="NAME[:ARG], e.g. friedman1, feynman:I.6.2a")
    p.add_argument("--models", required=True, help="comma-separated registry names, e.g. kan,mlp")
    p.add_argument("--grid", default=None,
                   help='settings to try as JSON, e.g. \'{"hidden": [[5], [10]], "lr": [0.01]}\'')
    p.add_argument("--seeds", type=int, default=1, help="seeds per cell")
    p.add_argument("--first-seed", type=int, default=0,
                   help="seeds run are first-seed .. first-seed + seeds - 1")
    p.add_argument("--epochs", type=int, default=None, help="epochs for every cell")
    p.add_argument("--data-option", action="append", metavar="KEY=VALUE",
                   help="dataset option (repeatable), e.g. n=1000")
    p.add_argument("--data-home", default=os.environ.get("KAMOE_DATA_HOME"),
                   help="folder with downloaded datasets (default $KAMOE_DATA_HOME)")
    p.add_argument("--out", required=True, help="JSONL results file (created, or resumed)")
    p.add_argument("--device", default=None,
                   help="where every cell trains: auto, cpu, cuda, cuda:N or mps (default: the "
                        "recipe's, auto, on each worker); not part of a cell's identity")
    parallel.add_arguments(p)
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")


# ---------------------------------------------------------------------------- the grid


def parse_grid(text: str | None) -> dict[str, list[Any]]:
    """The --grid JSON object, every value made a list of the values to try."""
    if not text:
        return {}
    try:
        grid = json.loads(text)
    except json.JSONDecodeError as err:
        raise SweepError(f"--grid must be a JSON object such as '{{\"lr\": [0.01, 0.1]}}' "
                         f"({err})") from None
    if not isinstance(grid, dict):
        raise SweepError(f"--grid must be a JSON object, got {type(grid).__name__}")
    out = {}
    for key, values in grid.items():
        values = values if isinstance(values, list) else [values]
        if not values:
            raise SweepError(f"--grid: {key!r} has an empty list; give at least one value")
        out[key] = values
    return out


def plan(spec: str, options: dict[str, Any], models: list[str], grid: dict[str, list[Any]],
         seeds: range, epochs: int | None = None) -> list[dict[str, Any]]:
    """Every cell of the sweep (model, settings, train, seed), seed outermost."""
    from kamoe.models import default_config
    from kamoe.train import TrainConfig

    train_keys = set(TrainConfig.__dataclass_fields__) - {"seed"}
    model_keys = {m: set(default_config(m)) for m in models}  # raises on an unknown model
    if "seed" in grid:
        raise SweepError("--grid cannot hold 'seed'; use --seeds and --first-seed")
    unknown = sorted(k for k in grid if k not in train_keys
                     and not any(k in keys for keys in model_keys.values()))
    if unknown:
        raise SweepError(f"--grid key(s) {unknown} are neither a training setting "
                         f"({', '.join(sorted(train_keys))}) nor a setting of "
                         f"{', '.join(models)}")
    per_model = []
    for m in models:
        keys = [k for k in grid if k in train_keys or k in model_keys[m]]
        for values in itertools.product(*(grid[k] for k in keys)):
            chosen = dict(zip(keys, values, strict=True))
            settings = {k: v for k, v in chosen.items() if k in model_keys[m]}
            train = {k: v for k, v in chosen.items() if k not in model_keys[m]}
            if epochs is not None:
                train["epochs"] = epochs
            per_model.append((m, settings, train))
    return [{"dataset": spec, "data_options": options, "model": m, "settings": s, "train": t,
             "seed": seed} for seed in seeds for m, s, t in per_model]


def cell_key(row: dict[str, Any]) -> str:
    """The identity of a cell (what it ran, not what it found)."""
    return json.dumps({k: row[k] for k in ("dataset", "data_options", "model", "settings",
                                           "train", "seed")}, sort_keys=True)


# ---------------------------------------------------------------------------- one cell


@functools.lru_cache(maxsize=4)
def _dataset(spec: str, seed: int, options_json: str, data_home: str | None):
    from kamoe.data import load

    return load(spec, seed=seed, data_home=data_home, **json.loads(options_json))


def _train_config(model: str, dataset, train: dict[str, Any], seed: int):
    from kamoe import recipes  # the recipe `kamoe train` uses

    return recipes.training_config(model, dataset, **{**train, "seed": seed})


def run_cell(task: dict[str, Any]) -> dict[str, Any]:
    """Train one cell exactly as `kamoe train` would; returns the cell with its results."""
    from kamoe.models import build_for
    from kamoe.train import fit, set_seed

    cell = task["cell"]
    ds = _dataset(cell["dataset"], cell["seed"], json.dumps(cell["data_options"], sort_keys=True),
                  task.get("data_home"))
    set_seed(cell["seed"])  # the initial weights depend on the seed too
    model = build_for(cell["model"], ds, **cell["settings"])
    device = {"device": task["device"]} if task.get("device") else {}
    cfg = _train_config(cell["model"], ds, {**cell["train"], **device}, cell["seed"])
    cpu0 = time.process_time()
    hist = fit(model, ds, cfg)
    return {**cell, "metrics": hist.metrics, "params": model.n_params(),
            "epochs": len(hist.epochs), "stopped": hist.stopped, "device": hist.device,
            "seconds": round(hist.seconds, 4), "cpu_s": round(time.process_time() - cpu0, 4),
            "worker": f"{socket.gethostname()}:{os.getpid()}"}


# ---------------------------------------------------------------------------- results file


def read_results(path: Path, spec: str, options: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Finished cells already in ``path`` by key; drops a last line cut short by a kill."""
    if not path.exists():
        return {}
    raw = path.read_bytes()
    if raw and not raw.endswith(b"\n"):  # the process was killed while writing this line
        raw = raw[:raw.rfind(b"\n") + 1]
        with path.open("r+b") as fh:
            fh.truncate(len(raw))
    done: dict[str, dict[str, Any]] = {}
    for n, line in enumerate(raw.decode("utf-8", "replace").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            key = cell_key(row)
        except (json.JSONDecodeError, KeyError, TypeError):
            raise SweepError(f"line {n} of {path} is not a sweep result; pass a new --out "
                             "file (or remove that line)") from None
        if (row["dataset"], row["data_options"]) != (spec, options):
            raise SweepError(f"{path} holds results of a sweep on {row['dataset']} "
                             f"{row['data_options'] or ''}, not {spec} {options or ''}; pass "
                             "another --out file")
        done[key] = row
    return done


def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean and sample std of each metric over the seeds of every (model, settings, train)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        key = json.dumps([r["model"], r["settings"], r["train"]], sort_keys=True)
        groups.setdefault(key, []).append(r)
    out = []
    for rs in groups.values():
        entry: dict[str, Any] = {"model": rs[0]["model"], "settings": rs[0]["settings"],
                                 "train": rs[0]["train"], "seeds": len(rs)}
        for metric in rs[0]["metrics"]:
            values = [r["metrics"][metric] for r in rs]
            entry[metric] = statistics.fmean(values)
            entry[f"{metric}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
        entry["seconds"] = statistics.fmean(r["seconds"] for r in rs)
        out.append(entry)
    return out


def _label(row: dict[str, Any]) -> str:
    parts = [row["model"]] + [f"{k}={json.dumps(v)}" for k, v in
                              {**row["settings"], **row["train"]}.items()]
    return " ".join(parts)


# ---------------------------------------------------------------------------- command


def run(args: argparse.Namespace) -> int:
    from kamoe.cli import data_options
    from kamoe.models import build_for
    from kamoe.train import TrainingError

    if args.seeds < 1 or args.first_seed < 0:
        raise SweepError("--seeds must be a positive integer and --first-seed >= 0")
    parallel.check_options(**parallel.options(args))
    if args.epochs is not None and args.epochs < 1:
        raise SweepError(f"--epochs must be a positive integer, got {args.epochs}")
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    if not models:
        raise SweepError("--models is empty; give registry names, e.g. --models kan,mlp")
    options = data_options(args.data_option)
    cells = plan(args.dataset, options, models, parse_grid(args.grid),
                 range(args.first_seed, args.first_seed + args.seeds), args.epochs)
    # Check the dataset and every setting here, before any work goes out (one clear error).
    first = cells[0]
    ds = _dataset(args.dataset, first["seed"], json.dumps(options, sort_keys=True),
                  args.data_home)
    for m, s, t in {json.dumps([c["model"], c["settings"], c["train"]], sort_keys=True): (
            c["model"], c["settings"], c["train"]) for c in cells}.values():
        build_for(m, ds, **s)
        try:
            _train_config(m, ds, t, 0).validate()
        except TypeError as err:
            raise TrainingError(f"{_label({'model': m, 'settings': s, 'train': t})}: {err}") \
                from None
    if args.device is not None:
        from kamoe.train import TrainConfig, resolve_device

        TrainConfig(device=args.device).validate()  # a name that is no device, here
        if args.address is None:  # local workers: the device must be on this machine
            resolve_device(args.device)
    out = Path(args.out)
    done = read_results(out, args.dataset, options)
    todo = [c for c in cells if cell_key(c) not in done]
    skipped = len(cells) - len(todo)
    print(f"sweep: {len(cells)} cells on {args.dataset} ({skipped} already in {out}, "
          f"{len(todo)} to run) with backend {args.backend}"
          + (f" at {args.address}" if args.address else f", {args.jobs} job(s)"),
          file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    fresh: list[dict[str, Any]] = []
    if todo:
        tasks = [{"cell": c, "data_home": args.data_home, "device": args.device} for c in todo]
        with contextlib.ExitStack() as stack:
            fh = None  # opened at the first result: an engine that fails leaves no file
            for _, row in parallel.dispatch(run_cell, tasks, **parallel.options(args)):
                if fh is None:
                    out.parent.mkdir(parents=True, exist_ok=True)
                    fh = stack.enter_context(out.open("a"))
                fh.write(json.dumps(row) + "\n")
                fh.flush()  # saved before the next result: a kill loses only running cells
                fresh.append(row)
                metric = ", ".join(f"{k}={v:.4g}" for k, v in row["metrics"].items())
                print(f"[{skipped + len(fresh)}/{len(cells)}] {_label(row)} seed={row['seed']}: "
                      f"{metric} ({row['seconds']:.1f} s)", file=sys.stderr, flush=True)
    wall = time.perf_counter() - t0
    done.update({cell_key(r): r for r in fresh})
    rows = [done[cell_key(c)] for c in cells]
    summary = summarise(rows)
    result = {"dataset": args.dataset, "out": str(out), "cells": len(cells), "ran": len(fresh),
              "skipped": skipped, "wall_seconds": round(wall, 3), "backend": args.backend,
              "address": args.address, "jobs": args.jobs, "summary": summary}
    if args.json:
        print(json.dumps(result))
        return 0
    for entry in summary:
        metrics = ", ".join(f"{k}={entry[k]:.4g}±{entry[k + '_std']:.2g}"
                            for k in rows[0]["metrics"])
        print(f"{_label(entry):<50} seeds={entry['seeds']} {metrics} "
              f"({entry['seconds']:.1f} s/fit)")
    print(f"{len(fresh)} cells run in {wall:.1f} s wall, {skipped} taken from {out}")
    return 0
