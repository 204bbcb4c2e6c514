"""Formula page: symbolic candidates per edge, manual overrides, automatic formula extraction."""

from __future__ import annotations

import pandas as pd
import streamlit as st
import sympy

from kamoe import viz
from kamoe.errors import USER_ERRORS
from kamoe.symbolic import (
    LIBRARY,
    evaluate,
    r2_score,
    to_latex,
    to_python,
    to_sympy_string,
)
from pages import ui_common as ui

run, ds = ui.run_page("Formula")
session = ui.state()
st.caption(f"Run {run.label}")
if ds.task != "regression" or ds.output_dim != 1 or ds.kind != "tabular":
    st.info("Formulas are extracted for tabular regression data with one target (Feynman "
            "equations, Friedman #1, diabetes, California, a regression CSV). This run's data is "
            f"{ds.kind} {ds.task}.")
    st.stop()

net_r2 = (run.history.metrics.get("r2") if run.history else None)
symbols = [sympy.Symbol(n) for n in ds.feature_names]

# ---------------------------------------------------------------------------- per-edge
state = run.symbolic_state(ds)  # the run owns it; use it under run.lock
if state is None:
    st.info(f"Per-edge symbolic fitting needs a plain B-spline KAN (model `kan`); this run is "
            f"`{run.model_name}`. **Extract formula** below still searches a formula from the "
            "data (and trains its own small KAN when needed).")

# ---------------------------------------------------------------------------- automatic
st.subheader("Automatic extraction")
fjob = session.formula_jobs.get(run.id)
busy = fjob is not None and fjob.running
c1, c2 = st.columns([1, 3])
limit = c1.number_input("Time limit (s)", min_value=5, max_value=300, value=30, step=5,
                        key="fx_limit")
if c2.button("Extract formula", type="primary", key="fx_extract", disabled=busy):
    fjob = session.start_formula(run, ds, float(limit))
    busy = True


def formula_progress() -> None:
    j = session.formula_jobs.get(run.id)
    if j is None:
        return
    if not j.running:
        if not j.collected:
            st.rerun()
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



def show_result(result) -> None:
    """The extracted formula, its accuracy, the ground truth verdict, plots and exports."""

    st.latex(f"{(ds.target_names or ['y'])[0]} = {result.latex}")
    m = st.columns(4)
    m[0].metric("Formula R² (test)", f"{result.r2_test:.6f}")
    m[1].metric("Network R² (test)", "-" if net_r2 is None else f"{net_r2:.6f}")
    m[2].metric("Method", result.method)
    m[3].metric("Seconds", f"{result.seconds:.1f}")
    if result.truth is not None:
        st.markdown("**Ground truth**")
        st.latex(f"{(ds.target_names or ['y'])[0]} = {to_latex(result.truth)}")
        if result.recovered:
            st.success("Recovered: the formula is equivalent to the ground truth.")
        else:
            st.warning("Not recovered: the formula is not equivalent to the ground truth "
                       "(it may still be a good approximation; compare the R² values).")

    y_true = ds.raw_y("test").ravel()
    preds = {"network": ui.predictions(run.id, run, ds).ravel(),
             "formula": evaluate(result.expr, symbols, ds.raw_X("test"))}
    ui.plot(viz.pred_vs_true(y_true, preds), key="fx_pred")
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
            st.code(text, language=lang)
            st.download_button(f"Download {name}", text, file_name=fname, key=f"dl_{name}")


result = run.formula  # the newest formula found for this run (kept in the run store)
if result is None:
    st.caption("Press **Extract formula**: it tries an exact monomial fit, then index "
               "searches, then fits every edge of a KAN, and keeps the best formula.")
else:
    show_result(result)

def edge_by_edge(state) -> None:
    """Candidates for one edge, manual overrides, and the formula composed from the edges."""
    st.subheader("Edge by edge")
    keys = state.edge_keys()
    key = st.selectbox("Edge (layer, out, in)", keys, key="fx_edge",
                       format_func=lambda k: f"layer {k[0]}: input {k[2]} → node {k[1]}")
    with st.spinner("Fitting library functions to this edge..."), run.lock:
        cands = state.suggest(*key)
    table = pd.DataFrame([c.as_dict() for c in cands])
    st.dataframe(table[["function", "r2", "complexity", "score", "a", "b", "c", "d"]],
                 hide_index=True)
    ui.explain("Each row fits c·f(a·x + b) + d to this edge's learned curve, for a function f "
               "from the library. R² says how well it matches the curve (1 = perfectly), "
               "complexity how costly the function is; the score (lower is better) trades them "
               "off like pykan's `suggest_symbolic`. The top row is what the automatic mode "
               "would pick.")
    c1, c2, c3 = st.columns([2, 1, 1])
    fn = c1.selectbox("Set this edge to", sorted(LIBRARY), key="fx_fn",
                      index=sorted(LIBRARY).index(cands[0].name) if cands else 0)
    if c2.button("Fix edge", key="fx_fix"):
        try:
            with run.lock:
                cand = state.fix(*key, fn)
            session.persist(run)
            st.toast(f"Edge {key} set to {cand.name} (R² {cand.r2:.4f})")
        except USER_ERRORS as err:
            st.error(str(err))
    if c3.button("Clear manual choices", key="fx_clear"):
        with run.lock:
            for k in list(state.fixed):
                state.unfix(*k)
        session.persist(run)
    with run.lock:
        fixed = state.edges()
    st.dataframe(fixed, hide_index=True, height=200)
    if st.button("Compose formula from the edges", key="fx_compose"):
        with st.spinner("Fitting the remaining edges and composing..."), run.lock:
            state.auto()
            expr = state.formula()
        pred = evaluate(expr, symbols, ds.raw_X("test"))
        r2 = r2_score(pred, ds.raw_y("test").ravel())
        run.set_composed(expr, r2)
        session.persist(run)
    composed = run.composed
    if composed is not None:
        expr, r2 = composed.expr, composed.r2_test
        st.latex(to_latex(expr))
        st.caption(f"Composed from the edges: test R² {r2:.6f} (network: "
                   f"{net_r2:.6f})" if net_r2 is not None else f"test R² {r2:.6f}")



if state is not None:
    edge_by_edge(state)
