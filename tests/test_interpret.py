"""Tests for kamoe.interpret: edge curves and importance, routing statistics, pruning."""

from __future__ import annotations

import math
import time

import numpy as np
import pandas as pd
import pytest
import torch

from kamoe.data.dataset import Affine, Dataset
from kamoe.interpret import (
    RoutingRecorder,
    class_groups,
    dataset_groups,
    edge_curves,
    gate_weights,
    kind_shares,
    layer_inputs,
    max_entropy,
    network_graph,
    prune,
    quantile_groups,
    router_stats,
    routing_by_group,
    routing_entropy,
    routing_summary,
    winner_map,
)
from kamoe.models import build
from kamoe.train import TrainConfig, evaluate, fit, load_model, predict, save_model


def _dataset(n: int = 400, d: int = 2, seed: int = 0, groups: bool = False) -> Dataset:
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, (n, d)).astype(np.float32)
    y = (np.sin(2 * X[:, :1]) + X[:, 1:2] ** 2).astype(np.float32)
    g = np.where(X[:, 0] > 0, "right", "left")
    h = n // 2
    return Dataset(
        name="toy", task="regression", kind="tabular",
        X_train=X[:h], y_train=y[:h], X_test=X[h:], y_test=y[h:],
        feature_names=[f"x{i}" for i in range(d)], target_names=["y"],
        x_scaling=Affine(np.zeros(d), np.full(d, 2.0)), y_scaling=Affine.identity(1),
        groups_train=g[:h] if groups else None, groups_test=g[h:] if groups else None,
        group_name="side" if groups else None,
    )


# ---------------------------------------------------------------------------- edges


def test_layer_curves_reproduce_layer_edges_and_outputs():
    torch.manual_seed(0)
    model = build("kan", (3,), 2, hidden=[4])
    X = np.random.default_rng(1).uniform(-1, 1, (300, 3)).astype(np.float32)
    curves = edge_curves(model, X, n_points=400)
    ins = layer_inputs(model, X)
    for path, layer in model.kan_layers().items():
        lc = curves[path]
        assert lc.kind == "bspline" and lc.coordinate == "raw" and lc.univariate
        assert lc.x.shape == (layer.in_features, 400)
        assert lc.y.shape == (layer.out_features, layer.in_features, 400)
        with torch.no_grad():
            x = torch.as_tensor(ins[path])
            truth = layer.edge_curves(x).numpy()
            out = layer(x).numpy()
        np.testing.assert_allclose(lc.sample_y, truth, atol=1e-6)
        # Summing a node's incoming edges gives the layer output (KAN layer definition).
        np.testing.assert_allclose(lc.sample_y.sum(-1), out, atol=1e-5)
        # The dense curve interpolated at the samples matches the edges there (smooth curves,
        # 400 points on a range of ~2: interpolation error well below 1e-3).
        for j in range(lc.out_features):
            for i in range(lc.in_features):
                interp = np.interp(lc.samples[:, i], lc.x[i], lc.y[j, i])
                np.testing.assert_allclose(interp, truth[:, j, i], atol=1e-3)
        assert lc.density_counts.sum(1).tolist() == [len(X)] * layer.in_features
        frame = lc.to_frame()
        assert len(frame) == layer.in_features * layer.out_features
        assert frame["importance"].max() == pytest.approx(1.0)
    edge = curves["net.layers.0"].edge(1, 2)
    assert edge.label == "x2 \u2192 h1.1" and edge.y.shape == (400,)


def test_curves_of_a_10x10_layer_are_fast():
    model = build("kan", (10,), 10, hidden=[])
    X = np.random.default_rng(0).uniform(-1, 1, (2000, 10)).astype(np.float32)
    edge_curves(model, X)  # warm-up (first calls pay one-off torch dispatch costs)
    start = time.perf_counter()
    curves = edge_curves(model, X)
    took = time.perf_counter() - start
    assert curves["net.layers.0"].y.shape == (10, 10, 200)
    # Measured ~0.02 s on the 2-core dev box; 1 s is the interactive budget the dashboard needs.
    assert took < 1.0, took


def test_importance_ranks_dead_edge_lowest_and_strong_edge_highest():
    torch.manual_seed(0)
    model = build("kan", (3,), 1, hidden=[])
    layer = model.net.layers[0]
    with torch.no_grad():
        layer.base_weight.zero_()
        layer.spline_weight.mul_(0.01)
        layer.base_weight[0, 1] = 3.0  # a strong edge x1 -> y
        layer.spline_weight[0, 2] = 0.0  # a dead edge x2 -> y
    X = np.random.default_rng(0).uniform(-1, 1, (500, 3)).astype(np.float32)
    lc = edge_curves(model, X)["net.layers.0"]
    assert lc.importance[0, 1] == 1.0
    assert lc.importance[0, 2] == 0.0
    assert lc.ranked()[0] == (0, 1) and lc.ranked()[-1] == (0, 2)
    assert np.argmax(lc.in_node_importance) == 1


def test_attribution_propagates_through_a_dead_hidden_node():
    torch.manual_seed(0)
    model = build("kan", (2,), 1, hidden=[3])
    with torch.no_grad():
        model.net.layers[1].base_weight[0, 1] = 0.0
        model.net.layers[1].spline_weight[0, 1] = 0.0  # hidden node 1 feeds nothing
    X = np.random.default_rng(0).uniform(-1, 1, (400, 2)).astype(np.float32)
    c = edge_curves(model, X, feature_names=["a", "b"], target_names=["t"])
    first = c["net.layers.0"]
    assert first.score_kind == "attribution"
    assert first.in_names == ["a", "b"] and c["net.layers.1"].out_names == ["t"]
    # Edges into the dead node matter nothing downstream, whatever their own spread.
    assert np.all(first.edge_score[1] == 0) and np.all(first.edge_std[1] > 0)
    assert first.out_node_score[1] == 0.0


def test_kan_layers_inside_other_models_and_fasterkan_coordinates():
    X = np.random.default_rng(0).uniform(-1, 1, (200, 4)).astype(np.float32)
    c = edge_curves(build("kamoe-kan", (4,), 1), X)
    assert c and all(v.score_kind == "std" for v in c.values())
    c = edge_curves(build("mlp-kan", (4,), 1, kan_norm="layernorm"), X)
    assert all(v.kind == "rswaf" and v.coordinate == "normalised" and not v.univariate
               for v in c.values())


def test_network_graph_lists_every_edge_with_a_small_curve():
    model = build("kan", (2,), 1, hidden=[3])
    X = np.random.default_rng(0).uniform(-1, 1, (200, 2)).astype(np.float32)
    g = network_graph(model, X)
    assert g.widths == [2, 3, 1]
    assert len(g.nodes) == 6 and len(g.edges) == 2 * 3 + 3 * 1
    assert g.curve_x.shape == (9, 30) and g.curve_y.shape == (9, 30)
    assert g.curve_x.min() >= 0 and g.curve_y.max() <= 1
    assert set(g.edges.columns) >= {"layer", "i", "j", "importance", "alpha", "x0", "y1"}
    with pytest.raises(ValueError, match="plain KAN"):
        network_graph(build("kamoe-kan", (2,), 1), X)


# ---------------------------------------------------------------------------- routing


def _forced_kamoe(winner: int = 2, n_experts: int = 3):
    torch.manual_seed(0)
    model = build("kamoe-mlp", (2,), 1, hidden=[8], n_experts=n_experts)
    gate = model.net[0].gate  # GRKAN: LayerNorm output, then sigmoid
    with torch.no_grad():
        gate.norm.weight.zero_()
        gate.norm.bias.fill_(-20.0)
        gate.norm.bias[winner] = 20.0
    return model


def test_forced_gate_gives_one_expert_all_wins():
    model = _forced_kamoe(winner=2)
    X = np.random.default_rng(0).uniform(-1, 1, (100, 2)).astype(np.float32)
    gw = gate_weights(model, X)
    (path, w), = gw.items()
    assert w.raw.shape == (100, 3) and not w.per_step
    np.testing.assert_allclose(w.normalised.sum(-1), 1.0, atol=1e-12)
    summary = routing_summary(gw)
    assert summary.loc[summary.expert == 2, "win_share"].item() == 1.0
    assert summary.loc[summary.expert == 2, "mean_normalised"].item() > 0.999
    assert routing_entropy(w.normalised).max() < 1e-6


def test_entropy_of_uniform_weights_is_log_e():
    w = np.full((5, 4), 0.7)  # sigmoid-like, not summing to 1: normalised first
    np.testing.assert_allclose(routing_entropy(w), math.log(4))
    assert max_entropy(4) == pytest.approx(math.log(4))


def test_group_breakdown_sees_regimes_routed_differently():
    ds = _dataset(groups=True)
    torch.manual_seed(0)
    model = build("moe-mlp", (2,), 1, hidden=[4], n_experts=2, gate="linear",
                  gate_activation="softmax")
    moe = model.net[0]
    with torch.no_grad():  # gate sees relu(10 x0) and relu(-10 x0): expert 0 on the right
        moe.gate_dense.weight.zero_()
        moe.gate_dense.bias.zero_()
        moe.gate_dense.weight[0, 0], moe.gate_dense.weight[1, 0] = 10.0, -10.0
        moe.gate.linear.weight.zero_()
        moe.gate.linear.bias.zero_()
        moe.gate.linear.weight[0, 0], moe.gate.linear.weight[1, 1] = 10.0, 10.0
    groups, name = dataset_groups(ds, "test")
    assert name == "side"
    df = routing_by_group(model, ds.X_test, groups, name)
    win = df.set_index(["group", "expert"])["win_share"]
    assert win[("right", 0)] == 1.0 and win[("left", 1)] == 1.0
    assert (df.groupby("group")["mean_weight"].sum() - 1).abs().max() < 1e-9


def test_quantile_and_class_groups():
    y = np.arange(100, dtype=float)
    g = quantile_groups(y, q=4)
    assert len(g.categories) == 4 and g.categories[0].startswith("[0, ")
    assert g.categories[-1].endswith("99]")
    assert np.bincount(g.codes).tolist() == [25, 25, 25, 25]
    c = class_groups(np.array([0, 2, 1]), ["a", "b", "c"])
    assert list(c) == ["a", "c", "b"]


def test_routing_recorder_collects_one_row_per_epoch_and_expert():
    ds = _dataset()
    model = build("kamoe-mlp", (2,), 1, hidden=[4], n_experts=3)
    rec = RoutingRecorder(ds.X_train, max_rows=64)
    fit(model, ds, TrainConfig(epochs=3, patience=None, batch_size=64), callback=rec)
    df = rec.frame()
    assert len(df) == 3 * 3
    assert sorted(df.epoch.unique()) == [1, 2, 3]
    assert (df.groupby("epoch")["win_share"].sum() - 1).abs().max() < 1e-9
    assert df.entropy.between(0, math.log(3) + 1e-9).all()


def test_mlp_kan_counts_and_kind_shares():
    X = np.random.default_rng(0).uniform(-1, 1, (50, 6)).astype(np.float32)
    model = build("mlp-kan", (6,), 1, n_experts=4, k=2)
    (path, s), = router_stats(model, X).items()
    assert s.selection_counts().sum() == 50 * 1 * 2
    assert sum(s.kind_shares().values()) == pytest.approx(1.0)
    tf = build("mlp-kan-transformer", (6,), 1, depth=2, n_experts=4, k=2)
    stats = router_stats(tf, X)
    assert len(stats) == 2
    for s in stats.values():
        tokens = s.probs.shape[0] * s.probs.shape[1]
        assert s.probs.shape[0] == 50
        assert s.selection_counts().sum() == tokens * 2
        np.testing.assert_allclose(s.tokens.sum(-1), 1.0, atol=1e-5)
    ks = kind_shares(stats)
    assert np.allclose(ks.groupby("gate")["selected_share"].sum(), 1.0)
    # skip_tokens=1 leaves out the [CLS] token: the share among the 6 feature tokens only
    s = stats[next(iter(stats))]
    kinds = np.asarray(s.expert_kinds)
    by_hand = float((kinds[s.chosen[:, 1:]] == "kan").mean())
    data_only = kind_shares(stats, skip_tokens=1)
    got = data_only[(data_only.gate == s.path) & (data_only.kind == "kan")]["selected_share"]
    assert float(got.iloc[0]) == pytest.approx(by_hand)
    assert s.selection_counts(skip_tokens=1).sum() == 50 * 6 * 2  # 6 feature tokens, k = 2
    summary = routing_summary(stats)
    assert set(summary.kind) == {"mlp", "kan"}
    by = routing_by_group(tf, X, quantile_groups(X[:, 0], 2), "x0")
    assert (by.groupby(["gate", "group"])["selected_share"].sum() - 1).abs().max() < 1e-9


def test_winner_map_on_two_inputs():
    ds = _dataset()
    model = _forced_kamoe(winner=1)
    xx, yy, winner, weights = winner_map(model, ds, resolution=12)
    assert xx.shape == yy.shape == winner.shape == (12, 12) and weights.shape == (12, 12, 3)
    assert (winner == 1).all()
    raw = ds.raw_X()
    assert xx.min() == pytest.approx(raw[:, 0].min()) and yy.max() == pytest.approx(
        raw[:, 1].max())


# ---------------------------------------------------------------------------- pruning


def _model_with_dead_node(ds: Dataset):
    torch.manual_seed(0)
    model = build("kan", (2,), 1, hidden=[4])
    with torch.no_grad():
        for p in ("base_weight", "spline_weight"):
            getattr(model.net.layers[0], p)[2] = 0.0  # incoming edges of hidden node 2
            getattr(model.net.layers[1], p)[:, 2] = 0.0  # its outgoing edges
    return model


def test_prune_removes_dead_node_and_keeps_predictions(tmp_path):
    ds = _dataset()
    model = _model_with_dead_node(ds)
    report = prune(model, ds, edge_threshold=0.0, node_threshold=0.01)
    assert report.removed_nodes == [(1, 2)]
    assert report.widths_before == [2, 4, 1] and report.widths_after == [2, 3, 1]
    assert report.params_after < report.params_before
    np.testing.assert_allclose(predict(report.model, ds.X_test), predict(model, ds.X_test),
                               atol=1e-5)
    assert report.metrics_after["r2"] == pytest.approx(report.metrics_before["r2"], abs=1e-5)
    save_model(report.model, tmp_path / "m", ds)
    loaded, _ = load_model(tmp_path / "m")
    np.testing.assert_allclose(predict(loaded, ds.X_test), predict(report.model, ds.X_test),
                               atol=1e-6)
    assert evaluate(loaded, ds)["r2"] == pytest.approx(report.metrics_after["r2"], abs=1e-6)


def test_cut_edges_contribute_zero_survive_save_and_retraining(tmp_path):
    ds = _dataset()
    torch.manual_seed(0)
    model = build("kan", (2,), 1, hidden=[4])
    cfg = TrainConfig(epochs=3, patience=None, batch_size=64)
    report = prune(model, ds, edge_threshold=0.3, node_threshold=0.0, retrain=True,
                   train_config=cfg)
    assert report.removed_edges and report.metrics_retrained is not None
    save_model(report.model, tmp_path / "m", ds)
    loaded, _ = load_model(tmp_path / "m")
    curves = edge_curves(loaded, ds.X_train)
    paths = list(curves)
    for li, j, i in report.removed_edges:
        assert np.all(curves[paths[li]].y[j, i] == 0.0)
        assert np.all(curves[paths[li]].sample_y[:, j, i] == 0.0)


def test_prune_rejects_other_models():
    with pytest.raises(ValueError, match="'kan' models"):
        prune(build("kamoe-kan", (2,), 1), _dataset())


def test_extend_grid_keeps_predictions_on_a_finer_grid():
    from kamoe.interpret.prune import extend_grid

    torch.manual_seed(0)
    model = build("kan", (2,), 1, hidden=[3], grid_size=3)
    with torch.no_grad():
        for layer in model.net.layers:
            layer.spline_weight.normal_(0, 0.3)
    X = np.random.default_rng(0).uniform(-1, 1, (500, 2)).astype(np.float32)
    finer = extend_grid(model, 10, X)
    assert finer.config["grid_size"] == 10 and model.config["grid_size"] == 3  # a new model
    # the hidden layer's knots follow the inputs it receives, so the whole stack is kept to
    # the spline fits' residual (1e-3 against outputs of order 1)
    np.testing.assert_allclose(predict(finer, X), predict(model, X), atol=1e-3)
    with pytest.raises(ValueError, match="grid_size"):
        extend_grid(model, 0, X)

# ---------------------------------------------------------------------------- issue 12


def test_one_naming_scheme_for_nodes_and_edges():
    from kamoe.interpret import (
        dataset_edge_curves,
        dataset_network_graph,
        dataset_node_names,
        edge_name,
        input_names,
        kan_node_names,
        kept_node_names,
        output_names,
    )

    ds = _dataset()
    torch.manual_seed(0)
    model = build("kan", (2,), 1, hidden=[3])
    names = dataset_node_names([2, 3, 1], ds)
    assert names == [["x0", "x1"], ["h1.0", "h1.1", "h1.2"], ["y"]]
    # The Splines curves, the network drawing and the Formula page's (layer, out, in) keys
    # all give an edge the same name.
    curves = dataset_edge_curves(model, ds)
    graph = dataset_network_graph(model, ds)
    for (li, path) in enumerate(["net.layers.0", "net.layers.1"]):
        lc = curves[path]
        for j in range(lc.out_features):
            for i in range(lc.in_features):
                assert lc.edge(j, i).label == edge_name(names, li, j, i)
    assert list(graph.edges["label"]) == [edge_name(names, r.layer, r.j, r.i)
                                          for r in graph.edges.itertuples()]
    assert list(graph.nodes["label"]) == [n for level in names for n in level]
    assert edge_name(names, 1, 0, 2) == "h1.2 \u2192 y"
    assert kan_node_names(model, ds) == names  # what the Formula page calls
    with pytest.raises(IndexError):
        edge_name(names, 2, 0, 0)
    # Windows of a sequence are named by lag, classes by target and class name.
    seq = Dataset(name="s", task="regression", kind="sequence", X_train=np.zeros((4, 3, 1)),
                  y_train=np.zeros((4, 1)), X_test=np.zeros((2, 3, 1)), y_test=np.zeros((2, 1)),
                  feature_names=["x"], target_names=["x_next"], x_scaling=Affine.identity(1))
    assert input_names(seq) == ["x[t-3]", "x[t-2]", "x[t-1]"]
    cls = Dataset(name="c", task="classification", kind="tabular", X_train=np.zeros((4, 2)),
                  y_train=np.array([0, 1, 2, 0]), X_test=np.zeros((2, 2)), y_test=np.zeros(2),
                  feature_names=["a", "b"], target_names=["species"],
                  x_scaling=Affine.identity(2), class_names=["setosa", "versicolor", "virginica"])
    assert output_names(cls, 3) == ["species setosa", "species versicolor", "species virginica"]
    assert kept_node_names(names, [(1, 1)]) == [["x0", "x1"], ["h1.0", "h1.2"], ["y"]]


def test_first_layer_curves_carry_raw_units_and_spline_base_parts():
    ds = _dataset(n=600)  # x_scaling: raw = 2 * x
    torch.manual_seed(0)
    model = build("kan", (2,), 1, hidden=[3])
    from kamoe.interpret import dataset_edge_curves

    curves = dataset_edge_curves(model, ds, max_rows=50)
    first, second = curves["net.layers.0"], curves["net.layers.1"]
    raw = ds.raw_X("train")
    np.testing.assert_allclose(first.raw_x, 2 * first.x)
    np.testing.assert_allclose(first.raw_x[:, [0, -1]], np.c_[raw.min(0), raw.max(0)],
                               atol=1e-6)  # the whole train range, not the 50 probe rows
    assert first.density_counts.sum(1).tolist() == [len(raw)] * 2
    np.testing.assert_allclose(first.raw_density_edges, 2 * first.density_edges)
    assert second.raw_x is None and second.raw_samples is None  # hidden inputs: no raw units
    layer = model.net.layers[0]
    with torch.no_grad():
        silu = torch.nn.functional.silu(torch.as_tensor(first.x, dtype=torch.float32)).numpy()
    base = layer.base_weight.detach().numpy()[:, :, None] * silu[None]
    np.testing.assert_allclose(first.base_y, base, atol=1e-6)
    np.testing.assert_allclose(first.spline_y + first.base_y, first.y, atol=1e-12)
    # The spline part alone is the B-spline sum with the control points' coefficients.
    with torch.no_grad():
        B = layer.b_splines(torch.as_tensor(first.x.T, dtype=torch.float32)).numpy()  # (P,in,m)
    spline = np.einsum("pim,jim->jip", B, first.control_y)
    np.testing.assert_allclose(first.spline_y, spline, atol=1e-5)
    edge = first.edge(2, 1)
    assert edge.raw_range == pytest.approx((raw[:, 1].min(), raw[:, 1].max()), abs=1e-6)
    assert edge.in_name == "x1" and edge.out_name == "h1.2"


def _labelled_routing(weights: np.ndarray, per_step: bool = False):
    from kamoe.interpret.routing import GateWeights, normalise_weights

    return GateWeights("net.0", "softmax", weights.shape[-1], weights,
                       normalise_weights(weights), per_step=per_step)


def test_specialisation_scores_a_split_high_and_uniform_routing_low():
    from sklearn.metrics import normalized_mutual_info_score

    from kamoe.interpret import (
        normalised_mutual_information,
        specialisation,
        specialisation_verdict,
    )

    groups = pd.Categorical(["calm", "wild", "calm", "wild"] * 25, categories=["calm", "wild"])
    codes = np.asarray(groups.codes)
    split = np.eye(2)[codes] * 0.9 + 0.05  # expert = group
    s = specialisation(_labelled_routing(split), groups, "regime")["net.0"]
    assert s.nmi == pytest.approx(1.0) and s.verdict.startswith("The experts split the regimes")
    assert s.table.loc["calm", 0] == 50 and s.table.loc["calm", 1] == 0
    uniform = np.full((100, 2), 0.5) + np.random.default_rng(0).normal(0, 1e-3, (100, 2))
    u = specialisation(_labelled_routing(uniform), groups, "regime")["net.0"]
    assert u.nmi < 0.05 and u.verdict.startswith("Routing is close to uniform")
    assert specialisation_verdict(0.02, 0.1, np.log(2), "class").startswith(
        "The gate makes choices, but not along the classes")
    assert specialisation_verdict(0.3, 0.1, np.log(2)).startswith("The experts partly")
    # The paper's gate on regimes: entropy 0.988 of log 3 = 1.099 is close to uniform.
    assert specialisation_verdict(0.41, 0.988, np.log(3), "regime").startswith(
        "Routing is close to uniform")
    # The same NMI as scikit-learn's (arithmetic normalisation) on noisy labelings.
    rng = np.random.default_rng(1)
    a = rng.integers(0, 3, 300)
    b = np.where(rng.random(300) < 0.6, a, rng.integers(0, 4, 300))
    assert normalised_mutual_information(a, b) == pytest.approx(
        normalized_mutual_info_score(a, b), abs=1e-12)
    assert normalised_mutual_information(np.zeros(5), np.arange(5)) == 0.0
    with pytest.raises(ValueError, match="same split"):
        specialisation(_labelled_routing(split), groups[:10], "regime")


def test_per_step_gates_are_compared_with_the_group_at_their_last_step():
    from kamoe.interpret import row_unit, sample_weights, specialisation

    groups = np.array([0, 1] * 20)
    w = np.full((40, 5, 2), 0.5)
    w[:, :4, :] = [0.9, 0.1]  # earlier steps (another regime) all favour expert 0
    w[:, -1, :] = np.eye(2)[groups] * 0.8 + 0.1  # the newest step follows the group
    s = _labelled_routing(w, per_step=True)
    assert row_unit(s) == "time steps"
    np.testing.assert_allclose(sample_weights(s), s.normalised[:, -1])
    assert specialisation(s, groups)["net.0"].nmi == pytest.approx(1.0)
    assert specialisation(s, groups, step="mean")["net.0"].nmi == 0.0  # the mean hides it
    with pytest.raises(ValueError, match="step"):
        sample_weights(s, "first")


def test_regimes_are_named_and_gates_read_as_words():
    from kamoe.data import load
    from kamoe.data.sequence import REGIME_NAMES
    from kamoe.interpret import gate_names

    ds = load("regimes", n=300, window=8)
    groups, name = dataset_groups(ds, "test")
    assert name == "regime" and list(groups.categories) == REGIME_NAMES
    assert list(groups.codes) == list(ds.groups_test)
    gru = build("kamoe-gru", (8, 1), 1)
    assert gate_names(gru) == {"net.0": "gate: GRKAN, sigmoid, 3 GRU experts"}
    fed = build("kamoe-gru", (8, 1), 1, gate_activation="softmax", gate_input="recurrent")
    assert gate_names(fed) == {
        "net.0": "gate: GRKAN, softmax, reads a GRU over the steps so far, 3 GRU experts"}
    two = build("moe-mlp", (3,), 1, hidden=[4, 4], gate_activation="softmax", gate_top_k=1)
    assert list(gate_names(two).values()) == [
        "gate of layer 1: GRN, softmax, top-1, 3 MLP experts",
        "gate of layer 2: GRN, softmax, top-1, 3 MLP experts"]
    tf = build("mlp-kan-transformer", (6,), 1, depth=2, n_experts=4, k=2)
    assert list(gate_names(tf).values()) == [
        "router of block 1: 4 experts (2 MLP + 2 KAN), top-2",
        "router of block 2: 4 experts (2 MLP + 2 KAN), top-2"]


def test_routing_recorder_breaks_epochs_down_by_group_and_report_is_json_ready():
    import json

    from kamoe.interpret import routing_report

    ds = _dataset(groups=True)
    torch.manual_seed(0)
    model = build("kamoe-mlp", (2,), 1, hidden=[4], n_experts=3)
    rec = RoutingRecorder(ds.X_train, max_rows=64)
    fit(model, ds, TrainConfig(epochs=2, patience=None, batch_size=64), callback=rec)
    groups, name = dataset_groups(ds, "train")
    by = rec.by_group(groups, name)
    assert sorted(by.epoch.unique()) == [1, 2] and set(by.group) == {"left", "right"}
    assert (by.groupby(["epoch", "group"])["mean_weight"].sum() - 1).abs().max() < 1e-6
    assert by.groupby(["epoch"])["n"].sum().tolist() == [64 * 3] * 2  # 64 probe rows, 3 experts
    nmi = rec.specialisation_frame(groups)
    assert len(nmi) == 2 and nmi.nmi.between(0, 1).all()
    with pytest.raises(ValueError, match="rows"):
        rec.by_group(groups[:10])
    report = routing_report(model, ds)
    assert report["group_by"] == "side" and 0 <= report["nmi"] <= 1
    assert report["gates"]["net.0"]["name"].startswith("gate: GRKAN")
    json.dumps(report)  # plain numbers and strings only
    assert routing_report(build("kan", (2,), 1), ds) is None


def test_class_thumbnails_average_each_class_image():
    from kamoe.data import load
    from kamoe.interpret import class_thumbnails

    ds = load("digits")
    images, names = class_thumbnails(ds, "train")
    assert images.shape == (10, 8, 8) and names == [str(d) for d in range(10)]
    raw = ds.raw_X("train")
    np.testing.assert_allclose(images[3], raw[ds.y_train == 3].mean(0))
    assert 0 <= images.min() and images.max() <= 16  # raw pixel intensities of sklearn digits
    with pytest.raises(ValueError, match="image classification"):
        class_thumbnails(_dataset())
