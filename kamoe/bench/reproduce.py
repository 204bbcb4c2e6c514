"""`kamoe bench reproduce {california,crypto}`: the KAMoE paper's experiments, beside its numbers.

(`mlpkan`, the MLP-KAN paper's, lives in kamoe/bench/mlpkan.py and reuses the helpers here.)

Reference values are the mean test R^2 over 5 runs printed in the KAMoE reference notebooks
(remigenet/KAMoE example/california.ipynb and example/volume_prediction.ipynb, as transcribed in
shared/reference/papers.md section 3). Protocol (papers.md section 3): Adam 1e-3, MSE, batch 128,
a 20 % validation split, early stopping (patience 10, min delta 1e-5, best weights restored),
reduce-on-plateau (factor 0.25, patience 5, min lr 2.5e-5), at most 1000 epochs.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from kamoe import parallel
from kamoe.errors import UserError

ROOT = Path(__file__).resolve().parents[2]



def __getattr__(name: str) -> Any:
    """CALIFORNIA_REF and CRYPTO_REF: the reference tables, which live in kamoe.recipes.

    Looked up lazily so that building the CLI's parser (which imports this module) does not
    import torch.
    """
    if name in ("CALIFORNIA_REF", "CRYPTO_REF"):
        from kamoe import recipes

        return getattr(recipes, name)
    raise AttributeError(name)

VARIANT_PREFIX = {"standard": "", "moe": "moe-", "kamoe": "kamoe-"}


def _list(text: str, cast=str) -> list:
    return [cast(v.strip()) for v in str(text).split(",") if v.strip()]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="task", required=True)
    ca = sub.add_parser("california", help="MLP/KAN x standard/MoE/KAMoE on California housing")
    ca.add_argument("--families", default="mlp,kan")
    ca.add_argument("--variants", default="standard,moe,kamoe")
    ca.add_argument("--widths", default="25,100")
    ca.add_argument("--depths", default="1,2")
    ca.add_argument("--data-home", default=None,
                    help="folder with cal_housing_py3.pkz (default $KAMOE_DATA_HOME, else "
                         "../shared/data/sklearn when present)")
    _common(ca)
    cr = sub.add_parser("crypto", help="GRU/LSTM x standard/MoE/KAMoE on hourly notional volume")
    cr.add_argument("--data", default=None,
                    help="folder of Binance_<ASSET>USDT_1h.csv (default ../shared/data/crypto)")
    cr.add_argument("--targets", default="BTC,ETH")
    cr.add_argument("--horizons", default="1,6")
    cr.add_argument("--cells", default="gru,lstm")
    cr.add_argument("--variants", default="standard,moe,kamoe")
    cr.add_argument("--units", type=int, default=32,
                    help="recurrent units per layer (the reference used 100; see BENCHMARKS.md)")
    cr.add_argument("--start", default="2020-01-01", help="first hour used (ISO date)")
    cr.add_argument("--end", default=None, help="first hour not used (ISO date)")
    _common(cr)
    from kamoe.bench import mlpkan

    mlpkan.add_arguments(sub.add_parser(
        "mlpkan", help="MLP-KAN's Feynman table, routing split, representation and ablations"))


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--first-seed", type=int, default=0,
                   help="seeds run are first-seed .. first-seed + seeds - 1 (split a grid "
                        "over several processes, then join them with --from-json)")
    p.add_argument("--from-json", default=None,
                   help="no fitting: print the table of the results saved in these JSON files "
                        "(comma-separated; written by --out)")
    p.add_argument("--max-epochs", type=int, default=1000)
    parallel.add_arguments(p)  # --backend, --address, --jobs
    p.add_argument("--out", default=None, help="also write the table (markdown) and JSON here")


def _seeds(args) -> range:
    return range(args.first_seed, args.first_seed + args.seeds)


def _fit_one(job: dict[str, Any]) -> dict[str, Any]:
    """One fit in a worker: returns the cell, seed, test R^2, CPU seconds and epochs."""
    import torch

    from kamoe.data import load
    from kamoe.models import build_for
    from kamoe.recipes import paper_protocol
    from kamoe.train import fit, set_seed

    torch.set_num_threads(1)
    ds = load(job["spec"], seed=job["seed"], **job["options"])
    set_seed(job["seed"])
    model = build_for(job["model"], ds, **job["config"])
    cpu0 = time.process_time()
    hist = fit(model, ds, paper_protocol(job["max_epochs"], job["seed"]))
    return {**job["cell"], "seed": job["seed"], "r2": hist.metrics["r2"],
            "cpu_s": time.process_time() - cpu0, "epochs": len(hist.epochs),
            "params": model.n_params()}


def _california_jobs(args) -> list[dict[str, Any]]:
    from kamoe.recipes import REFERENCE_KAN

    home = args.data_home or os.environ.get("KAMOE_DATA_HOME")
    if home is None and (ROOT.parent / "shared/data/sklearn").is_dir():
        home = str(ROOT.parent / "shared/data/sklearn")
    jobs = []
    # Seed outermost: a run cut short still covers every cell with its first seeds.
    for seed, fam, var, w, d in itertools.product(
            _seeds(args), _list(args.families), _list(args.variants),
            _list(args.widths, int), _list(args.depths, int)):
        config: dict[str, Any] = {"hidden": [w] * d}
        if fam == "kan":  # keras_efficient_kan defaults used by the reference: grid 3, ReLU base
            config.update(REFERENCE_KAN)
        jobs.append({"spec": "california", "options": {"data_home": home}, "seed": seed,
                     "model": VARIANT_PREFIX[var] + fam, "config": config,
                     "max_epochs": args.max_epochs,
                     "cell": {"family": fam, "variant": var, "width": w, "depth": d}})
    return jobs


def _crypto_jobs(args) -> list[dict[str, Any]]:
    folder = args.data or str(ROOT.parent / "shared/data/crypto")
    jobs = []
    for seed, asset, h, cell, var in itertools.product(
            _seeds(args), _list(args.targets), _list(args.horizons, int),
            _list(args.cells), _list(args.variants)):
        options = {"horizon": h, "target": asset, "start": args.start}
        if args.end:
            options["end"] = args.end
        jobs.append({"spec": f"crypto:{folder}", "options": options, "seed": seed,
                     "model": VARIANT_PREFIX[var] + cell,
                     "config": {"units": args.units, "layers": 2},
                     "max_epochs": args.max_epochs,
                     "cell": {"asset": asset, "horizon": h, "cell": cell, "variant": var}})
    return jobs


def run(args: argparse.Namespace) -> int:
    if args.task == "mlpkan":
        from kamoe.bench import mlpkan

        return mlpkan.run(args)
    if args.seeds < 1 or args.max_epochs < 1 or args.jobs < 1 or args.first_seed < 0:
        raise UserError("--seeds, --max-epochs and --jobs must be positive integers and "
                         "--first-seed >= 0")
    california = args.task == "california"
    keys = (("family", "variant", "width", "depth") if california
            else ("asset", "horizon", "cell", "variant"))
    t0 = time.time()
    if args.from_json:
        results = _load_results(_list(args.from_json), keys, args.task)
        wall = None
    else:
        results = _run_jobs(args, _california_jobs(args) if california else _crypto_jobs(args))
        wall = time.time() - t0
    from kamoe import recipes

    table = _table(results, keys, recipes.CALIFORNIA_REF if california else recipes.CRYPTO_REF)
    print(table)
    if wall is not None:
        where = args.address or f"{args.jobs} worker(s)"
        print(f"\n{len(results)} fits in {wall:.0f} s wall on {args.backend} with {where}")
    if args.out:
        Path(args.out).write_text(table + "\n")
        if not args.from_json:
            Path(args.out).with_suffix(".json").write_text(json.dumps(results, indent=1))
    return 0


def _load_results(names: list[str], keys: tuple[str, ...], task: str,
                  metrics: tuple[str, ...] = ("r2",)) -> list[dict[str, Any]]:
    """Fits saved by an earlier ``--out`` run (its .json files), checked before use."""
    needed = set(keys) | set(metrics) | {"cpu_s", "epochs", "params"}
    results: list[dict[str, Any]] = []
    for name in names:
        hint = f"pass the .json files that `kamoe bench reproduce {task} --out FILE` wrote"
        try:
            rows = json.loads(Path(name).read_text())
        except OSError as err:
            raise UserError(f"--from-json: cannot read {name} ({err.strerror}); {hint}") from None
        except json.JSONDecodeError:
            raise UserError(f"--from-json: {name} is not JSON; {hint}") from None
        if not (isinstance(rows, list)
                and all(isinstance(r, dict) and needed <= r.keys() for r in rows)):
            raise UserError(f"--from-json: {name} does not hold {task} results; {hint}")
        results += rows
    return results


def _run_jobs(args, jobs: list[dict[str, Any]], worker=_fit_one,
              done: list[dict[str, Any]] = ()) -> list[dict[str, Any]]:
    """Run ``worker`` on every job; ``done`` (earlier results) and each new one saved to --out."""
    # Fail early, in this process, on a missing data folder (one clear message, exit 2).
    from kamoe.data import load

    load(jobs[0]["spec"], seed=0, **jobs[0]["options"])
    results = list(done)
    for _, r in parallel.dispatch(worker, jobs, **parallel.options(args)):
        results.append(r)  # in the order they finish; the table sorts its rows
        print(f"{json.dumps(r)}", file=sys.stderr, flush=True)
        if args.out:  # keep what has finished, in case the run is cut short
            Path(args.out).with_suffix(".json").write_text(json.dumps(results, indent=1))
    return results


def _table(results: list[dict[str, Any]], keys: tuple[str, ...], ref: dict) -> str:
    """Markdown: one row per cell (sorted), mean and sample std over its seeds."""
    groups: dict[tuple, list[dict]] = {}
    for r in results:
        groups.setdefault(tuple(r[k] for k in keys), []).append(r)
    lines = ["| " + " | ".join(keys) + " | seeds | ours mean R^2 | std | reference | diff "
             "| CPU s/fit | epochs | params |",
             "|" + "---|" * (len(keys) + 8)]
    order = {"standard": 0, "moe": 1, "kamoe": 2}
    for key in sorted(groups, key=lambda k: tuple(order.get(v, v) if isinstance(v, str)
                                                  and v in order else v for v in k)):
        rs = groups[key]
        r2 = [r["r2"] for r in rs]
        mean = statistics.fmean(r2)
        std = statistics.stdev(r2) if len(r2) > 1 else 0.0
        reference = ref.get(key)
        diff = "" if reference is None else f"{mean - reference:+.4f}"
        refs = "" if reference is None else f"{reference:.4f}"
        lines.append("| " + " | ".join(str(k) for k in key) + f" | {len(rs)} | {mean:.4f} | "
                     f"{std:.4f} | {refs} | {diff} | "
                     f"{statistics.fmean(r['cpu_s'] for r in rs):.1f} | "
                     f"{statistics.fmean(r['epochs'] for r in rs):.0f} | {rs[0]['params']} |")
    return "\n".join(lines)
