"""`kamoe bench ecosystem {cv,dispatch}`: the scikit-learn estimators and the dispatch engines.

``cv``: ``cross_val_score(KANRegressor(), X, y)`` with the defaults on friedman1
(``make_friedman1(n_samples=--n, random_state=--seed)``, scikit-learn's 5-fold split), the
number issue 14 asks to be at least 0.8; one torch thread.

``dispatch``: the same ``--tasks`` sweep cells (``kan`` on friedman1 with the `kamoe train`
recipe, grid sizes x hidden widths x seeds) in this process, on ``--jobs`` loky processes and on
a Dask ``LocalCluster`` of ``--jobs`` workers (and on Ray when it is installed), twice each: cold
(fresh workers, so their imports are counted) and warm (the same workers again). Overhead per
task is the worker time not spent inside the fits: (wall x workers - sum of fit seconds) / tasks.
Every run must find the same numbers as the in-process one; the table says so.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="part", required=True)
    cv = sub.add_parser("cv", help="friedman1 cross_val_score of KANRegressor() with defaults")
    cv.add_argument("--n", type=int, default=1000, help="samples (1000)")
    cv.add_argument("--seed", type=int, default=0, help="make_friedman1 random_state (0)")
    cv.add_argument("--json", action="store_true")
    d = sub.add_parser("dispatch", help="one sweep's wall time per engine, overhead per task")
    d.add_argument("--tasks", type=int, default=20, help="sweep cells (20)")
    d.add_argument("--jobs", type=int, default=2, help="workers of the parallel engines (2)")
    d.add_argument("--n", type=int, default=1000, help="friedman1 samples per cell (1000)")
    d.add_argument("--json", action="store_true")


def _cv(args: argparse.Namespace) -> dict[str, Any]:
    import torch
    from sklearn.datasets import make_friedman1
    from sklearn.model_selection import cross_val_score

    from kamoe.sklearn import KANRegressor

    torch.set_num_threads(1)
    X, y = make_friedman1(n_samples=args.n, random_state=args.seed)
    t0 = time.perf_counter()
    scores = cross_val_score(KANRegressor(), X, y)
    return {"n": args.n, "seed": args.seed, "folds": [round(float(s), 6) for s in scores],
            "mean_r2": float(scores.mean()), "seconds": time.perf_counter() - t0}


def _cells(tasks: int, n: int) -> list[dict[str, Any]]:
    from kamoe.sweep import plan

    grid = {"grid_size": [3, 5], "hidden": [[3], [5]]}
    seeds = range(-(-tasks // 4))
    cells = plan("friedman1", {"n": n}, ["kan"], grid, seeds)[:tasks]
    return [{"cell": c} for c in cells]


def _timed(tasks, label: str, workers: int, **engine: Any) -> tuple[dict[str, Any], list]:
    from kamoe import parallel
    from kamoe.sweep import run_cell

    t0 = time.perf_counter()
    rows = parallel.run_all(run_cell, tasks, **engine)
    wall = time.perf_counter() - t0
    fits = sum(r["seconds"] for r in rows)
    return {"engine": label, "workers": workers, "tasks": len(rows), "wall_s": wall,
            "fit_s": fits, "overhead_per_task_s": (wall * workers - fits) / len(rows)}, rows


def _dispatch(args: argparse.Namespace) -> dict[str, Any]:
    from kamoe import parallel

    if args.tasks < 1 or args.jobs < 1:
        raise ValueError("--tasks and --jobs must be positive integers")
    tasks = _cells(args.tasks, args.n)
    found = lambda rows: [(r["metrics"], r["epochs"]) for r in rows]  # noqa: E731
    out: list[dict[str, Any]] = []
    ref_row, ref = _timed(tasks, "in process", 1)
    out.append({**ref_row, "same_numbers": True})
    runs: list[tuple[str, dict[str, Any]]] = [("loky", {"backend": "loky", "jobs": args.jobs})]
    t0 = time.perf_counter()
    cluster = parallel.local_cluster(args.jobs)
    start = time.perf_counter() - t0
    runs.append(("dask LocalCluster", {"backend": "dask", "address": cluster.scheduler_address}))
    try:
        import ray  # noqa: F401

        runs.append(("ray", {"backend": "ray", "jobs": args.jobs}))
    except ImportError:
        pass
    try:
        for label, engine in runs:
            for state in ("cold", "warm"):
                if label == "ray" and state == "warm":
                    continue  # dispatch starts and stops its local Ray every call
                row, rows = _timed(tasks, f"{label} ({state})", args.jobs, **engine)
                out.append({**row, "same_numbers": found(rows) == found(ref)})
    finally:
        cluster.close()
    return {"tasks": len(tasks), "jobs": args.jobs, "dask_cluster_start_s": start, "rows": out}


def run(args: argparse.Namespace) -> int:
    if args.part == "cv":
        result = _cv(args)
        if args.json:
            print(json.dumps(result))
        else:
            print(f"friedman1 n={result['n']} seed={result['seed']}: 5-fold R^2 "
                  f"{result['folds']}, mean {result['mean_r2']:.4f} "
                  f"({result['seconds']:.1f} s)")
        return 0
    result = _dispatch(args)
    if args.json:
        print(json.dumps(result))
        return 0
    print("| engine | workers | tasks | wall s | sum of fit s | overhead s/task | same numbers |")
    print("|---|---|---|---|---|---|---|")
    for r in result["rows"]:
        print(f"| {r['engine']} | {r['workers']} | {r['tasks']} | {r['wall_s']:.1f} | "
              f"{r['fit_s']:.1f} | {r['overhead_per_task_s']:.2f} | "
              f"{'yes' if r['same_numbers'] else 'NO'} |")
    fit = statistics.fmean(r["fit_s"] / r["tasks"] for r in result["rows"])
    print(f"\nmean fit {fit:.2f} s/task; Dask LocalCluster start "
          f"{result['dask_cluster_start_s']:.1f} s (not in its rows)")
    return 0
