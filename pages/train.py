"""Train page: pick a model and its settings, train in the background, watch, stop, compare runs."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from kamoe import viz
from kamoe.interpret import RoutingRecorder
from kamoe.models import MODEL_DESCRIPTIONS, SEQUENCE_MODELS, model_names
from kamoe.session import (
    SETTING_CHOICES,
    USER_ERRORS,
    default_model_name,
    default_model_settings,
    default_train_config,
    new_run,
    parse_setting,
    setting_text,
    training_job,
)
from kamoe.train import TrainConfig
from pages import ui_common as ui

ui.page_setup()
st.title("Train")
ds, error, label = ui.current_dataset()
if ds is None:
    st.error(error or "No dataset.")
    st.page_link("pages/data.py", label="Choose data", icon=":material/table_chart:")
    st.stop()

seed = int(st.session_state.get("seed", 0))
st.caption(f"Dataset: **{label}** ({ds.task}, {len(ds.X_train):,} training rows, input shape "
           f"{ds.input_shape}).")

names = [n for n in model_names() if ds.kind == "sequence" or n not in SEQUENCE_MODELS]
default_name = default_model_name(ds)
mkey = f"model_{ds.kind}"
if st.session_state.get(f"keep_{mkey}") not in names:
    ui.keep(mkey, default_name)
name = ui.persistent(st.selectbox, "Model", mkey, options=names,
                     format_func=lambda n: f"{n}: {MODEL_DESCRIPTIONS.get(n, '')}")

defaults = default_model_settings(name, ds)
tdef = default_train_config(name, ds, seed)
suffix = f"{name}_{ui.dataset_request()[0]}"
running = ui.job() is not None and ui.job().running

with st.form(f"train_form_{suffix}"):
    st.markdown("**Model settings**")
    cols = st.columns(4)
    raw: dict[str, object] = {}
    for k, (key, value) in enumerate(defaults.items()):
        col = cols[k % 4]
        wkey = f"m_{suffix}_{key}"
        if isinstance(value, bool):
            raw[key] = col.checkbox(key, value=value, key=wkey)
        elif key in SETTING_CHOICES and isinstance(value, str):
            opts = SETTING_CHOICES[key]
            opts = opts if value in opts else [value, *opts]
            raw[key] = col.selectbox(key, opts, index=opts.index(value), key=wkey)
        elif isinstance(value, int):
            raw[key] = col.number_input(key, value=value, step=1, key=wkey)
        elif isinstance(value, float):
            raw[key] = col.number_input(key, value=value, format="%.4g", key=wkey)
        else:
            raw[key] = col.text_input(key, value=setting_text(value), key=wkey,
                                      help="comma-separated numbers" if isinstance(value, list)
                                      else "empty = automatic")
    st.markdown("**Training settings**")
    c = st.columns(4)
    optimizer = c[0].selectbox("optimizer", ["lbfgs", "adam", "adamw"],
                               index=["lbfgs", "adam", "adamw"].index(tdef.optimizer),
                               key=f"t_{suffix}_opt")
    lr = c[1].number_input("learning rate", value=float(tdef.lr), min_value=0.0, format="%.4g",
                           key=f"t_{suffix}_lr")
    epochs = c[2].number_input("epochs", value=tdef.epochs, min_value=1, step=1,
                               key=f"t_{suffix}_epochs")
    batch = c[3].number_input("batch size (0 = full batch)", value=tdef.batch_size or 0,
                              min_value=0, step=1, key=f"t_{suffix}_batch")
    grid_updates = c[0].number_input("grid updates during the first epochs",
                                     value=tdef.grid_update_epochs, min_value=0, step=1,
                                     key=f"t_{suffix}_grid")
    patience = c[1].number_input("early-stopping patience (0 = off)", value=tdef.patience or 0,
                                 min_value=0, step=1, key=f"t_{suffix}_patience")
    sparsity = c[2].number_input("KAN sparsity penalty", value=tdef.sparsity, min_value=0.0,
                                 format="%.4g", key=f"t_{suffix}_sparsity")
    max_seconds = c[3].number_input("time limit in seconds (0 = none)", value=0.0, min_value=0.0,
                                    key=f"t_{suffix}_maxs")
    submitted = st.form_submit_button("Train", type="primary", disabled=running)

if submitted and not running:
    try:
        cfg = {k: parse_setting(k, v, defaults[k]) if isinstance(v, str) and not isinstance(
            defaults[k], str) else v for k, v in raw.items()}
        tcfg = TrainConfig(epochs=int(epochs), optimizer=optimizer, lr=float(lr),
                           batch_size=int(batch) or None, grid_update_epochs=int(grid_updates),
                           grid_update_every=tdef.grid_update_every,
                           patience=int(patience) or None, sparsity=float(sparsity),
                           max_seconds=float(max_seconds) or None, seed=seed)
        run = new_run(ui.dataset_key(), ds, label, name, cfg, tcfg)
    except USER_ERRORS as err:
        st.error(f"Cannot train with these settings: {err}")
    else:
        recorder = RoutingRecorder(ds.X_train) if run.model.gates() else None
        run.routing = recorder
        st.session_state[f"run_data_{run.id}"] = ui.dataset_request()[2]
        st.session_state["pending_run"] = run
        st.session_state["notice"] = None
        st.session_state["job"] = training_job(run, ds, [recorder] if recorder else []).start()
        running = True


def live_progress() -> None:
    """Progress bar, live loss curves and the Stop button of the running job."""
    j = ui.job()
    if j is None:
        return
    if not j.running:
        if not j.collected:
            st.rerun()
        return
    p = j.progress()
    st.progress(p.fraction, text=f"Training {j.label}: {p.text or 'starting...'}")
    if st.button("Stop", key="stop_training", icon=":material/stop_circle:"):
        j.request_stop()
        st.caption("Stopping after the current epoch...")
    if p.epochs:
        ui.plot(viz.loss_curves(p.epochs, p.train_loss, p.val_loss, "Live loss"), key="live_loss")


if running:
    st.fragment(run_every=0.5)(live_progress)()

ui.show_notice()
run = ui.active_run()
if run is not None and run.history is not None:
    h = run.history
    st.subheader(f"Run {run.label}")
    cols = st.columns(len(h.metrics) + 2)
    nice = {"r2": "Test R²", "rmse": "Test RMSE", "mae": "Test MAE", "accuracy": "Test accuracy",
            "log_loss": "Test log-loss"}
    for col, (k, v) in zip(cols, h.metrics.items(), strict=False):
        col.metric(nice.get(k, k), f"{v:.6g}")
    cols[-2].metric("Epochs", len(h.epochs))
    cols[-1].metric("Seconds", f"{h.seconds:.2f}")
    if h.epochs:
        ui.plot(viz.loss_curves(h.epochs, h.train_loss, h.val_loss), key="final_loss")
        ui.explain("Training loss (on the training rows) and validation loss (on rows held out "
                   "from training) after every epoch, on a log scale. Both falling together is "
                   "healthy; validation rising while training keeps falling is overfitting. "
                   "The model keeps the weights of the best validation epoch.")
    with st.expander("Model and training settings"):
        st.json({"model": run.model_config, "train": run.train_config.__dict__})

if ui.runs():
    st.subheader(f"Runs in this session ({len(ui.runs())})")
    st.dataframe(pd.DataFrame([r.summary() for r in ui.runs()]), hide_index=True)
    st.caption("Select the active run in the sidebar; Splines, Routing and Formula show it.")
