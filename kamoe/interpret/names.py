"""The one naming scheme for the nodes and edges of a KAN, used by every page and figure.

Level 0 (the inputs) carries the dataset's variable names (lagged names ``x[t-3]`` for a
flattened window of a sequence), hidden level l its nodes ``h{l}.{index}`` (0-based, as the
layer and edge indices everywhere else), the last level the target's names (``digit 3`` per
class for a classifier). An edge of layer l from node i to node j is ``"<in> → <out>"``; the
level in a hidden name says which layer an edge belongs to, so no layer number is needed.
Plain Python; no torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

ARROW = "\u2192"


def hidden_name(level: int, index: int) -> str:
    """The label of hidden node ``index`` at ``level`` (1 = the first hidden level)."""
    return f"h{level}.{index}"


def input_names(dataset: Any, n_inputs: int | None = None) -> list[str]:
    """Names of the model's (flattened) inputs: the features, or lagged names for a window.

    ``n_inputs`` defaults to the product of the dataset's input shape. Windows of a sequence
    (steps T, channels d) are flattened step-major, so input ``t * d + c`` is channel c at lag
    ``T - t`` (``x[t-1]`` is the newest step).
    """
    names = list(dataset.feature_names)
    shape = tuple(dataset.input_shape)
    n = n_inputs if n_inputs is not None else int(_prod(shape))
    if len(names) == n:
        return names
    if dataset.kind == "sequence" and len(shape) == 2 and shape[0] * shape[1] == n \
            and len(names) == shape[1]:
        steps = shape[0]
        return [f"{c}[t-{steps - t}]" for t in range(steps) for c in names]
    return [f"x{i}" for i in range(n)]


def output_names(dataset: Any, n_outputs: int) -> list[str]:
    """Names of the model's outputs: the targets, or ``<target> <class>`` per class."""
    targets = list(dataset.target_names)
    if len(targets) == n_outputs:
        return targets
    classes = list(dataset.class_names or [])
    if len(classes) == n_outputs:
        stem = targets[0] if targets else "class"
        return [f"{stem} {c}" for c in classes]
    return [f"y{j}" for j in range(n_outputs)]


def node_names(widths: Sequence[int], inputs: Sequence[str] | None = None,
               outputs: Sequence[str] | None = None) -> list[list[str]]:
    """Labels of every node, level by level (``widths`` = [in, hidden..., out]).

    ``inputs``/``outputs`` name the first/last level when their lengths match (else ``x{i}`` and
    ``y{j}``); hidden levels are ``h{level}.{index}``.
    """
    widths = [int(w) for w in widths]
    levels: list[list[str]] = []
    for level, w in enumerate(widths):
        if level == 0:
            names = list(inputs) if inputs is not None and len(inputs) == w else [
                f"x{i}" for i in range(w)]
        elif level == len(widths) - 1:
            names = list(outputs) if outputs is not None and len(outputs) == w else [
                f"y{j}" for j in range(w)]
        else:
            names = [hidden_name(level, i) for i in range(w)]
        levels.append(names)
    return levels


def dataset_node_names(widths: Sequence[int], dataset: Any) -> list[list[str]]:
    """``node_names`` with the dataset's input and output names."""
    widths = list(widths)
    return node_names(widths, input_names(dataset, widths[0]),
                      output_names(dataset, widths[-1]))


def edge_name(names: Sequence[Sequence[str]], layer: int, out: int, inp: int) -> str:
    """``"<input node> → <output node>"`` for edge (layer, out, in), the symbolic EdgeKey order."""
    if not 0 <= layer < len(names) - 1:
        raise IndexError(f"layer {layer} outside a network of {len(names) - 1} layers")
    return f"{names[layer][inp]} {ARROW} {names[layer + 1][out]}"


def _prod(shape: Sequence[int]) -> int:
    n = 1
    for s in shape:
        n *= int(s)
    return n


def kept_node_names(names: Sequence[Sequence[str]],
                    removed: Sequence[tuple[int, int]]) -> list[list[str]]:
    """The labels left after removing nodes (level, index), so a pruned network keeps its names.

    ``removed`` is ``PruneReport.removed_nodes`` (indices in the network before pruning).
    """
    gone = {(int(level), int(index)) for level, index in removed}
    return [[n for i, n in enumerate(level_names) if (level, i) not in gone]
            for level, level_names in enumerate(names)]
