"""A pre-norm transformer whose feed-forward is the MLP-KAN mixture, with three tokenizers.

Block (as MLP-KAN's kanBlock, a DeiT block): x = x + Attn(LN(x)); x = x + MoE(LN(x)).
Tokenizers: tabular rows (one token per feature), images (non-overlapping patches), sequences
(one token per time step). A learnable [CLS] token is read out by a linear head.
"""

from __future__ import annotations

import torch
from torch import nn

from kamoe.errors import ModelError
from kamoe.nn.moe import MLPKANMoE


class TabularTokenizer(nn.Module):
    """Feature i with value v becomes the token v * w_i + b_i (one learnable embedding each)."""

    def __init__(self, n_features: int, d_model: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n_features, d_model) * 0.5)
        self.bias = nn.Parameter(torch.zeros(n_features, d_model))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.unsqueeze(-1) * self.weight + self.bias


class PatchTokenizer(nn.Module):
    """Images (B, H, W) or (B, C, H, W) cut into p x p patches, each linearly embedded."""

    def __init__(self, image_shape: tuple[int, ...], patch: int, d_model: int) -> None:
        super().__init__()
        if len(image_shape) == 2:
            image_shape = (1, *image_shape)
        c, h, w = image_shape
        if patch < 1 or h % patch or w % patch:
            raise ModelError(f"patch must divide the image size {h}x{w}, got {patch}")
        self.image_shape = image_shape
        self.patch = patch
        self.proj = nn.Linear(c * patch * patch, d_model)
        self.pos = nn.Parameter(torch.zeros((h // patch) * (w // patch), d_model))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c, h, w = self.image_shape
        p = self.patch
        x = x.reshape(x.size(0), c, h // p, p, w // p, p).permute(0, 2, 4, 1, 3, 5)
        return self.proj(x.reshape(x.size(0), -1, c * p * p)) + self.pos


class SequenceTokenizer(nn.Module):
    """Time step t of a (B, T, d) sequence becomes Linear(x_t) + a learned position embedding."""

    def __init__(self, seq_len: int, n_features: int, d_model: int) -> None:
        super().__init__()
        self.proj = nn.Linear(n_features, d_model)
        self.pos = nn.Parameter(torch.zeros(seq_len, d_model))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x) + self.pos


class MLPKANBlock(nn.Module):
    """Pre-norm block: self-attention, then the MLP-KAN mixture as feed-forward."""

    def __init__(self, d_model: int, n_heads: int, ffn_hidden: int, **moe_kwargs) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(d_model)
        self.attn = nn.MultiheadAttention(d_model, n_heads, batch_first=True, bias=False)
        self.norm2 = nn.LayerNorm(d_model)
        self.moe = MLPKANMoE(d_model, d_model, hidden=ffn_hidden, **moe_kwargs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.moe(self.norm2(x))


class MLPKANTransformer(nn.Module):
    """Tokenizer -> [CLS] + tokens -> depth x MLPKANBlock -> LayerNorm -> linear head."""

    def __init__(
        self,
        input_shape: tuple[int, ...],
        output_dim: int,
        tokenizer: str = "tabular",
        d_model: int = 32,
        depth: int = 2,
        n_heads: int = 4,
        ffn_hidden: int = 64,
        patch: int = 2,
        **moe_kwargs,
    ) -> None:
        super().__init__()
        if d_model % n_heads:
            raise ModelError(f"d_model={d_model} must be divisible by n_heads={n_heads}")
        if depth < 1:
            raise ModelError(f"depth must be >= 1, got {depth}")
        if tokenizer == "tabular":
            if len(input_shape) != 1:
                raise ModelError(f"tokenizer 'tabular' needs (features,) input, got {input_shape}")
            self.tokenizer = TabularTokenizer(input_shape[0], d_model)
        elif tokenizer == "image":
            self.tokenizer = PatchTokenizer(tuple(input_shape), patch, d_model)
        elif tokenizer == "sequence":
            if len(input_shape) != 2:
                raise ModelError(f"tokenizer 'sequence' needs (steps, features), got {input_shape}")
            self.tokenizer = SequenceTokenizer(input_shape[0], input_shape[1], d_model)
        else:
            raise ModelError(
                f"tokenizer must be 'tabular', 'image' or 'sequence', got {tokenizer!r}"
            )
        self.cls = nn.Parameter(torch.zeros(1, 1, d_model))
        self.blocks = nn.ModuleList(
            MLPKANBlock(d_model, n_heads, ffn_hidden, **moe_kwargs) for _ in range(depth)
        )
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, output_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.tokenizer(x)
        tokens = torch.cat([self.cls.expand(tokens.size(0), -1, -1), tokens], dim=1)
        for block in self.blocks:
            tokens = block(tokens)
        return self.head(self.norm(tokens[:, 0]))
