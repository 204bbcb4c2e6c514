"""kamoe dashboard entry point (placeholder until the dashboard lands)."""

import streamlit as st

st.set_page_config(page_title="kamoe", layout="wide")
st.title("kamoe")
st.write("Kolmogorov-Arnold mixtures of experts: the dashboard is being built.")
