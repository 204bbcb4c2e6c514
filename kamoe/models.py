"""The model registry: one function builds any named model from input/output shapes and a config.

The config dict (name, shapes and every hyper-parameter, defaults filled in) is what gets saved,
shown and compared; ``build(**model.config)`` rebuilds the same architecture.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from kamoe.errors import ModelError
from kamoe.nn.fasterkan import FasterKAN, FasterKANLinear
from kamoe.nn.gates import GRKAN, GRN, LinearGate, SlotRouter, TopKRouter
from kamoe.nn.kan import KAN, KANLinear
from kamoe.nn.moe import OWN_LIKELIHOOD, KAMoE, MLPKANMoE, RNNExpert, make_expert
from kamoe.nn.transformer import MLPKANTransformer

_KAN_LAYER = {"grid_size": 5, "spline_order": 3, "grid_range": [-1.0, 1.0],
              "base_activation": "silu", "spline_scaler": True}
# The gate options after "dropout" go beyond the paper; their defaults keep its gate.
_MOE = {"n_experts": 3, "gate_activation": "sigmoid", "dropout": 0.0, "gate_input": "auto",
        "gate_temperature": 1.0, "gate_top_k": 0, "gate_loss": "none", "gate_units": None,
        "mixture_loss": "mse", "expert_lags": 0}

DEFAULTS: dict[str, dict[str, Any]] = {
    "mlp": {"hidden": [32, 32], "activation": "relu"},
    "kan": {"hidden": [5], "head": "kan", **_KAN_LAYER},
    "fasterkan": {"hidden": [16], "num_grids": 8, "norm": "batchnorm", "denominator": 0.33},
    "gru": {"units": 32, "layers": 2},
    "lstm": {"units": 32, "layers": 2},
    "mlp-kan": {"hidden": 32, "n_experts": 8, "n_kan": None, "k": 2, "routing": "topk",
                "slots_per_expert": 1, "kan_norm": "batchnorm", "load_balance": False},
    "mlp-kan-transformer": {"tokenizer": "auto", "d_model": 32, "depth": 2, "n_heads": 4,
                            "ffn_hidden": 64, "patch": 2, "n_experts": 8, "n_kan": None, "k": 2,
                            "routing": "topk", "slots_per_expert": 1, "kan_norm": "layernorm",
                            "load_balance": False},
}
for _base in ("mlp", "kan", "gru", "lstm"):
    for _prefix, _gate in (("moe", "grn"), ("kamoe", "grkan")):
        _d = {**DEFAULTS[_base], **_MOE, "gate": _gate}
        if _base == "kan":
            _d["head"] = "linear"
        if _base not in ("gru", "lstm"):  # their mixtures are hidden layers: the task's loss
            del _d["mixture_loss"], _d["expert_lags"]
        if _gate == "grkan":
            _d.update({"gate_grid_size": 3, "gate_second_activation": "relu"})
        DEFAULTS[f"{_prefix}-{_base}"] = _d

MODEL_DESCRIPTIONS = {
    "mlp": "multilayer perceptron (dense + ReLU)",
    "kan": "Kolmogorov-Arnold network of B-spline KANLinear layers (symbolic-ready)",
    "fasterkan": "FasterKAN network (RSWAF basis)",
    "gru": "stacked GRU + dense head (sequences)",
    "lstm": "stacked LSTM + dense head (sequences)",
    "mlp-kan": "MLP-KAN mixture: MLP and FasterKAN experts routed top-k per sample",
    "mlp-kan-transformer": "transformer whose feed-forward is the MLP-KAN mixture",
}
for _base in ("mlp", "kan", "gru", "lstm"):
    MODEL_DESCRIPTIONS[f"moe-{_base}"] = f"{_base.upper()} layers wrapped in an MoE with a GRN gate"
    MODEL_DESCRIPTIONS[f"kamoe-{_base}"] = (
        f"{_base.upper()} layers wrapped in a KAMoE with a GRKAN gate"
    )

SEQUENCE_MODELS = {"gru", "lstm", "moe-gru", "moe-lstm", "kamoe-gru", "kamoe-lstm"}
KAN_HEADS = ("kan", "linear")  # the output layer of a KAN stack: another KAN layer or a Dense
MLP_ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "tanh": nn.Tanh,
                   "elu": nn.ELU}
TOKENIZER_CHOICES = ("auto", "tabular", "sequence", "image")  # "auto": from the dataset's kind

__all__ = ["DEFAULTS", "KAN_HEADS", "MLP_ACTIVATIONS", "MODEL_DESCRIPTIONS", "Model", "ModelError",
           "SEQUENCE_MODELS", "TOKENIZER_CHOICES", "build", "build_for", "default_config",
           "find_gate_networks", "find_gates", "find_kan_layers", "model_names"]


def model_names() -> list[str]:
    """All registry names."""
    return list(DEFAULTS)


def default_config(name: str) -> dict[str, Any]:
    """The default hyper-parameters of a registry model."""
    _check_name(name)
    return {k: (list(v) if isinstance(v, list) else v) for k, v in DEFAULTS[name].items()}


class Model(nn.Module):
    """A registry model: ``net`` plus its config, with finders for KAN layers and gates."""

    def __init__(self, net: nn.Module, config: dict[str, Any], flatten: bool) -> None:
        super().__init__()
        self.net = net
        self.config = config
        self.flatten = flatten

    @property
    def task(self) -> str:
        return self.config.get("task", "regression")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.flatten and x.dim() > 2:
            x = x.reshape(x.size(0), -1)
        return self.net(x)

    def kan_layers(self) -> dict[str, nn.Module]:
        """Every KAN layer (B-spline or FasterKAN) by module path."""
        return find_kan_layers(self)

    def gates(self) -> dict[str, nn.Module]:
        """Every gated mixture (KAMoE) or router-holding mixture (MLP-KAN) by module path."""
        return find_gates(self)

    def auxiliary_loss(self) -> torch.Tensor:
        """Sum of load-balancing / gate losses recorded by the last forward (0 when none)."""
        total = torch.zeros(())
        for m in self.modules():
            if isinstance(m, MLPKANMoE) and m.load_balance:
                total = total + m.aux_loss
            elif isinstance(m, KAMoE) and m.gate_loss != "none":
                total = total + m.aux_loss
        return total

    def likelihood_mixture(self) -> KAMoE | None:
        """The KAMoE trained by its own likelihood (mixture_loss "likelihood" or
        "switching"), if any."""
        return next((m for m in self.modules()
                     if isinstance(m, KAMoE) and m.mixture_loss in OWN_LIKELIHOOD), None)

    def task_loss(self, y: torch.Tensor) -> torch.Tensor | None:
        """The data loss of the last forward when a mixture defines its own (the negative
        log-likelihood of a KAMoE with mixture_loss="likelihood"); None: the task's usual loss."""
        mixture = self.likelihood_mixture()
        return None if mixture is None else mixture.negative_log_likelihood(y)

    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)


def find_kan_layers(model: nn.Module) -> dict[str, nn.Module]:
    """Every KANLinear / FasterKANLinear in any module, by module path."""
    return {n: m for n, m in model.named_modules() if isinstance(m, (KANLinear, FasterKANLinear))}


def find_gates(model: nn.Module) -> dict[str, nn.Module]:
    """Every mixture layer (KAMoE/MoE or MLP-KAN) in any module, by module path."""
    return {n: m for n, m in model.named_modules() if isinstance(m, (KAMoE, MLPKANMoE))}


def find_gate_networks(model: nn.Module) -> dict[str, nn.Module]:
    """The gate/router networks themselves (GRN, GRKAN, linear gates, routers) by path."""
    kinds = (GRN, GRKAN, LinearGate, TopKRouter, SlotRouter)
    return {n: m for n, m in model.named_modules() if isinstance(m, kinds)}


# ---------------------------------------------------------------------------- build


def _check_name(name: str) -> None:
    if name not in DEFAULTS:
        import difflib

        close = difflib.get_close_matches(name, list(DEFAULTS), n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ModelError(f"unknown model {name!r}; choose one of {', '.join(DEFAULTS)}.{hint}")


def _positive_int(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
        raise ModelError(f"{key} must be a positive integer, got {value!r}")
    if value < 1:
        raise ModelError(f"{key} must be a positive integer (>= 1), got {value!r}")
    return int(value)


def _widths(key: str, value: Any) -> list[int]:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, (list, tuple)):
        raise ModelError(f"{key} must be a list of positive integers, got {value!r}")
    return [_positive_int(f"{key}[{i}]", v) for i, v in enumerate(value)]


def build(name: str, input_shape: tuple[int, ...] | list[int], output_dim: int,
          **config: Any) -> Model:
    """Build registry model ``name`` for inputs of shape ``input_shape`` (no batch axis)."""
    _check_name(name)
    task = config.pop("task", "regression")
    if task not in ("regression", "classification"):
        raise ModelError(f"task must be 'regression' or 'classification', got {task!r}")
    unknown = set(config) - set(DEFAULTS[name])
    if unknown:
        raise ModelError(
            f"unknown setting(s) {sorted(unknown)} for model {name!r}; allowed: "
            f"{', '.join(sorted(DEFAULTS[name]))}"
        )
    cfg = {**default_config(name), **config}
    input_shape = tuple(_positive_int("input_shape", s) for s in input_shape)
    if not input_shape:
        raise ModelError("input_shape must have at least one dimension")
    output_dim = _positive_int("output_dim", output_dim)
    if name in SEQUENCE_MODELS and len(input_shape) != 2:
        raise ModelError(
            f"model {name!r} needs sequential input of shape (steps, features); got {input_shape}."
            " Pick a sequential dataset (regimes, crypto) or a tabular model."
        )
    builder = _BUILDERS[name.split("-", 1)[1] if name.startswith(("moe-", "kamoe-")) else name]
    net, flatten = builder(name, input_shape, output_dim, cfg)
    full = {"name": name, "input_shape": list(input_shape), "output_dim": output_dim,
            "task": task, **cfg}
    return Model(net, full, flatten)


def _flat_dim(input_shape: tuple[int, ...]) -> int:
    return int(math.prod(input_shape))


def _moe_kwargs(cfg: dict[str, Any]) -> dict[str, Any]:
    kw = {"n_experts": _positive_int("n_experts", cfg["n_experts"]), "gate": cfg["gate"],
          "gate_activation": cfg["gate_activation"], "dropout": float(cfg["dropout"]),
          "gate_input": cfg.get("gate_input", "auto"),
          "gate_temperature": cfg.get("gate_temperature", 1.0),
          "gate_top_k": cfg.get("gate_top_k", 0), "gate_loss": cfg.get("gate_loss", "none"),
          "gate_units": cfg.get("gate_units"), "mixture_loss": cfg.get("mixture_loss", "mse"),
          "expert_lags": cfg.get("expert_lags", 0)}
    if cfg["gate"] == "grkan":
        kw["grid_size"] = _positive_int("gate_grid_size", cfg.get("gate_grid_size", 3))
        kw["second_activation"] = cfg.get("gate_second_activation", "relu")
    return kw


def _kan_kwargs(cfg: dict[str, Any]) -> dict[str, Any]:
    rng = cfg["grid_range"]
    if not (isinstance(rng, (list, tuple)) and len(rng) == 2 and float(rng[1]) > float(rng[0])):
        raise ModelError(f"grid_range must be [low, high] with high > low, got {rng!r}")
    order = cfg["spline_order"]
    if isinstance(order, bool) or not isinstance(order, int) or order < 0:
        raise ModelError(f"spline_order must be an integer >= 0, got {order!r}")
    return {"grid_size": _positive_int("grid_size", cfg["grid_size"]), "spline_order": order,
            "grid_range": (float(rng[0]), float(rng[1])),
            "base_activation": cfg["base_activation"], "spline_scaler": bool(cfg["spline_scaler"])}


def _build_mlp(name, input_shape, output_dim, cfg):
    hidden = _widths("hidden", cfg["hidden"])
    d, layers = _flat_dim(input_shape), []
    for w in hidden:
        if name == "mlp":
            layers += [nn.Linear(d, w), _activation(cfg["activation"])]
        else:
            layers.append(KAMoE(lambda d=d, w=w: make_expert("mlp", d, w), input_shape=(d,),
                                units=w, **_moe_kwargs(cfg)))
        d = w
    layers.append(nn.Linear(d, output_dim))
    return nn.Sequential(*layers), True


def _activation(name: str) -> nn.Module:
    if name not in MLP_ACTIVATIONS:
        raise ModelError(f"activation must be one of {sorted(MLP_ACTIVATIONS)}, got {name!r}")
    return MLP_ACTIVATIONS[name]()


def _build_kan(name, input_shape, output_dim, cfg):
    hidden = _widths("hidden", cfg["hidden"]) if cfg["hidden"] else []
    kw = _kan_kwargs(cfg)
    d = _flat_dim(input_shape)
    if cfg["head"] not in KAN_HEADS:
        raise ModelError(f"head must be one of {', '.join(KAN_HEADS)}, got {cfg['head']!r}")
    if name == "kan" and cfg["head"] == "kan":
        return KAN([d, *hidden, output_dim], **kw), True
    if not hidden:
        raise ModelError("hidden must list at least one width when head is 'linear'")
    layers: list[nn.Module] = []
    for w in hidden:
        if name == "kan":
            layers.append(KANLinear(d, w, **kw))
        else:
            layers.append(KAMoE(lambda d=d, w=w: KANLinear(d, w, **kw), input_shape=(d,),
                                units=w, **_moe_kwargs(cfg)))
        d = w
    layers.append(nn.Linear(d, output_dim))
    return nn.Sequential(*layers), True


def _build_fasterkan(name, input_shape, output_dim, cfg):
    hidden = _widths("hidden", cfg["hidden"]) if cfg["hidden"] else []
    widths = [_flat_dim(input_shape), *hidden, output_dim]
    return FasterKAN(widths, num_grids=_positive_int("num_grids", cfg["num_grids"]),
                     norm=cfg["norm"], denominator=float(cfg["denominator"])), True


def _build_rnn(name, input_shape, output_dim, cfg):
    cell = name.split("-")[-1]
    units = _positive_int("units", cfg["units"])
    n_layers = _positive_int("layers", cfg["layers"])
    steps, d = input_shape
    # KAMoE refuses "likelihood" when its experts feed another layer (layers > 1)
    likelihood = name != cell and cfg.get("mixture_loss", "mse") in OWN_LIKELIHOOD
    layers: list[nn.Module] = []
    for i in range(n_layers):
        seq = i < n_layers - 1
        d_in = d if i == 0 else units
        if i == 0 and name != cell:  # the reference wraps the first recurrent layer
            kw = _moe_kwargs(cfg)
            if likelihood:
                kw["output_dim"] = output_dim
            layers.append(KAMoE(lambda d_in=d_in, seq=seq: RNNExpert(cell, d_in, units, seq),
                                input_shape=input_shape, units=units, **kw))
        else:
            layers.append(RNNExpert(cell, d_in, units, return_sequences=seq))
    if not likelihood:  # with "likelihood" each expert has its own output head
        layers.append(nn.Linear(units, output_dim))
    return nn.Sequential(*layers), False


def _build_mlp_kan(name, input_shape, output_dim, cfg):
    n_experts = _positive_int("n_experts", cfg["n_experts"])
    k = _positive_int("k", cfg["k"])
    if k > n_experts:
        raise ModelError(f"k must be between 1 and n_experts={n_experts}, got {k}")
    moe = {"n_experts": n_experts, "n_kan": cfg["n_kan"], "k": k, "routing": cfg["routing"],
           "slots_per_expert": _positive_int("slots_per_expert", cfg["slots_per_expert"]),
           "kan_norm": cfg["kan_norm"], "load_balance": bool(cfg["load_balance"])}
    if name == "mlp-kan":
        hidden = _positive_int("hidden", cfg["hidden"])
        return MLPKANMoE(_flat_dim(input_shape), output_dim, hidden=hidden, **moe), True
    tokenizer = cfg["tokenizer"]
    if tokenizer == "auto":
        tokenizer = "tabular" if len(input_shape) == 1 else "sequence"
    net = MLPKANTransformer(
        input_shape, output_dim, tokenizer=tokenizer,
        d_model=_positive_int("d_model", cfg["d_model"]),
        depth=_positive_int("depth", cfg["depth"]),
        n_heads=_positive_int("n_heads", cfg["n_heads"]),
        ffn_hidden=_positive_int("ffn_hidden", cfg["ffn_hidden"]),
        patch=_positive_int("patch", cfg["patch"]), **moe)
    return net, False


_BUILDERS = {"mlp": _build_mlp, "kan": _build_kan, "fasterkan": _build_fasterkan,
             "gru": _build_rnn, "lstm": _build_rnn, "mlp-kan": _build_mlp_kan,
             "mlp-kan-transformer": _build_mlp_kan}


def build_for(name: str, dataset: Any, **config: Any) -> Model:
    """Build ``name`` for a Dataset: shapes, task and (for the transformer) tokenizer from it."""
    if name == "mlp-kan-transformer" and config.get("tokenizer", "auto") == "auto":
        config["tokenizer"] = {"tabular": "tabular", "image": "image"}.get(dataset.kind,
                                                                         "sequence")
    return build(name, dataset.input_shape, dataset.output_dim, task=dataset.task, **config)
