"""Figures of KAN edges: the pykan-style network drawing, a layer's grid of curves, one edge.

Inputs are the plain dataclasses of ``kamoe.interpret.edges`` (``NetworkGraph``,
``LayerCurves``, ``EdgeCurve``), read by attribute only. Opacity follows pykan:
``alpha = tanh(beta * importance)``, with a small floor so a dead edge stays visible as a ghost.
Edges that read a dataset input are drawn against its raw values when the curves carry them
(``raw_x``), with the model-space coordinate on the top axis and in the hover. Every builder
takes ``theme`` ("light" / "dark", see ``kamoe.viz.theme``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from kamoe.viz.theme import apply_theme, palette, rgba

_MIN_ALPHA = 0.12

EdgeKey = tuple[int, int, int]  # (layer, out, in), as kamoe.symbolic's EdgeKey


def _alpha(importance: float, beta: float = 3.0) -> float:
    return float(max(_MIN_ALPHA, np.tanh(beta * max(0.0, float(importance)))))


def network_figure(graph: Any, title: str = "KAN network (opacity = edge importance)",
                   height: int | None = None, theme: str = "light",
                   edge_functions: Mapping[EdgeKey, str] | None = None,
                   show_cut: bool = False) -> go.Figure:
    """Nodes and edges of a KAN stack, each edge with a small inset of its own curve.

    ``graph`` has ``widths``, ``nodes`` (x, y, label, importance), ``edges`` (x0, y0, x1, y1,
    importance, alpha, layer, i, j; optional label, cut) and ``curve_x``/``curve_y`` (one row
    per edge, in [0, 1]). ``edge_functions`` maps (layer, out, in) to the library function an
    edge was snapped to ("sin", "x^2"): those edges are drawn in the fitted colour with the
    name beside their inset; the others are numeric (splines). Cut edges (pruned to zero) are
    left out unless ``show_cut``.
    """
    p = palette(theme)
    snapped = dict(edge_functions or {})
    fig = go.Figure()
    edges, nodes = graph.edges, graph.nodes
    n_levels = max(1, len(graph.widths) - 1)
    box_h = 0.32 / n_levels
    # pykan's layout: between two levels, one small box per edge, in a row ordered by
    # (input, output); the edge runs from its input node to its box and on to its output node.
    per_layer = edges.groupby("layer").size().to_dict() if len(edges) else {}
    order = edges.sort_values(["layer", "i", "j"]).groupby("layer").cumcount() \
        if len(edges) else edges.index
    annotations = []
    for r, e in enumerate(edges.itertuples(index=False)):
        if bool(getattr(e, "cut", False)) and not show_cut:
            continue
        key = (int(e.layer), int(e.j), int(e.i))
        fn = snapped.get(key)
        a = max(_MIN_ALPHA, float(getattr(e, "alpha", _alpha(e.importance))))
        n_row = per_layer[e.layer]
        box_w = min(0.85 / n_row, 0.12)
        bx = (int(order.iloc[r]) + 0.5) / n_row
        ym = (e.y0 + e.y1) / 2
        name = getattr(e, "label", f"layer {e.layer}: {e.i} \u2192 {e.j}")
        hover = [f"<b>{name}</b>", f"importance {e.importance:.3f}"]
        lo, hi = getattr(e, "raw_min", np.nan), getattr(e, "raw_max", np.nan)
        if np.isfinite(lo) and np.isfinite(hi):
            hover.append(f"input range {lo:.3g} to {hi:.3g}")
        hover.append(f"snapped to {fn}" if fn else "numeric (spline)")
        fig.add_trace(go.Scatter(
            x=[e.x0, bx, None, bx, e.x1], y=[e.y0, ym - box_h / 2, None, ym + box_h / 2, e.y1],
            mode="lines", hoverinfo="skip", showlegend=False,
            line={"color": rgba(p.edge_rgb, a), "width": 0.5 + 1.5 * a}))
        cx = bx - box_w / 2 + box_w * np.asarray(graph.curve_x[r])
        cy = ym - box_h / 2 + box_h * np.asarray(graph.curve_y[r])
        colour = p.fitted if fn else rgba(p.curve_rgb, a)
        fig.add_trace(go.Scatter(
            x=cx, y=cy, mode="lines", showlegend=False, text="<br>".join(hover),
            hoverinfo="text", name=f"edge {e.layer}.{e.i}.{e.j}",
            line={"color": colour, "width": 2.5 if fn else 2}))
        if fn:
            annotations.append({"x": bx, "y": ym - box_h / 2, "text": fn, "showarrow": False,
                                "xanchor": "center", "yanchor": "top",
                                "font": {"color": p.fitted, "size": 12}})
    top = max(float(nodes["y"].max()), 1e-9) if len(nodes) else 1.0
    fig.add_trace(go.Scatter(
        x=nodes["x"], y=nodes["y"], mode="markers+text", name="nodes", showlegend=False,
        text=[str(s) for s in nodes["label"]], textposition=[
            "bottom center" if y <= 0 else "top center" if y >= top else "middle right"
            for y in nodes["y"]],
        textfont={"color": p.text, "size": 13},
        hovertext=[f"{lab}: importance {imp:.3f}" for lab, imp in
                   zip(nodes["label"], nodes["importance"], strict=False)],
        hoverinfo="text",
        marker={"size": 14, "color": p.node_fill, "line": {"color": p.text, "width": 2}}))
    fig.update_layout(
        title=title, showlegend=False, annotations=annotations,
        height=height or max(320, 170 * (len(graph.widths))),
        xaxis={"visible": False, "range": [-0.03, 1.08]},
        yaxis={"visible": False, "range": [-0.12, 1.12]},
        margin=dict(l=10, r=10, t=50, b=10))
    return apply_theme(fig, theme)


def _abscissa(curves: Any, i: int) -> np.ndarray:
    raw = getattr(curves, "raw_x", None)
    return np.asarray(raw[i] if raw is not None else curves.x[i])


def layer_grid(curves: Any, max_out: int = 8, max_in: int = 8,
               title: str | None = None, theme: str = "light") -> go.Figure:
    """Every edge curve of one layer: rows = outputs j, columns = inputs i (opacity by importance).

    ``curves`` has ``x`` (in, P), ``y`` (out, in, P), ``importance`` (out, in), ``in_names``,
    ``out_names`` and ``path`` (and ``raw_x`` for a first layer in raw units). Large layers
    show the first ``max_out`` x ``max_in`` edges.
    """
    p = palette(theme)
    n_out = min(curves.out_features, max_out)
    n_in = min(curves.in_features, max_in)
    titles = [f"{curves.in_names[i]} \u2192 {curves.out_names[j]}  "
              f"({curves.importance[j, i]:.2f})"
              for j in range(n_out) for i in range(n_in)]
    fig = make_subplots(rows=n_out, cols=n_in, subplot_titles=titles,
                        horizontal_spacing=min(0.06, 0.3 / max(1, n_in)),
                        vertical_spacing=min(0.12, 0.5 / max(1, n_out)))
    raw = getattr(curves, "raw_x", None) is not None
    for j in range(n_out):
        for i in range(n_in):
            a = _alpha(curves.importance[j, i])
            fig.add_trace(go.Scatter(x=_abscissa(curves, i), y=curves.y[j, i], mode="lines",
                                     showlegend=False, name=titles[j * n_in + i],
                                     line={"color": rgba(p.curve_rgb, a), "width": 2}),
                          row=j + 1, col=i + 1)
    for i in range(n_in):
        x = _abscissa(curves, i)
        fig.update_xaxes(range=[float(x[0]), float(x[-1])], col=i + 1)
        fig.update_xaxes(title_text=curves.in_names[i] if raw else f"{curves.in_names[i]} "
                         "(model coordinate)", row=n_out, col=i + 1)
    shown = "" if (n_out, n_in) == (curves.out_features, curves.in_features) else \
        f" (first {n_out}x{n_in} of {curves.out_features}x{curves.in_features})"
    units = ", inputs in raw units" if raw else ""
    fig.update_layout(title=title or f"Edge curves of layer {curves.path}{shown}{units} "
                                     "(importance in brackets)",
                      height=max(280, 170 * n_out + 100), margin=dict(l=40, r=10, t=80, b=50))
    return apply_theme(fig, theme)


def _within(x: np.ndarray, y: np.ndarray, lo: float, hi: float) -> tuple[np.ndarray, np.ndarray]:
    tol = 1e-9 * max(1.0, abs(hi - lo))
    keep = (x >= lo - tol) & (x <= hi + tol)
    return x[keep], y[keep]


def edge_detail(edge: Any, title: str | None = None, theme: str = "light",
                fitted: tuple[str, np.ndarray] | None = None) -> go.Figure:
    """One edge: its curve, spline and base parts, control points, fitted function, density.

    The x axis spans the data the edge saw, in the input's raw units when the edge carries them
    (``raw_x``; the model-space coordinate is then the top axis and in the hover). For a
    B-spline edge phi = base + spline, the spline part is drawn dashed with its control points
    on it and the base part w_base * act(x) dotted. ``fitted`` = (label, values on ``edge.x``)
    overlays a library function fitted to the edge (e.g. a symbolic candidate evaluated there).
    """
    p = palette(theme)
    raw = getattr(edge, "raw_x", None) is not None
    xs = np.asarray(edge.raw_x if raw else edge.x, dtype=float)
    u = np.asarray(edge.x, dtype=float)
    lo, hi = float(xs[0]), float(xs[-1])
    in_name = getattr(edge, "in_name", "") or "input"
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.75, 0.25],
                        vertical_spacing=0.06)
    hover = (f"{in_name} = %{{x:.4g}} (model %{{customdata:.3g}})<br>%{{y:.4g}}"
             if raw else f"{in_name} = %{{x:.4g}}<br>%{{y:.4g}}")
    fig.add_trace(go.Scatter(x=xs, y=edge.y, mode="lines", name="edge function \u03c6(x)",
                             customdata=u, hovertemplate=hover + "<extra>\u03c6</extra>",
                             line={"color": p.curve, "width": 3.5}), row=1, col=1)
    base = getattr(edge, "base_y", None)
    if base is not None:
        spline = np.asarray(edge.y) - np.asarray(base)
        fig.add_trace(go.Scatter(x=xs, y=spline, mode="lines",
                                 name="spline part \u03a3 c\u2098B\u2098(x)", customdata=u,
                                 hovertemplate=hover + "<extra>spline part</extra>",
                                 line={"color": p.spline, "width": 2, "dash": "dash"}),
                      row=1, col=1)
        fig.add_trace(go.Scatter(x=xs, y=base, mode="lines", name="base part w\u00b7act(x)",
                                 customdata=u, hovertemplate=hover + "<extra>base part</extra>",
                                 line={"color": p.base, "width": 2, "dash": "dot"}),
                      row=1, col=1)
    if edge.control_x is not None and edge.control_y is not None:
        cx = np.asarray(edge.raw_control_x if raw and getattr(edge, "raw_control_x", None)
                        is not None else edge.control_x, dtype=float)
        cx, cy = _within(cx, np.asarray(edge.control_y, dtype=float), lo, hi)
        label = "control points (c\u2098)" if base is not None else "control points"
        fig.add_trace(go.Scatter(x=cx, y=cy, mode="markers", name=label,
                                 marker={"size": 9, "color": p.spline, "symbol": "diamond"}),
                      row=1, col=1)
    if fitted is not None:
        name, values = fitted
        fig.add_trace(go.Scatter(x=xs, y=np.asarray(values, dtype=float), mode="lines",
                                 name=f"fitted: {name}", customdata=u,
                                 hovertemplate=hover + f"<extra>{name}</extra>",
                                 line={"color": p.fitted, "width": 2.5, "dash": "dashdot"}),
                      row=1, col=1)
    d_edges = np.asarray(edge.raw_density_edges if raw and getattr(
        edge, "raw_density_edges", None) is not None else edge.density_edges, dtype=float)
    centres, widths = (d_edges[:-1] + d_edges[1:]) / 2, np.diff(d_edges)
    fig.add_trace(go.Bar(x=centres, y=edge.density_counts, width=widths,
                         name="training samples per bin", marker_color=p.density,
                         marker_line_width=0, showlegend=False,
                         hovertemplate=f"{in_name} %{{x:.3g}}: %{{y}} samples<extra></extra>"),
                  row=2, col=1)
    fig.update_xaxes(range=[lo, hi])
    own = "normalised coordinate" if edge.coordinate == "normalised" else "model coordinate"
    x_title = f"{in_name} (raw units)" if raw else f"{in_name} ({own})"
    fig.update_xaxes(title_text=x_title, row=2, col=1)
    fig.update_yaxes(title_text="\u03c6(x)", row=1, col=1)
    fig.update_yaxes(title_text="samples", row=2, col=1)
    if raw:  # the model coordinate on top, mapped affinely onto the same pixels
        fig.add_trace(go.Scatter(x=[float(u[0]), float(u[-1])], y=[edge.y[0], edge.y[-1]],
                                 xaxis="x3", yaxis="y", mode="lines", hoverinfo="skip",
                                 showlegend=False, line={"width": 0}, opacity=0))
        fig.update_layout(xaxis3={"overlaying": "x", "side": "top",
                                  "range": [float(u[0]), float(u[-1])], "showgrid": False,
                                  "title": {"text": "model coordinate", "standoff": 2}})
    fig.update_layout(
        title=title or f"Edge {edge.label} (importance {edge.importance:.3f})",
        height=540, margin=dict(l=50, r=10, t=100 if raw else 60, b=110),
        legend=dict(orientation="h", y=-0.17, yanchor="top", x=0))
    return apply_theme(fig, theme)
