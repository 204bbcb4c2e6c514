"""Formula page: the formula read from the run's KAN, how it was derived, and edge by edge."""

from __future__ import annotations

import pandas as pd
import streamlit as st
import sympy

from kamoe import viz
from kamoe.errors import USER_ERRORS
from kamoe.interpret import dataset_network_graph, edge_name, kan_node_names
from kamoe.symbolic import (
    LIBRARY,
    evaluate,
    r2_score,
    to_latex,
    to_python,
    to_sympy_string,
)
from kamoe.symbolic.expr import latex_name
from kamoe.symbolic.pipeline import METHODS, PATH_CHOICES
from pages import ui_common as ui

run, ds = ui.run_page("Formula")
session = ui.state()
theme = ui.theme()
st.caption(f"Run {run.label}")
if ds.task != "regression" or ds.output_dim != 1 or ds.kind != "tabular":
    st.info("Formulas are extracted for tabular regression data with one target (Feynman "
            "equations, Friedman #1, diabetes, California, a regression CSV). This run's data is "
            f"{ds.kind} {ds.task}.")
    st.stop()

net_r2 = (run.history.metrics.get("r2") if run.history else None)
symbols = [sympy.Symbol(n) for n in ds.feature_names]
target = (ds.target_names or ["y"])[0]
is_kan = run.supports_symbolic()
if is_kan:
    st.markdown(f"This run is a KAN {list(run.model.net.widths)}: the formula is **read from "
                "its edges**. Its structure tests split the problem into single edges, each read "
                "as a library function (`kan-tree`); failing that, its edges are snapped to "
                "library functions and the network retrained until it is the formula "
                "(`kan-snap`).")
else:
    st.info(f"This run is a `{run.model_name}`: a formula cannot be read from its weights. "
            "**Extract formula** trains a small KAN of its own on the data and reads that one, "
            "or searches the raw data; the result says which.")

# ---------------------------------------------------------------------------- automatic
st.subheader("Extract the formula")
fjob = session.formula_jobs.get(run.id)
busy = fjob is not None and fjob.running
c1, c2, c3 = st.columns([1, 2, 2])
limit = c1.number_input("Time limit (s)", min_value=5, max_value=300, value=60, step=5,
                        key="fx_limit")
where = c2.selectbox("Where the formula may come from", list(PATH_CHOICES), index=1,
                     key="fx_paths",
                     help="The KAN only: the formula must be read from a KAN. Then searches on "
                          "the data: a log-log and an index search on the raw data get their "
                          "turn when the KAN gives no exact formula (they say so).")
c3.write("")
if c3.button("Extract formula", type="primary", key="fx_extract", disabled=busy):
    fjob = session.start_formula(run, ds, float(limit), paths=PATH_CHOICES[where])
    busy = True


def formula_progress() -> None:
    j = session.formula_jobs.get(run.id)
    if ui.job_settled(j):
        return
    if j.queued:
        st.info(ui.queue_text(j), icon=":material/hourglass_top:")
        return
    p = j.progress()
    st.progress(p.fraction, text=f"Extracting: {p.text or 'starting...'}")


if busy:
    st.fragment(run_every=0.5)(formula_progress)()
elif fjob is not None and fjob.progress().status == "error":
    st.error(f"Extraction failed: {fjob.progress().message}")


def show_formula(expr: sympy.Expr, lhs: str) -> None:
    """The formula in a box that scrolls sideways instead of running off the page."""
    st.markdown(f'<div style="overflow-x: auto; padding: 0.25rem 0">\n\n$$\n{lhs} = '
                f"{to_latex(expr, digits=6)}\n$$\n\n</div>", unsafe_allow_html=True)
    if expr.atoms(sympy.Float):
        st.caption("Constants shown to 6 significant digits; the exports below keep them all.")


def show_derivation(result) -> None:
    """How the formula came out of the KAN: steps, the drawing, the pieces."""
    st.markdown("**How it was derived**")
    st.markdown("\n".join(f"{k}. {ui.plain(s)}" for k, s in enumerate(result.steps, 1)))
    if result.graph:
        ui.plot(viz.derivation_figure(result.graph, output=target, theme=theme), key="fx_tree")
        ui.explain("The formula as the tree it was read as. At the bottom, each point is one "
                   "KAN edge: a one-variable function read from the network's curve (its shape "
                   "is written beside it; its scale is refitted in the whole formula). Above "
                   "them the edges are combined: Σ adds blocks that do not interact, ∏ "
                   "multiplies blocks, u = a/b (or a*b, a-b) replaces two variables the network "
                   "only sees together, and a transform (squared, log of, ...) says the "
                   "structure appeared in that transform of the output.")
    elif result.network is not None:
        graph = dataset_network_graph(result.network, ds)
        ui.plot(viz.network_figure(graph, theme=theme,
                                   edge_functions=result.network.edge_functions(),
                                   title="The pruned KAN, every edge snapped to a function"),
                key="fx_snapped")
        ui.explain("The network after pruning, with every surviving edge snapped to the library "
                   "function written on it; the network, retrained around them, is the formula.")
    if result.edges is not None and len(result.edges):
        st.dataframe(result.edges, hide_index=True)


def show_result(result) -> None:
    """The extracted formula, where it came from, its accuracy, the verdict, exports."""
    show_formula(result.expr, latex_name(target))
    m = st.columns(4)
    m[0].metric("Formula R² (test)", f"{result.r2_test:.6f}")
    shown_net = result.network_r2 if result.network_r2 is not None else net_r2
    m[1].metric("Network R² (test)", "-" if shown_net is None else f"{shown_net:.6f}")
    m[2].metric("Method", result.method)
    m[3].metric("Seconds", f"{result.seconds:.1f}")
    said = METHODS.get(result.method, result.method)
    if result.from_kan:
        st.success(f"**{result.method}**: {said}.")
    else:
        st.warning(f"**{result.method}**: {said}.")
    if result.blame:
        st.warning("The formula is less accurate than the network. What causes it:\n\n"
                   + "\n".join(f"- {b}" for b in result.blame))
    if result.truth is not None:
        st.markdown("**Ground truth**")
        st.latex(f"{latex_name(target)} = {to_latex(result.truth)}")
        if result.recovered:
            st.success("Recovered: the formula is equivalent to the ground truth (SRBench's "
                       "rule: their difference or their ratio is a constant).")
        else:
            st.warning("Not recovered: the formula is not equivalent to the ground truth "
                       "(it may still be a good approximation; compare the R² values).")
    if result.steps:
        show_derivation(result)

    y_true = ds.raw_y("test").ravel()
    preds = {"network": ui.predictions(run.id, run, ds).ravel(),
             "formula": evaluate(result.expr, symbols, ds.raw_X("test"))}
    ui.plot(viz.pred_vs_true(y_true, preds, theme=theme), key="fx_pred")
    ui.explain("Each dot is a test sample: its true target on the x axis, a prediction on the y "
               "axis, for the trained network and for the extracted formula. Dots on the dashed "
               "line y = x are predicted exactly.")

    with st.expander("Search log"):
        st.code("\n".join(result.log) or "(empty)", language=None)

    st.subheader("Export")
    python = to_python(result.expr, list(ds.feature_names))
    exports = {"LaTeX": (result.latex, "latex", "formula.tex"),
               "Python": (python, "python", "formula.py"),
               "sympy": (to_sympy_string(result.expr), "python", "formula.sympy.txt")}
    tabs = st.tabs(list(exports))
    for tab, (name, (text, lang, fname)) in zip(tabs, exports.items(), strict=True):
        with tab:
            st.code(text, language=lang, wrap_lines=True)
            st.download_button(f"Download {name}", text, file_name=fname, key=f"dl_{name}")


result = run.formula  # the newest formula found for this run (kept in the run store)
if result is None:
    st.caption("Press **Extract formula** to read the formula out of the network.")
else:
    show_result(result)


# ---------------------------------------------------------------------------- per-edge
def edge_by_edge(state) -> None:
    """Candidates for one edge, manual overrides, and the formula composed from the edges."""
    st.subheader("Edge by edge")
    st.caption("Every edge of this KAN fitted on its own, as it is now (no pruning, no "
               "retraining): the raw material the extraction above works from.")
    names = kan_node_names(run.model, ds)
    keys = state.edge_keys()
    key = st.selectbox("Edge", keys, key="fx_edge", format_func=lambda k: edge_name(names, *k))
    with st.spinner("Fitting library functions to this edge..."), run.lock:
        cands = state.suggest(*key)
    table = pd.DataFrame([c.as_dict() for c in cands])
    st.dataframe(table[["function", "r2", "complexity", "score", "a", "b", "c", "d"]],
                 hide_index=True)
    ui.explain("Each row fits c·f(a·x + b) + d to this edge's learned curve, for a function f "
               "from the library. R² says how well it matches the curve (1 = perfectly), "
               "complexity how costly the function is; the score (lower is better) trades them "
               "off like pykan's `suggest_symbolic`.")
    c1, c2, c3 = st.columns([2, 1, 1])
    fn = c1.selectbox("Set this edge to", sorted(LIBRARY), key="fx_fn",
                      index=sorted(LIBRARY).index(cands[0].name) if cands else 0)
    if c2.button("Fix edge", key="fx_fix"):
        try:
            with run.lock:
                cand = state.fix(*key, fn)
            session.persist(run)
            st.toast(f"Edge {edge_name(names, *key)} set to {cand.name} (R² {cand.r2:.4f})")
        except USER_ERRORS as err:
            st.error(str(err))
    if c3.button("Clear manual choices", key="fx_clear"):
        with run.lock:
            for k in list(state.fixed):
                state.unfix(*k)
        session.persist(run)
    with run.lock:
        fixed = state.edges()
    fixed.insert(0, "edge", [edge_name(names, int(li), int(j), int(i)) for li, j, i in
                             zip(fixed["layer"], fixed["out"], fixed["in"], strict=True)])
    st.dataframe(fixed, hide_index=True, height=200)
    if st.button("Compose formula from the edges", key="fx_compose",
                 help="Fits every edge not fixed by hand to its best candidate and adds them up "
                      "as the network does, without retraining: usually long and less accurate "
                      "than the network, which is why the extraction above prunes, splits and "
                      "retrains."):
        with st.spinner("Fitting the remaining edges and composing..."), run.lock:
            state.auto()
            expr = state.formula()
        pred = evaluate(expr, symbols, ds.raw_X("test"))
        r2 = r2_score(pred, ds.raw_y("test").ravel())
        run.set_composed(expr, r2)
        session.persist(run)
    composed = run.composed
    if composed is not None:
        show_formula(composed.expr, latex_name(target))
        st.caption(f"Composed from the edges: test R² {composed.r2_test:.6f}"
                   + (f" (network: {net_r2:.6f})" if net_r2 is not None else ""))


state = run.symbolic_state(ds)  # the run owns it; use it under run.lock
if state is not None:
    edge_by_edge(state)
