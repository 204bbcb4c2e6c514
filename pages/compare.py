"""Compare page: standard vs MoE (GRN gate) vs KAMoE (GRKAN gate) on the current dataset."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from kamoe import recipes, viz
from pages import ui_common as ui

s = ui.page_setup()
st.title("Compare")
ds, error, label = ui.current_dataset()
if ds is None:
    st.error(error or "No dataset.")
    st.stop()
st.caption(f"Dataset: **{label}**. Each variant gets the same short Adam schedule; a mixture "
           "wraps every hidden layer with 3 experts and a sigmoid gate (GRN for MoE, GRKAN for "
           "KAMoE), as in the KAMoE paper. (The Train page's own schedule for a plain KAN on a "
           "formula, LBFGS, fits far better than this short one.)")

bases = recipes.compare_bases(ds)
c = st.columns(4)
with c[0]:
    base_choice = ui.remembered(st.multiselect, "Expert type", "cmp_bases",
                                recipes.compare_default_bases(ds), options=bases)
    base_choice = [b for b in base_choice if b in bases]
with c[1]:
    widths = list(recipes.COMPARE_WIDTHS)
    units = ui.remembered(st.selectbox, "Hidden width (units)", "cmp_units",
                          recipes.COMPARE_WIDTH, options=widths)
with c[2]:
    epochs = ui.remembered(st.number_input, "Epochs per model", f"cmp_epochs_{ds.kind}",
                           recipes.compare_epochs(ds), min_value=1, max_value=500)
with c[3]:
    budget = ui.remembered(st.number_input, "Seconds per model (at most)", "cmp_budget",
                           recipes.COMPARE_SECONDS, min_value=1.0, max_value=120.0)

variants = recipes.compare_variants(ds, base_choice, int(units))
cj = s.compare
busy = cj is not None and cj.active
if st.button("Run comparison", type="primary", disabled=busy or not variants, key="cmp_run"):
    tcfg = recipes.compare_training_config(int(epochs), float(budget), seed=s.seed)
    cj = s.start_compare(ds, variants, tcfg)
    busy = True


def compare_progress() -> None:
    ui.job_progress(s.compare, "Comparing", "cmp")  # buttons cmp_cancel, cmp_stop as before


if busy:
    st.fragment(run_every=0.5)(compare_progress)()
if cj is not None:
    p = cj.progress()
    if p.status == "error":
        st.error(f"Comparison failed: {p.message}")
    rows = cj.result or []
    if rows:
        res = pd.DataFrame(rows)
        st.dataframe(res, hide_index=True)
        metric = "r2" if "r2" in res else "accuracy"
        ui.plot(viz.compare_bars(res, metric, theme=ui.theme()), key="cmp_bars")
        ui.explain("One bar per model trained just now with the same short schedule and seed. "
                   "Short runs favour fast learners; treat small differences as noise (the "
                   "paper averages 5 runs of up to a few hundred epochs).")

st.subheader("Published reference: California housing")
published = recipes.california_reference_table()
st.dataframe(published, hide_index=True)
baselines = ", ".join(f"{k} {v:.6f}" for k, v in recipes.CALIFORNIA_BASELINES.items())
st.caption(f"Source: {recipes.CALIFORNIA_SOURCE}. Non-network baselines on the same split: "
           f"{baselines}.")
long = recipes.california_reference(int(units))
if len(long):
    ui.plot(viz.compare_bars(pd.DataFrame(columns=["model", "r2"]), "r2", reference=long,
                             title=f"Published test R² with {units} units, one hidden layer",
                             theme=ui.theme()),
            key="cmp_ref")
    ui.explain("The numbers the KAMoE authors printed for California housing (mean of 5 runs). "
               "Load California housing on the Data page and run the comparison with the same "
               "width to put your own bars next to them.")
