"""Plotly figure builders: pure functions from plain data (numpy, pandas, dataclasses) to figures.

No streamlit, no training code. Every builder returns a ``plotly.graph_objects.Figure`` whose
title says what it shows, so the figures can be tested without a browser.
"""

from kamoe.viz.data import feature_histograms, target_scatter
from kamoe.viz.routing import (
    entropy_over_epochs,
    gate_histograms,
    token_share,
    usage_by_group,
    winner_map,
)
from kamoe.viz.splines import edge_detail, layer_grid, network_figure
from kamoe.viz.training import compare_bars, loss_curves, pred_vs_true

__all__ = [
    "compare_bars", "edge_detail", "entropy_over_epochs", "feature_histograms", "gate_histograms",
    "layer_grid", "loss_curves", "network_figure", "pred_vs_true", "target_scatter",
    "token_share", "usage_by_group", "winner_map",
]
