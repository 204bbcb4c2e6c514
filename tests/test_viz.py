"""Figure builders on small synthetic plain data: trace counts and types, titles, opacity."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from plotly.colors import unlabel_rgb

from kamoe import viz
from kamoe.interpret.edges import LayerCurves, NetworkGraph


def _graph() -> NetworkGraph:
    """A [2, 1] network: edge 0 fully important, edge 1 dead."""
    nodes = pd.DataFrame({"level": [0, 0, 1], "index": [0, 1, 0], "x": [0.25, 0.75, 0.5],
                          "y": [0.0, 0.0, 1.0], "importance": [1.0, 0.0, 1.0],
                          "label": ["a", "b", "y"]})
    edges = pd.DataFrame({"layer": [0, 0], "i": [0, 1], "j": [0, 0], "importance": [1.0, 0.0],
                          "alpha": [np.tanh(3.0), 0.0], "x0": [0.25, 0.75], "y0": [0.0, 0.0],
                          "x1": [0.5, 0.5], "y1": [1.0, 1.0]})
    t = np.linspace(0, 1, 10)
    return NetworkGraph(widths=[2, 1], nodes=nodes, edges=edges, curve_x=np.stack([t, t]),
                        curve_y=np.stack([t**2, t]), curve_range=np.zeros((2, 4)),
                        layer_paths=["net.layers.0"], beta=3.0)


def _layer(out: int = 2, inp: int = 3, points: int = 20) -> LayerCurves:
    x = np.tile(np.linspace(-1, 1, points), (inp, 1))
    y = np.stack([np.stack([np.sin((j + 1) * x[i]) for i in range(inp)]) for j in range(out)])
    imp = np.arange(out * inp, dtype=float).reshape(out, inp)
    imp /= imp.max()
    samples = np.random.default_rng(0).uniform(-1, 1, (50, inp))
    counts = np.stack([np.histogram(samples[:, i], bins=5, range=(-1, 1))[0] for i in range(inp)])
    edges = np.tile(np.linspace(-1, 1, 6), (inp, 1))
    return LayerCurves(
        path="net.layers.0", kind="bspline", coordinate="raw", univariate=True,
        in_features=inp, out_features=out, x=x, y=y, samples=samples,
        sample_y=np.zeros((50, out, inp)), density_counts=counts, density_edges=edges,
        control_x=np.tile(np.linspace(-1, 1, 8), (inp, 1)), control_y=np.zeros((out, inp, 8)),
        edge_std=imp, node_std=np.ones(out), edge_score=imp, in_node_score=np.ones(inp),
        out_node_score=np.ones(out), importance=imp, in_node_importance=np.ones(inp),
        out_node_importance=np.ones(out), in_names=[f"x{i}" for i in range(inp)],
        out_names=[f"h{j}" for j in range(out)])


def _alpha(colour: str) -> float:
    return float(colour.rsplit(",", 1)[1].rstrip(")"))


def test_network_figure_has_a_line_and_an_inset_per_edge_with_opacity_by_importance():
    fig = viz.network_figure(_graph())
    assert len(fig.data) == 2 * 2 + 1  # a line and a curve inset per edge, plus the nodes
    assert fig.data[-1].mode == "markers+text" and list(fig.data[-1].text) == ["a", "b", "y"]
    strong, dead = _alpha(fig.data[0].line.color), _alpha(fig.data[2].line.color)
    assert strong == pytest.approx(np.tanh(3.0), abs=1e-3)
    assert dead < 0.1 < strong  # a dead edge stays a faint ghost
    # pykan layout: the insets of a layer sit in a row half-way between the levels.
    assert np.mean(fig.data[1].x) < np.mean(fig.data[3].x)
    assert np.mean(fig.data[1].y) == pytest.approx(0.5, abs=0.1)
    assert "importance" in fig.layout.title.text


def test_layer_grid_has_one_subplot_per_edge_and_fades_unimportant_edges():
    lc = _layer(2, 3)
    fig = viz.layer_grid(lc)
    assert len(fig.data) == 6 and all(t.type == "scatter" for t in fig.data)
    alphas = [_alpha(t.line.color) for t in fig.data]
    assert alphas[0] < alphas[-1]  # importance 0 -> faint, importance 1 -> opaque
    assert "net.layers.0" in fig.layout.title.text
    assert len(viz.layer_grid(_layer(10, 10), max_out=4, max_in=3).data) == 12


def test_edge_detail_shows_curve_samples_control_points_and_density():
    fig = viz.edge_detail(_layer().edge(1, 2))
    assert [t.type for t in fig.data] == ["scatter", "scattergl", "scatter", "bar"]
    assert fig.data[3].y.sum() == 50  # every sample lands in the density
    assert "x2" in fig.layout.title.text and "h1" in fig.layout.title.text


def test_data_figures():
    frame = pd.DataFrame({"a": np.arange(10.0), "b": np.ones(10), "label": list("xyxyxyxyxy")})
    fig = viz.feature_histograms(frame)
    assert len(fig.data) == 2 and all(t.type == "histogram" for t in fig.data)
    sc = viz.target_scatter(np.arange(5000), np.arange(5000), "x", "y")
    assert len(sc.data[0].x) <= 3000 and sc.layout.title.text == "y against x"


def test_training_figures():
    fig = viz.loss_curves([1, 2, 3], [1.0, 0.5, 0.1], [1.1, 0.6, 0.2])
    assert [t.name for t in fig.data] == ["train", "validation"]
    assert fig.layout.yaxis.type == "log"
    pv = viz.pred_vs_true(np.arange(5.0), {"network": np.arange(5.0), "formula": np.ones(5)})
    assert [t.name for t in pv.data] == ["network", "formula", "y = x"]
    res = pd.DataFrame({"model": ["mlp", "kamoe-mlp"], "r2": [0.7, 0.8]})
    ref = pd.DataFrame({"model": ["MLP L1"], "r2": [0.73]})
    bars = viz.compare_bars(res, "r2", reference=ref)
    assert len(bars.data) == 2 and bars.data[1].name.startswith("published")


def test_routing_figures_from_tidy_frames():
    w = np.random.default_rng(0).dirichlet([1, 1, 1], size=100)
    assert len(viz.gate_histograms(w).data) == 3
    by = pd.DataFrame({"group": ["lo", "lo", "hi", "hi"], "expert": [0, 1, 0, 1],
                       "mean_weight": [0.9, 0.1, 0.2, 0.8]})
    fig = viz.usage_by_group(by, "target quartile")
    assert len(fig.data) == 2 and list(fig.data[0].x) == ["lo", "hi"]
    assert fig.layout.barmode == "stack"
    rec = pd.DataFrame({"epoch": [1, 1, 2, 2], "gate": ["g"] * 4, "expert": [0, 1, 0, 1],
                        "entropy": [1.0, 1.0, 0.5, 0.5]})
    ent = viz.entropy_over_epochs(rec, max_entropy=np.log(2))
    assert list(ent.data[0].y) == [1.0, 0.5] and ent.data[1].name == "uniform routing"
    share = pd.DataFrame({"gate": ["m", "m"], "kind": ["mlp", "kan"],
                          "selected_share": [0.25, 0.75]})
    ts = viz.token_share(share)
    assert {t.name for t in ts.data} == {"mlp", "kan"}
    wm = viz.winner_map(np.arange(3), np.arange(2), np.array([[0, 1, 2], [2, 1, 0]]))
    assert wm.data[0].type == "heatmap" and list(wm.data[0].colorbar.tickvals) == [0, 1, 2]


def test_colours_are_valid_rgba():
    fig = viz.network_figure(_graph())
    r, g, b = unlabel_rgb(fig.data[1].line.color.replace("rgba", "rgb").rsplit(",", 1)[0] + ")")
    assert 0 <= r <= 255 and 0 <= g <= 255 and 0 <= b <= 255
