"""Mixtures of experts: KAMoE (arXiv 2409.15161) and MLP-KAN (arXiv 2410.03027).

KAMoE, as the reference code builds it: x~ = x * W (elementwise, W initialised to ones) feeds
both the experts and the gate; the gate sees ReLU(Dense(x~)) per time step, at the last step or
flattened; alpha = gate(.) with a sigmoid (reference default) or softmax output; the output is
sum_e alpha_e * f_e(x~). Plain MoE differs only in the gate (GRN instead of GRKAN).

Options beyond the reference (all off by default, so the default is the paper's gate):
``gate_temperature`` T divides the gate's logits before the activation (T < 1 sharpens);
``gate_top_k`` keeps only the k largest weights of each row, unscaled (as the Switch
Transformer's top-1: rescaling a single kept weight to 1 would leave the gate no gradient);
``gate_loss="mutual_information"`` records, in training, the auxiliary term
mean_rows H(p_row) - H(mean_rows p) on the normalised weights p = alpha / sum_e alpha, i.e.
minus the mutual information between rows and experts: minimising it makes each row's choice
decisive while keeping every expert in use (the training loop adds it, times
``TrainConfig.aux_weight``, through ``Model.auxiliary_loss``);
``gate_units`` sets the gate's width (default: the experts' ``units``);
``mixture_loss="likelihood"`` gives each expert its own output head and noise scale and trains
the mixture by its negative log-likelihood, -log sum_e alpha_e N(y; yhat_e, sigma_e^2) (the
competitive mixture of Jacobs et al. 1991): the expert that predicts a row best takes the
credit for it, so experts gain by specialising, where the squared error of the mixed output
rewards no split (the training loop uses it through ``Model.task_loss``);
``expert_lags=p`` (with the likelihood, on sequences) lets each expert's head also read the
window's last p input steps linearly, beside the recurrent state: an autoregressive skip (the
"highway" of LSTNet, Lai et al. 2018), so an expert can be an exact AR(p) model plus whatever its
GRU adds.
``mixture_loss="switching"`` (recurrent experts on a window of one series whose next value is the
target) makes the mixture a Markov-switching model, as in a hidden Markov model of regimes
(Hamilton 1989; an input-output HMM, Bengio & Frasconi 1995): every expert predicts each next
value inside the window as well as the target, each with its own noise scale; the gate's weights
are the forward filter's probability of each expert at the target given the window, from the
experts' likelihoods of the window's own values and a learned chance ``stay`` that the expert of
one step is the expert of the next (the GRKAN gate, reading the window's first step, gives the
filter's starting probabilities); training maximises the likelihood of the window's values and
the target under that model, which credits each step to the expert that explains its run of
steps, not just one step. The window's values are read as they enter the layer and the target
as given, so both should be on one scale (`regimes` standardises them by the same series:
offsets differ by 0.006 of a standard deviation).

MLP-KAN: N experts, half MLPs (GELU) and half FasterKANs, routed per token either top-k
(linear router, softmax, keep k, renormalise: the paper's code) or with Soft-MoE slots (the
paper's text).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable

import torch
from torch import nn

from kamoe.errors import ModelError
from kamoe.nn.fasterkan import FasterKAN
from kamoe.nn.gates import GATES, SlotRouter, TopKRouter, gate_activation
from kamoe.nn.kan import KANLinear

KAMOE_GATE_ACTIVATIONS = ("sigmoid", "softmax")  # the KAMoE gate's output non-linearity
ROUTINGS = ("topk", "slots")  # MLP-KAN: top-k per token (paper's code) or Soft-MoE slots

# ---------------------------------------------------------------------------- experts


class DenseExpert(nn.Module):
    """Dense(units) followed by an activation (the reference MLP expert)."""

    def __init__(self, d_in: int, units: int, activation: str = "relu") -> None:
        super().__init__()
        self.linear = nn.Linear(d_in, units)
        self.act = {"relu": nn.ReLU(), "gelu": nn.GELU(), "silu": nn.SiLU(),
                    "tanh": nn.Tanh(), "identity": nn.Identity()}[activation]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.linear(x))


class RNNExpert(nn.Module):
    """A GRU or LSTM layer; returns the whole sequence or only the last hidden state."""

    def __init__(self, cell: str, d_in: int, units: int, return_sequences: bool = True) -> None:
        super().__init__()
        if cell not in ("gru", "lstm"):
            raise ModelError(f"cell must be 'gru' or 'lstm', got {cell!r}")
        self.cell = cell
        self.return_sequences = return_sequences
        self.rnn = (nn.GRU if cell == "gru" else nn.LSTM)(d_in, units, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x)
        return out if self.return_sequences else out[:, -1, :]


def make_expert(kind: str, d_in: int, units: int, *, return_sequences: bool = True,
                **kan_kwargs) -> nn.Module:
    """One expert of the given kind: 'mlp', 'kan', 'gru' or 'lstm'."""
    if kind == "mlp":
        return DenseExpert(d_in, units)
    if kind == "kan":
        return KANLinear(d_in, units, **kan_kwargs)
    if kind in ("gru", "lstm"):
        return RNNExpert(kind, d_in, units, return_sequences=return_sequences)
    raise ModelError(f"expert must be one of 'mlp', 'kan', 'gru', 'lstm', got {kind!r}")


# ---------------------------------------------------------------------------- KAMoE

GATE_LOSSES = ("none", "mutual_information")
# What the gate of a sequence mixture reads: "auto" (the reference's rule), each step's input,
# the last step's, the whole window flattened, or a GRU's state after each step.
GATE_INPUTS = ("auto", "per_step", "last", "flatten", "recurrent")
# How a mixture is trained: the squared error of its mixed output (the paper's), or the
# likelihood of a mixture whose experts each predict the target with their own noise scale.
MIXTURE_LOSSES = ("mse", "likelihood", "switching")
OWN_LIKELIHOOD = ("likelihood", "switching")  # mixtures trained by their own likelihood
INITIAL_LOG_SCALE = -1.0  # log of each expert's starting noise scale (targets are standardised)
# "switching": the first steps of a window, where a recurrent expert has read too little to
# predict, are left out of the likelihood; the chance of keeping the expert starts at 0.88.
SWITCHING_BURN_IN = 2
INITIAL_STAY_LOGIT = 2.0


class KAMoE(nn.Module):
    """Dense mixture of E copies of an expert, weighted by a GRKAN (or GRN / linear) gate."""

    def __init__(
        self,
        expert: Callable[[], nn.Module],
        n_experts: int,
        input_shape: tuple[int, ...],
        units: int,
        gate: str = "grkan",
        gate_activation: str = "sigmoid",
        gate_input: str = "auto",
        dropout: float = 0.0,
        gate_temperature: float = 1.0,
        gate_top_k: int = 0,
        gate_loss: str = "none",
        gate_units: int | None = None,
        mixture_loss: str = "mse",
        expert_lags: int = 0,
        output_dim: int | None = None,
        **gate_kwargs,
    ) -> None:
        super().__init__()
        if n_experts < 1:
            raise ModelError(f"n_experts must be >= 1, got {n_experts}")
        if gate not in GATES:
            raise ModelError(f"gate must be one of {sorted(GATES)}, got {gate!r}")
        if gate_activation not in KAMOE_GATE_ACTIVATIONS:
            raise ModelError(f"gate_activation must be one of {', '.join(KAMOE_GATE_ACTIVATIONS)}"
                             f", got {gate_activation!r}")
        if not (isinstance(gate_temperature, (int, float)) and gate_temperature > 0):
            raise ModelError(f"gate_temperature must be a number > 0, got {gate_temperature!r}")
        if isinstance(gate_top_k, bool) or not isinstance(gate_top_k, int) or not (
                0 <= gate_top_k <= n_experts):
            raise ModelError(f"gate_top_k must be 0 (all experts) or 1..{n_experts}, got "
                             f"{gate_top_k!r}")
        if gate_loss not in GATE_LOSSES:
            raise ModelError(f"gate_loss must be one of {', '.join(GATE_LOSSES)}, got "
                             f"{gate_loss!r}")
        if mixture_loss not in MIXTURE_LOSSES:
            raise ModelError(f"mixture_loss must be one of {', '.join(MIXTURE_LOSSES)}, got "
                             f"{mixture_loss!r}")
        if gate_units is None:
            gate_units = units
        if isinstance(gate_units, bool) or not isinstance(gate_units, int) or gate_units < 1:
            raise ModelError(f"gate_units must be a whole number >= 1 (or None: the experts' "
                             f"width), got {gate_units!r}")
        steps = input_shape[0] if len(input_shape) == 2 else 0
        if isinstance(expert_lags, bool) or not isinstance(expert_lags, int) or not (
                0 <= expert_lags <= steps):
            raise ModelError(f"expert_lags must be a whole number from 0 to the window's {steps} "
                             f"steps, got {expert_lags!r}" if steps else
                             f"expert_lags needs sequence input (rows of steps); got "
                             f"{expert_lags!r} for rows of shape {tuple(input_shape)}")
        if expert_lags and mixture_loss not in OWN_LIKELIHOOD:
            raise ModelError(f"expert_lags={expert_lags} feeds the last steps to each expert's "
                             "own output head, which only mixture_loss='likelihood' or "
                             "'switching' has; set one of them (and layers=1) or expert_lags=0")
        self.expert_lags = expert_lags
        self.gate_units = gate_units
        self.mixture_loss = mixture_loss
        self.gate_temperature = float(gate_temperature)
        self.gate_top_k = gate_top_k
        self.gate_loss = gate_loss
        self.aux_loss = torch.zeros(())
        self.n_experts = n_experts
        self.input_shape = tuple(input_shape)
        self.units = units
        self.gate_kind = gate
        self.gate_activation = gate_activation
        # Independently initialised copies of one architecture (reference: clone_model).
        first = expert()
        self.experts = nn.ModuleList([first] + [_fresh_copy(first) for _ in range(n_experts - 1)])
        self.input_weight = nn.Parameter(torch.ones(1, *self.input_shape))  # paper eq. (1)
        # Experts that keep the time axis are weighted per step (the reference's rule).
        self.sequence_experts = isinstance(first, RNNExpert) and first.return_sequences
        # "likelihood": each expert predicts the target itself, with its own noise scale.
        self.heads: nn.ModuleList | None = None
        self.log_scale: nn.Parameter | None = None
        self.stay_logit: nn.Parameter | None = None
        if mixture_loss == "switching":
            self._check_switching(first, steps, output_dim, gate_input)
            self.stay_logit = nn.Parameter(torch.tensor(INITIAL_STAY_LOGIT))
        if mixture_loss in OWN_LIKELIHOOD:
            if output_dim is None or self.sequence_experts:
                raise ModelError("mixture_loss='likelihood' needs experts that return one "
                                 "vector per row and the number of targets (output_dim); for "
                                 "a recurrent mixture use layers=1")
            d_head = units + self.expert_lags * self.input_shape[-1]
            self.heads = nn.ModuleList([nn.Linear(d_head, output_dim) for _ in range(n_experts)])
            self.log_scale = nn.Parameter(torch.full((output_dim, n_experts), INITIAL_LOG_SCALE))
        self._for_loss: tuple[torch.Tensor, torch.Tensor] | None = None
        self.gate_input = self._resolve_gate_input(gate_input)
        d_feat = self.input_shape[-1]
        if self.gate_input == "flatten":
            d_feat = int(torch.tensor(self.input_shape).prod())
        # "recurrent": a GRU reads the steps so far, so the gate at step t decides from x~_1..t.
        self.gate_rnn = nn.GRU(d_feat, gate_units, batch_first=True) \
            if self.gate_input == "recurrent" else None
        self.gate_dense = nn.Linear(gate_units if self.gate_rnn is not None else d_feat,
                                    gate_units)
        # The gate returns logits; temperature, activation and top-k are applied here.
        self.gate = GATES[gate](gate_units, n_experts, activation="none", dropout=dropout,
                                **gate_kwargs)
        self.last_gate_weights: torch.Tensor | None = None

    def _check_switching(self, first: nn.Module, steps: int, output_dim: int | None,
                         gate_input: str) -> None:
        """ModelError unless a switching mixture fits: recurrent experts on a window of one
        series, one target (its next value), enough steps, the gate's input left to it."""
        if not isinstance(first, RNNExpert) or steps == 0:
            raise ModelError("mixture_loss='switching' needs recurrent experts (kamoe-gru, "
                             "kamoe-lstm) on a sequential dataset")
        if self.input_shape[-1] != 1 or output_dim != 1:
            raise ModelError("mixture_loss='switching' models one series whose next value is "
                             f"the target; this data has {self.input_shape[-1]} input "
                             f"feature(s) and {output_dim} target(s). Use "
                             "mixture_loss='likelihood' for it.")
        if steps < SWITCHING_BURN_IN + 2:
            raise ModelError(f"mixture_loss='switching' needs windows of at least "
                             f"{SWITCHING_BURN_IN + 2} steps, got {steps}; use e.g. window=24")
        if gate_input != "auto":
            raise ModelError("with mixture_loss='switching' the gate reads the window's first "
                             "step (the filter's starting probabilities) and the filter reads "
                             f"the rest; leave gate_input at 'auto', got {gate_input!r}")

    @property
    def stay(self) -> float | None:
        """A switching mixture's learned chance that one step's expert is the next step's."""
        return None if self.stay_logit is None else float(torch.sigmoid(self.stay_logit.detach()))

    def _resolve_gate_input(self, mode: str) -> str:
        """Reference rules: per step if the expert keeps the time axis, else last step/flatten."""
        if mode not in GATE_INPUTS + ("tabular",):
            raise ModelError(
                f"gate_input must be one of {', '.join(map(repr, GATE_INPUTS))}, got {mode!r}"
            )
        if len(self.input_shape) == 1:
            return "tabular"
        if self.mixture_loss == "switching":
            return "first"
        if mode != "auto":
            return mode
        if isinstance(self.experts[0], RNNExpert):
            return "per_step" if self.sequence_experts else "last"
        return "flatten"

    def gate_weights(self, x_tilde: torch.Tensor) -> torch.Tensor:
        """alpha, shape (B, E) or (B, T, E) for per-step gating."""
        if self.gate_input == "last":
            h = x_tilde[:, -1, :]
        elif self.gate_input == "first":
            h = x_tilde[:, 0, :]
        elif self.gate_input == "flatten":
            h = x_tilde.reshape(x_tilde.size(0), -1)
        elif self.gate_input == "recurrent":
            h, _ = self.gate_rnn(x_tilde)  # (B, T, units): step t has read steps 1..t
            if not self.sequence_experts:
                h = h[:, -1, :]
        else:
            h = x_tilde
        z = self.gate(torch.relu(self.gate_dense(h))) / self.gate_temperature
        alpha = gate_activation(z, self.gate_activation)
        if 0 < self.gate_top_k < self.n_experts:
            kept = torch.zeros_like(alpha).scatter(-1, alpha.topk(self.gate_top_k, -1)[1], 1.0)
            alpha = alpha * kept
        return alpha

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_tilde = x * self.input_weight
        if self.mixture_loss == "switching":
            return self._forward_switching(x, x_tilde)
        if self.heads is None:
            outputs = torch.stack([f(x_tilde) for f in self.experts], dim=-1)  # (..., units, E)
        else:  # each expert's own prediction of the targets: (B, n_targets, E)
            lags = [x_tilde[:, -self.expert_lags:, :].flatten(1)] if self.expert_lags else []
            outputs = torch.stack([h(torch.cat([f(x_tilde), *lags], -1)) for f, h in
                                   zip(self.experts, self.heads, strict=True)], -1)
        alpha = self.gate_weights(x_tilde)
        self.last_gate_weights = alpha.detach()
        if self.gate_loss == "mutual_information" and self.training:
            self.aux_loss = routing_information_loss(alpha)
        self._for_loss = (outputs, alpha) if self.heads is not None else None
        while alpha.dim() < outputs.dim():  # broadcast over the unit axis
            alpha = alpha.unsqueeze(-2)
        return (outputs * alpha).sum(-1)

    def _step_predictions(self, x_tilde: torch.Tensor) -> torch.Tensor:
        """Each expert's prediction of the next value after every step, (B, T, E)."""
        lags = []
        if self.expert_lags:  # the last p steps up to each step, oldest first
            p = self.expert_lags
            padded = nn.functional.pad(x_tilde.transpose(1, 2), (p - 1, 0))  # (B, d, T+p-1)
            lags = [padded.unfold(2, p, 1).permute(0, 2, 3, 1).flatten(2)]  # (B, T, p*d)
        return torch.stack([h(torch.cat([f.rnn(x_tilde)[0], *lags], -1))[..., 0]
                            for f, h in zip(self.experts, self.heads, strict=True)], -1)

    def _forward_switching(self, x: torch.Tensor, x_tilde: torch.Tensor) -> torch.Tensor:
        """The forward filter over the window: weights = P(expert at the target | window)."""
        pred = self._step_predictions(x_tilde)
        log_n = _log_normal(x[:, 1:, :1], pred[:, :-1], self.log_scale)  # (B, T-1, E)
        log_stay = nn.functional.logsigmoid(self.stay_logit)
        log_move = nn.functional.logsigmoid(-self.stay_logit) - math.log(
            max(self.n_experts - 1, 1))
        eye = torch.eye(self.n_experts, dtype=torch.bool, device=x.device)
        log_a = torch.where(eye, log_stay, log_move)  # one expert: the diagonal alone
        start = self.gate_weights(x_tilde)
        log_f = torch.log(_normalised(start).clamp_min(1e-12)) + log_n[:, SWITCHING_BURN_IN]
        for t in range(SWITCHING_BURN_IN + 1, log_n.size(1) + 1):
            log_f = torch.logsumexp(log_f.unsqueeze(-1) + log_a, 1)  # predict step t's expert
            if t < log_n.size(1):
                log_f = log_f + log_n[:, t]
        alpha = torch.softmax(log_f, -1)  # log_f: log P(window, expert at the target)
        self.last_gate_weights = alpha.detach()
        if self.gate_loss == "mutual_information" and self.training:
            self.aux_loss = routing_information_loss(alpha)
        outputs = pred[:, -1:, :]  # (B, 1, E): each expert's prediction of the target
        self._for_loss = (outputs, log_f)
        return (outputs * alpha.unsqueeze(-2)).sum(-1)

    def negative_log_likelihood(self, y: torch.Tensor) -> torch.Tensor:
        """The data loss of the last forward, for mixtures trained by their own likelihood.

        "likelihood": -mean_rows log sum_e alpha_e N(y; yhat_e, sigma_e^2) (targets summed),
        alpha normalised to sum to 1 per row. "switching": -mean_rows log P(the window's
        values and the target), divided by the number of values it counts, so that it reads
        per value as the other does.
        """
        if self._for_loss is None:
            raise ModelError("negative_log_likelihood needs mixture_loss='likelihood' or "
                             "'switching' and a forward pass first")
        outputs, weights = self._for_loss
        log_n = _log_normal(y.unsqueeze(-1), outputs, self.log_scale).sum(-2)  # (B, E)
        if self.mixture_loss == "switching":
            values = self.input_shape[0] - SWITCHING_BURN_IN
            return -torch.logsumexp(weights + log_n, -1).mean() / values
        p = _normalised(weights)
        return -torch.logsumexp(torch.log(p.clamp_min(1e-12)) + log_n, -1).mean()


def _log_normal(value: torch.Tensor, mean: torch.Tensor, log_s: torch.Tensor) -> torch.Tensor:
    """log N(value; mean, exp(log_s)^2), broadcast over the last (expert) axis."""
    z = (value - mean) / torch.exp(log_s)
    return -0.5 * z ** 2 - log_s - 0.5 * math.log(2 * math.pi)


def _normalised(alpha: torch.Tensor) -> torch.Tensor:
    """Gate weights scaled to sum to 1 over the expert axis (a sigmoid gate's do not)."""
    p = alpha.clamp_min(0)
    return p / p.sum(-1, keepdim=True).clamp_min(1e-12)


def routing_information_loss(alpha: torch.Tensor) -> torch.Tensor:
    """mean_rows H(p_row) - H(mean_rows p) of the normalised weights (minus I(row; expert))."""
    p = _normalised(alpha.reshape(-1, alpha.size(-1)))
    row = -(p * torch.log(p.clamp_min(1e-12))).sum(-1).mean()
    mean = p.mean(0)
    return row + (mean * torch.log(mean.clamp_min(1e-12))).sum()


def _fresh_copy(module: nn.Module) -> nn.Module:
    """A deep copy of module with every parameter re-initialised."""
    clone = copy.deepcopy(module)
    for m in clone.modules():
        if m is not clone and hasattr(m, "reset_parameters"):
            m.reset_parameters()
    if hasattr(clone, "reset_parameters"):
        clone.reset_parameters()
    return clone


# ---------------------------------------------------------------------------- MLP-KAN


class MLPExpert(nn.Module):
    """Representation expert: Linear -> GELU -> Linear (timm Mlp as used by MLP-KAN)."""

    def __init__(self, d_in: int, hidden: int, d_out: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(d_in, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, d_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class MLPKANMoE(nn.Module):
    """N experts (MLP "representation" + FasterKAN "function" experts) routed per token."""

    def __init__(
        self,
        d_in: int,
        d_out: int,
        hidden: int = 32,
        n_experts: int = 8,
        n_kan: int | None = None,
        k: int = 2,
        routing: str = "topk",
        slots_per_expert: int = 1,
        kan_norm: str = "layernorm",
        load_balance: bool = False,
    ) -> None:
        super().__init__()
        if n_experts < 1:
            raise ModelError(f"n_experts must be >= 1, got {n_experts}")
        n_kan = n_experts // 2 if n_kan is None else n_kan
        if not 0 <= n_kan <= n_experts:
            raise ModelError(f"n_kan must be between 0 and n_experts={n_experts}, got {n_kan}")
        if routing not in ROUTINGS:
            raise ModelError(f"routing must be one of {', '.join(ROUTINGS)}, got {routing!r}")
        self.routing = routing
        self.n_experts = n_experts
        self.load_balance = load_balance
        kan_hidden = max(1, hidden // 2)
        self.expert_kinds = ["mlp"] * (n_experts - n_kan) + ["kan"] * n_kan
        self.experts = nn.ModuleList(
            MLPExpert(d_in, hidden, d_out) if kind == "mlp"
            else FasterKAN([d_in, kan_hidden, d_out], norm=kan_norm)
            for kind in self.expert_kinds
        )
        if routing == "topk":
            self.router = TopKRouter(d_in, n_experts, k)
        else:
            self.router = SlotRouter(d_in, n_experts, slots_per_expert)
        self.d_out = d_out
        self.aux_loss = torch.zeros(())
        # Routing record of the last forward (detached): probs (N, E), chosen (N, k) or (N, 1).
        self.last_router_probs: torch.Tensor | None = None
        self.last_chosen: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, d) rows or (B, n, d) token sets -> same leading shape with d_out features."""
        squeeze = x.dim() == 2
        tokens = x.unsqueeze(1) if squeeze else x
        if self.routing == "topk":
            out = self._forward_topk(tokens)
        else:
            out = self._forward_slots(tokens)
        return out.squeeze(1) if squeeze else out

    def _forward_topk(self, tokens: torch.Tensor) -> torch.Tensor:
        B, n, d = tokens.shape
        flat = tokens.reshape(-1, d)
        probs, top_i, top_w = self.router(flat)
        out = flat.new_zeros(flat.size(0), self.d_out)
        for e, expert in enumerate(self.experts):
            rows, slot = torch.nonzero(top_i == e, as_tuple=True)
            if rows.numel() == 0:
                continue
            out.index_add_(0, rows, expert(flat[rows]) * top_w[rows, slot].unsqueeze(-1))
        if self.load_balance:
            # Switch Transformer: E * sum_e (share of routed slots to e) * (mean prob of e).
            share = torch.zeros(self.n_experts, device=flat.device)
            share.scatter_add_(0, top_i.reshape(-1), torch.ones(top_i.numel(), device=flat.device))
            share = share / top_i.numel()
            self.aux_loss = self.n_experts * (share * probs.mean(0)).sum()
        self.last_router_probs = probs.detach().reshape(B, n, -1)
        self.last_chosen = top_i.detach().reshape(B, n, -1)
        return out.reshape(B, n, self.d_out)

    def _forward_slots(self, tokens: torch.Tensor) -> torch.Tensor:
        B, n, d = tokens.shape
        dispatch, combine = self.router(tokens)  # (B, n, E*S) each
        slot_in = dispatch.transpose(1, 2) @ tokens  # (B, E*S, d)
        S = self.router.slots_per_expert
        slot_out = torch.cat(
            [expert(slot_in[:, e * S:(e + 1) * S].reshape(-1, d)).reshape(B, S, self.d_out)
             for e, expert in enumerate(self.experts)], dim=1)
        out = combine @ slot_out  # (B, n, d_out)
        per_expert = combine.reshape(B, n, self.n_experts, S).sum(-1)
        if self.load_balance:
            mean = per_expert.mean(dim=(0, 1))
            self.aux_loss = self.n_experts * (mean * mean).sum()
        self.last_router_probs = per_expert.detach()
        self.last_chosen = per_expert.detach().argmax(-1, keepdim=True)
        return out
