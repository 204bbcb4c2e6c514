"""The derivation of a formula read from a KAN (kan-tree), drawn as the tree it is.

``derivation_figure(graph)`` takes the plain-dict tree of ``FormulaResult.graph``: leaves are
single KAN edges (one variable, one library function, its shape as ``text``), inner nodes
combine them (a sum, a product, a transform of the output, a pair of variables replaced by
one). The output sits at the top, the edges at the bottom, each edge labelled with the function
read from it and coloured by whether that reading was exact.
"""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from kamoe.viz.theme import apply_theme, palette


def _describe(node: dict[str, Any]) -> tuple[str, str]:
    """(the node's short label, its hover text)."""
    kind = node.get("kind")
    if kind == "edge":
        text = node.get("text") or node.get("function", "")
        state = "read exactly" if node.get("exact") else "best fit, not exact"
        return text, f"edge of {node['input']}: {node.get('function', '')} ({state})"
    if kind == "sum":
        return "Σ", "sum of the blocks below (additively separable)"
    if kind == "product":
        return "∏", "product of the blocks below (multiplicatively separable)"
    if kind == "symmetry":
        return f"u = {node.get('variable', 'u').strip('()')}", \
            f"symmetry: {node.get('label', '')}"
    if kind == "transform":
        return node.get("name", "T"), f"output transform: {node.get('name', '')}"
    return str(kind), str(kind)


def _children(node: dict[str, Any]) -> list[dict[str, Any]]:
    if "children" in node:
        return list(node["children"])
    return [node["child"]] if "child" in node else []


def layout(graph: dict[str, Any]) -> tuple[list[dict[str, Any]], list[tuple[int, int]]]:
    """Node records (x, y, label, hover, kind, exact) and parent-child index pairs."""
    nodes: list[dict[str, Any]] = []
    links: list[tuple[int, int]] = []
    next_leaf = [0]

    def height(n: dict[str, Any]) -> int:
        kids = _children(n)
        return 0 if not kids else 1 + max(height(k) for k in kids)

    def place(n: dict[str, Any], y: float) -> int:
        kids = _children(n)
        idx = len(nodes)
        label, hover = _describe(n)
        nodes.append({"x": 0.0, "y": y, "label": label, "hover": hover,
                      "kind": n.get("kind"), "exact": bool(n.get("exact", True))})
        if not kids:
            nodes[idx]["x"] = float(next_leaf[0])
            next_leaf[0] += 1
            return idx
        child_ids = [place(k, y - 1.0) for k in kids]
        nodes[idx]["x"] = sum(nodes[c]["x"] for c in child_ids) / len(child_ids)
        links.extend((idx, c) for c in child_ids)
        return idx

    place(graph, float(height(graph)))
    return nodes, links


def derivation_figure(graph: dict[str, Any], output: str = "y", theme: str = "light",
                      title: str = "How the formula was read from the KAN") -> go.Figure:
    """The derivation tree: output on top, one box per KAN edge at the bottom."""
    pal = palette(theme)
    nodes, links = layout(graph)
    fig = go.Figure()
    for a, b in links:
        fig.add_trace(go.Scatter(x=[nodes[a]["x"], nodes[b]["x"]],
                                 y=[nodes[a]["y"], nodes[b]["y"]], mode="lines",
                                 line={"color": pal.muted, "width": 1.5}, hoverinfo="skip",
                                 showlegend=False))
    top = max(n["y"] for n in nodes)
    root = nodes[0]
    fig.add_trace(go.Scatter(x=[root["x"], root["x"]], y=[top, top + 0.6], mode="lines",
                             line={"color": pal.muted, "width": 1.5}, hoverinfo="skip",
                             showlegend=False))
    fig.add_annotation(x=root["x"], y=top + 0.75, text=f"<b>{output}</b>", showarrow=False,
                       font={"size": 15, "color": pal.text})
    for group, colour, name in (
            ([n for n in nodes if n["kind"] == "edge" and n["exact"]], pal.fitted,
             "edge read exactly"),
            ([n for n in nodes if n["kind"] == "edge" and not n["exact"]], pal.base,
             "edge: best fit, not exact"),
            ([n for n in nodes if n["kind"] != "edge"], pal.node_fill, "combination")):
        if not group:
            continue
        fig.add_trace(go.Scatter(
            x=[n["x"] for n in group], y=[n["y"] for n in group], mode="markers+text",
            marker={"size": 16, "color": colour, "line": {"color": pal.text, "width": 1}},
            text=[n["label"] for n in group], textposition="middle right",
            textfont={"size": 13, "color": pal.text}, hovertext=[n["hover"] for n in group],
            hoverinfo="text", name=name))
    fig.update_xaxes(visible=False, range=[-0.8, max(n["x"] for n in nodes) + 0.8])
    fig.update_yaxes(visible=False, range=[min(n["y"] for n in nodes) - 0.7, top + 1.0])
    fig.update_layout(title=title, height=max(320, 110 * (top + 2)),
                      legend={"orientation": "h", "y": -0.05},
                      margin={"l": 10, "r": 10, "t": 50, "b": 30})
    return apply_theme(fig, theme)
