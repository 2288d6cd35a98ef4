"""The ExcelFormer network and its training loss (bench.adapters.models.excelformer.adapter says what the
model is and why): the GLU tokenizer, semi-permeable attention, AiuM blocks, the readout, attenuated
initialization, and Feat-Mix / Hidden-Mix.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def semi_permeable_mask(n_features: int):
    """allowed[i, j]: may feature i (in decreasing-MI order) attend to feature j? Only j <= i, i.e.
    itself and the features more informative than itself."""
    return torch.ones(n_features, n_features, dtype=torch.bool).tril()


def mix_rows(x, share, generator=None):
    """Row i keeps exactly round(share_i * m) of its m slots along dim 1 (features or embedding dims)
    and takes the others from a partner row. Returns (mixed x, kept mask (batch, m), partner index)."""
    b, m = x.shape[0], x.shape[1] if x.ndim == 2 else x.shape[-1]
    n_keep = torch.round(share * m).long()
    ranks = torch.rand(b, m, device=x.device).argsort(dim=1).argsort(dim=1)  # a random permutation per row
    kept = ranks < n_keep[:, None]
    partner = torch.randperm(b, device=x.device)
    mask = kept.unsqueeze(1) if x.ndim == 3 else kept  # hidden dims: the same dims for every feature
    return torch.where(mask, x, x[partner]), kept, partner


def mixup_loss(net, batch, target, rows, *, mix_type: str, alpha: float, classification: bool):
    """The loop's TrainingLoss for Feat-Mix / Hidden-Mix: predictions on mixed rows vs mixed targets."""
    (x,) = batch
    share = torch.distributions.Beta(alpha, alpha).sample((len(x),)).to(x.device)
    out, weight, partner = net.mixed_forward(x, share, mix_type)
    out = out.float()
    if classification:
        return (weight * F.cross_entropy(out, target, reduction="none")
                + (1 - weight) * F.cross_entropy(out, target[partner], reduction="none")).mean()
    return F.mse_loss(out.squeeze(-1), weight * target + (1 - weight) * target[partner])


def attenuated_(weight, scale: float):
    """Kaiming-uniform init (fan_in, leaky_relu a=sqrt(5), as nn.Linear) with its bound times `scale`."""
    bound = scale * math.sqrt(3.0) * nn.init.calculate_gain("leaky_relu", math.sqrt(5)) / math.sqrt(weight.shape[1])
    with torch.no_grad():
        weight.uniform_(-bound, bound)


class Tokenizer(nn.Module):
    """Feature j -> (w1_j x_j + b1_j) * tanh(w2_j x_j + b2_j), a d_token vector."""

    def __init__(self, n_features: int, d_token: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_features, d_token))
        self.weight2 = nn.Parameter(torch.empty(n_features, d_token))
        self.bias = nn.Parameter(torch.empty(n_features, d_token))
        self.bias2 = nn.Parameter(torch.empty(n_features, d_token))
        for p in self.parameters():
            attenuated_(p, 1.0)

    def forward(self, x):
        x = x[..., None]
        return (self.weight * x + self.bias) * torch.tanh(self.weight2 * x + self.bias2)


class SemiPermeableAttention(nn.Module):
    """Multi-head attention in which feature i attends only to itself and the features more informative
    than itself (semi_permeable_mask)."""

    def __init__(self, n_features: int, d: int, n_heads: int, dropout: float, init_scale: float):
        super().__init__()
        if d % n_heads:
            raise ValueError(f"d_token={d} must be divisible by n_heads={n_heads}")
        self.n_heads, self.dropout = n_heads, dropout
        self.qkv = nn.Linear(d, 3 * d)
        attenuated_(self.qkv.weight, init_scale)
        nn.init.zeros_(self.qkv.bias)
        self.out: nn.Module = nn.Identity()
        if n_heads > 1:
            self.out = out = nn.Linear(d, d)
            attenuated_(out.weight, 1.0)
            nn.init.zeros_(out.bias)
        self.register_buffer("allowed", semi_permeable_mask(n_features), persistent=False)

    def forward(self, z):
        b, f, d = z.shape
        q, k, v = (t.reshape(b, f, self.n_heads, d // self.n_heads).transpose(1, 2)
                   for t in self.qkv(z).chunk(3, dim=-1))
        out = nn.functional.scaled_dot_product_attention(
            q, k, v, attn_mask=self.allowed, dropout_p=self.dropout if self.training else 0.0)
        return self.out(out.transpose(1, 2).reshape(b, f, d))


class AiuM(nn.Module):
    """Per-token GLU: (z W1 + b1) * tanh(z W2 + b2)."""

    def __init__(self, d: int, init_scale: float):
        super().__init__()
        self.linear = nn.Linear(d, 2 * d)
        attenuated_(self.linear.weight, init_scale)
        nn.init.zeros_(self.linear.bias)

    def forward(self, z):
        a, b = self.linear(z).chunk(2, dim=-1)
        return a * torch.tanh(b)


class ExcelFormerNet(nn.Module):
    """Tokenizer -> n_layers x (semi-permeable attention, AiuM), pre-normalized with residuals -> readout
    (a learned weighting of the feature tokens -> LayerNorm -> PReLU -> linear head)."""

    def __init__(self, n_features: int, d_out: int, mi_weights, *, n_layers: int, d_token: int, n_heads: int,
                 attention_dropout: float, ffn_dropout: float, residual_dropout: float, init_scale: float):
        super().__init__()
        self.tokenizer = Tokenizer(n_features, d_token)
        self.layers = nn.ModuleList(nn.ModuleDict({
            # pre-normalization; the first layer's attention sees the raw tokens (as in FT-Transformer)
            "norm0": nn.LayerNorm(d_token) if i else nn.Identity(),
            "attention": SemiPermeableAttention(n_features, d_token, n_heads, attention_dropout, init_scale),
            "norm1": nn.LayerNorm(d_token),
            "aium": AiuM(d_token, init_scale),
        }) for i in range(n_layers))
        self.ffn_dropout, self.residual_dropout = nn.Dropout(ffn_dropout), nn.Dropout(residual_dropout)
        self.pool = nn.Linear(n_features, 1)  # tokens -> one vector, a learned weighting of the features
        self.norm = nn.LayerNorm(d_token)
        self.activation = nn.PReLU()
        self.head = nn.Linear(d_token, d_out)
        attenuated_(self.pool.weight, 1.0)
        attenuated_(self.head.weight, 1.0)
        self.register_buffer("mi_weights", torch.as_tensor(np.asarray(mi_weights), dtype=torch.float32),
                             persistent=False)

    def blocks(self, z):
        for layer in self.layers:
            z = z + self.residual_dropout(layer["attention"](layer["norm0"](z)))
            z = z + self.residual_dropout(self.ffn_dropout(layer["aium"](layer["norm1"](z))))
        return z

    def readout(self, z):
        z = self.pool(z.transpose(1, 2)).squeeze(-1)
        return self.head(self.activation(self.norm(z)))

    def forward(self, x):
        return self.readout(self.blocks(self.tokenizer(x)))

    def mixed_forward(self, x, share, mix_type: str):
        """(outputs on mixed rows, each row's own-target weight, partner rows) for training."""
        z = self.tokenizer(x)
        if mix_type == "feat_mix":  # the tokenizer is per feature: mixing tokens = mixing features
            z, kept, partner = mix_rows(z.transpose(1, 2), share)
            z = z.transpose(1, 2)
            weight = (kept.float() * self.mi_weights).sum(dim=1)
        elif mix_type == "hidden_mix":
            z, kept, partner = mix_rows(z, share)
            weight = kept.float().mean(dim=1)
        else:
            raise ValueError(f"mix_type must be feat_mix or hidden_mix, got {mix_type!r}")
        return self.readout(self.blocks(z)), weight, partner
