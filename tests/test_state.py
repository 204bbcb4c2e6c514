"""One browser session's state (kamoe/state.py), without streamlit: jobs collected once, runs
saved to and listed from the store, the Data page's choice as a dataset request."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from kamoe.data import load
from kamoe.jobs import Job, JobQueue
from kamoe.recipes import training_config
from kamoe.state import DataChoice, SessionState
from kamoe.store import RunStore, StoreError
from kamoe.train import predict


def small_session(home, queue=None) -> SessionState:
    s = SessionState(RunStore(home), queue or JobQueue(capacity=2))
    s.data.options["feynman"]["n"] = 200  # small data, quick fits
    return s


def train(s: SessionState, epochs: int = 3, model: str = "kan") -> Job:
    ds = s.request().load()
    job = s.start_training(ds, model, {"hidden": [3]}, training_config(model, ds, epochs=epochs))
    assert job.join(60)
    return job


def test_a_finished_training_is_collected_once_saved_and_listed_by_a_new_session(tmp_path):
    s = small_session(tmp_path)
    assert s.runs == [] and s.collect() is False
    job = train(s)
    assert s.collect() is True and s.collect() is False  # exactly once
    (run,) = s.runs
    assert s.active_run() is run and run.stored and s.notice[0] == "success"
    # A browser refresh (a new session) or a server restart: the run is listed from the store.
    again = small_session(tmp_path)
    (listed,) = again.runs
    assert listed.id == run.id and listed.model is None and again.active_id == run.id
    ds = listed.request.load()
    model = again.ensure_model(listed)
    np.testing.assert_array_equal(predict(model, ds.X_test), predict(job.owner.model, ds.X_test))


def test_runs_from_the_cli_and_other_sessions_appear_on_refresh(tmp_path, monkeypatch):
    from kamoe.cli import main

    s = small_session(tmp_path)
    other = small_session(tmp_path)
    train(other)
    other.collect()
    monkeypatch.setenv("KAMOE_HOME", str(tmp_path))
    assert main(["train", "--dataset", "moons", "--model", "mlp", "--epochs", "1"]) == 0
    assert s.runs == []  # listed when the session starts or is refreshed, not in between
    s.refresh()
    assert sorted(r.source for r in s.runs) == ["cli", "dashboard"]


def test_cancel_in_line_rename_delete_and_import(tmp_path):
    queue = JobQueue(capacity=1)
    block = threading.Event()
    queue.submit(Job(lambda job: block.wait(10)))  # another session's training holds the slot
    s = small_session(tmp_path, queue)
    ds = s.request().load()
    job = s.start_training(ds, "kan", {}, training_config("kan", ds, epochs=2))
    assert job.queued and job.progress().position == 1 and s.busy
    s.cancel_training()
    assert s.collect() and s.notice[0] == "info" and s.runs == [] and not s.busy
    block.set()
    train(s)
    s.collect()
    run = s.runs[0]
    s.rename(run.id, "first try")
    assert RunStore(tmp_path).get(run.id).name == "first try" and run.name == "first try"
    archive = s.export(run.id)
    s.delete(run.id)
    assert s.runs == [] and s.active_run() is None and RunStore(tmp_path).list() == []
    kind, text = s.import_upload(("a.zip", 1, "id"), archive)
    assert kind == "success" and [r.id for r in s.runs] == [run.id]
    assert s.import_upload(("a.zip", 1, "id"), b"junk") == (kind, text)  # same upload: once
    kind, text = s.import_upload(("b.zip", 4, "id2"), b"junk")
    assert kind == "error" and "not a kamoe run archive" in text and len(s.runs) == 1


def test_a_run_that_cannot_be_saved_stays_in_the_session(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    s = small_session(blocker / "home")
    train(s)
    s.collect()
    assert len(s.runs) == 1 and not s.runs[0].stored
    assert s.notice[0] == "warning" and "not saved" in s.notice[1]
    s.refresh()
    assert len(s.runs) == 1  # kept: it is nowhere else
    with pytest.raises(StoreError):
        s.export(s.runs[0].id)


def test_the_data_choice_is_a_dataset_request():
    d = DataChoice(family="csv", upload_name="m.csv", upload_bytes=b"a;b\n1,5;2\n",
                   csv_sep=";", csv_decimal=",", csv_features="a", csv_target="b")
    r = d.request(seed=3)
    assert (r.spec, r.seed, r.data, r.data_name) == ("csv", 3, b"a;b\n1,5;2\n", "m.csv")
    assert r.options == {"test_size": 0.2, "window": 24, "target": "b", "sep": ";",
                         "decimal": ",", "features": "a"}
    default = DataChoice().request()
    assert default.spec == "feynman:II.3.24" and default.label == "Feynman II.3.24"
    assert load(default.spec, **default.options).name.startswith("feynman")


def test_routing_by_group_per_epoch_is_kept_and_reloads(tmp_path):
    s = small_session(tmp_path)
    train(s, epochs=3, model="kamoe-mlp")
    s.collect()
    run = s.runs[0]
    gate = run.routing_groups["gate"].iloc[0]
    assert run.routing_epochs(gate) == [1, 2, 3]  # one record after each of the 3 epochs
    last = run.routing_at(gate, 3)
    # per group the experts' mean weights are normalised shares: they sum to 1
    np.testing.assert_allclose(last.groupby("group", observed=True)["mean_weight"].sum(), 1,
                               atol=1e-5)
    listed = small_session(tmp_path).run(run.id)
    assert listed.routing_epochs(gate) == [1, 2, 3]
    back = listed.routing_at(gate, 3)
    assert list(back["group"].astype(str)) == list(last["group"].astype(str))
    np.testing.assert_allclose(back["mean_weight"], last["mean_weight"])
