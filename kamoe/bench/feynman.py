"""``python -m kamoe bench feynman``: symbolic recovery on the AI Feynman equations.

Each equation is sampled (2000 points, seed 0, 75/25 split; ``--noise SIGMA`` adds SRBench's
noise ``N(0, SIGMA * RMS(y))`` to the training targets), ``extract_formula`` runs with the
chosen ``--paths`` under ``--time-limit`` seconds, and recovery is judged by SRBench's rule
(``kamoe.symbolic.equivalent``). ``--peers pykan,operon`` runs pykan's MultKAN recipe and
Operon on the same data under the same budget, each in a process of its own that is killed at
the limit (an overrun counts as a miss), judged by the same rule.

``--equations tuning`` / ``holdout``: the KAN path was developed on the 70 equations of the
tuning set; the 30 of ``HOLDOUT`` were set aside before any of them was run (a seeded sample,
``random.Random(20261201)``, of the equations not yet looked at) and are measured only at the
end. BENCHMARKS.md reports the two sets separately.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from kamoe.errors import UserError

HOLDOUT = (
    "I.12.2 I.14.4 I.16.6 I.24.6 I.25.13 I.29.4 I.30.5 I.32.17 I.34.8 I.34.1 I.34.27 I.39.11 "
    "I.43.43 I.47.23 II.6.11 II.8.7 II.11.3 II.11.17 II.11.28 II.13.17 II.15.5 II.24.17 "
    "II.34.11 II.34.29b II.36.38 III.9.52 III.10.19 III.13.18 III.15.12 III.15.14"
).split()
PEERS = ("pykan", "operon")
_GRACE = 15.0  # seconds a peer may run past the limit (its scoring) before it is killed
_STARTUP = 120.0  # seconds a peer's process may take to import its peer and load the data


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--equations", default="all",
                        help="'all', 'tuning', 'holdout' or comma-separated Feynman IDs")
    parser.add_argument("--paths", default="kan,monomial,index",
                        help="formula paths for kamoe, comma-separated (kan, monomial, index)")
    parser.add_argument("--noise", type=float, default=0.0,
                        help="SRBench target noise: N(0, SIGMA * RMS(y)) on training targets")
    parser.add_argument("--time-limit", type=float, default=60.0, help="seconds per equation")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--peers", default="",
                        help="also run these peers on the same data: pykan, operon")
    parser.add_argument("--out", default=None, help="write a markdown table here (+ .json)")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    from kamoe import parallel

    parallel.add_arguments(parser, jobs=2)


def equation_ids(spec: str) -> list[str]:
    """The IDs a ``--equations`` value names (raises DataError for an unknown ID)."""
    from kamoe.data import feynman_ids
    from kamoe.data.feynman import resolve_feynman_id

    spec = (spec or "all").strip()
    ids = feynman_ids()
    if spec == "all":
        return ids
    if spec == "holdout":
        return [i for i in ids if i in HOLDOUT]
    if spec == "tuning":
        return [i for i in ids if i not in HOLDOUT]
    return [resolve_feynman_id(part.strip()) for part in spec.split(",") if part.strip()]


def _dataset(eq_id: str, seed: int, noise: float):
    from kamoe.data import load

    return load(f"feynman:{eq_id}", seed=seed, n=2000, noise=noise)


def run_kamoe(job: dict[str, Any]) -> dict[str, Any]:
    """One equation through ``extract_formula`` (a worker process's task)."""
    import torch

    torch.set_num_threads(1)
    from kamoe.symbolic.expr import to_sympy_string
    from kamoe.symbolic.pipeline import extract_formula

    t0 = time.time()
    try:
        ds = _dataset(job["id"], job["seed"], job["noise"])
        res = extract_formula(ds, time_limit=job["limit"], seed=job["seed"],
                              paths=tuple(job["paths"]))
        return {"id": job["id"], "runner": "kamoe", "recovered": bool(res.recovered),
                "r2_test": res.r2_test, "network_r2": res.network_r2,
                "seconds": res.seconds, "method": res.method,
                "formula": to_sympy_string(res.expr)}
    except Exception as exc:  # noqa: BLE001 - one failing equation must not stop the run
        return _error_row(job, "kamoe", t0, exc)


def _error_row(job: dict[str, Any], runner: str, t0: float, exc: BaseException | str):
    text = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"
    return {"id": job["id"], "runner": runner, "recovered": False, "r2_test": float("nan"),
            "network_r2": None, "seconds": time.time() - t0, "method": "error",
            "formula": text}


def run_peer(job: dict[str, Any]) -> dict[str, Any]:
    """One equation through a peer, in a child process killed at the limit (plus grace)."""
    # a subprocess, not a multiprocessing child: the pool's workers are daemonic and may not
    # have children of their own. The clock starts when the child has imported its peer and
    # loaded the data (on a busy machine that alone can take longer than the grace).
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        out, ready, err = (Path(tmp) / n for n in ("row.json", "ready", "stderr.txt"))
        cmd = [sys.executable, "-c", "import sys; from kamoe.bench.feynman import _peer_child; "
               "_peer_child(*sys.argv[1:])", json.dumps(job), str(out), str(ready)]
        with open(err, "w") as fh:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=fh)
            while not ready.exists() and proc.poll() is None and time.time() < t0 + _STARTUP:
                time.sleep(0.05)
            started = time.time()
            try:
                proc.wait(timeout=job["limit"] + _GRACE if ready.exists() else 0)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                why = (f"overran the {job['limit']:g} s budget" if ready.exists() else
                       f"did not start within {_STARTUP:g} s")
                row = _error_row(job, job["peer"], started, why)
                row["method"] = "timeout"
                return row
        if out.is_file():
            return json.loads(out.read_text())
        last = err.read_text().strip().splitlines()[-1:] or [""]
    return _error_row(job, job["peer"], started, f"exited with code {proc.returncode} {last[0]}")


def _peer_child(job_json: str, out_path: str, ready_path: str) -> None:
    import torch

    torch.set_num_threads(1)
    from kamoe.bench import peers

    job = json.loads(job_json)
    t0 = time.time()
    try:
        missing = peers.available(job["peer"])  # imports the peer before the clock starts
        ds = _dataset(job["id"], job["seed"], job["noise"])
        Path(ready_path).touch()
        row = (_error_row(job, job["peer"], t0, missing) if missing else
               peers.run(job["peer"], ds, job["limit"], job["seed"]))
    except Exception as exc:  # noqa: BLE001
        row = _error_row(job, job["peer"], t0, exc)
    Path(out_path).write_text(json.dumps(row, default=float))


def _task(job: dict[str, Any]) -> dict[str, Any]:
    return run_kamoe(job) if job["peer"] == "kamoe" else run_peer(job)


def _run_all(jobs: list[dict[str, Any]], dispatch_options: dict[str, Any],
             quiet: bool) -> list[dict[str, Any]]:
    from kamoe import parallel

    rows: list[dict[str, Any] | None] = [None] * len(jobs)
    for index, row in parallel.dispatch(_task, jobs, **dispatch_options):
        rows[index] = row
        if not quiet:
            mark = "yes" if row["recovered"] else "no "
            print(f"[{row['runner']}] {row['id']:<10} {mark} R2={row['r2_test']:.6f} "
                  f"{row['seconds']:5.1f}s {row['method']:<9} {row['formula'][:160]}",
                  file=sys.stderr, flush=True)
    return [r for r in rows if r is not None]


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Recovered counts per runner and per method, and the time to a recovered formula."""
    out: dict[str, Any] = {}
    for runner in dict.fromkeys(r["runner"] for r in rows):
        mine = [r for r in rows if r["runner"] == runner]
        ok = [r for r in mine if r["recovered"]]
        out[runner] = {
            "recovered": len(ok), "equations": len(mine),
            "by_method": dict(Counter(r["method"] for r in ok)),
            "median_seconds_recovered": statistics.median([r["seconds"] for r in ok])
            if ok else None,
            "median_seconds": statistics.median([r["seconds"] for r in mine]) if mine else None,
        }
    return out


def _markdown(rows: list[dict[str, Any]], summ: dict[str, Any]) -> str:
    runners = list(summ)
    head = "| ID | " + " | ".join(f"{r} | {r} R^2 | {r} s | {r} method" for r in runners)
    lines = [head + " | kamoe formula |",
             "|---|" + "---|---|---|---|" * len(runners) + "---|"]
    by = {(r["runner"], r["id"]): r for r in rows}
    for eq in dict.fromkeys(r["id"] for r in rows):
        cells = []
        for runner in runners:
            r = by.get((runner, eq))
            cells.append("- | - | - | -" if r is None else
                         f"{'yes' if r['recovered'] else 'no'} | {r['r2_test']:.6f} | "
                         f"{r['seconds']:.1f} | {r['method']}")
        k = by.get(("kamoe", eq))
        formula = "" if k is None else k["formula"].replace("|", "\\|")
        formula = formula if len(formula) <= 90 else formula[:87] + "..."
        lines.append(f"| {eq} | " + " | ".join(cells) + f" | `{formula}` |")
    lines.append("")
    for runner, s in summ.items():
        lines.append(f"{runner}: recovered {s['recovered']}/{s['equations']}, by method "
                     f"{s['by_method']}, median seconds to a recovered formula "
                     f"{s['median_seconds_recovered']}")
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    from kamoe import parallel
    from kamoe.symbolic.pipeline import PATHS

    dispatch_options = parallel.options(args)
    parallel.check_options(**dispatch_options)
    ids = equation_ids(args.equations)
    paths = [p.strip() for p in str(args.paths).split(",") if p.strip()]
    bad = [p for p in paths if p not in PATHS]
    if bad or not paths:
        raise UserError(f"--paths: unknown path(s) {bad or paths}; choose from "
                         f"{', '.join(PATHS)}")
    peers = [p.strip() for p in str(args.peers).split(",") if p.strip()]
    bad = [p for p in peers if p not in PEERS]
    if bad:
        raise UserError(f"--peers: unknown peer(s) {bad}; choose from {', '.join(PEERS)}")
    if not (args.noise >= 0):
        raise UserError(f"--noise must be >= 0 (a share of the targets' RMS), got {args.noise}")
    if not args.time_limit > 0:
        raise UserError(f"--time-limit must be positive, got {args.time_limit}")
    for peer in peers:
        from kamoe.bench.peers import available

        missing = available(peer)
        if missing:
            raise UserError(missing)
    base = {"limit": float(args.time_limit), "seed": int(args.seed),
            "noise": float(args.noise), "paths": paths}
    jobs = [{**base, "id": i, "peer": "kamoe"} for i in ids]
    jobs += [{**base, "id": i, "peer": p} for p in peers for i in ids]
    t0 = time.time()
    rows = _run_all(jobs, dispatch_options, quiet=False)
    summ = summary(rows)
    wall = time.time() - t0
    for runner, s in summ.items():
        print(f"{runner}: recovered {s['recovered']}/{s['equations']} "
              f"({100 * s['recovered'] / max(1, s['equations']):.1f}%) by method "
              f"{s['by_method']}; median {s['median_seconds_recovered']} s to a recovered "
              f"formula", file=sys.stderr, flush=True)
    print(f"{len(jobs)} runs in {wall:.0f} s wall on {dispatch_options['backend']} with --jobs "
          f"{args.jobs}, --time-limit {args.time_limit}, --noise {args.noise}, --paths "
          f"{','.join(paths)}", file=sys.stderr, flush=True)
    result = {"rows": rows, "summary": summ, "paths": paths, "noise": args.noise,
              "time_limit": args.time_limit, "seed": args.seed, "wall_seconds": wall,
              "equations": args.equations, "backend": dispatch_options["backend"],
              "jobs": args.jobs}
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(_markdown(rows, summ))
        with open(str(args.out).rsplit(".", 1)[0] + ".json", "w") as fh:
            json.dump(result, fh, indent=1)
    if args.json:
        print(json.dumps(result))
    return 0
