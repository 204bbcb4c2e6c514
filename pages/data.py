"""Data page: choose a dataset (Feynman equation, built-ins, crypto folder, CSV upload)."""

from __future__ import annotations

import streamlit as st
import sympy

from kamoe import viz
from kamoe.data import feynman_equation, feynman_ids
from kamoe.state import (
    CATALOG,
    CSV_DECIMALS,
    CSV_SEPARATORS,
    DATA_FAMILIES,
    FAMILY_LABELS,
    numeric_options,
)
from pages import ui_common as ui

s = ui.page_setup()
d = s.data  # the Data page's choice lives in the session's state object
st.title("Data")
st.caption("Pick the data to learn from. The choice is kept when you move to other pages.")

left, right = st.columns([1, 2])
with left:
    d.family = ui.persistent(st.selectbox, "Dataset", "family", d.family,
                             options=DATA_FAMILIES, format_func=lambda f: FAMILY_LABELS[f])
    family = d.family
    entry = CATALOG[family]
    st.caption(entry["description"])
    if family == "feynman":
        ids = feynman_ids()

        def _eq_label(i: str) -> str:
            return f"{i}: {feynman_equation(i).title}"

        d.eq_id = ui.persistent(st.selectbox, "Feynman equation", "eq_id", d.eq_id, options=ids,
                                format_func=_eq_label)
    elif family == "california":
        d.data_home = ui.persistent(
            st.text_input, "Data folder (data home)", "data_home", d.data_home,
            help="Folder holding scikit-learn's cal_housing cache (e.g. ../shared/data/sklearn)."
                 " Empty: scikit-learn's default folder.")
        d.allow_download = ui.persistent(st.checkbox, "Allow download from the internet",
                                         "allow_download", d.allow_download)
    elif family == "crypto":
        d.crypto_path = ui.persistent(st.text_input, "Folder of CryptoDataDownload hourly CSVs",
                                      "crypto_path", d.crypto_path, placeholder="/path/to/crypto")
    elif family == "csv":
        up = st.file_uploader("CSV file (at most 25 MB)", type=["csv", "txt", "tsv"],
                              key="csv_upload")
        if up is not None:
            d.upload_name, d.upload_bytes = up.name, up.getvalue()
        elif d.upload_name:
            st.caption(f"Using the uploaded file **{d.upload_name}**.")
        d.csv_target = ui.persistent(st.text_input, "Target column (empty: the last column)",
                                     "csv_target", d.csv_target)
        with st.expander("CSV options", expanded=d.csv_sep != "auto" or d.csv_decimal != "auto"
                         or bool(d.csv_features)):
            d.csv_sep = ui.persistent(st.selectbox, "Column separator", "csv_sep", d.csv_sep,
                                      options=list(CSV_SEPARATORS),
                                      format_func=CSV_SEPARATORS.get)
            d.csv_decimal = ui.persistent(
                st.selectbox, "Decimal separator", "csv_decimal", d.csv_decimal,
                options=list(CSV_DECIMALS), format_func=CSV_DECIMALS.get,
                help="'detect' reads 1,5 as one and a half in files separated by ; or TAB.")
            d.csv_features = ui.persistent(
                st.text_input, "Input columns (empty: all but the target)", "csv_features",
                d.csv_features, placeholder="e.g. age, income",
                help="Comma-separated column names; leave out text columns with many values.")
    numeric = numeric_options(family)
    if numeric:
        with st.expander("Options"):
            values = d.options.setdefault(family, {})
            for opt, spec in numeric.items():
                kw = {"step": 1} if spec["type"] == "int" else {"step": 0.05, "format": "%.3f"}
                values[opt] = ui.persistent(st.number_input, opt, f"opt_{family}_{opt}",
                                            values.get(opt, spec["default"]), help=spec["help"],
                                            **kw)

ds, error, label = ui.current_dataset()
with right:
    if family == "feynman":
        eq = feynman_equation(d.eq_id)
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
ui.plot(viz.feature_histograms(frame, columns, theme=ui.theme()), key="data_hist")
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
    ui.plot(viz.target_scatter(frame[feature].to_numpy(), y.to_numpy(), feature, target,
                               theme=ui.theme()),
            key="data_scatter")
    ui.explain("Each dot is one training sample: the chosen input on the x axis, the target on "
               "the y axis. A clear curve means the target depends strongly on that input alone; "
               "a cloud means other inputs matter too.")
