"""The dispatcher on real engines: loky processes, a Dask LocalCluster on loopback, Ray if present.

Every training task is a real sweep cell (kamoe.sweep.run_cell) on a small Feynman equation; the
same cells must give the same numbers on every engine as in this process.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import psutil
import pytest
from distributed import Client

from kamoe import parallel
from kamoe.cli import main
from kamoe.sweep import plan, run_cell

# 4 cells of a couple of epochs each: a fraction of a second per cell once torch is imported
CELLS = plan("feynman:II.3.24", {"n": 300}, ["kan"], {"grid_size": [3, 5]}, range(2), epochs=3)
TASKS = [{"cell": c} for c in CELLS]


def _found(rows: list[dict]) -> list[tuple]:
    """What each cell found, in cell order (not where or how fast it ran)."""
    return [(r["model"], json.dumps(r["settings"]), r["seed"], r["metrics"], r["epochs"])
            for r in rows]


@pytest.fixture(scope="module")
def local_rows():
    return parallel.run_all(run_cell, TASKS)  # loky with jobs=1: in this process


@pytest.fixture(scope="module")
def dask_cluster():
    """Two one-thread worker processes on 127.0.0.1; their processes are gone afterwards."""
    cluster = parallel.local_cluster(2)
    with Client(cluster) as client:
        pids = list(client.run(os.getpid).values())
    yield cluster
    cluster.close()
    deadline = time.time() + 10
    while any(psutil.pid_exists(p) for p in pids) and time.time() < deadline:
        time.sleep(0.1)
    assert not any(psutil.pid_exists(p) for p in pids), "Dask workers outlived their cluster"


def test_in_process_run_keeps_the_callers_torch_threads(local_rows):
    import torch

    before = torch.get_num_threads()
    assert parallel.run_all(run_cell, TASKS[:1])[0]["metrics"] == local_rows[0]["metrics"]
    assert torch.get_num_threads() == before


def test_dask_cluster_gives_the_local_numbers(dask_cluster, local_rows):
    rows = parallel.run_all(run_cell, TASKS, backend="dask", address=dask_cluster.scheduler_address)
    assert _found(rows) == _found(local_rows)  # exactly: every cell seeds itself
    assert len({r["worker"] for r in rows}) == 2  # both workers took cells
    assert os.getpid() not in {int(r["worker"].split(":")[1]) for r in rows}


def test_dask_results_stream_back_as_they_finish(dask_cluster):
    # time.sleep(task) returns None: task 0 sleeps 2 s while the other worker runs short
    # tasks, so a short task must be handed back first. (Not "task 0 last": Dask may queue a
    # short task behind task 0 on the same worker before work stealing moves it; that order
    # made this test fail once on a clean clone.)
    order = [i for i, _ in parallel.dispatch(time.sleep, [2.0, 0.0, 0.0, 0.0], backend="dask",
                                             address=dask_cluster.scheduler_address)]
    assert sorted(order) == [0, 1, 2, 3] and order[0] != 0


def test_a_failing_task_raises_its_own_error(dask_cluster):
    with pytest.raises(ValueError, match="math domain error"):
        list(parallel.dispatch(math.sqrt, [4.0, -1.0], backend="dask",
                               address=dask_cluster.scheduler_address))


def test_sweep_on_a_dask_cluster_matches_a_local_sweep(dask_cluster, tmp_path, capsys):
    common = ["sweep", "--dataset", "feynman:II.3.24", "--data-option", "n=300", "--models",
              "kan,mlp", "--grid", '{"grid_size": [3, 5]}', "--epochs", "3", "--json"]
    assert main([*common, "--out", str(tmp_path / "local.jsonl")]) == 0
    local = json.loads(capsys.readouterr().out)
    assert main([*common, "--out", str(tmp_path / "dask.jsonl"), "--backend", "dask",
                 "--address", dask_cluster.scheduler_address]) == 0
    remote = json.loads(capsys.readouterr().out)
    assert remote["cells"] == local["cells"] == 3  # 2 KAN grid sizes + 1 MLP
    def found(result: dict) -> list[dict]:
        return [{k: v for k, v in e.items() if k != "seconds"} for e in result["summary"]]

    assert found(remote) == found(local)  # every metric, exactly
    assert remote["backend"] == "dask"


CALIFORNIA = Path(__file__).resolve().parents[2] / "shared" / "data" / "sklearn"


@pytest.mark.skipif(not (CALIFORNIA / "cal_housing_py3.pkz").is_file(),
                    reason="shared California cache file absent (../shared/data/sklearn)")
def test_bench_reproduce_on_a_dask_cluster_matches_the_local_run(dask_cluster, tmp_path):
    args = ["bench", "reproduce", "california", "--families", "mlp", "--variants",
            "standard,kamoe", "--widths", "5", "--depths", "1", "--seeds", "1",
            "--max-epochs", "2", "--data-home", str(CALIFORNIA)]
    assert main([*args, "--out", str(tmp_path / "local.md")]) == 0
    assert main([*args, "--out", str(tmp_path / "dask.md"), "--backend", "dask", "--address",
                 dask_cluster.scheduler_address]) == 0
    local, remote = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("local", "dask"))
    key = lambda r: r["variant"]  # noqa: E731
    assert [(r["variant"], r["r2"], r["epochs"]) for r in sorted(remote, key=key)] == [
        (r["variant"], r["r2"], r["epochs"]) for r in sorted(local, key=key)]


def test_dask_without_address_starts_and_closes_its_own_cluster():
    me = psutil.Process()
    others = {p.pid for p in me.children(recursive=True)}  # e.g. the module's cluster
    results = parallel.dispatch(math.sqrt, [1.0, 4.0, 9.0], backend="dask", jobs=1)
    first = next(results)
    # the new cluster's worker process, running now: a Python process like this one
    # (multiprocessing's resource tracker, which lives as long as this process, is not one; nor
    # is a helper that the session's browser, kept for the end-to-end tests, starts meanwhile)
    workers = [p for p in me.children(recursive=True) if p.pid not in others
               and p.name() == me.name() and "resource_tracker" not in " ".join(p.cmdline())]
    assert workers and sorted([first, *results]) == [(0, 1.0), (1, 2.0), (2, 3.0)]
    _, alive = psutil.wait_procs(workers, timeout=10)  # closed with the last result
    assert not alive, f"worker processes left behind: {alive}"


def test_loky_processes_give_the_local_numbers(local_rows):
    rows = parallel.run_all(run_cell, TASKS[:2], backend="loky", jobs=2)
    assert _found(rows) == _found(local_rows[:2])
    assert os.getpid() not in {int(r["worker"].split(":")[1]) for r in rows}


def test_engine_problems_name_the_fix(monkeypatch, capsys, tmp_path):
    with pytest.raises(parallel.DispatchError, match="choose one of loky, dask, ray"):
        list(parallel.dispatch(abs, [1], backend="spark"))
    with pytest.raises(parallel.DispatchError, match="--address needs --backend dask or ray"):
        list(parallel.dispatch(abs, [1], address="tcp://127.0.0.1:8786"))
    with pytest.raises(parallel.DispatchError, match="jobs must be a positive integer"):
        list(parallel.dispatch(abs, [1], jobs=0))
    monkeypatch.setattr(parallel, "CONNECT_SECONDS", 1)  # nothing listens there: fail fast
    with pytest.raises(parallel.DispatchError, match="cannot reach the Dask scheduler"):
        list(parallel.dispatch(abs, [1], backend="dask", address="tcp://127.0.0.1:9"))
    assert list(parallel.dispatch(abs, [])) == []
    code = main(["sweep", "--dataset", "feynman:II.3.24", "--models", "kan", "--out",
                 str(tmp_path / "x.jsonl"), "--backend", "dask", "--address", "tcp://127.0.0.1:9"])
    assert code == 2 and "cannot reach the Dask scheduler" in capsys.readouterr().err
    assert not (tmp_path / "x.jsonl").exists()  # nothing ran, so no results file


def test_ray_gives_the_local_numbers(local_rows):
    ray = pytest.importorskip("ray", reason="ray is not installed (optional: pip install ray)")
    rows = parallel.run_all(run_cell, TASKS, backend="ray", jobs=2)
    assert _found(rows) == _found(local_rows)
    assert not ray.is_initialized()  # the local Ray it started is shut down again
