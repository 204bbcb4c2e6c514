"""AppTest checks of every page: renders with and without a model, the default flow, errors."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[1] / "app.py")
PAGES = ["pages/data.py", "pages/train.py", "pages/splines.py", "pages/routing.py",
         "pages/formula.py", "pages/compare.py", "pages/runs.py", "pages/guide.py"]
TRAIN = "train"  # the Train page's button


@pytest.fixture(autouse=True)
def clear_caches(tmp_path, monkeypatch):
    monkeypatch.setenv("KAMOE_HOME", str(tmp_path / "kamoe-home"))  # an empty run store
    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()


def state(at: AppTest):
    """The session's one state object (kamoe.state.SessionState)."""
    return at.session_state["kamoe"]


def new_app() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert not at.exception
    return at


def wait_job(at: AppTest, key: str = "training", timeout: float = 60.0) -> None:
    """Rerun until the session's background job ``key`` (training, compare) has finished."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        job = getattr(state(at), key)
        if job is None or not job.running:
            break
        time.sleep(0.2)
        at.run()
    else:
        raise AssertionError(f"job {key} did not finish in {timeout} s")
    at.run()


def train_default(at: AppTest) -> None:
    at.switch_page("pages/train.py").run()
    at.button(key=TRAIN).click().run()
    assert not at.exception
    wait_job(at)


def plotly_specs(at: AppTest) -> list[dict]:
    import json

    return [json.loads(el.proto.spec) for el in at.get("plotly_chart")]


def test_every_page_renders_without_a_model():
    at = new_app()
    assert at.title[0].value == "Data"
    assert any("flux" in lat.value for lat in at.latex)  # the default Feynman equation
    assert len(at.get("plotly_chart")) == 2
    for page in PAGES:
        at.switch_page(page).run()
        assert not at.exception, page


def test_default_flow_trains_and_every_page_renders_with_the_model():
    at = new_app()
    train_default(at)
    labels = {m.label: m.value for m in at.metric}
    # The default KAN [2, 5, 1] with LBFGS fits Pwr/(4 pi r^2) almost exactly (R^2 > 0.9999).
    assert float(labels["Test R²"]) > 0.9999
    assert len(state(at).runs) == 1
    for page in PAGES:
        at.switch_page(page).run()
        assert not at.exception, page
    at.switch_page("pages/splines.py").run()
    specs = plotly_specs(at)
    assert len(specs) == 3 and all(len(s["data"]) > 0 for s in specs)
    # Switching pages kept the trained run and never retrained it.
    assert len(state(at).runs) == 1


def test_formula_is_extracted_and_recovered_on_the_default_flow():
    at = new_app()
    train_default(at)
    at.switch_page("pages/formula.py").run()
    at.button(key="fx_extract").click().run()
    job = next(iter(state(at).formula_jobs.values()))
    assert job.join(60)
    at.run()
    at.run()
    assert not at.exception
    assert any("4 \\pi r^{2}" in lat.value for lat in at.latex)
    assert any("Recovered" in s.value for s in at.success)
    assert len(at.code) == 4  # search log + LaTeX, Python, sympy exports


def test_bad_csv_upload_shows_the_loader_message():
    at = new_app()
    at.selectbox(key="w_family").select("csv").run()
    at.file_uploader(key="csv_upload").upload("bad.csv", b"a,b\n1,2\n3,4,5,6\n", "text/csv").run()
    assert not at.exception
    assert any("fields" in e.value for e in at.error)
    at.switch_page("pages/train.py").run()  # the app stays usable
    assert not at.exception
    assert at.error


def test_bad_setting_is_a_message_not_a_traceback():
    at = new_app()
    at.switch_page("pages/train.py").run()
    at.text_input(key="m_kan_feynman:II.3.24_hidden").input("five")
    at.button(key=TRAIN).click().run()
    assert not at.exception
    assert any("hidden" in e.value for e in at.error)


def test_stop_mid_run_and_a_gated_model_on_routing():
    at = new_app()
    at.switch_page("pages/train.py").run()
    at.selectbox(key="w_model_tabular").select("kamoe-mlp").run()
    form = "kamoe-mlp_feynman:II.3.24"
    at.number_input(key=f"t_{form}_epochs").set_value(5000)
    at.number_input(key=f"t_{form}_patience").set_value(0)
    at.button(key=TRAIN).click().run()
    time.sleep(1.0)
    at.run()
    assert state(at).training.running
    at.button(key="stop_training").click().run()
    wait_job(at, timeout=30)
    assert any("stopped" in w.value.lower() for w in at.warning)
    run = state(at).runs[-1]
    assert run.history.stopped == "stopped" and len(run.history.epochs) < 5000
    at.switch_page("pages/routing.py").run()
    assert not at.exception
    titles = [s["layout"]["title"]["text"] for s in plotly_specs(at)]
    assert "Gate weights per expert" in titles
    assert "Which expert wins where" in titles  # II.3.24 has two inputs


def test_every_dataset_family_renders_or_explains_what_is_missing():
    at = new_app()
    for family in ["california", "diabetes", "friedman1", "digits", "moons", "iris", "regimes",
                   "crypto", "csv"]:
        at.selectbox(key="w_family").select(family).run()
        assert not at.exception, family
        # Either the data is shown (two figures) or the loader says what to do.
        assert len(at.get("plotly_chart")) == 2 or at.error, family
    at.selectbox(key="w_family").select("regimes").run()
    at.switch_page("pages/train.py").run()
    assert not at.exception
    assert at.selectbox(key="w_model_sequence").value == "kamoe-gru"  # sequential default


def test_compare_runs_standard_moe_and_kamoe_in_the_background():
    at = new_app()
    at.switch_page("pages/compare.py").run()
    at.multiselect(key="cmp_bases").set_value(["mlp"]).run()
    at.number_input(key="cmp_epochs_tabular").set_value(2).run()
    at.button(key="cmp_run").click().run()
    assert state(at).compare.join(60)
    at.run()
    assert not at.exception
    rows = state(at).compare.result
    assert [r["model"] for r in rows] == ["mlp", "moe-mlp", "kamoe-mlp"]
    assert [r["gate"] for r in rows] == ["-", "GRN", "GRKAN"]
    assert any("KAMoE" in str(df.value.columns.tolist()) for df in at.dataframe)


# ---------------------------------------------------------------------------- the job runner
# kamoe/jobs.py, kamoe/runs.py and kamoe/recipes.py are plain Python (no streamlit): tested here
# without any app.


def test_training_job_runs_in_a_thread_reports_progress_and_can_be_stopped():
    from kamoe.data import load
    from kamoe.recipes import training_config
    from kamoe.runs import DatasetRequest, new_run, training_job

    ds = load("feynman:II.3.24", seed=0, n=300)
    cfg = training_config("kan", ds)
    assert (cfg.optimizer, cfg.lr, cfg.epochs, cfg.grid_update_epochs) == ("lbfgs", 1.0, 60, 10)
    cfg.epochs, cfg.patience = 100_000, None
    request = DatasetRequest("feynman:II.3.24", options={"n": 300}, label="II.3.24")
    run = new_run(request, ds, "kan", {"hidden": [3]}, cfg)
    job = training_job(run, ds).start()
    deadline = time.time() + 30
    while not job.progress().epochs and time.time() < deadline:
        time.sleep(0.05)
    assert job.running and job.progress().epochs
    job.request_stop()
    assert job.join(30)
    p = job.progress()
    assert p.status == "stopped" and run.history.stopped == "stopped"
    assert len(run.history.epochs) < 100_000 and "r2" in run.history.metrics


def test_job_errors_become_messages_and_settings_parse_with_clear_errors():
    from kamoe.jobs import Job
    from kamoe.recipes import parse_setting
    from kamoe.train import TrainingError

    def bad(job):
        raise TrainingError("lr=50 is far too large")

    def crash(job):
        raise RuntimeError("boom")

    j1, j2 = Job(bad).start(), Job(crash).start()
    assert j1.join(5) and j2.join(5)
    assert (j1.progress().status, j1.progress().message) == ("error", "lr=50 is far too large")
    assert j2.progress().message == "RuntimeError: boom" and "Traceback" in j2.detail
    assert parse_setting("hidden", "5, 5", [5]) == [5, 5]
    assert parse_setting("grid_range", "-1, 1.5", [-1.0, 1.0]) == [-1.0, 1.5]
    assert parse_setting("n_kan", "", None) is None
    with pytest.raises(ValueError, match="hidden"):
        parse_setting("hidden", "five", [5])
