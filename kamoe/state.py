"""One browser session's state: its data choice, form values, runs, jobs and notices.

Plain Python (no streamlit): a page keeps one :class:`SessionState` in ``st.session_state`` and
calls its methods; every fact lives here once. The session lists the run store's runs when it
starts (so a browser refresh or a server restart loses nothing), adds its own runs as their
trainings finish, and saves each one to the store. :meth:`SessionState.collect` is the one way a
finished job is collected (training, comparison, formula extraction, a derived run: a KAN pruned
or put on a finer grid, :mod:`kamoe.derive`), exactly once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from kamoe import derive, recipes
from kamoe.data import Dataset, catalog
from kamoe.errors import USER_ERRORS
from kamoe.jobs import CANCELLED, DONE, ERROR, STOPPED, Job, JobQueue, function_job, training_queue
from kamoe.runs import DatasetRequest, Run, compare_job, new_run, training_job
from kamoe.store import RunStore, StoreError
from kamoe.train import TrainConfig

DATA_FAMILIES = ["feynman", "california", "diabetes", "friedman1", "digits", "moons", "iris",
                 "regimes", "crypto", "csv"]
FAMILY_LABELS = {
    "feynman": "Feynman equation", "california": "California housing", "diabetes": "Diabetes",
    "friedman1": "Friedman #1", "digits": "Digits (8x8 images)", "moons": "Two moons",
    "iris": "Iris", "regimes": "Regimes (sequential)", "crypto": "Crypto CSV folder",
    "csv": "Upload a CSV",
}
CATALOG = {c["name"]: c for c in catalog()}
CSV_SEPARATORS = {"auto": "detect", ",": "comma (,)", ";": "semicolon (;)", "\\t": "tab",
                  "|": "pipe (|)"}
CSV_DECIMALS = {"auto": "detect", ".": "point (1.5)", ",": "comma (1,5)"}


def numeric_options(family: str) -> dict[str, dict[str, Any]]:
    """The catalog's number options of a dataset family that have a default (the Data page's)."""
    return {k: v for k, v in CATALOG[family]["options"].items()
            if v["type"] in ("int", "float") and v["default"] is not None}


@dataclass
class DataChoice:
    """What the Data page has chosen; ``request(seed)`` turns it into a DatasetRequest."""

    family: str = "feynman"
    eq_id: str = recipes.DEFAULT_FEYNMAN_ID
    data_home: str = field(default_factory=lambda: os.environ.get("KAMOE_DATA_HOME", ""))
    allow_download: bool = False
    crypto_path: str = ""
    csv_target: str = ""
    csv_sep: str = "auto"
    csv_decimal: str = "auto"
    csv_features: str = ""
    upload_name: str | None = None
    upload_bytes: bytes | None = None
    options: dict[str, dict[str, Any]] = field(default_factory=lambda: {
        fam: {k: v["default"] for k, v in numeric_options(fam).items()} for fam in CATALOG})

    def request(self, seed: int = 0) -> DatasetRequest:
        fam = self.family
        opts: dict[str, Any] = dict(self.options.get(fam, {}))
        data, data_name = None, None
        if fam == "feynman":
            spec, label = f"feynman:{self.eq_id}", f"Feynman {self.eq_id}"
        elif fam == "crypto":
            spec, label = f"crypto:{self.crypto_path}", "crypto"
        elif fam == "csv":
            spec, label = "csv", f"CSV {self.upload_name or ''}".strip()
            data, data_name = self.upload_bytes, self.upload_name
            for key, value in (("target", self.csv_target), ("sep", self.csv_sep),
                               ("decimal", self.csv_decimal), ("features", self.csv_features)):
                if value and value != "auto":
                    opts[key] = value
        else:
            spec, label = fam, FAMILY_LABELS[fam]
        if fam == "california":
            if self.data_home:
                opts["data_home"] = self.data_home
            if self.allow_download:
                opts["allow_download"] = True
        return DatasetRequest(spec=spec, seed=int(seed), options=opts, data=data,
                              data_name=data_name, label=label)


class SessionState:
    """Everything one browser session knows; pages read it and call its methods."""

    def __init__(self, store: RunStore | None = None, queue: JobQueue | None = None) -> None:
        self.store = store if store is not None else RunStore()
        self.queue = queue if queue is not None else training_queue()
        self.seed = 0
        self.data = DataChoice()
        self.form: dict[str, Any] = {}  # widget values that outlive page switches and runs
        self.runs: list[Run] = []
        self.active_id: str | None = None
        self.training: Job | None = None
        self.compare: Job | None = None
        self.formula_jobs: dict[str, Job] = {}
        self.derive_jobs: dict[str, Job] = {}  # parent run id -> its prune / grid job
        self.notice: tuple[str, str] | None = None  # (kind: success/warning/error/info, text)
        self.store_problems: list[str] = []
        self.uploads: dict[Any, tuple[str, str]] = {}  # archive upload -> (kind, message)
        self.refresh()

    # ------------------------------------------------------------------ runs
    def refresh(self) -> None:
        """List the store's runs again (runs this session already holds keep their models)."""
        held = {r.id: r for r in self.runs}
        try:
            stored = self.store.list()
            self.store_problems = list(self.store.problems)
        except (OSError, StoreError) as err:
            stored, self.store_problems = [], [f"the run store could not be read: {err}"]
        ids = {r.id for r in stored}
        runs = []
        for r in stored:
            mine = held.get(r.id)
            if mine is not None:  # keep the loaded model; take a rename made elsewhere
                mine.name = r.name
            runs.append(mine or r)
        runs += [r for r in self.runs if r.id not in ids and not r.stored]  # save failed
        self.runs = runs
        if self.active_id not in {r.id for r in self.runs}:
            self.active_id = self.runs[-1].id if self.runs else None

    def run(self, run_id: str | None) -> Run | None:
        return next((r for r in self.runs if r.id == run_id), None)

    def active_run(self) -> Run | None:
        """The run the Splines, Routing and Formula pages look at (the newest by default)."""
        return self.run(self.active_id) or (self.runs[-1] if self.runs else None)

    def select(self, run_id: str | None) -> None:
        if self.run(run_id) is not None:
            self.active_id = run_id

    def ensure_model(self, run: Run) -> Any:
        """The run's model, loaded from the store when needed (StoreError if it cannot be)."""
        if run.model is None:
            self.store.load_model(run)
        return run.model

    def persist(self, run: Run) -> None:
        """Save a run's name, formulas and symbolic choices to the store (a notice on failure)."""
        try:
            self.store.update(run)
        except StoreError as err:
            self.notice = ("warning", f"Kept in this session but not saved: {err}")

    def rename(self, run_id: str, name: str) -> None:
        run = self.run(run_id)
        if run is None:
            raise StoreError(f"no run {run_id!r} in this session")
        self.store.rename(run_id, name)
        run.name = " ".join(str(name).split())

    def delete(self, run_id: str) -> None:
        """Remove a run from the store and the session."""
        try:
            self.store.delete(run_id)
        except StoreError:
            if self.run(run_id) is None:
                raise
        self.runs = [r for r in self.runs if r.id != run_id]
        self.formula_jobs.pop(run_id, None)
        if self.active_id == run_id:
            self.active_id = self.runs[-1].id if self.runs else None

    def export(self, run_id: str) -> bytes:
        return self.store.export(run_id)

    def import_archive(self, data: bytes) -> Run:
        """Store an uploaded archive and list it (StoreError with a clear message otherwise)."""
        run = self.store.import_archive(data)
        self.runs.append(run)
        self.active_id = run.id
        return run

    def import_upload(self, token: Any, data: bytes) -> tuple[str, str]:
        """Import an uploaded archive once per upload (reruns see the same token); the outcome."""
        if token not in self.uploads:
            try:
                run = self.import_archive(data)
                self.uploads[token] = ("success", f"Imported {run.label}.")
            except USER_ERRORS as err:
                self.uploads[token] = ("error", f"Nothing was imported: {err}")
        return self.uploads[token]

    # ------------------------------------------------------------------ jobs
    def request(self) -> DatasetRequest:
        """The dataset request of the Data page's current choice and the sidebar's seed."""
        return self.data.request(self.seed)

    @property
    def busy(self) -> bool:
        """Whether this session's training is queued or running."""
        return self.training is not None and self.training.active

    def start_training(self, dataset: Dataset, model_name: str, model_config: dict[str, Any],
                       train_config: TrainConfig) -> Job:
        """Build the run (errors surface here) and queue its training."""
        run = new_run(self.request(), dataset, model_name, model_config, train_config)
        self.notice = None
        self.training = self.queue.submit(training_job(run, dataset))
        return self.training

    def cancel_training(self) -> None:
        """Leave the queue, or stop after the current epoch when already training."""
        if self.training is not None:
            self.queue.cancel(self.training)

    def start_compare(self, dataset: Dataset, variants: list[tuple[str, dict[str, Any]]],
                      train_config: TrainConfig) -> Job:
        self.compare = self.queue.submit(compare_job(dataset, self.request(), variants,
                                                     train_config))
        return self.compare

    def start_formula(self, run: Run, dataset: Dataset, time_limit: float,
                      paths: tuple[str, ...] | None = None) -> Job:
        """Queue a formula extraction for ``run`` (its KAN is read when it is a plain one);
        ``paths`` as ``extract_formula`` takes them (None: its default order)."""
        from kamoe.symbolic import extract_formula
        from kamoe.symbolic.pipeline import PATHS

        model = run.model if run.supports_symbolic() else None
        job = function_job(extract_formula, "formula", f"formula of {run.label}", owner=run.id,
                           dataset=dataset, model=model, time_limit=float(time_limit),
                           seed=int(self.seed), paths=tuple(paths or PATHS))
        self.formula_jobs[run.id] = self.queue.submit(job)
        return job

    def start_prune(self, run: Run, dataset: Dataset, edge_threshold: float | None = None,
                    node_threshold: float | None = None, retrain: bool = False) -> Job:
        """Queue pruning ``run``'s KAN (``kamoe.derive.prune_job``); DeriveError if it cannot."""
        self.ensure_model(run)
        job = derive.prune_job(run, dataset, edge_threshold, node_threshold, retrain)
        return self._submit_derive(run, job)

    def start_extend_grid(self, run: Run, dataset: Dataset, grid_size: int) -> Job:
        """Queue putting ``run``'s KAN on a finer grid and retraining (``derive``)."""
        self.ensure_model(run)
        return self._submit_derive(run, derive.extend_grid_job(run, dataset, grid_size))

    def _submit_derive(self, run: Run, job: Job) -> Job:
        old = self.derive_jobs.get(run.id)
        if old is not None and old.active:
            raise derive.DeriveError(f"{old.label} is still running; wait for it or stop it")
        self.notice = None
        self.derive_jobs[run.id] = self.queue.submit(job)
        return job

    def derive_job(self, run_id: str | None) -> Job | None:
        """The newest prune / grid job started from run ``run_id`` (any state), or None."""
        return self.derive_jobs.get(run_id) if run_id is not None else None

    def jobs(self) -> list[Job]:
        return [j for j in (self.training, self.compare, *self.formula_jobs.values(),
                            *self.derive_jobs.values()) if j is not None]

    def collect(self) -> bool:
        """Take in every finished job of the session once; True when something changed."""
        changed = False
        for job in self.jobs():
            if job.collect():
                changed = True
                if job.kind == "train":
                    self._collect_training(job)
                elif job.kind == "formula":
                    self._collect_formula(job)
                elif job.kind == "derive":
                    self._collect_derive(job)
        return changed

    def _collect_training(self, job: Job) -> None:
        p, run = job.progress(), job.owner
        if p.status == CANCELLED:
            self.notice = ("info", "Training cancelled before it started.")
            return
        if p.status not in (DONE, STOPPED) or run is None or run.history is None:
            self.notice = ("error", f"Training failed: {p.message}")
            return
        h = run.history
        text = h.message or (f"Training finished: {len(h.epochs)} epochs in {h.seconds:.1f} s "
                             f"(best validation loss at epoch {h.best_epoch}).")
        stopped = p.status == STOPPED or h.stopped == "stopped"
        if h.stopped == "stopped":
            text = f"Training stopped: {text}"
        self._adopt(run, "warning" if stopped else "success", text)

    def _adopt(self, run: Run, kind: str, text: str) -> None:
        """A new run joins the session as the active one and is saved; the notice says so."""
        self.runs.append(run)
        self.active_id = run.id
        self.notice = (kind, text)
        try:
            self.store.save(run)
        except StoreError as err:
            self.notice = ("warning", f"{text} The run is kept in this session but was not "
                                      f"saved: {err}")

    def _collect_derive(self, job: Job) -> None:
        """A finished prune / grid job: its run joins the session, is saved and made active."""
        p, child = job.progress(), job.result
        if p.status == CANCELLED:
            self.notice = ("info", f"{job.label}: cancelled before it started.")
            return
        if p.status not in (DONE, STOPPED) or child is None:
            self.notice = ("error", f"{job.label[:1].upper()}{job.label[1:]} failed: "
                                    f"{p.message}")
            return
        text = (child.history.message if child.history else "") or f"Made {child.label}."
        if p.status == STOPPED:
            text = f"Retraining stopped early: {text}"
        self._adopt(child, "warning" if p.status == STOPPED else "success", text)

    def _collect_formula(self, job: Job) -> None:
        run = self.run(job.owner)
        if run is None or job.progress().status == ERROR or job.result is None:
            return  # the Formula page shows the job's message
        run.add_formula(job.result)
        self.persist(run)


__all__ = ["CATALOG", "CSV_DECIMALS", "CSV_SEPARATORS", "DATA_FAMILIES", "DataChoice",
           "FAMILY_LABELS", "SessionState", "numeric_options"]
