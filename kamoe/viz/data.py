"""Figures of a dataset: per-column histograms and target-vs-feature scatter (``theme`` as in
``kamoe.viz.theme``)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from kamoe.viz.theme import apply_theme, palette

_MAX_POINTS = 3000  # subsample scatters so the browser stays responsive


def feature_histograms(frame: pd.DataFrame, columns: list[str] | None = None, bins: int = 30,
                       max_cols: int = 4, theme: str = "light") -> go.Figure:
    """One histogram per column (numeric columns only), in a grid of subplots."""
    p = palette(theme)
    cols = [c for c in (columns or list(frame.columns))
            if pd.api.types.is_numeric_dtype(frame[c])][:24]
    if not cols:
        fig = go.Figure()
        fig.update_layout(title="Distributions (no numeric column)")
        return apply_theme(fig, theme)
    n_cols = min(max_cols, len(cols))
    n_rows = math.ceil(len(cols) / n_cols)
    fig = make_subplots(rows=n_rows, cols=n_cols, subplot_titles=[str(c) for c in cols],
                        vertical_spacing=min(0.12, 0.5 / n_rows))
    for k, c in enumerate(cols):
        fig.add_trace(go.Histogram(x=frame[c].to_numpy(), nbinsx=bins, name=str(c),
                                   marker_color=p.series(0), marker_line_width=0,
                                   showlegend=False),
                      row=k // n_cols + 1, col=k % n_cols + 1)
    fig.update_layout(title="Distributions", height=max(260, 200 * n_rows),
                      margin=dict(l=30, r=10, t=60, b=30), bargap=0.05)
    return apply_theme(fig, theme)


def target_scatter(x: np.ndarray, y: np.ndarray, x_name: str, y_name: str,
                   color: np.ndarray | None = None, color_name: str = "",
                   theme: str = "light") -> go.Figure:
    """Target against one feature (evenly subsampled to a few thousand points)."""
    p = palette(theme)
    x, y = np.asarray(x).ravel(), np.asarray(y).ravel()
    idx = np.unique(np.linspace(0, len(x) - 1, min(len(x), _MAX_POINTS)).astype(int)) \
        if len(x) else np.arange(0)
    marker: dict = {"size": 4, "opacity": 0.6, "color": p.series(0)}
    if color is not None:
        marker.update(color=np.asarray(color).ravel()[idx], colorscale=p.colorscale(p.points),
                      showscale=True,
                      colorbar={"title": {"text": color_name, "font": {"color": p.text}},
                                "tickfont": {"color": p.text}})
    fig = go.Figure(go.Scattergl(x=x[idx], y=y[idx], mode="markers", marker=marker,
                                 name=f"{y_name} vs {x_name}"))
    fig.update_layout(title=f"{y_name} against {x_name}", xaxis_title=x_name, yaxis_title=y_name,
                      height=380, margin=dict(l=40, r=10, t=50, b=40))
    return apply_theme(fig, theme)
