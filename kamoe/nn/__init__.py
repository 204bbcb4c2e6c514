"""Torch modules: KAN layers, gates, mixtures of experts and the MLP-KAN transformer."""

from kamoe.nn.fasterkan import FasterKAN, FasterKANLinear
from kamoe.nn.gates import GRKAN, GRN, LinearGate, SlotRouter, TopKRouter
from kamoe.nn.kan import KAN, KANLinear
from kamoe.nn.moe import KAMoE, MLPKANMoE
from kamoe.nn.transformer import MLPKANBlock, MLPKANTransformer

__all__ = ["KAN", "KANLinear", "FasterKAN", "FasterKANLinear", "GRN", "GRKAN", "LinearGate",
           "TopKRouter", "SlotRouter", "KAMoE", "MLPKANMoE", "MLPKANBlock", "MLPKANTransformer"]
