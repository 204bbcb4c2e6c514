"""Helpers shared by the dashboard pages: the session's state object, widgets that remember
their value, dataset loading and cached derived data.

Streamlit only: ``st.session_state["kamoe"]`` holds the one :class:`kamoe.state.SessionState`
of the browser session; everything else in ``st.session_state`` is Streamlit's own widget state.
No maths and no policy here; every number and default comes from ``kamoe``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from kamoe import interpret
from kamoe.data import Dataset
from kamoe.errors import USER_ERRORS
from kamoe.jobs import Job, configure_torch_threads
from kamoe.runs import DatasetRequest, Run
from kamoe.state import SessionState

STATE_KEY = "kamoe"

# ---------------------------------------------------------------------------- state


def state() -> SessionState:
    """This browser session's state (created, with the stored runs listed, on first use)."""
    ss = st.session_state
    if STATE_KEY not in ss:
        configure_torch_threads()
        ss[STATE_KEY] = SessionState()
    return ss[STATE_KEY]


def page_setup() -> SessionState:
    """Idempotent start of every page: the state object, finished jobs collected.

    The entry point does this too; pages repeat it because AppTest's switch_page runs a page
    script on its own.
    """
    s = state()
    s.collect()
    return s


def persistent(widget: Callable[..., Any], label: str, key: str, value: Any,
               wkey: str | None = None, **kwargs: Any) -> Any:
    """``widget`` showing ``value`` the first time it is drawn on a page visit; returns its value.

    Streamlit forgets a widget's value when its page is not shown, so the caller keeps the
    returned value in the state object and passes it back as ``value`` next time.
    """
    wkey = wkey or f"w_{key}"
    if wkey not in st.session_state:
        st.session_state[wkey] = value
    return widget(label, key=wkey, **kwargs)


def remembered(widget: Callable[..., Any], label: str, key: str, default: Any,
               **kwargs: Any) -> Any:
    """A widget whose value lives in the state's form values under ``key`` (default first)."""
    form = state().form
    value = persistent(widget, label, key, form.get(key, default), wkey=key, **kwargs)
    form[key] = value
    return value


def forget(prefix: str) -> None:
    """Drop remembered form values and widget state whose key starts with ``prefix``."""
    form = state().form
    for key in [k for k in form if k.startswith(prefix)]:
        form.pop(key)
    for key in [k for k in st.session_state if isinstance(k, str) and k.startswith(prefix)]:
        del st.session_state[key]


def runs() -> list[Run]:
    return state().runs


def active_run() -> Run | None:
    return state().active_run()


def job() -> Job | None:
    """This session's training job (queued, running or finished), or None."""
    return state().training


# ---------------------------------------------------------------------------- datasets


def dataset_request() -> DatasetRequest:
    """The dataset chosen on the Data page, with the sidebar's seed."""
    return state().request()


@st.cache_resource(show_spinner="Loading data...", max_entries=12)
def _load_cached(key: tuple, _request: DatasetRequest) -> Dataset:
    return _request.load()


def load_dataset(request: DatasetRequest) -> tuple[Dataset | None, str | None]:
    """(dataset, None) or (None, the message saying what is wrong and how to fix it)."""
    if request.spec == "csv" and request.data is None:
        return None, "Upload a CSV file on the Data page to use your own data."
    try:
        return _load_cached(request.key, request), None
    except USER_ERRORS as err:
        return None, str(err)
    except OSError as err:
        return None, f"Could not load {request.label}: {err}"


def current_dataset() -> tuple[Dataset | None, str | None, str]:
    """(dataset, error message, label) for the Data page's choice."""
    request = dataset_request()
    ds, error = load_dataset(request)
    return ds, error, request.label


def preview_frame(ds: Dataset, split: str = "train", max_rows: int | None = None) -> pd.DataFrame:
    """Raw inputs and target as a table (sequences: last step; images: flattened pixels)."""
    X = ds.raw_X(split)
    names = list(ds.feature_names)
    if X.ndim == 3 and ds.kind == "sequence":
        X = X[:, -1, :]
        names = [f"{n} (last step)" for n in names]
    elif X.ndim > 2:
        X = X.reshape(len(X), -1)
        names = [f"px{i}" for i in range(X.shape[1])]
    if len(names) != X.shape[1]:
        names = [f"x{i}" for i in range(X.shape[1])]
    frame = pd.DataFrame(X, columns=names)
    y = ds.raw_y(split)
    if ds.task == "classification":
        cls = ds.class_names or [str(c) for c in range(ds.output_dim)]
        frame[ds.target_names[0] if ds.target_names else "class"] = [cls[int(v)] for v in y]
    else:
        y = np.asarray(y).reshape(len(y), -1)
        for k, t in enumerate(ds.target_names[: y.shape[1]]):
            frame[t] = y[:, k]
    return frame if max_rows is None else frame.head(max_rows)


# ---------------------------------------------------------------------------- derived data


@st.cache_data(show_spinner="Reading the edges...", max_entries=64)
def edge_data(run_id: str, path: str | None, _run: Run, _ds: Dataset) -> dict:
    """Edge curves of one KAN layer (or every layer when path is None), cached per run."""
    # the dataset's scaling too: a first layer's edges are drawn over the inputs' raw values
    return interpret.dataset_edge_curves(_run.model, _ds, paths=path, max_rows=1500)


@st.cache_data(show_spinner="Drawing the network...", max_entries=32)
def graph_data(run_id: str, _run: Run, _ds: Dataset) -> Any:
    """The network drawing's data; a pruned run's hidden nodes keep their parent's labels."""
    labels = _run.node_labels(_ds) if _run.derivation else None
    return interpret.network_graph(_run.model, _ds.X_train, max_rows=1500,
                                   feature_names=list(_ds.feature_names),
                                   target_names=list(_ds.target_names), node_labels=labels)


@st.cache_data(show_spinner="Reading the gates...", max_entries=32)
def routing_data(run_id: str, _run: Run, _ds: Dataset) -> tuple[dict, Any, str]:
    """Every gate's routing on (up to 2000 of) the test rows, their groups and the groups' name."""
    return interpret.dataset_routing(_run.model, _ds, "test", max_rows=2000)


@st.cache_data(show_spinner=False, max_entries=32)
def winner_data(run_id: str, gate: str, _run: Run, _ds: Dataset) -> Any:
    return interpret.winner_map(_run.model, _ds, gate_path=gate, resolution=60)


@st.cache_data(show_spinner=False, max_entries=32)
def predictions(run_id: str, _run: Run, _ds: Dataset) -> np.ndarray:
    """The network's test-set predictions in original target units."""
    from kamoe.train import predict

    out = predict(_run.model, _ds.X_test)
    return _ds.to_raw_y(out) if _ds.task == "regression" else out


# ---------------------------------------------------------------------------- UI bits


def plain(text: str) -> str:
    """Text shown as it is in markdown: emphasis, code and math marks escaped (c*x(a*u+b)+d)."""
    for mark in ("\\", "*", "_", "`", "$"):
        text = text.replace(mark, "\\" + mark)
    return text


def explain(text: str, title: str = "What am I looking at?") -> None:
    """A one-paragraph help under a plot."""
    with st.expander(title):
        st.markdown(text)


def need_run() -> Run | None:
    """The active run, or a hint to train one first (returns None)."""
    run = active_run()
    if run is None:
        st.info("No trained model yet. Pick data on **Data**, then press **Train** on the "
                "Train page (the defaults train a small KAN in about a second).")
        st.page_link("pages/train.py", label="Go to Train", icon=":material/model_training:")
    return run


def queue_text(j: Job) -> str:
    """Where a queued job stands: its place in line and how busy the server is."""
    s = state()
    p = j.progress()
    running, waiting = s.queue.counts()
    return (f"Waiting for a free training slot: number {p.position} of {waiting} in line; "
            f"{running} of {s.queue.capacity} slots busy.")


def job_settled(j: Job | None) -> bool:
    """True when a polling fragment has nothing live to draw: no job, or a finished one (then
    one full rerun, so the page collects it, until it is collected)."""
    if j is None:
        return True
    if not j.active:
        if not j.collected:
            st.rerun()
        return True
    return False


def job_progress(j: Job | None, text: str, key: str) -> None:
    """A background job's place in line (with Cancel) or progress bar (with Stop); ``text`` says
    what it does, ``key`` names the buttons. A full rerun once it has finished and is not
    collected yet. Meant for ``st.fragment(run_every=...)``."""
    if job_settled(j):
        return
    if j.queued:
        st.info(queue_text(j), icon=":material/hourglass_top:")
        if st.button("Cancel", key=f"{key}_cancel", icon=":material/cancel:"):
            state().queue.cancel(j)
            st.rerun()
        return
    p = j.progress()
    st.progress(p.fraction, text=f"{text}: {p.text or 'starting...'}")
    if st.button("Stop", key=f"{key}_stop", icon=":material/stop_circle:"):
        j.request_stop()


def sidebar_job_status() -> None:
    """Training status in the sidebar on other pages; a full rerun when the job ends."""
    j = job()
    if job_settled(j):
        return
    if j.queued:
        st.caption(f"{j.label}: {queue_text(j)}")
    else:
        st.progress(j.progress().fraction, text=f"training {j.label}")


def show_notice() -> None:
    note = state().notice
    if note:
        kind, text = note
        getattr(st, kind)(text)


def theme() -> str:
    """The browser's Streamlit theme, "light" or "dark" (what every figure builder takes)."""
    return st.context.theme.type or "light"


def plot(fig: Any, key: str | None = None) -> None:
    st.plotly_chart(fig, width="stretch", key=key)


def run_dataset(run: Run) -> tuple[Dataset | None, str | None]:
    """The dataset a run was trained on, rebuilt from its request (cached)."""
    ds, error = load_dataset(run.request)
    if ds is None:
        return None, (f"The data of run {run.label} could not be rebuilt: {error}")
    return ds, None


def run_page(title: str) -> tuple[Run, Dataset]:
    """Start a page that looks at the active run: title, run and its data, or stop with a hint."""
    s = page_setup()
    st.title(title)
    run = need_run()
    if run is None:
        st.stop()
    try:
        s.ensure_model(run)
    except USER_ERRORS as err:
        st.error(f"Run {run.label} cannot be shown: {err}")
        st.stop()
    ds, error = run_dataset(run)
    if ds is None:
        st.error(error)
        st.stop()
    return run, ds
