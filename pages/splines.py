"""Splines page: the KAN drawn pykan-style, pruning and grid extension (before and after),
every edge curve of a layer, one edge in detail and snapped to a library function."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from kamoe import derive, recipes, viz
from kamoe.errors import USER_ERRORS
from kamoe.interpret import kan_chain
from pages import ui_common as ui

run, ds = ui.run_page("Splines")
session = ui.state()
theme = ui.theme()
layers = list(run.model.kan_layers())
if not layers:
    st.info(f"**{run.model_name}** has no KAN layers, so there are no spline edges to show. "
            "Train a `kan`, `kamoe-kan`, `moe-kan`, `fasterkan` or `mlp-kan` model.")
    st.stop()

st.caption(f"Run {run.label}")


# ---------------------------------------------------------------------------- network, prune, grid
def the_network() -> None:
    """The run's network, pykan-style."""
    st.subheader("The network")
    graph = ui.graph_data(run.id, run, ds)
    ui.plot(viz.network_figure(graph, theme=theme), key="net")
    ui.explain("Inputs at the bottom, the output at the top. Every line is one **edge**: a "
               "learned one-variable function φ(x), drawn as the small blue curve in the middle "
               "of the line, over the range of values that edge actually sees. Each node adds up "
               "the edges coming into it. Darker edges matter more (opacity = tanh(3 × "
               "importance), importance being how much the edge moves the output over the data, "
               "as in pykan); faint ones could be pruned.")


def derive_progress() -> None:
    """The running prune or grid job of this run; a full rerun when it has finished."""
    j = session.derive_job(run.id)
    ui.job_progress(j, j.label if j is not None else "", key="spl_job")


def before_and_after() -> None:
    """A derived run: its parent's network and its own, and what the step changed."""
    d = run.derivation
    parent = session.run(run.parent_id)
    step = "Pruned" if d.get("step") == derive.PRUNE else "Put on a finer grid"
    st.subheader("Before and after")
    st.caption(f"{step} from run {parent.label if parent else d.get('parent_name', '?')}.")
    st.dataframe(pd.DataFrame(derive.derivation_summary(d)), hide_index=True)
    left, right = st.columns(2)
    with left:
        if parent is None:
            st.info("The parent run is no longer in the store, so it cannot be drawn.")
        else:
            try:
                session.ensure_model(parent)
                ui.plot(viz.network_figure(ui.graph_data(parent.id, parent, ds), theme=theme,
                                           title="Before"), key="net_before")
            except USER_ERRORS as err:
                st.warning(f"The parent run cannot be drawn: {err}")
    with right:
        ui.plot(viz.network_figure(ui.graph_data(run.id, run, ds), theme=theme,
                                   title="After"), key="net_after")
    if parent is not None and parent.model is not None and d.get("step") == derive.EXTEND_GRID:
        sharpening(parent, d)
    ui.explain("The table gives the test error, the widths and the parameter counts before and "
               "after. Left the network this run was made from, right this run. Pruning "
               "removes hidden nodes whose attribution score is below the node threshold and "
               "cuts edges whose score is below the edge threshold (cut edges are not drawn), "
               "as pykan's `prune()`; a finer grid refits every edge's spline on more intervals "
               "and retrains, so the curves can follow sharper features.")


def sharpening(parent, d) -> None:
    """The most important edge of the first layer on the old grid and on the new one."""
    path = kan_chain(run.model)[0][0]
    after = ui.edge_data(run.id, path, run, ds)[path]
    before = ui.edge_data(parent.id, path, parent, ds)[path]
    j, i = after.ranked()[0]
    settings = d.get("settings") or {}
    left, right = st.columns(2)
    left.plotly_chart(viz.edge_detail(before.edge(j, i), theme=theme,
                                      title=f"Grid {settings.get('grid_before')}: "
                                            f"{before.edge(j, i).label}"),
                      width="stretch", key="edge_before")
    right.plotly_chart(viz.edge_detail(after.edge(j, i), theme=theme,
                                       title=f"Grid {settings.get('grid_size')}: "
                                             f"{after.edge(j, i).label}"),
                       width="stretch", key="edge_after")


def derive_controls() -> None:
    """Prune and extend-grid controls for a plain KAN run; both make a new run beside it."""
    st.subheader("Prune or refine this KAN")
    j = session.derive_job(run.id)
    busy = j is not None and j.active
    defaults = recipes.PRUNE_DEFAULTS
    c1, c2 = st.columns(2)
    with c1.form("prune_form", border=True):
        st.markdown("**Prune by importance**")
        edge_t = st.number_input("Edge threshold", min_value=0.0, value=defaults["edge_threshold"],
                                 step=0.01, format="%.3f", key="spl_edge_t",
                                 help="Edges scoring below this are cut (set to exactly zero).")
        node_t = st.number_input("Node threshold", min_value=0.0, value=defaults["node_threshold"],
                                 step=0.01, format="%.3f", key="spl_node_t",
                                 help="Hidden nodes scoring below this are removed.")
        retrain = st.checkbox("Retrain after pruning", value=False, key="spl_retrain",
                              help="Train the smaller network again; cut edges stay at zero.")
        go_prune = st.form_submit_button("Prune", disabled=busy, type="primary")
    grid = int(run.model.config["grid_size"])
    with c2.form("grid_form", border=True):
        st.markdown("**Extend the grid**")
        new_grid = st.selectbox(f"New grid (now {grid} intervals)", recipes.finer_grids(grid),
                                key="spl_grid", help="Every edge's spline is refitted on the "
                                "finer grid (pykan's refine), then the network is retrained.")
        go_grid = st.form_submit_button("Extend grid and retrain", disabled=busy)
    try:
        if go_prune:
            session.start_prune(run, ds, edge_t, node_t, retrain)
            busy = True
        elif go_grid:
            session.start_extend_grid(run, ds, int(new_grid))
            busy = True
    except USER_ERRORS as err:
        st.error(f"Nothing was changed: {err}")
    if busy:
        st.fragment(run_every=0.5)(derive_progress)()
    ui.explain("Both make a **new run** next to this one (this run is kept as it is) and open "
               "it here, with the network before and after. Scores are pykan's attribution "
               "scores on the training data; with the defaults only edges and nodes that carry "
               "almost nothing are removed. Retraining uses the same schedule as the first "
               "training.")


chain = kan_chain(run.model)
if not chain:
    st.info("This model is not a plain KAN stack; choose one of its KAN layers (inside an expert, "
            "a gate or a router) below.")
else:
    problem = derive.derive_problem(run)
    note = session.notice  # the outcome of a prune / grid job started here
    if note and (session.derive_job(run.id) or session.derive_job(run.parent_id)):
        getattr(st, note[0])(note[1])
    if run.derivation:  # its network drawn beside its parent's
        before_and_after()
    else:
        the_network()
    if problem is None:
        derive_controls()
    else:
        st.caption(f"Pruning and grid extension: {problem}.")

st.subheader("All edges of a layer")
path = st.selectbox("KAN layer", layers, key="spl_layer",
                    help="Module path of the layer inside the model (experts and gates included).")
curves = ui.edge_data(run.id, path, run, ds)[path]
ui.plot(viz.layer_grid(curves, theme=theme), key="grid")
ui.explain("One small plot per edge of the chosen layer: rows are the layer's outputs, columns "
           "its inputs. The number in each title is the edge importance (1 = the most important "
           "edge of the layer). Curves that are straight lines are almost linear edges; flat or "
           "faint ones contribute little.")

st.subheader("One edge in detail")
ranked = curves.ranked()
choice = st.selectbox("Edge (most important first)", ranked, key="spl_edge",
                      format_func=lambda e: f"{curves.in_names[e[1]]} → {curves.out_names[e[0]]}"
                                            f"  (importance {curves.importance[e]:.3f})")
edge = curves.edge(*choice)
symbolic = run.symbolic_state(ds)  # the Formula page's per-edge fits (plain B-spline KANs)
fitted = None
if symbolic is not None and path in symbolic.paths:
    key = (symbolic.paths.index(path), int(choice[0]), int(choice[1]))
    if st.toggle("Snap this edge to a library function", key="spl_snap",
                 help="Fit the library's functions to this edge and draw one over its curve."):
        with st.spinner("Fitting library functions to this edge..."), run.lock:
            cands = symbolic.suggest(*key)
        st.dataframe(pd.DataFrame([c.as_dict() for c in cands])[
            ["function", "r2", "complexity", "score", "a", "b", "c", "d"]], hide_index=True)
        names = [c.name for c in cands]
        s1, s2 = st.columns([3, 1])
        fn = s1.selectbox("Function drawn over the curve", names, key="spl_fn",
                          help="The library's best fits c·f(a·x + b) + d for this edge, best "
                               "first (the Formula page's edge-by-edge fits).")
        cand = cands[names.index(fn)] if fn in names else None
        if cand is not None:
            fitted = (f"{cand.name} (R² {cand.r2:.4f})", cand(edge.x))
            s2.write("")
            if s2.button("Fix edge", key="spl_fix",
                         help="Keep this choice for the formula composed edge by edge on the "
                              "Formula page."):
                try:
                    with run.lock:
                        symbolic.fix(*key, cand)
                    session.persist(run)
                    st.toast(f"Edge {edge.label} set to {cand.name} (R² {cand.r2:.4f})")
                except USER_ERRORS as err:
                    st.error(str(err))
ui.plot(viz.edge_detail(edge, theme=theme, fitted=fitted), key="edge")
ui.explain("The blue line is the edge function φ(x). Grey dots are the training samples as this "
           "edge saw them; red diamonds are the spline's control points (the coefficients the "
           "training adjusts); the bars below show where the data lies. Outside the shaded data "
           "range the curve is an extrapolation and should not be trusted. A function snapped "
           "to the edge (above) is drawn dash-dotted over the curve.")
