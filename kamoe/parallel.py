"""Run independent tasks on an existing engine through joblib: local processes, Dask or Ray.

Room: plumbing for sweeps and benchmarks (no streamlit, no training code of its own). There is no
scheduler here: joblib hands the tasks to loky (local processes), to a Dask cluster or to a Ray
cluster, and this module only picks the engine, starts or joins it, and streams results back.

    from kamoe import parallel

    for index, result in parallel.dispatch(fn, tasks, backend="dask", address="tcp://h:8786"):
        save(tasks[index], result)          # results arrive as they finish, in any order

Contract:

* ``fn`` is a module-level function of one picklable task; it does its own seeding, so the same
  tasks give the same results on every backend. Every task runs with one torch thread (set, and
  restored afterwards, around each call; loky workers also get one OpenMP/BLAS thread).
* ``backend``: ``loky`` (default: ``jobs`` local worker processes; ``jobs=1`` runs in this
  process), ``dask`` (joins the scheduler at ``address``, else starts a ``LocalCluster`` of
  ``jobs`` one-thread worker processes on 127.0.0.1 and closes it at the end) or ``ray`` (joins
  the cluster at ``address``, else starts a local one with ``jobs`` CPUs and shuts it down).
  With an ``address`` the cluster's own workers set the parallelism and ``jobs`` is ignored.
* Results stream back as each task finishes, except on Ray, whose joblib backend cannot return a
  generator: there tasks go out in waves of as many tasks as the cluster has CPUs, and each
  wave's results come back together when it ends.
* A task that raises stops the dispatch with that exception (what had finished was already
  yielded); an engine that is not installed or cannot be reached raises ``DispatchError``
  naming the fix.

``add_arguments(parser)`` adds ``--backend``, ``--address`` and ``--jobs`` to a command,
``options(args)`` turns them back into ``dispatch`` keywords (so every command spells them
alike) and ``check_options(**options(args))`` refuses bad ones before any other work starts.
``run_all`` collects the results in task order; ``local_cluster(n)`` is the Dask cluster that
``dispatch`` starts when it has no address (tests and benchmarks start the same one).
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from kamoe.errors import KamoeError

BACKENDS = ("loky", "dask", "ray")
DEFAULT_BACKEND = "loky"
LOKY_IDLE_SECONDS = 10  # idle loky workers exit after this (joblib's default keeps them 300 s)
CONNECT_SECONDS = 10  # how long to wait for a Dask scheduler or Ray cluster to answer
INSTALL = {"dask": "pip install 'dask[distributed]'", "ray": "pip install ray"}


class DispatchError(KamoeError, ValueError):
    """An engine that is unknown, not installed or unreachable; the message says what to do."""


def add_arguments(parser: argparse.ArgumentParser, jobs: int = 1) -> None:
    """Add --backend, --address and --jobs (default ``jobs``) to a command's parser."""
    parser.add_argument("--backend", choices=BACKENDS, default=DEFAULT_BACKEND,
                        help="where tasks run: loky (local processes, the default), dask or ray")
    parser.add_argument("--address", default=None,
                        help="join this Dask scheduler (tcp://HOST:8786) or Ray cluster "
                             "(HOST:6379, or auto) instead of starting a local one")
    parser.add_argument("--jobs", type=int, default=jobs,
                        help="local workers (one torch thread each); ignored with --address")


def options(args: argparse.Namespace) -> dict[str, Any]:
    """The dispatch keywords from parsed --backend/--address/--jobs."""
    return {"backend": args.backend, "address": args.address, "jobs": args.jobs}


def check_options(backend: str = DEFAULT_BACKEND, address: str | None = None,
                  jobs: int = 1) -> None:
    """Raise DispatchError on options ``dispatch`` would refuse (call it before other work)."""
    if backend not in BACKENDS:
        raise DispatchError(f"backend {backend!r} is unknown; choose one of {', '.join(BACKENDS)}")
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise DispatchError(f"jobs must be a positive integer, got {jobs!r}")
    if backend == "loky" and address:
        raise DispatchError("--address needs --backend dask or ray; loky runs local "
                            "processes only")


def _call(fn: Callable[[Any], Any], index: int, task: Any) -> tuple[int, Any]:
    """Run one task with one torch thread (restored afterwards); returns (index, result)."""
    try:
        import torch
    except ImportError:  # a task that needs no torch
        return index, fn(task)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return index, fn(task)
    finally:
        torch.set_num_threads(before)


def dispatch(fn: Callable[[Any], Any], tasks: Sequence[Any], *, backend: str = DEFAULT_BACKEND,
             address: str | None = None, jobs: int = 1) -> Iterator[tuple[int, Any]]:
    """Run ``fn(task)`` for every task on the chosen engine; yield (index, result) as they end."""
    check_options(backend, address, jobs)
    tasks = list(tasks)
    if not tasks:
        return
    if backend == "ray":
        yield from _ray(fn, tasks, address, jobs)
        return
    import joblib

    calls = (joblib.delayed(_call)(fn, i, t) for i, t in enumerate(tasks))
    with _engine(backend, address, jobs) as (config, n_jobs):
        with joblib.parallel_config(**config):
            yield from joblib.Parallel(n_jobs=n_jobs, return_as="generator_unordered",
                                       batch_size=1, pre_dispatch="2*n_jobs")(calls)


def run_all(fn: Callable[[Any], Any], tasks: Sequence[Any], **kwargs: Any) -> list[Any]:
    """``dispatch`` collected into a list in task order."""
    out: list[Any] = [None] * len(tasks)
    for i, result in dispatch(fn, tasks, **kwargs):
        out[i] = result
    return out


@contextlib.contextmanager
def _engine(backend: str, address: str | None,
            jobs: int) -> Iterator[tuple[dict[str, Any], int]]:
    """joblib's parallel_config keywords and n_jobs for loky or dask, with the engine's lifetime."""
    if backend == "loky":
        yield {"backend": "loky", "inner_max_num_threads": 1,
               "idle_worker_timeout": LOKY_IDLE_SECONDS}, jobs
        return
    try:
        from distributed import Client
    except ImportError:
        raise DispatchError(f"the dask backend needs Dask's distributed scheduler; install it "
                            f"with `{INSTALL['dask']}`") from None
    cluster = None
    try:
        if address:
            try:
                client = Client(address, timeout=CONNECT_SECONDS, set_as_default=False)
            except (OSError, TimeoutError, ValueError) as err:
                raise DispatchError(
                    f"cannot reach the Dask scheduler at {address!r} ({type(err).__name__}: "
                    f"{err}); start one (`dask scheduler`, then `dask worker ADDRESS "
                    f"--nthreads 1`) and pass its address, e.g. tcp://127.0.0.1:8786") from None
        else:
            cluster = local_cluster(jobs)
            client = Client(cluster, set_as_default=False)
        try:
            yield {"backend": "dask", "client": client}, -1
        finally:
            client.close()
    finally:
        if cluster is not None:
            cluster.close()


def local_cluster(workers: int):
    """A Dask ``LocalCluster`` of one-thread worker processes on 127.0.0.1 (no dashboard).

    Its HTTP endpoint takes a free port, so several clusters can run side by side; Dask's
    own log lines below ERROR stay quiet (a sweep's progress is what the user reads).
    """
    import logging

    from distributed import LocalCluster

    return LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                        host="127.0.0.1", dashboard_address=":0",
                        scheduler_kwargs={"dashboard": False}, silence_logs=logging.ERROR)


def _ray(fn: Callable[[Any], Any], tasks: list[Any], address: str | None,
         jobs: int) -> Iterator[tuple[int, Any]]:
    """Ray through joblib, in waves of one task per cluster CPU (its backend has no generator)."""
    try:
        import joblib
        import ray
        from ray.util.joblib import register_ray
    except ImportError:
        raise DispatchError(f"the ray backend needs Ray; install it with `{INSTALL['ray']}`") \
            from None
    started = False
    if not ray.is_initialized():
        try:
            if address:
                ray.init(address=address, log_to_driver=False)
            else:
                ray.init(num_cpus=jobs, include_dashboard=False, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as err:
            raise DispatchError(f"cannot start or join Ray at {address or 'a local cluster'!r} "
                                f"({err}); start one with `ray start --head` and pass its "
                                "address, e.g. 127.0.0.1:6379") from None
        started = True
    try:
        register_ray()
        wave = max(1, int(ray.cluster_resources().get("CPU", jobs)))
        # One Parallel object for every wave keeps the same pool of Ray actors alive.
        with joblib.parallel_config(backend="ray"), \
                joblib.Parallel(n_jobs=wave, batch_size=1) as parallel:
            for start in range(0, len(tasks), wave):
                chunk = range(start, min(start + wave, len(tasks)))
                yield from parallel(joblib.delayed(_call)(fn, i, tasks[i]) for i in chunk)
    finally:
        if started:
            ray.shutdown()
