"""Routing statistics of mixtures of experts: which expert gets how much of which input.

Two kinds of mixture are read (both found by ``kamoe.models.find_gates``):

* ``KAMoE`` (and plain MoE): dense gate weights alpha (N, E), or (N, T, E) for per-step gates.
  With the reference sigmoid gate the weights need not sum to 1, so every statistic below uses
  the *normalised* weights alpha / sum_e alpha (identical for softmax gates); the raw weights
  are kept as well.
* ``MLPKANMoE`` (alone or in each transformer block): router probabilities per token (N, n, E)
  and the chosen experts (N, n, k) (top-k routing; for slot routing the per-token combine weight
  of each expert and its argmax).

"Winner" = argmax of the (normalised) weights of one row (a sample, a step or a token).
Entropy is the natural-log Shannon entropy of the normalised weights (max ``log E``).
Specialisation = normalised mutual information between each sample's winner (argmax of its
weights averaged over steps/tokens) and a known group (regime, class, target range):
NMI = I(winner; group) / mean(H(winner), H(group)) (the arithmetic normalisation, as
scikit-learn's default), 0 when either side takes a single value.
Everything returns numpy arrays, pandas frames or the dataclasses below.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from kamoe.nn import module_device
from kamoe.nn.moe import KAMoE, MLPKANMoE

# ---------------------------------------------------------------------------- basics


def normalise_weights(weights: np.ndarray) -> np.ndarray:
    """Weights rescaled to sum to 1 over the last (expert) axis (uniform where all are 0)."""
    w = np.clip(np.asarray(weights, dtype=float), 0.0, None)
    total = w.sum(-1, keepdims=True)
    uniform = np.full_like(w, 1.0 / w.shape[-1])
    return np.where(total > 0, w / np.where(total > 0, total, 1.0), uniform)


def routing_entropy(weights: np.ndarray) -> np.ndarray:
    """Shannon entropy (natural log) of the normalised weights, per row: shape weights.shape[:-1].

    0 when one expert takes everything, ``max_entropy(E) = log E`` for uniform weights.
    """
    p = normalise_weights(weights)
    logp = np.log(np.where(p > 0, p, 1.0))
    return -(p * logp).sum(-1)


def max_entropy(n_experts: int) -> float:
    """The largest possible routing entropy, log E."""
    return math.log(n_experts)


@dataclass
class GateWeights:
    """Gate weights of one KAMoE layer over N samples.

    ``raw`` and ``normalised`` are (N, E), or (N, T, E) when the gate weighs every time step
    (``per_step``). ``flat_raw``/``flat_normalised`` give the (N*T, E) per-step view;
    ``per_sample`` averages the normalised weights over steps, (N, E).
    """

    path: str
    activation: str
    n_experts: int
    raw: np.ndarray
    normalised: np.ndarray
    per_step: bool

    @property
    def flat_raw(self) -> np.ndarray:
        return self.raw.reshape(-1, self.n_experts)

    @property
    def flat_normalised(self) -> np.ndarray:
        return self.normalised.reshape(-1, self.n_experts)

    @property
    def per_sample(self) -> np.ndarray:
        w = self.normalised
        return w.mean(1) if w.ndim == 3 else w

    @property
    def max_entropy(self) -> float:
        return max_entropy(self.n_experts)

    def entropy(self) -> np.ndarray:
        """Entropy per row of the flat (N*T, E) view."""
        return routing_entropy(self.flat_normalised)

    def winners(self) -> np.ndarray:
        """Winning expert per row of the flat view."""
        return self.flat_normalised.argmax(-1)


@dataclass
class RouterStats:
    """Token routing of one MLP-KAN mixture over N samples of n tokens each.

    ``probs`` (N, n, E): router softmax probabilities (slot routing: each expert's combine
    weight, summing to 1 per token); ``chosen`` (N, n, k): the experts each token was sent to
    (slot routing: k = 1, the argmax). ``expert_kinds[e]`` is "mlp" or "kan".
    """

    path: str
    routing: str
    k: int
    expert_kinds: list[str]
    probs: np.ndarray
    chosen: np.ndarray

    @property
    def n_experts(self) -> int:
        return len(self.expert_kinds)

    @property
    def tokens(self) -> np.ndarray:
        """Router probabilities per token, (N*n, E)."""
        return self.probs.reshape(-1, self.n_experts)

    @property
    def normalised(self) -> np.ndarray:
        return self.probs

    @property
    def flat_normalised(self) -> np.ndarray:
        return self.tokens

    @property
    def per_sample(self) -> np.ndarray:
        """Router probabilities averaged over each sample's tokens, (N, E)."""
        return self.probs.mean(1)

    @property
    def max_entropy(self) -> float:
        return max_entropy(self.n_experts)

    def entropy(self) -> np.ndarray:
        return routing_entropy(self.tokens)

    def winners(self) -> np.ndarray:
        return self.tokens.argmax(-1)

    def selection_counts(self, skip_tokens: int = 0) -> np.ndarray:
        """How many token slots each expert received, (E,); sums to tokens * k.

        ``skip_tokens`` leaves out each sample's first tokens (1: a transformer's [CLS] token).
        """
        return np.bincount(self.chosen[:, skip_tokens:].reshape(-1), minlength=self.n_experts)

    def kind_shares(self, skip_tokens: int = 0) -> dict[str, float]:
        """Share of routed token slots that went to MLP and to KAN experts (sums to 1)."""
        counts = self.selection_counts(skip_tokens)
        total = max(int(counts.sum()), 1)
        kinds = np.asarray(self.expert_kinds)
        return {kind: float(counts[kinds == kind].sum() / total) for kind in ("mlp", "kan")}


Routing = GateWeights | RouterStats

# Which rows of a per-step gate stand for the sample when it is compared with the sample's
# group: "last" = the gate at the newest step. A window's group (e.g. the regime of the value
# to predict) belongs to the time right after its last step; the steps before may lie in
# another regime (on ``regimes``, 1 - 0.97**23, about half of the 24-step windows, cross a
# switch), so their mean mixes decisions made for other groups. "mean" averages every step.
# How a gate's name says what it reads, where that is not simply each step's input.
# What a gate's name adds for the way its mixture is trained (nothing for the paper's).
MIXTURE_LOSS_NAMES = {"likelihood": " competing by likelihood",
                      "switching": " switching like a hidden Markov model (filter over the window)"}
GATE_INPUT_NAMES = {"last": "reads the last step", "flatten": "reads the whole window",
                    "recurrent": "reads a GRU over the steps so far"}
GROUP_STEP = "last"
STEPS = ("last", "mean")


def sample_weights(s: Routing, step: str = GROUP_STEP) -> np.ndarray:
    """One row of normalised weights per sample, (N, E): the last step or the mean of steps.

    Dense per-sample gates and token routers (mean over tokens) ignore ``step``.
    """
    if step not in STEPS:
        raise ValueError(f"step must be one of {', '.join(STEPS)}, got {step!r}")
    if isinstance(s, GateWeights) and s.per_step and step == "last":
        return s.normalised[:, -1, :]
    return s.per_sample


def row_unit(s: Routing) -> str:
    """What one row of ``flat_normalised`` is: "samples", "time steps" or "tokens"."""
    if isinstance(s, GateWeights):
        return "time steps" if s.per_step else "samples"
    return "tokens" if s.probs.ndim == 3 and s.probs.shape[1] > 1 else "samples"


def _expert_kind(m: KAMoE) -> str:
    e = m.experts[0]
    cell = getattr(e, "cell", None)
    if cell:  # experts whose heads also read the last p steps are GRU + AR(p) models
        return cell.upper() + (f" + AR({m.expert_lags})" if m.expert_lags else "")
    return "KAN" if type(e).__name__ == "KANLinear" else "MLP"


def gate_names(model: nn.Module) -> dict[str, str]:
    """A label a person reads for every mixture, by module path (the keys of routing_stats).

    E.g. "gate of layer 1: GRKAN, sigmoid, 3 GRU experts" or "router of block 2: 8 experts
    (4 MLP + 4 KAN), top-2".
    """
    mixtures = [(n, m) for n, m in model.named_modules() if isinstance(m, (KAMoE, MLPKANMoE))]
    names: dict[str, str] = {}
    layer = 0
    for path, m in mixtures:
        if isinstance(m, KAMoE):
            layer += 1
            where = f"gate of layer {layer}" if len(mixtures) > 1 else "gate"
            kind = {"grkan": "GRKAN", "grn": "GRN", "linear": "linear"}.get(m.gate_kind,
                                                                           m.gate_kind)
            extras = [f"top-{m.gate_top_k}"] if m.gate_top_k else []
            if m.gate_temperature != 1.0:
                extras.append(f"T={m.gate_temperature:g}")
            if m.gate_input in GATE_INPUT_NAMES:
                extras.append(GATE_INPUT_NAMES[m.gate_input])
            names[path] = (f"{where}: {kind}, {m.gate_activation}"
                           + "".join(f", {x}" for x in extras)
                           + f", {m.n_experts} {_expert_kind(m)} experts"
                           + (MIXTURE_LOSS_NAMES.get(m.mixture_loss, "")))
        else:
            parts = path.split(".")
            block = next((int(parts[i + 1]) for i, v in enumerate(parts[:-1])
                          if v == "blocks" and parts[i + 1].isdigit()), None)
            where = f"router of block {block + 1}" if block is not None else "router"
            kinds = list(m.expert_kinds)
            mix = f"{kinds.count('mlp')} MLP + {kinds.count('kan')} KAN"
            route = f"top-{m.router.k}" if m.routing == "topk" else "soft slots"
            names[path] = f"{where}: {m.n_experts} experts ({mix}), {route}"
    return names


# ---------------------------------------------------------------------------- collection


def _select_rows(n: int, max_rows: int | None) -> np.ndarray:
    if max_rows is None or n <= max_rows:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, max_rows).round().astype(int))


def routing_stats(model: nn.Module, X: np.ndarray | torch.Tensor,
                  paths: list[str] | str | None = None, max_rows: int | None = None,
                  batch_size: int = 4096) -> dict[str, Routing]:
    """Routing of every mixture (KAMoE -> GateWeights, MLP-KAN -> RouterStats) over X.

    Runs the model in eval mode without gradients (its mode is restored). X is in model space.
    """
    mixtures = {n: m for n, m in model.named_modules() if isinstance(m, (KAMoE, MLPKANMoE))}
    if isinstance(paths, str):
        paths = [paths]
    if paths is not None:
        missing = [p for p in paths if p not in mixtures]
        if missing:
            raise ValueError(f"no mixture at {missing}; mixtures are: {', '.join(mixtures)}")
        mixtures = {p: mixtures[p] for p in paths}
    if not mixtures:
        raise ValueError("this model has no mixture of experts (KAMoE, MoE or MLP-KAN) to read")
    X = np.asarray(X)[_select_rows(len(X), max_rows)]
    got: dict[str, list[tuple[torch.Tensor, ...]]] = {p: [] for p in mixtures}
    handles = []
    for p, m in mixtures.items():
        def hook(module, args, output, p=p):
            if isinstance(module, KAMoE):
                got[p].append((module.last_gate_weights,))
            else:
                got[p].append((module.last_router_probs, module.last_chosen))
        handles.append(m.register_forward_hook(hook))
    was, device = model.training, module_device(model)  # X goes to the model, results to the CPU
    model.eval()
    try:
        with torch.no_grad():
            for s in range(0, len(X), batch_size):
                model(torch.as_tensor(X[s:s + batch_size], dtype=torch.float32,
                                      device=device))
    finally:
        for h in handles:
            h.remove()
        model.train(was)
    out: dict[str, Routing] = {}
    for p, m in mixtures.items():
        if isinstance(m, KAMoE):
            raw = (torch.cat([g[0] for g in got[p]]).cpu().double().numpy() if got[p]
                   else np.zeros((0, m.n_experts)))
            out[p] = GateWeights(p, m.gate_activation, m.n_experts, raw, normalise_weights(raw),
                                 per_step=raw.ndim == 3)
        else:
            E = m.n_experts
            probs = (torch.cat([g[0] for g in got[p]]).cpu().double().numpy() if got[p]
                     else np.zeros((0, 1, E)))
            chosen = (torch.cat([g[1] for g in got[p]]).cpu().numpy() if got[p]
                      else np.zeros((0, 1, 1), dtype=int))
            k = m.router.k if m.routing == "topk" else 1
            out[p] = RouterStats(p, m.routing, k, list(m.expert_kinds), probs, chosen)
    return out


def gate_weights(model: nn.Module, X: np.ndarray | torch.Tensor,
                 max_rows: int | None = None) -> dict[str, GateWeights]:
    """Raw and normalised gate weights of every KAMoE/MoE layer over X."""
    stats = routing_stats(model, X, max_rows=max_rows)
    return {p: s for p, s in stats.items() if isinstance(s, GateWeights)}


def router_stats(model: nn.Module, X: np.ndarray | torch.Tensor,
                 max_rows: int | None = None) -> dict[str, RouterStats]:
    """Router probabilities and choices of every MLP-KAN mixture over X."""
    stats = routing_stats(model, X, max_rows=max_rows)
    return {p: s for p, s in stats.items() if isinstance(s, RouterStats)}


# ---------------------------------------------------------------------------- summaries


def _as_mapping(stats: Routing | Mapping[str, Routing]) -> Mapping[str, Routing]:
    if isinstance(stats, (GateWeights, RouterStats)):
        return {stats.path: stats}
    return stats


def _kinds(s: Routing) -> list[str]:
    return list(s.expert_kinds) if isinstance(s, RouterStats) else [""] * s.n_experts


def routing_summary(stats: Routing | Mapping[str, Routing], bins: int = 20) -> pd.DataFrame:
    """One row per gate x expert.

    Columns: gate, expert, kind ("mlp"/"kan" for MLP-KAN, "" otherwise), mean_weight (raw gate
    weight or router probability), mean_normalised, win_share (share of rows, i.e. samples, steps
    or tokens, where the expert has the largest weight), selected_count / selected_share (MLP-KAN:
    token slots routed to the expert; NaN for dense gates), hist_counts / hist_edges (histogram of
    the expert's normalised weight over rows, ``bins`` bins on [0, 1], as lists).
    """
    rows = []
    for path, s in _as_mapping(stats).items():
        norm = s.flat_normalised
        raw = s.flat_raw if isinstance(s, GateWeights) else norm
        win = np.bincount(norm.argmax(-1), minlength=s.n_experts) / max(len(norm), 1)
        if isinstance(s, RouterStats):
            counts = s.selection_counts()
            shares = counts / max(int(counts.sum()), 1)
        else:
            counts = shares = np.full(s.n_experts, np.nan)
        kinds = _kinds(s)
        for e in range(s.n_experts):
            h, edges = np.histogram(norm[:, e], bins=bins, range=(0.0, 1.0))
            rows.append({
                "gate": path, "expert": e, "kind": kinds[e],
                "mean_weight": float(raw[:, e].mean()) if len(raw) else np.nan,
                "mean_normalised": float(norm[:, e].mean()) if len(norm) else np.nan,
                "win_share": float(win[e]), "selected_count": counts[e],
                "selected_share": float(shares[e]),
                "hist_counts": h.tolist(), "hist_edges": edges.tolist(),
            })
    return pd.DataFrame(rows)


def kind_shares(stats: Mapping[str, Routing], skip_tokens: int = 0) -> pd.DataFrame:
    """MLP-vs-KAN share of routed token slots per MLP-KAN layer.

    Columns: gate, kind ("mlp"/"kan"), selected_share (sums to 1 per gate), mean_prob (total
    router probability of that kind's experts, averaged over tokens; sums to 1 per gate).
    ``skip_tokens`` leaves out each sample's first tokens (1: the transformer's [CLS] token, so
    that only the data's own tokens, features or patches, are counted).
    """
    rows = []
    for path, s in _as_mapping(stats).items():
        if not isinstance(s, RouterStats):
            continue
        kinds = np.asarray(s.expert_kinds)
        shares = s.kind_shares(skip_tokens)
        tok = s.probs[:, skip_tokens:].reshape(-1, s.n_experts)
        for kind in ("mlp", "kan"):
            prob = float(tok[:, kinds == kind].sum(-1).mean()) if len(tok) else np.nan
            rows.append({"gate": path, "kind": kind, "selected_share": shares[kind],
                         "mean_prob": prob})
    return pd.DataFrame(rows, columns=["gate", "kind", "selected_share", "mean_prob"])


# ---------------------------------------------------------------------------- groups


def _fmt(v: float) -> str:
    return f"{v:.3g}"


def quantile_groups(y: np.ndarray, q: int = 4) -> pd.Categorical:
    """Label each value by its quantile range, "[lo, hi)" (the top range is closed: "[lo, hi]").

    Ties in the quantile edges are merged, so fewer than q groups may come back.
    """
    y = np.asarray(y, dtype=float).reshape(len(y), -1)[:, 0]
    if q < 1:
        raise ValueError(f"q must be a positive integer, got {q!r}")
    edges = np.unique(np.quantile(y, np.linspace(0, 1, q + 1)))
    if len(edges) == 1:
        label = f"[{_fmt(edges[0])}, {_fmt(edges[0])}]"
        return pd.Categorical([label] * len(y), categories=[label], ordered=True)
    idx = np.clip(np.searchsorted(edges, y, side="right") - 1, 0, len(edges) - 2)
    labels = [f"[{_fmt(a)}, {_fmt(b)})" for a, b in zip(edges[:-2], edges[1:-1], strict=True)]
    labels.append(f"[{_fmt(edges[-2])}, {_fmt(edges[-1])}]")
    return pd.Categorical.from_codes(idx, categories=labels, ordered=True)


def class_groups(y: np.ndarray, class_names: list[str] | None = None) -> pd.Categorical:
    """Class labels as an ordered categorical (class names when given)."""
    y = np.asarray(y).astype(int).reshape(-1)
    names = class_names or [str(c) for c in range(int(y.max()) + 1 if len(y) else 0)]
    return pd.Categorical.from_codes(y, categories=list(names), ordered=True)


def dataset_groups(dataset: Any, split: str = "test", q: int = 4) -> tuple[pd.Categorical, str]:
    """Groups for a routing breakdown: the known regime if any, else classes, else target quartiles.

    Returns (groups aligned with ``dataset.X_<split>``, the groups' name). Known integer groups
    are named by ``dataset.meta["<group_name>_names"]`` when it lists them (the regimes).
    """
    known = dataset.groups_test if split == "test" else dataset.groups_train
    if known is not None:
        values = np.asarray(known)
        name = dataset.group_name or "group"
        labels = (dataset.meta or {}).get(f"{name}_names")  # e.g. meta["regime_names"]
        if labels is not None and np.issubdtype(values.dtype, np.integer) and len(values) \
                and 0 <= values.min() and values.max() < len(labels):
            return pd.Categorical.from_codes(values, categories=list(labels), ordered=True), name
        cats = sorted(pd.unique(values).tolist(), key=str)
        return pd.Categorical(values, categories=cats, ordered=True), name
    y = dataset.raw_y(split)
    if dataset.task == "classification":
        return class_groups(y, dataset.class_names), dataset.target_names[0]
    return quantile_groups(y, q), f"{dataset.target_names[0]} quantile"


def class_thumbnails(dataset: Any, split: str = "test") -> tuple[np.ndarray, list[str]]:
    """Mean raw image of each class of an image dataset, (C, H, W), and the class names."""
    if dataset.kind != "image" or dataset.task != "classification":
        raise ValueError(f"class thumbnails need an image classification dataset; "
                         f"{dataset.name!r} is {dataset.kind} {dataset.task}")
    X = dataset.raw_X(split)
    y = np.asarray(dataset.y_test if split == "test" else dataset.y_train).astype(int)
    names = list(dataset.class_names or [str(c) for c in range(dataset.output_dim)])
    images = np.stack([X[y == c].mean(0) if (y == c).any() else np.zeros(X.shape[1:])
                       for c in range(len(names))])
    return images, names


def _group_order(groups: Any) -> tuple[np.ndarray, list[Any]]:
    if isinstance(groups, pd.Categorical):
        cats = list(groups.categories)
        return np.asarray(groups.astype(object)), cats
    values = np.asarray(groups).reshape(-1)
    uniq = pd.unique(values).tolist()
    try:
        uniq = sorted(uniq)
    except TypeError:
        pass
    return values, uniq


def routing_by_group(model: nn.Module | Mapping[str, Routing], X: np.ndarray | None,
                     groups: Any, group_name: str = "group",
                     paths: list[str] | str | None = None,
                     step: str = GROUP_STEP) -> pd.DataFrame:
    """Per gate x group x expert: how the routing differs between groups of samples.

    ``groups`` has one value per row of X (see quantile_groups, class_groups, dataset_groups).
    Per sample the weights are those of ``sample_weights(s, step)`` (a per-step gate at its
    last step by default, see ``GROUP_STEP``; token routers: mean over tokens) and the sample's
    winner is their argmax. Columns: gate,
    group_by (= group_name), group, expert, kind, n (samples in the group), mean_weight,
    win_share, selected_share (MLP-KAN: share of the group's token slots routed to the expert;
    NaN for dense gates). ``model`` may also be precomputed ``routing_stats`` (X then unused).
    """
    stats = (model if isinstance(model, Mapping)
             else routing_stats(model, X, paths=paths))
    values, order = _group_order(groups)
    rows = []
    for path, s in stats.items():
        per = sample_weights(s, step)
        if len(values) != len(per):
            raise ValueError(f"groups has {len(values)} values but X has {len(per)} rows")
        kinds = _kinds(s)
        for g in order:
            mask = values == g
            n = int(mask.sum())
            if n == 0:
                continue
            w = per[mask]
            win = np.bincount(w.argmax(-1), minlength=s.n_experts) / n
            if isinstance(s, RouterStats):
                c = np.bincount(s.chosen[mask].reshape(-1), minlength=s.n_experts)
                sel = c / max(int(c.sum()), 1)
            else:
                sel = np.full(s.n_experts, np.nan)
            for e in range(s.n_experts):
                rows.append({"gate": path, "group_by": group_name, "group": g, "expert": e,
                             "kind": kinds[e], "n": n, "mean_weight": float(w[:, e].mean()),
                             "win_share": float(win[e]), "selected_share": float(sel[e])})
    return pd.DataFrame(rows, columns=["gate", "group_by", "group", "expert", "kind", "n",
                                       "mean_weight", "win_share", "selected_share"])


# ---------------------------------------------------------------------------- training record


class RoutingRecorder:
    """Training callback recording routing on a fixed probe after every epoch.

    ``fit(model, ds, cfg, callback=RoutingRecorder(ds.X_train))``; chain another callback with
    ``then=``. Per epoch, gate and expert it stores the mean normalised weight, the win share and
    the gate's mean entropy (eval mode, no gradients, on at most ``max_rows`` probe rows; the
    model's mode is restored), and each probe sample's weights (``sample_weights``), so that
    ``by_group`` / ``specialisation_frame`` can break the record down by any grouping of the
    rows given at construction (e.g. ``dataset_groups(ds, "train")``). ``frame()`` returns the
    per-expert record as a tidy DataFrame. A fit with several starts (``TrainConfig.starts``)
    records each start apart; ``keep_start(History.kept_start)`` makes the kept one the record.
    """

    def __init__(self, X_probe: np.ndarray, max_rows: int = 512,
                 then: Callable[[Any], None] | None = None) -> None:
        X_probe = np.asarray(X_probe)
        self.n_rows = len(X_probe)
        self.index = _select_rows(len(X_probe), max_rows)  # probe rows among those given
        self.X_probe = X_probe[self.index]
        self.then = then
        self.rows: list[dict[str, Any]] = []
        self.samples: dict[tuple[int, str], np.ndarray] = {}  # (epoch, gate) -> (n, E)
        self.start = 1  # the start (initialisation) being recorded; earlier ones kept aside
        self._starts: dict[int, tuple[list[dict[str, Any]], dict]] = {}

    def record(self, model: nn.Module, epoch: int) -> None:
        """Record the routing of ``model`` as epoch ``epoch``."""
        for path, s in routing_stats(model, self.X_probe).items():
            norm = s.flat_normalised
            mean = norm.mean(0)
            win = np.bincount(norm.argmax(-1), minlength=s.n_experts) / max(len(norm), 1)
            ent = float(routing_entropy(norm).mean())
            for e in range(s.n_experts):
                self.rows.append({"epoch": epoch, "gate": path, "expert": e,
                                  "mean_weight": float(mean[e]), "win_share": float(win[e]),
                                  "entropy": ent})
            self.samples[(epoch, path)] = sample_weights(s).astype(np.float32)

    def keep_start(self, start: int) -> None:
        """Make start ``start``'s record (of a fit with several starts) the one reported;
        the current one is set aside (a start not recorded yet begins empty)."""
        if start != self.start:
            self._starts[self.start] = (self.rows, self.samples)
            self.rows, self.samples = self._starts.pop(start, ([], {}))
            self.start = start

    def __call__(self, progress: Any) -> None:
        self.keep_start(getattr(progress, "start", 1))  # a new initialisation starts afresh
        self.record(progress.model, progress.epoch)
        if self.then is not None:
            self.then(progress)

    def frame(self) -> pd.DataFrame:
        """Columns: epoch, gate, expert, mean_weight, win_share, entropy."""
        return pd.DataFrame(self.rows, columns=["epoch", "gate", "expert", "mean_weight",
                                                "win_share", "entropy"])

    def _probe_groups(self, groups: Any) -> Any:
        if len(groups) != self.n_rows:
            raise ValueError(f"groups has {len(groups)} values but the recorder was given "
                             f"{self.n_rows} rows; pass the groups of those rows")
        return groups[self.index] if isinstance(groups, pd.Categorical) \
            else np.asarray(groups).reshape(-1)[self.index]

    def by_group(self, groups: Any, group_name: str = "group") -> pd.DataFrame:
        """Per epoch x gate x group x expert: n, mean_weight, win_share (for a slider).

        ``groups`` has one value per row given at construction (all of them, not the probe).
        """
        values, order = _group_order(self._probe_groups(groups))
        rows = []
        for (epoch, path), w in self.samples.items():
            for g in order:
                mask = values == g
                n = int(mask.sum())
                if n == 0:
                    continue
                win = np.bincount(w[mask].argmax(-1), minlength=w.shape[1]) / n
                mean = w[mask].mean(0)
                for e in range(w.shape[1]):
                    rows.append({"epoch": epoch, "gate": path, "group_by": group_name,
                                 "group": g, "expert": e, "n": n,
                                 "mean_weight": float(mean[e]), "win_share": float(win[e])})
        return pd.DataFrame(rows, columns=["epoch", "gate", "group_by", "group", "expert", "n",
                                           "mean_weight", "win_share"])

    def specialisation_frame(self, groups: Any) -> pd.DataFrame:
        """Per epoch x gate: nmi (strongest expert vs group) and mean entropy of those rows."""
        values, _ = _group_order(self._probe_groups(groups))
        rows = [{"epoch": epoch, "gate": path,
                 "nmi": normalised_mutual_information(w.argmax(-1), values),
                 "entropy": float(routing_entropy(w).mean())}
                for (epoch, path), w in self.samples.items()]
        return pd.DataFrame(rows, columns=["epoch", "gate", "nmi", "entropy"])


# ---------------------------------------------------------------------------- winner map


@dataclass
class WinnerMap:
    """Which expert wins where, over a grid of two raw inputs.

    ``x`` (R,) and ``y`` (R,): grid axes in raw units of ``features``; ``winner`` (R, R) and
    ``weights`` (R, R, E) are indexed [row = y index, column = x index] (plotly heatmap layout);
    weights are normalised (per-sample means over steps/tokens). Unpacks as
    ``xx, yy, winner, weights`` with xx, yy the (R, R) meshgrids.
    """

    gate: str
    features: list[str]
    x: np.ndarray
    y: np.ndarray
    winner: np.ndarray
    weights: np.ndarray

    @property
    def xx(self) -> np.ndarray:
        return np.meshgrid(self.x, self.y)[0]

    @property
    def yy(self) -> np.ndarray:
        return np.meshgrid(self.x, self.y)[1]

    def __iter__(self):
        return iter((self.xx, self.yy, self.winner, self.weights))


def winner_map(model: nn.Module, dataset: Any, gate_path: str | None = None,
               resolution: int = 60) -> WinnerMap:
    """Winning expert and normalised weights on a grid over a 2-input dataset's raw ranges."""
    if dataset.kind != "tabular" or dataset.n_features != 2 or dataset.X_train.ndim != 2:
        raise ValueError(
            f"winner_map needs tabular data with exactly 2 inputs; {dataset.name!r} has input "
            f"shape {dataset.input_shape}"
        )
    if resolution < 2:
        raise ValueError(f"resolution must be >= 2, got {resolution!r}")
    raw = dataset.raw_X("train")
    xs = np.linspace(raw[:, 0].min(), raw[:, 0].max(), resolution)
    ys = np.linspace(raw[:, 1].min(), raw[:, 1].max(), resolution)
    gx, gy = np.meshgrid(xs, ys)
    pts = dataset.x_scaling.apply(np.stack([gx.ravel(), gy.ravel()], 1)).astype(np.float32)
    stats = routing_stats(model, pts, paths=gate_path)
    path = gate_path or next(iter(stats))
    w = stats[path].per_sample.reshape(resolution, resolution, -1)
    return WinnerMap(path, list(dataset.feature_names), xs, ys, w.argmax(-1), w)


# ---------------------------------------------------------------------------- specialisation

# Verdict thresholds on the NMI between winners and groups. 0.5: half of the uncertainty about
# a sample's group is removed by knowing its expert (the issue's bar for "the experts split the
# groups"); below 0.15 the winners say next to nothing about the group.
NMI_SPLIT = 0.5
NMI_WEAK = 0.15
# Mean routing entropy above this share of log E counts as "close to uniform" routing: with
# 3 experts, 0.85 * log 3 = 0.93 nats, the entropy of weights like (0.55, 0.30, 0.15). The
# paper's gate (LayerNorm over the experts, then a sigmoid) stays at 0.98-0.99 nats on regimes.
UNIFORM_ENTROPY = 0.85


def _entropy_of_counts(counts: np.ndarray) -> float:
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


def normalised_mutual_information(a: Any, b: Any) -> float:
    """NMI of two labelings (arithmetic normalisation), in [0, 1]; 0 if either is constant."""
    a, b = np.asarray(a).reshape(-1), np.asarray(b).reshape(-1)
    if len(a) != len(b):
        raise ValueError(f"labelings differ in length: {len(a)} and {len(b)}")
    if len(a) == 0:
        return 0.0
    _, ai = np.unique(a, return_inverse=True)
    _, bi = np.unique(b, return_inverse=True)
    joint = np.zeros((ai.max() + 1, bi.max() + 1))
    np.add.at(joint, (ai, bi), 1.0)
    ha, hb = _entropy_of_counts(joint.sum(1)), _entropy_of_counts(joint.sum(0))
    if ha <= 0 or hb <= 0:
        return 0.0
    mi = ha + hb - _entropy_of_counts(joint.ravel())
    return float(np.clip(mi / (0.5 * (ha + hb)), 0.0, 1.0))


@dataclass
class Specialisation:
    """How far the experts of one gate split known groups of samples.

    ``nmi``: normalised mutual information between each sample's winning expert and its group;
    ``entropy`` / ``max_entropy``: mean routing entropy per row and log E; ``winner_share``
    (E,): share of samples each expert wins; ``table``: samples per (group, winning expert),
    a frame indexed by group with one column per expert; ``verdict``: one plain sentence.
    """

    gate: str
    group_name: str
    n_samples: int
    nmi: float
    entropy: float
    max_entropy: float
    winner_share: np.ndarray
    table: pd.DataFrame
    verdict: str

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready numbers (no table)."""
        return {"gate": self.gate, "group_by": self.group_name, "n": self.n_samples,
                "nmi": round(self.nmi, 4), "entropy": round(self.entropy, 4),
                "max_entropy": round(self.max_entropy, 4),
                "winner_share": [round(float(v), 4) for v in self.winner_share],
                "verdict": self.verdict}


def _plural(name: str) -> str:
    if name.endswith(("ss", "sh", "ch", "x")):
        return f"{name}es"
    return name if name.endswith("s") else f"{name}s"


def specialisation_verdict(nmi: float, entropy: float, max_entropy_: float,
                           group_name: str = "group") -> str:
    """One plain sentence saying whether the experts split the groups.

    Near-uniform weights (mean entropy >= ``UNIFORM_ENTROPY`` * log E) come first: the experts
    are then averaged whatever expert is marginally the strongest.
    """
    groups = _plural(group_name)
    if max_entropy_ > 0 and entropy >= UNIFORM_ENTROPY * max_entropy_:
        tail = (f"; the slightly favoured expert does follow the {group_name} (NMI {nmi:.2f})"
                if nmi >= NMI_WEAK else f" (NMI {nmi:.2f})")
        return (f"Routing is close to uniform: every expert gets about the same weight "
                f"(entropy {entropy:.2f} of at most {max_entropy_:.2f}), so the experts barely "
                f"specialised{tail}.")
    if nmi >= NMI_SPLIT:
        return (f"The experts split the {groups}: knowing a sample's strongest expert tells "
                f"most of its {group_name} (NMI {nmi:.2f}).")
    if nmi >= NMI_WEAK:
        return (f"The experts partly specialise: the strongest expert says something about "
                f"the {group_name}, but the {groups} overlap (NMI {nmi:.2f}).")
    return (f"The gate makes choices, but not along the {groups}: its strongest expert says "
            f"almost nothing about the {group_name} (NMI {nmi:.2f}).")


def specialisation(stats: Routing | Mapping[str, Routing], groups: Any,
                   group_name: str = "group", step: str = GROUP_STEP
                   ) -> dict[str, Specialisation]:
    """Per gate: NMI between each sample's strongest expert and its group, with a verdict.

    ``stats`` comes from ``routing_stats`` on the same rows as ``groups`` (e.g. the test split
    with ``dataset_groups(dataset, "test")``). The strongest expert is the argmax of
    ``sample_weights(s, step)``; the entropy is that of those rows.
    """
    values, order = _group_order(groups)
    out = {}
    for path, s in _as_mapping(stats).items():
        per = sample_weights(s, step)
        if len(values) != len(per):
            raise ValueError(f"groups has {len(values)} values but the routing has {len(per)} "
                             "samples; compute both on the same split")
        win = per.argmax(-1) if len(per) else np.zeros(0, dtype=int)
        nmi = normalised_mutual_information(win, values)
        ent = float(routing_entropy(per).mean()) if len(per) else 0.0
        table = pd.crosstab(pd.Categorical(values, categories=order),
                            pd.Categorical(win, categories=range(s.n_experts)), dropna=False)
        table.index.name, table.columns.name = group_name, "expert"
        share = np.bincount(win, minlength=s.n_experts) / max(len(win), 1)
        out[path] = Specialisation(path, group_name, len(per), nmi, ent, s.max_entropy, share,
                                   table, specialisation_verdict(nmi, ent, s.max_entropy,
                                                                 group_name))
    return out


def dataset_routing(model: nn.Module, dataset: Any, split: str = "test",
                    max_rows: int | None = None) -> tuple[dict[str, Routing], Any, str]:
    """Every gate's routing on a dataset split (at most ``max_rows`` rows, evenly spread) with
    the groups of those same rows and the groups' name (``dataset_groups``)."""
    X = dataset.X_test if split == "test" else dataset.X_train
    groups, group_name = dataset_groups(dataset, split)
    rows = _select_rows(len(X), max_rows)
    return routing_stats(model, np.asarray(X)[rows]), groups[rows], group_name


def routing_report(model: nn.Module, dataset: Any, split: str = "test",
                   max_rows: int | None = None) -> dict[str, Any] | None:
    """Specialisation of every gate on a dataset split as plain JSON-ready data (None: no gate).

    ``nmi``, ``entropy``, ``max_entropy`` and ``verdict`` at the top are the first gate's (the
    one nearest the input); ``gates`` has every gate's ``Specialisation.as_dict()`` plus its
    readable name.
    """
    if not any(isinstance(m, (KAMoE, MLPKANMoE)) for m in model.modules()):
        return None
    stats, groups, group_name = dataset_routing(model, dataset, split, max_rows)
    spec = specialisation(stats, groups, group_name)
    names = gate_names(model)
    gates = {p: {"name": names.get(p, p), **sp.as_dict()} for p, sp in spec.items()}
    first = next(iter(gates.values()))
    return {"split": split, "group_by": group_name, "nmi": first["nmi"],
            "entropy": first["entropy"], "max_entropy": first["max_entropy"],
            "verdict": first["verdict"], "gates": gates}
