"""Compare page: standard vs MoE (GRN gate) vs KAMoE (GRKAN gate) on the current dataset."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from kamoe import viz
from kamoe.models import SEQUENCE_MODELS
from kamoe.session import compare_job
from kamoe.train import TrainConfig
from pages import ui_common as ui

# Published numbers: mean test R² over 5 runs, one hidden layer ("L1") and two ("L2"), from
# remigenet/KAMoE example/california.ipynb outputs (copied from reference/papers.md, 3.1).
PUBLISHED = pd.DataFrame([
    # units, base, standard L1, MoE L1, KAMoE L1, standard L2, MoE L2, KAMoE L2
    (5, "MLP", 0.695289, 0.755335, 0.752789, 0.727915, 0.761690, 0.763694),
    (10, "MLP", 0.733158, 0.763681, 0.767538, 0.754998, 0.768585, 0.774749),
    (25, "MLP", 0.750549, 0.774601, 0.775091, 0.773301, 0.782786, 0.777165),
    (50, "MLP", 0.756356, 0.774212, 0.776886, 0.781340, 0.784505, 0.786277),
    (100, "MLP", 0.761965, 0.781769, 0.780725, 0.790260, 0.788451, 0.790828),
    (5, "KANLinear", 0.620885, 0.758368, 0.767117, 0.691055, 0.768889, 0.761571),
    (10, "KANLinear", 0.621456, 0.767680, 0.764963, 0.705004, 0.770872, 0.777266),
    (25, "KANLinear", 0.621420, 0.771841, 0.768027, 0.698830, 0.766608, 0.769552),
    (50, "KANLinear", 0.621627, 0.775355, 0.775916, 0.699258, 0.760907, 0.765173),
    (100, "KANLinear", 0.621219, 0.780125, 0.782804, 0.692991, 0.761956, 0.765253),
], columns=["units", "base", "standard L1", "MoE L1", "KAMoE L1", "standard L2", "MoE L2",
            "KAMoE L2"])
SOURCE = "remigenet/KAMoE example/california.ipynb outputs (mean test R² of 5 runs, Keras)"

ui.page_setup()
st.title("Compare")
ds, error, label = ui.current_dataset()
if ds is None:
    st.error(error or "No dataset.")
    st.stop()
st.caption(f"Dataset: **{label}**. Each variant gets the same short Adam schedule; a mixture "
           "wraps every hidden layer with 3 experts and a sigmoid gate (GRN for MoE, GRKAN for "
           "KAMoE), as in the KAMoE paper.")

seq = ds.kind == "sequence"
bases = ["gru", "lstm"] if seq else ["mlp", "kan"]
c = st.columns(4)
base_choice = c[0].multiselect("Expert type", bases, default=bases[:1] if seq else bases,
                               key="cmp_bases")
units = c[1].selectbox("Hidden width (units)", [5, 10, 25, 50, 100], index=1, key="cmp_units")
epochs = c[2].number_input("Epochs per model", 1, 500, 15 if not seq else 5, key="cmp_epochs")
budget = c[3].number_input("Seconds per model (at most)", 1.0, 120.0, 10.0, key="cmp_budget")

variants = []
for b in base_choice:
    for prefix in ("", "moe-", "kamoe-"):
        name = f"{prefix}{b}"
        if name in SEQUENCE_MODELS and not seq:
            continue
        cfg = {"units": int(units)} if b in ("gru", "lstm") else {"hidden": [int(units)]}
        if b == "kan" and not prefix:
            cfg["head"] = "linear"
        variants.append((name, cfg))

cj = st.session_state.get("compare_job")
busy = cj is not None and cj.running
if st.button("Run comparison", type="primary", disabled=busy or not variants, key="cmp_run"):
    tcfg = TrainConfig(epochs=int(epochs), optimizer="adam", lr=1e-2, batch_size=128,
                       max_seconds=float(budget), patience=None,
                       seed=int(st.session_state.get("seed", 0)))
    st.session_state["compare_job"] = cj = compare_job(ds, ui.dataset_key(), label, variants,
                                                       tcfg).start()
    busy = True


def compare_progress() -> None:
    j = st.session_state.get("compare_job")
    if j is None:
        return
    if not j.running:
        if not j.collected:
            j.collected = True
            st.rerun()
        return
    p = j.progress()
    st.progress(p.fraction, text=p.text or "starting...")
    if st.button("Stop", key="cmp_stop"):
        j.request_stop()


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
        ui.plot(viz.compare_bars(res, metric), key="cmp_bars")
        ui.explain("One bar per model trained just now with the same short schedule and seed. "
                   "Short runs favour fast learners; treat small differences as noise (the "
                   "paper averages 5 runs of up to a few hundred epochs).")

st.subheader("Published reference: California housing")
st.dataframe(PUBLISHED, hide_index=True)
st.caption(f"Source: {SOURCE}. Non-network baselines on the same split: RandomForest 0.774564, "
           "SVR 0.727564, LinearRegression 0.575788, XGBoost 0.537515.")
ref = PUBLISHED[PUBLISHED["units"] == units]
if len(ref):
    long = pd.DataFrame([{"model": f"{r.base} {v}", "r2": getattr(r, v.replace(" ", "_"))}
                         for r in ref.rename(columns=lambda s: s.replace(" ", "_")).itertuples()
                         for v in ("standard L1", "MoE L1", "KAMoE L1")])
    ui.plot(viz.compare_bars(pd.DataFrame(columns=["model", "r2"]), "r2", reference=long,
                             title=f"Published test R² with {units} units, one hidden layer"),
            key="cmp_ref")
    ui.explain("The numbers the KAMoE authors printed for California housing (mean of 5 runs). "
               "Load California housing on the Data page and run the comparison with the same "
               "width to put your own bars next to them.")
