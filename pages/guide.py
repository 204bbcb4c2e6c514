"""Guide page: a short teaching tour of KANs, gates and how to read every page."""

import streamlit as st

st.title("Guide")
st.markdown(r"""
### 1. What is a KAN edge?
An ordinary neural network puts a *number* (a weight) on every connection and a fixed
non-linearity (ReLU, tanh) on every node. A **Kolmogorov-Arnold network** does the opposite: every
connection (an **edge**) carries its own learned *function* $\varphi(x)$ of one variable, and each
node just adds up what arrives:

$$ x^{(l+1)}_j = \sum_i \varphi_{j,i}\big(x^{(l)}_i\big). $$

Here every $\varphi$ is a B-spline (a smooth curve defined by a handful of control points) plus a
small SiLU term. Because each edge is a curve of *one* variable, you can plot it, and often
recognise it: a parabola, a sine, a logarithm. Replace every edge by the function it looks like
and the whole network becomes a **formula**.

### 2. What does the gate do?
A **mixture of experts** runs several small networks (experts) side by side and lets a **gate**
decide, sample by sample, how much each expert's answer counts. In **KAMoE** the gate is a GRKAN
(a gated residual network whose dense layers are KAN layers); in a plain **MoE** it is a GRN.
**MLP-KAN** mixes MLP experts and KAN experts and routes every sample to its top-k experts.
If the experts specialise, the gate's choices tell you *which kind of input* each expert handles.

### 3. How to read each page
- **Data**: choose the data. A Feynman equation comes with its true formula, so you can check
  later whether the formula found is the right one. Histograms show where the data lies.
- **Train**: pick a model and press **Train**. The bar and the live loss curves update while it
  trains in the background; **Stop** ends it after the current epoch and keeps the best weights.
  Every run is saved; the sidebar selects which one the other pages show.
- **Splines**: the trained KAN drawn like pykan does: each edge shows its small curve, and faint
  edges matter little. Below: all curves of a layer, then one edge with the data it saw.
- **Routing** (mixtures only): how the gate spreads samples over experts, whether that depends on
  the target range / class / regime, how decisive the gate became during training, and on 2-input
  data a map of which expert wins where.
- **Formula**: symbolic candidates for each edge, a button that extracts the whole formula, the
  formula next to the network's accuracy, and for Feynman data whether the true law was found.
  Export it as LaTeX, Python or sympy.
- **Compare**: standard networks vs MoE vs KAMoE trained briefly on your data, next to the numbers
  published with the KAMoE code for California housing.
- **Runs**: every saved run, still there after a refresh or a restart: rename, download one as
  a file, upload it back (on another machine too), delete.

### 4. A first tour (two clicks)
The app opens on the Feynman equation II.3.24,
$\mathrm{flux} = \frac{\mathrm{Pwr}}{4\pi r^2}$, with a small KAN (2 inputs, 5 hidden nodes,
1 output) preselected. Go to **Train**, press **Train** (about a
second), then open **Formula** and press **Extract formula**.
""")
st.page_link("pages/train.py", label="Start: go to Train", icon=":material/model_training:")
