"""kamoe dashboard: train KANs and mixtures of experts, then look inside them.

Run with ``streamlit run app.py``. This entry point holds what every page shares (the seed, the
current dataset and the selected run, in the sidebar) and the navigation; the pages live in
``pages/`` and only read widgets, call the library and show figures from ``kamoe.viz``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

ROOT = Path(__file__).resolve().parent
if str(ROOT) not in sys.path:  # so pages can import pages.ui_common
    sys.path.insert(0, str(ROOT))

from pages import ui_common as ui  # noqa: E402

st.set_page_config(page_title="kamoe: inside KANs and mixtures of experts", layout="wide",
                   page_icon=":material/hub:")
ui.init_state()
ui.harvest_jobs()

PAGES = [
    st.Page("pages/data.py", title="Data", icon=":material/table_chart:", default=True),
    st.Page("pages/train.py", title="Train", icon=":material/model_training:"),
    st.Page("pages/splines.py", title="Splines", icon=":material/show_chart:"),
    st.Page("pages/routing.py", title="Routing", icon=":material/alt_route:"),
    st.Page("pages/formula.py", title="Formula", icon=":material/function:"),
    st.Page("pages/compare.py", title="Compare", icon=":material/leaderboard:"),
    st.Page("pages/guide.py", title="Guide", icon=":material/school:"),
]
page = st.navigation(PAGES)

with st.sidebar:
    st.number_input("Seed", min_value=0, max_value=2**31 - 1, value=0, step=1, key="seed",
                    help="Seeds the data split/sampling and the model initialisation.")
    spec, _opts, _data, label = ui.dataset_request()
    st.caption(f"Dataset: **{label}**  \n(change it on the Data page)")
    runs = ui.runs()
    if "select_run" in st.session_state:  # a run just finished: make it the active one
        st.session_state["active_run"] = st.session_state.pop("select_run")
    if runs:
        ids = [r.id for r in runs]
        if st.session_state.get("active_run") not in ids:
            st.session_state["active_run"] = ids[-1]
        labels = {r.id: r.label for r in runs}
        st.selectbox("Active run", ids, format_func=lambda i: labels.get(i, i), key="active_run",
                     help="The trained model that Splines, Routing and Formula look at.")
    else:
        st.caption("No trained run yet.")
    if ui.job() is not None and ui.job().running and page.title != "Train":
        st.fragment(run_every=1.0)(ui.sidebar_job_status)()

page.run()
