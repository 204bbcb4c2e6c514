"""AppTest checks of every page: renders with and without a model, the default flow, errors."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

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


def wait_job(at: AppTest, key: str = "training", timeout: float = 60.0,
             job_of: Callable[[], Any] | None = None) -> None:
    """Rerun until the session's background job ``key`` (training, compare), or the one
    ``job_of()`` returns, has finished."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        job = job_of() if job_of is not None else getattr(state(at), key)
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


def plotly_array(value):
    """A plotly JSON array: a list, or the typed-array form {"dtype", "bdata"} plotly.py writes."""
    import base64

    import numpy as np

    if isinstance(value, dict):
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
    return np.asarray(value, dtype=float)


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
    # The edge in detail is drawn over its input's raw values (Pwr and r lie in [1, 5], the
    # model sees them scaled to [-1, 1]): its curve spans the training data's raw range.
    ds = state(at).active_run().request.load()
    detail = specs[-1]
    axis = detail["layout"]["xaxis2"]["title"]["text"]
    assert axis.endswith("(raw units)"), axis
    raw = ds.raw_X("train")[:, list(ds.feature_names).index(axis.split(" ")[0])]
    curve = next(t for t in detail["data"] if t.get("name") == "edge function φ(x)")
    xs = plotly_array(curve["x"])
    assert xs.min() == pytest.approx(raw.min(), rel=1e-6)
    assert xs.max() == pytest.approx(raw.max(), rel=1e-6)
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
    # the default flow's formula comes out of the trained KAN, and the page says so
    assert any("read from the KAN" in s.value for s in at.success)
    assert any("How it was derived" in m.value for m in at.markdown)
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


def test_routing_page_says_whether_experts_split_the_classes_with_thumbnails():
    at = new_app()
    at.selectbox(key="w_family").select("digits").run()
    at.switch_page("pages/train.py").run()
    at.selectbox(key=next(k for k in ("w_model_image", "w_model_tabular")
                          if k in [s.key for s in at.selectbox])).select("kamoe-mlp").run()
    form = "kamoe-mlp_digits"
    at.number_input(key=f"t_{form}_epochs").set_value(3)
    at.button(key=TRAIN).click().run()
    wait_job(at)
    at.switch_page("pages/routing.py").run()
    assert not at.exception
    # the specialisation verdict in words, the NMI as a number, and the gate's readable name
    verdicts = [m.value for m in [*at.success, *at.info]]
    assert any("NMI" in v for v in verdicts), verdicts
    assert any(m.label.startswith("NMI (expert vs digit)") for m in at.metric)
    assert at.selectbox(key="rt_gate").format_func("net.0").startswith("gate of layer 1: GRKAN")
    titles = [s["layout"]["title"]["text"] for s in plotly_specs(at)]
    assert "Expert shares per class" in titles  # one mean image per digit beside its shares
    hist = next(s for s in plotly_specs(at) if s["layout"]["title"]["text"] ==
                "Gate weights per expert")
    assert "359 samples" in str(hist["layout"]["title"])  # counted in samples of the test split


def test_routing_page_replays_the_expert_usage_over_the_epochs():
    at = new_app()
    at.switch_page("pages/train.py").run()
    at.selectbox(key="w_model_tabular").select("kamoe-mlp").run()
    form = "kamoe-mlp_feynman:II.3.24"
    at.number_input(key=f"t_{form}_epochs").set_value(4)
    at.button(key=TRAIN).click().run()
    wait_job(at)
    at.switch_page("pages/routing.py").run()
    assert not at.exception
    slider = at.select_slider(key="rt_epoch")
    assert list(slider.options) == ["1", "2", "3", "4"]  # one record after each of 4 epochs
    titles = " ".join(s["layout"]["title"]["text"] for s in plotly_specs(at))
    assert "after epoch 4" in titles
    slider.set_value(1).run()
    assert not at.exception
    titles = " ".join(s["layout"]["title"]["text"] for s in plotly_specs(at))
    assert "after epoch 1" in titles and "after epoch 4" not in titles


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


def test_training_job_with_several_starts_counts_them_and_draws_each_curve_afresh():
    from kamoe.data import load
    from kamoe.runs import DatasetRequest, new_run, training_job
    from kamoe.train import TrainConfig

    ds = load("feynman:II.3.24", seed=0, n=300)
    cfg = TrainConfig(epochs=3, patience=None, starts=2)
    run = new_run(DatasetRequest("feynman:II.3.24", options={"n": 300}), ds, "mlp",
                  {"hidden": [4]}, cfg)
    texts = []
    job = training_job(run, ds)
    report = job.report

    def spy(**kw):
        texts.append(kw.get("text"))
        report(**kw)

    job.report = spy
    assert job.start().join(60)
    p = job.progress()
    assert p.status == "done" and (p.step, p.total) == (6, 6)
    assert p.epochs == [1, 2, 3]  # the second start's curve only
    assert "start 2/2, epoch 3/3" in texts[-2] and len(run.history.starts) == 2


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


# ---------------------------------------------------------------------------- state, store, queue


def test_train_form_keeps_its_values_across_pages_and_trainings():
    at = new_app()
    at.switch_page("pages/train.py").run()
    epochs = "t_kan_feynman:II.3.24_epochs"
    assert at.number_input(key=epochs).value == 60  # the recipe's default (LBFGS on a formula)
    at.number_input(key=epochs).set_value(123).run()  # no training: only the button trains
    assert state(at).training is None
    at.switch_page("pages/data.py").run()
    at.switch_page("pages/train.py").run()
    assert at.number_input(key=epochs).value == 123
    at.button(key=TRAIN).click().run()
    wait_job(at)
    assert at.number_input(key=epochs).value == 123  # still, after the training
    assert state(at).runs[-1].train_config.epochs == 123
    at.button(key="reset_form").click().run()
    assert at.number_input(key=epochs).value == 60


def test_a_new_session_lists_the_stored_run_with_its_formula():
    at = new_app()
    train_default(at)
    at.switch_page("pages/formula.py").run()
    at.button(key="fx_extract").click().run()
    assert next(iter(state(at).formula_jobs.values())).join(60)
    at.run()
    run_id = state(at).runs[0].id
    fresh = new_app()  # a browser refresh: a new session on the same store
    assert [r.id for r in state(fresh).runs] == [run_id]
    fresh.switch_page("pages/formula.py").run()
    assert not fresh.exception
    assert any("Recovered" in s.value for s in fresh.success)
    assert any("4 \\pi r^{2}" in lat.value for lat in fresh.latex)
    fresh.switch_page("pages/splines.py").run()
    assert len(plotly_specs(fresh)) == 3  # the model was rebuilt from the stored weights


def test_runs_page_renames_refuses_a_bad_archive_and_deletes():
    at = new_app()
    train_default(at)
    at.switch_page("pages/runs.py").run()
    run = state(at).runs[0]
    at.text_input(key=f"runs_name_{run.id}").input("my run").run()
    at.button(key="runs_rename").click().run()
    assert not at.exception and run.name == "my run"
    assert state(at).store.get(run.id).name == "my run"
    at.file_uploader(key="runs_upload").upload("x.zip", b"PK\x03\x04junk", "application/zip").run()
    assert any("Nothing was imported" in e.value and "not a kamoe run archive" in e.value
               for e in at.error)
    at.checkbox(key=f"runs_sure_{run.id}").check().run()
    at.button(key="runs_delete").click().run()
    assert not at.exception and state(at).runs == [] and state(at).store.list() == []


SEMICOLON_CSV = "a;b;y\n" + "".join(f"{i},5;{(i * 7) % 5},25;{i * 3},75\n" for i in range(40))


def test_csv_with_semicolons_and_decimal_commas_loads_or_names_the_option():
    at = new_app()
    at.selectbox(key="w_family").select("csv").run()
    at.file_uploader(key="csv_upload").upload("eu.csv", SEMICOLON_CSV.encode(), "text/csv").run()
    assert not at.exception and not at.error
    assert len(at.get("plotly_chart")) == 2  # histograms and scatter: the data loaded
    ds = at.session_state["kamoe"].request().load()
    assert ds.raw_X("train").max() == 39.5  # '39,5': decimal commas read as numbers
    # Comma-separated with quoted decimal commas is not switched by itself: the message names
    # the Data page's option, and setting it loads the file.
    quoted = "a,y\n" + "".join(f'"{i},5",{i}\n' for i in range(40))
    at.file_uploader(key="csv_upload").upload("q.csv", quoted.encode(), "text/csv").run()
    assert any("Decimal separator" in e.value for e in at.error)
    at.selectbox(key="w_csv_decimal").select(",").run()
    assert not at.error and len(at.get("plotly_chart")) == 2


def test_eight_sessions_training_at_once_all_finish_and_at_most_n_train_together():
    from kamoe.jobs import training_queue

    queue = training_queue()
    before = queue.capacity
    n = 2  # the bound under test (the default is the core count: 2 on the CI machine)
    queue.set_capacity(n)
    queue.reset_peaks()
    try:
        sessions = [new_app() for _ in range(8)]
        form = "t_kan_feynman:II.3.24"
        t0 = time.time()
        for at in sessions:  # every session presses Train, one right after the other
            at.switch_page("pages/train.py").run()
            at.number_input(key=f"{form}_epochs").set_value(100_000)
            at.number_input(key=f"{form}_patience").set_value(0)
            at.number_input(key=f"{form}_maxs").set_value(1.0)  # each trains for 1 s
            at.button(key=TRAIN).click().run()
            assert not at.exception
        jobs = [state(at).training for at in sessions]
        assert all(j is not None for j in jobs)
        for at in sessions:
            wait_job(at, timeout=120)
        wall = time.time() - t0
        assert all(j.status == "done" for j in jobs)
        # None lost, each its own: every session holds exactly the run its own job trained.
        for at, j in zip(sessions, jobs, strict=True):
            (run,) = state(at).runs
            assert run is j.owner and run.history.stopped == "time_limit"
        assert len({j.owner.id for j in jobs}) == 8
        assert len(state(sessions[0]).store.list()) == 8  # and all eight are stored
        assert queue.peak_running <= n  # the bound held ...
        assert queue.peak_waiting >= 1  # ... while others waited in line
        print(f"8 sessions x 1 s trainings, {n} at once: {wall:.1f} s wall")
    finally:
        queue.set_capacity(before)


def test_train_form_offers_a_device_only_when_a_gpu_is_present(monkeypatch):
    from kamoe import recipes

    at = new_app()
    at.switch_page("pages/train.py").run()
    if not recipes.device_choices():  # this machine has no GPU: no device setting
        assert "device" not in [s.label for s in at.selectbox]
    monkeypatch.setattr(recipes, "device_choices", lambda: ["auto", "cpu", "cuda"])
    at.run()
    box = next(s for s in at.selectbox if s.label == "device")
    assert box.value == "auto" and box.options == ["auto", "cpu", "cuda"]
    box.set_value("cpu").run()
    at.button(key=TRAIN).click().run()
    assert not at.exception
    assert state(at).training.owner.train_config.device == "cpu"  # what the form asked for
    wait_job(at)


def test_a_saved_estimator_opens_in_the_dashboard_like_any_run():
    import numpy as np

    from kamoe.sklearn import KANRegressor

    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, size=(120, 2))
    run_id = KANRegressor(hidden=(2,), epochs=2).fit(X, X[:, 0] * X[:, 1]).save(name="by script")
    at = new_app()  # the store is this test's KAMOE_HOME (clear_caches)
    assert [r.id for r in state(at).runs] == [run_id]
    for page in ("pages/runs.py", "pages/splines.py", "pages/formula.py"):
        at.switch_page(page).run()
        assert not at.exception, page
    assert state(at).active_run().model is not None  # its weights were loaded for the plots


def test_splines_page_prunes_into_a_new_run_drawn_before_and_after_and_snaps_an_edge():
    at = new_app()
    train_default(at)
    parent = state(at).active_run()
    at.switch_page("pages/splines.py").run()
    assert not at.exception
    # A negative threshold cannot be typed (min 0); a huge one removes every hidden node but
    # the best one (a level is never emptied) and cuts nothing: the drawing must shrink.
    at.number_input(key="spl_node_t").set_value(1e9)
    at.number_input(key="spl_edge_t").set_value(0.0)
    at.button(key="FormSubmitter:prune_form-Prune").click().run()
    assert not at.exception
    wait_job(at, "prune", timeout=90, job_of=lambda: state(at).derive_job(parent.id))
    child = state(at).active_run()
    assert child.parent_id == parent.id and child.stored
    assert not at.exception and not at.error
    before, after = (s for s in plotly_specs(at) if s["layout"]["title"]["text"] in
                     ("Before", "After"))
    # The default KAN [2, 5, 1]: 8 nodes and 15 edges before, [2, 1, 1] after: 4 nodes, 3 edges.
    assert drawn(before) == (8, 15) and drawn(after) == (4, 3)
    assert any("widths" in str(df.value) for df in at.dataframe)
    # Snap one edge: the library's fits are listed and one is drawn over the curve.
    at.toggle(key="spl_snap").set_value(True).run()
    assert not at.exception
    names = [t.get("name", "") for t in plotly_specs(at)[-1]["data"]]
    assert any(n.startswith("fitted:") for n in names)


def drawn(spec: dict) -> tuple[int, int]:
    """(nodes, edges) drawn in a network figure: its node markers and its edge insets."""
    nodes = next(t for t in spec["data"] if t.get("name") == "nodes")
    return len(nodes["text"]), sum(1 for t in spec["data"] if t.get("name", "").startswith("edge "))


def test_splines_page_extends_the_grid_and_shows_the_edge_on_both_grids():
    at = new_app()
    train_default(at)
    parent = state(at).active_run()
    at.switch_page("pages/splines.py").run()
    assert at.selectbox(key="spl_grid").value == 10  # the default KAN has 5 intervals
    at.button(key="FormSubmitter:grid_form-Extend grid and retrain").click().run()
    wait_job(at, "grid", timeout=90, job_of=lambda: state(at).derive_job(parent.id))
    assert not at.exception and not at.error
    child = state(at).active_run()
    assert child.parent_id == parent.id and child.model.config["grid_size"] == 10
    titles = [s["layout"]["title"]["text"] for s in plotly_specs(at)]
    assert any(t.startswith("Grid 5:") for t in titles)
    assert any(t.startswith("Grid 10:") for t in titles)
    assert at.selectbox(key="spl_grid").options == ["20", "50", "100"]  # finer than 10 now
