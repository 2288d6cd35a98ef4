"""The MLP-PLR network (bench.adapters.models.mlp_plr.adapter says what the model is and where it comes from)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import torch
from rtdl_num_embeddings import PeriodicEmbeddings
from tabm import MLPBackbone
from torch import nn

from bench.adapters.framework.nn_modules import OneHot

if TYPE_CHECKING:
    from bench.adapters.framework.packed.layers import PackMode


class MLPPLR(nn.Module):
    """MLP on periodic embeddings of the numeric features ("MLP-PLR", Gorishniy et al. 2022).

    Numerics -> PeriodicEmbeddings (sin/cos of learned frequencies -> per-feature linear -> ReLU,
    i.e. "PLR" with lite=False) -> flatten; categoricals one-hot; concatenated into an MLP backbone
    (tabm.MLPBackbone: Linear-ReLU-Dropout blocks) and a linear head.
    """

    def __init__(self, n_num: int, cardinalities: list[int], d_out: int, *, n_blocks: int, d_block: int,
                 dropout: float, d_embedding: int, n_frequencies: int, frequency_init_scale: float):
        super().__init__()
        self.num_embeddings = (PeriodicEmbeddings(n_num, d_embedding, n_frequencies=n_frequencies,
                                                  frequency_init_scale=frequency_init_scale, lite=False)
                               if n_num else None)
        self.one_hot = OneHot(cardinalities) if cardinalities else None
        d_in = n_num * d_embedding + (self.one_hot.width if self.one_hot else 0)
        self.backbone = MLPBackbone(d_in=d_in, n_blocks=n_blocks, d_block=d_block, dropout=dropout)
        self.head = nn.Linear(d_block, d_out)

    @staticmethod
    def packer(nets: Sequence[MLPPLR], mode: PackMode, generators: list[torch.Generator]) -> nn.Module:
        """K of these networks as one packed module (bench.adapters.framework.packed.nets.packer)."""
        from bench.adapters.models.mlp_plr.packed import PackedMLPPLR

        return PackedMLPPLR(nets, mode, generators)

    def forward(self, x_num: torch.Tensor, x_cat: torch.Tensor) -> torch.Tensor:
        parts = []
        if self.num_embeddings is not None:
            parts.append(self.num_embeddings(x_num).flatten(1))
        if self.one_hot is not None:
            parts.append(self.one_hot(x_cat))
        return self.head(self.backbone(torch.cat(parts, dim=1)))
