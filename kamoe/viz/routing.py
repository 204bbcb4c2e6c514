"""Figures of expert routing: gate weights, usage per group, specialisation, training record.

Pure functions from the plain data of ``kamoe.interpret.routing`` (arrays, tidy frames,
``Specialisation``) to figures. A few experts get one panel each (small multiples), many
experts a heat map (``MAX_PANELS``); counts are labelled in the unit they count (samples, time
steps, tokens). Every builder takes ``theme`` ("light" / "dark", see ``kamoe.viz.theme``).
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from kamoe.viz.theme import apply_theme, palette

MAX_PANELS = 4  # up to this many experts: one panel / bar colour each; more: a heat map


def _names(n: int, names: Sequence[str] | None) -> list[str]:
    return list(names) if names is not None and len(names) == n else [f"expert {e}"
                                                                       for e in range(n)]


def _many(n_experts: int, layout: str) -> bool:
    if layout not in ("auto", "panels", "heatmap"):
        raise ValueError(f"layout must be 'auto', 'panels' or 'heatmap', got {layout!r}")
    return layout == "heatmap" or (layout == "auto" and n_experts > MAX_PANELS)


def gate_histograms(weights: np.ndarray, expert_names: Sequence[str] | None = None,
                    bins: int = 20, title: str = "Gate weights per expert",
                    unit: str = "samples", theme: str = "light",
                    layout: str = "auto") -> go.Figure:
    """Where each expert's normalised gate weight lies over the rows (weights: (rows, E)).

    ``unit`` names a row ("samples", "time steps", "tokens"; ``interpret.row_unit``). Up to
    ``MAX_PANELS`` experts: one histogram panel each on a shared [0, 1] axis; more (or
    ``layout="heatmap"``): experts x weight bins coloured by the share of rows.
    """
    p = palette(theme)
    w = np.asarray(weights, dtype=float)
    w = w.reshape(-1, w.shape[-1]) if w.ndim > 1 else w.reshape(-1, 1)
    n, E = w.shape
    names = _names(E, expert_names)
    edges = np.linspace(0.0, 1.0, bins + 1)
    counts = np.stack([np.histogram(w[:, e], bins=edges)[0] for e in range(E)])
    centres = (edges[:-1] + edges[1:]) / 2
    full = {"text": title, "subtitle": {"text": f"{n:,} {unit}"}}
    if _many(E, layout):
        share = counts / max(n, 1)
        fig = go.Figure(go.Heatmap(
            x=centres, y=names, z=share, colorscale=p.colorscale(), zmin=0,
            colorbar={"title": {"text": f"share of {unit}"}},
            customdata=counts,
            hovertemplate=(f"%{{y}}<br>weight %{{x:.2f}}<br>%{{customdata:,}} {unit} "
                           "(%{z:.1%})<extra></extra>")))
        fig.update_layout(title=full, xaxis_title="normalised gate weight",
                          yaxis={"autorange": "reversed"}, height=max(300, 34 * E + 140),
                          margin=dict(l=80, r=10, t=50, b=50))
        return apply_theme(fig, theme)
    fig = make_subplots(rows=E, cols=1, shared_xaxes=True, vertical_spacing=0.2 / max(1, E),
                        subplot_titles=names)
    for e in range(E):
        fig.add_trace(go.Bar(x=centres, y=counts[e], width=1.0 / bins, name=names[e],
                             marker_color=p.series(e), marker_line_width=0, showlegend=False,
                             hovertemplate=(f"{names[e]}<br>weight %{{x:.2f}}: %{{y:,}} {unit}"
                                            "<extra></extra>")), row=e + 1, col=1)
        fig.update_yaxes(title_text=unit, row=e + 1, col=1)
    fig.update_xaxes(range=[0, 1])
    fig.update_xaxes(title_text="normalised gate weight (1/E = an even share)", row=E, col=1)
    for e in range(E):  # the even share 1/E as a reference line in every panel
        fig.add_vline(x=1.0 / E, line={"color": p.muted, "dash": "dot", "width": 1},
                      row=e + 1, col=1)
    fig.update_layout(title=full, height=max(300, 130 * E + 110), bargap=0,
                      margin=dict(l=60, r=10, t=60, b=50))
    return apply_theme(fig, theme)


def _group_labels(usage: pd.DataFrame) -> list[str]:
    """Group names with their sample counts when the tidy frame has them."""
    if "n" in usage.columns:
        n = usage.groupby("group", sort=False, observed=True)["n"].first()
        return [f"{g} (n={int(v)})" for g, v in n.items()]
    return [str(g) for g in pd.unique(usage["group"])]


def _pivot(usage: pd.DataFrame, value: str) -> tuple[pd.DataFrame, list[str]]:
    if {"group", "expert", value} <= set(usage.columns):
        labels = _group_labels(usage)
        wide = usage.pivot_table(index="group", columns="expert", values=value, sort=False,
                                 observed=True)
        return wide, labels
    return usage, [str(g) for g in usage.index]


_VALUE_TITLES = {"mean_weight": "mean normalised gate weight",
                 "win_share": "share of samples it wins",
                 "selected_share": "share of routed token slots"}


def usage_by_group(usage: pd.DataFrame, group_name: str = "group",
                   title: str | None = None, value: str = "mean_weight",
                   expert_names: Sequence[str] | None = None, theme: str = "light",
                   layout: str = "auto") -> go.Figure:
    """Each expert's share per group (regime, class, target range): stacked bars or a heat map.

    ``usage`` is tidy (columns group, expert, ``value``, optional n; ``routing_by_group``) or
    wide (index = groups, one column per expert).
    """
    p = palette(theme)
    wide, labels = _pivot(usage, value)
    E = wide.shape[1]
    names = _names(E, expert_names)
    y_title = _VALUE_TITLES.get(value, value.replace("_", " "))
    if _many(E, layout):
        z = wide.to_numpy(dtype=float)
        fig = go.Figure(go.Heatmap(
            x=names, y=labels, z=z, colorscale=p.colorscale(), zmin=0,
            text=np.round(z, 2), texttemplate="%{text:.2f}",
            colorbar={"title": {"text": y_title}},
            hovertemplate=f"{group_name} %{{y}}<br>%{{x}}: %{{z:.3f}}<extra></extra>"))
        fig.update_layout(title=title or f"Expert usage by {group_name}",
                          yaxis={"autorange": "reversed", "title": group_name},
                          height=max(300, 40 * len(labels) + 150),
                          margin=dict(l=120, r=10, t=50, b=50))
        return apply_theme(fig, theme)
    fig = go.Figure()
    for k, col in enumerate(wide.columns):
        fig.add_trace(go.Bar(x=labels, y=wide[col].to_numpy(dtype=float), name=names[k],
                             marker_color=p.series(k), marker_line_width=0,
                             hovertemplate=f"%{{x}}<br>{names[k]}: %{{y:.3f}}<extra></extra>"))
    fig.update_layout(title=title or f"Expert usage by {group_name}", barmode="stack",
                      xaxis_title=group_name, yaxis_title=y_title, height=360,
                      margin=dict(l=50, r=10, t=50, b=50))
    return apply_theme(fig, theme)


SUBTITLE_CHARS = 90  # a verdict line in the specialisation figure's subtitle


def specialisation_figure(spec: Any, expert_names: Sequence[str] | None = None,
                          theme: str = "light") -> go.Figure:
    """Samples per (group, strongest expert) as a heat map, titled with the NMI and verdict.

    ``spec`` is a ``Specialisation`` (``table``: groups x experts counts, ``nmi``, ``verdict``,
    ``group_name``).
    """
    p = palette(theme)
    table = spec.table
    counts = table.to_numpy(dtype=float)
    share = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    names = _names(counts.shape[1], expert_names)
    groups = [f"{g} (n={int(n)})" for g, n in zip(table.index, counts.sum(1), strict=True)]
    fig = go.Figure(go.Heatmap(
        x=names, y=groups, z=share, zmin=0, zmax=1, colorscale=p.colorscale(),
        customdata=counts, text=counts.astype(int), texttemplate="%{text}",
        colorbar={"title": {"text": f"share of the {spec.group_name}"}},
        hovertemplate=(f"{spec.group_name} %{{y}}<br>strongest: %{{x}}<br>%{{customdata:.0f}} "
                       "samples (%{z:.0%})<extra></extra>")))
    # Plotly does not wrap a subtitle: break the verdict into lines that fit a page column.
    verdict = textwrap.wrap(spec.verdict, SUBTITLE_CHARS)
    top = 70 + 18 * len(verdict)
    fig.update_layout(
        title={"text": f"Which expert is strongest, per {spec.group_name}: NMI {spec.nmi:.2f}",
               "subtitle": {"text": "<br>".join(verdict)}},
        xaxis_title="strongest expert", yaxis={"autorange": "reversed",
                                               "title": spec.group_name},
        height=max(300, 48 * len(groups) + 80 + top), margin=dict(l=140, r=10, t=top, b=50))
    return apply_theme(fig, theme)


def usage_over_epochs(record: pd.DataFrame, group_name: str = "group",
                      value: str = "mean_weight", expert_names: Sequence[str] | None = None,
                      gate: str | None = None, theme: str = "light") -> go.Figure:
    """Expert usage per group as training went on: one plotly frame per epoch, with a slider.

    ``record`` is ``RoutingRecorder.by_group(groups)`` (columns epoch, gate, group, expert,
    ``value``); without a group column (``RoutingRecorder.frame()``) the bars are the experts.
    """
    p = palette(theme)
    gates = list(pd.unique(record["gate"]))
    if not gates:
        raise ValueError("the routing record is empty: nothing was recorded during training")
    gate = gate or gates[0]
    rec = record[record["gate"] == gate]
    epochs = sorted(pd.unique(rec["epoch"]).tolist())
    E = int(rec["expert"].max()) + 1
    names = _names(E, expert_names)
    grouped = "group" in rec.columns

    def traces(epoch: int) -> list[go.Bar]:
        at = rec[rec["epoch"] == epoch]
        if not grouped:
            return [go.Bar(x=names, y=at.sort_values("expert")[value].to_numpy(dtype=float),
                           marker_color=[p.series(e) for e in range(E)], showlegend=False)]
        wide, labels = _pivot(at, value)
        return [go.Bar(x=labels, y=wide[c].to_numpy(dtype=float), name=names[k],
                       marker_color=p.series(k), marker_line_width=0)
                for k, c in enumerate(wide.columns)]

    y_title = _VALUE_TITLES.get(value, value.replace("_", " "))
    fig = go.Figure(data=traces(epochs[-1]),
                    frames=[go.Frame(data=traces(ep), name=str(ep)) for ep in epochs])
    steps = [{"method": "animate", "label": str(ep),
              "args": [[str(ep)], {"mode": "immediate", "frame": {"duration": 0,
                                                                 "redraw": True},
                                   "transition": {"duration": 0}}]} for ep in epochs]
    fig.update_layout(
        title=f"Expert usage {'by ' + group_name + ' ' if grouped else ''}over training",
        barmode="stack", yaxis={"title": y_title, "range": [0, 1.02]},
        xaxis_title=group_name if grouped else "expert", height=430,
        margin=dict(l=50, r=10, t=50, b=40),
        sliders=[{"active": len(epochs) - 1, "steps": steps, "x": 0.1, "len": 0.9,
                  "pad": {"t": 50}, "currentvalue": {"prefix": "epoch "}}],
        updatemenus=[{"type": "buttons", "showactive": False, "x": 0.0, "y": 0, "xanchor": "left",
                      "yanchor": "top", "pad": {"t": 60},
                      "buttons": [{"label": "\u25b6 play", "method": "animate",
                                   "args": [None, {"frame": {"duration": 300, "redraw": True},
                                                   "fromcurrent": False,
                                                   "transition": {"duration": 0}}]}]}])
    return apply_theme(fig, theme)


def class_thumbnails(images: np.ndarray, class_names: Sequence[str],
                     shares: np.ndarray | pd.DataFrame,
                     expert_names: Sequence[str] | None = None,
                     title: str = "Expert shares per class", theme: str = "light",
                     value: str = "mean_weight") -> go.Figure:
    """One row per class: its mean image beside a bar of each expert's share.

    ``images`` (C, H, W) raw pixel values (``interpret.class_thumbnails``); ``shares`` (C, E)
    e.g. the mean gate weight or selected share of each expert within the class, or the tidy
    frame of ``interpret.routing_by_group`` (its ``value`` column, rows in class order).
    """
    p = palette(theme)
    if isinstance(shares, pd.DataFrame):
        shares = _pivot(shares, value)[0].reindex(list(class_names))
    images, shares = np.asarray(images, dtype=float), np.asarray(shares, dtype=float)
    C, E = shares.shape
    names = _names(E, expert_names)
    fig = make_subplots(rows=C, cols=2, column_widths=[0.12, 0.88], horizontal_spacing=0.03,
                        vertical_spacing=0.25 / max(1, C))
    ink = "Greys" if theme == "light" else "gray"  # dark strokes on light, light on dark
    for c in range(C):
        fig.add_trace(go.Heatmap(z=images[c], colorscale=ink, showscale=False,
                                 hovertemplate=f"class {class_names[c]}<extra></extra>"),
                      row=c + 1, col=1)
        fig.update_yaxes(autorange="reversed", visible=False, scaleanchor=f"x{2 * c + 1}",
                         row=c + 1, col=1)
        fig.update_xaxes(visible=False, row=c + 1, col=1)
        left = 0.0
        for e in range(E):
            fig.add_trace(go.Bar(x=[shares[c, e]], y=[str(class_names[c])], base=left,
                                 orientation="h", marker_color=p.series(e), name=names[e],
                                 marker_line_width=0, legendgroup=names[e], showlegend=c == 0,
                                 hovertemplate=(f"class {class_names[c]}<br>{names[e]}: "
                                                "%{x:.2f}<extra></extra>")),
                          row=c + 1, col=2)
            left += float(shares[c, e])
        fig.update_xaxes(range=[0, max(1.0, float(shares.sum(1).max()))], row=c + 1, col=2,
                         showticklabels=c == C - 1)
    fig.update_layout(title=title, barmode="overlay", height=max(320, 46 * C + 120),
                      margin=dict(l=40, r=10, t=60, b=40))
    return apply_theme(fig, theme)


def entropy_over_epochs(record: pd.DataFrame | Mapping[str, Sequence[float]],
                        epochs: Sequence[int] | None = None, max_entropy: float | None = None,
                        title: str = "Routing entropy over training",
                        gate_names: Mapping[str, str] | None = None,
                        theme: str = "light") -> go.Figure:
    """Mean routing entropy per epoch, one line per gate.

    ``record`` is a tidy frame with columns epoch, gate, entropy (``RoutingRecorder.frame()``)
    or a mapping gate -> values (then ``epochs`` gives the x axis). ``gate_names`` relabels the
    gates (``interpret.gate_names``).
    """
    p = palette(theme)
    labels = dict(gate_names or {})
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
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name=labels.get(name, str(name)),
                                 line={"color": p.series(k), "width": 2.5}))
    if max_entropy is not None and all_x:
        fig.add_trace(go.Scatter(x=[min(all_x), max(all_x)], y=[max_entropy, max_entropy],
                                 mode="lines", name="uniform routing",
                                 line={"dash": "dash", "color": p.muted}))
    fig.update_layout(title=title, xaxis_title="epoch", yaxis_title="entropy (nats)", height=320,
                      margin=dict(l=50, r=10, t=50, b=40))
    return apply_theme(fig, theme)


def token_share(share: pd.DataFrame, value: str = "selected_share",
                title: str = "MLP vs KAN expert share per layer",
                gate_names: Mapping[str, str] | None = None,
                theme: str = "light") -> go.Figure:
    """Stacked horizontal bars per mixture layer of the share routed to MLP and KAN experts.

    ``share`` is tidy (columns gate, kind, ``value``; ``kind_shares``) or wide (index = layers,
    columns = kinds).
    """
    p = palette(theme)
    labels = dict(gate_names or {})
    if {"gate", "kind", value} <= set(share.columns):
        share = share.pivot_table(index="gate", columns="kind", values=value, sort=False)
    fig = go.Figure()
    colours = {"mlp": p.series(0), "kan": p.series(1)}
    for k, col in enumerate(share.columns):
        fig.add_trace(go.Bar(y=[labels.get(i, str(i)) for i in share.index],
                             x=share[col].to_numpy(dtype=float), name=str(col).upper(),
                             orientation="h", marker_line_width=0,
                             marker_color=colours.get(str(col), p.series(k))))
    fig.update_layout(title=title, barmode="stack", xaxis_title="share of routed tokens",
                      xaxis_range=[0, 1], height=max(220, 90 * len(share) + 120),
                      margin=dict(l=40, r=10, t=50, b=40))
    return apply_theme(fig, theme)


def winner_map(x: np.ndarray, y: np.ndarray, winners: np.ndarray, x_name: str = "x1",
               y_name: str = "x2", expert_names: Sequence[str] | None = None,
               points: tuple[np.ndarray, np.ndarray] | None = None,
               title: str = "Which expert wins where", theme: str = "light") -> go.Figure:
    """Heat map of the arg-max expert over a 2-D input grid (winners: (len(y), len(x)))."""
    p = palette(theme)
    winners = np.asarray(winners)
    n = int(winners.max()) + 1 if winners.size else 1
    names = _names(n, expert_names)
    scale = []
    for e in range(n):
        c = p.series(e)
        scale += [[e / n, c], [(e + 1) / n, c]]
    fig = go.Figure(go.Heatmap(
        x=np.asarray(x), y=np.asarray(y), z=winners, zmin=-0.5, zmax=n - 0.5,
        colorscale=scale, name="winner",
        colorbar={"tickvals": list(range(n)), "ticktext": names, "title": {"text": "expert"}},
        hovertemplate=(f"{x_name}=%{{x:.3g}}<br>{y_name}=%{{y:.3g}}<br>expert %{{z}}"
                       "<extra></extra>")))
    if points is not None:
        fig.add_trace(go.Scattergl(x=points[0], y=points[1], mode="markers", name="data",
                                   marker={"size": 3, "color": p.text, "opacity": 0.35}))
    fig.update_layout(title=title, xaxis_title=x_name, yaxis_title=y_name, height=420,
                      margin=dict(l=40, r=10, t=50, b=40))
    return apply_theme(fig, theme)
