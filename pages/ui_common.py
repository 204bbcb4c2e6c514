"""Helpers shared by the dashboard pages: session state, dataset loading, cached derived data.

Streamlit only: reads and writes ``st.session_state`` and wraps library calls in caches keyed by
run id. No maths here; every number comes from ``kamoe``.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from kamoe import interpret
from kamoe.data import DataError, Dataset, catalog, load
from kamoe.session import DEFAULT_FEYNMAN_ID, Job, Run, configure_torch_threads

FAMILIES = ["feynman", "california", "diabetes", "friedman1", "digits", "moons", "iris",
            "regimes", "crypto", "csv"]
FAMILY_LABELS = {
    "feynman": "Feynman equation", "california": "California housing", "diabetes": "Diabetes",
    "friedman1": "Friedman #1", "digits": "Digits (8x8 images)", "moons": "Two moons",
    "iris": "Iris", "regimes": "Regimes (sequential)", "crypto": "Crypto CSV folder",
    "csv": "Upload a CSV",
}
CATALOG = {c["name"]: c for c in catalog()}

# Values that outlive page switches (widget keys are cleaned when their page is not shown).
DEFAULTS: dict[str, Any] = {
    "family": "feynman", "eq_id": DEFAULT_FEYNMAN_ID, "data_home": os.environ.get(
        "KAMOE_DATA_HOME", ""), "allow_download": False, "crypto_path": "", "csv_target": "",
    "upload_name": None, "upload_bytes": None,
}


# ---------------------------------------------------------------------------- state


def init_state() -> None:
    """Create the session's containers once."""
    ss = st.session_state
    if "runs" not in ss:
        configure_torch_threads()
    ss.setdefault("runs", [])
    ss.setdefault("job", None)
    ss.setdefault("compare_job", None)
    ss.setdefault("formula_jobs", {})
    ss.setdefault("formulas", {})
    ss.setdefault("notice", None)
    for k, v in DEFAULTS.items():
        ss.setdefault(f"keep_{k}", v)
    for name, entry in CATALOG.items():
        for opt, spec in entry["options"].items():
            if spec["type"] in ("int", "float") and spec["default"] is not None:
                ss.setdefault(f"keep_opt_{name}_{opt}", spec["default"])


def page_setup() -> None:
    """Idempotent start of every page: state containers and finished jobs collected.

    The entry point does this too; pages repeat it because AppTest's switch_page runs a page
    script on its own.
    """
    init_state()
    harvest_jobs()


def kept(key: str) -> Any:
    """The persisted value behind a page widget."""
    return st.session_state.get(f"keep_{key}", DEFAULTS.get(key))


def keep(key: str, value: Any) -> None:
    st.session_state[f"keep_{key}"] = value


def persistent(widget: Any, label: str, key: str, **kwargs: Any) -> Any:
    """Create ``widget`` whose value survives page switches (stored under keep_<key>)."""
    wkey = f"w_{key}"
    if wkey not in st.session_state:
        st.session_state[wkey] = kept(key)
    value = widget(label, key=wkey, **kwargs)
    keep(key, value)
    return value


def runs() -> list[Run]:
    return st.session_state.get("runs", [])


def active_run() -> Run | None:
    """The run selected in the sidebar (the newest one by default)."""
    rs = runs()
    if not rs:
        return None
    wanted = st.session_state.get("active_run")
    for r in rs:
        if r.id == wanted:
            return r
    return rs[-1]


def job() -> Job | None:
    return st.session_state.get("job")


def harvest_jobs() -> None:
    """Move a finished training job's run into the runs list (once) and note how it ended."""
    j: Job | None = st.session_state.get("job")
    if j is None or j.running or j.collected:
        return
    j.collected = True
    p = j.progress()
    run = st.session_state.get("pending_run")
    if p.status in ("done", "stopped") and run is not None and run.history is not None:
        st.session_state["runs"] = [*runs(), run]
        st.session_state["select_run"] = run.id
        kind = "warning" if p.status == "stopped" or run.history.stopped == "stopped" else "success"
        h = run.history
        text = h.message or (f"Training finished: {len(h.epochs)} epochs in {h.seconds:.1f} s "
                             f"(best validation loss at epoch {h.best_epoch}).")
        if run.history.stopped == "stopped":
            text = f"Training stopped: {text}"
        st.session_state["notice"] = (kind, text)
    else:
        st.session_state["notice"] = ("error", f"Training failed: {p.message}")
    st.session_state["pending_run"] = None


# ---------------------------------------------------------------------------- datasets


def dataset_request() -> tuple[str, dict[str, Any], bytes | None, str]:
    """(spec, options, uploaded bytes, short label) of the dataset chosen on the Data page."""
    fam = kept("family")
    opts: dict[str, Any] = {}
    for opt, spec in CATALOG[fam]["options"].items():
        key = f"keep_opt_{fam}_{opt}"
        if spec["type"] in ("int", "float") and key in st.session_state:
            opts[opt] = st.session_state[key]
    data = None
    if fam == "feynman":
        spec, label = f"feynman:{kept('eq_id')}", f"Feynman {kept('eq_id')}"
    elif fam == "crypto":
        spec, label = f"crypto:{kept('crypto_path')}", "crypto"
    elif fam == "csv":
        spec, label = "csv", f"CSV {kept('upload_name') or ''}".strip()
        data = kept("upload_bytes")
        if kept("csv_target"):
            opts["target"] = kept("csv_target")
    else:
        spec, label = fam, FAMILY_LABELS[fam]
    if fam == "california":
        if kept("data_home"):
            opts["data_home"] = kept("data_home")
        if kept("allow_download"):
            opts["allow_download"] = True
    return spec, opts, data, label


@st.cache_resource(show_spinner="Loading data...", max_entries=12)
def _load_cached(spec: str, seed: int, options: tuple, data: bytes | None) -> Dataset:
    kwargs = dict(options)
    if data is not None:
        kwargs["data"] = data
    return load(spec, seed=seed, **kwargs)


def dataset_key() -> tuple:
    spec, opts, data, _ = dataset_request()
    return (spec, int(st.session_state.get("seed", 0)), tuple(sorted(opts.items())),
            None if data is None else hash(data))


def current_dataset() -> tuple[Dataset | None, str | None, str]:
    """(dataset, error message, label) for the current choice; errors are DataError messages."""
    spec, opts, data, label = dataset_request()
    if spec == "csv" and data is None:
        return None, "Upload a CSV file on the Data page to use your own data.", label
    try:
        ds = _load_cached(spec, int(st.session_state.get("seed", 0)),
                          tuple(sorted(opts.items())), data)
    except DataError as err:
        return None, str(err), label
    except (ValueError, OSError) as err:
        return None, f"Could not load {label}: {err}", label
    return ds, None, label


def dataset_for_run(run: Run) -> Dataset | None:
    """The dataset a run was trained on (from the cache; reloaded if it was evicted)."""
    spec, seed, options, _ = run.dataset_key
    data = st.session_state.get(f"run_data_{run.id}")
    try:
        return _load_cached(spec, seed, options, data)
    except (DataError, ValueError, OSError):
        return None


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
    ds = _ds
    return interpret.edge_curves(_run.model, ds.X_train, paths=path, max_rows=1500,
                                 feature_names=list(ds.feature_names),
                                 target_names=list(ds.target_names))


@st.cache_data(show_spinner="Drawing the network...", max_entries=32)
def graph_data(run_id: str, _run: Run, _ds: Dataset) -> Any:
    return interpret.network_graph(_run.model, _ds.X_train, max_rows=1500,
                                   feature_names=list(_ds.feature_names),
                                   target_names=list(_ds.target_names))


@st.cache_data(show_spinner="Reading the gates...", max_entries=32)
def routing_data(run_id: str, _run: Run, _ds: Dataset) -> dict:
    return interpret.routing_stats(_run.model, _ds.X_test, max_rows=2000)


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


def sidebar_job_status() -> None:
    """Training status in the sidebar on other pages; a full rerun when the job ends."""
    j = job()
    if j is None:
        return
    if not j.running:
        if not j.collected:
            st.rerun()
        return
    p = j.progress()
    st.progress(p.fraction, text=f"training {j.label}")


def show_notice() -> None:
    note = st.session_state.get("notice")
    if note:
        kind, text = note
        getattr(st, kind)(text)


def plot(fig: Any, key: str | None = None) -> None:
    st.plotly_chart(fig, width="stretch", key=key)


def run_page(title: str) -> tuple[Run, Dataset]:
    """Start a page that looks at the active run: title, run and its data, or stop with a hint."""
    page_setup()
    st.title(title)
    run = need_run()
    if run is None:
        st.stop()
    ds = dataset_for_run(run)
    if ds is None:
        st.error("The data of this run could not be reloaded; train it again.")
        st.stop()
    return run, ds
