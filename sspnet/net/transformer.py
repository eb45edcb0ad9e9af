"""The per-scale token encoder of SSPNet (TranSalNet's transformer, paper IV-A).

Every spatial position of a feature map is one token; a learnable positional embedding is
added once and interpolated to the actual grid, so the model accepts any input size.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Attention(nn.Module):
    """Multi-head self-attention on SDPA: the fused kernel keeps memory linear in tokens on GPU."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"width {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v)
        return self.proj(y.transpose(1, 2).reshape(b, n, d))


class Block(nn.Module):
    """Pre-LayerNorm transformer block (LN eps 1e-6, MLP Linear-GELU-Linear, hidden 4d)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class TokenEncoder(nn.Module):
    """Feature map -> tokens (row-major) -> `depth` blocks -> final LN -> feature map."""

    def __init__(self, dim: int, depth: int, heads: int, grid: tuple[int, int]) -> None:
        super().__init__()
        self.grid = grid
        self.pos = nn.Parameter(torch.zeros(1, grid[0] * grid[1], dim))
        nn.init.trunc_normal_(self.pos, std=0.02)
        self.blocks = nn.ModuleList(Block(dim, heads) for _ in range(depth))
        self.norm = nn.LayerNorm(dim, eps=1e-6)

    def position(self, h: int, w: int) -> torch.Tensor:
        if (h, w) == self.grid:
            return self.pos
        gh, gw = self.grid
        pos = self.pos.reshape(1, gh, gw, -1).permute(0, 3, 1, 2)
        pos = F.interpolate(pos, size=(h, w), mode="bicubic", align_corners=False)
        return pos.flatten(2).transpose(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        t = x.flatten(2).transpose(1, 2) + self.position(h, w).to(x.dtype)
        for block in self.blocks:
            t = block(t)
        return self.norm(t).transpose(1, 2).reshape(b, c, h, w)
