"""Interpretation of trained models: edge curves and importances, routing statistics, pruning.

Reads a model and inputs in model space; returns numpy arrays, pandas frames and dataclasses.
"""

from kamoe.interpret.edges import (
    EdgeCurve,
    LayerCurves,
    NetworkGraph,
    attribution,
    dataset_edge_curves,
    dataset_network_graph,
    edge_curves,
    importance_frame,
    kan_chain,
    kan_node_names,
    layer_inputs,
    network_graph,
)
from kamoe.interpret.names import (
    dataset_node_names,
    edge_name,
    hidden_name,
    input_names,
    kept_node_names,
    node_names,
    output_names,
)
from kamoe.interpret.prune import PruneReport, prune, remove_nodes, zero_edges
from kamoe.interpret.routing import (
    GateWeights,
    RouterStats,
    RoutingRecorder,
    Specialisation,
    WinnerMap,
    class_groups,
    class_thumbnails,
    dataset_groups,
    dataset_routing,
    gate_names,
    gate_weights,
    kind_shares,
    max_entropy,
    normalise_weights,
    normalised_mutual_information,
    quantile_groups,
    router_stats,
    routing_by_group,
    routing_entropy,
    routing_report,
    routing_stats,
    routing_summary,
    row_unit,
    sample_weights,
    specialisation,
    specialisation_verdict,
    winner_map,
)

__all__ = [
    "EdgeCurve", "GateWeights", "LayerCurves", "NetworkGraph", "PruneReport", "RouterStats",
    "RoutingRecorder", "Specialisation", "WinnerMap", "attribution", "class_groups",
    "class_thumbnails", "dataset_edge_curves", "dataset_groups", "dataset_routing",
    "dataset_network_graph",
    "dataset_node_names", "edge_curves", "edge_name", "gate_names", "gate_weights",
    "hidden_name", "importance_frame", "input_names", "kan_chain", "kan_node_names",
    "kept_node_names", "kind_shares", "layer_inputs", "max_entropy", "network_graph", "node_names",
    "normalise_weights", "normalised_mutual_information", "output_names", "prune",
    "quantile_groups", "remove_nodes", "router_stats", "routing_by_group", "routing_entropy",
    "routing_report", "routing_stats", "routing_summary", "row_unit", "sample_weights",
    "specialisation", "specialisation_verdict", "winner_map", "zero_edges",
]
