"""One training loop for every registry model, plus metrics, prediction, saving and loading.

``fit(model, dataset, TrainConfig(...), callback=..., stop=...)`` returns a ``History``.
Adam/AdamW (mini-batch or full batch) or LBFGS (full batch); early stopping on a validation
split with best-weight restore; reduce-on-plateau; KAN grid updates from samples during the first
epochs; KAN sparsity regularisation; a progress callback; a stop flag honoured within one epoch;
a NaN/Inf guard that stops, restores the best weights and says what happened;
``TrainConfig.starts`` > 1 trains that many initialisations of a registry model in turn and keeps
the one with the best validation loss (mixtures have local optima: EM for mixture models is
run from several starts for the same reason).

``TrainConfig.device`` picks where a fit runs (:data:`DEVICES`; ``auto`` is CUDA, else MPS,
else the CPU; :func:`resolve_device`). The model and the training data are moved there once,
at the start; the model comes back to the CPU when the fit ends (normally or not), so what reads
a trained model (interpretation, formulas, plots, the run store) finds its weights on the CPU,
and a dashboard holding many runs holds no GPU memory. The device used is ``History.device``.
The native CPU kernels (``kamoe.nn.native``) run only on the CPU; elsewhere the torch path runs.
"""

from __future__ import annotations

import copy
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from kamoe.data.dataset import Affine, Dataset
from kamoe.errors import KamoeError
from kamoe.models import Model, build, find_kan_layers
from kamoe.nn import module_device
from kamoe.nn.kan import KANLinear


class TrainingError(KamoeError, ValueError):
    """A training setting or saved-model problem the user can fix; the message says how."""


DEVICES = ("auto", "cpu", "cuda", "mps")  # TrainConfig.device; "cuda:N" picks one CUDA GPU


def device_present(kind: str) -> bool:
    """Whether torch can use a device of this kind ("cpu", "cuda" or "mps") here."""
    if kind == "cpu":
        return True
    if kind == "cuda":
        return torch.cuda.is_available()
    if kind == "mps":
        mps = getattr(torch.backends, "mps", None)
        return bool(mps is not None and mps.is_available())
    return False


def available_devices() -> list[str]:
    """The device kinds present on this machine, the CPU first (the Train form's choices)."""
    return [d for d in DEVICES[1:] if device_present(d)]


def _check_device_name(device: Any) -> tuple[str, int | None]:
    """(kind, CUDA index or None) of a device name; TrainingError naming the choices."""
    name = str(device).strip().lower() if isinstance(device, str) else None
    kind, _, index = (name or "").partition(":")
    if name in DEVICES or (kind == "cuda" and index.isdigit()):
        return kind, int(index) if index else None
    raise TrainingError(f"device must be one of {', '.join(DEVICES)} (or cuda:N for one GPU), "
                        f"got {device!r}")


def resolve_device(device: str = "auto") -> torch.device:
    """The torch device a training setting names, here: ``auto`` is CUDA, else MPS, else CPU.

    Raises TrainingError naming the choices for an unknown name, and saying so when the named
    device is not present on this machine.
    """
    kind, index = _check_device_name(device)
    if kind == "auto":
        kind = next(d for d in ("cuda", "mps", "cpu") if device_present(d))
    if not device_present(kind):
        present = ", ".join(available_devices())
        build = (" (this torch is a CPU-only build; a CUDA build of torch is needed for a GPU)"
                 if kind == "cuda" and torch.version.cuda is None else "")
        raise TrainingError(f"device {device!r} is not present on this machine (torch sees: "
                            f"{present}){build}; use device 'auto' or 'cpu'")
    if index is not None and index >= torch.cuda.device_count():
        raise TrainingError(f"device {device!r} is not present: this machine has "
                            f"{torch.cuda.device_count()} CUDA device(s), cuda:0 to "
                            f"cuda:{torch.cuda.device_count() - 1}")
    return torch.device(kind if index is None else f"{kind}:{index}")


def device_name(device: torch.device) -> str:
    """How a run records its device: "cpu", "mps", or "cuda:N" with the index torch used."""
    if device.type == "cuda" and device.index is None:
        return f"cuda:{torch.cuda.current_device()}"
    return str(device)


MAX_STARTS = 20  # each start is a whole training


@dataclass
class TrainConfig:
    """Training hyper-parameters (all plain values, so a config can be saved and shown)."""

    epochs: int = 200
    optimizer: str = "adam"  # "adam", "adamw" or "lbfgs"
    lr: float = 1e-2
    batch_size: int | None = 128  # None: full batch (always full batch for LBFGS)
    weight_decay: float = 0.0
    val_fraction: float = 0.2
    patience: int | None = 30  # early stopping (epochs without val improvement); None: off
    min_delta: float = 1e-7
    plateau_patience: int | None = 10  # reduce-on-plateau; None: off
    plateau_factor: float = 0.25
    min_lr: float = 2.5e-5
    grid_update_epochs: int = 0  # refit KAN grids to samples at the start of these epochs
    grid_update_every: int = 5
    sparsity: float = 0.0  # KAN L1 + entropy regularisation weight (lambda)
    entropy_weight: float = 1.0  # mu_2 relative to the L1 term
    aux_weight: float = 0.01  # weight of MoE load-balancing losses (when enabled in the model)
    lbfgs_iter: int = 10  # LBFGS iterations per epoch
    max_seconds: float | None = None
    seed: int = 0
    starts: int = 1  # initialisations trained in turn; the best validation loss is kept
    device: str = "auto"  # one of DEVICES: where the fit runs (auto: CUDA, else MPS, else CPU)

    def validate(self) -> TrainConfig:
        """Raise TrainingError naming any silly value (a device absent here is resolve_device's
        error: a run trained on a GPU still loads on a machine without one)."""
        _check_device_name(self.device)
        if self.optimizer not in ("adam", "adamw", "lbfgs"):
            raise TrainingError(
                f"optimizer must be 'adam', 'adamw' or 'lbfgs', got {self.optimizer!r}"
            )
        if not isinstance(self.epochs, int) or self.epochs < 1:
            raise TrainingError(f"epochs must be a positive integer, got {self.epochs!r}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise TrainingError(f"lr (learning rate) must be a positive number, got {self.lr!r}")
        if self.lr > 10:
            raise TrainingError(f"lr={self.lr} is far too large; try 1e-3 to 1e-1 (or 1 for LBFGS)")
        if self.batch_size is not None and self.batch_size < 1:
            raise TrainingError(f"batch_size must be >= 1 or None, got {self.batch_size!r}")
        if not 0 <= self.val_fraction < 0.9:
            raise TrainingError(f"val_fraction must be in [0, 0.9), got {self.val_fraction!r}")
        if self.sparsity < 0:
            raise TrainingError(f"sparsity must be >= 0, got {self.sparsity!r}")
        if isinstance(self.starts, bool) or not isinstance(self.starts, int) or not (
                1 <= self.starts <= MAX_STARTS):
            raise TrainingError(f"starts (initialisations to train) must be a whole number "
                                f"from 1 to {MAX_STARTS}, got {self.starts!r}")
        return self


@dataclass
class EpochProgress:
    """What the callback receives after every epoch."""

    epoch: int
    epochs: int
    train_loss: float
    val_loss: float
    val_metrics: dict[str, float]
    lr: float
    elapsed: float
    model: nn.Module
    start: int = 1  # which initialisation is training (of TrainConfig.starts)
    starts: int = 1


@dataclass
class History:
    """The record of one fit: per-epoch losses, why it stopped, and the final test metrics."""

    epochs: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_metrics: list[dict[str, float]] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    elapsed: list[float] = field(default_factory=list)
    best_epoch: int = 0
    stopped: str = "completed"  # completed, early_stopping, stopped, diverged, time_limit
    message: str = ""
    seconds: float = 0.0
    metrics: dict[str, float] = field(default_factory=dict)  # test set, original units
    device: str = ""  # where the fit ran ("cpu", "cuda:0", "mps"); "" for older runs
    # with TrainConfig.starts > 1: per start, its best validation loss and epochs; the kept
    # start's epochs fill the lists above
    starts: list[dict[str, float]] = field(default_factory=list)
    kept_start: int = 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def starts_text(self) -> str:
        """Which of several initialisations was kept, and each one's best validation loss
        ("" after a single start)."""
        if not self.starts:
            return ""
        losses = ", ".join(f"{s['best_val_loss']:.4g}" for s in self.starts)
        return (f"kept start {self.kept_start} of {len(self.starts)} initialisations "
                f"(best validation loss of each: {losses})")

    @staticmethod
    def from_dict(d: dict[str, Any]) -> History:
        return History(**d)


# ---------------------------------------------------------------------------- metrics


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """R^2 (averaged over outputs), RMSE and MAE."""
    y_true = np.asarray(y_true, dtype=float).reshape(len(y_true), -1)
    y_pred = np.asarray(y_pred, dtype=float).reshape(len(y_pred), -1)
    ss_res = ((y_true - y_pred) ** 2).sum(0)
    ss_tot = ((y_true - y_true.mean(0)) ** 2).sum(0)
    r2 = np.where(ss_tot > 0, 1 - ss_res / np.where(ss_tot > 0, ss_tot, 1), 0.0)
    return {"r2": float(r2.mean()), "rmse": float(np.sqrt(((y_true - y_pred) ** 2).mean())),
            "mae": float(np.abs(y_true - y_pred).mean())}


def classification_metrics(y_true: np.ndarray, logits: np.ndarray) -> dict[str, float]:
    """Accuracy and log-loss from logits."""
    logits = np.asarray(logits, dtype=float)
    z = logits - logits.max(1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(1, keepdims=True))
    y = np.asarray(y_true).astype(int)
    return {"accuracy": float((logits.argmax(1) == y).mean()),
            "log_loss": float(-logp[np.arange(len(y)), y].mean())}


@torch.no_grad()
def predict(model: nn.Module, X: np.ndarray, batch_size: int = 4096) -> np.ndarray:
    """Model outputs for inputs X in model space (scaled targets or logits), on the CPU.

    X goes to the model's device batch by batch, so a model on a GPU predicts too.
    """
    was_training = model.training
    model.eval()
    device = module_device(model)
    out = [model(torch.as_tensor(X[i:i + batch_size], dtype=torch.float32, device=device))
           .cpu().numpy() for i in range(0, len(X), batch_size)]
    model.train(was_training)
    return np.concatenate(out) if out else np.zeros((0, 1))


def evaluate(model: nn.Module, dataset: Dataset, split: str = "test") -> dict[str, float]:
    """Metrics on a split, in original target units."""
    X = dataset.X_test if split == "test" else dataset.X_train
    y = dataset.y_test if split == "test" else dataset.y_train
    out = predict(model, X)
    if dataset.task == "classification":
        return classification_metrics(y, out)
    return regression_metrics(dataset.to_raw_y(y), dataset.to_raw_y(out))


# ---------------------------------------------------------------------------- helpers


def set_seed(seed: int) -> None:
    """Seed python, numpy and torch."""
    import random

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def _split_validation(ds: Dataset, frac: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    n = len(ds.X_train)
    n_val = int(round(n * frac))
    if frac == 0 or n_val < 2 or n - n_val < 2:
        idx = np.arange(n)
        return idx, idx
    if ds.kind == "sequence":  # chronological, like Keras validation_split
        return np.arange(n - n_val), np.arange(n - n_val, n)
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def spline_layers(model: nn.Module) -> list[KANLinear]:
    """B-spline KAN layers in forward order (the registry's finder, FasterKAN layers left out)."""
    return [m for m in find_kan_layers(model).values() if isinstance(m, KANLinear)]


@torch.no_grad()
def update_grids(model: nn.Module, X: torch.Tensor) -> int:
    """Refit every B-spline KAN layer's grid to the inputs it receives from X, in order."""
    layers = spline_layers(model)
    was = model.training
    model.eval()
    for layer in layers:
        seen: list[torch.Tensor] = []
        handle = layer.register_forward_pre_hook(
            lambda m, a, seen=seen: seen.append(a[0].detach()))
        try:
            model(X)
        finally:
            handle.remove()
        if seen:
            layer.update_grid(torch.cat([s.reshape(-1, layer.in_features) for s in seen]))
    model.train(was)
    return len(layers)


class _InputRecorder:
    """Forward hooks keeping each KAN layer's latest input (for the sample-based penalty)."""

    def __init__(self, layers: list[KANLinear]) -> None:
        self.inputs: dict[int, torch.Tensor] = {}
        self.handles = [
            layer.register_forward_pre_hook(self._hook(i)) for i, layer in enumerate(layers)
        ]
        self.layers = layers

    def _hook(self, i: int):
        def hook(module, args):
            self.inputs[i] = args[0]
        return hook

    def penalty(self, entropy_weight: float, max_rows: int = 512) -> torch.Tensor:
        total = torch.zeros((), device=self.layers[0].grid.device)
        for i, layer in enumerate(self.layers):
            if i in self.inputs:
                x = self.inputs[i].reshape(-1, layer.in_features)[:max_rows]
                total = total + layer.regularization_loss(x, 1.0, entropy_weight)
        return total

    def close(self) -> None:
        for h in self.handles:
            h.remove()


# ---------------------------------------------------------------------------- fit


def fit(
    model: nn.Module,
    dataset: Dataset,
    config: TrainConfig | None = None,
    callback: Callable[[EpochProgress], None] | None = None,
    stop: Any = None,
) -> History:
    """Train ``model`` on ``dataset``; returns the History (the model keeps its best weights).

    ``stop`` is anything with ``is_set()`` (a threading.Event); it is checked after every
    mini-batch, so a stop request takes effect within one epoch. The fit runs on
    ``config.device``; the model is moved there once and is back on the CPU when fit returns.
    """
    cfg = (config or TrainConfig()).validate()
    if cfg.starts == 1:
        return _fit_once(model, dataset, cfg, callback, stop)
    return _fit_starts(model, dataset, cfg, callback, stop)


def _fit_once(model: nn.Module, dataset: Dataset, cfg: TrainConfig,
              callback: Callable[[EpochProgress], None] | None, stop: Any,
              start: int = 1) -> History:
    device = resolve_device(cfg.device)
    set_seed(cfg.seed)
    hist = History(device=device_name(device))
    model.to(device)
    try:
        loop = _Loop(model, _Data.of(dataset, cfg, device), cfg, stop)
    except BaseException:
        model.to("cpu")
        raise
    try:
        for epoch in range(1, cfg.epochs + 1):
            train_loss, interrupted = loop.run_epoch(epoch)
            val_loss, val_metrics = loop.validate()
            if loop.diverged(hist, epoch, train_loss, val_loss):
                break
            progress = loop.record(hist, epoch, train_loss, val_loss, val_metrics)
            progress.start, progress.starts = start, cfg.starts
            if callback is not None:
                callback(progress)
            if loop.should_stop(hist, progress, interrupted):
                break
    finally:
        loop.close()
    return loop.finish(hist, dataset)


def _fit_starts(model: nn.Module, dataset: Dataset, cfg: TrainConfig,
                callback: Callable[[EpochProgress], None] | None, stop: Any) -> History:
    """Train cfg.starts initialisations in turn (the first is ``model`` as given, the others
    fresh ones of its registry config, seeded from cfg.seed) on the same validation split and
    batches; ``model`` ends with the weights of the start whose best validation loss is lowest.
    A stop request ends the starts too; a start that diverged is kept only if all did."""
    if not isinstance(model, Model):
        raise TrainingError("starts > 1 re-initialises the model from its registry settings; "
                            "build it with kamoe.models.build (or train with starts=1)")
    best: tuple[float, int, History, dict[str, torch.Tensor]] | None = None
    summaries: list[dict[str, float]] = []
    for start in range(1, cfg.starts + 1):
        if start > 1:
            torch.manual_seed(int(np.random.SeedSequence([cfg.seed, start]).generate_state(1)[0]))
            model.load_state_dict(_rebuild(model.config).state_dict())
        hist = _fit_once(model, dataset, cfg, callback, stop, start)
        score = min(hist.val_loss) if hist.val_loss and hist.stopped != "diverged" else math.inf
        summaries.append({"start": start, "best_val_loss": score, "epochs": len(hist.epochs),
                          "seconds": hist.seconds})
        if best is None or score < best[0]:
            best = (score, start, hist, _state(model))
        if hist.stopped == "stopped":
            break
    _, kept_start, kept, state = best  # kept.metrics are these weights' (from its finish)
    model.load_state_dict(state)
    model.eval()
    kept.starts, kept.kept_start = summaries, kept_start
    kept.seconds = sum(s["seconds"] for s in summaries)
    return kept


@dataclass
class _Data:
    """The tensors of one fit: training rows, validation rows, and the loss comparing outputs."""

    Xtr: torch.Tensor
    ytr: torch.Tensor
    Xva: torch.Tensor
    yva: torch.Tensor
    classification: bool
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

    @staticmethod
    def of(dataset: Dataset, cfg: TrainConfig, device: torch.device | None = None) -> _Data:
        """The split tensors, moved to ``device`` once (the only copy of the data made there)."""
        classification = dataset.task == "classification"
        tr_idx, va_idx = _split_validation(dataset, cfg.val_fraction, cfg.seed)
        X_all = torch.as_tensor(dataset.X_train, dtype=torch.float32)
        y_dtype = torch.long if classification else torch.float32
        y_all = torch.as_tensor(dataset.y_train, dtype=y_dtype)
        loss_fn = nn.CrossEntropyLoss() if classification else nn.MSELoss()
        parts = [X_all[tr_idx], y_all[tr_idx], X_all[va_idx], y_all[va_idx]]
        if device is not None and device.type != "cpu":
            parts = [t.to(device) for t in parts]
        return _Data(*parts, classification, loss_fn)


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """The optimiser ``cfg`` names, over the model's trainable parameters."""
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "lbfgs":
        return torch.optim.LBFGS(params, lr=cfg.lr, max_iter=cfg.lbfgs_iter, history_size=20,
                                 line_search_fn="strong_wolfe", tolerance_grad=1e-12,
                                 tolerance_change=1e-16)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


class _Loop:
    """What lives across the epochs of one fit: optimiser, objective, best weights, counters.

    Each method is one step of ``fit``'s loop: run an epoch, validate, check for divergence,
    record, decide whether to stop (and otherwise lower the learning rate on a plateau).
    """

    def __init__(self, model: nn.Module, data: _Data, cfg: TrainConfig, stop: Any) -> None:
        self.model, self.data, self.cfg, self.stop = model, data, cfg, stop
        self.opt = make_optimizer(model, cfg)
        n = len(data.Xtr)
        self.batch = n if (cfg.batch_size is None or cfg.optimizer == "lbfgs") else cfg.batch_size
        self.layers = spline_layers(model)
        self.recorder = _InputRecorder(self.layers) if cfg.sparsity > 0 and self.layers else None
        self.aux = getattr(model, "auxiliary_loss", None)
        self.task_loss = getattr(model, "task_loss", None)  # a mixture's own data loss
        own_mixture = getattr(model, "likelihood_mixture", None)
        if data.classification and own_mixture is not None and own_mixture() is not None:
            raise TrainingError("mixture_loss='likelihood' is a Gaussian likelihood for "
                                "regression targets; for a classification task use "
                                "mixture_loss='mse' (the mixture is then trained by "
                                "cross-entropy)")
        self.gen = torch.Generator().manual_seed(cfg.seed)
        self.grid_sample = data.Xtr[torch.randperm(n, generator=self.gen)[:2000]
                                    .to(data.Xtr.device)]
        self.best_val, self.best_state = math.inf, _state(model)
        self.bad_epochs = self.plateau = 0
        self.start = time.perf_counter()

    def objective(self, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        """Data loss (the task's, or a mixture's own likelihood) plus the KAN sparsity penalty
        and the mixtures' auxiliary losses."""
        out = self.model(xb)
        own = self.task_loss(yb) if self.task_loss is not None else None
        loss = self.data.loss_fn(out, yb) if own is None else own
        if self.recorder is not None:
            loss = loss + self.cfg.sparsity * self.recorder.penalty(self.cfg.entropy_weight)
        if self.aux is not None and self.cfg.aux_weight:
            loss = loss + self.cfg.aux_weight * self.aux()
        return loss

    def run_epoch(self, epoch: int) -> tuple[float, bool]:
        """One pass over the training rows: (mean training loss, interrupted by a stop)."""
        cfg, data = self.cfg, self.data
        if (epoch <= cfg.grid_update_epochs and self.layers
                and (epoch - 1) % max(1, cfg.grid_update_every) == 0):
            update_grids(self.model, self.grid_sample)
            if cfg.optimizer == "lbfgs":  # curvature history refers to the old basis
                self.opt.state.clear()
        self.model.train()
        if cfg.optimizer == "lbfgs":
            def closure():
                self.opt.zero_grad()
                loss = self.objective(data.Xtr, data.ytr)
                loss.backward()
                return loss
            return float(self.opt.step(closure).detach()), False
        total, count = 0.0, 0
        # drawn on the CPU from the seeded generator (the same batches on every device)
        order = torch.randperm(len(data.Xtr), generator=self.gen).to(data.Xtr.device)
        for i in range(0, len(data.Xtr), self.batch):
            idx = order[i:i + self.batch]
            self.opt.zero_grad()
            loss = self.objective(data.Xtr[idx], data.ytr[idx])
            if not torch.isfinite(loss):
                return math.nan, False
            loss.backward()
            self.opt.step()
            total += loss.item() * len(idx)
            count += len(idx)
            if self.stop is not None and self.stop.is_set():
                return total / count, True
        return total / max(count, 1), False

    def validate(self) -> tuple[float, dict[str, float]]:
        """Loss and metrics on the validation rows (model space)."""
        return _validate(self.model, self.data)

    @property
    def lr(self) -> float:
        return self.opt.param_groups[0]["lr"]

    def diverged(self, hist: History, epoch: int, train_loss: float, val_loss: float) -> bool:
        """On a NaN/Inf loss: restore the best weights, say what happened; True to stop."""
        if math.isfinite(train_loss) and math.isfinite(val_loss):
            return False
        self.model.load_state_dict(self.best_state)
        hist.stopped = "diverged"
        hist.message = (
            f"Training diverged at epoch {epoch} (the loss became NaN or infinite). "
            f"Restored the best weights, from epoch {hist.best_epoch}. Try a smaller "
            f"learning rate than {self.lr:g}" + (", or a smaller sparsity weight"
                                                 if self.cfg.sparsity else "") + "."
        )
        return True

    def record(self, hist: History, epoch: int, train_loss: float, val_loss: float,
               val_metrics: dict[str, float]) -> EpochProgress:
        """Append the epoch to the history and keep the weights when validation improved."""
        elapsed, lr = time.perf_counter() - self.start, self.lr
        hist.epochs.append(epoch)
        hist.train_loss.append(train_loss)
        hist.val_loss.append(val_loss)
        hist.val_metrics.append(val_metrics)
        hist.lr.append(lr)
        hist.elapsed.append(elapsed)
        if val_loss < self.best_val - self.cfg.min_delta:
            self.best_val, self.best_state, hist.best_epoch = val_loss, _state(self.model), epoch
            self.bad_epochs = self.plateau = 0
        else:
            self.bad_epochs += 1
            self.plateau += 1
        return EpochProgress(epoch, self.cfg.epochs, train_loss, val_loss, val_metrics, lr,
                             elapsed, self.model)

    def should_stop(self, hist: History, p: EpochProgress, interrupted: bool) -> bool:
        """Stop request, early stopping or time limit (sets why); else the plateau schedule."""
        cfg, epoch = self.cfg, p.epoch
        if interrupted or (self.stop is not None and self.stop.is_set()):
            hist.stopped, hist.message = "stopped", f"Stopped by request at epoch {epoch}."
            return True
        if cfg.patience is not None and self.bad_epochs >= cfg.patience:
            hist.stopped = "early_stopping"
            hist.message = (f"Early stopping at epoch {epoch}: no validation improvement "
                            f"for {cfg.patience} epochs.")
            return True
        if cfg.max_seconds is not None and p.elapsed >= cfg.max_seconds:
            hist.stopped = "time_limit"
            hist.message = f"Time limit of {cfg.max_seconds:g} s reached at epoch {epoch}."
            return True
        if (cfg.plateau_patience is not None and self.plateau >= cfg.plateau_patience
                and cfg.optimizer != "lbfgs"):
            for group in self.opt.param_groups:
                group["lr"] = max(cfg.min_lr, group["lr"] * cfg.plateau_factor)
            self.plateau = 0
        return False

    def close(self) -> None:
        """Remove the hooks; the best weights back in the model, and the model on the CPU."""
        if self.recorder is not None:
            self.recorder.close()
        self.model.to("cpu")

    def finish(self, hist: History, dataset: Dataset) -> History:
        """Best weights back in the model, total time and the test metrics in raw units."""
        if hist.best_epoch:
            self.model.load_state_dict(self.best_state)  # copies onto the model's device
        self.model.eval()
        hist.seconds = time.perf_counter() - self.start
        hist.metrics = evaluate(self.model, dataset, "test")
        return hist


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return copy.deepcopy(model.state_dict())


def cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's state dict with every tensor on the CPU (what is saved, from any device)."""
    return {k: v.detach().cpu() for k, v in model.state_dict().items()}


@torch.no_grad()
def _validate(model: nn.Module, data: _Data) -> tuple[float, dict[str, float]]:
    model.eval()
    Xva, yva = data.Xva, data.yva
    task_loss = getattr(model, "task_loss", None)
    outs, own = [], 0.0
    for i in range(0, len(Xva), 4096):
        outs.append(model(Xva[i:i + 4096]))
        chunk = task_loss(yva[i:i + 4096]) if task_loss is not None else None
        own = None if chunk is None else own + float(chunk) * len(outs[-1])
    out = torch.cat(outs)
    # the training objective's data part: the task's loss, or a mixture's own likelihood
    loss = float(data.loss_fn(out, yva)) if own is None else own / len(Xva)
    out, yva = out.cpu().numpy(), yva.cpu().numpy()
    if data.classification:
        return loss, classification_metrics(yva, out)
    return loss, regression_metrics(yva, out)


# ---------------------------------------------------------------------------- save / load

_FORMAT = "kamoe-model/1"


def save_model(model: Model, path: str | Path, dataset: Dataset | None = None,
               history: History | None = None, train_config: TrainConfig | None = None) -> Path:
    """Save as a folder: config.json (architecture, data scaling, history) + weights.pt."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    meta: dict[str, Any] = {"format": _FORMAT, "model": model.config}
    if dataset is not None:
        meta["dataset"] = {
            "name": dataset.name, "task": dataset.task, "kind": dataset.kind,
            "feature_names": list(dataset.feature_names),
            "target_names": list(dataset.target_names),
            "class_names": dataset.class_names,
            "x_scaling": dataset.x_scaling.to_dict(),
            "y_scaling": None if dataset.y_scaling is None else dataset.y_scaling.to_dict(),
            "formula": None if dataset.formula is None else str(dataset.formula),
        }
    if history is not None:
        meta["history"] = history.to_dict()
    if train_config is not None:
        meta["train"] = asdict(train_config)
    (path / "config.json").write_text(json.dumps(meta, indent=2))
    torch.save(cpu_state(model), path / "weights.pt")
    return path


def load_model(path: str | Path) -> tuple[Model, dict[str, Any]]:
    """Load a saved model folder (never unpickles arbitrary objects); returns (model, metadata)."""
    path = Path(path)
    cfg_file, weights = path / "config.json", path / "weights.pt"
    if not path.is_dir() or not cfg_file.is_file() or not weights.is_file():
        raise TrainingError(
            f"{path} is not a saved kamoe model: expected a folder with config.json and "
            "weights.pt (as written by `kamoe train --save PATH`)."
        )
    try:
        meta = json.loads(cfg_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise TrainingError(f"{cfg_file} is not valid JSON ({err}); re-save the model.") from err
    if not isinstance(meta, dict) or meta.get("format") != _FORMAT:
        raise TrainingError(f"{cfg_file} is not a kamoe model config (format {_FORMAT} expected).")
    try:
        model = _rebuild(meta["model"])
    except (KeyError, ValueError, TypeError) as err:
        raise TrainingError(f"{cfg_file} describes an invalid model: {err}") from err
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    except Exception as err:  # corrupted, foreign or mismatched weights: one clear message
        raise TrainingError(
            f"{weights} could not be loaded as this model's weights ({type(err).__name__}: "
            f"{str(err).splitlines()[0][:200]}). The file is corrupted or belongs to another "
            "model; retrain and save again."
        ) from err
    model.eval()
    return model, meta


def _rebuild(config: dict[str, Any]) -> Model:
    """A freshly initialised registry model from a Model.config (name, shapes, task, settings)."""
    conf = dict(config)
    return build(conf.pop("name"), conf.pop("input_shape"), conf.pop("output_dim"), **conf)


def dataset_scalings(meta: dict[str, Any]) -> tuple[Affine, Affine | None]:
    """The input/target scalings stored with a saved model."""
    d = meta["dataset"]
    y = d.get("y_scaling")
    return Affine.from_dict(d["x_scaling"]), (None if y is None else Affine.from_dict(y))
