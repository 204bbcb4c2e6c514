"""Splines page: the KAN drawn pykan-style, every edge curve of a layer, one edge in detail."""

from __future__ import annotations

import streamlit as st

from kamoe import viz
from kamoe.interpret import kan_chain
from pages import ui_common as ui

run, ds = ui.run_page("Splines")
layers = list(run.model.kan_layers())
if not layers:
    st.info(f"**{run.model_name}** has no KAN layers, so there are no spline edges to show. "
            "Train a `kan`, `kamoe-kan`, `moe-kan`, `fasterkan` or `mlp-kan` model.")
    st.stop()

st.caption(f"Run {run.label}")
chain = kan_chain(run.model)
if chain:
    st.subheader("The network")
    graph = ui.graph_data(run.id, run, ds)
    ui.plot(viz.network_figure(graph), key="net")
    ui.explain("Inputs at the bottom, the output at the top. Every line is one **edge**: a "
               "learned one-variable function φ(x), drawn as the small blue curve in the middle "
               "of the line, over the range of values that edge actually sees. Each node adds up "
               "the edges coming into it. Darker edges matter more (opacity = tanh(3 × "
               "importance), importance being how much the edge moves the output over the data, "
               "as in pykan); faint ones could be pruned.")
else:
    st.info("This model is not a plain KAN stack; choose one of its KAN layers (inside an expert, "
            "a gate or a router) below.")

st.subheader("All edges of a layer")
path = st.selectbox("KAN layer", layers, key="spl_layer",
                    help="Module path of the layer inside the model (experts and gates included).")
curves = ui.edge_data(run.id, path, run, ds)[path]
ui.plot(viz.layer_grid(curves), key="grid")
ui.explain("One small plot per edge of the chosen layer: rows are the layer's outputs, columns "
           "its inputs. The number in each title is the edge importance (1 = the most important "
           "edge of the layer). Curves that are straight lines are almost linear edges; flat or "
           "faint ones contribute little.")

st.subheader("One edge in detail")
ranked = curves.ranked()
choice = st.selectbox("Edge (most important first)", ranked, key="spl_edge",
                      format_func=lambda e: f"{curves.in_names[e[1]]} → {curves.out_names[e[0]]}"
                                            f"  (importance {curves.importance[e]:.3f})")
edge = curves.edge(*choice)
ui.plot(viz.edge_detail(edge), key="edge")
ui.explain("The blue line is the edge function φ(x). Grey dots are the training samples as this "
           "edge saw them; red diamonds are the spline's control points (the coefficients the "
           "training adjusts); the bars below show where the data lies. Outside the shaded data "
           "range the curve is an extrapolation and should not be trusted.")
