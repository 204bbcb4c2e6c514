"""Train page: pick a model and its settings, train in the background, watch, stop, compare runs."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from kamoe import recipes, viz
from kamoe.errors import USER_ERRORS
from kamoe.models import MODEL_DESCRIPTIONS, model_names
from kamoe.train import MAX_STARTS
from pages import ui_common as ui

s = ui.page_setup()
st.title("Train")
ds, error, label = ui.current_dataset()
if ds is None:
    st.error(error or "No dataset.")
    st.page_link("pages/data.py", label="Choose data", icon=":material/table_chart:")
    st.stop()

st.caption(f"Dataset: **{label}** ({ds.task}, {len(ds.X_train):,} training rows, input shape "
           f"{ds.input_shape}).")

names = recipes.model_names_for(ds, model_names())
mkey = f"w_model_{ds.kind}"
if s.form.get(mkey) not in names:
    s.form[mkey] = recipes.default_model_name(ds)
    st.session_state.pop(mkey, None)
name = ui.remembered(st.selectbox, "Model", mkey, s.form[mkey], options=names,
                     format_func=lambda n: f"{n}: {MODEL_DESCRIPTIONS.get(n, '')}")

defaults = recipes.model_config(name, ds)
tdef = recipes.training_config(name, ds, seed=s.seed)
suffix = f"{name}_{s.request().spec}"

# No st.form: every value is kept as soon as it changes (so it survives page switches and
# trainings), and Enter in a number field only commits that value; only the button trains.
st.markdown("**Model settings**")
cols = st.columns(4)
raw: dict[str, object] = {}
for k, (key, value) in enumerate(defaults.items()):
    with cols[k % 4]:
        wkey = f"m_{suffix}_{key}"
        choices = recipes.SETTING_CHOICES.get(key)
        if isinstance(value, bool):
            raw[key] = ui.remembered(st.checkbox, key, wkey, value)
        elif choices and isinstance(value, str):
            opts = choices if value in choices else [value, *choices]
            raw[key] = ui.remembered(st.selectbox, key, wkey, value, options=opts)
        elif isinstance(value, int):
            raw[key] = ui.remembered(st.number_input, key, wkey, value, step=1)
        elif isinstance(value, float):
            raw[key] = ui.remembered(st.number_input, key, wkey, value, format="%.4g")
        else:
            raw[key] = ui.remembered(st.text_input, key, wkey, recipes.setting_text(value),
                                     help="comma-separated numbers" if isinstance(value, list)
                                     else "empty = automatic")
st.markdown("**Training settings**")
c = st.columns(4)
t = f"t_{suffix}"
with c[0]:
    optimizer = ui.remembered(st.selectbox, "optimizer", f"{t}_opt", tdef.optimizer,
                              options=list(recipes.OPTIMIZERS))
    grid_updates = ui.remembered(st.number_input, "grid updates during the first epochs",
                                 f"{t}_grid", tdef.grid_update_epochs, min_value=0, step=1)
    devices = recipes.device_choices()  # empty without a GPU: no device setting shown
    device = (ui.remembered(st.selectbox, "device", f"{t}_device", tdef.device,
                            options=devices, help="auto: CUDA, else MPS, else the CPU")
              if devices else tdef.device)
with c[1]:
    lr = ui.remembered(st.number_input, "learning rate", f"{t}_lr", float(tdef.lr),
                       min_value=0.0, format="%.4g")
    patience = ui.remembered(st.number_input, "early-stopping patience (0 = off)",
                             f"{t}_patience", tdef.patience or 0, min_value=0, step=1)
with c[2]:
    epochs = ui.remembered(st.number_input, "epochs", f"{t}_epochs", tdef.epochs, min_value=1,
                           step=1)
    sparsity = ui.remembered(st.number_input, "KAN sparsity penalty", f"{t}_sparsity",
                             tdef.sparsity, min_value=0.0, format="%.4g")
with c[3]:
    batch = ui.remembered(st.number_input, "batch size (0 = full batch)", f"{t}_batch",
                          tdef.batch_size or 0, min_value=0, step=1)
    max_seconds = ui.remembered(st.number_input, "time limit in seconds (0 = none)",
                                f"{t}_maxs", float(tdef.max_seconds or 0.0), min_value=0.0)
    starts = ui.remembered(st.number_input, "initialisations (the best is kept)",
                           f"{t}_starts", tdef.starts, min_value=1, max_value=MAX_STARTS, step=1,
                           help="Train this many random initialisations one after another and "
                                "keep the one with the lowest validation loss (a mixture can "
                                "settle on a poor split of its experts from one start).")

b1, b2, _ = st.columns([1, 1, 4])
submitted = b1.button("Train", type="primary", disabled=s.busy, key="train",
                      icon=":material/play_arrow:")
if b2.button("Reset to defaults", key="reset_form",
             help="Put this model's settings back to the defaults for this dataset."):
    ui.forget(f"m_{suffix}_")
    ui.forget(f"{t}_")
    st.rerun()

if submitted and not s.busy:
    try:
        cfg = {k: recipes.parse_setting(k, v, defaults[k]) if isinstance(v, str) and not
               isinstance(defaults[k], str) else v for k, v in raw.items()}
        tcfg = recipes.training_config(
            name, ds, seed=s.seed, epochs=int(epochs), optimizer=optimizer, lr=float(lr),
            batch_size=int(batch) or None, grid_update_epochs=int(grid_updates),
            patience=int(patience) or None, sparsity=float(sparsity),
            max_seconds=float(max_seconds) or None, device=device, starts=int(starts))
        s.start_training(ds, name, cfg, tcfg)
    except USER_ERRORS as err:
        st.error(f"Cannot train with these settings: {err}")
    else:
        st.rerun()  # draw the page again with the Train button disabled while this one trains


def live_progress() -> None:
    """Place in line or progress bar, live loss curves, and the Cancel / Stop button."""
    j = ui.job()
    if ui.job_settled(j):
        return
    p = j.progress()
    if j.queued:
        st.info(ui.queue_text(j), icon=":material/hourglass_top:")
        if st.button("Cancel", key="cancel_training", icon=":material/cancel:"):
            s.cancel_training()
            st.rerun()
        return
    st.progress(p.fraction, text=f"Training {j.label}: {p.text or 'starting...'}")
    if st.button("Stop", key="stop_training", icon=":material/stop_circle:"):
        j.request_stop()
        st.caption("Stopping after the current epoch...")
    if p.epochs:
        ui.plot(viz.loss_curves(p.epochs, p.train_loss, p.val_loss, "Live loss",
                                theme=ui.theme()), key="live_loss")


if s.busy:
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
    if h.starts:
        text = h.starts_text()
        st.caption(f"{text[:1].upper()}{text[1:]}: the lowest is kept, and the curves below "
                   "are its training.")
    if h.epochs:
        ui.plot(viz.loss_curves(h.epochs, h.train_loss, h.val_loss, theme=ui.theme()),
                key="final_loss")
        ui.explain("Training loss (on the training rows) and validation loss (on rows held out "
                   "from training) after every epoch, on a log scale when every loss is positive. "
                   "A mixture trained by its likelihood shows its negative log-likelihood, "
                   "which falls below zero as the experts fit their windows closely (a linear "
                   "scale then). Both falling together is healthy; validation rising while "
                   "training keeps falling is overfitting. The model keeps the weights of the "
                   "best validation epoch.")
    with st.expander("Model and training settings"):
        st.json({"model": run.model_config, "train": run.train_config.__dict__,
                 "data": run.request.to_dict()})

if ui.runs():
    st.subheader(f"Runs ({len(ui.runs())})")
    st.dataframe(pd.DataFrame([r.summary() for r in ui.runs()]), hide_index=True)
    st.caption("Every finished run is saved and listed here after a refresh or a restart. "
               "Select the active run in the sidebar; Splines, Routing and Formula show it. "
               "Rename, download, upload or delete runs on the **Runs** page.")
