"""Derived runs: a trained KAN pruned, or put on a finer grid and retrained, as a new run.

Plain Python (no streamlit). Pruning and grid extension make a new model, so their result is a
new :class:`kamoe.runs.Run` beside its parent, which stays as it was (nothing the user had is
changed or lost). The new run is named after its parent (``"<parent> · pruned"``,
``"<parent> · grid 10"``), reads the same dataset request, and records in ``run.derivation``:
the parent's id and name, the step and its settings, the test metrics before and after, the
network's widths and parameter counts before and after, and the node labels (a pruned network's
hidden nodes keep the names they had, ``kamoe.interpret.kept_node_names``). The work itself is
the library's: ``kamoe.interpret.prune`` (pruning, grid extension, retraining with cut edges kept
at zero), with the training schedule of :func:`kamoe.recipes.training_config`.
:func:`prune_job` and :func:`extend_grid_job` wrap it as queue jobs (kind ``"derive"``) whose
result is the new run; :class:`kamoe.state.SessionState` queues and collects them.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import numpy as np

from kamoe import recipes
from kamoe.data import Dataset
from kamoe.errors import UserError
from kamoe.jobs import Job, configure_torch_threads
from kamoe.runs import Run
from kamoe.train import EpochProgress, History, TrainConfig, TrainingError, evaluate

PRUNE = "prune"
EXTEND_GRID = "extend_grid"
STEPS = (PRUNE, EXTEND_GRID)
MAX_NAME = 120  # the run store's limit on a run name


class DeriveError(UserError):
    """A prune or grid extension the run cannot take (not a plain KAN, a bad setting)."""


def derive_problem(run: Run) -> str | None:
    """Why ``run`` cannot be pruned or regridded (None when it can): a plain B-spline KAN only."""
    model = run.model
    conf = getattr(model, "config", {}) or {}
    if run.model_name != "kan" or conf.get("name") != "kan" or conf.get("head") != "kan":
        head = f" with head {conf.get('head')!r}" if run.model_name == "kan" else ""
        return (f"pruning and grid extension work on a plain B-spline KAN (model `kan` with "
                f"head `kan`); this run is `{run.model_name}`{head}")
    return None


def _check(run: Run) -> None:
    problem = derive_problem(run)
    if problem:
        raise DeriveError(problem)


def _thresholds(edge_threshold: float | None, node_threshold: float | None) -> tuple[float, float]:
    defaults = recipes.PRUNE_DEFAULTS
    try:
        edge_t = float(defaults["edge_threshold"] if edge_threshold is None else edge_threshold)
        node_t = float(defaults["node_threshold"] if node_threshold is None else node_threshold)
    except (TypeError, ValueError):
        raise DeriveError(f"the pruning thresholds must be numbers >= 0; got edge "
                          f"{edge_threshold!r}, node {node_threshold!r}") from None
    if not (edge_t >= 0 and node_t >= 0):  # NaN fails too
        raise DeriveError(f"the pruning thresholds must be >= 0; got edge {edge_t}, node "
                          f"{node_t} (defaults: edge {defaults['edge_threshold']}, node "
                          f"{defaults['node_threshold']})")
    return edge_t, node_t


def _grid(parent: Run, grid_size: Any) -> int:
    before = int(parent.model.config["grid_size"])
    ok = not isinstance(grid_size, bool) and isinstance(grid_size, (int, float)) \
        and int(grid_size) == grid_size and int(grid_size) > before
    if not ok:
        raise DeriveError(f"the new grid must have more intervals than the current {before}; "
                          f"got {grid_size!r} (choose one of {recipes.finer_grids(before)})")
    return int(grid_size)


def child_name(parent: Run, suffix: str) -> str:
    """``"<parent name> · <suffix>"``, shortened to fit the store's name limit."""
    tail = f" · {suffix}"
    head = parent.name[:MAX_NAME - len(tail)].rstrip()
    return f"{head}{tail}"


def _child(parent: Run, model: Any, suffix: str, train_config: TrainConfig,
           history: History, derivation: dict[str, Any]) -> Run:
    conf = model.config
    settings = {**parent.model_config, "hidden": list(conf["hidden"]),
                "grid_size": int(conf["grid_size"])}
    return Run(id=uuid.uuid4().hex[:12], name=child_name(parent, suffix), request=parent.request,
               model_name=parent.model_name, model_config=settings, train_config=train_config,
               model=model, history=history, source="dashboard", params_hint=model.n_params(),
               architecture=conf, derivation=derivation)


def _params(model: Any) -> tuple[int, int]:
    total = sum(p.numel() for p in model.parameters())
    active = int(sum(int((p != 0).sum()) for p in model.parameters()))
    return total, active


def _metrics(values: dict[str, float] | None) -> dict[str, float] | None:
    return None if values is None else {k: float(v) for k, v in values.items()}


def prune_run(parent: Run, dataset: Dataset, edge_threshold: float | None = None,
              node_threshold: float | None = None, retrain: bool = False,
              train_config: TrainConfig | None = None,
              callback: Callable[[EpochProgress], None] | None = None,
              stop: Any = None) -> Run:
    """A new run holding ``parent``'s KAN pruned by importance (``interpret.prune``).

    Hidden nodes scoring below ``node_threshold`` are removed and edges scoring below
    ``edge_threshold`` cut (defaults: :data:`kamoe.recipes.PRUNE_DEFAULTS`); with ``retrain`` the
    pruned network is trained again (cut edges kept at zero) with ``train_config`` (default:
    the recipe's schedule for the model and data).
    """
    from kamoe.interpret import kept_node_names, prune
    from kamoe.interpret.prune import fit_keeping_cuts

    _check(parent)
    edge_t, node_t = _thresholds(edge_threshold, node_threshold)
    report = prune(parent.model, dataset, edge_threshold=edge_t, node_threshold=node_t)
    if not report.removed_nodes and not report.removed_edges:
        hidden = report.node_scores[1:len(report.widths_before) - 1]
        weakest_node = min((float(np.min(s)) for s in hidden if len(s)), default=float("nan"))
        weakest_edge = min((float(np.min(s)) for s in report.edge_scores if np.size(s)),
                           default=float("nan"))
        raise DeriveError(f"nothing scores below the thresholds (edge {edge_t:g}, node "
                          f"{node_t:g}): the weakest hidden node scores {weakest_node:.3g} and "
                          f"the weakest edge {weakest_edge:.3g}; set a threshold above one of "
                          f"these to prune")
    model = report.model
    cfg = train_config or recipes.training_config(parent.model_name, dataset,
                                                  seed=parent.train_config.seed)
    if retrain:
        history = fit_keeping_cuts(model, dataset, cfg, callback=callback, stop=stop)
        if history.stopped == "diverged":
            raise TrainingError(history.message)
        after = evaluate(model, dataset, "test")
    else:
        after = report.metrics_after
        history = History(metrics=dict(after))
    params, active = _params(model)
    removed = [(int(level), int(i)) for level, i in report.removed_nodes]
    cut = len(report.removed_edges)
    history.message = (f"Pruned {parent.label}: {len(removed)} hidden node(s) removed, {cut} "
                       f"edge(s) cut, widths {report.widths_before} → {report.widths_after}"
                       + ("; retrained." if retrain else "."))
    derivation = {
        "parent": parent.id, "parent_name": parent.name, "step": PRUNE,
        "settings": {"edge_threshold": edge_t, "node_threshold": node_t, "retrain": bool(retrain)},
        "metrics_before": _metrics(report.metrics_before),
        "metrics_pruned": _metrics(report.metrics_after), "metrics_after": _metrics(after),
        "widths_before": list(report.widths_before), "widths_after": list(report.widths_after),
        "removed_nodes": [list(n) for n in removed],
        "removed_edges": [list(e) for e in report.removed_edges],
        "params_before": int(report.params_before), "params_after": params,
        "active_params_before": int(report.active_params_before), "active_params_after": active,
        "node_labels": kept_node_names(parent.node_labels(dataset), removed),
    }
    return _child(parent, model, "pruned", cfg, history, derivation)


def extend_grid_run(parent: Run, dataset: Dataset, grid_size: int,
                    train_config: TrainConfig | None = None,
                    callback: Callable[[EpochProgress], None] | None = None,
                    stop: Any = None) -> Run:
    """A new run holding ``parent``'s KAN on a finer grid (``interpret.prune.extend_grid``),
    retrained (cut edges kept at zero) with ``train_config`` (default: the recipe's schedule)."""
    from kamoe.interpret.prune import extend_grid, fit_keeping_cuts

    _check(parent)
    before = int(parent.model.config["grid_size"])
    grid_size = _grid(parent, grid_size)
    model = extend_grid(parent.model, grid_size, dataset.X_train)
    refined = evaluate(model, dataset, "test")
    cfg = train_config or recipes.training_config(parent.model_name, dataset,
                                                  seed=parent.train_config.seed)
    history = fit_keeping_cuts(model, dataset, cfg, callback=callback, stop=stop)
    if history.stopped == "diverged":
        raise TrainingError(history.message)
    params, active = _params(model)
    widths = list(model.net.widths)
    derivation = {
        "parent": parent.id, "parent_name": parent.name, "step": EXTEND_GRID,
        "settings": {"grid_before": before, "grid_size": grid_size},
        "metrics_before": _metrics(evaluate(parent.model, dataset, "test")),
        "metrics_refined": _metrics(refined), "metrics_after": _metrics(history.metrics),
        "widths_before": widths, "widths_after": widths,
        "params_before": _params(parent.model)[0], "params_after": params,
        "active_params_before": _params(parent.model)[1], "active_params_after": active,
        "node_labels": parent.node_labels(dataset),
    }
    history.message = (f"Grid {before} → {grid_size} from {parent.label}, retrained: "
                       f"{len(history.epochs)} epochs in {history.seconds:.1f} s.")
    return _child(parent, model, f"grid {grid_size}", cfg, history, derivation)


_METRIC_NAMES = {"r2": "test R²", "rmse": "test RMSE", "mae": "test MAE",
                 "accuracy": "test accuracy", "log_loss": "test log-loss"}


def derivation_summary(derivation: dict[str, Any]) -> list[dict[str, Any]]:
    """What a prune or grid step changed, as text, one row per quantity: ``quantity``,
    ``before``, ``after`` (and, for a pruned-then-retrained or regridded run, the value right
    after the step, before retraining, as ``before retraining``): test metrics, widths,
    parameters."""
    d = derivation
    before, after = d.get("metrics_before") or {}, d.get("metrics_after") or {}
    middle = d.get("metrics_refined") if d.get("step") == EXTEND_GRID else (
        d.get("metrics_pruned") if (d.get("settings") or {}).get("retrain") else None)
    rows: list[dict[str, Any]] = []
    for key in [k for k in _METRIC_NAMES if k in before or k in after]:
        row = {"quantity": _METRIC_NAMES[key], "before": before.get(key)}
        if middle:
            row["before retraining"] = middle.get(key)
        rows.append({**row, "after": after.get(key)})
    rows.append({"quantity": "widths", "before": str(d.get("widths_before")),
                 "after": str(d.get("widths_after"))})
    rows.append({"quantity": "parameters", "before": d.get("params_before"),
                 "after": d.get("params_after")})
    rows.append({"quantity": "non-zero parameters", "before": d.get("active_params_before"),
                 "after": d.get("active_params_after")})
    if d.get("step") == PRUNE:
        rows.append({"quantity": "edges cut", "before": 0,
                     "after": len(d.get("removed_edges") or [])})
    else:
        settings = d.get("settings") or {}
        rows.append({"quantity": "grid intervals", "before": settings.get("grid_before"),
                     "after": settings.get("grid_size")})
    columns = ["quantity", "before", *(["before retraining"] if middle else []), "after"]
    return [{k: _text(row.get(k)) for k in columns} for row in rows]


def _text(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):  # fixed decimals: an R² of 0.9999996 reads 1.000000, not 1
        return f"{value:.6f}" if abs(value) >= 1e-3 or value == 0 else f"{value:.3e}"
    return str(value)


def _job(work: Callable[..., Run], parent: Run, dataset: Dataset, label: str,
         epochs: int | None, **kwargs: Any) -> Job:
    def run(job: Job) -> Run:
        configure_torch_threads()
        job.report(step=0, total=epochs or 1, text="starting")

        def callback(p: EpochProgress) -> None:
            job.report(step=p.epoch, total=p.epochs, epoch=p.epoch, train_loss=p.train_loss,
                       val_loss=p.val_loss, text=f"retraining: epoch {p.epoch}/{p.epochs}")

        child = work(parent, dataset, callback=callback, stop=job.stop, **kwargs)
        job.report(step=epochs or 1, message=child.history.message if child.history else "")
        return child

    return Job(run, kind="derive", label=label, owner=parent.id)


def prune_job(parent: Run, dataset: Dataset, edge_threshold: float | None = None,
              node_threshold: float | None = None, retrain: bool = False) -> Job:
    """A queue job pruning ``parent`` (see :func:`prune_run`); its result is the new run.

    A run that cannot be pruned or a bad threshold raises DeriveError here, before queueing.
    """
    _check(parent)
    _thresholds(edge_threshold, node_threshold)
    cfg = recipes.training_config(parent.model_name, dataset, seed=parent.train_config.seed)
    return _job(prune_run, parent, dataset, f"pruning {parent.label}",
                cfg.epochs if retrain else None, edge_threshold=edge_threshold,
                node_threshold=node_threshold, retrain=retrain, train_config=cfg)


def extend_grid_job(parent: Run, dataset: Dataset, grid_size: int) -> Job:
    """A queue job putting ``parent`` on a finer grid and retraining (:func:`extend_grid_run`).

    A run that cannot be regridded or a grid that is not finer raises DeriveError here.
    """
    _check(parent)
    grid_size = _grid(parent, grid_size)
    cfg = recipes.training_config(parent.model_name, dataset, seed=parent.train_config.seed)
    return _job(extend_grid_run, parent, dataset, f"grid {grid_size} for {parent.label}",
                cfg.epochs, grid_size=grid_size, train_config=cfg)


__all__ = ["EXTEND_GRID", "PRUNE", "STEPS", "DeriveError", "child_name", "derivation_summary",
           "derive_problem",
           "extend_grid_job", "extend_grid_run", "prune_job", "prune_run"]
