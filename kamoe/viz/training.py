"""Figures of training and evaluation: loss curves, predicted vs true, model comparisons
(``theme`` as in ``kamoe.viz.theme``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from kamoe.viz.theme import apply_theme, palette

_MAX_POINTS = 3000


def loss_curves(epochs: list[int], train_loss: list[float], val_loss: list[float],
                title: str = "Loss per epoch", theme: str = "light") -> go.Figure:
    """Train and validation loss per epoch, on a log axis when every loss is positive (a
    likelihood mixture's loss, a negative log-likelihood, can fall below 0: a linear axis)."""
    p = palette(theme)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=list(epochs), y=list(train_loss), mode="lines", name="train",
                             line={"color": p.series(0), "width": 2}))
    fig.add_trace(go.Scatter(x=list(epochs), y=list(val_loss), mode="lines", name="validation",
                             line={"color": p.series(1), "width": 2}))
    finite = [v for v in [*train_loss, *val_loss] if v is not None and np.isfinite(v)]
    log = bool(finite) and min(finite) > 0
    fig.update_layout(title=title, xaxis_title="epoch", yaxis_title="loss",
                      yaxis_type="log" if log else "linear", height=320,
                      margin=dict(l=40, r=10, t=50, b=40), legend=dict(orientation="h", y=1.1))
    return apply_theme(fig, theme)


def pred_vs_true(y_true: np.ndarray, predictions: dict[str, np.ndarray],
                 title: str = "Predicted vs true (test set)", theme: str = "light") -> go.Figure:
    """One scatter per predictor (network, formula...) against the truth, plus the y = x line."""
    p = palette(theme)
    y_true = np.asarray(y_true, dtype=float).ravel()
    idx = np.unique(np.linspace(0, len(y_true) - 1, min(len(y_true), _MAX_POINTS)).astype(int)) \
        if len(y_true) else np.arange(0)
    fig = go.Figure()
    for k, (name, pred) in enumerate(predictions.items()):
        pred = np.asarray(pred, dtype=float).ravel()
        fig.add_trace(go.Scattergl(x=y_true[idx], y=pred[idx], mode="markers", name=name,
                                   marker={"size": 4, "opacity": 0.6, "color": p.series(k)}))
    if len(y_true):
        lo, hi = float(np.nanmin(y_true)), float(np.nanmax(y_true))
        fig.add_trace(go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", name="y = x",
                                 line={"dash": "dash", "color": p.muted}))
    fig.update_layout(title=title, xaxis_title="true", yaxis_title="predicted", height=380,
                      margin=dict(l=40, r=10, t=50, b=40))
    return apply_theme(fig, theme)


def compare_bars(results: pd.DataFrame, metric: str, reference: pd.DataFrame | None = None,
                 title: str | None = None, theme: str = "light") -> go.Figure:
    """Bars of a metric per model (``results`` has columns model, metric), with references."""
    p = palette(theme)
    fig = go.Figure()
    # Value labels sit outside the bars, in the text colour, so they read in both themes.
    if len(results) and metric in results:
        fig.add_trace(go.Bar(x=results["model"].astype(str), y=results[metric], name="this run",
                             marker_color=p.series(0), marker_line_width=0,
                             text=[f"{v:.3f}" for v in results[metric]], textposition="outside",
                             textfont={"color": p.text}))
    if reference is not None and len(reference) and metric in reference:
        fig.add_trace(go.Bar(x=reference["model"].astype(str), y=reference[metric],
                             name="published (KAMoE notebook)", marker_color=p.series(1),
                             marker_line_width=0,
                             text=[f"{v:.3f}" for v in reference[metric]], textposition="outside",
                             textfont={"color": p.text}))
    fig.update_layout(title=title or f"Test {metric} per model", barmode="group",
                      yaxis_title=metric, height=360, margin=dict(l=40, r=10, t=50, b=40))
    return apply_theme(fig, theme)
