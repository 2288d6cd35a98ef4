"""The ModernNCA network (bench.adapters.models.modern_nca.adapter says what the model is and why).

The encoder (PLR lite embeddings of the numerics + one-hot categoricals -> linear map, optional MLP blocks),
the softmax(-distance / T)-weighted label average over a neighbourhood, stochastic neighbourhood sampling
in training (a row never its own neighbour) and the whole training part at inference, in chunks.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from rtdl_num_embeddings import PeriodicEmbeddings
from torch import nn

from bench.adapters.framework.nn_modules import OneHot

# Query rows x candidate rows per distance chunk at inference (2**23 float32 = 32 MiB per chunk).
PAIRS_PER_CHUNK = 2**23
LOG_EPS = 1e-7  # the paper's code takes log(p + 1e-7): a class no neighbour has keeps a finite loss


def neighbourhood_loss(net, batch, target, rows):
    """The loop's TrainingLoss for ModernNCA: predictions from a sampled neighbourhood, self excluded."""
    out = net.training_forward(batch, rows)
    if net.n_classes:
        return F.cross_entropy(out, target)
    return F.mse_loss(out.squeeze(-1), target)


class Block(nn.Module):
    """BatchNorm -> Linear -> ReLU -> Dropout -> Linear back to the embedding width (paper's MLP block)."""

    def __init__(self, dim: int, d_block: int, dropout: float):
        super().__init__()
        self.layers = nn.Sequential(nn.BatchNorm1d(dim), nn.Linear(dim, d_block), nn.ReLU(),
                                    nn.Dropout(dropout), nn.Linear(d_block, dim))

    def forward(self, x):
        return self.layers(x)


class ModernNCANet(nn.Module):
    """Encoder + neighbourhood prediction. The candidates (training rows and their labels) travel with the
    module as non-persistent buffers; `forward` predicts from all of them, `training_forward` from a
    sampled neighbourhood that leaves each row out of its own."""

    cand_num: torch.Tensor
    cand_cat: torch.Tensor
    cand_y: torch.Tensor

    def __init__(self, X, labels, n_classes: int, cardinalities: list[int], *, dim: int, n_blocks: int,
                 d_block: int, dropout: float, temperature: float, sample_rate: float, plr: bool,
                 d_embedding: int, n_frequencies: int, frequency_init_scale: float):
        super().__init__()
        x_num, x_cat = (torch.tensor(np.array(a)) for a in X)  # private copies: the inputs stay read-only
        if len(x_num) < 2:
            raise ValueError(f"ModernNCA needs at least 2 training rows (a row is never its own "
                             f"neighbour), got {len(x_num)}")
        n_num = x_num.shape[1]
        self.n_classes, self.temperature, self.sample_rate = int(n_classes), temperature, sample_rate
        self.num_embeddings = (PeriodicEmbeddings(n_num, d_embedding, n_frequencies=n_frequencies,
                                                  frequency_init_scale=frequency_init_scale, lite=True)
                               if plr else None)
        self.one_hot = OneHot(cardinalities) if cardinalities else None
        d_in = n_num * (d_embedding if plr else 1) + (self.one_hot.width if self.one_hot else 0)
        self.encoder = nn.Linear(d_in, dim)
        blocks = [Block(dim, d_block, dropout) for _ in range(n_blocks)]
        self.blocks = nn.Sequential(*blocks, nn.BatchNorm1d(dim)) if blocks else nn.Identity()
        # The candidates (training rows and labels) travel with the module (.to(device)) but are not
        # weights: persistent=False keeps them out of state_dict and out of the loop's best-state copies.
        labels = torch.as_tensor(labels)
        y = (nn.functional.one_hot(labels.long(), self.n_classes).float() if self.n_classes
             else labels.float().reshape(-1, 1))
        self.register_buffer("cand_num", x_num.float(), persistent=False)
        self.register_buffer("cand_cat", x_cat.long(), persistent=False)
        self.register_buffer("cand_y", y, persistent=False)
        # The candidates' embeddings for inference, valid while the weights are unchanged.
        self._cache: torch.Tensor | None = None

    def encode(self, x_num, x_cat):
        parts = []
        if x_num.shape[1]:
            parts.append(self.num_embeddings(x_num).flatten(1) if self.num_embeddings is not None else x_num)
        if self.one_hot is not None:
            parts.append(self.one_hot(x_cat))
        return self.blocks(self.encoder(torch.cat(parts, dim=1)))

    def predict_from(self, z, z_cand, y_cand, exclude=None):
        """Softmax(-distance / T)-weighted label average; `exclude` (bool, query x candidate) masks
        pairs out of the neighbourhood. Float32 even under bf16 autocast: distances need the precision."""
        with torch.autocast(z.device.type, enabled=False):
            logits = -torch.cdist(z.float(), z_cand.float()) / self.temperature
            if exclude is not None:
                logits = logits.masked_fill(exclude, float("-inf"))
            out = torch.softmax(logits, dim=-1) @ y_cand
            return torch.log(out + LOG_EPS) if self.n_classes else out

    def training_forward(self, batch, rows):
        """Predictions for a training batch from its stochastic neighbourhood: the batch's other rows
        plus a fresh random `sample_rate` share of the remaining training rows."""
        n = len(self.cand_y)
        outside = torch.ones(n, dtype=torch.bool, device=rows.device)
        outside[rows] = False
        pool = outside.nonzero().squeeze(1)
        k = min(len(pool), max(1, int(len(pool) * self.sample_rate)))  # >= 1: a 1-row batch has a neighbour
        picked = pool[torch.randperm(len(pool), device=pool.device)[:k]]
        z = self.encode(*batch)
        z_cand = torch.cat([z, self.encode(self.cand_num[picked], self.cand_cat[picked])])
        cand_rows = torch.cat([rows, picked])
        return self.predict_from(z, z_cand, self.cand_y[cand_rows], rows[:, None] == cand_rows[None, :])

    def candidate_embeddings(self, chunk: int = 8192):
        """Embeddings of all training rows, in chunks; cached in eval mode without gradients."""
        cacheable = not self.training and not torch.is_grad_enabled()
        if cacheable and self._cache is not None:
            return self._cache
        z = torch.cat([self.encode(self.cand_num[i:i + chunk], self.cand_cat[i:i + chunk])
                       for i in range(0, len(self.cand_y), chunk)])
        if cacheable:
            self._cache = z
        return z

    def forward(self, x_num, x_cat):
        """Inference: the whole training part is the neighbourhood (rows are not excluded: a query
        that is itself a training row finds itself, as a nearest-neighbour model does)."""
        z_cand = self.candidate_embeddings()
        z = self.encode(x_num, x_cat)
        step = max(1, PAIRS_PER_CHUNK // len(z_cand))
        return torch.cat([self.predict_from(z[i:i + step], z_cand, self.cand_y)
                          for i in range(0, len(z), step)])

    # Anything that changes the weights or their device invalidates the cached candidate embeddings.
    def train(self, mode: bool = True):
        self._cache = None
        return super().train(mode)

    def load_state_dict(self, *args, **kwargs):
        self._cache = None
        return super().load_state_dict(*args, **kwargs)

    def _apply(self, *args, **kwargs):
        self._cache = None
        return super()._apply(*args, **kwargs)
