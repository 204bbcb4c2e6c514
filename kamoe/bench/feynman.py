"""``python -m kamoe bench feynman``: symbolic recovery on the AI Feynman equations.

Each equation is sampled noiselessly (2000 points, seed 0), ``extract_formula`` runs under the
time limit, and recovery is judged by SRBench's rule (``kamoe.symbolic.equivalent``). With
``--pykan`` the same equations go through pykan's auto_symbolic under the same budget.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import time
from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--equations", default="all",
                        help="'all' or comma-separated Feynman IDs (e.g. I.6.2a,I.12.1)")
    parser.add_argument("--time-limit", type=float, default=60.0, help="seconds per equation")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="write a markdown table here (+ .json)")
    parser.add_argument("--pykan", action="store_true", help="also run pykan (if installed)")


def _ours(job: tuple[str, float, int]) -> dict[str, Any]:
    import torch

    torch.set_num_threads(1)
    from kamoe.data import load
    from kamoe.symbolic.expr import to_sympy_string
    from kamoe.symbolic.pipeline import extract_formula

    eq_id, limit, seed = job
    t0 = time.time()
    try:
        ds = load(f"feynman:{eq_id}", seed=seed, n=2000)
        res = extract_formula(ds, time_limit=limit, seed=seed)
        return {"id": eq_id, "recovered": bool(res.recovered), "r2_test": res.r2_test,
                "seconds": res.seconds, "method": res.method,
                "formula": to_sympy_string(res.expr)}
    except Exception as exc:  # noqa: BLE001 - one failing equation must not stop the run
        return {"id": eq_id, "recovered": False, "r2_test": float("nan"),
                "seconds": time.time() - t0, "method": "error",
                "formula": f"{type(exc).__name__}: {exc}"}


def _pykan(job: tuple[str, float, int]) -> dict[str, Any]:
    import numpy as np
    import sympy
    import torch

    torch.set_num_threads(1)
    from kan import KAN  # type: ignore[import-not-found]

    from kamoe.data import load
    from kamoe.symbolic.expr import equivalent, evaluate, r2_score

    eq_id, limit, seed = job
    t0 = time.time()
    try:
        ds = load(f"feynman:{eq_id}", seed=seed, n=2000)
        d = ds.n_features
        data = {"train_input": torch.tensor(ds.X_train, dtype=torch.float32),
                "train_label": torch.tensor(ds.y_train, dtype=torch.float32),
                "test_input": torch.tensor(ds.X_test, dtype=torch.float32),
                "test_label": torch.tensor(ds.y_test, dtype=torch.float32)}
        torch.manual_seed(seed)
        model = KAN(width=[d, 5, 1], grid=5, k=3, seed=seed, auto_save=False)
        model.fit(data, opt="LBFGS", steps=50, lamb=0.0)
        model.auto_symbolic(verbose=0)
        model.fit(data, opt="LBFGS", steps=20)
        expr = model.symbolic_formula()[0][0]
        raw = [sympy.Symbol(n) for n in ds.feature_names]
        xs = ds.x_scaling
        sub = {sympy.Symbol(f"x_{i + 1}"): (raw[i] - float(xs.offset[i])) / float(xs.scale[i])
               for i in range(d)}
        ys = ds.y_scaling
        expr = expr.xreplace(sub) * float(np.ravel(ys.scale)[0]) + float(np.ravel(ys.offset)[0])
        r2 = r2_score(evaluate(expr, raw, ds.raw_X("test")), ds.raw_y("test").ravel())
        rec = bool(r2 > 0.5 and equivalent(expr, ds.formula, ranges=ds.meta.get("ranges")))
        return {"id": eq_id, "recovered": rec, "r2_test": r2, "seconds": time.time() - t0,
                "method": "pykan", "formula": str(expr)}
    except Exception as exc:  # noqa: BLE001
        return {"id": eq_id, "recovered": False, "r2_test": float("nan"),
                "seconds": time.time() - t0, "method": "error",
                "formula": f"{type(exc).__name__}: {exc}"}


def _run_all(fn, ids: list[str], limit: float, seed: int, jobs: int, label: str):
    rows = []
    work = [(i, limit, seed) for i in ids]
    ctx = mp.get_context("spawn")
    with ctx.Pool(max(1, jobs), maxtasksperchild=5) as pool:
        for row in pool.imap(fn, work):
            rows.append(row)
            mark = "yes" if row["recovered"] else "no "
            print(f"[{label}] {row['id']:<10} {mark} R2={row['r2_test']:.6f} "
                  f"{row['seconds']:5.1f}s {row['method']:<9} {row['formula']}", flush=True)
    return rows


def _markdown(rows: list[dict], pk: dict[str, dict] | None) -> str:
    head = "| ID | recovered | formula R^2 | seconds | method | formula |"
    sep = "|---|---|---|---|---|---|"
    if pk is not None:
        head += " pykan |"
        sep += "---|"
    lines = [head, sep]
    for r in rows:
        f = r["formula"].replace("|", "\\|")
        line = (f"| {r['id']} | {'yes' if r['recovered'] else 'no'} | {r['r2_test']:.6f} | "
                f"{r['seconds']:.1f} | {r['method']} | `{f}` |")
        if pk is not None:
            p = pk.get(r["id"])
            line += f" {'-' if p is None else ('yes' if p['recovered'] else 'no')} |"
        lines.append(line)
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    from kamoe.data import feynman_ids
    from kamoe.data.feynman import resolve_feynman_id

    if args.equations in (None, "", "all"):
        ids = feynman_ids()
    else:
        ids = []
        for part in str(args.equations).split(","):
            ids.append(resolve_feynman_id(part.strip()))  # raises DataError naming the ID
    t0 = time.time()
    rows = _run_all(_ours, ids, args.time_limit, args.seed, args.jobs, "kamoe")
    n_ok = sum(r["recovered"] for r in rows)
    print(f"kamoe: recovered {n_ok}/{len(rows)} ({100 * n_ok / max(1, len(rows)):.1f}%) "
          f"in {time.time() - t0:.0f} s with --time-limit {args.time_limit} --jobs {args.jobs}",
          flush=True)
    pk = None
    if args.pykan:
        try:
            import kan  # type: ignore[import-not-found]  # noqa: F401
        except ImportError:
            print("pykan is not installed (pip install pykan); skipping the pykan comparison",
                  file=sys.stderr)
        else:
            prow = _run_all(_pykan, ids, args.time_limit, args.seed, args.jobs, "pykan")
            pk = {r["id"]: r for r in prow}
            p_ok = sum(r["recovered"] for r in prow)
            print(f"pykan: recovered {p_ok}/{len(prow)}", flush=True)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(_markdown(rows, pk))
            fh.write(f"\nkamoe recovered {n_ok}/{len(rows)}\n")
            if pk is not None:
                fh.write(f"pykan recovered {sum(r['recovered'] for r in pk.values())}/{len(pk)}\n")
        with open(str(args.out).rsplit(".", 1)[0] + ".json", "w") as fh:
            json.dump({"kamoe": rows, "pykan": list(pk.values()) if pk else None}, fh, indent=1)
    return 0
