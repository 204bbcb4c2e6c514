"""Figures of KAN edges: the pykan-style network drawing, a layer's grid of curves, one edge.

Inputs are the plain dataclasses of ``kamoe.interpret.edges`` (``NetworkGraph``,
``LayerCurves``, ``EdgeCurve``), read by attribute only. Opacity follows pykan:
``alpha = tanh(beta * importance)``, with a small floor so a dead edge stays visible as a ghost.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

_MIN_ALPHA = 0.08
_EDGE_COLOUR = "0,0,0"
_CURVE_COLOUR = "31,119,180"


def _alpha(importance: float, beta: float = 3.0) -> float:
    return float(max(_MIN_ALPHA, np.tanh(beta * max(0.0, float(importance)))))


def _rgba(rgb: str, alpha: float) -> str:
    return f"rgba({rgb},{alpha:.3f})"


def network_figure(graph: Any, title: str = "KAN network (opacity = edge importance)",
                   height: int | None = None) -> go.Figure:
    """Nodes and edges of a KAN stack, each edge with a small inset of its own curve.

    ``graph`` has ``widths``, ``nodes`` (x, y, label, importance), ``edges`` (x0, y0, x1, y1,
    importance, alpha, layer, i, j) and ``curve_x``/``curve_y`` (one row per edge, in [0, 1]).
    """
    fig = go.Figure()
    edges, nodes = graph.edges, graph.nodes
    n_levels = max(1, len(graph.widths) - 1)
    box_h = 0.32 / n_levels
    # pykan's layout: between two levels, one small box per edge, in a row ordered by
    # (input, output); the edge runs from its input node to its box and on to its output node.
    per_layer = edges.groupby("layer").size().to_dict() if len(edges) else {}
    order = edges.sort_values(["layer", "i", "j"]).groupby("layer").cumcount() \
        if len(edges) else edges.index
    for r, e in enumerate(edges.itertuples(index=False)):
        a = max(_MIN_ALPHA, float(getattr(e, "alpha", _alpha(e.importance))))
        n_row = per_layer[e.layer]
        box_w = min(0.85 / n_row, 0.12)
        bx = (int(order.iloc[r]) + 0.5) / n_row
        ym = (e.y0 + e.y1) / 2
        label = f"layer {e.layer}: {e.i} \u2192 {e.j}<br>importance {e.importance:.3f}"
        fig.add_trace(go.Scatter(
            x=[e.x0, bx, None, bx, e.x1], y=[e.y0, ym - box_h / 2, None, ym + box_h / 2, e.y1],
            mode="lines", hoverinfo="skip", showlegend=False,
            line={"color": _rgba(_EDGE_COLOUR, a), "width": 0.5 + 1.5 * a}))
        cx = bx - box_w / 2 + box_w * np.asarray(graph.curve_x[r])
        cy = ym - box_h / 2 + box_h * np.asarray(graph.curve_y[r])
        fig.add_trace(go.Scatter(
            x=cx, y=cy, mode="lines", showlegend=False, text=label, hoverinfo="text",
            name=f"edge {e.layer}.{e.i}.{e.j}",
            line={"color": _rgba(_CURVE_COLOUR, a), "width": 2}))
    fig.add_trace(go.Scatter(
        x=nodes["x"], y=nodes["y"], mode="markers+text", name="nodes", showlegend=False,
        text=[str(s) for s in nodes["label"]], textposition=[
            "bottom center" if y <= 0 else "top center" if y >= 1 else "middle right"
            for y in nodes["y"]],
        hovertext=[f"{lab}: importance {imp:.3f}" for lab, imp in
                   zip(nodes["label"], nodes["importance"], strict=False)],
        hoverinfo="text",
        marker={"size": 14, "color": "white", "line": {"color": "black", "width": 2}}))
    fig.update_layout(
        title=title, showlegend=False, plot_bgcolor="white",
        height=height or max(320, 170 * (len(graph.widths))),
        xaxis={"visible": False, "range": [-0.03, 1.03]},
        yaxis={"visible": False, "range": [-0.12, 1.12]},
        margin=dict(l=10, r=10, t=50, b=10))
    return fig


def layer_grid(curves: Any, max_out: int = 8, max_in: int = 8,
               title: str | None = None) -> go.Figure:
    """Every edge curve of one layer: rows = outputs j, columns = inputs i (opacity by importance).

    ``curves`` has ``x`` (in, P), ``y`` (out, in, P), ``importance`` (out, in), ``in_names``,
    ``out_names`` and ``path``. Large layers show the first ``max_out`` x ``max_in`` edges.
    """
    n_out = min(curves.out_features, max_out)
    n_in = min(curves.in_features, max_in)
    titles = [f"{curves.in_names[i]}\u2192{curves.out_names[j]} ({curves.importance[j, i]:.2f})"
              for j in range(n_out) for i in range(n_in)]
    fig = make_subplots(rows=n_out, cols=n_in, subplot_titles=titles,
                        horizontal_spacing=min(0.06, 0.3 / max(1, n_in)),
                        vertical_spacing=min(0.08, 0.4 / max(1, n_out)))
    for j in range(n_out):
        for i in range(n_in):
            a = _alpha(curves.importance[j, i])
            fig.add_trace(go.Scatter(x=curves.x[i], y=curves.y[j, i], mode="lines",
                                     showlegend=False, name=titles[j * n_in + i],
                                     line={"color": _rgba(_CURVE_COLOUR, a), "width": 2}),
                          row=j + 1, col=i + 1)
    fig.update_annotations(font_size=10)
    shown = "" if (n_out, n_in) == (curves.out_features, curves.in_features) else \
        f" (first {n_out}x{n_in} of {curves.out_features}x{curves.in_features})"
    fig.update_layout(title=title or f"Edge curves of layer {curves.path}{shown}",
                      height=max(260, 150 * n_out + 80), margin=dict(l=30, r=10, t=70, b=30))
    return fig


def edge_detail(edge: Any, title: str | None = None) -> go.Figure:
    """One edge: its curve, the samples it saw, its control points, and the data density."""
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.75, 0.25],
                        vertical_spacing=0.04)
    fig.add_trace(go.Scatter(x=edge.x, y=edge.y, mode="lines", name="edge function \u03c6(x)",
                             line={"color": _rgba(_CURVE_COLOUR, 1.0), "width": 3}), row=1, col=1)
    if len(edge.samples):
        idx = np.unique(np.linspace(0, len(edge.samples) - 1,
                                    min(len(edge.samples), 1500)).astype(int))
        fig.add_trace(go.Scattergl(x=np.asarray(edge.samples)[idx],
                                   y=np.asarray(edge.sample_y)[idx], mode="markers",
                                   name="training samples", marker={"size": 3, "opacity": 0.35,
                                                                    "color": "#888"}),
                      row=1, col=1)
    if edge.control_x is not None and edge.control_y is not None:
        fig.add_trace(go.Scatter(x=edge.control_x, y=edge.control_y, mode="markers+lines",
                                 name="control points",
                                 line={"dash": "dot", "color": "#e45756", "width": 1},
                                 marker={"size": 7, "color": "#e45756", "symbol": "diamond"}),
                      row=1, col=1)
    centres = (np.asarray(edge.density_edges[:-1]) + np.asarray(edge.density_edges[1:])) / 2
    widths = np.diff(np.asarray(edge.density_edges))
    fig.add_trace(go.Bar(x=centres, y=edge.density_counts, width=widths, name="data density",
                         marker_color="#72b7b2"), row=2, col=1)
    lo, hi = float(np.min(edge.x)), float(np.max(edge.x))
    pad = 0.05 * (hi - lo or 1.0)
    fig.update_xaxes(range=[lo - pad, hi + pad])
    fig.update_xaxes(title_text=f"input ({edge.coordinate} coordinate)", row=2, col=1)
    fig.update_yaxes(title_text="\u03c6(x)", row=1, col=1)
    fig.update_yaxes(title_text="count", row=2, col=1)
    fig.update_layout(title=title or f"Edge {edge.label} (importance {edge.importance:.3f})",
                      height=460, margin=dict(l=40, r=10, t=50, b=40),
                      legend=dict(orientation="h", y=1.08))
    return fig
