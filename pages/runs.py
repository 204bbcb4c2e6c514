"""Runs page: every stored run (this session's, other sessions', `kamoe train`'s), managed.

Rename, download as one archive, upload an archive back, delete; reload the list to see runs
that other sessions or the command line stored since this session started.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from kamoe.errors import USER_ERRORS
from kamoe.store import MAX_ARCHIVE_BYTES
from pages import ui_common as ui

s = ui.page_setup()
st.title("Runs")
st.caption(f"Runs are saved in **{s.store.home}** (set `KAMOE_HOME` to use another folder) and "
           "listed again after a browser refresh or a server restart.")

if st.button("Reload the list", key="runs_reload", icon=":material/refresh:",
             help="Show runs stored by other sessions or by `kamoe train` since this page opened."):
    s.refresh()
for problem in s.store_problems:
    st.warning(f"Skipped a stored run that cannot be read: {problem}")

if s.runs:
    st.dataframe(pd.DataFrame([r.summary() for r in s.runs]), hide_index=True)
else:
    st.info("No runs yet: train one on the Train page, with `kamoe train`, or upload an "
            "archive below.")

if s.runs:
    st.subheader("Manage a run")
    labels = {r.id: r.label for r in s.runs}
    ids = list(labels)
    current = s.active_run()
    pick = st.selectbox("Run", ids, index=ids.index(current.id) if current else 0,
                        format_func=labels.get, key="runs_pick")
    run = s.run(pick)
    c1, c2, c3 = st.columns([3, 1, 1], vertical_alignment="bottom")
    new_name = c1.text_input("Name", value=run.name, key=f"runs_name_{run.id}", max_chars=120)
    if c2.button("Rename", key="runs_rename", disabled=new_name.strip() == run.name):
        try:
            s.rename(run.id, new_name)
            st.toast(f"Renamed to {run.name}")
            st.rerun()
        except USER_ERRORS as err:
            st.error(str(err))
    with c3:
        if run.stored:
            st.download_button("Download", data=lambda: s.export(run.id),
                               file_name=f"kamoe-run-{run.id}.zip", mime="application/zip",
                               key="runs_download", icon=":material/download:",
                               help="One .zip archive: settings, weights, history, routing "
                                    "records, formulas and the uploaded data, if any.")
    st.caption(f"Model `{run.model_name}` on {run.request.label}; trained from the "
               f"{run.source}; {len(run.formulas)} formula(s) found.")
    with st.expander("Delete this run"):
        sure = st.checkbox(f"Yes, delete {run.label} for good", key=f"runs_sure_{run.id}")
        if st.button("Delete", key="runs_delete", disabled=not sure, type="primary"):
            try:
                s.delete(run.id)
                st.rerun()
            except USER_ERRORS as err:
                st.error(str(err))

st.subheader("Upload a run archive")
archive = st.file_uploader("A .zip downloaded from this page or written by "
                           "`kamoe runs export`", type=["zip"], key="runs_upload",
                           max_upload_size=MAX_ARCHIVE_BYTES // 2**20)
if archive is not None:
    kind, text = s.import_upload((archive.name, archive.size, archive.file_id),
                                 archive.getvalue())
    getattr(st, kind)(text)
