"""Plain-Python state for the dashboard: background jobs, training runs and their defaults.

Nothing here imports streamlit. A page keeps a :class:`Run` list and at most one running
:class:`Job` in its session state; the job runs in a daemon thread that only writes into its own
:class:`Progress` record (under a lock), so a page can poll it from a fragment and a Stop button
can set the job's ``stop`` event at any time.
"""

from __future__ import annotations

import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from kamoe.data import DataError, Dataset
from kamoe.models import build_for, default_config
from kamoe.train import EpochProgress, History, TrainConfig, TrainingError, fit, set_seed

DEFAULT_FEYNMAN_ID = "II.3.24"  # Pwr/(4 pi r^2): two inputs, a KAN [2, 5, 1] fits it in ~1 s
USER_ERRORS = (DataError, TrainingError, ValueError)


# ---------------------------------------------------------------------------- threads


def configure_torch_threads() -> int:
    """Use one torch thread (or $KAMOE_TORCH_THREADS) for the dashboard's small models.

    On a shared or busy 2-core machine torch's default intra-op pool spins against other
    processes: a 1-second KAN fit was measured at 40-80 s with the default and ~0.9 s with one
    thread. Returns the number of threads set.
    """
    import os

    import torch

    n = int(os.environ.get("KAMOE_TORCH_THREADS", "1") or 1)
    if torch.get_num_threads() != n:
        torch.set_num_threads(max(1, n))
    return n


# ---------------------------------------------------------------------------- jobs


@dataclass
class Progress:
    """What a running job has reported so far (copied out under the job's lock)."""

    status: str = "running"  # running, done, stopped, error
    step: int = 0
    total: int = 0
    text: str = ""
    epochs: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    message: str = ""
    started: float = field(default_factory=time.perf_counter)
    finished: float | None = None

    @property
    def fraction(self) -> float:
        return 0.0 if self.total <= 0 else min(1.0, self.step / self.total)

    @property
    def seconds(self) -> float:
        end = self.finished if self.finished is not None else time.perf_counter()
        return end - self.started


class Job:
    """One background task: ``work(job)`` runs in a thread; ``job.report(...)`` records progress.

    ``work`` returns the job's result; a user error (DataError, TrainingError, ValueError) ends
    the job with status "error" and its message, any other exception with a short description
    (never a traceback in the UI; the traceback is kept in ``job.detail`` for logs).
    """

    def __init__(self, work: Callable[[Job], Any], kind: str = "train", label: str = "") -> None:
        self.id = uuid.uuid4().hex[:12]
        self.kind = kind
        self.label = label
        self.stop = threading.Event()
        self.result: Any = None
        self.detail = ""
        self.collected = False
        self._work = work
        self._lock = threading.Lock()
        self._progress = Progress()
        self._thread = threading.Thread(target=self._main, name=f"kamoe-{kind}-{self.id}",
                                        daemon=True)

    def start(self) -> Job:
        self._thread.start()
        return self

    def _main(self) -> None:
        try:
            result = self._work(self)
        except USER_ERRORS as err:
            self._finish("error", str(err))
            return
        except Exception as err:  # noqa: BLE001 - the UI shows a message, not a traceback
            self.detail = traceback.format_exc()
            self._finish("error", f"{type(err).__name__}: {err}")
            return
        self.result = result
        self._finish("stopped" if self.stop.is_set() else "done", self.progress().message)

    def _finish(self, status: str, message: str) -> None:
        with self._lock:
            self._progress.status = status
            self._progress.message = message
            self._progress.finished = time.perf_counter()

    def report(self, step: int | None = None, total: int | None = None, text: str | None = None,
               epoch: int | None = None, train_loss: float | None = None,
               val_loss: float | None = None, message: str | None = None) -> None:
        """Record progress (called from the worker thread)."""
        with self._lock:
            p = self._progress
            if step is not None:
                p.step = step
            if total is not None:
                p.total = total
            if text is not None:
                p.text = text
            if message is not None:
                p.message = message
            if epoch is not None:
                p.epochs.append(epoch)
                p.train_loss.append(float(train_loss if train_loss is not None else "nan"))
                p.val_loss.append(float(val_loss if val_loss is not None else "nan"))

    def progress(self) -> Progress:
        """A consistent copy of the progress record."""
        with self._lock:
            p = self._progress
            return replace(p, epochs=list(p.epochs), train_loss=list(p.train_loss),
                           val_loss=list(p.val_loss))

    @property
    def running(self) -> bool:
        return self.progress().status == "running"

    def request_stop(self) -> None:
        self.stop.set()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the thread; True when it has finished."""
        self._thread.join(timeout)
        return not self._thread.is_alive()


# ---------------------------------------------------------------------------- runs


@dataclass
class Run:
    """One trained model of a session, with everything needed to show and compare it."""

    id: str
    dataset_key: tuple
    dataset_label: str
    model_name: str
    model_config: dict[str, Any]
    train_config: TrainConfig
    model: Any = None
    history: History | None = None
    routing: Any = None  # the RoutingRecorder attached during training (MoE models)
    created: float = field(default_factory=time.time)

    @property
    def label(self) -> str:
        m = self.history.metrics if self.history else {}
        score = (f"R²={m['r2']:.4f}" if "r2" in m
                 else f"acc={m['accuracy']:.3f}" if "accuracy" in m else "")
        return f"#{self.id[:4]} {self.model_name} on {self.dataset_label} {score}".strip()

    def summary(self) -> dict[str, Any]:
        """One row of the runs table."""
        h = self.history
        row: dict[str, Any] = {"run": self.id[:4], "dataset": self.dataset_label,
                               "model": self.model_name,
                               "params": self.model.n_params() if self.model is not None else 0,
                               "optimizer": self.train_config.optimizer,
                               "lr": self.train_config.lr,
                               "epochs": len(h.epochs) if h else 0,
                               "seconds": round(h.seconds, 2) if h else None,
                               "stopped": h.stopped if h else ""}
        if h:
            row.update({k: round(v, 6) for k, v in h.metrics.items()})
        return row


def is_feynman(dataset: Dataset) -> bool:
    return dataset.name.lower().startswith("feynman")


def default_model_name(dataset: Dataset) -> str:
    """A sensible first model for a dataset: a KAN for tabular data, KAMoE-GRU for sequences."""
    if dataset.kind == "sequence":
        return "kamoe-gru"
    return "kan"


def default_model_settings(name: str, dataset: Dataset) -> dict[str, Any]:
    """Registry defaults, adjusted to the dataset where it matters."""
    cfg = default_config(name)
    if name == "kan" and is_feynman(dataset):
        cfg["hidden"] = [5]
    return cfg


def default_train_config(name: str, dataset: Dataset, seed: int = 0) -> TrainConfig:
    """LBFGS with grid updates for a KAN on a formula (R² > 0.9999 in ~1 s); Adam otherwise."""
    if name == "kan" and (is_feynman(dataset) or dataset.name.startswith("friedman")):
        return TrainConfig(epochs=60, optimizer="lbfgs", lr=1.0, batch_size=None,
                           grid_update_epochs=10, grid_update_every=5, seed=seed)
    epochs = 40 if dataset.kind == "sequence" or len(dataset.X_train) > 5000 else 100
    return TrainConfig(epochs=epochs, optimizer="adam", lr=1e-2, batch_size=128, seed=seed,
                       patience=20)


def new_run(dataset_key: tuple, dataset: Dataset, label: str, name: str,
            model_config: dict[str, Any], train_config: TrainConfig) -> Run:
    """Build the model now (so a bad setting fails in the page with a clear message)."""
    train_config.validate()
    set_seed(train_config.seed)  # the initial weights follow the seed too
    model = build_for(name, dataset, **dict(model_config))
    return Run(id=uuid.uuid4().hex[:12], dataset_key=dataset_key, dataset_label=label,
               model_name=name, model_config=dict(model_config), train_config=train_config,
               model=model)


def training_job(run: Run, dataset: Dataset,
                 extra_callbacks: list[Callable[[EpochProgress], None]] | None = None) -> Job:
    """A job that fits ``run.model`` on ``dataset`` and fills ``run.history`` (not started)."""
    callbacks = list(extra_callbacks or [])

    def work(job: Job) -> Run:
        configure_torch_threads()  # per thread too: OpenMP settings may not follow new threads
        job.report(step=0, total=run.train_config.epochs, text="starting")

        def callback(p: EpochProgress) -> None:
            job.report(step=p.epoch, total=p.epochs, epoch=p.epoch, train_loss=p.train_loss,
                       val_loss=p.val_loss,
                       text=f"epoch {p.epoch}/{p.epochs}  train loss {p.train_loss:.3g}  "
                            f"val loss {p.val_loss:.3g}")
            for cb in callbacks:
                cb(p)

        history = fit(run.model, dataset, run.train_config, callback=callback, stop=job.stop)
        run.history = history
        job.report(message=history.message or f"Finished {len(history.epochs)} epochs in "
                                              f"{history.seconds:.1f} s.")
        if history.stopped == "diverged":
            raise TrainingError(history.message)
        if run.model_name == "kan":  # warm the Formula page's first edge fit (~0.7 s)
            threading.Thread(target=_warm_symbolic, args=(run, dataset), daemon=True).start()
        return run

    return Job(work, kind="train", label=f"{run.model_name} on {run.dataset_label}")


def _warm_symbolic(run: Run, dataset: Dataset) -> None:
    """Fit library functions to the first edge in the background (cached on the model)."""
    try:
        from kamoe.symbolic import symbolic_state

        symbolic_state(run.model, dataset).suggest(0, 0, 0)
    except Exception:  # noqa: BLE001 - a warm-up only; the page computes it again if needed
        pass


def compare_job(dataset: Dataset, dataset_key: tuple, label: str,
                variants: list[tuple[str, dict[str, Any]]], train_config: TrainConfig) -> Job:
    """Train each (model name, config) variant in turn with the same short schedule."""

    def work(job: Job) -> list[dict[str, Any]]:
        configure_torch_threads()
        rows: list[dict[str, Any]] = []
        for k, (name, cfg) in enumerate(variants):
            if job.stop.is_set():
                break
            job.report(step=k, total=len(variants), text=f"training {name} ({k + 1}/"
                                                         f"{len(variants)})")
            run = new_run(dataset_key, dataset, label, name, cfg, replace(train_config))
            run.history = fit(run.model, dataset, run.train_config, stop=job.stop)
            gate = {"moe": "GRN", "kamoe": "GRKAN"}.get(name.split("-")[0], "-")
            rows.append({"model": name, "gate": cfg.get("gate", gate).upper(),
                         "params": run.model.n_params(), "seconds": round(run.history.seconds, 2),
                         **{m: round(v, 4) for m, v in run.history.metrics.items()}})
            job.result = rows
        job.report(step=len(rows), total=len(variants), message=f"{len(rows)} models trained.")
        return rows

    return Job(work, kind="compare", label=f"compare on {label}")


def function_job(fn: Callable[..., Any], kind: str, label: str = "", **kwargs: Any) -> Job:
    """Run ``fn(progress=cb, **kwargs)`` in the background (cb(fraction_or_step, text))."""

    def work(job: Job) -> Any:
        def cb(*args: Any, **kw: Any) -> None:
            frac = next((a for a in args if isinstance(a, (int, float))), None)
            text = next((a for a in args if isinstance(a, str)), kw.get("text", ""))
            if frac is not None and 0 <= frac <= 1:
                job.report(step=int(round(frac * 100)), total=100, text=text)
            else:
                job.report(text=text)
        return fn(progress=cb, **kwargs)

    return Job(work, kind=kind, label=label)


# ---------------------------------------------------------------------------- settings

SETTING_CHOICES: dict[str, list[str]] = {
    "head": ["kan", "linear"], "gate": ["grkan", "grn", "linear"],
    "gate_activation": ["sigmoid", "softmax"], "routing": ["topk", "slots"],
    "kan_norm": ["batchnorm", "layernorm", "none"], "norm": ["batchnorm", "layernorm", "none"],
    "base_activation": ["silu", "relu", "gelu", "tanh", "identity"],
    "gate_second_activation": ["relu", "silu", "gelu", "tanh"],
    "activation": ["relu", "gelu", "silu", "tanh", "elu"],
    "tokenizer": ["auto", "tabular", "sequence", "image"],
}


def setting_text(value: Any) -> str:
    """How a list or None setting is shown in a text box ("5, 5"; "" for None)."""
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
    return str(value)


def parse_setting(key: str, text: str, default: Any) -> Any:
    """Parse a text box back into the type of ``default`` (lists of numbers, None, numbers).

    Raises ValueError naming the setting and what it expects.
    """
    text = str(text).strip()
    if isinstance(default, (list, tuple)) or (default is None and "," in text):
        if not text:
            return []
        try:
            values = [float(v) for v in text.replace(";", ",").split(",") if v.strip()]
        except ValueError:
            raise ValueError(f"{key} must be numbers separated by commas, e.g. "
                             f"'{setting_text(default) or '5, 5'}'; got {text!r}") from None
        integral = default is None or all(isinstance(v, int) for v in default)
        if integral and all(v == int(v) for v in values):
            return [int(v) for v in values]
        return values
    if default is None:
        if text == "" or text.lower() == "none":
            return None
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"{key} must be an integer or empty (automatic); got {text!r}") \
                from None
    return text
