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
