"""Hopular: Schäfl, Gruber, Bitto-Nemling, Hochreiter 2022, "Hopular: Modern Hopfield Networks for Tabular Data"
(arXiv 2206.00664). Written here from the paper; the authors' code (github.com/ml-jku/hopular, commit 3e0c39f)
was read for the architecture and the defaults (file:line references below). This module is the
network, its masking and its loss; adapter.py registers it, training.py fits it on the shared loop.

What a row is. Every column is a token: each numeric feature, each categorical feature and the target
(hopular/auxiliary/data.py:206-260 encodes every attribute, the target included, as its value(s) plus a
"masked" indicator). A masked entry is value 0 with the indicator on; at prediction the target is always
masked, so the network predicts it by reconstructing the masked target token.

The layers (hopular/blocks.py):
  * Embedding (EmbeddingBlock, :22-131): a per-column linear map of (value, indicator) -- for a
    categorical, of (one-hot, indicator), which is one embedding table row per category plus one for
    "masked" -- plus a feature-type and a feature-position embedding, then a per-column projection
    GELU -> Dropout -> LayerNorm -> Linear.
  * Hopular block (HopularBlock, :307-419), `n_blocks` of them, each two modern Hopfield lookups with a
    residual connection (HopfieldBlock, :287-304: input + retrieved):
      sample-sample: the row's flattened state (all tokens) is the state pattern; the stored patterns are
      the embedded *training rows, targets unmasked* (the Hopular `memory`, blocks.py:569, :792); each
      block retrieves from the same embedded training set with its own projections;
      feature-feature: per row, the tokens of the current state attend to the row's own embedded input
      tokens (feature_memory=embeddings, :810), i.e. across features.
    A lookup is multi-head attention with inverse temperature beta = scaling_factor / sqrt(head dim)
    (:235; hflayers' Hopfield with one update step, hidden size = head dim), dropout on the association.
  * Summarization (SummarizationBlock, :134-190): GELU -> Dropout -> LayerNorm -> Linear from all tokens to
    every column's reconstruction (a value for numerics, logits for categoricals and classes).
A training row never retrieves itself: its own stored pattern holds its unmasked target, so the lookup
mask excludes it (blocks.py:828: memory_mask = sample index == memory index). At prediction every
training row may be retrieved (a training row queried later would find itself, as in nearest neighbours).

The masked-feature loss (data.py:197-268, blocks.py:685-760, :839-855). In training each feature entry
is *selected* with probability `select_probability`; a selected entry is masked with probability
`mask_probability`, replaced by a random value with probability `replace_probability` (a random
category; a standard-normal draw for a numeric, whose inputs are standardized) and left as is otherwise.
The target is always masked. Loss = w * feature loss + (1 - w) * target loss, where the feature loss is
the mean over columns of the reconstruction loss on that column's selected entries (cross-entropy /
squared error) and w is annealed by a half cosine from `initial_feature_loss_weight` to
`final_feature_loss_weight` (blocks.py:979-985); HopularLoss.begin_epoch sets it.

Cost: the sample-sample lookup attends from every batch row to every stored training row, so one step
costs O(batch x n_train x n_columns x d_token) time and the embedded memory O(n_train x n_columns x
d_token) memory per block kept for backpropagation; Hopular is meant for small data (the paper: up to
about 10,000 rows): adapter.py states the limits (MAX_TRAIN_ROWS, MAX_COLUMNS).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class Columns:
    """The token layout of a row: numerics, then categoricals, then the target (one token each)."""

    n_num: int
    cardinalities: tuple[int, ...]
    n_classes: int  # 0: regression target

    @property
    def n_tokens(self) -> int:
        return self.n_num + len(self.cardinalities) + 1

    @property
    def output_sizes(self) -> list[int]:
        return [1] * self.n_num + list(self.cardinalities) + [self.n_classes or 1]


@dataclass
class Masked:
    """A batch as the network sees it: numeric values with their masked indicator, categorical codes
    (code == cardinality means masked), the target token, and which feature entries the loss covers."""

    x_num: torch.Tensor  # (B, n_num) float
    num_masked: torch.Tensor  # (B, n_num) bool
    x_cat: torch.Tensor  # (B, n_cat) long, cardinality = masked
    selected: torch.Tensor  # (B, n_num + n_cat) bool: entries in the feature loss
    target: torch.Tensor  # (B,) float value or long class; masked entirely at prediction


def corrupt(x_num: torch.Tensor, x_cat: torch.Tensor, cards: torch.Tensor, *, select_probability: float,
            mask_probability: float, replace_probability: float,
            generator: torch.Generator | None = None) -> Masked:
    """The authors' training corruption (data.py:197-253): select entries, then mask or replace some."""
    n, n_num = x_num.shape
    dev = x_num.device

    def draw(shape: tuple[int, ...]) -> torch.Tensor:
        return torch.rand(shape, generator=generator).to(dev)

    n_feat = n_num + x_cat.shape[1]
    selected = draw((n, n_feat)) < select_probability
    u = draw((n, n_feat))
    masked = selected & (u < mask_probability)
    replaced = selected & (u >= mask_probability) & (u < mask_probability + replace_probability)
    noise = torch.randn((n, n_num), generator=generator).to(dev)
    x_num_c = torch.where(masked[:, :n_num], 0.0, torch.where(replaced[:, :n_num], noise, x_num))
    random_codes = (draw(tuple(x_cat.shape)) * cards).long().clamp(max=cards - 1)
    x_cat_c = torch.where(replaced[:, n_num:], random_codes, x_cat)
    x_cat_c = torch.where(masked[:, n_num:], cards.expand_as(x_cat), x_cat_c)
    return Masked(x_num_c, masked[:, :n_num], x_cat_c, selected, torch.empty(0))


class PerToken(nn.Module):
    """An independent linear map d_in -> d_out for each of n tokens (x: (..., n, d_in))."""

    def __init__(self, n: int, d_in: int, d_out: int):
        super().__init__()
        bound = 1 / math.sqrt(d_in)  # nn.Linear's default initialization, per token
        self.weight = nn.Parameter(torch.empty(n, d_in, d_out).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(n, d_out).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("...nd,nde->...ne", x, self.weight) + self.bias


class Embedding(nn.Module):
    """EmbeddingBlock (blocks.py:22-131): per-column input maps + type + position, then per-column projection."""

    offsets: torch.Tensor
    types: torch.Tensor

    def __init__(self, cols: Columns, d: int, dropout: float):
        super().__init__()
        self.cols = cols
        n_cont = cols.n_num + (0 if cols.n_classes else 1)
        discrete = list(cols.cardinalities) + ([cols.n_classes] if cols.n_classes else [])
        self.cont = PerToken(n_cont, 2, d) if n_cont else None  # (value, masked) -> d
        # One table row per category plus one for "masked" (the one-hot + indicator linear map of the authors).
        self.register_buffer("offsets", torch.tensor(np.cumsum([0] + [c + 1 for c in discrete])[:-1]),
                             persistent=False)
        self.disc = nn.Embedding(sum(c + 1 for c in discrete), d) if discrete else None
        types = [0] * n_cont + [1] * len(discrete)
        self.register_buffer("types", torch.tensor(types), persistent=False)
        self.type_embedding = nn.Embedding(2, d)
        self.position_embedding = nn.Parameter(torch.empty(cols.n_tokens, d).uniform_(-1 / math.sqrt(d),
                                                                                      1 / math.sqrt(d)))
        self.project_norm = nn.LayerNorm(d, eps=1e-12)
        self.dropout = nn.Dropout(dropout)
        self.project = PerToken(cols.n_tokens, d, d)

    def forward(self, b: Masked, target_masked: torch.Tensor) -> torch.Tensor:
        """Tokens (B, n_tokens, d): the continuous columns (numerics, a regression target), then the discrete
        ones (categoricals, a class target)."""
        parts = []
        regression = not self.cols.n_classes
        if self.cont is not None:
            values, flags = b.x_num, b.num_masked.float()
            if regression:
                values = torch.cat([values, torch.where(target_masked, 0.0, b.target.float())[:, None]], dim=1)
                flags = torch.cat([flags, target_masked.float()[:, None]], dim=1)
            parts.append(self.cont(torch.stack([values, flags], dim=-1)))
        if self.disc is not None:
            codes = b.x_cat
            if not regression:
                masked_code = torch.full_like(b.target, self.cols.n_classes)
                codes = torch.cat([codes, torch.where(target_masked, masked_code, b.target)[:, None]], dim=1)
            parts.append(self.disc(codes + self.offsets))
        z = torch.cat(parts, dim=1) + self.type_embedding(self.types) + self.position_embedding
        return self.project(self.project_norm(self.dropout(F.gelu(z))))


class HopfieldLookup(nn.Module):
    """One modern Hopfield lookup with a residual (HopfieldBlock, blocks.py:193-304): the state patterns
    retrieve a softmax(beta q k^T)-weighted average of the stored patterns' projections, beta =
    scaling_factor / sqrt(head dim); `allowed` (queries x stored) removes stored patterns from a lookup."""

    def __init__(self, d: int, n_heads: int, head_dim: int, scaling_factor: float, dropout: float):
        super().__init__()
        self.n_heads, self.head_dim, self.dropout = n_heads, head_dim, dropout
        self.beta = scaling_factor / math.sqrt(head_dim)
        self.q = nn.Linear(d, n_heads * head_dim)
        self.k = nn.Linear(d, n_heads * head_dim)
        self.v = nn.Linear(d, n_heads * head_dim)
        self.out = nn.Linear(n_heads * head_dim, d)

    def forward(self, state: torch.Tensor, stored: torch.Tensor, allowed: torch.Tensor | None = None) -> torch.Tensor:
        """state (..., Q, d), stored (..., S, d) -> state + retrieved, (..., Q, d)."""
        def heads(x: torch.Tensor) -> torch.Tensor:
            return x.unflatten(-1, (self.n_heads, self.head_dim)).transpose(-3, -2)

        q, k, v = heads(self.q(state)), heads(self.k(stored)), heads(self.v(stored))
        retrieved = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, scale=self.beta,
                                                   dropout_p=self.dropout if self.training else 0.0)
        return state + self.out(retrieved.transpose(-3, -2).flatten(-2))


class HopularBlock(nn.Module):
    """Sample-sample lookup into the embedded training set, then feature-feature lookup into the row's own
    embedded input (blocks.py:387-419), each on layer-normalized state and memory."""

    def __init__(self, n_tokens: int, d: int, n_heads: int, scaling_factor: float, dropout: float):
        super().__init__()
        width = n_tokens * d
        # Head dims of the authors' default hidden_size 0: width // heads and d // heads (blocks.py:336-337).
        self.sample_norm = nn.LayerNorm(width, eps=1e-12)
        self.sample = HopfieldLookup(width, n_heads, max(1, width // n_heads), scaling_factor, dropout)
        self.feature_norm = nn.LayerNorm(d, eps=1e-12)
        self.feature = HopfieldLookup(d, n_heads, max(1, d // n_heads), scaling_factor, dropout)

    def forward(self, h: torch.Tensor, memory: torch.Tensor, allowed: torch.Tensor | None,
                embedded: torch.Tensor) -> torch.Tensor:
        b, t, d = h.shape
        flat = self.sample(self.sample_norm(h.reshape(1, b, t * d)), self.sample_norm(memory.reshape(1, -1, t * d)),
                           None if allowed is None else allowed[None, None])
        return self.feature(self.feature_norm(flat.reshape(b, t, d)), self.feature_norm(embedded))


class HopularNet(nn.Module):
    """The whole network. The training rows (features and targets) are stored as buffers: they move with
    the module but are not weights (persistent=False keeps them out of state_dict, as ModernNCA's)."""

    memory_num: torch.Tensor
    memory_cat: torch.Tensor
    memory_y: torch.Tensor
    cards: torch.Tensor

    def __init__(self, x_num: np.ndarray, x_cat: np.ndarray, y: np.ndarray, n_classes: int, cardinalities: list[int],
                 *, d_token: int = 32, n_blocks: int = 8, n_heads: int = 8, scaling_factor: float = 1.0,
                 input_dropout: float = 0.1, lookup_dropout: float = 0.1, output_dropout: float = 0.01,
                 memory_ratio: float = 1.0):
        super().__init__()
        if len(y) < 2:
            raise ValueError(f"Hopular needs at least 2 training rows (a row never retrieves itself), got {len(y)}")
        if not 0.0 < memory_ratio <= 1.0:
            raise ValueError(f"memory_ratio must be in (0, 1], got {memory_ratio}")
        self.cols = Columns(int(np.shape(x_num)[1]), tuple(int(c) for c in cardinalities), int(n_classes))
        self.memory_ratio = memory_ratio
        self.embedding = Embedding(self.cols, d_token, input_dropout)
        self.blocks = nn.ModuleList(HopularBlock(self.cols.n_tokens, d_token, n_heads, scaling_factor, lookup_dropout)
                                    for _ in range(n_blocks))
        width = self.cols.n_tokens * d_token
        self.summarize = nn.Sequential(nn.GELU(), nn.Dropout(output_dropout), nn.LayerNorm(width, eps=1e-12),
                                       nn.Linear(width, sum(self.cols.output_sizes)))
        self.register_buffer("memory_num", torch.tensor(np.array(x_num), dtype=torch.float32), persistent=False)
        self.register_buffer("memory_cat", torch.tensor(np.array(x_cat), dtype=torch.long), persistent=False)
        self.register_buffer("memory_y", torch.tensor(np.array(y), dtype=torch.long if n_classes else torch.float32),
                             persistent=False)
        self.register_buffer("cards", torch.tensor(self.cols.cardinalities, dtype=torch.long), persistent=False)

    def memory(self, rows: torch.Tensor | None = None) -> Masked:
        """Stored training rows (all, or `rows`), nothing masked (data.py:299-312, exclude_targets=False)."""
        idx = slice(None) if rows is None else rows
        x_num, x_cat = self.memory_num[idx], self.memory_cat[idx]
        none = torch.zeros_like(x_num, dtype=torch.bool)
        return Masked(x_num, none, x_cat, torch.zeros(0), self.memory_y[idx])

    def outputs(self, b: Masked, memory_rows: torch.Tensor | None, allowed: torch.Tensor | None) -> torch.Tensor:
        """Reconstructions of every column (B, sum(output_sizes)) for a batch whose target is masked."""
        embedded = self.embedding(b, torch.ones(len(b.x_num), dtype=torch.bool, device=b.x_num.device))
        stored = self.memory(memory_rows)
        memory = self.embedding(stored, torch.zeros(len(stored.x_num), dtype=torch.bool, device=b.x_num.device))
        h = embedded
        for block in self.blocks:
            h = block(h, memory, allowed, embedded)
        return self.summarize(h.flatten(1))  # one linear map from all tokens: their order does not matter

    def split_outputs(self, out: torch.Tensor) -> list[torch.Tensor]:
        """Per column (numerics, categoricals, target), each (B, size)."""
        return list(out.split(self.cols.output_sizes, dim=1))

    def forward(self, x_num: torch.Tensor, x_cat: torch.Tensor) -> torch.Tensor:
        """Prediction: the target token's reconstruction (class logits or the standardized value), every
        training row retrievable."""
        none = torch.zeros_like(x_num, dtype=torch.bool)
        b = Masked(x_num, none, x_cat, torch.zeros(0), self._masked_target(len(x_num), x_num.device))
        return self.split_outputs(self.outputs(b, None, None))[-1]

    def _masked_target(self, n: int, device: torch.device) -> torch.Tensor:
        # Any value: the target token is masked (its value never reaches the embedding).
        return torch.zeros(n, dtype=self.memory_y.dtype, device=device)

    def training_outputs(self, b: Masked, rows: torch.Tensor) -> torch.Tensor:
        """Training forward: the batch rows `rows` (positions in the training part) never retrieve their own
        stored pattern; a share `memory_ratio` of the stored rows is drawn per step (blocks.py:798-802)."""
        n = len(self.memory_y)
        picked = None
        if self.memory_ratio < 1.0:
            picked = torch.randperm(n, device=rows.device)[:max(2, int(self.memory_ratio * n))]
        candidates = torch.arange(n, device=rows.device) if picked is None else picked
        allowed = rows[:, None] != candidates[None, :]
        return self.outputs(b, picked, allowed)


@dataclass
class MaskingConfig:
    """The training corruption; defaults: the authors' command line (hopular/interactive.py:89-96)."""

    select_probability: float = 1.0
    mask_probability: float = 0.025
    replace_probability: float = 0.175

    def __post_init__(self) -> None:
        for name in ("select_probability", "mask_probability", "replace_probability"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if self.mask_probability + self.replace_probability > 1.0:
            raise ValueError(f"mask_probability + replace_probability must be at most 1, got "
                             f"{self.mask_probability} + {self.replace_probability}")


def feature_weight(epoch: int, anneal_epochs: int, initial: float, final: float) -> float:
    """The feature-loss weight of epoch `epoch` (1-based): a half cosine from `initial` at epoch 1 to `final`
    at `anneal_epochs`, then `final` (blocks.py:979-985 anneals per epoch the same way)."""
    progress = min(1.0, (epoch - 1) / max(1, anneal_epochs - 1))
    return final + (initial - final) * (1 + math.cos(math.pi * progress)) / 2


def feature_loss(columns: list[torch.Tensor], original: Masked, n_num: int) -> torch.Tensor:
    """Mean over feature columns of the reconstruction loss on the column's selected entries (squared error
    for numerics, cross-entropy for categoricals); columns with no selected entry are left out."""
    losses = []
    for j, out in enumerate(columns):
        rows = original.selected[:, j]
        if not bool(rows.any()):
            continue
        if j < n_num:
            losses.append(F.mse_loss(out[rows, 0].float(), original.x_num[rows, j]))
        else:
            losses.append(F.cross_entropy(out[rows].float(), original.x_cat[rows, j - n_num]))
    return torch.stack(losses).mean() if losses else torch.zeros((), device=original.x_num.device)


class HopularLoss:
    """The shared loop's TrainingLoss for Hopular: corrupt the batch, predict every column from the
    training-set memory (the batch rows excluded), weigh the feature and target losses."""

    def __init__(self, masking: MaskingConfig, initial_weight: float = 1.0, final_weight: float = 0.0,
                 anneal_epochs: int = 100):
        for name, w in (("initial_feature_loss_weight", initial_weight), ("final_feature_loss_weight", final_weight)):
            if not 0.0 <= w <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {w}")
        self.masking, self.initial, self.final = masking, initial_weight, final_weight
        self.anneal_epochs = int(anneal_epochs)
        self.weight = initial_weight

    def begin_epoch(self, epoch: int) -> None:
        self.weight = feature_weight(epoch, self.anneal_epochs, self.initial, self.final)

    def __call__(self, net: nn.Module, batch: tuple, target: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        assert isinstance(net, HopularNet)
        x_num, x_cat = batch
        m = self.masking
        b = corrupt(x_num, x_cat, net.cards, select_probability=m.select_probability,
                    mask_probability=m.mask_probability, replace_probability=m.replace_probability)
        b.target = target
        columns = net.split_outputs(net.training_outputs(b, rows))
        if net.cols.n_classes:
            target_loss = F.cross_entropy(columns[-1].float(), target)
        else:
            target_loss = F.mse_loss(columns[-1][:, 0].float(), target)
        original = Masked(x_num, b.num_masked, x_cat, b.selected, target)
        features = feature_loss(columns[:-1], original, net.cols.n_num)
        return self.weight * features + (1.0 - self.weight) * target_loss
