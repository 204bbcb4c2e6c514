"""Routing page: how the gate of a mixture of experts spreads the samples over its experts."""

from __future__ import annotations

import streamlit as st

from kamoe import interpret, viz
from kamoe.interpret import kind_shares
from kamoe.interpret.routing import NMI_SPLIT
from pages import ui_common as ui

run, ds = ui.run_page("Routing")
st.caption(f"Run {run.label}")
if not run.model.gates():
    st.info(f"**{run.model_name}** has no gate: every sample goes through the same network, so "
            "there is no routing to look at. Train a mixture of experts on the Train page: "
            "`kamoe-mlp` or `kamoe-kan` (GRKAN gate), `moe-mlp` (GRN gate), or `mlp-kan` "
            "(MLP and KAN experts with a top-k router).")
    st.page_link("pages/train.py", label="Go to Train", icon=":material/model_training:")
    st.stop()

stats, groups, group_name = ui.routing_data(run.id, run, ds)
theme = ui.theme()
labels = interpret.gate_names(run.model)
gate = st.selectbox("Gate", list(stats), key="rt_gate", format_func=lambda p: labels.get(p, p),
                    help="Each mixture of experts in the model has its own gate (router).")
s = stats[gate]
kinds = getattr(s, "expert_kinds", None)
names = [f"expert {e}" + (f" ({kinds[e].upper()})" if kinds is not None else "")
         for e in range(s.n_experts)]
unit = interpret.row_unit(s)

st.subheader("Do the experts specialise?")
spec = interpret.specialisation({gate: s}, groups, group_name)[gate]
(st.success if spec.nmi >= NMI_SPLIT else st.info)(spec.verdict)
c1, c2, c3 = st.columns(3)
c1.metric("NMI (expert vs " + group_name + ")", f"{spec.nmi:.2f}",
          help="Normalised mutual information between each test sample's strongest expert and "
               f"its {group_name}: 0 = unrelated, 1 = each {group_name} has its own expert.")
c2.metric("Routing entropy", f"{spec.entropy:.2f}",
          help=f"Mean entropy of the gate weights; uniform routing is {spec.max_entropy:.2f}.")
c3.metric("Test samples", f"{spec.n_samples:,}")
ui.plot(viz.specialisation_figure(spec, names, theme=theme), key="rt_spec")
ui.explain(f"Each test sample is counted once, under its {group_name} (rows) and the expert "
           "with the largest gate weight for it (columns). A clean diagonal-like pattern means "
           f"the experts split the {group_name}s; rows that look alike mean they did not.")

st.subheader("Gate weights per expert")
ui.plot(viz.gate_histograms(s.flat_normalised, names, unit=unit, theme=theme), key="rt_hist")
ui.explain(f"For every test {unit[:-1]} the gate gives each expert a weight; the weights are "
           "normalised to sum to 1. Weights piled near 0 or 1 mean the gate makes clear choices "
           "(specialised experts); weights all near 1/E mean it averages the experts (no "
           "specialisation). With many experts this is a heat map: one row per expert.")

st.subheader("Expert usage by " + group_name)
by = interpret.routing_by_group({gate: s}, None, groups, group_name)
if ds.kind == "image" and ds.task == "classification":
    images, classes = interpret.class_thumbnails(ds, "test")
    ui.plot(viz.class_thumbnails(images, classes, by, names, theme=theme), key="rt_thumbs")
else:
    ui.plot(viz.usage_by_group(by, group_name, expert_names=names, theme=theme), key="rt_group")
ui.explain(f"The test samples are split by **{group_name}** (the true regime for the regimes "
           "data, the class for classification, quartiles of the target otherwise). Each bar "
           "stacks the mean gate weight of every expert within the group: if the stacks differ "
           "between groups, the experts have specialised on those groups.")

st.subheader("Expert usage over the epochs")
epochs = run.routing_epochs(gate)  # recorded while training, on up to 512 training samples
if epochs:
    epoch = st.select_slider("After epoch", epochs, value=epochs[-1], key="rt_epoch") \
        if len(epochs) > 1 else epochs[0]
    ui.plot(viz.usage_by_group(run.routing_at(gate, epoch), group_name,
                               title=f"Expert usage by {group_name} after epoch {epoch}",
                               expert_names=names, theme=theme), key="rt_epochs")
    ui.explain("The same breakdown as above, replayed over training: move the slider to see how "
               "the gate's split of the groups formed epoch by epoch. It is recorded on a fixed "
               "probe of training samples (up to 512), so the last epoch can differ a little "
               "from the test samples above.")
else:
    st.caption("No per-epoch record by group for this run (it was trained before the dashboard "
               "kept one).")

st.subheader("Routing entropy over training")
record = run.routing  # per-epoch routing records (a DataFrame), kept with the run
if record is not None and len(record):
    ui.plot(viz.entropy_over_epochs(record, max_entropy=s.max_entropy, theme=theme),
            key="rt_entropy")
    ui.explain("Mean entropy of the normalised gate weights on a fixed probe set after every "
               "epoch. The dashed line is the entropy of uniform routing (log E). Falling entropy "
               "means the gate becomes more decisive as training goes on.")
else:
    st.caption("No per-epoch routing record for this run.")

shares = kind_shares(stats)
if len(shares):
    st.subheader("MLP vs KAN experts")
    ui.plot(viz.token_share(shares, theme=theme), key="rt_share")
    ui.explain("MLP-KAN mixes MLP experts (good at representations) and KAN experts (good at "
               "smooth functions). The bars show, per mixture layer, the share of routed token "
               "slots that went to each kind.")

if ds.kind == "tabular" and ds.n_features == 2:
    st.subheader("Which expert wins where")
    wm = ui.winner_data(run.id, gate, run, ds)
    raw = ds.raw_X("train")
    ui.plot(viz.winner_map(wm.x, wm.y, wm.winner, wm.features[0], wm.features[1], names,
                           points=(raw[:, 0], raw[:, 1]), theme=theme), key="rt_map")
    ui.explain("The input plane of this 2-input dataset coloured by the expert with the largest "
               "gate weight at each point; black dots are the training samples. Clean regions "
               "mean the gate splits the input space between the experts.")
