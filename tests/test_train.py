"""Tests for kamoe/train.py: the training loop, metrics, saving and loading."""

from __future__ import annotations

import json
import math
import threading

import numpy as np
import pytest
import torch

from kamoe.data import Affine, Dataset, load
from kamoe.models import build_for
from kamoe.train import (
    TrainConfig,
    TrainingError,
    evaluate,
    fit,
    load_model,
    predict,
    regression_metrics,
    save_model,
    update_grids,
)


@pytest.fixture(scope="module")
def feynman():
    return load("feynman:I.12.1", seed=0, n=600)  # F = mu * Nn: two variables, smooth


def tiny_regression(n: int = 200, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, size=(n, 2))
    y = (np.sin(2 * X[:, 0]) + X[:, 1] ** 2)[:, None]
    cut = int(0.8 * n)
    return Dataset("tiny", "regression", "tabular", X[:cut], y[:cut], X[cut:], y[cut:],
                   ["a", "b"], ["y"], Affine.identity(2), Affine.identity(1))


def test_default_small_kan_reaches_high_r2_quickly(feynman):
    model = build_for("kan", feynman, hidden=[5])
    cfg = TrainConfig(optimizer="lbfgs", lr=1.0, epochs=40, grid_update_epochs=10,
                      batch_size=None)
    hist = fit(model, feynman, cfg)
    assert hist.metrics["r2"] >= 0.99  # issue #3: a default dashboard-size run reaches 0.99
    assert hist.best_epoch >= 1 and len(hist.train_loss) == len(hist.epochs)


def test_same_seed_gives_identical_metrics():
    ds = tiny_regression()
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        model = build_for("mlp", ds, hidden=[8])
        runs.append(fit(model, ds, TrainConfig(epochs=5, seed=3)).metrics)
    assert runs[0] == runs[1]


def test_several_starts_keep_the_initialisation_with_the_best_validation_loss():
    ds = tiny_regression()
    cfg = TrainConfig(epochs=6, lr=0.02, seed=3)
    torch.manual_seed(0)
    one = fit(build_for("mlp", ds, hidden=[4]), ds, cfg)
    assert one.starts == [] and one.kept_start == 1
    seen: list[tuple[int, int, int]] = []
    torch.manual_seed(0)
    model = build_for("mlp", ds, hidden=[4])
    hist = fit(model, ds, TrainConfig(epochs=6, lr=0.02, seed=3, starts=3),
               callback=lambda p: seen.append((p.start, p.starts, p.epoch)))
    assert [s["start"] for s in hist.starts] == [1, 2, 3]
    assert seen == [(start, 3, e) for start in (1, 2, 3) for e in range(1, 7)]
    # the first start is the model as given: the same training as with starts=1
    assert hist.starts[0]["best_val_loss"] == min(one.val_loss)
    losses = [s["best_val_loss"] for s in hist.starts]
    assert len(set(losses)) == 3  # the other starts are other initialisations
    assert hist.kept_start == 1 + int(np.argmin(losses))
    assert min(hist.val_loss) == min(losses)  # the kept start's own record
    assert evaluate(model, ds) == pytest.approx(hist.metrics)  # ... and its weights in the model
    assert hist.seconds == pytest.approx(sum(s["seconds"] for s in hist.starts))
    torch.manual_seed(0)
    again = fit(build_for("mlp", ds, hidden=[4]), ds, TrainConfig(epochs=6, lr=0.02, seed=3,
                                                                 starts=3))
    assert again.starts == [{**s, "seconds": a["seconds"]} for s, a in
                            zip(hist.starts, again.starts, strict=True)]  # seeded
    stop = threading.Event()
    stop.set()  # a stop request ends the starts too
    assert len(fit(build_for("mlp", ds), ds, TrainConfig(epochs=5, starts=3), stop=stop)
               .starts) == 1
    with pytest.raises(TrainingError, match="build it with kamoe.models.build"):
        fit(torch.nn.Linear(2, 1), ds, TrainConfig(epochs=1, starts=2))
    for bad in (0, True, 2.5, 21):
        with pytest.raises(TrainingError, match="starts .* from 1 to 20"):
            TrainConfig(starts=bad).validate()


def test_routing_record_of_several_starts_is_the_kept_starts():
    from kamoe.interpret import RoutingRecorder

    ds = load("regimes", seed=0, n=400)
    recorder = RoutingRecorder(ds.X_train)
    hist = fit(build_for("kamoe-gru", ds, units=4, layers=1), ds,
               TrainConfig(epochs=40, lr=0.05, patience=2, plateau_patience=None, starts=2),
               callback=recorder)
    assert recorder.start == 2  # it recorded both starts
    recorder.keep_start(hist.kept_start)
    epochs = sorted(set(recorder.frame()["epoch"]))
    assert epochs == list(range(1, len(hist.epochs) + 1))
    other = next(s for s in hist.starts if s["start"] != hist.kept_start)
    recorder.keep_start(other["start"])
    assert len(set(recorder.frame()["epoch"])) == other["epochs"]


def test_early_stopping_restores_best_weights():
    ds = tiny_regression()
    model = build_for("mlp", ds, hidden=[16])
    hist = fit(model, ds, TrainConfig(epochs=400, lr=0.05, patience=3, plateau_patience=None))
    assert hist.stopped == "early_stopping"
    # the restored model's validation loss is the best one recorded
    assert hist.val_loss[hist.best_epoch - 1] == pytest.approx(min(hist.val_loss))


def test_stop_flag_is_honoured_within_one_epoch():
    ds = tiny_regression(n=2000)
    stop = threading.Event()
    seen = []

    def callback(p):
        seen.append(p.epoch)
        if p.epoch == 2:
            stop.set()

    hist = fit(build_for("mlp", ds), ds, TrainConfig(epochs=100, batch_size=16), callback, stop)
    assert hist.stopped == "stopped" and hist.epochs[-1] == 2 and seen == [1, 2]


def test_stop_flag_interrupts_mid_epoch():
    ds = tiny_regression(n=2000)
    stop = threading.Event()
    stop.set()  # already set: the first mini-batch finishes, then the epoch is cut short
    hist = fit(build_for("mlp", ds), ds, TrainConfig(epochs=100, batch_size=16), stop=stop)
    assert hist.stopped == "stopped" and hist.epochs == [1]


def test_nan_guard_restores_best_weights_and_explains():
    ds = tiny_regression()
    model = build_for("mlp", ds, hidden=[8])
    calls = {"n": 0}

    def poison(p):
        calls["n"] += 1
        if calls["n"] == 3:  # corrupt the weights after epoch 3, as a diverging run would
            with torch.no_grad():
                for prm in p.model.parameters():
                    prm.fill_(float("nan"))

    hist = fit(model, ds, TrainConfig(epochs=20, patience=None), callback=poison)
    assert hist.stopped == "diverged"
    assert "diverged" in hist.message and "learning rate" in hist.message
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert math.isfinite(hist.metrics["r2"])


def test_lbfgs_and_adamw_and_full_batch_run():
    ds = tiny_regression()
    for cfg in (TrainConfig(epochs=3, optimizer="lbfgs", lr=1.0),
                TrainConfig(epochs=3, optimizer="adamw", weight_decay=1e-3),
                TrainConfig(epochs=3, batch_size=None)):
        hist = fit(build_for("kan", ds), ds, cfg)
        assert len(hist.epochs) == 3


def test_sparsity_penalty_shrinks_edges():
    ds = tiny_regression(n=400)
    scale = {}
    for lam in (0.0, 0.05):
        torch.manual_seed(0)
        model = build_for("kan", ds, hidden=[4])
        fit(model, ds, TrainConfig(epochs=60, lr=1e-2, sparsity=lam, patience=None, seed=0))
        x = torch.as_tensor(ds.X_train, dtype=torch.float32)
        with torch.no_grad():
            scale[lam] = float(model.net.layers[0].edge_curves(x).abs().mean())
    assert scale[0.05] < scale[0.0]


def test_grid_update_moves_grid_to_data_range():
    ds = tiny_regression()
    model = build_for("kan", ds, hidden=[3])
    X = torch.as_tensor(ds.X_train * 3, dtype=torch.float32)  # data far outside [-1, 1]
    assert update_grids(model, X) == 2
    first = model.net.layers[0]
    k = first.spline_order
    assert first.grid[:, k].max() <= X.min(0).values.max()


def test_classification_metrics_and_predict_shape():
    ds = load("moons", seed=0, n=300)
    model = build_for("mlp", ds, hidden=[16])
    hist = fit(model, ds, TrainConfig(epochs=30, lr=1e-2))
    assert 0.5 < hist.metrics["accuracy"] <= 1.0  # moons is learnable well above chance
    assert hist.metrics["log_loss"] > 0
    assert predict(model, ds.X_test).shape == (len(ds.X_test), 2)


def test_regression_metrics_known_values():
    m = regression_metrics(np.array([[1.0], [2.0], [3.0]]), np.array([[1.0], [2.0], [4.0]]))
    assert m["r2"] == pytest.approx(0.5)  # 1 - 1/2
    assert m["rmse"] == pytest.approx(math.sqrt(1 / 3))
    assert m["mae"] == pytest.approx(1 / 3)


def test_bad_training_settings_raise_clear_errors():
    ds = tiny_regression()
    with pytest.raises(TrainingError, match="optimizer"):
        fit(build_for("mlp", ds), ds, TrainConfig(optimizer="sgd"))
    with pytest.raises(TrainingError, match="lr"):
        fit(build_for("mlp", ds), ds, TrainConfig(lr=-1))
    with pytest.raises(TrainingError, match="epochs"):
        fit(build_for("mlp", ds), ds, TrainConfig(epochs=0))


# ---------------------------------------------------------------- save / load


def test_save_load_round_trip_keeps_predictions(tmp_path, feynman):
    model = build_for("kamoe-kan", feynman, hidden=[4])
    hist = fit(model, feynman, TrainConfig(epochs=3, grid_update_epochs=1))
    path = save_model(model, tmp_path / "m", dataset=feynman, history=hist)
    loaded, meta = load_model(path)
    assert np.array_equal(predict(loaded, feynman.X_test), predict(model, feynman.X_test))
    assert meta["dataset"]["feature_names"] == feynman.feature_names
    assert evaluate(loaded, feynman) == pytest.approx(hist.metrics)


def test_load_refuses_missing_corrupted_and_foreign_files(tmp_path):
    with pytest.raises(TrainingError, match="not a saved kamoe model"):
        load_model(tmp_path / "nothing")
    ds = tiny_regression()
    path = save_model(build_for("mlp", ds), tmp_path / "m", dataset=ds)
    (path / "weights.pt").write_bytes(b"not a torch file")
    with pytest.raises(TrainingError, match="corrupted"):
        load_model(path)
    # weights of another architecture
    other = save_model(build_for("mlp", ds, hidden=[3]), tmp_path / "o")
    (path / "weights.pt").write_bytes((other / "weights.pt").read_bytes())
    with pytest.raises(TrainingError, match="another"):
        load_model(path)
    (path / "config.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(TrainingError, match="not a kamoe model config"):
        load_model(path)


def test_load_never_unpickles_arbitrary_objects(tmp_path):
    ds = tiny_regression()
    path = save_model(build_for("mlp", ds), tmp_path / "m")

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"x": Evil()}, path / "weights.pt")
    with pytest.raises(TrainingError):
        load_model(path)


# ---------------------------------------------------------------------------- devices


def _hide_gpus(monkeypatch) -> None:
    """Make torch report no CUDA and no MPS device, whatever this machine has."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)


def test_auto_and_cpu_train_identically_and_the_model_ends_on_the_cpu(monkeypatch):
    _hide_gpus(monkeypatch)  # "auto" is then the CPU: the same numbers as before devices existed
    ds = tiny_regression()
    results = []
    for device in ("cpu", "auto", None):  # None: TrainConfig's default
        torch.manual_seed(0)
        model = build_for("kan", ds, hidden=[3])
        cfg = TrainConfig(epochs=4, batch_size=32, grid_update_epochs=2, sparsity=1e-3, seed=2,
                          **({} if device is None else {"device": device}))
        hist = fit(model, ds, cfg)
        assert hist.device == "cpu"
        assert {p.device.type for p in model.parameters()} == {"cpu"}
        results.append((hist.train_loss, hist.val_loss, hist.metrics,
                        predict(model, ds.X_test)))
    for other in results[1:]:
        assert other[:3] == results[0][:3]
        assert np.array_equal(other[3], results[0][3])


def test_auto_prefers_cuda_then_mps_then_cpu(monkeypatch):
    from kamoe.train import available_devices, resolve_device

    _hide_gpus(monkeypatch)
    assert resolve_device("auto") == torch.device("cpu") and available_devices() == ["cpu"]
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("mps")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("AUTO") == torch.device("cuda")
    assert available_devices() == ["cpu", "cuda", "mps"]


def test_an_absent_or_unknown_device_is_a_clear_error(monkeypatch):
    from kamoe.train import resolve_device

    _hide_gpus(monkeypatch)
    ds = tiny_regression()
    model = build_for("mlp", ds, hidden=[4])
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(TrainingError, match=r"'cuda' is not present.*torch sees: cpu.*'auto' or "
                                            r"'cpu'"):
        fit(model, ds, TrainConfig(epochs=1, device="cuda"))
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())  # untouched
    with pytest.raises(TrainingError, match="'mps' is not present"):
        resolve_device("mps")
    for bad in ("gpu", "cuda:x", 0):
        with pytest.raises(TrainingError, match="device must be one of auto, cpu, cuda, mps"):
            TrainConfig(device=bad).validate()


def test_saved_weights_are_on_the_cpu(tmp_path):
    ds = tiny_regression()
    model = build_for("kan", ds, hidden=[2])
    fit(model, ds, TrainConfig(epochs=1, device="cpu"))
    path = save_model(model, tmp_path / "m", dataset=ds)
    state = torch.load(path / "weights.pt", map_location="meta", weights_only=True)
    assert state and all(v.device.type == "meta" for v in state.values())  # mapped, so readable
    raw = torch.load(path / "weights.pt", weights_only=True)
    assert {v.device.type for v in raw.values()} == {"cpu"}


def test_likelihood_mixture_trains_on_its_own_loss_and_round_trips(tmp_path):
    """The regimes mixture (experts trained by the mixture's likelihood): the loop minimises
    and validates that likelihood, and a saved run predicts as before."""
    from dataclasses import replace

    from kamoe import recipes

    ds = load("regimes", seed=0, n=700)
    model = build_for("kamoe-gru", ds, **recipes.model_config("kamoe-gru", ds))
    hist = fit(model, ds, TrainConfig(epochs=8, lr=1e-2, aux_weight=0.1, seed=0))
    assert all(math.isfinite(v) for v in hist.val_loss)
    assert hist.val_loss[-1] < hist.val_loss[0]
    # the validation loss is the negative log-likelihood (on the last 20 % of the train
    # windows, with the best weights the fit restored), not the squared error
    n_val = round(len(ds.X_train) * 0.2)
    X_val = torch.as_tensor(ds.X_train[-n_val:], dtype=torch.float32)
    y_val = torch.as_tensor(ds.y_train[-n_val:], dtype=torch.float32)
    model.eval()
    with torch.no_grad():
        squared = float(((model(X_val) - y_val) ** 2).mean())
        nll = float(model.task_loss(y_val))
    assert min(hist.val_loss) == pytest.approx(nll, rel=1e-4)
    assert abs(nll - squared) > 0.05
    path = save_model(model, tmp_path / "m", dataset=ds, history=hist)
    loaded, _ = load_model(path)
    assert np.array_equal(predict(loaded, ds.X_test), predict(model, ds.X_test))
    as_classes = replace(ds, task="classification", y_train=ds.groups_train[:, None],
                         y_test=ds.groups_test[:, None])
    with pytest.raises(TrainingError, match="for a classification task use mixture_loss='mse'"):
        fit(build_for("kamoe-gru", ds, layers=1, mixture_loss="likelihood"), as_classes,
            TrainConfig(epochs=1))
