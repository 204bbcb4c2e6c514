"""kamoe dashboard: train KANs and mixtures of experts, then look inside them.

Run with ``streamlit run app.py``. This entry point holds what every page shares (the seed, the
current dataset and the active run, in the sidebar) and the navigation; the pages live in
``pages/`` and only read widgets, call the library and show figures from ``kamoe.viz``. The
session's state is one ``kamoe.state.SessionState`` (see ``pages/ui_common.py``).
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
s = ui.page_setup()

PAGES = [
    st.Page("pages/data.py", title="Data", icon=":material/table_chart:", default=True),
    st.Page("pages/train.py", title="Train", icon=":material/model_training:"),
    st.Page("pages/splines.py", title="Splines", icon=":material/show_chart:"),
    st.Page("pages/routing.py", title="Routing", icon=":material/alt_route:"),
    st.Page("pages/formula.py", title="Formula", icon=":material/function:"),
    st.Page("pages/compare.py", title="Compare", icon=":material/leaderboard:"),
    st.Page("pages/runs.py", title="Runs", icon=":material/folder_open:"),
    st.Page("pages/guide.py", title="Guide", icon=":material/school:"),
]
page = st.navigation(PAGES)


def _select_run() -> None:
    s.select(st.session_state.get("active_run"))


with st.sidebar:
    s.seed = int(ui.persistent(st.number_input, "Seed", "seed", s.seed, wkey="seed",
                               min_value=0, max_value=2**31 - 1, step=1,
                               help="Seeds the data split/sampling and the model initialisation."))
    st.caption(f"Dataset: **{s.request().label}**  \n(change it on the Data page)")
    active = s.active_run()
    if active is not None:
        ids = [r.id for r in s.runs]
        labels = {r.id: r.label for r in s.runs}
        st.session_state["active_run"] = active.id  # the state object decides; the box shows it
        st.selectbox("Active run", ids, format_func=lambda i: labels.get(i, i), key="active_run",
                     on_change=_select_run,
                     help="The trained model that Splines, Routing and Formula look at.")
    else:
        st.caption("No trained run yet.")
    if ui.job() is not None and ui.job().active and page.title != "Train":
        st.fragment(run_every=1.0)(ui.sidebar_job_status)()

page.run()
