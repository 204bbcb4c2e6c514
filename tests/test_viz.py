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
    assert dead < 0.15 < strong  # a dead edge stays a faint ghost
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


def test_edge_detail_shows_curve_control_points_and_density():
    fig = viz.edge_detail(_layer().edge(1, 2))
    assert [t.name for t in fig.data] == ["edge function \u03c6(x)", "control points",
                                          "training samples per bin"]
    assert fig.data[2].y.sum() == 50  # every sample lands in the density
    assert "x2" in fig.layout.title.text and "h1" in fig.layout.title.text
    assert list(fig.layout.xaxis.range) == [-1.0, 1.0]  # no raw units: the model coordinate


def test_data_figures():
    frame = pd.DataFrame({"a": np.arange(10.0), "b": np.ones(10), "label": list("xyxyxyxyxy")})
    fig = viz.feature_histograms(frame)
    assert len(fig.data) == 2 and all(t.type == "histogram" for t in fig.data)
    sc = viz.target_scatter(np.arange(5000), np.arange(5000), "x", "y")
    assert len(sc.data[0].x) <= 3000 and sc.layout.title.text == "y against x"


def test_training_figures():
    fig = viz.loss_curves([1, 2, 3], [1.0, 0.5, 0.1], [1.1, 0.6, 0.2])
    # a negative log-likelihood that falls below 0 would vanish from a log axis
    assert viz.loss_curves([1, 2], [0.5, -0.2], [0.6, -0.1]).layout.yaxis.type == "linear"
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
    assert {t.name for t in ts.data} == {"MLP", "KAN"}
    wm = viz.winner_map(np.arange(3), np.arange(2), np.array([[0, 1, 2], [2, 1, 0]]))
    assert wm.data[0].type == "heatmap" and list(wm.data[0].colorbar.tickvals) == [0, 1, 2]


def test_colours_are_valid_rgba():
    fig = viz.network_figure(_graph())
    r, g, b = unlabel_rgb(fig.data[1].line.color.replace("rgba", "rgb").rsplit(",", 1)[0] + ")")
    assert 0 <= r <= 255 and 0 <= g <= 255 and 0 <= b <= 255


# ---------------------------------------------------------------------------- issue 12


def _raw_kan(n: int = 3000):
    """A [2, 3, 1] KAN on inputs whose raw ranges ([1, 5] and [-40, 10]) differ from model
    space ([-1, 1]), with more rows than the curves subsample."""
    import torch

    from kamoe.data.dataset import Affine, Dataset
    from kamoe.models import build

    rng = np.random.default_rng(0)
    raw = np.column_stack([rng.uniform(1, 5, n), rng.uniform(-40, 10, n)])
    sc = Affine.minmax(raw)
    X = sc.apply(raw).astype(np.float32)
    y = (X[:, :1] * X[:, 1:]).astype(np.float32)
    h = n // 2
    ds = Dataset(name="toy", task="regression", kind="tabular", X_train=X[:h], y_train=y[:h],
                 X_test=X[h:], y_test=y[h:], feature_names=["Pwr", "r"], target_names=["flux"],
                 x_scaling=sc, y_scaling=Affine.identity(1))
    torch.manual_seed(0)
    return build("kan", (2,), 1, hidden=[3]), ds


def test_edge_plot_spans_the_raw_data_range_of_its_input():
    from kamoe.interpret import dataset_edge_curves

    model, ds = _raw_kan()
    curves = dataset_edge_curves(model, ds, max_rows=200)  # fewer rows than the data
    first = curves["net.layers.0"]
    raw = ds.raw_X("train")
    for i in range(2):
        edge = first.edge(1, i)
        fig = viz.edge_detail(edge)
        lo, hi = fig.layout.xaxis.range
        # The whole train range, not the 200 subsampled rows' (float32 round trip: 1e-5).
        assert lo == pytest.approx(raw[:, i].min(), rel=1e-5, abs=1e-5)
        assert hi == pytest.approx(raw[:, i].max(), rel=1e-5, abs=1e-5)
        assert fig.layout.xaxis2.title.text == f"{ds.feature_names[i]} (raw units)"
        # The model coordinate is the top axis over the same data.
        col = ds.X_train[:, i]
        assert list(fig.layout.xaxis3.range) == pytest.approx([col.min(), col.max()], abs=1e-6)
        assert fig.data[-2].y.sum() == len(raw)  # density over every train row
    # A hidden layer has no raw units: its plot stays in the edge's own coordinate.
    hidden = viz.edge_detail(curves["net.layers.1"].edge(0, 0))
    assert hidden.layout.xaxis2.title.text == "h1.0 (model coordinate)"
    assert "xaxis3" not in hidden.layout


def test_edge_detail_separates_spline_and_base_parts_and_overlays_a_fit():
    from kamoe.interpret import dataset_edge_curves

    model, ds = _raw_kan(400)
    edge = dataset_edge_curves(model, ds)["net.layers.0"].edge(2, 0)
    fit = ("x^2", edge.x ** 2)
    fig = viz.edge_detail(edge, fitted=fit)
    by = {t.name: t for t in fig.data}
    phi = by["edge function \u03c6(x)"]
    spline, base = by["spline part \u03a3 c\u2098B\u2098(x)"], by["base part w\u00b7act(x)"]
    np.testing.assert_allclose(np.asarray(spline.y) + np.asarray(base.y), phi.y, atol=1e-9)
    cp = by["control points (c\u2098)"]
    lo, hi = fig.layout.xaxis.range
    assert len(cp.x) and min(cp.x) >= lo and max(cp.x) <= hi  # only those over the data
    np.testing.assert_allclose(by["fitted: x^2"].y, edge.x ** 2)
    assert phi.line.dash is None and spline.line.dash == "dash" and base.line.dash == "dot"


def _all_figures(theme: str) -> dict:
    from kamoe.interpret import Specialisation, dataset_edge_curves, dataset_network_graph

    model, ds = _raw_kan(300)
    curves = dataset_edge_curves(model, ds)
    graph = dataset_network_graph(model, ds)
    rng = np.random.default_rng(0)
    w3, w8 = rng.dirichlet([1] * 3, size=200), rng.dirichlet([1] * 8, size=200)
    by = pd.DataFrame({"group": ["lo", "lo", "hi", "hi"], "expert": [0, 1, 0, 1],
                       "n": [5, 5, 7, 7], "mean_weight": [0.9, 0.1, 0.2, 0.8]})
    table = pd.DataFrame([[5, 0], [1, 6]], index=["lo", "hi"], columns=[0, 1])
    spec = Specialisation("g", "regime", 12, 0.6, 0.3, np.log(2), np.array([0.5, 0.5]),
                          table, "The experts split the regimes (NMI 0.60).")
    rec = pd.DataFrame({"epoch": [1, 1, 2, 2], "gate": ["g"] * 4, "expert": [0, 1, 0, 1],
                        "entropy": [0.6, 0.6, 0.3, 0.3], "group": ["lo"] * 4, "n": 4,
                        "mean_weight": [0.5, 0.5, 0.9, 0.1]})
    share = pd.DataFrame({"gate": ["m", "m"], "kind": ["mlp", "kan"],
                          "selected_share": [0.25, 0.75]})
    frame = pd.DataFrame({"a": np.arange(10.0), "b": np.ones(10)})
    t = dict(theme=theme)
    return {
        "network": viz.network_figure(graph, edge_functions={(0, 0, 0): "sin"}, **t),
        "layer_grid": viz.layer_grid(curves["net.layers.0"], **t),
        "edge_detail": viz.edge_detail(curves["net.layers.0"].edge(0, 0), **t),
        "gate_panels": viz.gate_histograms(w3, unit="time steps", **t),
        "gate_heatmap": viz.gate_histograms(w8, **t),
        "usage": viz.usage_by_group(by, "regime", **t),
        "usage_heatmap": viz.usage_by_group(by, "regime", layout="heatmap", **t),
        "specialisation": viz.specialisation_figure(spec, **t),
        "over_epochs": viz.usage_over_epochs(rec, "regime", **t),
        "thumbnails": viz.class_thumbnails(rng.uniform(0, 16, (2, 8, 8)), ["0", "1"],
                                           np.array([[0.7, 0.3], [0.2, 0.8]]), **t),
        "entropy": viz.entropy_over_epochs(rec, max_entropy=np.log(2), **t),
        "token_share": viz.token_share(share, **t),
        "winner_map": viz.winner_map(np.arange(3), np.arange(2), np.array([[0, 1, 2], [2, 1, 0]]),
                                     points=(np.arange(3.0), np.arange(3.0)), **t),
        "histograms": viz.feature_histograms(frame, **t),
        "scatter": viz.target_scatter(np.arange(5.0), np.arange(5.0), "x", "y", **t),
        "loss": viz.loss_curves([1, 2], [1.0, 0.5], [1.1, 0.6], **t),
        "pred": viz.pred_vs_true(np.arange(5.0), {"net": np.arange(5.0)}, **t),
        "compare": viz.compare_bars(pd.DataFrame({"model": ["a"], "r2": [0.5]}), "r2", **t),
    }


def _text_colours(obj, inside_text: bool = False):
    """Every colour of a text element (fonts) in a figure's JSON."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k == "color" and inside_text and isinstance(v, str):
                yield v
            else:
                yield from _text_colours(v, inside_text or k.endswith("font"))
    elif isinstance(obj, list):
        for v in obj:
            yield from _text_colours(v, inside_text)


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_every_figure_reads_in_both_themes(theme):
    from kamoe.viz.theme import contrast, palette

    p = palette(theme)
    for name, fig in _all_figures(theme).items():
        lay = fig.layout
        assert lay.paper_bgcolor == lay.plot_bgcolor == p.background, name
        colours = list(_text_colours(fig.to_plotly_json()))
        assert p.text in colours, name  # the layout font at least
        for c in colours:  # WCAG AA for text: 4.5
            assert contrast(c, p.background) >= 4.5, (name, c)
        for t in fig.data:  # solid data marks (lines and markers) reach 3 (WCAG graphics)
            line = getattr(t, "line", None)
            marker = getattr(t, "marker", None)
            ring = getattr(getattr(marker, "line", None), "color", None)
            fill = ring if isinstance(ring, str) else getattr(marker, "color", None)
            for c in (getattr(line, "color", None), fill):  # hollow nodes: their ring
                if isinstance(c, str) and not c.startswith("rgba") and (
                        getattr(line, "width", None) != 0):
                    assert contrast(c, p.background) >= 3, (name, t.name, c)


def test_dark_network_has_no_white_panel_and_light_labels():
    from kamoe.viz.theme import contrast, palette

    dark, light = palette("dark"), palette("light")
    graph = _graph()
    fig = viz.network_figure(graph, theme="dark")
    nodes = fig.data[-1]
    assert fig.layout.plot_bgcolor == dark.background != "white"
    assert contrast(nodes.textfont.color, dark.background) >= 7  # labels: white-ish on dark
    assert contrast(nodes.marker.line.color, dark.background) >= 7  # node rings too
    # The important edge's inset stands out in both themes (3:1, graphics).
    for th, pal in (("dark", dark), ("light", light)):
        inset = viz.network_figure(graph, theme=th).data[1]
        assert contrast(inset.line.color, pal.background) >= 3, th
    with pytest.raises(ValueError, match="theme"):
        viz.network_figure(graph, theme="blue")


def test_network_draws_snapped_edges_with_their_function_and_hides_cut_edges():
    from kamoe.viz.theme import palette

    graph = _graph()
    fig = viz.network_figure(graph, edge_functions={(0, 0, 1): "x^2"})
    assert [(a.text, a.font.color) for a in fig.layout.annotations] == [
        ("x^2", palette("light").fitted)]
    assert fig.data[3].line.color == palette("light").fitted  # edge (layer 0, in 1 -> out 0)
    assert "snapped to x^2" in fig.data[3].text and "numeric" in fig.data[1].text
    cut = _graph()
    cut.edges["cut"] = [False, True]
    assert len(viz.network_figure(cut).data) == 2 + 1  # the cut edge is gone
    assert len(viz.network_figure(cut, show_cut=True).data) == 2 * 2 + 1


def test_network_of_a_pruned_model_has_fewer_nodes_and_keeps_their_names():
    import torch

    from kamoe.interpret import dataset_network_graph, kept_node_names, network_graph
    from kamoe.interpret.prune import remove_nodes

    model, ds = _raw_kan(300)
    before = dataset_network_graph(model, ds)
    small = remove_nodes(model, [[0, 2]])  # drop hidden node h1.1
    names = kept_node_names([list(before.nodes.query(f"level == {lv}")["label"])
                             for lv in range(3)], [(1, 1)])
    after = network_graph(small, ds.X_train, node_labels=names)
    fb, fa = viz.network_figure(before), viz.network_figure(after)
    assert list(fb.data[-1].text) == ["Pwr", "r", "h1.0", "h1.1", "h1.2", "flux"]
    assert list(fa.data[-1].text) == ["Pwr", "r", "h1.0", "h1.2", "flux"]
    assert len(fa.data) == 2 * (2 * 2 + 2 * 1) + 1 < len(fb.data)
    assert torch.is_tensor(next(small.parameters()))


def test_routing_figures_label_units_and_switch_to_a_heat_map_for_many_experts():
    rng = np.random.default_rng(0)
    few = viz.gate_histograms(rng.dirichlet([1] * 3, size=100).reshape(10, 10, 3),
                              unit="time steps")
    assert [t.type for t in few.data] == ["bar"] * 3  # one panel per expert
    assert few.layout.title.subtitle.text == "100 time steps"
    assert few.layout.yaxis.title.text == "time steps"
    assert sum(sum(t.y) for t in few.data) == 3 * 100  # every row counted once per expert
    many = viz.gate_histograms(rng.dirichlet([1] * 8, size=50))
    (hm,) = many.data
    assert hm.type == "heatmap" and np.asarray(hm.z).shape == (8, 20)
    np.testing.assert_allclose(np.asarray(hm.z).sum(1), 1.0)  # shares of rows per expert
    by = pd.DataFrame({"group": ["persistent", "persistent", "noisy", "noisy"],
                       "expert": [0, 1, 0, 1], "n": [230, 230, 295, 295],
                       "mean_weight": [0.9, 0.1, 0.2, 0.8]})
    fig = viz.usage_by_group(by, "regime")
    assert list(fig.data[0].x) == ["persistent (n=230)", "noisy (n=295)"]
    with pytest.raises(ValueError, match="layout"):
        viz.gate_histograms(rng.dirichlet([1] * 3, size=5), layout="grid")


def test_usage_over_epochs_has_a_frame_per_epoch_and_a_slider():
    rec = pd.DataFrame({"epoch": [1, 1, 2, 2, 3, 3], "gate": ["g"] * 6, "group": ["a"] * 6,
                        "expert": [0, 1] * 3, "n": 4,
                        "mean_weight": [0.5, 0.5, 0.7, 0.3, 0.9, 0.1]})
    fig = viz.usage_over_epochs(rec, "regime")
    assert [f.name for f in fig.frames] == ["1", "2", "3"]
    assert [s.label for s in fig.layout.sliders[0].steps] == ["1", "2", "3"]
    assert list(fig.frames[1].data[0].y) == [0.7]  # epoch 2, expert 0
    assert list(fig.data[0].y) == [0.9]  # the figure opens on the last epoch


def test_class_thumbnails_put_each_class_image_beside_its_expert_shares():
    images = np.stack([np.eye(8) * 16, np.fliplr(np.eye(8)) * 16])
    shares = np.array([[0.7, 0.3], [0.2, 0.8]])
    fig = viz.class_thumbnails(images, ["0", "1"], shares, ["expert 0", "expert 1"])
    heat = [t for t in fig.data if t.type == "heatmap"]
    bars = [t for t in fig.data if t.type == "bar"]
    assert len(heat) == 2 and np.array_equal(heat[1].z, images[1])
    assert [(b.y[0], b.x[0], b.base) for b in bars] == [("0", 0.7, 0.0), ("0", 0.3, 0.7),
                                                         ("1", 0.2, 0.0), ("1", 0.8, 0.2)]


def test_derivation_figure_draws_the_tree_of_a_kan_reading():
    from kamoe.viz import contrast, derivation_figure, palette
    from kamoe.viz.formula import layout

    # I.10.7's derivation: m_0 * (an edge of v/c), the edge read exactly
    graph = {"kind": "product", "children": [
        {"kind": "edge", "input": "m_0", "function": "power u^1", "text": "m_0",
         "exact": True},
        {"kind": "symmetry", "label": "depends on v/c", "variable": "(v/c)", "child": {
            "kind": "edge", "input": "(v/c)", "function": "c*1/sqrt(a*u^2+b)+d",
            "text": "1/sqrt(1 - 1.0*(v/c)**2)", "exact": False}}]}
    nodes, links = layout(graph)
    assert [n["kind"] for n in nodes] == ["product", "edge", "symmetry", "edge"]
    assert len(links) == 3 and nodes[0]["y"] > nodes[2]["y"] > nodes[3]["y"]  # output on top
    for theme in ("light", "dark"):
        fig = derivation_figure(graph, output="m", theme=theme)
        texts = [t for tr in fig.data if tr.text is not None for t in tr.text]
        assert "1/sqrt(1 - 1.0*(v/c)**2)" in texts  # the edge's shape, in its own variable
        assert "m_0" in texts and "u = v/c" in texts
        names = {tr.name for tr in fig.data if tr.name}
        assert names == {"edge read exactly", "edge: best fit, not exact", "combination"}
        bg = palette(theme).background
        assert all(contrast(tr.textfont.color, bg) >= 4.5 for tr in fig.data if tr.text)


def test_specialisation_verdict_is_wrapped_not_cut():
    """A long verdict is broken into lines of at most SUBTITLE_CHARS (plotly does not wrap a
    subtitle) and every word of it is kept; the top margin grows with the lines."""
    from kamoe.interpret.routing import Specialisation, specialisation_verdict
    from kamoe.viz.routing import SUBTITLE_CHARS

    verdict = specialisation_verdict(0.45, 0.99, np.log(3), "regime")
    assert len(verdict) > SUBTITLE_CHARS
    table = pd.DataFrame([[5, 0], [1, 6]], index=["lo", "hi"], columns=[0, 1])
    spec = Specialisation("g", "regime", 12, 0.45, 0.99, np.log(3), np.array([0.5, 0.5]),
                          table, verdict)
    fig = viz.specialisation_figure(spec)
    lines = fig.layout.title.subtitle.text.split("<br>")
    assert len(lines) >= 2 and all(len(line) <= SUBTITLE_CHARS for line in lines)
    assert " ".join(lines) == verdict
    short = Specialisation("g", "regime", 12, 0.6, 0.3, np.log(2), np.array([0.5, 0.5]),
                           table, "The experts split the regimes (NMI 0.60).")
    assert fig.layout.margin.t > viz.specialisation_figure(short).layout.margin.t
