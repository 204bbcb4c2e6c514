"""Native-kernel dispatch for KANLinear: whether the C kernels can run a layer, and running it.

On the CPU, with uniform knots, a spline order in :data:`NATIVE_ORDERS` and a built-in base
activation, a whole KANLinear runs as one autograd function (:class:`NativeKANLinear`) whose
features and input gradient come from ``_kanfast.c`` (built at install time, optional). The
layer's maths stays in :mod:`kamoe.nn.kan`; this module only decides (:func:`layer_plan`, a
named :class:`NativePlan`, cached on the layer) and calls the kernels. Without the extension,
inside :func:`torch_path`, or for anything the kernels do not cover, ``layer_plan`` returns None
and the layer runs on its torch path; both give the same numbers to float round-off (tested).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

try:  # the optional native kernels (setup.py); absent when no C compiler was available
    from kamoe.nn import _kanfast
except ImportError:  # pragma: no cover - depends on the install
    _kanfast = None

NATIVE_ORDERS = range(1, 6)  # spline orders compiled into _kanfast.c
EXTERNAL = 1  # the kernels' code for a base activation that torch applies around them
# Base activations the kernels apply themselves (codes of _kanfast.c).
NATIVE_ACTIVATIONS: dict[type, int] = {type(None): 0, nn.Identity: 2, nn.ReLU: 3, nn.SiLU: 4}


class ExternalActivation(NamedTuple):
    """A base activation torch applies (forward) and differentiates (backward) for the kernels."""

    forward: Callable[[nn.Module, torch.Tensor], torch.Tensor]
    # backward(module, grad, x, act(x)) -> d loss / d x through the activation
    backward: Callable[[nn.Module, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


EXTERNAL_ACTIVATIONS: dict[type, ExternalActivation] = {
    nn.Tanh: ExternalActivation(lambda m, x: torch.tanh(x),
                                lambda m, g, x, y: torch.ops.aten.tanh_backward(g, y)),
    nn.ELU: ExternalActivation(
        lambda m, x: F.elu(x, m.alpha),
        lambda m, g, x, y: torch.ops.aten.elu_backward(g, m.alpha, 1, 1, False, x)),
    nn.GELU: ExternalActivation(
        lambda m, x: F.gelu(x, approximate=m.approximate),
        lambda m, g, x, y: torch.ops.aten.gelu_backward(g, x, approximate=m.approximate)),
}


class NativePlan(NamedTuple):
    """How the kernels run one layer: its knot spacing, spline order and base activation."""

    inv_step: torch.Tensor  # 1 / h per input (uniform knot spacing h)
    offset: torch.Tensor  # -t_0 / h per input: u = x * inv_step + offset is the knot position
    slopes: torch.Tensor  # (k, k+1) slope polynomials of the live splines (kan._slope_matrix)
    order: int  # spline order k
    act_code: int  # the kernels' activation code (NATIVE_ACTIVATIONS or EXTERNAL)
    activation: nn.Module | None  # the layer's base activation module
    external: ExternalActivation | None  # torch's functions when act_code is EXTERNAL


_enabled = True


def native_available() -> bool:
    """Whether the native uniform-grid kernels were built and imported."""
    return _kanfast is not None


@contextlib.contextmanager
def torch_path() -> Iterator[None]:
    """Inside this block every KANLinear runs on its torch path (to compare, debug or profile)."""
    global _enabled
    before, _enabled = _enabled, False
    try:
        yield
    finally:
        _enabled = before


def activation_code(module: nn.Module | None) -> int | None:
    """The kernels' code for a base activation; None for one of the user's own (torch path)."""
    kind = type(module)
    return NATIVE_ACTIVATIONS.get(kind, EXTERNAL if kind in EXTERNAL_ACTIVATIONS else None)


def layer_plan(layer: Any, x: torch.Tensor) -> NativePlan | None:
    """The plan for running ``layer`` (a KANLinear) on ``x`` natively, or None for torch.

    The kernels run on the CPU, in float32/float64 with parameters of the same dtype, with
    uniform knots, an order in NATIVE_ORDERS and a built-in base activation. The plan is cached
    on the layer until the grid, the activation or a dtype changes: a small layer's forward
    would otherwise spend a tenth of its time building it.
    """
    if _kanfast is None or not _enabled or x.device.type != "cpu":
        return None
    # Read from nn.Module's own dicts: its __getattr__ costs ~0.9 us per name (measured on the
    # 2-core VM), ~6 us per forward+backward of a (16, 2, 5) layer that takes ~60 us.
    buffers, params = layer._buffers, layer._parameters
    grid, uniform = buffers["grid"], buffers["grid_uniform"]
    weight, act = params["spline_weight"], layer._modules.get("base_activation")
    key = (id(grid), grid.data_ptr(), grid._version, uniform._version, id(act), x.dtype,
           weight.dtype, weight.device)
    cached = layer.__dict__.get("_plan")
    if cached is not None and cached[0] == key:
        return cached[1]
    plan = None
    code = activation_code(act)
    tensors = [p for p in params.values() if p is not None]
    if (code is not None and x.dtype in (torch.float32, torch.float64)
            and all(p.dtype == x.dtype and p.device.type == "cpu" for p in tensors)
            and layer.spline_order in NATIVE_ORDERS and bool(uniform)):
        step = grid[:, 1] - grid[:, 0]
        k = layer.spline_order
        plan = NativePlan(inv_step=(1 / step).to(x.dtype), offset=(-grid[:, 0] / step).to(x.dtype),
                          slopes=layer.slope_matrix(x.dtype), order=k, act_code=code,
                          activation=act,
                          external=EXTERNAL_ACTIVATIONS.get(type(act)) if code == EXTERNAL
                          else None)
    if not torch.is_inference_mode_enabled():  # inference tensors cannot be kept for later
        layer.__dict__["_plan"] = (key, plan)
    return plan


def run_layer(layer: Any, x: torch.Tensor, plan: NativePlan) -> torch.Tensor:
    """y = the layer's output for x (N, in) through the kernels."""
    params = layer._parameters  # not layer.<name>: see layer_plan
    return NativeKANLinear.apply(x.contiguous(), params["base_weight"], params["spline_weight"],
                                 params.get("spline_scaler"), params.get("bias"), plan)


def _ptr(t: torch.Tensor | None) -> int:
    return 0 if t is None else t.data_ptr()


_SCRATCH = threading.local()
_SCRATCH_MAX = 1 << 22  # elements kept between backward calls, per thread (16 MiB in float32)


def _scratch(rows: int, cols: int, like: torch.Tensor) -> torch.Tensor | None:
    """A reusable (rows, cols) work buffer for one backward call, or None when it is too large.

    The feature gradient lives only inside one backward; reusing its memory instead of a fresh
    allocation per step avoids the allocator's page faults (measured on (4096, 8, 16): ~40 faults
    per step without it, and the KANLinear/Linear ratio 0.05-0.1 lower with it).
    """
    n = rows * cols
    if n > _SCRATCH_MAX:
        return None
    buf = getattr(_SCRATCH, "buf", None)
    if buf is None or buf.numel() < n or buf.dtype != like.dtype:
        buf = _SCRATCH.buf = like.new_empty(max(n, 1 << 16))
    return buf[:n].view(rows, cols)


class NativeKANLinear(torch.autograd.Function):
    """The whole layer on a uniform grid: y = features(x) @ W^T (+ bias), hand-written backward.

    features(x) (N, in * (1 + nb)) comes from _kanfast.features and W = [w_base, w_spline *
    scaler] from _kanfast.stack_weights; the backward takes the input gradient from
    _kanfast.features_backward (splines and base activation) and the parameter gradients from
    one matmul and _kanfast.weight_grads. The plan is passed as one argument because every
    argument of apply() costs time on a small layer.
    """

    @staticmethod
    def forward(ctx, x, base_weight, spline_weight, spline_scaler, bias, plan: NativePlan):  # type: ignore[override]
        n, i = x.shape
        o, _, nb = spline_weight.shape
        # the kernels read raw memory: hand them dense tensors (no copy when they already are)
        base_weight, spline_weight = base_weight.contiguous(), spline_weight.contiguous()
        spline_scaler = None if spline_scaler is None else spline_scaler.contiguous()
        threads, dbl = torch.get_num_threads(), x.dtype == torch.float64
        external = plan.external
        aux = external.forward(plan.activation, x) if external else None  # act(x) from torch
        feats = x.new_empty(n, i * (1 + nb))
        _kanfast.features(x.data_ptr(), _ptr(aux), plan.inv_step.data_ptr(),
                          plan.offset.data_ptr(), feats.data_ptr(), n, i, nb, plan.order,
                          plan.act_code, dbl, threads)
        w = x.new_empty(o, i * (1 + nb))
        _kanfast.stack_weights(base_weight.data_ptr(), spline_weight.data_ptr(),
                               _ptr(spline_scaler), w.data_ptr(), o * i, nb, dbl, threads)
        y = feats @ w.t() if bias is None else torch.addmm(bias, feats, w.t())
        ctx.save_for_backward(x, aux, feats, w, spline_weight, spline_scaler)
        ctx.plan = plan
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_y):  # type: ignore[override]
        x, aux, feats, w, spline_weight, spline_scaler = ctx.saved_tensors
        plan: NativePlan = ctx.plan
        external = plan.external
        needs = ctx.needs_input_grad
        threads, dbl = torch.get_num_threads(), x.dtype == torch.float64
        grad_y = grad_y.contiguous()  # e.g. the expanded ones of a .sum(): BLAS needs strides
        o, i, nb = spline_weight.shape
        g_x = g_bw = g_sw = g_sc = g_b = None
        if needs[0]:
            g_feats = torch.mm(grad_y, w, out=_scratch(grad_y.size(0), w.size(1), w))
            g_x = torch.empty_like(x)
            g_base = torch.empty_like(x) if external else None
            _kanfast.features_backward(
                x.data_ptr(), g_feats.data_ptr(), plan.inv_step.data_ptr(),
                plan.offset.data_ptr(), plan.slopes.data_ptr(), g_x.data_ptr(), _ptr(g_base),
                x.size(0), i, nb, plan.order, plan.act_code, dbl, threads)
            if external:
                g_x += external.backward(plan.activation, g_base, x, aux)
        if needs[1] or needs[2] or needs[3]:
            g_w = grad_y.t() @ feats  # (out, in * (1 + nb))
            g_bw = spline_weight.new_empty(o, i) if needs[1] else None
            g_sw = torch.empty_like(spline_weight) if needs[2] else None
            g_sc = torch.empty_like(spline_scaler) if needs[3] else None
            _kanfast.weight_grads(g_w.data_ptr(), spline_weight.data_ptr(), _ptr(spline_scaler),
                                  _ptr(g_bw), _ptr(g_sw), _ptr(g_sc), o * i, nb, dbl, threads)
        if needs[4]:
            g_b = grad_y.sum(0)
        return g_x, g_bw, g_sw, g_sc, g_b, None
