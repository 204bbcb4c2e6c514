"""Recipes: every default the entry points share, written once.

The CLI (``kamoe train``), the dashboard's pages, the formula pipeline and the benchmarks all take
from here: which model a dataset starts with and its settings (:func:`model_config`), the
training schedule per model and dataset (:func:`training_config`), the choices a settings form
offers (:data:`SETTING_CHOICES`, taken from the modules' own constants), the comparison grid of
the Compare page, the KAMoE paper's protocol and its published reference tables. Plain Python.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from kamoe.data import Dataset
from kamoe.errors import UserError
from kamoe.models import KAN_HEADS, MLP_ACTIVATIONS, SEQUENCE_MODELS, TOKENIZER_CHOICES
from kamoe.models import default_config as registry_config
from kamoe.nn.fasterkan import NORMS
from kamoe.nn.gates import GATES
from kamoe.nn.kan import ACTIVATIONS
from kamoe.nn.moe import (
    GATE_INPUTS,
    GATE_LOSSES,
    KAMOE_GATE_ACTIVATIONS,
    MIXTURE_LOSSES,
    ROUTINGS,
)
from kamoe.train import TrainConfig, TrainingError

DEFAULT_FEYNMAN_ID = "II.3.24"  # Pwr/(4 pi r^2): two inputs, a KAN [2, 5, 1] fits it in ~1 s
DEFAULT_DATASET = f"feynman:{DEFAULT_FEYNMAN_ID}"

# ---------------------------------------------------------------------------- models


def default_model_name(dataset: Dataset) -> str:
    """The first model offered for a dataset: KAMoE-GRU for sequences, a KAN otherwise."""
    return "kamoe-gru" if dataset.kind == "sequence" else "kan"


def model_names_for(dataset: Dataset, names: list[str]) -> list[str]:
    """The registry models that fit a dataset (recurrent ones need sequences)."""
    return [n for n in names if dataset.kind == "sequence" or n not in SEQUENCE_MODELS]


# KAMoE sequence models on the `regimes` data. Trained by the squared error of their mixed
# output, the experts do not split the regimes (mean test NMI 0.27-0.42 over seeds for every
# gate tried): one GRU expert predicts two regimes about as well as two would. Experts that each
# predict the target with their own noise scale, trained by the mixture's likelihood, split
# them further (mean 0.46 over 12 seeds) but judge a window by its last value only. Small
# experts (2 units) in a Markov-switching mixture, whose gate is the forward filter of the
# experts' likelihoods over the whole window, split them far more: test NMI 0.51-0.85 on six
# held-out seeds, 14 of 15 seeds above 0.5, mean 0.67 against 0.45, with a higher test R^2 on
# 14 of the 15 (BENCHMARKS.md, "A mixture that switches like a hidden Markov model"). The
# registry's own defaults stay the paper's.
REGIMES_MIXTURE = {"layers": 1, "units": 2, "gate_activation": "softmax",
                   "mixture_loss": "switching"}
REGIMES_AUX_WEIGHT = 0.1


def _regimes_mixture(name: str, dataset: Dataset) -> bool:
    """A KAMoE recurrent model (kamoe-gru, kamoe-lstm) on the `regimes` data: the mixture
    recommendation applies."""
    return dataset.name == "regimes" and name in SEQUENCE_MODELS and name.startswith("kamoe-")


def model_config(name: str, dataset: Dataset) -> dict[str, Any]:
    """The settings a model starts with on a dataset: the registry's defaults, except for a
    mixture of recurrent experts on `regimes` (:data:`REGIMES_MIXTURE`)."""
    config = registry_config(name)
    if _regimes_mixture(name, dataset):
        config.update(REGIMES_MIXTURE)
    return config


# ---------------------------------------------------------------------------- training


_FORMULA_SCHEDULE: dict[str, Any] = {"optimizer": "lbfgs", "lr": 1.0, "epochs": 60,
                                     "batch_size": None, "grid_update_epochs": 10,
                                     "grid_update_every": 5, "patience": 15}


def _check_overrides(overrides: dict[str, Any]) -> None:
    """TrainingError naming the allowed fields when ``overrides`` holds an unknown one."""
    allowed = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(overrides) - allowed)
    if unknown:
        raise TrainingError(f"unknown training setting(s) {unknown}; allowed: "
                            f"{', '.join(sorted(allowed))}")


def formula_schedule(*, seed: int = 0, **overrides: Any) -> TrainConfig:
    """The schedule of the KANs the formula pipeline trains and reads (its surrogates and
    kan-snap's network): the formula-data schedule of :func:`training_config`, overridden
    where a stage needs it (more epochs for a surrogate, no grid updates after snapping)."""
    _check_overrides(overrides)
    return TrainConfig(**{**_FORMULA_SCHEDULE, "seed": int(seed), **overrides})


# A table this small trains full-batch in well under a second per LBFGS epoch.
SMALL_TABLE = {"max_features": 10, "max_rows": 5000}


def has_formula_schedule(model_name: str, dataset: Dataset) -> bool:
    """A plain KAN on formula data or on a small table trains with full-batch LBFGS.

    Formula data (Feynman, Friedman #1): LBFGS with early grid updates fits such smooth functions
    to R^2 > 0.9999 in about a second (BENCHMARKS.md, issue #3). Small tables (at most 10
    features and 5000 training rows, e.g. arrays given to KANRegressor): the same schedule gave
    cross-validated R^2 0.99 on 333 rows of friedman1 where Adam's 200 epochs gave 0.89. On large
    noisy real data (California housing, 16k rows) Adam generalised better in the measurement of
    BENCHMARKS.md, issue #11.
    """
    if model_name != "kan" or dataset.kind != "tabular":
        return False
    if dataset.formula is not None:
        return True
    return (dataset.n_features <= SMALL_TABLE["max_features"]
            and len(dataset.X_train) <= SMALL_TABLE["max_rows"])


def training_config(model_name: str, dataset: Dataset, *, seed: int = 0,
                    **overrides: Any) -> TrainConfig:
    """The training schedule of ``model_name`` on ``dataset``; keywords override TrainConfig fields.

    A plain KAN on formula data or a small table (has_formula_schedule): full-batch LBFGS
    (lr 1), at most 60 epochs, grid updates every 5 epochs during the first 10, early stopping
    after 15 epochs without improvement. Everything else: Adam (lr 3e-3, batches of 128), at
    most 200 epochs, early stopping after 30; a mixture of recurrent KAN-gated experts on
    `regimes` weighs a routing term, where one is switched on (``gate_loss``), by 0.1 (its
    recipe, :data:`REGIMES_MIXTURE`, has none).
    Raises TrainingError naming the allowed fields for an unknown override.
    """
    if has_formula_schedule(model_name, dataset):
        base: dict[str, Any] = dict(_FORMULA_SCHEDULE)
    else:
        base = {"optimizer": "adam", "lr": 3e-3, "epochs": 200, "batch_size": 128,
                "patience": 30}
    if _regimes_mixture(model_name, dataset):
        base["aux_weight"] = REGIMES_AUX_WEIGHT
    _check_overrides(overrides)
    return TrainConfig(**{**base, "seed": int(seed), **overrides})


OPTIMIZERS = ("lbfgs", "adam", "adamw")  # what TrainConfig.validate accepts


def device_choices() -> list[str]:
    """The devices a training form offers: none without a GPU, else "auto" and those present.

    A form shows no device setting when this is empty (every fit then runs on the CPU, which is
    what TrainConfig's default "auto" resolves to there).
    """
    from kamoe.train import available_devices

    present = available_devices()
    return ["auto", *present] if len(present) > 1 else []


# ---------------------------------------------------------------------------- pruning and grids


def _prune_defaults() -> dict[str, float]:
    import inspect

    from kamoe.interpret import prune

    params = inspect.signature(prune).parameters
    return {k: float(params[k].default) for k in ("edge_threshold", "node_threshold")}


PRUNE_DEFAULTS: dict[str, float] = _prune_defaults()  # interpret.prune's own defaults
# The grid sizes offered for grid extension: pykan's refinement sequence in its tutorials
# (grids 3, 5, 10, 20, 50, 100, ...), KAN paper (arXiv 2404.19756) section 2.4.
GRID_SIZES = (3, 5, 10, 20, 50, 100)


def finer_grids(current: int) -> list[int]:
    """The grid sizes a KAN on a grid of ``current`` intervals can be extended to."""
    finer = [g for g in GRID_SIZES if g > int(current)]
    return finer or [2 * int(current)]

# ---------------------------------------------------------------------------- form choices

# The choices a settings form offers, from the constants the modules validate against.
SETTING_CHOICES: dict[str, list[str]] = {
    "head": list(KAN_HEADS),
    "gate": list(GATES),
    "gate_activation": list(KAMOE_GATE_ACTIVATIONS),
    "gate_input": list(GATE_INPUTS),
    "gate_loss": list(GATE_LOSSES),
    "mixture_loss": list(MIXTURE_LOSSES),
    "routing": list(ROUTINGS),
    "kan_norm": list(NORMS),
    "norm": list(NORMS),
    "base_activation": list(ACTIVATIONS),
    "gate_second_activation": list(ACTIVATIONS),
    "activation": list(MLP_ACTIVATIONS),
    "tokenizer": list(TOKENIZER_CHOICES),
}


def setting_text(value: Any) -> str:
    """How a list or None setting is shown in a text box ("5, 5"; "" for None)."""
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
    return str(value)


def parse_setting(key: str, text: str, default: Any) -> Any:
    """Parse a text box back into the type of ``default`` (lists of numbers, None, numbers).

    Raises UserError naming the setting and what it expects.
    """
    text = str(text).strip()
    if isinstance(default, (list, tuple)) or (default is None and "," in text):
        if not text:
            return []
        try:
            values = [float(v) for v in text.replace(";", ",").split(",") if v.strip()]
        except ValueError:
            raise UserError(f"{key} must be numbers separated by commas, e.g. "
                            f"'{setting_text(default) or '5, 5'}'; got {text!r}") from None
        integral = default is None or all(isinstance(v, int) for v in default)
        if integral and all(v == int(v) for v in values):
            return [int(v) for v in values]
        return values
    if default is None:
        if text == "" or text.lower() == "none":
            return None
        try:
            return int(text)
        except ValueError:
            raise UserError(f"{key} must be an integer or empty (automatic); got {text!r}") \
                from None
    return text


# ---------------------------------------------------------------------------- comparison grid

COMPARE_WIDTHS = (5, 10, 25, 50, 100)  # the widths of the KAMoE California table
COMPARE_WIDTH = 10
COMPARE_SECONDS = 10.0  # at most, per model
COMPARE_PREFIXES = {"": "-", "moe-": "GRN", "kamoe-": "GRKAN"}  # variant -> its gate


def compare_bases(dataset: Dataset) -> list[str]:
    """Expert types the comparison offers: recurrent cells for sequences, MLP and KAN otherwise."""
    return ["gru", "lstm"] if dataset.kind == "sequence" else ["mlp", "kan"]


def compare_default_bases(dataset: Dataset) -> list[str]:
    bases = compare_bases(dataset)
    return bases[:1] if dataset.kind == "sequence" else bases


def compare_epochs(dataset: Dataset) -> int:
    """Epochs per model in the comparison (short: every variant gets the same schedule)."""
    return 5 if dataset.kind == "sequence" else 15


def compare_variants(dataset: Dataset, bases: list[str], units: int) -> list[tuple[str, dict]]:
    """(model name, settings) of the standard, MoE and KAMoE version of each expert type.

    As in the KAMoE paper: a mixture wraps every hidden layer with 3 experts; the standard KAN
    is KANLinear layers with a Dense head.
    """
    variants = []
    for base in bases:
        for prefix in COMPARE_PREFIXES:
            name = f"{prefix}{base}"
            if name in SEQUENCE_MODELS and dataset.kind != "sequence":
                continue
            cfg: dict[str, Any] = ({"units": int(units)} if base in ("gru", "lstm")
                                   else {"hidden": [int(units)]})
            if base == "kan" and not prefix:
                cfg["head"] = "linear"
            variants.append((name, cfg))
    return variants


def gate_label(name: str) -> str:
    """The gate a comparison variant uses: GRN (MoE), GRKAN (KAMoE) or '-'."""
    prefix = name.split("-")[0] + "-" if "-" in name else ""
    return COMPARE_PREFIXES.get(prefix, "-")


def compare_training_config(epochs: int, max_seconds: float, seed: int = 0) -> TrainConfig:
    """The one short schedule every compared model gets: Adam 1e-2, batches of 128."""
    return TrainConfig(epochs=int(epochs), optimizer="adam", lr=1e-2, batch_size=128,
                       max_seconds=float(max_seconds), patience=None, seed=int(seed))


# ---------------------------------------------------------------------------- the paper


def paper_protocol(max_epochs: int = 1000, seed: int = 0) -> TrainConfig:
    """The KAMoE notebooks' schedule (shared/reference/papers.md section 3).

    Adam 1e-3, MSE, batch 128, a 20 % validation split, early stopping (patience 10, min delta
    1e-5, best weights restored), reduce-on-plateau (factor 0.25, patience 5, min lr 2.5e-5).
    """
    return TrainConfig(epochs=max_epochs, optimizer="adam", lr=1e-3, batch_size=128,
                       val_fraction=0.2, patience=10, min_delta=1e-5, plateau_patience=5,
                       plateau_factor=0.25, min_lr=2.5e-5, seed=seed)


# keras_efficient_kan's defaults, as the reference notebooks used them: grid 3, ReLU base.
REFERENCE_KAN = {"head": "linear", "grid_size": 3, "base_activation": "relu",
                 "spline_scaler": False}

CALIFORNIA_SOURCE = ("remigenet/KAMoE example/california.ipynb outputs (mean test R² of 5 runs, "
                     "Keras)")
CALIFORNIA_BASELINES = {"RandomForest": 0.774564, "SVR": 0.727564,
                        "LinearRegression": 0.575788, "XGBoost": 0.537515}
_CALIFORNIA_ROWS = {
    # (family, width): standard L1, MoE L1, KAMoE L1, standard L2, MoE L2, KAMoE L2
    ("mlp", 5): (0.695289, 0.755335, 0.752789, 0.727915, 0.761690, 0.763694),
    ("mlp", 10): (0.733158, 0.763681, 0.767538, 0.754998, 0.768585, 0.774749),
    ("mlp", 25): (0.750549, 0.774601, 0.775091, 0.773301, 0.782786, 0.777165),
    ("mlp", 50): (0.756356, 0.774212, 0.776886, 0.781340, 0.784505, 0.786277),
    ("mlp", 100): (0.761965, 0.781769, 0.780725, 0.790260, 0.788451, 0.790828),
    ("kan", 5): (0.620885, 0.758368, 0.767117, 0.691055, 0.768889, 0.761571),
    ("kan", 10): (0.621456, 0.767680, 0.764963, 0.705004, 0.770872, 0.777266),
    ("kan", 25): (0.621420, 0.771841, 0.768027, 0.698830, 0.766608, 0.769552),
    ("kan", 50): (0.621627, 0.775355, 0.775916, 0.699258, 0.760907, 0.765173),
    ("kan", 100): (0.621219, 0.780125, 0.782804, 0.692991, 0.761956, 0.765253),
}
VARIANTS = ("standard", "moe", "kamoe")
# (family, variant, width, depth) -> published mean test R^2 on California housing.
CALIFORNIA_REF: dict[tuple[str, str, int, int], float] = {
    (fam, variant, width, depth): values[3 * (depth - 1) + v]
    for (fam, width), values in _CALIFORNIA_ROWS.items()
    for depth in (1, 2)
    for v, variant in enumerate(VARIANTS)
}

CRYPTO_SOURCE = "remigenet/KAMoE example/volume_prediction.ipynb outputs (mean test R² of 5 runs)"
_CRYPTO_ROWS = {
    # (asset, horizon): GRU standard, MoE, KAMoE, LSTM standard, MoE, KAMoE
    ("BTC", 1): (0.398109, 0.390588, 0.391908, 0.399449, 0.371326, 0.384759),
    ("BTC", 6): (0.089799, 0.114898, 0.154858, -0.231707, -0.000222, 0.087766),
    ("ETH", 1): (0.314808, 0.317695, 0.317453, 0.322330, 0.321814, 0.325014),
    ("ETH", 6): (0.168699, 0.131808, 0.160433, 0.148920, 0.161127, 0.148903),
}
# (asset, horizon, cell, variant) -> published mean test R^2 on hourly notional volume.
CRYPTO_REF: dict[tuple[str, int, str, str], float] = {
    (asset, h, cell, variant): values[3 * c + v]
    for (asset, h), values in _CRYPTO_ROWS.items()
    for c, cell in enumerate(("gru", "lstm"))
    for v, variant in enumerate(VARIANTS)
}


def california_reference_table():
    """The published California table as a frame: units, base, and R² per variant and depth."""
    import pandas as pd

    base_name = {"mlp": "MLP", "kan": "KANLinear"}
    columns = [f"{label} L{depth}" for depth in (1, 2)
               for label in ("standard", "MoE", "KAMoE")]
    rows = [(width, base_name[fam], *values) for (fam, width), values in _CALIFORNIA_ROWS.items()]
    return pd.DataFrame(rows, columns=["units", "base", *columns])


def california_reference(units: int, depth: int = 1):
    """The published R² of every base and variant at one width, as rows (model, r2)."""
    import pandas as pd

    base_name = {"mlp": "MLP", "kan": "KANLinear"}
    label = {"standard": "standard", "moe": "MoE", "kamoe": "KAMoE"}
    rows = [{"model": f"{base_name[fam]} {label[var]} L{d}", "r2": r2}
            for (fam, var, width, d), r2 in CALIFORNIA_REF.items() if width == units and d == depth]
    return pd.DataFrame(rows, columns=["model", "r2"])
