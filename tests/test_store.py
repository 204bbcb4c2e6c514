"""The run store (kamoe/store.py): runs saved, listed, rebuilt, renamed, deleted, exported and
imported; atomic writes; archives that are corrupt, foreign or tampered with change nothing."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import shutil
import tempfile
import threading
import uuid
import zipfile
from pathlib import Path

import numpy as np
import pytest
import sympy
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kamoe.data import load
from kamoe.recipes import training_config
from kamoe.runs import DatasetRequest, new_run, train_run
from kamoe.store import MANIFEST, RUN_FILES, RunStore, StoreError, read_archive
from kamoe.symbolic import FormulaResult, to_latex
from kamoe.train import predict

CSV = "".join(f"{i},{(i * 7) % 5},{i * 0.5 + (i % 3)}\n" for i in range(40))  # 40 rows, y ~ x


def _formula(names: list[str]) -> FormulaResult:
    x = [sympy.Symbol(n) for n in names]
    expr = x[0] / (4 * sympy.pi * x[1] ** 2) + sympy.Float(0.25)
    return FormulaResult(expr=expr, latex=to_latex(expr), r2_test=0.99, r2_train=0.98,
                         network_r2=0.97, seconds=1.5, truth=expr, recovered=True,
                         method="index", log=["a line"], variables=list(names))


def make_run(model: str = "kan", epochs: int = 3):
    """A small trained run on II.3.24 (a KAN, or a KAMoE with routing records) and its data."""
    request = DatasetRequest("feynman:II.3.24", seed=0, options={"n": 200}, label="II.3.24")
    ds = request.load()
    cfg = training_config(model, ds, epochs=epochs)
    run = new_run(request, ds, model, {"hidden": [3]}, cfg)
    train_run(run, ds)
    run.add_formula(_formula(list(ds.feature_names)))
    return run, ds


@pytest.fixture(scope="module")
def trained():
    return {"kan": make_run("kan"), "kamoe": make_run("kamoe-mlp")}


@pytest.fixture(scope="module")
def archive(trained, tmp_path_factory) -> bytes:
    store = RunStore(tmp_path_factory.mktemp("export-home"))
    run, _ = trained["kamoe"]
    store.save(run)
    return store.export(run.id)


def snapshot(home: Path) -> dict[str, str]:
    """Every file under the store and its SHA-256 (what 'the store is unchanged' compares)."""
    if not home.exists():
        return {}
    return {str(p.relative_to(home)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(home.rglob("*")) if p.is_file()}


def test_saved_run_is_listed_and_rebuilds_the_same_model(trained, tmp_path):
    run, ds = trained["kamoe"]
    store = RunStore(tmp_path)
    store.save(run)
    (listed,) = store.list()
    assert listed.model is None and listed.id == run.id and listed.stored
    assert listed.name == run.name and listed.history.to_dict() == run.history.to_dict()
    assert listed.request.to_dict() == run.request.to_dict()
    assert listed.train_config == run.train_config
    model = store.load_model(listed)
    np.testing.assert_array_equal(predict(model, ds.X_test), predict(run.model, ds.X_test))
    assert listed.routing.equals(run.routing) and len(listed.routing) > 0  # a mixture records
    (formula,) = listed.formulas
    assert sympy.simplify(formula.expr - run.formula.expr) == 0 and formula.recovered is True
    assert str(formula.expr.free_symbols) == str(run.formula.expr.free_symbols)


def test_uploaded_csv_bytes_travel_with_the_run(tmp_path):
    request = DatasetRequest("csv", options={"target": "y"}, data=b"a,b,y\n" + CSV.encode(),
                             data_name="mine.csv", label="CSV mine.csv")
    ds = request.load()
    run = new_run(request, ds, "mlp", {"hidden": [4]}, training_config("mlp", ds, epochs=2))
    train_run(run, ds)
    a, b = RunStore(tmp_path / "a"), RunStore(tmp_path / "b")
    a.save(run)
    imported = b.import_archive(a.export(run.id))
    assert imported.request.data == request.data and ds.name == "csv:mine.csv"
    again = imported.request.load()  # rebuilt from the archive alone
    np.testing.assert_array_equal(again.X_train, ds.X_train)


def test_symbolic_choices_and_composed_formula_are_saved(trained, tmp_path):
    run, ds = trained["kan"]
    store = RunStore(tmp_path)
    state = run.symbolic_state(ds)
    with run.lock:
        state.fix(0, 0, 0, "sin")
        state.fix(0, 1, 1, "x")
    run.set_composed(sympy.Symbol("Pwr") * 2, 0.5)
    store.save(run)
    stored = store.get(run.id)
    store.load_model(stored)
    restored = stored.symbolic_state(ds)
    assert set(restored.fixed) == {(0, 0, 0), (0, 1, 1)}
    assert restored.fixed[(0, 0, 0)] == state.fixed[(0, 0, 0)]
    assert stored.composed.method == "edges" and stored.composed.r2_test == 0.5
    assert stored.composed.expr == sympy.Symbol("Pwr") * 2


def test_rename_delete_and_unknown_runs(trained, tmp_path):
    run, _ = trained["kan"]
    store = RunStore(tmp_path)
    store.save(run)
    with pytest.raises(StoreError, match="already stored"):
        store.save(run)
    assert store.rename(run.id[:5], "  my   best run ").name == "my best run"  # a prefix works
    assert store.get(run.id).name == "my best run"
    with pytest.raises(StoreError, match="1-120 characters"):
        store.rename(run.id, "   ")
    store.delete(run.id)
    assert store.list() == [] and snapshot(tmp_path / "runs") == {}
    for bad in (lambda: store.get("nope"), lambda: store.delete(run.id),
                lambda: store.export("zzz")):
        with pytest.raises(StoreError, match="no stored run"):
            bad()


def test_half_written_files_from_a_crash_are_never_listed(trained, tmp_path):
    run, _ = trained["kan"]
    store = RunStore(tmp_path)
    store.save(run)
    # What a crash mid-save leaves behind: a staging folder in tmp/ and a half-written update.
    (store.tmp / "deadbeef0000.1234").mkdir()
    (store.tmp / "deadbeef0000.1234" / "run.json").write_text('{"format": "kamoe-run/1", "i')
    (store.path(run.id) / ".run.json.1234.tmp").write_text("{ half")
    runs = store.list()
    assert [r.id for r in runs] == [run.id] and store.problems == []
    # A run folder damaged by hand is skipped with a note, the others still list.
    (store.runs / "broken").mkdir()
    (store.runs / "broken" / "run.json").write_text("not json")
    assert [r.id for r in store.list()] == [run.id]
    assert len(store.problems) == 1 and "broken" in store.problems[0]


def test_two_sessions_saving_at_once_never_leave_a_broken_run(trained, tmp_path):
    run, _ = trained["kan"]
    a, b = RunStore(tmp_path), RunStore(tmp_path)  # two sessions, one folder
    a.save(run)
    # Eight new runs (the same model under fresh ids) saved from two threads at once.
    copies = [dataclasses.replace(run, id=uuid.uuid4().hex[:12], lock=threading.RLock())
              for _ in range(8)]
    errors: list[BaseException] = []

    def work(store: RunStore, runs, name: str) -> None:
        try:
            for r in runs:
                store.save(r)
            for i in range(10):  # and both keep rewriting the same run's formulas and name
                target = store.get(run.id)
                target.add_formula(_formula(["Pwr", "r"]))
                target.name = f"{name} {i}"
                store.update(target)
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=work, args=(a, copies[:4], "a")),
               threading.Thread(target=work, args=(b, copies[4:], "b"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    listed = a.list()
    assert len(listed) == 9 and a.problems == []  # every run complete and readable
    shared = a.get(run.id)
    # Last writer wins: the stored formula, plus between 1 and all 20 of the threads' additions.
    base = len(run.formulas)
    assert shared.name.split()[0] in ("a", "b") and base + 1 <= len(shared.formulas) <= base + 20
    for r in listed:
        a.load_model(r)  # the weights of every run load
    assert list(a.tmp.iterdir()) == []  # no staging folder left behind


def test_export_import_round_trip_and_a_taken_id(trained, tmp_path, archive):
    run, ds = trained["kamoe"]
    store = RunStore(tmp_path)
    first = store.import_archive(archive)
    assert first.id == run.id and first.source == "import"
    second = store.import_archive(archive)  # the same archive again: stored under a new id
    assert second.id != run.id and {r.id for r in store.list()} == {run.id, second.id}
    np.testing.assert_array_equal(predict(store.load_model(store.get(second.id)), ds.X_test),
                                  predict(run.model, ds.X_test))


# ---------------------------------------------------------------------------- bad archives


def _zip(files: dict[str, bytes], manifest: bool | dict = True) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        if manifest is True:
            manifest = {"format": "kamoe-run-archive/1",
                        "files": {n: hashlib.sha256(b).hexdigest() for n, b in files.items()}}
        if manifest:
            zf.writestr(MANIFEST, json.dumps(manifest))
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {n: zf.read(n) for n in zf.namelist() if n != MANIFEST}


def check_refused(data: bytes, original: dict[str, bytes] | None = None) -> None:
    """Importing ``data`` gives a StoreError and leaves a store (holding one run) unchanged.

    When ``original`` is given, an import that succeeds is allowed only if it stored exactly the
    original files (a flipped byte in a zip header that no content depends on).
    """
    home = Path(tempfile.mkdtemp(prefix="kamoe-store-"))
    try:
        store = RunStore(home)
        store._dirs()
        store._write_new("000000000000", ORIGINAL_FILES)  # a store holding one run
        before = snapshot(home)
        try:
            run = store.import_archive(data)
        except StoreError as err:
            assert str(err) and "Traceback" not in str(err)
            assert snapshot(home) == before
            return
        assert original is not None, "a bad archive was imported"
        got = {p.name: p.read_bytes() for p in store.path(run.id).iterdir()}
        assert {k: v for k, v in got.items() if k != "run.json"} == {
            k: v for k, v in original.items() if k != "run.json"}
    finally:
        shutil.rmtree(home, ignore_errors=True)


ORIGINAL_FILES: dict[str, bytes] = {}


@pytest.fixture(autouse=True)
def _original_files(archive):
    ORIGINAL_FILES.clear()
    ORIGINAL_FILES.update(_members(archive))


@st.composite
def corrupted(draw, archive_bytes: bytes) -> bytes:
    data = bytearray(archive_bytes)
    kind = draw(st.sampled_from(["flip", "truncate", "insert", "replace"]))
    if kind == "flip":
        for _ in range(draw(st.integers(1, 8))):
            i = draw(st.integers(0, len(data) - 1))
            data[i] ^= draw(st.integers(1, 255))
    elif kind == "truncate":
        data = data[:draw(st.integers(0, len(data) - 1))]
    elif kind == "insert":
        i = draw(st.integers(0, len(data)))
        data[i:i] = draw(st.binary(min_size=1, max_size=64))
    else:
        data = bytearray(draw(st.binary(max_size=2048)))
    return bytes(data)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_corrupted_archives_get_a_clear_error_and_change_nothing(archive, data):
    bad = data.draw(corrupted(archive))
    check_refused(bad, original=ORIGINAL_FILES)


_NAMES = st.sampled_from([*RUN_FILES, MANIFEST, "config.json", "../run.json", "x/run.json",
                          "weights.safetensors"])
_JUNK = st.one_of(st.binary(max_size=300),
                  st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20)
                               | st.floats(allow_nan=False),
                               lambda kids: st.lists(kids, max_size=4)
                               | st.dictionaries(st.text(max_size=8), kids, max_size=4),
                               max_leaves=12).map(lambda v: json.dumps(v).encode()))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(files=st.dictionaries(_NAMES, _JUNK, max_size=6), with_manifest=st.booleans())
def test_foreign_zip_files_get_a_clear_error_and_change_nothing(files, with_manifest):
    check_refused(_zip({k: v for k, v in files.items() if k != MANIFEST},
                       manifest=with_manifest))


def _edit_json(files: dict[str, bytes], name: str, path: list, value) -> dict[str, bytes]:
    doc = json.loads(files[name])
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return {**files, name: json.dumps(doc).encode()}


# Edits that make an archive wrong in substance; each is also checksummed afresh, so only the
# contents can give it away.
_TAMPER = st.sampled_from([
    ("run.json", ["model", "hidden"], [7]),  # the weights no longer fit the model
    ("run.json", ["model", "name"], "no-such-model"),
    ("run.json", ["train_config", "lr"], "fast"),
    ("run.json", ["train_config", "epochs"], -3),
    ("run.json", ["format"], "something-else/2"),
    ("run.json", ["id"], "../../etc"),
    ("run.json", ["dataset", "data_sha256"], "00" * 32),  # says there is a data.bin
    ("history.json", ["train_loss"], ["x"]),
    ("history.json", ["metrics"], {"r2": "high"}),
    ("formulas.json", ["formulas", 0, "formula"], "__import__('os').system('true')"),
    ("formulas.json", ["formulas", 0, "formula"], "Pwr.__class__"),
    ("formulas.json", ["formulas", 0, "formula"], "(2**999)**999"),
    ("formulas.json", ["formulas", 0, "r2_test"], "0.99"),
    ("routing.json", [0, "expert"], "one"),
])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(edit=_TAMPER, fresh_checksums=st.booleans(), junk=st.binary(min_size=1, max_size=64))
def test_tampered_archives_get_a_clear_error_and_change_nothing(edit, fresh_checksums, junk):
    name, path, value = edit
    files = _edit_json(dict(ORIGINAL_FILES), name, path, value)
    if not fresh_checksums:  # the original manifest: the checksum gives it away
        manifest = {"format": "kamoe-run-archive/1",
                    "files": {n: hashlib.sha256(b).hexdigest() for n, b in ORIGINAL_FILES.items()}}
        check_refused(_zip(files, manifest))
    else:
        check_refused(_zip(files))
    # Foreign weights under a fresh checksum: not a state dict of this model.
    check_refused(_zip({**ORIGINAL_FILES, "weights.pt": junk}))


def test_weights_are_loaded_without_unpickling_code(tmp_path):
    # A pickle that would run code when unpickled, in place of the weights.
    class Boom:
        def __reduce__(self):
            return (Path(tmp_path / "pwned").write_text, ("ran",))

    buf = io.BytesIO()
    torch.save({"net.layers.0.base_weight": Boom()}, buf)
    check_refused(_zip({**ORIGINAL_FILES, "weights.pt": buf.getvalue()}))
    assert not (tmp_path / "pwned").exists()


def test_archive_messages_say_what_is_wrong(archive):
    cases = {b"": "empty", b"PK\x03\x04 not really": "not a zip",
             _zip({"run.json": b"{}"}, manifest=False): "no manifest.json",
             _zip({"notes.txt": b"hi"}): "files a kamoe run archive does not have",
             _zip({**ORIGINAL_FILES, "run.json": b"{}"},
                  {"format": "kamoe-run-archive/1",
                   "files": {n: hashlib.sha256(b).hexdigest()
                             for n, b in ORIGINAL_FILES.items()}}): "does not match its checksum"}
    for data, words in cases.items():
        with pytest.raises(StoreError, match=words):
            read_archive(data)
    assert set(read_archive(archive)) == set(ORIGINAL_FILES)


def test_store_messages_name_the_folder_when_it_cannot_be_written(tmp_path, trained):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(StoreError, match="KAMOE_HOME"):
        RunStore(blocker / "home").save(trained["kan"][0])


def test_default_home_is_kamoe_home_or_per_user(monkeypatch, tmp_path):
    from kamoe.store import kamoe_home

    monkeypatch.setenv("KAMOE_HOME", str(tmp_path / "h"))
    assert kamoe_home() == tmp_path / "h"
    monkeypatch.delenv("KAMOE_HOME")
    assert kamoe_home() == Path.home() / ".kamoe"
    assert load  # the loader is what rebuilds every stored run's data (imported above)
