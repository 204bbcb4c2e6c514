"""Figures of expert routing: gate-weight histograms, usage per group, entropy, winner maps."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

_COLOURS = px.colors.qualitative.Plotly


def _names(n: int, names: Sequence[str] | None) -> list[str]:
    return list(names) if names is not None and len(names) == n else [f"expert {e}"
                                                                       for e in range(n)]


def gate_histograms(weights: np.ndarray, expert_names: Sequence[str] | None = None,
                    bins: int = 40, title: str = "Gate weights per expert") -> go.Figure:
    """Overlaid histograms of each expert's gate weight over the samples (weights: (N, E))."""
    w = np.asarray(weights, dtype=float)
    w = w.reshape(-1, w.shape[-1]) if w.ndim > 1 else w.reshape(-1, 1)
    names = _names(w.shape[1], expert_names)
    fig = go.Figure()
    for e in range(w.shape[1]):
        fig.add_trace(go.Histogram(x=w[:, e], nbinsx=bins, name=names[e], opacity=0.6,
                                   marker_color=_COLOURS[e % len(_COLOURS)]))
    fig.update_layout(title=title, barmode="overlay", xaxis_title="gate weight",
                      yaxis_title="samples", height=340, margin=dict(l=40, r=10, t=50, b=40))
    return fig


def usage_by_group(usage: pd.DataFrame, group_name: str = "group",
                   title: str | None = None, value: str = "mean_weight") -> go.Figure:
    """Stacked bars of each expert's mean weight per group (target range, class, regime).

    ``usage`` is either tidy (columns group, expert, ``value``; e.g. ``routing_by_group``) or
    wide (index = groups, one column per expert).
    """
    if {"group", "expert", value} <= set(usage.columns):
        usage = usage.pivot_table(index="group", columns="expert", values=value, sort=False,
                                  observed=True)
        usage.columns = [f"expert {c}" for c in usage.columns]
    fig = go.Figure()
    groups = [str(g) for g in usage.index]
    for k, col in enumerate(usage.columns):
        fig.add_trace(go.Bar(x=groups, y=usage[col].to_numpy(dtype=float), name=str(col),
                             marker_color=_COLOURS[k % len(_COLOURS)]))
    fig.update_layout(title=title or f"Expert usage by {group_name}", barmode="stack",
                      xaxis_title=group_name, yaxis_title=value.replace("_", " "), height=340,
                      margin=dict(l=40, r=10, t=50, b=40))
    return fig


def entropy_over_epochs(record: pd.DataFrame | Mapping[str, Sequence[float]],
                        epochs: Sequence[int] | None = None, max_entropy: float | None = None,
                        title: str = "Routing entropy over training") -> go.Figure:
    """Mean routing entropy per epoch, one line per gate.

    ``record`` is a tidy frame with columns epoch, gate, entropy (``RoutingRecorder.frame()``)
    or a mapping gate -> values (then ``epochs`` gives the x axis).
    """
    if isinstance(record, pd.DataFrame):
        per = record.groupby(["gate", "epoch"], sort=False)["entropy"].first()
        series = {g: (list(v.index.get_level_values("epoch")), list(v.to_numpy()))
                  for g, v in per.groupby(level="gate", sort=False)}
    else:
        xs = list(epochs) if epochs is not None else None
        series = {g: (xs or list(range(1, len(v) + 1)), list(v)) for g, v in record.items()}
    fig = go.Figure()
    all_x: list[int] = []
    for k, (name, (xs, ys)) in enumerate(series.items()):
        all_x += xs
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name=str(name),
                                 line={"color": _COLOURS[k % len(_COLOURS)]}))
    if max_entropy is not None and all_x:
        fig.add_trace(go.Scatter(x=[min(all_x), max(all_x)], y=[max_entropy, max_entropy],
                                 mode="lines", name="uniform routing",
                                 line={"dash": "dash", "color": "gray"}))
    fig.update_layout(title=title, xaxis_title="epoch", yaxis_title="entropy (nats)", height=320,
                      margin=dict(l=40, r=10, t=50, b=40))
    return fig


def token_share(share: pd.DataFrame, value: str = "selected_share",
                title: str = "MLP vs KAN expert share per layer") -> go.Figure:
    """Stacked horizontal bars per mixture layer of the share routed to MLP and KAN experts.

    ``share`` is tidy (columns gate, kind, ``value``; ``kind_shares``) or wide (index = layers,
    columns = kinds).
    """
    if {"gate", "kind", value} <= set(share.columns):
        share = share.pivot_table(index="gate", columns="kind", values=value, sort=False)
    fig = go.Figure()
    colours = {"mlp": "#4c78a8", "kan": "#f58518"}
    for k, col in enumerate(share.columns):
        fig.add_trace(go.Bar(y=[str(i) for i in share.index], x=share[col].to_numpy(dtype=float),
                             name=str(col), orientation="h",
                             marker_color=colours.get(str(col), _COLOURS[k % len(_COLOURS)])))
    fig.update_layout(title=title, barmode="stack", xaxis_title="share of routed tokens",
                      xaxis_range=[0, 1], height=max(220, 90 * len(share) + 120),
                      margin=dict(l=40, r=10, t=50, b=40))
    return fig


def winner_map(x: np.ndarray, y: np.ndarray, winners: np.ndarray, x_name: str = "x1",
               y_name: str = "x2", expert_names: Sequence[str] | None = None,
               points: tuple[np.ndarray, np.ndarray] | None = None,
               title: str = "Which expert wins where") -> go.Figure:
    """Heat map of the arg-max expert over a 2-D input grid (winners: (len(y), len(x)))."""
    winners = np.asarray(winners)
    n = int(winners.max()) + 1 if winners.size else 1
    names = _names(n, expert_names)
    scale = []
    for e in range(n):
        c = _COLOURS[e % len(_COLOURS)]
        scale += [[e / n, c], [(e + 1) / n, c]]
    fig = go.Figure(go.Heatmap(
        x=np.asarray(x), y=np.asarray(y), z=winners, zmin=-0.5, zmax=n - 0.5,
        colorscale=scale, name="winner",
        colorbar={"tickvals": list(range(n)), "ticktext": names, "title": "expert"},
        hovertemplate=(f"{x_name}=%{{x:.3g}}<br>{y_name}=%{{y:.3g}}<br>expert %{{z}}"
                       "<extra></extra>")))
    if points is not None:
        fig.add_trace(go.Scattergl(x=points[0], y=points[1], mode="markers", name="data",
                                   marker={"size": 3, "color": "black", "opacity": 0.3}))
    fig.update_layout(title=title, xaxis_title=x_name, yaxis_title=y_name, height=420,
                      margin=dict(l=40, r=10, t=50, b=40))
    return fig
