"""Plotly figure builders: pure functions from plain data (numpy, pandas, dataclasses) to figures.

No streamlit, no training code. Every builder returns a ``plotly.graph_objects.Figure`` whose
title says what it shows, so the figures can be tested without a browser. Every builder takes
``theme="light" | "dark"`` (``kamoe.viz.theme``).
"""

from kamoe.viz.data import feature_histograms, target_scatter
from kamoe.viz.formula import derivation_figure
from kamoe.viz.routing import (
    class_thumbnails,
    entropy_over_epochs,
    gate_histograms,
    specialisation_figure,
    token_share,
    usage_by_group,
    usage_over_epochs,
    winner_map,
)
from kamoe.viz.splines import edge_detail, layer_grid, network_figure
from kamoe.viz.theme import THEMES, apply_theme, contrast, palette
from kamoe.viz.training import compare_bars, loss_curves, pred_vs_true

__all__ = [
    "THEMES", "apply_theme", "class_thumbnails", "compare_bars", "contrast", "derivation_figure",
    "edge_detail",
    "entropy_over_epochs", "feature_histograms", "gate_histograms", "layer_grid", "loss_curves",
    "network_figure", "palette", "pred_vs_true", "specialisation_figure", "target_scatter",
    "token_share", "usage_by_group", "usage_over_epochs", "winner_map",
]
