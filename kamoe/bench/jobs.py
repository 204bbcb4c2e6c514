"""The plumbing every `kamoe bench reproduce` task shares: its common options, seed ranges,
saved results read back (``--from-json``), and jobs dispatched with each result saved at once.

Room: ``kamoe/bench``. Contract: plain functions over parsed arguments; the tasks
(``reproduce`` for California and crypto, ``mlpkan``) import them, never each other.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from kamoe import parallel
from kamoe.errors import UserError


def _list(text: str, cast=str) -> list:
    return [cast(v.strip()) for v in str(text).split(",") if v.strip()]


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


def _run_jobs(args, jobs: list[dict[str, Any]], worker,
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
