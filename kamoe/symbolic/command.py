"""``python -m kamoe formula``: extract a closed-form formula from a dataset."""

from __future__ import annotations

import argparse
import json
import math
import sys
import time

from kamoe.errors import FormulaError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--dataset", help="a dataset name, e.g. feynman:I.6.2a")
    src.add_argument("--csv", help="a CSV file (use with --target)")
    parser.add_argument("--target", help="the CSV column to explain")
    parser.add_argument("--time-limit", type=float, default=60.0, help="seconds (default 60)")
    parser.add_argument("--paths", default=None,
                        help="where the formula may come from, comma-separated: kan (read from "
                             "a trained KAN), monomial, index (searches on the data); default: "
                             "all, in that order")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")


def _num(v):
    return None if v is None or (isinstance(v, float) and not math.isfinite(v)) else v


def run(args: argparse.Namespace) -> int:
    from kamoe.data import load
    from kamoe.symbolic.pipeline import PATHS, extract_formula, parse_paths

    paths = parse_paths(args.paths) if args.paths else PATHS
    if args.csv:
        if not args.target:
            raise FormulaError("--csv needs --target COLUMN naming the column to explain")
        ds = load(f"csv:{args.csv}", target=args.target, seed=args.seed)
    else:
        ds = load(args.dataset, seed=args.seed)
    if ds.task != "regression":
        raise FormulaError(f"{ds.name} is a {ds.task} dataset; formula needs a regression target")
    if not args.time_limit > 0:
        raise FormulaError(f"--time-limit must be positive, got {args.time_limit}")

    def progress(frac: float, msg: str) -> None:
        print(f"[{100 * frac:5.1f}%] {msg}", file=sys.stderr, flush=True)

    # The limit covers the whole command: `kamoe.cli.main` passes when the process started, so
    # start-up (imports, data) already spent is subtracted.
    started = getattr(args, "started", None) or time.time()
    budget = max(1.0, args.time_limit - (time.time() - started))
    res = extract_formula(ds, time_limit=budget, seed=args.seed, paths=paths,
                          progress=progress)
    out = res.as_dict()
    out = {k: _num(v) for k, v in out.items()}
    if args.json:
        print(json.dumps(out))
    else:
        print(f"formula   : {res.expr}")
        print(f"method    : {res.method}")
        print(f"R^2 test  : {res.r2_test:.6f}"
              + (f"   (network {res.network_r2:.6f})" if res.network_r2 is not None else ""))
        print(f"seconds   : {res.seconds:.1f}")
        if res.truth is not None:
            print(f"truth     : {res.truth}")
            print(f"recovered : {'yes' if res.recovered else 'no'} (SRBench rule)")
    return 0
