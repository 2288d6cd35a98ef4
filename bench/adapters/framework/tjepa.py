"""T-JEPA self-supervised pretraining: Thimonier, De Melo Costa, Popineau, Rimmel, Doan 2025, "T-JEPA:
Augmentation-Free Self-Supervised Learning for Tabular Data" (ICLR 2025). Written here from the paper; the
authors' code (github.com/jose-melo/t-jepa, commit 98dda99) was read for the architecture, the defaults and
the downstream protocol (file:line references below).

Pretrain, then fit. `pretrain(X_train, config, ctx)` sees the preprocessed training part only, (x_num, x_cat)
as NumCatPreprocessor gives it: no labels, no validation or test rows (its signature takes none). It returns
a PretrainedEncoder; `encode(pretrained, X)` maps any part to the frozen target encoder's representation,
all tokens flattened, which a downstream network (an MLP) is then trained on. That is the authors'
downstream protocol: their OnlineDataset encodes the data once with the trained *target* encoder
(src/datasets/online_dataset.py:86-92) and the benchmark models train on those embeddings
("using_embedding", encoder_type "linear_flatten", src/train.py:250-285); the encoder is not fine-tuned.

The method (src/train.py:340-443, src/mask.py, src/encoder.py, src/predictors.py):
  * Tokens: each feature is a token (numerics: x * w_j + b_j; categoricals: an embedding per level), plus
    `n_reg_tokens` learned "regularization tokens" (the paper's [REG] tokens against collapse) in front.
  * Feature subsets, no augmentation: per row, a context set of features and `n_targets` target sets drawn
    from the remaining features (disjoint from the context; mask.py:125-150). Share ranges as the
    authors: per batch, the context and target sizes are drawn uniformly from [min, max] shares.
  * Context encoder: a transformer over the [REG] tokens and the context feature tokens only.
  * Target encoder: the same architecture on all tokens, no gradient, an exponential moving average of
    the context encoder: after every optimizer step, target <- m * target + (1 - m) * context, m rising
    linearly from ema_start to ema_end over the planned steps (I-JEPA's momentum schedule, train.py:437-443).
  * Predictor: a narrower transformer over the context outputs (with feature positions) and one mask
    token per target feature (with its position); it predicts the target encoder's representation of
    each target feature. Loss: mean squared error in latent space (train.py:87, :370-373).

Stopping: at most `max_epochs`, the `deadline` (ctx.deadline) or `time_limit_s`, and early stopping on a
held-out slice of the training part (`holdout_fraction`, at least HOLDOUT_MIN_ROWS rows, else none): the
JEPA loss of the held-out rows with masks drawn once (seeded), patience `patience` epochs; the target
encoder of the best epoch is kept. The authors stop on the training loss (src/utils/checkpointer.py:243-
270, patience 100); the held-out slice needs no labels and catches a predictor that only fits the
training rows.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bench.adapters.framework.context import FitContext
from bench.adapters.framework.early_stopping import EarlyStopper, end_reason
from bench.adapters.framework.neural_base import TrainConfig

HOLDOUT_MIN_ROWS = 16


@dataclass(frozen=True)
class TJEPAConfig:
    """Defaults: the authors' launch script (scripts/launch_tjepa.sh:10-45) except where noted."""

    d_token: int = 64  # MODEL_DIM_HIDDEN
    n_layers: int = 16  # MODEL_NUM_LAYERS
    n_heads: int = 2  # MODEL_NUM_HEADS
    d_ff: int = 64  # MODEL_DIM_FEEDFORWARD
    dropout: float = 0.0018542257314766695  # MODEL_DROPOUT_PROB
    n_reg_tokens: int = 1  # N_CLS_TOKENS
    pred_d: int = 16  # PRED_EMBED_DIM
    pred_layers: int = 16  # PRED_NUM_LAYERS
    pred_heads: int = 4  # PRED_NUM_HEADS
    pred_dropout: float = 0.0019307456645321797  # PRED_P_DROPOUT
    context_share: tuple[float, float] = (0.13628349247854785, 0.36819012681604135)  # MASK_MIN/MAX_CTX_SHARE
    target_share: tuple[float, float] = (0.1556321308543076, 0.6222278244105446)  # MASK_MIN/MAX_TRGT_SHARE
    n_targets: int = 4  # MASK_NUM_PREDS
    lr: float = 0.0003658682841082736  # EXP_LR; linear warm-up from 0, then cosine to 0 (EXP_FINAL_LR)
    warmup_epochs: int = 10  # EXP_WARMUP
    weight_decay: float = 0.0  # EXP_WEIGHT_DECAY
    ema: tuple[float, float] = (0.996, 1.0)  # MODEL_EMA_START, MODEL_EMA_END
    batch_size: int = 512  # BATCH_SIZE
    max_epochs: int = 300  # EXP_TRAIN_TOTAL_EPOCHS
    patience: int = 100  # EXP_PATIENCE (theirs counts epochs without a lower training loss)
    holdout_fraction: float = 0.1  # ours: the early-stopping slice of the training part
    time_limit_s: float | None = None  # wall-clock budget of the pretraining (besides ctx.deadline)

    def __post_init__(self) -> None:
        for name in ("context_share", "target_share", "ema"):
            lo, hi = getattr(self, name)
            if not 0.0 <= lo <= hi <= 1.0:
                raise ValueError(f"{name} must be (low, high) with 0 <= low <= high <= 1, got {(lo, hi)}")
        if self.d_token % self.n_heads or self.pred_d % self.pred_heads:
            raise ValueError(f"d_token={self.d_token} / pred_d={self.pred_d} must be divisible by "
                             f"n_heads={self.n_heads} / pred_heads={self.pred_heads}")
        if not 0.0 <= self.holdout_fraction < 1.0:
            raise ValueError(f"holdout_fraction must be in [0, 1), got {self.holdout_fraction}")
        for name in ("n_layers", "pred_layers", "n_targets", "batch_size", "max_epochs", "patience"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")


def _transformer(d: int, heads: int, d_ff: int, dropout: float, layers: int) -> nn.TransformerEncoder:
    layer = nn.TransformerEncoderLayer(d, heads, d_ff, dropout, batch_first=True, norm_first=True)
    return nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)


class Tokenizer(nn.Module):
    """Feature j -> a d-vector: x_j * w_j + b_j for numerics, an embedding of the level for categoricals."""

    offsets: torch.Tensor

    def __init__(self, n_num: int, cardinalities: list[int], d: int):
        super().__init__()
        bound = 1 / math.sqrt(d)
        self.weight = nn.Parameter(torch.empty(n_num, d).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(n_num, d).uniform_(-bound, bound))
        self.register_buffer("offsets", torch.tensor(np.cumsum([0] + list(cardinalities))[:-1], dtype=torch.long),
                             persistent=False)
        self.levels = nn.Embedding(sum(cardinalities), d) if cardinalities else None

    def forward(self, x_num: torch.Tensor, x_cat: torch.Tensor) -> torch.Tensor:
        tokens = [x_num[..., None] * self.weight + self.bias]
        if self.levels is not None:
            tokens.append(self.levels(x_cat + self.offsets))
        return torch.cat(tokens, dim=1)


class Encoder(nn.Module):
    """[REG] tokens + feature tokens (a learned position per feature) -> transformer -> LN -> Linear -> LN
    (the tail of the authors' TabularEncoder, src/encoder.py:338-351). `keep` (B, k): the features it sees."""

    def __init__(self, n_num: int, cardinalities: list[int], cfg: TJEPAConfig):
        super().__init__()
        d = cfg.d_token
        self.tokenizer = Tokenizer(n_num, cardinalities, d)
        self.position = nn.Parameter(torch.randn(n_num + len(cardinalities), d) * 0.02)
        self.reg = nn.Parameter(torch.randn(cfg.n_reg_tokens, d) * 0.02)
        self.transformer = _transformer(d, cfg.n_heads, cfg.d_ff, cfg.dropout, cfg.n_layers)
        self.tail = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, d), nn.LayerNorm(d))

    def forward(self, x_num: torch.Tensor, x_cat: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        tokens = self.tokenizer(x_num, x_cat) + self.position
        if keep is not None:
            tokens = gather_tokens(tokens, keep)
        reg = self.reg.expand(len(tokens), -1, -1)
        return self.tail(self.transformer(torch.cat([reg, tokens], dim=1)))


def gather_tokens(tokens: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """tokens (B, F, d), idx (B, k) feature positions -> (B, k, d)."""
    return tokens.gather(1, idx[..., None].expand(-1, -1, tokens.shape[-1]))


class Predictor(nn.Module):
    """Context outputs + one mask token per target feature, each with its feature's position, through a
    narrower transformer; returns the predicted representations of the target features (predictors.py:226-330)."""

    def __init__(self, n_features: int, cfg: TJEPAConfig):
        super().__init__()
        self.n_reg = cfg.n_reg_tokens
        self.embed = nn.Linear(cfg.d_token, cfg.pred_d)
        self.position = nn.Parameter(torch.randn(n_features, cfg.pred_d) * 0.02)
        self.mask_token = nn.Parameter(torch.randn(cfg.pred_d) * 0.02)
        self.transformer = _transformer(cfg.pred_d, cfg.pred_heads, 2 * cfg.pred_d, cfg.pred_dropout,
                                        cfg.pred_layers)
        self.out = nn.Sequential(nn.LayerNorm(cfg.pred_d), nn.Linear(cfg.pred_d, cfg.d_token))

    def forward(self, z: torch.Tensor, context: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        pos = self.position.expand(len(z), -1, -1)
        h = self.embed(z)
        h = torch.cat([h[:, :self.n_reg], h[:, self.n_reg:] + gather_tokens(pos, context)], dim=1)
        queries = self.mask_token + gather_tokens(pos, target)
        out = self.transformer(torch.cat([h, queries], dim=1))
        return self.out(out[:, -target.shape[1]:])


def sample_masks(n_rows: int, n_features: int, cfg: TJEPAConfig, generator: torch.Generator
                 ) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """(context (B, k), n_targets x target (B, t)): per row a random context set and target sets drawn from
    the features outside it; k and t are drawn once per batch from the configured shares (mask.py:87-150)."""
    if n_features < 2:
        raise ValueError(f"T-JEPA needs at least 2 features (a context and a target), got {n_features}")

    def count(share: tuple[float, float], high: int) -> int:
        u = float(torch.rand((), generator=generator))
        return int(min(high, max(1, round(n_features * (share[0] + (share[1] - share[0]) * u)))))

    k = count(cfg.context_share, n_features - 1)
    t = count(cfg.target_share, n_features - k)
    order = torch.rand(n_rows, n_features, generator=generator).argsort(dim=1)
    context, rest = order[:, :k], order[:, k:]
    targets = [rest.gather(1, torch.rand(n_rows, n_features - k, generator=generator).argsort(dim=1)[:, :t])
               for _ in range(cfg.n_targets)]
    return context, targets


@torch.no_grad()
def ema_update_(target: nn.Module, context: nn.Module, momentum: float) -> None:
    """target <- momentum * target + (1 - momentum) * context, parameter by parameter."""
    for p_t, p_c in zip(target.parameters(), context.parameters()):
        p_t.mul_(momentum).add_(p_c.detach(), alpha=1.0 - momentum)


class JEPA(nn.Module):
    """Context encoder, EMA target encoder (no gradients), predictor."""

    def __init__(self, n_num: int, cardinalities: list[int], cfg: TJEPAConfig):
        super().__init__()
        self.context_encoder = Encoder(n_num, cardinalities, cfg)
        self.target_encoder = copy.deepcopy(self.context_encoder).requires_grad_(False)
        self.predictor = Predictor(n_num + len(cardinalities), cfg)
        self.n_reg = cfg.n_reg_tokens

    def predictions_and_targets(self, x_num: torch.Tensor, x_cat: torch.Tensor, context: torch.Tensor,
                                targets: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Predicted and target-encoder representations of every target set's features, stacked."""
        with torch.no_grad():
            full = self.target_encoder(x_num, x_cat)[:, self.n_reg:]  # every feature, unmasked row
            wanted = torch.cat([gather_tokens(full, t) for t in targets], dim=1)
        z = self.context_encoder(x_num, x_cat, keep=context)
        predicted = torch.cat([self.predictor(z, context, t) for t in targets], dim=1)
        return predicted, wanted

    def loss(self, x_num: torch.Tensor, x_cat: torch.Tensor, context: torch.Tensor,
             targets: list[torch.Tensor]) -> torch.Tensor:
        predicted, wanted = self.predictions_and_targets(x_num, x_cat, context, targets)
        return F.mse_loss(predicted, wanted)


@dataclass
class PretrainedEncoder:
    """What pretraining hands the downstream model: the target encoder's weights and how it was made."""

    config: TJEPAConfig
    n_num: int
    cardinalities: list[int]
    state: dict[str, torch.Tensor]
    info: dict[str, Any] = field(default_factory=dict)  # epochs, best_epoch, stopped_by, seconds, losses

    def encoder(self) -> Encoder:
        enc = Encoder(self.n_num, self.cardinalities, self.config)
        enc.load_state_dict(self.state)
        return enc.eval().requires_grad_(False)

    @property
    def width(self) -> int:
        return (self.config.n_reg_tokens + self.n_num + len(self.cardinalities)) * self.config.d_token


def encode(pretrained: PretrainedEncoder, X: tuple[np.ndarray, np.ndarray], batch_size: int = 4096) -> np.ndarray:
    """The frozen target encoder's representation of every row, all tokens flattened (n, width), float32."""
    enc = pretrained.encoder()
    x_num, x_cat = (torch.as_tensor(np.asarray(a)) for a in X)
    with torch.inference_mode():
        parts = [enc(x_num[i:i + batch_size].float(), x_cat[i:i + batch_size].long()).flatten(1)
                 for i in range(0, len(x_num), batch_size)]
    return torch.cat(parts).numpy().astype(np.float32) if parts else np.zeros((0, pretrained.width), np.float32)


def config_dict(cfg: TJEPAConfig) -> dict[str, Any]:
    """The configuration as plain data (for records and cache keys)."""
    return asdict(cfg)


class _Clock:
    """When pretraining must stop: ctx.deadline or start + time_limit_s, whichever comes first."""

    def __init__(self, ctx: FitContext, time_limit_s: float | None):
        self.ctx, self.start = ctx, ctx.clock()
        limits = [t for t in (ctx.deadline, None if time_limit_s is None else self.start + time_limit_s)
                  if t is not None]
        self.end = min(limits) if limits else None

    def up(self) -> bool:
        return self.end is not None and self.ctx.clock() >= self.end


def _split_holdout(n: int, fraction: float, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(rows trained on, held-out rows) of the training part; no held-out slice below HOLDOUT_MIN_ROWS rows."""
    order = torch.randperm(n, generator=generator)
    n_hold = int(round(n * fraction))
    if n_hold < HOLDOUT_MIN_ROWS or n - n_hold < 2:
        return order, order[:0]
    return order[n_hold:], order[:n_hold]


def _train_epoch(model: JEPA, opt: torch.optim.Optimizer, xs: tuple[torch.Tensor, torch.Tensor], rows: torch.Tensor,
                 cfg: TJEPAConfig, gen: torch.Generator, momenta: Any, clock: _Clock) -> tuple[float, bool]:
    """One pass over `rows` in random batches; (mean loss, interrupted by the clock)."""
    model.train()
    total, batches = 0.0, 0
    order = rows[torch.randperm(len(rows), generator=gen)]
    for start in range(0, len(order), cfg.batch_size):
        if batches and clock.up():
            return total / batches, True
        idx = order[start:start + cfg.batch_size]
        context, targets = sample_masks(len(idx), model.predictor.position.shape[0], cfg, gen)
        dev = xs[0].device
        loss = model.loss(xs[0][idx], xs[1][idx], context.to(dev), [t.to(dev) for t in targets])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        ema_update_(model.target_encoder, model.context_encoder, next(momenta))
        total, batches = total + float(loss.detach()), batches + 1
    return total / max(1, batches), False


@torch.no_grad()
def _holdout_loss(model: JEPA, xs: tuple[torch.Tensor, torch.Tensor], rows: torch.Tensor,
                  masks: tuple[torch.Tensor, list[torch.Tensor]]) -> float:
    model.eval()
    dev = xs[0].device
    return float(model.loss(xs[0][rows], xs[1][rows], masks[0].to(dev), [t.to(dev) for t in masks[1]]))


def _cpu_state(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()}


def _momenta(cfg: TJEPAConfig, total_steps: int):
    """The EMA momentum of each optimizer step: linear from ema[0] to ema[1] over the planned steps."""
    step = 0
    while True:
        yield cfg.ema[0] + (cfg.ema[1] - cfg.ema[0]) * min(1.0, step / max(1, total_steps))
        step += 1


def pretrain(X_train: tuple[np.ndarray, np.ndarray], config: TJEPAConfig, ctx: FitContext) -> PretrainedEncoder:
    """Self-supervised pretraining on the preprocessed training part (x_num, x_cat); no labels, no other
    rows. Stops at max_epochs, early (held-out JEPA loss, `patience`), or at the clock (ctx.deadline,
    config.time_limit_s); returns the target encoder of the best held-out epoch (the last one without a
    held-out slice). info: epochs, best_epoch, stopped_by, seconds, holdout_loss, train_loss, holdout_rows."""
    torch.set_num_threads(max(1, int(ctx.threads)))
    torch.manual_seed(ctx.seed)
    device = torch.device(ctx.device)
    xs = (torch.tensor(np.array(X_train[0]), dtype=torch.float32), torch.tensor(np.array(X_train[1]), dtype=torch.long))
    n_num, cards = xs[0].shape[1], [int(c) + 1 for c in xs[1].max(dim=0).values] if xs[1].shape[1] else []
    xs = (xs[0].to(device), xs[1].to(device))
    gen = torch.Generator().manual_seed(ctx.seed)
    fit_rows, hold_rows = _split_holdout(len(xs[0]), config.holdout_fraction, gen)
    model = JEPA(n_num, cards, config).to(device)
    params = list(model.context_encoder.parameters()) + list(model.predictor.parameters())
    opt = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    schedule = TrainConfig(lr=config.lr, max_epochs=config.max_epochs, lr_schedule="warmup_cosine",
                           warmup_epochs=config.warmup_epochs)
    momenta = _momenta(config, math.ceil(len(fit_rows) / config.batch_size) * config.max_epochs)
    hold_masks = sample_masks(len(hold_rows), n_num + len(cards), config, torch.Generator().manual_seed(ctx.seed + 1))
    clock, stopper = _Clock(ctx, config.time_limit_s), EarlyStopper(config.patience, minimum=0)
    best = _cpu_state(model.target_encoder)
    info: dict[str, Any] = {"holdout_rows": len(hold_rows)}
    for epoch in range(1, config.max_epochs + 1):
        for group in opt.param_groups:
            group["lr"] = schedule.lr_at_epoch(epoch)
        train_loss, interrupted = _train_epoch(model, opt, xs, fit_rows, config, gen, momenta, clock)
        value = _holdout_loss(model, xs, hold_rows, hold_masks) if len(hold_rows) else train_loss
        if not math.isfinite(value):
            info["stopped_by"] = "diverged"
            break
        if stopper.update(epoch, value) or not len(hold_rows):
            best = _cpu_state(model.target_encoder)
        info.update(epochs=epoch, train_loss=train_loss, holdout_loss=stopper.best_value)
        ended = end_reason(interrupted=interrupted, early_stopped=bool(len(hold_rows)) and stopper.should_stop(epoch),
                           at_cap=epoch == config.max_epochs, out_of_time=clock.up())
        if ended is not None:
            info["stopped_by"] = str(ended)
            break
    info.update(best_epoch=stopper.best_iteration if len(hold_rows) else info.get("epochs", 0),
                seconds=ctx.clock() - clock.start)
    return PretrainedEncoder(config, n_num, cards, best, info)
