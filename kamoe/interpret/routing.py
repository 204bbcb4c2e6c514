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
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            for s in range(0, len(X), batch_size):
                model(torch.as_tensor(X[s:s + batch_size], dtype=torch.float32))
    finally:
        for h in handles:
            h.remove()
        model.train(was)
    out: dict[str, Routing] = {}
    for p, m in mixtures.items():
        if isinstance(m, KAMoE):
            raw = (torch.cat([g[0] for g in got[p]]).double().numpy() if got[p]
                   else np.zeros((0, m.n_experts)))
            out[p] = GateWeights(p, m.gate_activation, m.n_experts, raw, normalise_weights(raw),
                                 per_step=raw.ndim == 3)
        else:
            E = m.n_experts
            probs = (torch.cat([g[0] for g in got[p]]).double().numpy() if got[p]
                     else np.zeros((0, 1, E)))
            chosen = (torch.cat([g[1] for g in got[p]]).numpy() if got[p]
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

    Returns (groups aligned with ``dataset.X_<split>``, the groups' name).
    """
    known = dataset.groups_test if split == "test" else dataset.groups_train
    if known is not None:
        values = np.asarray(known)
        cats = sorted(pd.unique(values).tolist(), key=str)
        return pd.Categorical(values, categories=cats, ordered=True), dataset.group_name or "group"
    y = dataset.raw_y(split)
    if dataset.task == "classification":
        return class_groups(y, dataset.class_names), dataset.target_names[0]
    return quantile_groups(y, q), f"{dataset.target_names[0]} quantile"


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
                     paths: list[str] | str | None = None) -> pd.DataFrame:
    """Per gate x group x expert: how the routing differs between groups of samples.

    ``groups`` has one value per row of X (see quantile_groups, class_groups, dataset_groups).
    Per sample the weights are aggregated over its steps/tokens (mean normalised weight or
    router probability) and the sample's winner is the argmax of that mean. Columns: gate,
    group_by (= group_name), group, expert, kind, n (samples in the group), mean_weight,
    win_share, selected_share (MLP-KAN: share of the group's token slots routed to the expert;
    NaN for dense gates). ``model`` may also be precomputed ``routing_stats`` (X then unused).
    """
    stats = (model if isinstance(model, Mapping)
             else routing_stats(model, X, paths=paths))
    values, order = _group_order(groups)
    rows = []
    for path, s in stats.items():
        per = s.per_sample
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
    model's mode is restored). ``frame()`` returns them as a tidy DataFrame.
    """

    def __init__(self, X_probe: np.ndarray, max_rows: int = 512,
                 then: Callable[[Any], None] | None = None) -> None:
        X_probe = np.asarray(X_probe)
        self.X_probe = X_probe[_select_rows(len(X_probe), max_rows)]
        self.then = then
        self.rows: list[dict[str, Any]] = []

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

    def __call__(self, progress: Any) -> None:
        self.record(progress.model, progress.epoch)
        if self.then is not None:
            self.then(progress)

    def frame(self) -> pd.DataFrame:
        """Columns: epoch, gate, expert, mean_weight, win_share, entropy."""
        return pd.DataFrame(self.rows, columns=["epoch", "gate", "expert", "mean_weight",
                                                "win_share", "entropy"])


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
