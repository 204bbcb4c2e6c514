"""Interpretation of trained models: edge curves and importances, routing statistics, pruning.

Reads a model and inputs in model space; returns numpy arrays, pandas frames and dataclasses.
"""

from kamoe.interpret.edges import (
    EdgeCurve,
    LayerCurves,
    NetworkGraph,
    attribution,
    edge_curves,
    importance_frame,
    kan_chain,
    layer_inputs,
    network_graph,
)
from kamoe.interpret.prune import PruneReport, prune, remove_nodes, zero_edges
from kamoe.interpret.routing import (
    GateWeights,
    RouterStats,
    RoutingRecorder,
    WinnerMap,
    class_groups,
    dataset_groups,
    gate_weights,
    kind_shares,
    max_entropy,
    normalise_weights,
    quantile_groups,
    router_stats,
    routing_by_group,
    routing_entropy,
    routing_stats,
    routing_summary,
    winner_map,
)

__all__ = [
    "EdgeCurve", "GateWeights", "LayerCurves", "NetworkGraph", "PruneReport", "RouterStats",
    "RoutingRecorder", "WinnerMap", "attribution", "class_groups", "dataset_groups",
    "edge_curves", "gate_weights", "importance_frame", "kan_chain", "kind_shares",
    "layer_inputs", "max_entropy", "network_graph", "normalise_weights", "prune",
    "quantile_groups", "remove_nodes", "router_stats", "routing_by_group", "routing_entropy",
    "routing_stats", "routing_summary", "winner_map", "zero_edges",
]
