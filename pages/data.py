"""Data page: choose a dataset (Feynman equation, built-ins, crypto folder, CSV upload)."""

from __future__ import annotations

import streamlit as st
import sympy

from kamoe import viz
from kamoe.data import feynman_equation, feynman_ids
from pages import ui_common as ui

ui.page_setup()
st.title("Data")
st.caption("Pick the data to learn from. The choice is kept when you move to other pages.")

left, right = st.columns([1, 2])
with left:
    family = ui.persistent(st.selectbox, "Dataset", "family", options=ui.FAMILIES,
                           format_func=lambda f: ui.FAMILY_LABELS[f])
    entry = ui.CATALOG[family]
    st.caption(entry["description"])
    if family == "feynman":
        ids = feynman_ids()

        def _eq_label(i: str) -> str:
            return f"{i}: {feynman_equation(i).title}"

        eq_id = ui.persistent(st.selectbox, "Feynman equation", "eq_id", options=ids,
                              format_func=_eq_label)
    elif family == "california":
        ui.persistent(st.text_input, "Data folder (data home)", "data_home",
                      help="Folder holding scikit-learn's cal_housing cache "
                           "(e.g. ../shared/data/sklearn). Empty: scikit-learn's default folder.")
        ui.persistent(st.checkbox, "Allow download from the internet", "allow_download")
    elif family == "crypto":
        ui.persistent(st.text_input, "Folder of CryptoDataDownload hourly CSVs", "crypto_path",
                      placeholder="/path/to/crypto")
    elif family == "csv":
        up = st.file_uploader("CSV file (at most 25 MB)", type=["csv", "txt", "tsv"],
                              key="csv_upload")
        if up is not None:
            ui.keep("upload_name", up.name)
            ui.keep("upload_bytes", up.getvalue())
        elif ui.kept("upload_name"):
            st.caption(f"Using the uploaded file **{ui.kept('upload_name')}**.")
        ui.persistent(st.text_input, "Target column (empty: the last column)", "csv_target")
    numeric = {k: v for k, v in entry["options"].items() if v["type"] in ("int", "float")
               and v["default"] is not None}
    if numeric:
        with st.expander("Options"):
            for opt, spec in numeric.items():
                kw = {"step": 1} if spec["type"] == "int" else {"step": 0.05, "format": "%.3f"}
                ui.persistent(st.number_input, opt, f"opt_{family}_{opt}", help=spec["help"],
                              **kw)

ds, error, label = ui.current_dataset()
with right:
    if family == "feynman":
        eq = feynman_equation(ui.kept("eq_id"))
        st.markdown(f"**{eq.id}**: {eq.title}")
        st.latex(f"{eq.output} = " + sympy.latex(eq.expr))
        st.caption("Variables and sampling ranges: " + ", ".join(
            f"{n} ∈ [{lo:g}, {hi:g}]" for n, (lo, hi) in eq.ranges.items()))
    if error:
        st.error(error)
    elif ds is not None:
        cols = st.columns(3)
        cols[0].metric("Train rows", f"{len(ds.X_train):,}")
        cols[1].metric("Test rows", f"{len(ds.X_test):,}")
        cols[2].metric("Input shape", " x ".join(str(s) for s in ds.input_shape))
        st.caption(f"Task: **{ds.task}**; target: **{', '.join(ds.target_names)}**.")
        for note in ds.notes:
            st.caption(note)

if ds is None:
    st.stop()

frame = ui.preview_frame(ds)
st.subheader("Preview")
st.dataframe(frame.head(200), height=240)
ui.explain("The first rows of the training split in the original units (before the scaling the "
           "model sees). For sequences each row shows the last time step of the input window; "
           "for images, the pixels flattened.")

st.subheader("How the values are spread")
columns = list(frame.columns)[:12] + ([frame.columns[-1]] if len(frame.columns) > 12 else [])
ui.plot(viz.feature_histograms(frame, columns), key="data_hist")
ui.explain("One histogram per column: how the values of each input (and the target, last) are "
           "spread. A KAN edge only learns its curve where data falls, so these ranges are the "
           "ranges the splines can be trusted on.")

st.subheader("Target against a feature")
features = [c for c in frame.columns if c not in ds.target_names][:64]
target = ds.target_names[0] if ds.target_names else frame.columns[-1]
if target not in frame:
    target = frame.columns[-1]
feature = st.selectbox("Feature", features, key="data_feature") if features else None
if feature is not None:
    y = frame[target]
    if ds.task == "classification":
        y = y.astype("category").cat.codes
    ui.plot(viz.target_scatter(frame[feature].to_numpy(), y.to_numpy(), feature, target),
            key="data_scatter")
    ui.explain("Each dot is one training sample: the chosen input on the x axis, the target on "
               "the y axis. A clear curve means the target depends strongly on that input alone; "
               "a cloud means other inputs matter too.")
