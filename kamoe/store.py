"""The run store: every finished run on disk, listed, renamed, deleted, exported and imported.

Plain Python. The folder is ``$KAMOE_HOME`` (default ``~/.kamoe``); each run is a folder
``runs/<id>/`` of plain files: ``run.json`` (what was trained on what: the dataset request, the
model and training settings, the metrics; a pruned or regridded run's ``derivation``),
``weights.pt`` (a state dict, loaded with torch's ``weights_only``: never a pickle),
``history.json``, ``routing.json`` and ``routing_groups.json`` (per-epoch routing records, per
expert and per expert and group of samples), ``formulas.json`` (``FormulaResult.as_dict``),
``symbolic.json`` (the edge choices of the Formula page) and ``data.bin`` (an uploaded CSV's
bytes, or the arrays a scikit-learn estimator was fitted on as an .npz archive, dataset kind
``arrays``; ``run.json`` then also holds the estimator's class and parameters).

Writes are atomic: a new run is written into ``tmp/`` and renamed into place in one step, an
update replaces one file at a time with ``os.replace``, a deletion renames the folder away
first; so a crash or two sessions saving at once never leave a half-written run. An archive
(:meth:`RunStore.export`) is a zip of those files plus a manifest of their SHA-256 sums;
:meth:`RunStore.import_archive` checks everything (format, checksums, settings, that the weights
fit the model, that the formulas parse) in memory before anything is written, so a corrupt,
foreign or tampered archive gets a clear :class:`StoreError` and leaves the store as it was.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import uuid
import warnings
import zipfile
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from kamoe.errors import KamoeError
from kamoe.runs import DatasetRequest, Run

FORMAT = "kamoe-run/1"
ARCHIVE_FORMAT = "kamoe-run-archive/1"
MAX_ARCHIVE_BYTES = 64 * 2**20  # an uploaded CSV (<= 25 MB) and the weights of a small model
MAX_MEMBER_BYTES = 48 * 2**20
RUN_FILES = ("run.json", "weights.pt", "history.json", "routing.json", "routing_groups.json",
             "formulas.json",
             "symbolic.json", "data.bin")
REQUIRED = ("run.json", "weights.pt", "history.json")
MANIFEST = "manifest.json"
ROUTING_COLUMNS = ["epoch", "gate", "expert", "mean_weight", "win_share", "entropy"]
GROUP_COLUMNS = ["epoch", "gate", "group_by", "group", "expert", "n", "mean_weight", "win_share"]


class StoreError(KamoeError, ValueError):
    """A run-store problem the user can fix (unknown run, bad archive, unwritable folder)."""


def kamoe_home() -> Path:
    """$KAMOE_HOME, else ~/.kamoe (per user, outside any git checkout)."""
    env = os.environ.get("KAMOE_HOME", "").strip()
    return Path(env).expanduser() if env else Path.home() / ".kamoe"


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, indent=1, allow_nan=True, default=_json_default).encode()


def _json_default(value: Any) -> Any:
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------------------- run <-> files


def run_files(run: Run, parts: tuple[str, ...] = RUN_FILES) -> dict[str, bytes]:
    """The files of a run (those named in ``parts`` that apply to it), as bytes."""
    import torch

    out: dict[str, bytes] = {}
    h = run.history
    if "run.json" in parts:
        model = run.model
        meta = {"format": FORMAT, "id": run.id, "name": run.name, "created": run.created,
                "source": run.source, "model_name": run.model_name,
                "model_config": run.model_config,
                "model": model.config if model is not None else run.architecture,
                "train_config": asdict(run.train_config), "dataset": run.request.to_dict(),
                "params": model.n_params() if model is not None else run.params_hint,
                "metrics": h.metrics if h else {}}
        if run.estimator is not None:
            meta["estimator"] = run.estimator
        if run.derivation is not None:
            meta["derivation"] = run.derivation
        out["run.json"] = _json_bytes(meta)
    if "weights.pt" in parts and run.model is not None:
        from kamoe.train import cpu_state  # a model on a GPU saves what a CPU machine loads

        buf = io.BytesIO()
        torch.save(cpu_state(run.model), buf)
        out["weights.pt"] = buf.getvalue()
    if "history.json" in parts and h is not None:
        out["history.json"] = _json_bytes(h.to_dict())
    if "routing.json" in parts and run.routing is not None and len(run.routing):
        out["routing.json"] = _json_bytes(run.routing.to_dict(orient="records"))
    groups = run.routing_groups
    if "routing_groups.json" in parts and groups is not None and len(groups):
        out["routing_groups.json"] = _json_bytes(groups.astype({"group": str})
                                                 .to_dict(orient="records"))
    with run.lock:
        if "formulas.json" in parts:
            out["formulas.json"] = _json_bytes({
                "formulas": [f.as_dict() for f in run.formulas],
                "composed": None if run.composed is None else run.composed.as_dict()})
        if "symbolic.json" in parts:
            run.snapshot_symbolic()
            out["symbolic.json"] = _json_bytes({"edges": run.symbolic_edges})
    if "data.bin" in parts and run.request.data is not None:
        out["data.bin"] = run.request.data
    return out


def _loads(files: dict[str, bytes], name: str) -> Any:
    try:
        return json.loads(files[name].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise StoreError(f"{name} is not valid JSON ({err})") from None


def _need(cond: bool, what: str) -> None:
    if not cond:
        raise StoreError(what)


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def run_from_files(files: dict[str, bytes]) -> Run:
    """A Run (without its model) from its files; StoreError naming the first problem."""
    from kamoe.train import History, TrainConfig

    for name in ("run.json", "history.json"):
        _need(name in files, f"{name} is missing")
    meta = _loads(files, "run.json")
    _need(isinstance(meta, dict) and meta.get("format") == FORMAT,
          f"run.json is not a kamoe run (format {FORMAT} expected)")
    for key, kind in (("id", str), ("name", str), ("model_name", str), ("model_config", dict),
                      ("model", dict), ("train_config", dict), ("dataset", dict)):
        _need(isinstance(meta.get(key), kind), f"run.json: {key!r} is missing or not a "
                                               f"{kind.__name__}")
    _need(re.fullmatch(r"[0-9A-Za-z]{1,64}", meta["id"]) is not None,
          "run.json: the run id must be 1-64 letters and digits")
    _need(_number(meta.get("created", 0)), "run.json: 'created' must be a number")
    _need(isinstance(meta.get("estimator", {}), dict)
          and isinstance(meta.get("estimator", {}).get("params", {}), dict),
          "run.json: 'estimator' must be an object with the estimator's params")
    known = {f.name for f in fields(TrainConfig)}
    _need(set(meta["train_config"]) <= known, "run.json: unknown training settings "
                                              f"{sorted(set(meta['train_config']) - known)}")
    try:
        train_config = TrainConfig(**meta["train_config"]).validate()
    except (TypeError, ValueError) as err:
        raise StoreError(f"run.json: invalid training settings ({err})") from None
    d = meta["dataset"]
    _need(isinstance(d.get("spec"), str) and isinstance(d.get("seed"), int)
          and isinstance(d.get("options", {}), dict),
          "run.json: the dataset request needs a spec (text), a seed (integer) and options")
    data = files.get("data.bin")
    _need((data is None) == (d.get("data_sha256") is None),
          "the uploaded data (data.bin) and run.json disagree about whether there is one")
    _need(data is None or _sha(data) == d.get("data_sha256"),
          "data.bin does not match the checksum recorded in run.json")
    request = DatasetRequest.from_dict(d, data)
    hist = _loads(files, "history.json")
    names = {f.name for f in fields(History)}
    _need(isinstance(hist, dict) and set(hist) <= names, "history.json is not a training history")
    for key in ("epochs", "train_loss", "val_loss", "lr", "elapsed"):
        _need(isinstance(hist.get(key, []), list) and all(_number(v) for v in hist.get(key, [])),
              f"history.json: {key} must be a list of numbers")
    _need(isinstance(hist.get("metrics", {}), dict)
          and all(isinstance(k, str) and _number(v) for k, v in hist.get("metrics", {}).items()),
          "history.json: metrics must map names to numbers")
    _need(isinstance(hist.get("val_metrics", []), list)
          and all(isinstance(m, dict) for m in hist.get("val_metrics", [])),
          "history.json: val_metrics must be a list of objects")
    for key, kind in (("best_epoch", int), ("stopped", str), ("message", str)):
        _need(key not in hist or isinstance(hist[key], kind), f"history.json: bad {key}")
    _need(_number(hist.get("seconds", 0.0)), "history.json: seconds must be a number")
    history = History.from_dict(hist)
    run = Run(id=meta["id"], name=meta["name"], request=request, model_name=meta["model_name"],
              model_config=meta["model_config"], train_config=train_config, history=history,
              created=float(meta.get("created", 0.0)), source=str(meta.get("source", "import")),
              params_hint=int(meta["params"]) if isinstance(meta.get("params"), int) else 0,
              architecture=meta["model"], estimator=meta.get("estimator"))
    derivation = meta.get("derivation")
    _need(derivation is None or (isinstance(derivation, dict)
                                 and isinstance(derivation.get("parent"), str)),
          "run.json: 'derivation' must be an object naming its parent run")
    run.derivation = derivation
    if "routing.json" in files:
        run.routing = _routing_frame(_loads(files, "routing.json"))
    if "routing_groups.json" in files:
        run.routing_groups = _group_frame(_loads(files, "routing_groups.json"))
    if "formulas.json" in files:
        run.formulas, run.composed = _formulas(_loads(files, "formulas.json"))
    if "symbolic.json" in files:
        sym = _loads(files, "symbolic.json")
        _need(isinstance(sym, dict) and isinstance(sym.get("edges", []), list),
              "symbolic.json must hold a list of edges")
        run.symbolic_edges = [e for e in sym.get("edges", []) if isinstance(e, dict)]
    return run


def _routing_frame(rows: Any):
    import pandas as pd

    _need(isinstance(rows, list) and all(isinstance(r, dict) and set(r) == set(ROUTING_COLUMNS)
                                         for r in rows),
          f"routing.json must be a list of records with {', '.join(ROUTING_COLUMNS)}")
    for r in rows:
        _need(isinstance(r["gate"], str) and all(_number(r[k]) for k in ROUTING_COLUMNS
                                                 if k != "gate"),
              "routing.json: records must hold numbers (and a gate name)")
    return pd.DataFrame(rows, columns=ROUTING_COLUMNS)


def _group_frame(rows: Any):
    import pandas as pd

    _need(isinstance(rows, list) and all(isinstance(r, dict) and set(r) == set(GROUP_COLUMNS)
                                         for r in rows),
          f"routing_groups.json must be a list of records with {', '.join(GROUP_COLUMNS)}")
    text = ("gate", "group_by", "group")
    for r in rows:
        _need(all(isinstance(r[k], str) for k in text)
              and all(_number(r[k]) for k in GROUP_COLUMNS if k not in text),
              "routing_groups.json: records must hold numbers (and gate, grouping and group "
              "names)")
    frame = pd.DataFrame(rows, columns=GROUP_COLUMNS)
    order = list(dict.fromkeys(frame["group"]))  # the groups in their recorded order
    frame["group"] = pd.Categorical(frame["group"], categories=order, ordered=True)
    return frame


def _formulas(d: Any) -> tuple[list[Any], Any]:
    from kamoe.symbolic import FormulaResult

    _need(isinstance(d, dict) and isinstance(d.get("formulas", []), list),
          "formulas.json must hold a list of formulas")

    def one(item: Any) -> Any:
        try:
            return FormulaResult.from_dict(item)
        except (KeyError, TypeError, ValueError, SyntaxError) as err:
            raise StoreError(f"formulas.json holds a formula that does not parse ({err})") \
                from None

    composed = d.get("composed")
    return [one(f) for f in d["formulas"]], None if composed is None else one(composed)


def build_model(run: Run, weights: bytes) -> Any:
    """Rebuild the run's model from its stored settings and weights (weights_only, strict)."""
    import torch

    from kamoe.models import build

    conf = dict(run.architecture or {})
    try:
        model = build(conf.pop("name"), conf.pop("input_shape"), conf.pop("output_dim"), **conf)
    except (KeyError, TypeError, ValueError) as err:
        raise StoreError(f"run.json describes an invalid model ({err})") from None
    try:
        with warnings.catch_warnings():  # a foreign file's protocol warning: the error says it
            warnings.simplefilter("ignore")
            state = torch.load(io.BytesIO(weights), map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    except Exception as err:  # noqa: BLE001 - corrupt, foreign or mismatched: one clear message
        first = (str(err).splitlines() or [""])[0][:200]
        raise StoreError(f"weights.pt could not be loaded as this model's weights "
                         f"({type(err).__name__}: {first})") from None
    model.eval()
    return model


# ---------------------------------------------------------------------------- the store


class RunStore:
    """The runs under one KAMOE_HOME folder (safe to share between processes and sessions)."""

    def __init__(self, home: str | Path | None = None) -> None:
        self.home = Path(home).expanduser() if home is not None else kamoe_home()
        self.runs = self.home / "runs"
        self.tmp = self.home / "tmp"
        self.problems: list[str] = []  # what the last list() could not read

    def _dirs(self) -> None:
        try:
            self.runs.mkdir(parents=True, exist_ok=True)
            self.tmp.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise StoreError(f"cannot create the run store in {self.home} ({err.strerror}); "
                             "set KAMOE_HOME to a folder you can write") from None

    def path(self, run_id: str) -> Path:
        return self.runs / run_id

    # ------------------------------------------------------------------ writing
    def save(self, run: Run) -> Path:
        """Write a new run (atomically: complete or not at all)."""
        self._dirs()
        target = self.path(run.id)
        if target.exists():
            raise StoreError(f"a run with id {run.id} is already stored")
        path = self._write_new(run.id, run_files(run))
        run.stored = True
        return path

    def _write_new(self, run_id: str, files: dict[str, bytes]) -> Path:
        staging = self.tmp / f"{run_id}.{uuid.uuid4().hex[:8]}"
        try:
            staging.mkdir()
            for name, data in files.items():
                with open(staging / name, "wb") as fh:
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
            os.rename(staging, self.path(run_id))
        except OSError as err:
            shutil.rmtree(staging, ignore_errors=True)
            raise StoreError(f"could not save run {run_id} in {self.runs} "
                             f"({err.strerror or err})") from None
        return self.path(run_id)

    def update(self, run: Run, parts: tuple[str, ...] = ("run.json", "formulas.json",
                                                          "symbolic.json")) -> None:
        """Rewrite some files of a stored run, each replaced atomically."""
        folder = self.path(run.id)
        if not (folder / "run.json").is_file():
            raise StoreError(f"run {run.id} is no longer in the store (deleted elsewhere?)")
        for name, data in run_files(run, parts).items():
            tmp = folder / f".{name}.{uuid.uuid4().hex[:8]}.tmp"
            try:
                tmp.write_bytes(data)
                os.replace(tmp, folder / name)
            except OSError as err:
                tmp.unlink(missing_ok=True)
                raise StoreError(f"could not update run {run.id} ({err.strerror or err})") \
                    from None

    def rename(self, run_id: str, name: str) -> Run:
        """Give a stored run a new name; returns the updated run."""
        name = " ".join(str(name).split())
        if not name or len(name) > 120:
            raise StoreError("a run name must be 1-120 characters")
        run = self.get(run_id)
        run.name = name
        self.update(run, ("run.json",))
        return run

    def delete(self, run_id: str) -> None:
        """Remove a stored run (it disappears in one step, then its files go)."""
        run_id = self.resolve(run_id)
        self._dirs()
        trash = self.tmp / f"{run_id}.deleted.{uuid.uuid4().hex[:8]}"
        try:
            os.rename(self.path(run_id), trash)
        except FileNotFoundError:
            raise StoreError(f"run {run_id} is not in the store") from None
        shutil.rmtree(trash, ignore_errors=True)

    # ------------------------------------------------------------------ reading
    def ids(self) -> list[str]:
        if not self.runs.is_dir():
            return []
        return sorted(p.name for p in self.runs.iterdir()
                      if p.is_dir() and not p.name.startswith("."))

    def _files(self, run_id: str, with_weights: bool = False) -> dict[str, bytes]:
        folder = self.path(run_id)
        out = {}
        for name in RUN_FILES:
            if name == "weights.pt" and not with_weights:
                continue
            p = folder / name
            if p.is_file():
                out[name] = p.read_bytes()
        return out

    def get(self, run_id: str) -> Run:
        """One stored run, without its model (see load_model)."""
        run_id = self.resolve(run_id)
        try:
            run = run_from_files(self._files(run_id))
            run.stored = True
            return run
        except OSError as err:
            raise StoreError(f"run {run_id} could not be read ({err.strerror or err})") from None
        except StoreError as err:
            raise StoreError(f"run {run_id} is damaged: {err}") from None

    def list(self) -> list[Run]:
        """Every readable stored run, oldest first (unreadable ones noted in ``problems``)."""
        runs, self.problems = [], []
        for run_id in self.ids():
            try:
                runs.append(self.get(run_id))
            except StoreError as err:
                self.problems.append(str(err))
        return sorted(runs, key=lambda r: (r.created, r.id))

    def load_model(self, run: Run) -> Any:
        """Rebuild ``run.model`` from the stored weights (once); returns it."""
        with run.lock:
            if run.model is None:
                weights = self.path(run.id) / "weights.pt"
                try:
                    data = weights.read_bytes()
                except OSError:
                    raise StoreError(f"run {run.id} is no longer in the store (deleted "
                                     "elsewhere?)") from None
                run.model = build_model(run, data)
            return run.model

    def resolve(self, ref: str) -> str:
        """A run id from an id or a unique prefix of one; StoreError otherwise."""
        ref = str(ref).strip().lstrip("#")
        ids = self.ids()
        if ref in ids:
            return ref
        matches = [i for i in ids if ref and i.startswith(ref)]
        if len(matches) == 1:
            return matches[0]
        if not matches:
            raise StoreError(f"no stored run {ref!r}; `kamoe runs list` shows the ids")
        raise StoreError(f"{ref!r} matches {len(matches)} runs; give more of the id")

    # ------------------------------------------------------------------ archives
    def export(self, run_id: str) -> bytes:
        """One zip archive of a stored run (its files and their SHA-256 manifest)."""
        run_id = self.resolve(run_id)
        files = self._files(run_id, with_weights=True)
        manifest = {"format": ARCHIVE_FORMAT, "run": run_id,
                    "files": {n: _sha(b) for n, b in files.items()}}
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(MANIFEST, _json_bytes(manifest))
            for name, data in files.items():
                zf.writestr(name, data)
        return buf.getvalue()

    def import_archive(self, data: bytes) -> Run:
        """Check an archive completely, then store it as a run (a new id if the id is taken)."""
        files = read_archive(data)
        run = run_from_files(files)
        run.model = build_model(run, files["weights.pt"])
        run.source = "import"
        self._dirs()
        if self.path(run.id).exists():
            run.id = uuid.uuid4().hex[:12]
        files["run.json"] = run_files(run, ("run.json",))["run.json"]
        self._write_new(run.id, files)
        run.stored = True
        return run


def read_archive(data: bytes) -> dict[str, bytes]:
    """The files of a run archive, every check passed; StoreError naming the first problem."""
    hint = "download it again from the dashboard or `kamoe runs export`"
    if not isinstance(data, (bytes, bytearray)) or len(data) == 0:
        raise StoreError(f"the archive is empty; {hint}")
    if len(data) > MAX_ARCHIVE_BYTES:
        raise StoreError(f"the archive is {len(data) / 2**20:.1f} MB, above the "
                         f"{MAX_ARCHIVE_BYTES // 2**20} MB limit for a run archive")
    try:
        zf = zipfile.ZipFile(io.BytesIO(bytes(data)))
        infos = zf.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError):
        raise StoreError(f"this file is not a kamoe run archive (not a zip file); {hint}") \
            from None
    names = [i.filename for i in infos]
    allowed = {MANIFEST, *RUN_FILES}
    if MANIFEST not in names:
        raise StoreError(f"this zip file is not a kamoe run archive (no {MANIFEST}); {hint}")
    foreign = sorted(set(names) - allowed)
    if foreign:
        raise StoreError(f"this zip file holds files a kamoe run archive does not have "
                         f"({', '.join(foreign[:3])}); {hint}")
    if len(names) != len(set(names)):
        raise StoreError(f"the archive lists a file twice; {hint}")
    if sum(i.file_size for i in infos) > MAX_ARCHIVE_BYTES or any(
            i.file_size > MAX_MEMBER_BYTES for i in infos):
        raise StoreError("the archive unpacks to more than the size limit of a run archive")
    files: dict[str, bytes] = {}
    try:
        for info in infos:
            with zf.open(info) as fh:
                files[info.filename] = fh.read(MAX_MEMBER_BYTES + 1)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, RuntimeError, NotImplementedError,
            zipfile.LargeZipFile) as err:
        raise StoreError(f"the archive is damaged ({type(err).__name__}); {hint}") from None
    except Exception as err:  # noqa: BLE001 - zlib.error and friends from a corrupt stream
        raise StoreError(f"the archive is damaged ({type(err).__name__}); {hint}") from None
    try:
        manifest = json.loads(files.pop(MANIFEST).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise StoreError(f"the archive's {MANIFEST} is not valid JSON; {hint}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != ARCHIVE_FORMAT:
        raise StoreError(f"this is not a kamoe run archive ({ARCHIVE_FORMAT} expected)")
    sums = manifest.get("files")
    if not isinstance(sums, dict) or set(sums) != set(files):
        raise StoreError(f"the archive's manifest does not list exactly its files; {hint}")
    for name, content in files.items():
        if sums[name] != _sha(content):
            raise StoreError(f"{name} in the archive does not match its checksum: the file was "
                             f"changed or damaged after export; {hint}")
    for name in REQUIRED:
        if name not in files:
            raise StoreError(f"the archive has no {name}; {hint}")
    return files

