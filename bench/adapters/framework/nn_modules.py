"""torch modules around the reference architectures (imported only when a network is built).

The architectures themselves come from the authors' packages (rtdl_revisiting_models,
rtdl_num_embeddings, tabm); this file only adapts their input conventions to the harness's
(x_num, x_cat) pair: an empty part becomes None, categorical codes become one-hot where the
architecture wants that.
"""

from __future__ import annotations

import torch
from torch import nn


def none_if_empty(x: torch.Tensor | None) -> torch.Tensor | None:
    return None if x is None or x.shape[-1] == 0 else x


class NumCatAdapter(nn.Module):
    """Calls `inner(x_num, x_cat)` with None for an empty part (FT-Transformer, TabM expect that)."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner

    def forward(self, x_num: torch.Tensor, x_cat: torch.Tensor) -> torch.Tensor:
        return self.inner(none_if_empty(x_num), none_if_empty(x_cat))


class OneHot(nn.Module):
    """One-hot codes of several categorical columns, concatenated (no parameters)."""

    def __init__(self, cardinalities: list[int]):
        super().__init__()
        self.cardinalities = list(cardinalities)

    @property
    def width(self) -> int:
        return sum(self.cardinalities)

    def forward(self, x_cat: torch.Tensor) -> torch.Tensor:
        return torch.cat([nn.functional.one_hot(x_cat[..., i], c) for i, c in enumerate(self.cardinalities)],
                         dim=-1).float()


class MLPPLR(nn.Module):
    """MLP on periodic embeddings of the numeric features ("MLP-PLR", Gorishniy et al. 2022).

    Numerics -> PeriodicEmbeddings (sin/cos of learned frequencies -> per-feature linear -> ReLU,
    i.e. "PLR" with lite=False) -> flatten; categoricals one-hot; concatenated into an MLP backbone
    (tabm.MLPBackbone: Linear-ReLU-Dropout blocks) and a linear head.
    """

    def __init__(self, n_num: int, cardinalities: list[int], d_out: int, *, n_blocks: int, d_block: int,
                 dropout: float, d_embedding: int, n_frequencies: int, frequency_init_scale: float):
        from rtdl_num_embeddings import PeriodicEmbeddings
        from tabm import MLPBackbone

        super().__init__()
        self.num_embeddings = (PeriodicEmbeddings(n_num, d_embedding, n_frequencies=n_frequencies,
                                                  frequency_init_scale=frequency_init_scale, lite=False)
                               if n_num else None)
        self.one_hot = OneHot(cardinalities) if cardinalities else None
        d_in = n_num * d_embedding + (self.one_hot.width if self.one_hot else 0)
        self.backbone = MLPBackbone(d_in=d_in, n_blocks=n_blocks, d_block=d_block, dropout=dropout)
        self.head = nn.Linear(d_block, d_out)

    def forward(self, x_num: torch.Tensor, x_cat: torch.Tensor) -> torch.Tensor:
        parts = []
        if self.num_embeddings is not None:
            parts.append(self.num_embeddings(x_num).flatten(1))
        if self.one_hot is not None:
            parts.append(self.one_hot(x_cat))
        return self.head(self.backbone(torch.cat(parts, dim=1)))
