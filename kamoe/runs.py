"""Training runs: what was trained on what, and the background jobs that train and compare.

Plain Python (no streamlit). A :class:`Run` owns its :class:`DatasetRequest` (enough to rebuild
the dataset, an uploaded file's bytes included), the model and its settings, the training
history, the per-epoch routing records (per expert, and per expert and group of samples), the
symbolic state of the Formula page and the formulas found for it; a run made from another one
(pruned, put on a finer grid: ``kamoe.derive``) records where it came from in ``derivation``.
``run.lock`` guards what a background thread and a page both touch (the symbolic state, the
formulas). :func:`training_job` and :func:`compare_job` build the jobs that
``kamoe.jobs.JobQueue`` runs; collecting a finished job is :mod:`kamoe.state`'s business.
"""

from __future__ import annotations

import hashlib
import io
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from kamoe import recipes
from kamoe.data import Dataset, load
from kamoe.jobs import Job, configure_torch_threads
from kamoe.models import Model, build_for
from kamoe.train import EpochProgress, History, TrainConfig, TrainingError, fit, set_seed


@dataclass
class DatasetRequest:
    """How to (re)build a dataset: ``load(spec, seed=seed, **options)``, plus an upload's bytes."""

    spec: str
    seed: int = 0
    options: dict[str, Any] = field(default_factory=dict)  # JSON values only
    data: bytes | None = None  # an uploaded CSV: part of what is needed to rebuild the data
    data_name: str | None = None  # the uploaded file's name
    label: str = ""  # short name shown in the UI

    @property
    def data_sha256(self) -> str | None:
        return None if self.data is None else hashlib.sha256(self.data).hexdigest()

    @property
    def key(self) -> tuple:
        """Hashable identity: equal keys load equal datasets."""
        return (self.spec, int(self.seed), json.dumps(self.options, sort_keys=True, default=str),
                self.data_sha256)

    def load(self) -> Dataset:
        """The dataset (DataError when it cannot be built, e.g. a folder that is gone)."""
        options = dict(self.options)
        if self.data is not None:
            upload = io.BytesIO(self.data)
            upload.name = self.data_name or "upload.csv"
            options["data"] = upload
        return load(self.spec, seed=int(self.seed), **options)

    def to_dict(self) -> dict[str, Any]:
        """JSON form (the bytes are stored beside it, named by their SHA-256)."""
        return {"spec": self.spec, "seed": int(self.seed), "options": dict(self.options),
                "data_name": self.data_name, "data_sha256": self.data_sha256,
                "label": self.label}

    @staticmethod
    def from_dict(d: dict[str, Any], data: bytes | None = None) -> DatasetRequest:
        return DatasetRequest(spec=str(d["spec"]), seed=int(d["seed"]),
                              options=dict(d.get("options") or {}), data=data,
                              data_name=d.get("data_name"), label=str(d.get("label") or ""))


@dataclass(eq=False)
class Run:
    """One trained model, with everything needed to show, compare, save and rebuild it."""

    id: str
    name: str
    request: DatasetRequest
    model_name: str
    model_config: dict[str, Any]
    train_config: TrainConfig
    model: Model | None = None  # None until loaded from the store
    history: History | None = None
    routing: Any = None  # per-epoch routing records: a DataFrame (RoutingRecorder.frame())
    routing_groups: Any = None  # per epoch, gate, group and expert (RoutingRecorder.by_group)
    formulas: list[Any] = field(default_factory=list)  # FormulaResult, newest last
    composed: Any = None  # FormulaResult composed from the fixed edges (method "edges")
    symbolic_edges: list[dict[str, Any]] = field(default_factory=list)  # stored edge choices
    created: float = field(default_factory=time.time)
    source: str = "dashboard"  # dashboard, cli or import
    stored: bool = False  # whether the run store holds it
    params_hint: int = 0  # the parameter count stored with the run (before its model is loaded)
    architecture: dict[str, Any] | None = None  # model.config: rebuilds the model (store)
    estimator: dict[str, Any] | None = None  # a saved scikit-learn estimator: class, params
    derivation: dict[str, Any] | None = None  # parent, step and its outcome (kamoe.derive)
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    _symbolic: Any = field(default=None, repr=False)

    @property
    def score(self) -> str:
        m = self.history.metrics if self.history else {}
        return (f"R²={m['r2']:.4f}" if "r2" in m
                else f"acc={m['accuracy']:.3f}" if "accuracy" in m else "")

    @property
    def label(self) -> str:
        return f"#{self.id[:4]} {self.name} {self.score}".strip()

    @property
    def formula(self) -> Any:
        """The newest extracted formula (a FormulaResult), or None."""
        with self.lock:
            return self.formulas[-1] if self.formulas else None

    def add_formula(self, result: Any) -> None:
        with self.lock:
            self.formulas.append(result)

    def summary(self) -> dict[str, Any]:
        """One row of the runs table."""
        h = self.history
        row: dict[str, Any] = {"run": self.id[:4], "name": self.name,
                               "dataset": self.request.label, "model": self.model_name,
                               "params": self.model.n_params() if self.model is not None
                               else self.params_hint,
                               "optimizer": self.train_config.optimizer,
                               "lr": self.train_config.lr,
                               "epochs": len(h.epochs) if h else 0,
                               "seconds": round(h.seconds, 2) if h else None,
                               "stopped": h.stopped if h else "",
                               "formulas": len(self.formulas),
                               "created": time.strftime("%Y-%m-%d %H:%M",
                                                        time.localtime(self.created))}
        if h:
            row.update({k: round(v, 6) for k, v in h.metrics.items()})
        return row

    def routing_epochs(self, gate: str) -> list[int]:
        """The epochs with a per-group routing record of ``gate`` (empty when none was kept)."""
        g = self.routing_groups
        if g is None or not len(g):
            return []
        return sorted(int(e) for e in g.loc[g["gate"] == gate, "epoch"].unique())

    def routing_at(self, gate: str, epoch: int) -> Any:
        """``gate``'s per-group, per-expert routing after ``epoch`` (rows of ``routing_groups``,
        the columns of ``interpret.routing_by_group``)."""
        g = self.routing_groups
        return g[(g["gate"] == gate) & (g["epoch"] == int(epoch))].reset_index(drop=True)

    @property
    def parent_id(self) -> str | None:
        """The id of the run this one was derived from (pruned, regridded), or None."""
        return (self.derivation or {}).get("parent")

    def node_labels(self, dataset: Dataset) -> list[list[str]]:
        """Every node's label of this run's KAN, level by level (``kamoe.interpret.names``).

        A derived run keeps the labels its nodes had in its parent (a pruned network's hidden
        nodes are not renumbered); any other plain KAN gets ``kan_node_names``.
        """
        from kamoe.interpret import kan_node_names

        names = kan_node_names(self.model, dataset)
        kept = (self.derivation or {}).get("node_labels")
        if kept and [len(level) for level in kept] == [len(level) for level in names]:
            return [[str(n) for n in level] for level in kept]
        return names

    # ------------------------------------------------------------------ symbolic state
    def supports_symbolic(self) -> bool:
        """Per-edge symbolic fitting needs a plain B-spline KAN."""
        from kamoe.interpret import kan_chain

        return (self.model_name == "kan" and self.model is not None
                and kan_chain(self.model) is not None)

    def symbolic_state(self, dataset: Dataset) -> Any:
        """The Formula page's SymbolicKAN of this run (made on first use, stored choices back).

        None when the model is not a plain B-spline KAN. Hold ``run.lock`` while using it.
        """
        if not self.supports_symbolic():
            return None
        with self.lock:
            if self._symbolic is None:
                from kamoe.symbolic import Candidate, symbolic_state

                state = symbolic_state(self.model, dataset)
                for edge in self.symbolic_edges:  # choices saved with the run
                    try:
                        key = tuple(int(v) for v in edge["edge"])
                        state.fixed[key] = Candidate(**edge["candidate"])
                    except (KeyError, TypeError, ValueError):
                        continue  # a choice the current library cannot express: left out
                self._symbolic = state
            return self._symbolic

    def snapshot_symbolic(self) -> None:
        """Copy the live symbolic choices into ``symbolic_edges`` (what the store saves)."""
        from dataclasses import asdict

        with self.lock:
            if self._symbolic is not None:
                self.symbolic_edges = [{"edge": list(k), "candidate": asdict(c)}
                                       for k, c in self._symbolic.fixed.items()]

    def set_composed(self, expr: Any, r2: float, seconds: float = 0.0) -> None:
        """Keep the formula composed from the edges (as a FormulaResult, method "edges")."""
        from kamoe.symbolic import FormulaResult, to_latex

        net = self.history.metrics.get("r2") if self.history else None
        with self.lock:
            variables = sorted(s.name for s in expr.free_symbols)
            self.composed = FormulaResult(expr=expr, latex=to_latex(expr), r2_test=float(r2),
                                          r2_train=float("nan"), network_r2=net,
                                          seconds=seconds, truth=None, recovered=None,
                                          method="edges", variables=variables)


def new_run_id() -> str:
    """A fresh run id (12 hex digits)."""
    return uuid.uuid4().hex[:12]


def default_name(model_name: str, request: DatasetRequest) -> str:
    return f"{model_name} on {request.label or request.spec}"


def new_run(request: DatasetRequest, dataset: Dataset, model_name: str,
            model_config: dict[str, Any], train_config: TrainConfig,
            source: str = "dashboard") -> Run:
    """Build the model now (so a bad setting fails with a clear message before any job)."""
    train_config.validate()
    set_seed(train_config.seed)  # the initial weights follow the seed too
    model = build_for(model_name, dataset, **dict(model_config))
    return Run(id=new_run_id(), name=default_name(model_name, request),
               request=request, model_name=model_name, model_config=dict(model_config),
               train_config=train_config, model=model, source=source,
               params_hint=model.n_params(), architecture=model.config)


def train_run(run: Run, dataset: Dataset, callback: Callable[[EpochProgress], None] | None = None,
              stop: Any = None) -> History:
    """Fit ``run.model`` on ``dataset`` and keep the history and (for mixtures) routing records.

    The routing records are kept per expert (``run.routing``) and per expert and group of the
    training rows (``run.routing_groups``: regimes, classes or target quartiles, as
    ``interpret.dataset_groups`` names them), so the Routing page can replay the epochs.
    """
    from kamoe.interpret import RoutingRecorder, dataset_groups

    recorder = RoutingRecorder(dataset.X_train, then=callback) if run.model.gates() else None
    history = fit(run.model, dataset, run.train_config, callback=recorder or callback, stop=stop)
    if recorder is not None:
        recorder.keep_start(history.kept_start)
    run.history = history
    run.routing = recorder.frame() if recorder is not None else None
    run.routing_groups = (recorder.by_group(*dataset_groups(dataset, "train"))
                          if recorder is not None else None)
    return history


def training_job(run: Run, dataset: Dataset) -> Job:
    """A job that trains ``run`` (not started; submit it to a JobQueue). Its result is the run."""

    def work(job: Job) -> Run:
        configure_torch_threads()  # per thread too: OpenMP settings may not follow new threads
        cfg = run.train_config
        job.report(step=0, total=cfg.epochs * cfg.starts, text="starting")

        def callback(p: EpochProgress) -> None:
            start = f"start {p.start}/{p.starts}, " if p.starts > 1 else ""
            job.report(step=(p.start - 1) * p.epochs + p.epoch, total=p.starts * p.epochs,
                       epoch=p.epoch, train_loss=p.train_loss, val_loss=p.val_loss,
                       new_curve=p.start > 1 and p.epoch == 1,
                       text=f"{start}epoch {p.epoch}/{p.epochs}  train loss "
                            f"{p.train_loss:.3g}  val loss {p.val_loss:.3g}")

        history = train_run(run, dataset, callback, job.stop)
        job.report(message=history.message or f"Finished {len(history.epochs)} epochs in "
                                              f"{history.seconds:.1f} s.")
        if history.stopped == "diverged":
            raise TrainingError(history.message)
        if run.supports_symbolic():  # warm the Formula page's first edge fit (~0.7 s)
            threading.Thread(target=_warm_symbolic, args=(run, dataset), daemon=True).start()
        return run

    return Job(work, kind="train", label=run.name, owner=run)


def _warm_symbolic(run: Run, dataset: Dataset) -> None:
    """Fit library functions to the first edge in the background, under the run's lock."""
    try:
        with run.lock:
            state = run.symbolic_state(dataset)
            if state is not None:
                state.suggest(0, 0, 0)
    except Exception:  # noqa: BLE001 - a warm-up only; the page computes it again if needed
        pass


def compare_job(dataset: Dataset, request: DatasetRequest,
                variants: list[tuple[str, dict[str, Any]]], train_config: TrainConfig) -> Job:
    """Train each (model name, settings) variant in turn with the same short schedule."""

    def work(job: Job) -> list[dict[str, Any]]:
        configure_torch_threads()
        rows: list[dict[str, Any]] = []
        for k, (name, cfg) in enumerate(variants):
            if job.stop.is_set():
                break
            job.report(step=k, total=len(variants), text=f"training {name} ({k + 1}/"
                                                         f"{len(variants)})")
            run = new_run(request, dataset, name, cfg, replace(train_config))
            run.history = fit(run.model, dataset, run.train_config, stop=job.stop)
            rows.append({"model": name, "gate": cfg.get("gate", recipes.gate_label(name)).upper(),
                         "params": run.model.n_params(), "seconds": round(run.history.seconds, 2),
                         **{m: round(v, 4) for m, v in run.history.metrics.items()}})
            job.result = rows
        job.report(step=len(rows), total=len(variants), message=f"{len(rows)} models trained.")
        return rows

    return Job(work, kind="compare", label=f"compare on {request.label}")
