"""Torch modules: KAN layers, gates, mixtures of experts and the MLP-KAN transformer."""

import itertools as _itertools

import torch as _torch

from kamoe.nn.fasterkan import FasterKAN, FasterKANLinear
from kamoe.nn.gates import GRKAN, GRN, LinearGate, SlotRouter, TopKRouter
from kamoe.nn.kan import KAN, KANLinear
from kamoe.nn.moe import KAMoE, MLPKANMoE
from kamoe.nn.transformer import MLPKANBlock, MLPKANTransformer


def module_device(module: _torch.nn.Module) -> _torch.device:
    """The device a module's parameters (or buffers) are on; the CPU for one with neither."""
    for t in _itertools.chain(module.parameters(), module.buffers()):
        return t.device
    return _torch.device("cpu")


__all__ = ["module_device", "KAN", "KANLinear", "FasterKAN", "FasterKANLinear", "GRN", "GRKAN",
           "LinearGate", "TopKRouter", "SlotRouter", "KAMoE", "MLPKANMoE", "MLPKANBlock",
           "MLPKANTransformer"]
