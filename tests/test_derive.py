"""Derived runs (kamoe/derive.py) through the session state (kamoe/state.py): a trained KAN
pruned or put on a finer grid becomes a new run beside its parent, saved to the run store and
reloaded with its derivation; runs that cannot be derived and bad settings get clear messages."""

from __future__ import annotations

import pytest

from kamoe import derive, recipes
from kamoe.interpret import dataset_network_graph
from kamoe.jobs import ERROR, JobQueue
from kamoe.recipes import training_config
from kamoe.state import SessionState
from kamoe.store import RunStore

BIG = 1e9  # above any attribution score: every hidden node but a level's best goes, see prune()


def session(home) -> SessionState:
    s = SessionState(RunStore(home), JobQueue(capacity=1))
    s.data.options["feynman"]["n"] = 300  # small data, quick fits
    return s


def trained(s: SessionState, model: str = "kan", **config):
    ds = s.request().load()
    job = s.start_training(ds, model, {"hidden": [5], **config},
                           training_config(model, ds, epochs=4))
    assert job.join(120)
    s.collect()
    return s.active_run(), ds


def finish(s: SessionState, job) -> None:
    assert job.join(120)
    assert s.collect()


def drawn(model, ds) -> tuple[int, int]:
    """(nodes, edges not cut) of the network drawing's graph."""
    g = dataset_network_graph(model, ds)
    return len(g.nodes), int((~g.edges["cut"]).sum())


def test_pruning_shrinks_the_drawn_network_and_the_run_reloads_with_its_derivation(tmp_path):
    s = session(tmp_path)
    parent, ds = trained(s)
    finish(s, s.start_prune(parent, ds, edge_threshold=0.0, node_threshold=BIG))
    child = s.active_run()
    assert child is not parent and child.parent_id == parent.id and s.notice[0] == "success"
    assert [r.id for r in s.runs] == [parent.id, child.id] and child.stored
    d = child.derivation
    assert d["step"] == derive.PRUNE and d["widths_before"] == [2, 5, 1]
    assert d["widths_after"] == [2, 1, 1] and d["params_after"] < d["params_before"]
    # 5 + 2 = 7 nodes and 2*5 + 5*1 = 15 edges before; 2 + 1 + 1 nodes and 2 + 1 edges after.
    assert drawn(parent.model, ds) == (8, 15) and drawn(child.model, ds) == (4, 3)
    rows = {r["quantity"]: r for r in derive.derivation_summary(d)}
    assert rows["widths"] == {"quantity": "widths", "before": "[2, 5, 1]", "after": "[2, 1, 1]"}
    assert rows["parameters"]["after"] == str(child.model.n_params())
    assert "test R²" in rows and "before retraining" not in rows["test R²"]  # no retraining
    # The pruned hidden node keeps its label; labels of all levels match the new widths.
    assert [len(level) for level in child.node_labels(ds)] == [2, 1, 1]
    # A new session (a browser refresh) lists it from the store, derivation included.
    again = session(tmp_path)
    listed = again.run(child.id)
    assert listed.derivation == d and listed.model is None
    model = again.ensure_model(listed)
    assert list(model.net.widths) == [2, 1, 1]


def test_pruning_with_retraining_keeps_cut_edges_at_zero(tmp_path):
    s = session(tmp_path)
    parent, ds = trained(s)
    # edge_threshold 0.3 of the normalised edge scores cuts the weaker edges (there are some:
    # 15 edges cannot all score >= 0.3 when the scores are pykan's attribution, summing per node)
    finish(s, s.start_prune(parent, ds, edge_threshold=0.3, node_threshold=0.0, retrain=True))
    child = s.active_run()
    cut = child.derivation["removed_edges"]
    assert cut and child.derivation["settings"]["retrain"] is True
    r2 = next(r for r in derive.derivation_summary(child.derivation)
              if r["quantity"] == "test R²")
    assert list(r2) == ["quantity", "before", "before retraining", "after"]
    g = dataset_network_graph(child.model, ds)
    for layer, j, i in cut:
        row = g.edges[(g.edges.layer == layer) & (g.edges.j == j) & (g.edges.i == i)]
        assert bool(row["cut"].iloc[0])


def test_grid_extension_gives_a_run_on_the_finer_grid(tmp_path):
    s = session(tmp_path)
    parent, ds = trained(s)
    before = parent.model.config["grid_size"]
    finer = recipes.finer_grids(before)
    assert finer and all(g > before for g in finer)
    finish(s, s.start_extend_grid(parent, ds, finer[0]))
    child = s.active_run()
    assert child.parent_id == parent.id and child.model.config["grid_size"] == finer[0]
    assert child.model_config["grid_size"] == finer[0]
    assert child.derivation["settings"] == {"grid_before": before, "grid_size": finer[0]}
    assert RunStore(tmp_path).get(child.id).derivation["step"] == derive.EXTEND_GRID


def test_bad_settings_and_other_models_get_clear_messages(tmp_path):
    s = session(tmp_path)
    parent, ds = trained(s)
    with pytest.raises(derive.DeriveError, match="more intervals than the current"):
        s.start_extend_grid(parent, ds, parent.model.config["grid_size"])
    with pytest.raises(derive.DeriveError, match=">= 0"):
        s.start_prune(parent, ds, edge_threshold=-1.0)
    with pytest.raises(derive.DeriveError, match="nothing scores below the thresholds"):
        derive.prune_run(parent, ds, edge_threshold=0.0, node_threshold=0.0)  # nothing < 0
    with pytest.raises(derive.DeriveError, match="numbers >= 0"):
        s.start_prune(parent, ds, node_threshold="a lot")
    # Refused in the job too (a caller that skips the queue's check): a notice, nothing lost.
    job = s.queue.submit(derive._job(derive.prune_run, parent, ds, "pruning", None,
                                     edge_threshold=float("nan")))
    s.derive_jobs[parent.id] = job
    assert job.join(60) and s.collect()
    assert job.status == ERROR and s.notice[0] == "error" and ">= 0" in s.notice[1]
    assert len(s.runs) == 1
    mlp, _ = trained(s, model="mlp")
    assert "plain B-spline KAN" in derive.derive_problem(mlp)
    with pytest.raises(derive.DeriveError, match="plain B-spline KAN"):
        s.start_prune(mlp, ds)


def test_the_regimes_gate_default_applies_to_kamoe_recurrent_models_on_regimes_only():
    from dataclasses import replace

    from kamoe.data import load
    from kamoe.models import default_config as registry_config

    regimes = load("regimes", n=400)
    other_series = replace(regimes, name="crypto")  # the same shapes under another name
    for name in ("kamoe-gru", "kamoe-lstm"):
        conf = recipes.model_config(name, regimes)
        assert {k: conf[k] for k in recipes.REGIMES_MIXTURE} == recipes.REGIMES_MIXTURE
        assert training_config(name, regimes).aux_weight == recipes.REGIMES_AUX_WEIGHT
        # elsewhere the registry's (the paper's) gate and no routing term
        assert recipes.model_config(name, other_series) == registry_config(name)
        assert registry_config(name)["gate_activation"] != "softmax"
        assert training_config(name, other_series).aux_weight != recipes.REGIMES_AUX_WEIGHT
    assert recipes.model_config("gru", regimes) == registry_config("gru")
    moons = load("moons")
    assert recipes.model_config("kamoe-mlp", moons) == registry_config("kamoe-mlp")
